//! The console over the running station: the fleet's links, the patrol planner and its sorties, the hazards in
//! storage with their evidence on disk, and a review queue whose verdicts go through the hazard service (stored,
//! published on `<prefix>/reviews`, then the hazard's `update` or `end`).
//!
//! Hazard ids: the tracker's `<station id>:h:<n>` is shown as the plain token `<station id>_h_<n>` (the API's ids
//! are letters, digits, `-` and `_`); see [`hazard_token`].
//!
//! Undo: a confirm or reject is undone with the verdict `reopened` ([`crate::hazard::Verdict::Reopened`]): the
//! hazard is unreviewed (and open) again and back in the queue, published like any review. A skip is undone in
//! the queue only: it never left the station.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use firmware_bridge::mode::AutopilotKind;
use firmware_bridge::vehicle::{LinkHealth, VehicleHandle};
use mission_planner::area::{self, ZoneShape};
use mission_planner::geo::{GeoPoint, LocalFrame, LocalPoint};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::{
    Alarm, Autopilot, CameraOption, CommandOutcome, CommandRequest, District, DroneState, EvidenceBox, EvidenceFrame,
    FleetSnapshot, GridCell, Hazard, HazardFilter, HazardKind, HazardStatus, LatLon, LaunchPoint, LinkState,
    LiveUpdate, MissionProgress, MissionState, MissionStatus, NoFlyZone, PlanRequest, PlanSummary, PlannedRoute,
    ReviewItem, ReviewRecord, ReviewStatus, Severity, Sortie, VehicleCommand, Verdict,
};
use super::backend::{BackendError, ConsoleBackend, EvidenceImage};
use super::review_queue::{Candidate, ReviewQueue, unix_ms};
use crate::hazard;
use crate::hazard_service::{HazardHandle, HazardServiceError, ReviewRequest};
use crate::station::Station;
use crate::station::alarms::Alarms;
use crate::station::fleet::{DroneView, Fleet};
use crate::station::frames::{evidence_id, parse_evidence_id};
use crate::station::patrols::{MissionRun, PatrolError, Patrols, PlannedPatrol, PlannerInputs};
use crate::storage::{CaptureRecord, DetectionRecord, StorageHandle};
use crate::tracking::TrackError;

/// Live update channel capacity (a slow client lags and resyncs).
const LIVE_CAPACITY: usize = 256;
/// How often every drone's state is pushed.
const DRONE_EVERY: Duration = Duration::from_secs(1);
/// A link losing more than this share of packets is degraded.
const DEGRADED_LOSS_RATIO: f64 = 0.2;
/// A link silent for longer than this is degraded (the bridge calls it lost after its own timeout).
const DEGRADED_SILENCE: Duration = Duration::from_secs(3);
/// Hazards read for the list (newest first); older ones are in the database, not on the console.
const HAZARD_LIST_LIMIT: u32 = 5000;
/// Evidence frames shown per review item.
const REVIEW_FRAMES: usize = 12;
/// Coverage counts sorties started within this window.
const COVERAGE_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Id of the planner's camera in [`District::cameras`] (the planner has one).
pub const PLANNER_CAMERA_ID: &str = "planner";

/// The console over the running station.
pub struct StationBackend {
    district_name: String,
    fleet: Fleet,
    patrols: Patrols,
    hazards: HazardHandle,
    storage: StorageHandle,
    evidence_dir: PathBuf,
    queue: Mutex<ReviewQueue>,
    live: broadcast::Sender<LiveUpdate>,
    alarms: Alarms,
}

impl std::fmt::Debug for StationBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationBackend").field("evidence_dir", &self.evidence_dir).finish_non_exhaustive()
    }
}

impl StationBackend {
    /// The backend over `station`, with its live feed running on `tasks` until `cancel`.
    pub fn start(station: &Station, tasks: &TaskTracker, cancel: CancellationToken) -> Self {
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        tasks.spawn(feed_live(
            station.fleet.clone(),
            station.patrols.clone(),
            station.hazards.subscribe(),
            station.alarms.subscribe(),
            live.clone(),
            cancel,
        ));
        Self {
            district_name: station.settings.station.id.clone(),
            fleet: station.fleet.clone(),
            patrols: station.patrols.clone(),
            hazards: station.hazards.clone(),
            storage: station.storage.clone(),
            evidence_dir: station.settings.storage.evidence_dir.clone(),
            queue: Mutex::new(ReviewQueue::new()),
            live,
            alarms: station.alarms.clone(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, ReviewQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, update: LiveUpdate) {
        // Nobody watching is fine.
        let _ = self.live.send(update);
    }

    async fn open_hazards(&self) -> Result<Vec<hazard::Hazard>, BackendError> {
        self.hazards.open_hazards().await.map_err(hazard_service_error)
    }

    /// The evidence frames of `hazard`, best picture first.
    async fn evidence_frames(&self, hazard: &hazard::Hazard) -> Result<Vec<EvidenceFrame>, BackendError> {
        let captures = best_first(hazard);
        let hazard_id = hazard.id.clone();
        let rows = self
            .storage
            .call(move |db| {
                let mut rows = Vec::new();
                for id in captures.iter().take(REVIEW_FRAMES) {
                    if let Some(capture) = db.capture(id)? {
                        rows.push((capture, db.detections(id)?));
                    }
                }
                Ok(rows)
            })
            .await
            .map_err(|error| BackendError::Internal(format!("reading the captures of {hazard_id}: {error}")))?;
        Ok(rows.iter().filter_map(|(capture, detections)| evidence_frame(capture, detections, &hazard.id)).collect())
    }

    async fn command_one(&self, drone_id: String, command: &VehicleCommand) -> CommandOutcome {
        let answer: Result<String, String> = match command {
            VehicleCommand::Start => match self.patrols.start(&drone_id).await {
                Ok(()) => Ok("armed; mission started".to_owned()),
                Err(error) => Err(format!("{error:#}")),
            },
            command => match self.fleet.vehicle(&drone_id) {
                Some(vehicle) => vehicle_command(&vehicle, command).await,
                None => Err(format!(
                    "{drone_id} has not been heard on its link yet: check that it is powered and the link address"
                )),
            },
        };
        match answer {
            Ok(message) => CommandOutcome { drone_id, accepted: true, message },
            Err(message) => CommandOutcome { drone_id, accepted: false, message },
        }
    }
}

/// Sends one vehicle command; the autopilot's answer (a refusal carries its STATUSTEXT reason).
async fn vehicle_command(vehicle: &VehicleHandle, command: &VehicleCommand) -> Result<String, String> {
    let sent = match command {
        VehicleCommand::Arm => vehicle.arm().await,
        VehicleCommand::Takeoff { altitude_rel_m } => vehicle.takeoff(*altitude_rel_m).await,
        VehicleCommand::Pause => vehicle.pause().await,
        VehicleCommand::Resume => vehicle.resume().await,
        VehicleCommand::Rtl => vehicle.return_to_launch().await,
        VehicleCommand::Land => vehicle.land().await,
        VehicleCommand::Start => vehicle.start_mission().await,
    };
    sent.map(|()| "accepted".to_owned()).map_err(|error| error.to_string())
}

/// Pushes drone states (every [`DRONE_EVERY`]), sortie progress and hazard changes to the console's subscribers.
async fn feed_live(
    fleet: Fleet,
    patrols: Patrols,
    mut hazards: broadcast::Receiver<hazard::Hazard>,
    mut alarms: watch::Receiver<BTreeMap<hazard::AlarmKind, hazard::StationAlarm>>,
    live: broadcast::Sender<LiveUpdate>,
    cancel: CancellationToken,
) {
    let mut missions = patrols.subscribe();
    let mut tick = tokio::time::interval(DRONE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lagged_total: u64 = 0;
    loop {
        let updates: Vec<LiveUpdate> = tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {
                let runs = patrols.runs();
                let now = tokio::time::Instant::now();
                fleet.views().iter().map(|view| LiveUpdate::Drone(drone_state(view, &runs, now))).collect()
            }
            run = missions.recv() => match run {
                Ok(run) => vec![LiveUpdate::Mission(mission_status(&run))],
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    lagged_total += skipped;
                    tracing::debug!(skipped, lagged_total, "Console feed lagged on missions; clients resync.");
                    vec![LiveUpdate::Resync]
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            changed = hazards.recv() => match changed {
                Ok(hazard) => api_hazard(&hazard).map(LiveUpdate::Hazard).into_iter().collect(),
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    lagged_total += skipped;
                    tracing::debug!(skipped, lagged_total, "Console feed lagged on hazards; clients resync.");
                    vec![LiveUpdate::Resync]
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            changed = alarms.changed() => match changed {
                // Every alarm's latest state: the console shows the active ones and drops the cleared.
                Ok(()) => alarms.borrow_and_update().values().map(|alarm| LiveUpdate::Alarm(api_alarm(alarm))).collect(),
                Err(_) => return,
            },
        };
        for update in updates {
            // Nobody watching is fine.
            let _ = live.send(update);
        }
    }
}

/// The console's view of a station alarm.
fn api_alarm(alarm: &hazard::StationAlarm) -> Alarm {
    Alarm {
        alarm: alarm.alarm.as_str().to_owned(),
        active: alarm.active,
        message: alarm.message.clone(),
        at_unix_ms: unix_ms(alarm.at),
    }
}

/// The API token of a tracker hazard id: `<station id>:h:<n>` becomes `<station id>_h_<n>`. `None` for an id
/// not of that form (the tracker makes no other).
pub fn hazard_token(hazard_id: &str) -> Option<String> {
    let (station, number) = hazard_id.rsplit_once(":h:")?;
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (plain(station) && !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{station}_h_{number}"))
}

/// The tracker hazard id of an API token (the inverse of [`hazard_token`]).
pub fn parse_hazard_token(token: &str) -> Option<String> {
    let (station, number) = token.rsplit_once("_h_")?;
    let id = format!("{station}:h:{number}");
    (hazard_token(&id).as_deref() == Some(token)).then_some(id)
}

fn lat_lon(point: GeoPoint) -> LatLon {
    LatLon { lat_deg: point.lat_deg, lon_deg: point.lon_deg }
}

/// A drone as the console shows it; `now` is the clock the link's `last_heard` was taken on.
pub fn drone_state(view: &DroneView, runs: &[MissionRun], now: tokio::time::Instant) -> DroneState {
    let state = view.state.as_ref();
    let mission = runs
        .iter()
        .rev()
        .find(|run| {
            run.drone_id == view.id && matches!(run.state, hazard::MissionState::Running | hazard::MissionState::Paused)
        })
        .map(|run| MissionProgress {
            mission_id: run.mission_id.clone(),
            current_item: run.current_item,
            total_items: run.total_items,
        });
    DroneState {
        id: view.id.clone(),
        name: view.id.clone(),
        autopilot: match state.map(|s| s.autopilot) {
            Some(AutopilotKind::ArduPilot) => Autopilot::Ardupilot,
            Some(AutopilotKind::Px4) => Autopilot::Px4,
            Some(AutopilotKind::Other) | None => Autopilot::Unknown,
        },
        position: state.and_then(|s| s.position).map(|p| lat_lon(p.point)),
        heading_deg: state.and_then(|s| s.heading_deg).unwrap_or(0.0),
        altitude_rel_m: state.and_then(|s| s.position).map_or(0.0, |p| p.relative_alt_m),
        battery_percent: state.and_then(|s| s.battery).and_then(|b| b.remaining_pct).map(f64::from),
        mode: state.map_or_else(|| "UNKNOWN".to_owned(), |s| s.mode_name.clone()),
        armed: state.is_some_and(|s| s.armed),
        link: state.map_or(LinkState::Lost, |s| link_state(&s.link, now)),
        last_heard_unix_ms: view.last_heard.map(unix_ms),
        trail: view.trail.iter().copied().map(lat_lon).collect(),
        mission,
    }
}

/// Lost when the bridge says so; degraded when more than [`DEGRADED_LOSS_RATIO`] of the packets are lost or
/// nothing came for [`DEGRADED_SILENCE`]; else connected.
pub fn link_state(link: &LinkHealth, now: tokio::time::Instant) -> LinkState {
    if !link.connected {
        return LinkState::Lost;
    }
    let silent = link.last_heard.map_or(Duration::MAX, |at| now.saturating_duration_since(at));
    if link.loss_ratio() > DEGRADED_LOSS_RATIO || silent > DEGRADED_SILENCE {
        LinkState::Degraded
    } else {
        LinkState::Connected
    }
}

/// A sortie as the console shows it.
pub fn mission_status(run: &MissionRun) -> MissionStatus {
    MissionStatus {
        mission_id: run.mission_id.clone(),
        drone_id: run.drone_id.clone(),
        route: run.route.iter().copied().map(lat_lon).collect(),
        reached_items: run.current_item,
        state: match run.state {
            hazard::MissionState::Planned => MissionState::Planned,
            hazard::MissionState::Uploaded => MissionState::Uploaded,
            hazard::MissionState::Running => MissionState::Flying,
            hazard::MissionState::Paused => MissionState::Paused,
            hazard::MissionState::Completed | hazard::MissionState::Aborted => MissionState::Done,
        },
    }
}

/// The outer ring of a multipolygon's first polygon, not closed.
fn outer_ring(area: &geo::MultiPolygon<f64>) -> Vec<LatLon> {
    let Some(polygon) = area.0.first() else { return Vec::new() };
    let mut ring: Vec<LatLon> = polygon.exterior().coords().map(|c| LatLon { lat_deg: c.y, lon_deg: c.x }).collect();
    if ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    ring
}

/// A zone's outline: its polygon, or a circle sampled at [`area::CIRCLE_SEGMENTS`] points.
pub fn zone_polygon(shape: &ZoneShape) -> Vec<LatLon> {
    match shape {
        ZoneShape::Polygon(area) => outer_ring(area),
        ZoneShape::Circle { center, radius_m } => {
            let frame = LocalFrame::new(*center);
            (0..area::CIRCLE_SEGMENTS)
                .map(|i| {
                    #[allow(clippy::cast_precision_loss)] // a few dozen points
                    let angle = std::f64::consts::TAU * i as f64 / area::CIRCLE_SEGMENTS as f64;
                    lat_lon(frame.to_geo(LocalPoint::new(radius_m * angle.cos(), radius_m * angle.sin())))
                })
                .collect()
        }
    }
}

/// How much of each cell today's sorties photographed: per cell, the best progress share (reached items over
/// total; 1 for a completed sortie) among the sorties over it that started within [`COVERAGE_WINDOW`].
pub fn coverage_today(runs: &[MissionRun], now: SystemTime) -> BTreeMap<String, f64> {
    let mut coverage: BTreeMap<String, f64> = BTreeMap::new();
    let since = now.checked_sub(COVERAGE_WINDOW).unwrap_or(SystemTime::UNIX_EPOCH);
    for run in runs {
        if run.started.is_none_or(|started| started < since) {
            continue;
        }
        let share = if run.state == hazard::MissionState::Completed {
            1.0
        } else if run.total_items == 0 {
            0.0
        } else {
            f64::from(run.current_item.min(run.total_items)) / f64::from(run.total_items)
        };
        for cell in &run.cells {
            let entry = coverage.entry(cell.clone()).or_default();
            *entry = entry.max(share);
        }
    }
    coverage
}

/// The district as the console shows it.
pub fn district(name: &str, inputs: Option<&PlannerInputs>, coverage: &BTreeMap<String, f64>) -> District {
    let Some(inputs) = inputs else {
        return District {
            name: name.to_owned(),
            cells: Vec::new(),
            no_fly_zones: Vec::new(),
            launch_points: Vec::new(),
            cameras: Vec::new(),
        };
    };
    District {
        name: name.to_owned(),
        cells: inputs
            .cells
            .iter()
            .map(|cell| GridCell {
                id: cell.id.clone(),
                name: cell.name.clone().unwrap_or_else(|| cell.id.clone()),
                polygon: outer_ring(&cell.area),
                coverage_today: coverage.get(&cell.id).copied().unwrap_or(0.0),
            })
            .collect(),
        no_fly_zones: inputs
            .zones
            .iter()
            .map(|zone| NoFlyZone {
                id: zone.id.clone(),
                name: zone.name.clone().unwrap_or_else(|| zone.id.clone()),
                polygon: zone_polygon(&zone.shape),
            })
            .collect(),
        launch_points: inputs
            .launch_points
            .iter()
            .map(|point| LaunchPoint {
                id: point.id.clone(),
                name: point.name.clone().unwrap_or_else(|| point.id.clone()),
                position: lat_lon(point.point),
            })
            .collect(),
        cameras: vec![CameraOption {
            id: PLANNER_CAMERA_ID.to_owned(),
            name: if inputs.camera.name.is_empty() { "Survey camera".to_owned() } else { inputs.camera.name.clone() },
        }],
    }
}

/// A plan as the console shows it: each drone's sorties in flying order.
pub fn plan_summary(plan: &PlannedPatrol) -> PlanSummary {
    let mut routes: Vec<PlannedRoute> = Vec::new();
    for planned in &plan.sorties {
        let sortie = Sortie {
            waypoints: planned.sortie.route.iter().copied().map(lat_lon).collect(),
            distance_m: planned.sortie.distance_m,
            flight_time_s: planned.sortie.flight_time_s,
        };
        match routes.iter_mut().find(|r| r.drone_id == planned.drone_id) {
            Some(route) => route.sorties.push(sortie),
            None => routes.push(PlannedRoute { drone_id: planned.drone_id.clone(), sorties: vec![sortie] }),
        }
    }
    let mut uncovered: Vec<String> = plan.uncovered.iter().map(|u| u.id.clone()).collect();
    uncovered.dedup();
    PlanSummary {
        plan_id: plan.plan_id.clone(),
        altitude_rel_m: plan.altitude_m,
        routes,
        total_flight_time_s: plan.total_flight_time_s,
        uncovered_cell_ids: uncovered,
    }
}

/// A planner failure as the console answers it.
pub fn patrol_error(error: PatrolError) -> BackendError {
    match error {
        PatrolError::NoPlanner | PatrolError::NoDroneAtLaunch { .. } => BackendError::Unavailable(error.to_string()),
        PatrolError::UnknownPlan(_) => BackendError::NotFound(error.to_string()),
        _ => BackendError::Invalid(error.to_string()),
    }
}

fn hazard_service_error(error: HazardServiceError) -> BackendError {
    match error {
        HazardServiceError::Track(TrackError::NotOpen { .. } | TrackError::NotReviewed { .. }) => {
            BackendError::Conflict(format!("{error}; reload the queue"))
        }
        HazardServiceError::Stopped => BackendError::Unavailable(error.to_string()),
        _ => BackendError::Internal(format!("{error:#}")),
    }
}

/// The console's severity of a `[severity]` level: `A` and `B` as they are, any other level as `C` (note).
fn severity(level: &str) -> Severity {
    match level {
        "A" => Severity::A,
        "B" => Severity::B,
        _ => Severity::C,
    }
}

/// The hazard's capture ids, the one of its best picture first.
fn best_first(hazard: &hazard::Hazard) -> Vec<String> {
    let best = hazard
        .image_url
        .as_deref()
        .and_then(|url| url.rsplit('/').next())
        .and_then(parse_evidence_id)
        .map(|(capture, _)| capture.to_owned());
    let mut ids = hazard.capture_ids.clone();
    if let Some(best) = best
        && let Some(index) = ids.iter().position(|id| *id == best)
    {
        let id = ids.remove(index);
        ids.insert(0, id);
    }
    ids
}

/// A tracked hazard as the console shows it; `None` for an id the API cannot carry (see [`hazard_token`]).
pub fn api_hazard(hazard: &hazard::Hazard) -> Option<Hazard> {
    if hazard.tentative {
        return None;
    }
    let Some(id) = hazard_token(&hazard.id) else {
        tracing::warn!(hazard_id = %hazard.id, "Hazard id not of the tracker's form; not shown on the console.");
        return None;
    };
    let kind = match hazard.kind {
        hazard::HazardKind::Fire if hazard.label == "smoke" => HazardKind::Smoke,
        hazard::HazardKind::Fire => HazardKind::Fire,
        hazard::HazardKind::Gas => HazardKind::Gas,
        hazard::HazardKind::Structure => HazardKind::IllegalStructure,
    };
    let has_pictures = hazard.image_url.is_some();
    Some(Hazard {
        id,
        kind,
        label: hazard.label.clone(),
        confidence: hazard.confidence,
        severity: severity(&hazard.severity),
        position: LatLon { lat_deg: hazard.position.lat_deg, lon_deg: hazard.position.lon_deg },
        uncertainty_m: hazard.position.uncertainty_m,
        grid_cell: hazard.grid_cell.clone(),
        address: hazard.address.as_ref().map(|a| a.address.clone()),
        first_seen_unix_ms: unix_ms(hazard.first_seen),
        last_seen_unix_ms: unix_ms(hazard.last_seen),
        drone_id: hazard.drone_ids.first().cloned().unwrap_or_default(),
        mission_id: hazard.mission_ids.first().cloned(),
        evidence_ids: if has_pictures {
            best_first(hazard).iter().map(|capture| evidence_id(capture, None)).collect()
        } else {
            Vec::new()
        },
        status: if hazard.is_open() { HazardStatus::Open } else { HazardStatus::Ended },
        review: match hazard.review {
            hazard::ReviewStatus::Unreviewed => ReviewStatus::Pending,
            hazard::ReviewStatus::Confirmed | hazard::ReviewStatus::Closed => ReviewStatus::Confirmed,
            hazard::ReviewStatus::FalsePositive => ReviewStatus::Rejected,
        },
    })
}

/// One photo of hazard `hazard_id`: the full frame, the crop of its first detection there, and its boxes as
/// fractions of the frame. `None` when the frame was not kept.
pub fn evidence_frame(
    capture: &CaptureRecord,
    detections: &[DetectionRecord],
    hazard_id: &str,
) -> Option<EvidenceFrame> {
    capture.image_path.as_ref()?;
    let pose: serde_json::Value = serde_json::from_str(&capture.pose_json).ok()?;
    let width = pose["width_px"].as_f64().filter(|w| *w > 0.0)?;
    let height = pose["height_px"].as_f64().filter(|h| *h > 0.0)?;
    let ours = |d: &&DetectionRecord| d.hazard_id.as_deref() == Some(hazard_id);
    // Crops are saved one per detection of the capture, in detection order.
    let crop = detections.iter().position(|d| ours(&d));
    let boxes = detections
        .iter()
        .filter(ours)
        .map(|d| {
            let [x_min, y_min, x_max, y_max] = d.box_px;
            EvidenceBox {
                x: x_min / width,
                y: y_min / height,
                width: (x_max - x_min) / width,
                height: (y_max - y_min) / height,
                label: d.label.clone(),
                confidence: d.confidence,
            }
        })
        .collect();
    Some(EvidenceFrame {
        image_id: evidence_id(&capture.id, None),
        crop_id: crop.map(|n| evidence_id(&capture.id, Some(n))),
        captured_unix_ms: unix_ms(capture.taken),
        drone_id: capture.drone_id.clone(),
        boxes,
    })
}

/// The console's verdict as the tracker's (`None` for a skip, which stays in the queue).
fn tracker_verdict(verdict: Verdict) -> Option<hazard::Verdict> {
    match verdict {
        Verdict::Confirm => Some(hazard::Verdict::Confirmed),
        Verdict::Reject => Some(hazard::Verdict::FalsePositive),
        Verdict::Skip => None,
    }
}

#[async_trait::async_trait]
impl ConsoleBackend for StationBackend {
    async fn fleet(&self) -> Result<FleetSnapshot, BackendError> {
        let runs = self.patrols.runs();
        let now = tokio::time::Instant::now();
        Ok(FleetSnapshot {
            at_unix_ms: unix_ms(SystemTime::now()),
            drones: self.fleet.views().iter().map(|view| drone_state(view, &runs, now)).collect(),
            alarms: self.alarms.active().iter().map(api_alarm).collect(),
        })
    }

    async fn district(&self) -> Result<District, BackendError> {
        let coverage = coverage_today(&self.patrols.runs(), SystemTime::now());
        Ok(district(&self.district_name, self.patrols.inputs(), &coverage))
    }

    async fn missions(&self) -> Result<Vec<MissionStatus>, BackendError> {
        Ok(self.patrols.runs().iter().map(mission_status).collect())
    }

    async fn plan(&self, request: PlanRequest) -> Result<PlanSummary, BackendError> {
        if let Some(camera) = &request.camera_id
            && camera != PLANNER_CAMERA_ID
        {
            return Err(BackendError::Invalid(format!(
                "unknown camera `{camera}`: the planner plans for camera `{PLANNER_CAMERA_ID}`"
            )));
        }
        if !(request.gsd_cm_per_px.is_finite() && request.gsd_cm_per_px > 0.0) {
            return Err(BackendError::Invalid("gsd_cm_per_px must be a positive number".to_owned()));
        }
        if request.cell_ids.is_empty() {
            return Err(BackendError::Invalid("pick at least one grid cell".to_owned()));
        }
        let plan = self
            .patrols
            .plan(&request.cell_ids, &request.drone_ids, Some(request.gsd_cm_per_px / 100.0))
            .map_err(patrol_error)?;
        Ok(plan_summary(&plan))
    }

    async fn upload(&self, plan_id: &str) -> Result<Vec<CommandOutcome>, BackendError> {
        let uploads = self.patrols.upload_plan(plan_id).await.map_err(patrol_error)?;
        let outcomes = uploads
            .into_iter()
            .map(|(drone_id, result)| match result {
                Ok(()) => CommandOutcome { drone_id, accepted: true, message: "mission uploaded".to_owned() },
                Err(error) => CommandOutcome { drone_id, accepted: false, message: format!("{error:#}") },
            })
            .collect();
        for run in self.patrols.runs().iter().filter(|run| run.plan_id == plan_id) {
            self.publish(LiveUpdate::Mission(mission_status(run)));
        }
        Ok(outcomes)
    }

    async fn command(&self, request: CommandRequest) -> Result<Vec<CommandOutcome>, BackendError> {
        for id in &request.drone_ids {
            if self.fleet.drone(id).is_none() {
                return Err(BackendError::Invalid(format!("drone `{id}` is not configured")));
            }
        }
        let targets: Vec<String> = if request.drone_ids.is_empty() {
            self.fleet.drones().iter().map(|d| d.id.clone()).collect()
        } else {
            request.drone_ids.clone()
        };
        let commands = targets.into_iter().map(|drone_id| self.command_one(drone_id, &request.command));
        Ok(futures::future::join_all(commands).await)
    }

    async fn hazards(&self, filter: HazardFilter) -> Result<Vec<Hazard>, BackendError> {
        let stored = self
            .storage
            .call(|db| db.recent_hazards(HAZARD_LIST_LIMIT))
            .await
            .map_err(|error| BackendError::Internal(format!("reading the hazards: {error}")))?;
        Ok(stored.iter().filter_map(api_hazard).filter(|hazard| filter.matches(hazard)).collect())
    }

    async fn hazard(&self, id: &str) -> Result<Hazard, BackendError> {
        let not_found = || BackendError::NotFound(format!("hazard {id}"));
        let hazard_id = parse_hazard_token(id).ok_or_else(not_found)?;
        let stored = self
            .storage
            .call(move |db| db.hazard(&hazard_id))
            .await
            .map_err(|error| BackendError::Internal(format!("reading hazard {id}: {error}")))?;
        stored.as_ref().and_then(api_hazard).ok_or_else(not_found)
    }

    async fn evidence_image(&self, id: &str) -> Result<EvidenceImage, BackendError> {
        let not_found = || BackendError::NotFound(format!("image {id}"));
        let (capture, crop) = parse_evidence_id(id).ok_or_else(not_found)?;
        // The router checked `id` to be letters, digits, '-' and '_': the capture id cannot leave the folder.
        let plain = !capture.is_empty() && capture.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plain {
            return Err(not_found());
        }
        let file = match crop {
            None => "frame.jpg".to_owned(),
            Some(n) => format!("crop-{n}.jpg"),
        };
        let path = self.evidence_dir.join(capture).join(file);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(EvidenceImage { content_type: "image/jpeg", bytes }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(not_found()),
            Err(error) => Err(BackendError::Internal(format!("reading {}: {error}", path.display()))),
        }
    }

    async fn claim_next(&self, reviewer: &str, lease: Duration) -> Result<Option<ReviewItem>, BackendError> {
        let open = self.open_hazards().await?;
        let pending: Vec<(Candidate, &hazard::Hazard)> = open
            .iter()
            .filter(|h| h.review == hazard::ReviewStatus::Unreviewed)
            .filter_map(|h| {
                let shown = api_hazard(h)?;
                let candidate = Candidate {
                    hazard_id: shown.id,
                    severity: shown.severity,
                    first_seen_unix_ms: shown.first_seen_unix_ms,
                };
                Some((candidate, h))
            })
            .collect();
        let candidates: Vec<Candidate> = pending.iter().map(|(c, _)| c.clone()).collect();
        let Some(claimed) = self.queue().claim(reviewer, &candidates, lease, SystemTime::now()) else {
            return Ok(None);
        };
        let Some((_, stored)) = pending.iter().find(|(c, _)| c.hazard_id == claimed.hazard_id) else {
            return Err(BackendError::Internal(format!("claimed {} is not pending", claimed.hazard_id)));
        };
        let hazard = api_hazard(stored)
            .ok_or_else(|| BackendError::Internal(format!("claimed {} cannot be shown", claimed.hazard_id)))?;
        let frames = self.evidence_frames(stored).await?;
        Ok(Some(ReviewItem {
            hazard,
            frames,
            lease_expires_unix_ms: unix_ms(claimed.expires),
            remaining: claimed.remaining,
        }))
    }

    async fn verdict(
        &self,
        reviewer: &str,
        hazard_id: &str,
        verdict: Verdict,
        note: Option<String>,
    ) -> Result<ReviewRecord, BackendError> {
        let tracker_id =
            parse_hazard_token(hazard_id).ok_or_else(|| BackendError::NotFound(format!("hazard {hazard_id}")))?;
        self.queue().check_claim(reviewer, hazard_id, SystemTime::now())?;
        if let Some(decided) = tracker_verdict(verdict) {
            let request = ReviewRequest {
                hazard_id: tracker_id,
                verdict: decided,
                reviewer: reviewer.to_owned(),
                comment: note.clone().unwrap_or_default(),
            };
            self.hazards.review(request).await.map_err(hazard_service_error)?;
        }
        let record = ReviewRecord {
            hazard_id: hazard_id.to_owned(),
            reviewer: reviewer.to_owned(),
            verdict,
            note,
            at_unix_ms: unix_ms(SystemTime::now()),
            undone: false,
        };
        self.queue().record(record.clone());
        self.publish(LiveUpdate::Review(record.clone()));
        Ok(record)
    }

    async fn undo(&self, reviewer: &str) -> Result<Option<ReviewRecord>, BackendError> {
        let Some(last) = self.queue().last_verdict(reviewer).cloned() else { return Ok(None) };
        if last.verdict != Verdict::Skip {
            let tracker_id = parse_hazard_token(&last.hazard_id).ok_or_else(|| {
                BackendError::Internal(format!("recorded hazard id {} is not a token", last.hazard_id))
            })?;
            let request = ReviewRequest {
                hazard_id: tracker_id,
                verdict: hazard::Verdict::Reopened,
                reviewer: reviewer.to_owned(),
                comment: String::new(),
            };
            self.hazards.review(request).await.map_err(hazard_service_error)?;
        }
        let Some(record) = self.queue().undo(reviewer, SystemTime::now()) else { return Ok(None) };
        self.publish(LiveUpdate::Review(record.clone()));
        Ok(Some(record))
    }

    fn subscribe(&self) -> broadcast::Receiver<LiveUpdate> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use mission_planner::geo::geodesic_distance_m;

    use super::*;
    use crate::hazard::{Address, EndReason, Position};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn stored_hazard() -> hazard::Hazard {
        hazard::Hazard {
            id: "gs-1:h:7".into(),
            kind: hazard::HazardKind::Fire,
            label: "smoke".into(),
            confidence: 0.8,
            severity: "B".into(),
            position: Position::new(22.5, 113.9, 3.5),
            grid_cell: Some("G1".into()),
            address: Some(Address { building_id: "b1".into(), address: "1 Main St".into(), distance_m: 4.0 }),
            first_seen: at(1_000),
            last_seen: at(9_000),
            detections: 3,
            drone_ids: vec!["d2".into(), "d1".into()],
            mission_ids: vec!["p1-d2-1".into()],
            capture_ids: vec!["c1-0".into(), "c5-1".into(), "c9-2".into()],
            image_url: Some("http://gs/api/evidence/c5-1_frame".into()),
            crop_url: Some("http://gs/api/evidence/c5-1_crop0".into()),
            picture_score: Some(0.3),
            model_sha256: None,
            review: hazard::ReviewStatus::Unreviewed,
            end_reason: None,
            tentative: false,
        }
    }

    fn run(state: hazard::MissionState, current: u32, cells: &[&str], started: Option<SystemTime>) -> MissionRun {
        MissionRun {
            mission_id: "p1-d1-1".into(),
            drone_id: "d1".into(),
            plan_id: "p1".into(),
            route: vec![GeoPoint::new(22.5, 113.9), GeoPoint::new(22.51, 113.9)],
            cells: cells.iter().map(|c| (*c).to_owned()).collect(),
            total_items: 10,
            current_item: current,
            state,
            started,
        }
    }

    #[test]
    fn hazard_ids_become_plain_tokens_and_back() {
        for id in ["gs-1:h:7", "north_h_2:h:12", "a:h:0"] {
            let token = hazard_token(id).unwrap();
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
            assert_eq!(parse_hazard_token(&token).as_deref(), Some(id));
        }
        assert_eq!(hazard_token("gs-1:h:x"), None);
        assert_eq!(hazard_token("../x:h:1"), None);
        assert_eq!(parse_hazard_token("gs-1_h_"), None);
        assert_eq!(parse_hazard_token("h-1"), None);
        assert_eq!(parse_hazard_token("a/b_h_1"), None);
    }

    #[test]
    fn a_stored_hazard_maps_to_the_console_shape() {
        let shown = api_hazard(&stored_hazard()).unwrap();
        assert_eq!(shown.id, "gs-1_h_7");
        assert_eq!(shown.kind, HazardKind::Smoke, "fire-kind label `smoke` is shown as smoke");
        assert_eq!(shown.severity, Severity::B);
        assert_eq!((shown.first_seen_unix_ms, shown.last_seen_unix_ms), (1_000, 9_000));
        assert_eq!(shown.address.as_deref(), Some("1 Main St"));
        assert_eq!(shown.drone_id, "d2");
        assert_eq!(shown.evidence_ids, ["c5-1_frame", "c1-0_frame", "c9-2_frame"], "best picture first");
        assert_eq!((shown.status, shown.review), (HazardStatus::Open, ReviewStatus::Pending));

        let mut other = stored_hazard();
        other.kind = hazard::HazardKind::Structure;
        other.severity = "D".into();
        other.review = hazard::ReviewStatus::FalsePositive;
        other.end_reason = Some(EndReason::Review);
        other.image_url = None;
        let shown = api_hazard(&other).unwrap();
        assert_eq!((shown.kind, shown.severity), (HazardKind::IllegalStructure, Severity::C));
        assert_eq!((shown.status, shown.review), (HazardStatus::Ended, ReviewStatus::Rejected));
        assert!(shown.evidence_ids.is_empty(), "no picture was kept");
        other.kind = hazard::HazardKind::Gas;
        other.review = hazard::ReviewStatus::Closed;
        let shown = api_hazard(&other).unwrap();
        assert_eq!((shown.kind, shown.review), (HazardKind::Gas, ReviewStatus::Confirmed));
    }

    #[test]
    fn link_health_is_connected_degraded_or_lost() {
        let now = tokio::time::Instant::now();
        let healthy = LinkHealth {
            last_heard: Some(now),
            last_heartbeat: Some(now),
            connected: true,
            packets_received: 100,
            packets_lost: 5,
        };
        assert_eq!(link_state(&healthy, now), LinkState::Connected);
        assert_eq!(link_state(&LinkHealth { packets_lost: 30, ..healthy }, now), LinkState::Degraded);
        assert_eq!(link_state(&healthy, now + Duration::from_secs(4)), LinkState::Degraded, "silent for 4 s");
        assert_eq!(link_state(&LinkHealth { connected: false, ..healthy }, now), LinkState::Lost);
    }

    #[test]
    fn a_drone_never_heard_is_lost_and_shows_its_running_sortie() {
        let view = DroneView {
            id: "d1".into(),
            state: None,
            trail: vec![GeoPoint::new(22.5, 113.9)],
            last_heard: Some(at(5_000)),
        };
        let runs =
            [run(hazard::MissionState::Completed, 10, &[], None), run(hazard::MissionState::Running, 4, &[], None)];
        let shown = drone_state(&view, &runs, tokio::time::Instant::now());
        assert_eq!((shown.link, shown.autopilot, shown.position), (LinkState::Lost, Autopilot::Unknown, None));
        assert_eq!(shown.last_heard_unix_ms, Some(5_000));
        assert_eq!(shown.trail, [LatLon { lat_deg: 22.5, lon_deg: 113.9 }]);
        let progress = shown.mission.unwrap();
        assert_eq!((progress.current_item, progress.total_items), (4, 10));
        let idle = drone_state(&view, &runs[..1], tokio::time::Instant::now());
        assert_eq!(idle.mission, None, "a completed sortie is not flown any more");
    }

    #[test]
    fn sortie_states_map_to_the_console_states() {
        for (state, shown) in [
            (hazard::MissionState::Planned, MissionState::Planned),
            (hazard::MissionState::Uploaded, MissionState::Uploaded),
            (hazard::MissionState::Running, MissionState::Flying),
            (hazard::MissionState::Paused, MissionState::Paused),
            (hazard::MissionState::Completed, MissionState::Done),
            (hazard::MissionState::Aborted, MissionState::Done),
        ] {
            let status = mission_status(&run(state, 3, &[], None));
            assert_eq!((status.state, status.reached_items, status.route.len()), (shown, 3, 2));
        }
    }

    #[test]
    fn coverage_counts_todays_sorties_best_progress_per_cell() {
        let now = at(10 * 24 * 3600 * 1000);
        let hour_ago = now - Duration::from_secs(3600);
        let runs = [
            run(hazard::MissionState::Running, 5, &["A", "B"], Some(hour_ago)),
            run(hazard::MissionState::Completed, 7, &["B"], Some(hour_ago)),
            run(hazard::MissionState::Completed, 10, &["C"], Some(now - Duration::from_secs(25 * 3600))),
            run(hazard::MissionState::Uploaded, 0, &["D"], None),
        ];
        let coverage = coverage_today(&runs, now);
        assert_eq!(coverage.get("A"), Some(&0.5));
        assert_eq!(coverage.get("B"), Some(&1.0));
        assert_eq!(coverage.get("C"), None, "flown yesterday");
        assert_eq!(coverage.get("D"), None, "not flown");
    }

    #[test]
    fn circular_zones_are_sampled_on_their_radius() {
        let center = GeoPoint::new(22.5, 113.9);
        let ring = zone_polygon(&ZoneShape::Circle { center, radius_m: 200.0 });
        assert_eq!(ring.len(), area::CIRCLE_SEGMENTS);
        for p in &ring {
            let d = geodesic_distance_m(center, GeoPoint::new(p.lat_deg, p.lon_deg));
            assert!((d - 200.0).abs() < 0.5, "{d}");
        }
        let square = geo::MultiPolygon::new(vec![geo::Polygon::new(
            geo::LineString::from(vec![(113.9, 22.5), (113.91, 22.5), (113.91, 22.51), (113.9, 22.5)]),
            vec![],
        )]);
        let ring = zone_polygon(&ZoneShape::Polygon(square));
        assert_eq!(ring.len(), 3, "not closed");
        assert_eq!(ring[1], LatLon { lat_deg: 22.5, lon_deg: 113.91 });
    }

    #[test]
    fn evidence_frames_carry_this_hazards_boxes_and_crop() {
        let capture = CaptureRecord {
            id: "c5-1".into(),
            drone_id: "d2".into(),
            mission_id: None,
            taken: at(4_000),
            pose_json: r#"{"width_px": 1000.0, "height_px": 500.0}"#.into(),
            image_path: Some("/evidence/c5-1/frame.jpg".into()),
        };
        let detection = |label: &str, hazard: Option<&str>, x: f64| DetectionRecord {
            capture_id: "c5-1".into(),
            label: label.into(),
            confidence: 0.9,
            box_px: [x, 100.0, x + 100.0, 200.0],
            hazard_id: hazard.map(str::to_owned),
        };
        let detections = [detection("fire", Some("gs-1:h:3"), 0.0), detection("smoke", Some("gs-1:h:7"), 500.0)];
        let frame = evidence_frame(&capture, &detections, "gs-1:h:7").unwrap();
        assert_eq!(frame.image_id, "c5-1_frame");
        assert_eq!(frame.crop_id.as_deref(), Some("c5-1_crop1"), "the crop of its own detection");
        assert_eq!((frame.captured_unix_ms, frame.drone_id.as_str()), (4_000, "d2"));
        assert_eq!(frame.boxes.len(), 1);
        let b = &frame.boxes[0];
        assert_eq!((b.x, b.y, b.width, b.height, b.label.as_str()), (0.5, 0.2, 0.1, 0.2, "smoke"));
        let unkept = CaptureRecord { image_path: None, ..capture };
        assert_eq!(evidence_frame(&unkept, &detections, "gs-1:h:7"), None);
    }

    #[test]
    fn planner_failures_map_to_what_the_operator_can_do() {
        assert!(matches!(patrol_error(PatrolError::NoPlanner), BackendError::Unavailable(_)));
        assert!(matches!(
            patrol_error(PatrolError::NoDroneAtLaunch { launch_id: "L".into(), planned: 1 }),
            BackendError::Unavailable(_)
        ));
        assert!(
            matches!(patrol_error(PatrolError::UnknownCell("X".into())), BackendError::Invalid(m) if m.contains("X"))
        );
        assert!(matches!(patrol_error(PatrolError::UnknownPlan("p9".into())), BackendError::NotFound(_)));
        assert_eq!(tracker_verdict(Verdict::Reject), Some(hazard::Verdict::FalsePositive));
        assert_eq!(tracker_verdict(Verdict::Skip), None);
    }
}
