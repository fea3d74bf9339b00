use rdkafka::error::KafkaError;

#[derive(Debug, thiserror::Error)]
pub enum KafkaAdapterError {
    #[error("kafka client error")]
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
