//! WIP placeholder: replaced by the real backend before merge.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::{
    CommandOutcome, CommandRequest, District, FleetSnapshot, Hazard, HazardFilter, LiveUpdate, MissionStatus,
    PlanRequest, PlanSummary, ReviewItem, ReviewRecord, Verdict,
};
use super::backend::{BackendError, ConsoleBackend, EvidenceImage};
use crate::station::Station;

/// The console over the running station.
pub struct StationBackend {
    live: broadcast::Sender<LiveUpdate>,
}

impl StationBackend {
    /// Starts the backend's live feed on `tasks`.
    pub fn start(_station: &Station, _tasks: &TaskTracker, _cancel: CancellationToken) -> Self {
        let (live, _) = broadcast::channel(16);
        Self { live }
    }
}

fn todo_err<T>() -> Result<T, BackendError> {
    Err(BackendError::Unavailable("not wired yet".into()))
}

#[async_trait::async_trait]
impl ConsoleBackend for StationBackend {
    async fn fleet(&self) -> Result<FleetSnapshot, BackendError> {
        todo_err()
    }
    async fn district(&self) -> Result<District, BackendError> {
        todo_err()
    }
    async fn missions(&self) -> Result<Vec<MissionStatus>, BackendError> {
        todo_err()
    }
    async fn plan(&self, _r: PlanRequest) -> Result<PlanSummary, BackendError> {
        todo_err()
    }
    async fn upload(&self, _p: &str) -> Result<Vec<CommandOutcome>, BackendError> {
        todo_err()
    }
    async fn command(&self, _r: CommandRequest) -> Result<Vec<CommandOutcome>, BackendError> {
        todo_err()
    }
    async fn hazards(&self, _f: HazardFilter) -> Result<Vec<Hazard>, BackendError> {
        todo_err()
    }
    async fn hazard(&self, _id: &str) -> Result<Hazard, BackendError> {
        todo_err()
    }
    async fn evidence_image(&self, _id: &str) -> Result<EvidenceImage, BackendError> {
        todo_err()
    }
    async fn claim_next(&self, _r: &str, _l: Duration) -> Result<Option<ReviewItem>, BackendError> {
        todo_err()
    }
    async fn verdict(&self, _r: &str, _h: &str, _v: Verdict, _n: Option<String>) -> Result<ReviewRecord, BackendError> {
        todo_err()
    }
    async fn undo(&self, _r: &str) -> Result<Option<ReviewRecord>, BackendError> {
        todo_err()
    }
    fn subscribe(&self) -> broadcast::Receiver<LiveUpdate> {
        let _ = Arc::new(());
        self.live.subscribe()
    }
}
