use hookline_backoff::Failure;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum KafkaAdapterError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("could not create topic {topic}: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("could not encode record")]
    Encode(#[from] serde_json::Error),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("the consumer stopped")]
    Stopped,
}

impl KafkaAdapterError {
    /// Whether trying the same thing again may succeed: the broker is away, settling, or
    /// electing a leader. Bad configuration, refused credentials and records Kafka will never
    /// take fail the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Kafka(KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_)) => false,
            Self::Kafka(KafkaError::AdminOp(code)) => !is_permanent(*code),
            Self::Kafka(error) => !error.rdkafka_error_code().is_some_and(is_permanent),
            Self::CreateTopic { code, .. } => !is_permanent(*code),
            Self::Timeout(_) => true,
            Self::Encode(_) | Self::Stopped => false,
        }
    }
}

impl KafkaAdapterError {
    /// This error as the retry loop sees it.
    pub fn classified(self) -> Failure<Self> {
        if self.is_transient() {
            Failure::Transient(self)
        } else {
            Failure::Permanent(self)
        }
    }
}

/// Kafka error codes that no retry can fix.
fn is_permanent(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as Code;
    matches!(
        code,
        Code::Authentication
            | Code::SaslAuthenticationFailed
            | Code::TopicAuthorizationFailed
            | Code::GroupAuthorizationFailed
            | Code::ClusterAuthorizationFailed
            | Code::TransactionalIdAuthorizationFailed
            | Code::DelegationTokenAuthorizationFailed
            | Code::MessageSizeTooLarge
            | Code::InvalidRecord
            | Code::InvalidArgument
            | Code::InvalidConfig
            | Code::PolicyViolation
            | Code::KeySerialization
            | Code::ValueSerialization
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_away_is_transient_and_a_refusal_is_not() {
        let away = KafkaAdapterError::Kafka(KafkaError::MetadataFetch(
            RDKafkaErrorCode::NotLeaderForPartition,
        ));
        assert!(away.is_transient());
        let down = KafkaAdapterError::Kafka(KafkaError::MessageProduction(
            RDKafkaErrorCode::AllBrokersDown,
        ));
        assert!(down.is_transient());
        let refused = KafkaAdapterError::Kafka(KafkaError::MetadataFetch(
            RDKafkaErrorCode::SaslAuthenticationFailed,
        ));
        assert!(!refused.is_transient());
        let too_large = KafkaAdapterError::Kafka(KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge,
        ));
        assert!(!too_large.is_transient());
        assert!(
            !KafkaAdapterError::Encode(serde_json::from_str::<u8>("x").unwrap_err()).is_transient()
        );
    }

    #[test]
    fn a_topic_refused_for_its_settings_is_permanent_and_a_settling_controller_is_not() {
        let create = |code| KafkaAdapterError::CreateTopic {
            topic: "hookline.events".into(),
            code,
        };
        assert!(create(RDKafkaErrorCode::NotController).is_transient());
        assert!(create(RDKafkaErrorCode::RequestTimedOut).is_transient());
        assert!(!create(RDKafkaErrorCode::TopicAuthorizationFailed).is_transient());
        assert!(!create(RDKafkaErrorCode::PolicyViolation).is_transient());
        assert!(KafkaAdapterError::Timeout("partition leaders of new topics").is_transient());
    }

    #[test]
    fn a_fenced_leader_epoch_while_the_broker_settles_is_transient() {
        let fenced =
            KafkaAdapterError::Kafka(KafkaError::OffsetFetch(RDKafkaErrorCode::FencedLeaderEpoch));
        assert!(fenced.is_transient());
        let admin = |code| KafkaAdapterError::Kafka(KafkaError::AdminOp(code));
        assert!(admin(RDKafkaErrorCode::OperationTimedOut).is_transient());
        assert!(!admin(RDKafkaErrorCode::ClusterAuthorizationFailed).is_transient());
    }
}
