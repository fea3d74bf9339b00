//! Dead letters: a record a stage can never process is copied, with the reason, to that
//! stage's `dead-letters.<stage>` topic, and the stage moves on. Its partition is never held
//! up by it, and nothing about it is lost: the copy keeps the record byte for byte and where
//! it was read.

use base64::Engine;
use chrono::Utc;
use hookline_backoff::{Backoff, GaveUp};
use hookline_schemas::{DeadLetterRecord, SCHEMA_VERSION};
use tokio_util::sync::CancellationToken;

use crate::{ConsumedRecord, KafkaAdapterError, KafkaArgs, OutgoingRecord, Publisher};

/// The dead-letter copy of `record`, to produce to `topic`.
pub fn dead_letter(
    topic: &str,
    stage: &str,
    record: &ConsumedRecord,
    reason: &str,
) -> Result<OutgoingRecord, KafkaAdapterError> {
    let letter = DeadLetterRecord {
        schema_version: SCHEMA_VERSION,
        stage: stage.to_owned(),
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        reason: reason.to_owned(),
        key: record
            .key
            .as_deref()
            .map(|key| String::from_utf8_lossy(key).into_owned()),
        payload_base64: base64::engine::general_purpose::STANDARD
            .encode(record.payload.as_deref().unwrap_or_default()),
        dead_lettered_at: Utc::now(),
    };
    Ok(OutgoingRecord {
        topic: topic.to_owned(),
        partition: None,
        key: format!("{}/{}/{}", record.topic, record.partition, record.offset),
        payload: serde_json::to_vec(&letter)?,
    })
}

/// Where an at-least-once stage sends the records it gives up on.
#[derive(Clone)]
pub struct DeadLetters {
    publisher: Publisher,
    topic: String,
    stage: &'static str,
}

impl DeadLetters {
    pub fn new(args: &KafkaArgs, publisher: Publisher, stage: &'static str) -> Self {
        Self {
            publisher,
            topic: args.topics().dead_letters(stage),
            stage,
        }
    }

    /// Logs `record` with `reason` and produces its dead letter, retrying while Kafka is away.
    /// `false` if `abandon` fired first (the record then stays uncommitted and comes back).
    pub async fn send(
        &self,
        record: &ConsumedRecord,
        reason: &str,
        abandon: &CancellationToken,
    ) -> bool {
        tracing::error!(
            stage = self.stage,
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
            reason,
            "record can never be processed; dead-lettering it"
        );
        let letter = match dead_letter(&self.topic, self.stage, record, reason) {
            Ok(letter) => letter,
            Err(err) => {
                tracing::error!(error = %err, "could not encode a dead letter; skipping the record");
                return true;
            }
        };
        let produced = hookline_backoff::retry(
            Backoff::dependency(),
            abandon,
            "producing a dead letter",
            || async {
                self.publisher
                    .send_record(&letter)
                    .await
                    .map_err(KafkaAdapterError::classified)
            },
        )
        .await;
        match produced {
            Ok(_) => true,
            Err(GaveUp::Abandoned) => false,
            Err(GaveUp::Permanent(err)) => {
                // Kafka refuses even the copy (it is larger than the topic takes): the record
                // stays in its own topic until retention, and this line says where.
                tracing::error!(error = %err, topic = %record.topic, partition = record.partition, offset = record.offset, "could not dead-letter the record; skipping it");
                true
            }
        }
    }
}
