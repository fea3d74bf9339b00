use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use hookline_kafka::{CompactedView, KafkaAdapterError, KafkaArgs, Position};
use tokio_util::sync::CancellationToken;

use crate::state::{ControlState, ControlTopic, Principal};

/// How long a lookup that missed may wait for the view to catch up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// Control-plane state kept current from Kafka. Cheap to clone.
#[derive(Clone)]
pub struct ControlPlane {
    state: Arc<RwLock<ControlState>>,
    view: CompactedView,
}

impl ControlPlane {
    /// Reads the control topics to their end and keeps following them until `shutdown`.
    pub async fn start(
        args: &KafkaArgs,
        shutdown: CancellationToken,
    ) -> Result<Self, KafkaAdapterError> {
        let state = Arc::new(RwLock::new(ControlState::default()));
        let names = args.topics();
        let writer = Arc::clone(&state);
        let view = CompactedView::start(
            args,
            names.control().to_vec(),
            move |record| {
                let Some(topic) = ControlTopic::of(&names, record.topic) else {
                    return;
                };
                let key = String::from_utf8_lossy(record.key);
                writer.write().expect("control state lock poisoned").apply(
                    topic,
                    &key,
                    record.value,
                );
            },
            shutdown,
        )
        .await?;
        Ok(Self { state, view })
    }

    /// Read access to the current state. Hold it briefly: the view waits for it to apply records.
    pub fn read(&self) -> RwLockReadGuard<'_, ControlState> {
        self.state.read().expect("control state lock poisoned")
    }

    /// Waits until a write this process just had acknowledged is applied, so the caller's next
    /// read sees it.
    pub async fn wait_applied(
        &self,
        topic: &str,
        position: Position,
    ) -> Result<(), KafkaAdapterError> {
        self.view
            .wait_applied(topic, position, CATCH_UP_TIMEOUT)
            .await
    }

    /// Waits until every control-plane write acknowledged before this call is applied.
    pub async fn catch_up(&self) -> Result<(), KafkaAdapterError> {
        self.view.catch_up(CATCH_UP_TIMEOUT).await
    }

    /// Looks a key up; on a miss, catches up once and looks again, so a key is usable anywhere
    /// as soon as its creation was acknowledged.
    pub async fn authenticate(
        &self,
        api_key: &str,
    ) -> Result<Option<Principal>, KafkaAdapterError> {
        if let Some(principal) = self.read().authenticate(api_key) {
            return Ok(Some(principal));
        }
        self.catch_up().await?;
        Ok(self.read().authenticate(api_key))
    }
}
