//! The hazard service: the actor that owns the [`Tracker`], persists every change with its events in one
//! storage transaction (hazards, outbox messages, id counters), and tells the MQTT publisher.
//!
//! On start it resumes from storage (open hazards and counters), so a restart neither re-issues a hazard under
//! a new id nor reuses an event id. A change whose commit fails is rolled back in the tracker and reported to the
//! caller; nothing is published that was not stored first.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::district::District;
use crate::hazard::{Hazard, HazardEvent, ReviewEvent, Verdict, rfc3339};
use crate::mqtt::MqttHandle;
use crate::storage::{StorageError, StorageHandle};
use crate::tracking::{Change, Observation, TrackError, Tracker, TrackerConfig};

/// Capacity of the command channel; callers wait when it is full (backpressure on the pipeline).
const COMMAND_CAPACITY: usize = 64;
/// How often open hazards are checked for `tracking.end_after`.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);
/// Capacity of the changed-hazards broadcast; a slow subscriber gets `Lagged` and reloads.
const CHANGES_CAPACITY: usize = 256;

/// Hazard service failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HazardServiceError {
    /// Storing the change failed; the tracker was rolled back and nothing was published.
    #[error("cannot store the hazard change")]
    Storage(#[from] StorageError),
    /// The review names no open hazard.
    #[error(transparent)]
    Track(#[from] TrackError),
    /// The service has stopped (shutdown).
    #[error("the hazard service has stopped")]
    Stopped,
}

/// A review as an operator gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRequest {
    /// The hazard.
    pub hazard_id: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Who.
    pub reviewer: String,
    /// Free text.
    pub comment: String,
}

type Reply<T> = oneshot::Sender<Result<T, HazardServiceError>>;

enum Command {
    Observe(Box<Observation>, Reply<Observed>),
    MissionFinished { started_at: SystemTime, cells: Vec<String>, reply: Reply<Vec<HazardEvent>> },
    Review(ReviewRequest, SystemTime, Reply<ReviewEvent>),
    OpenHazards(Reply<Vec<Hazard>>),
}

/// What a sighting did: the hazard it now belongs to, and the event it caused, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The hazard the sighting was merged into (or that it started).
    pub hazard_id: String,
    /// The `new` or `update` event, already stored in the outbox; `None` when the sighting added nothing worth
    /// an event.
    pub event: Option<HazardEvent>,
}

/// Cloneable handle to the hazard service.
#[derive(Debug, Clone)]
pub struct HazardHandle {
    commands: mpsc::Sender<Command>,
    changes: broadcast::Sender<Hazard>,
}

impl HazardHandle {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, HazardServiceError> {
        let (reply, result) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| HazardServiceError::Stopped)?;
        result.await.map_err(|_| HazardServiceError::Stopped)?
    }

    /// Adds a sighting; returns the event it caused (`new` or `update`), already stored in the outbox.
    ///
    /// Cancel safety: once queued, the sighting is processed even if this future is dropped.
    ///
    /// # Errors
    /// [`HazardServiceError::Storage`] (rolled back) or [`HazardServiceError::Stopped`].
    pub async fn observe(&self, observation: Observation) -> Result<Option<HazardEvent>, HazardServiceError> {
        Ok(self.observe_traced(observation).await?.event)
    }

    /// Like [`HazardHandle::observe`], also telling which hazard the sighting belongs to.
    ///
    /// # Errors
    /// As [`HazardHandle::observe`].
    pub async fn observe_traced(&self, observation: Observation) -> Result<Observed, HazardServiceError> {
        self.ask(|reply| Command::Observe(Box::new(observation), reply)).await
    }

    /// A mission that started at `started_at` and covered `cells` is over: ends the hazards there it did not
    /// see again. Returns the `end` events.
    ///
    /// # Errors
    /// [`HazardServiceError::Storage`] (rolled back) or [`HazardServiceError::Stopped`].
    pub async fn mission_finished(
        &self,
        started_at: SystemTime,
        cells: Vec<String>,
    ) -> Result<Vec<HazardEvent>, HazardServiceError> {
        self.ask(|reply| Command::MissionFinished { started_at, cells, reply }).await
    }

    /// Applies an operator's verdict: stores and publishes the review, then the hazard's `update` or `end`.
    /// [`Verdict::Reopened`] undoes the hazard's verdict (see [`Tracker::reopen`]), also for a hazard the verdict
    /// ended.
    ///
    /// # Errors
    /// [`HazardServiceError::Track`] for a hazard that is not open (or, for a reopen, holds no verdict), else as
    /// [`HazardHandle::observe`].
    pub async fn review(&self, request: ReviewRequest) -> Result<ReviewEvent, HazardServiceError> {
        self.ask(|reply| Command::Review(request, rfc3339::to_millis(SystemTime::now()), reply)).await
    }

    /// The open hazards that have been announced (tentative ones are not).
    ///
    /// # Errors
    /// [`HazardServiceError::Stopped`].
    pub async fn open_hazards(&self) -> Result<Vec<Hazard>, HazardServiceError> {
        self.ask(Command::OpenHazards).await
    }

    /// Every hazard change that published an event (`new`, `update`, `end`), after it was stored. Bounded: a
    /// slow subscriber gets `Lagged` and should reload from storage.
    pub fn subscribe(&self) -> broadcast::Receiver<Hazard> {
        self.changes.subscribe()
    }
}

/// Starts the hazard service on `tasks`, resumed from `storage`. It stops on `cancel` after the command being
/// processed.
///
/// # Errors
/// Storage errors while resuming.
pub async fn start(
    config: TrackerConfig,
    district: Arc<District>,
    storage: StorageHandle,
    mqtt: MqttHandle,
    tasks: &TaskTracker,
    cancel: CancellationToken,
) -> Result<HazardHandle, StorageError> {
    let (open, counters) = storage.call(|db| Ok((db.open_hazards()?, db.counters()?))).await?;
    tracing::info!(open_hazards = open.len(), "Hazard tracker resumed.");
    let tracker = Tracker::restore(config, open, counters);
    let (commands, rx) = mpsc::channel(COMMAND_CAPACITY);
    let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
    let service = Service { tracker, district, storage, mqtt, changes: changes.clone() };
    tasks.spawn(service.run(rx, cancel));
    Ok(HazardHandle { commands, changes })
}

struct Service {
    tracker: Tracker,
    district: Arc<District>,
    storage: StorageHandle,
    mqtt: MqttHandle,
    changes: broadcast::Sender<Hazard>,
}

impl Service {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, cancel: CancellationToken) {
        let mut expire = tokio::time::interval(EXPIRE_EVERY);
        expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = expire.tick() => {
                    let before = self.tracker.clone();
                    let changes = self.tracker.expire(SystemTime::now());
                    if let Err(error) = self.commit(before, changes, None).await {
                        tracing::error!(%error, "Cannot store expired hazards; will retry.");
                    }
                }
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        let before = self.tracker.clone();
        match command {
            Command::Observe(observation, reply) => {
                let change = self.tracker.observe(*observation, self.district.as_ref());
                let hazard_id = change.hazard.id.clone();
                let result = self
                    .commit(before, vec![change], None)
                    .await
                    .map(|events| Observed { hazard_id, event: events.into_iter().next() });
                let _ = reply.send(result);
            }
            Command::MissionFinished { started_at, cells, reply } => {
                let changes = self.tracker.mission_finished(started_at, &cells);
                let _ = reply.send(self.commit(before, changes, None).await);
            }
            Command::Review(request, at, reply) => {
                // The review's id comes first: it is published before the hazard's update or end.
                let event_id = self.tracker.next_event_id();
                let reviewed = if request.verdict == Verdict::Reopened && !self.tracker.is_open(&request.hazard_id) {
                    // A verdict that ended the hazard is undone from the stored record: the tracker forgot it.
                    let id = request.hazard_id.clone();
                    match self.storage.call(move |db| db.hazard(&id)).await {
                        Ok(stored) => self.tracker.reopen(&request.hazard_id, stored),
                        Err(error) => {
                            self.tracker = before;
                            let _ = reply.send(Err(error.into()));
                            return;
                        }
                    }
                } else {
                    self.tracker.review(&request.hazard_id, request.verdict)
                };
                let change = match reviewed {
                    Ok(change) => change,
                    Err(error) => {
                        self.tracker = before;
                        let _ = reply.send(Err(error.into()));
                        return;
                    }
                };
                let review = ReviewEvent {
                    event_id,
                    hazard_id: request.hazard_id,
                    verdict: request.verdict,
                    reviewer: request.reviewer,
                    comment: request.comment,
                    at,
                };
                let result = self.commit(before, vec![change], Some(review.clone())).await.map(|_| review);
                let _ = reply.send(result);
            }
            Command::OpenHazards(reply) => {
                let announced = self.tracker.open_hazards().iter().filter(|h| !h.tentative).cloned().collect();
                let _ = reply.send(Ok(announced));
            }
        }
    }

    /// Stores the changes (and the review) with their outbox messages and the counters in one transaction,
    /// then wakes the publisher. On failure the tracker goes back to `before`.
    async fn commit(
        &mut self,
        before: Tracker,
        changes: Vec<Change>,
        review: Option<ReviewEvent>,
    ) -> Result<Vec<HazardEvent>, HazardServiceError> {
        if changes.is_empty() && review.is_none() {
            return Ok(Vec::new());
        }
        let topics = self.mqtt.topics().clone();
        let events: Vec<HazardEvent> = changes.iter().filter_map(|change| change.event.clone()).collect();
        let announced: Vec<Hazard> =
            changes.iter().filter(|change| change.event.is_some()).map(|change| change.hazard.clone()).collect();
        let hazards: Vec<Hazard> = changes.into_iter().map(|change| change.hazard).collect();
        // The review goes first on the wire: its verdict explains the hazard's update or end.
        let mut messages: Vec<_> = review.iter().map(|review| topics.review_message(review)).collect();
        messages.extend(events.iter().map(|event| topics.hazard_message(event)));
        let counters = self.tracker.counters();
        let stored = self
            .storage
            .call(move |db| {
                db.commit_changes_with_review(&hazards, review.as_ref(), &messages, counters)?;
                Ok(())
            })
            .await;
        match stored {
            Ok(()) => {
                self.mqtt.outbox_changed();
                for hazard in announced {
                    // Nobody listening is fine.
                    let _ = self.changes.send(hazard);
                }
                Ok(events)
            }
            Err(error) => {
                self.tracker = before;
                Err(error.into())
            }
        }
    }
}
