//! The trait the console runs on. The ground station implements it over the real fleet, planner, storage and
//! review queue; `DemoBackend` (feature `test-util`) implements it in memory for tests.

use std::time::Duration;

use tokio::sync::broadcast;

use super::api::{
    CommandOutcome, CommandRequest, District, FleetSnapshot, Hazard, HazardFilter, MissionStatus, PlanRequest,
    PlanSummary, ReviewItem, ReviewRecord, Verdict,
};

/// An evidence image as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceImage {
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

/// Why a backend call failed. The web layer maps each to an HTTP status; only [`BackendError::Internal`] is
/// hidden from the user (logged, answered with a generic 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The named thing does not exist (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The request cannot be done as asked (400), e.g. an unknown cell id in a plan.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state (409), e.g. a verdict on an item claimed by someone else.
    #[error("{0}")]
    Conflict(String),
    /// A part the request needs is down (503), e.g. no drone link.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an I/O failure (500). The message is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Everything the web console reads and does. Implementations must be cheap to call concurrently: the router
/// holds one `Arc<dyn ConsoleBackend>` and calls it from every request.
///
/// Authorisation is the router's job (it checks the role before calling); `reviewer` arguments are the logged-in
/// user name, for attribution and claims.
#[async_trait::async_trait]
pub trait ConsoleBackend: Send + Sync + 'static {
    /// Every drone's latest state.
    async fn fleet(&self) -> Result<FleetSnapshot, BackendError>;

    /// The district: grid cells with today's coverage, no-fly zones, launch points and planner cameras.
    async fn district(&self) -> Result<District, BackendError>;

    /// Missions planned, uploaded or in flight, with their progress.
    async fn missions(&self) -> Result<Vec<MissionStatus>, BackendError>;

    /// Plans a patrol over cells; nothing is sent to the drones yet.
    async fn plan(&self, request: PlanRequest) -> Result<PlanSummary, BackendError>;

    /// Uploads a plan to its drones; one answer per drone.
    async fn upload(&self, plan_id: &str) -> Result<Vec<CommandOutcome>, BackendError>;

    /// Sends a command to the listed drones (all when the list is empty); one autopilot answer per drone.
    async fn command(&self, request: CommandRequest) -> Result<Vec<CommandOutcome>, BackendError>;

    /// Hazards passing the filter, newest first.
    async fn hazards(&self, filter: HazardFilter) -> Result<Vec<Hazard>, BackendError>;

    /// One hazard.
    async fn hazard(&self, id: &str) -> Result<Hazard, BackendError>;

    /// An evidence image (full frame or crop) by id. `id` is already checked to be a plain token.
    async fn evidence_image(&self, id: &str) -> Result<EvidenceImage, BackendError>;

    /// Claims the next pending hazard for `reviewer`: most severe first, then oldest. The claim is a lease: no
    /// other reviewer gets the item until it lapses or a verdict arrives. Claiming again while holding a live
    /// claim returns the same item. `None` when the queue is empty for this reviewer.
    async fn claim_next(&self, reviewer: &str, lease: Duration) -> Result<Option<ReviewItem>, BackendError>;

    /// Stores a verdict on a hazard claimed by `reviewer` (a `Skip` releases the claim and moves the item behind
    /// the others for this reviewer). Confirm/reject update the hazard and are published.
    async fn verdict(
        &self,
        reviewer: &str,
        hazard_id: &str,
        verdict: Verdict,
        note: Option<String>,
    ) -> Result<ReviewRecord, BackendError>;

    /// Undoes `reviewer`'s latest verdict, returning the hazard to the queue; `None` when there is nothing to
    /// undo.
    async fn undo(&self, reviewer: &str) -> Result<Option<ReviewRecord>, BackendError>;

    /// A new subscription to live updates for the WebSocket. The channel is bounded: a slow client gets
    /// `Lagged` and is told to resync.
    fn subscribe(&self) -> broadcast::Receiver<super::api::LiveUpdate>;
}
