use hookline_backoff::Failure;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum KafkaAdapterError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("could not create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
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
            Self::Kafka(error) => !error.rdkafka_error_code().is_some_and(is_permanent),
            Self::CreateTopic { .. } | Self::Timeout(_) => true,
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
}
