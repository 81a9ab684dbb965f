//! The console's API types: what the HTTP endpoints and the live WebSocket carry. Positions are WGS84 degrees;
//! times are Unix milliseconds; units are in the field names.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Role, UserInfo};

/// A WGS84 position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatLon {
    /// Latitude, degrees north.
    pub lat_deg: f64,
    /// Longitude, degrees east.
    pub lon_deg: f64,
}

/// Which autopilot firmware a drone runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Autopilot {
    /// ArduPilot (ArduCopter).
    Ardupilot,
    /// PX4.
    Px4,
    /// Not identified yet.
    Unknown,
}

/// How healthy a drone's MAVLink link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Heartbeats arriving.
    Connected,
    /// Heartbeats late.
    Degraded,
    /// No heartbeat past the link-loss threshold: everything shown is stale.
    Lost,
}

/// A drone's progress through its uploaded mission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MissionProgress {
    /// The mission (plan) id.
    pub mission_id: String,
    /// Index of the waypoint being flown to.
    pub current_item: u32,
    /// Waypoints in the mission.
    pub total_items: u32,
}

/// One drone as last heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DroneState {
    /// Stable id from the config.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Autopilot firmware.
    pub autopilot: Autopilot,
    /// Position, when known.
    pub position: Option<LatLon>,
    /// Heading, degrees clockwise from true north.
    pub heading_deg: f64,
    /// Altitude above the home position, metres.
    pub altitude_rel_m: f64,
    /// Remaining battery, percent, when reported.
    pub battery_percent: Option<f64>,
    /// Flight mode name as the autopilot reports it (e.g. `GUIDED`, `AUTO`, `RTL`).
    pub mode: String,
    /// Motors armed.
    pub armed: bool,
    /// Link health.
    pub link: LinkState,
    /// Last message from the drone (Unix ms), when any.
    pub last_heard_unix_ms: Option<i64>,
    /// Recent positions, oldest first.
    pub trail: Vec<LatLon>,
    /// The mission being flown, when any.
    pub mission: Option<MissionProgress>,
}

/// The whole fleet at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FleetSnapshot {
    /// When the snapshot was taken (Unix ms).
    pub at_unix_ms: i64,
    /// Every configured drone.
    pub drones: Vec<DroneState>,
    /// Station alarms raised now (empty when all is well).
    pub alarms: Vec<Alarm>,
}

/// A station fault an operator must act on (the MQTT `<prefix>/alarms/<alarm>` payload, for the console).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Alarm {
    /// Which alarm (`evidence_storage`): the console shows its translated title.
    pub alarm: String,
    /// Raised (`true`) or cleared.
    pub active: bool,
    /// What happened and what to do, in English.
    pub message: String,
    /// When it took this state (Unix ms).
    pub at_unix_ms: i64,
}

/// One patrol grid cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GridCell {
    /// Cell id (the district's grid code).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Outer ring, WGS84, not closed (the last vertex is not repeated).
    pub polygon: Vec<LatLon>,
    /// Share of the cell photographed today, 0 to 1.
    pub coverage_today: f64,
}

/// A no-fly zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoFlyZone {
    /// Zone id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Outer ring, WGS84, not closed.
    pub polygon: Vec<LatLon>,
}

/// A place drones take off from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LaunchPoint {
    /// Launch point id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where it is.
    pub position: LatLon,
}

/// A camera the planner can plan for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CameraOption {
    /// Camera id from the config.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// The patrol district: its grid, no-fly zones, launch points and the cameras the planner knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct District {
    /// District name.
    pub name: String,
    /// Grid cells.
    pub cells: Vec<GridCell>,
    /// No-fly zones.
    pub no_fly_zones: Vec<NoFlyZone>,
    /// Launch points.
    pub launch_points: Vec<LaunchPoint>,
    /// Cameras for planning.
    pub cameras: Vec<CameraOption>,
}

/// A request to plan a patrol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// Cells to cover.
    pub cell_ids: Vec<String>,
    /// Drones to fly (empty: every connected drone).
    #[serde(default)]
    pub drone_ids: Vec<String>,
    /// Camera id (none: each drone's configured camera).
    #[serde(default)]
    pub camera_id: Option<String>,
    /// Wanted ground sample distance, centimetres per pixel.
    pub gsd_cm_per_px: f64,
}

/// One flight: take off, fly the waypoints, land.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sortie {
    /// Waypoints in order.
    pub waypoints: Vec<LatLon>,
    /// Path length, metres.
    pub distance_m: f64,
    /// Estimated flight time, seconds.
    pub flight_time_s: f64,
}

/// What one drone flies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlannedRoute {
    /// The drone.
    pub drone_id: String,
    /// Its sorties in order (one per battery).
    pub sorties: Vec<Sortie>,
}

/// A computed plan, ready to upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanSummary {
    /// Id to upload it by.
    pub plan_id: String,
    /// Flight altitude for the requested GSD, metres above launch.
    pub altitude_rel_m: f64,
    /// Per-drone routes.
    pub routes: Vec<PlannedRoute>,
    /// Total flight time over all sorties, seconds.
    pub total_flight_time_s: f64,
    /// Requested cells the plan cannot cover (no-fly zones, range), with none meaning full coverage.
    pub uncovered_cell_ids: Vec<String>,
}

/// A command for one or more drones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum VehicleCommand {
    /// Arm the motors.
    Arm,
    /// Take off to an altitude above launch.
    Takeoff {
        /// Target altitude, metres above launch.
        altitude_rel_m: f64,
    },
    /// Start (or restart) the uploaded mission.
    Start,
    /// Hold position.
    Pause,
    /// Continue the mission.
    Resume,
    /// Return to launch.
    Rtl,
    /// Land where it is.
    Land,
}

/// A command and whom it is for, e.g. `{"command": "takeoff", "altitude_rel_m": 30, "drone_ids": ["d1"]}`.
// No `deny_unknown_fields`: serde does not support it together with `flatten`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandRequest {
    /// The command.
    #[serde(flatten)]
    pub command: VehicleCommand,
    /// Target drones; empty means every drone.
    #[serde(default)]
    pub drone_ids: Vec<String>,
}

/// The autopilot's answer for one drone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandOutcome {
    /// The drone.
    pub drone_id: String,
    /// Whether the autopilot accepted.
    pub accepted: bool,
    /// Its answer, e.g. the refusal reason (`PreArm: Battery below minimum`).
    pub message: String,
}

/// Where a mission is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MissionState {
    /// Planned, not uploaded.
    Planned,
    /// On the drone, not started.
    Uploaded,
    /// Being flown.
    Flying,
    /// Holding.
    Paused,
    /// Finished or aborted.
    Done,
}

/// A mission on the map: the route and how far along it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MissionStatus {
    /// The plan id.
    pub mission_id: String,
    /// The drone flying it.
    pub drone_id: String,
    /// The route (all sorties joined).
    pub route: Vec<LatLon>,
    /// Waypoints reached.
    pub reached_items: u32,
    /// Where it is in its life.
    pub state: MissionState,
}

/// What was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HazardKind {
    /// Open fire.
    Fire,
    /// Smoke.
    Smoke,
    /// Gas leak (methane sensor).
    Gas,
    /// Illegal structure.
    IllegalStructure,
}

/// How urgent a hazard is: `A` is the district's key-event level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub enum Severity {
    /// Key event: act now.
    A,
    /// Act today.
    B,
    /// Note.
    C,
}

/// Whether the hazard is still being observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HazardStatus {
    /// Still tracked.
    Open,
    /// Ended (not seen again, or closed by review).
    Ended,
}

/// The human verdict so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewStatus {
    /// Waiting for a reviewer.
    Pending,
    /// Confirmed real.
    Confirmed,
    /// Rejected as a false alarm.
    Rejected,
}

/// A tracked hazard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Hazard {
    /// Stable id.
    pub id: String,
    /// Kind.
    pub kind: HazardKind,
    /// Detector label.
    pub label: String,
    /// Best confidence, 0 to 1.
    pub confidence: f64,
    /// Severity.
    pub severity: Severity,
    /// Estimated position.
    pub position: LatLon,
    /// Position uncertainty radius, metres.
    pub uncertainty_m: f64,
    /// Grid cell it lies in.
    pub grid_cell: Option<String>,
    /// Nearest registered address.
    pub address: Option<String>,
    /// First seen (Unix ms).
    pub first_seen_unix_ms: i64,
    /// Last seen (Unix ms).
    pub last_seen_unix_ms: i64,
    /// Drone that saw it best.
    pub drone_id: String,
    /// Mission it was seen on.
    pub mission_id: Option<String>,
    /// Evidence image ids (fetch with `/api/evidence/{id}`), best first.
    pub evidence_ids: Vec<String>,
    /// Tracking status.
    pub status: HazardStatus,
    /// Review status.
    pub review: ReviewStatus,
}

/// Filters for the hazard list; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HazardFilter {
    /// Only this kind.
    pub kind: Option<HazardKind>,
    /// Only this tracking status.
    pub status: Option<HazardStatus>,
    /// Only this review status.
    pub review: Option<ReviewStatus>,
    /// Only this grid cell.
    pub grid_cell: Option<String>,
    /// Last seen at or after (Unix ms).
    pub since_unix_ms: Option<i64>,
    /// First seen before (Unix ms).
    pub until_unix_ms: Option<i64>,
    /// At least this severe (`A` only A; `B` A and B).
    pub min_severity: Option<Severity>,
}

impl HazardFilter {
    /// Whether `hazard` passes every set filter.
    pub fn matches(&self, hazard: &Hazard) -> bool {
        self.kind.is_none_or(|k| k == hazard.kind)
            && self.status.is_none_or(|s| s == hazard.status)
            && self.review.is_none_or(|r| r == hazard.review)
            && self.grid_cell.as_ref().is_none_or(|c| hazard.grid_cell.as_ref() == Some(c))
            && self.since_unix_ms.is_none_or(|t| hazard.last_seen_unix_ms >= t)
            && self.until_unix_ms.is_none_or(|t| hazard.first_seen_unix_ms < t)
            && self.min_severity.is_none_or(|s| hazard.severity <= s)
    }
}

/// A detection box on an evidence image, in fractions of the image size (0 to 1, origin top left).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// Label.
    pub label: String,
    /// Confidence, 0 to 1.
    pub confidence: f64,
}

/// One photo of a hazard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceFrame {
    /// Image id (`/api/evidence/{id}`).
    pub image_id: String,
    /// Zoomed crop id, when stored.
    pub crop_id: Option<String>,
    /// Capture time (Unix ms).
    pub captured_unix_ms: i64,
    /// The drone that took it.
    pub drone_id: String,
    /// Boxes on the full image.
    pub boxes: Vec<EvidenceBox>,
}

/// An item claimed from the review queue: the hazard, its photos and the lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewItem {
    /// The hazard.
    pub hazard: Hazard,
    /// Photos, best first.
    pub frames: Vec<EvidenceFrame>,
    /// The claim lapses at this time (Unix ms) unless a verdict arrives.
    pub lease_expires_unix_ms: i64,
    /// Items still pending after this one.
    pub remaining: u32,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Real hazard.
    Confirm,
    /// False alarm.
    Reject,
    /// Not sure: put it back for someone else.
    Skip,
}

/// A verdict as posted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerdictRequest {
    /// The decision.
    pub verdict: Verdict,
    /// Optional note (at most 2000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// A stored verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewRecord {
    /// The hazard.
    pub hazard_id: String,
    /// Who decided.
    pub reviewer: String,
    /// The decision.
    pub verdict: Verdict,
    /// The note.
    pub note: Option<String>,
    /// When (Unix ms).
    pub at_unix_ms: i64,
    /// Whether this record was later undone.
    pub undone: bool,
}

/// A change pushed on the live WebSocket (`/api/live`), one JSON object per message with a `type` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveUpdate {
    /// A drone's new state.
    Drone(DroneState),
    /// A mission's new status.
    Mission(MissionStatus),
    /// A hazard appeared or changed.
    Hazard(Hazard),
    /// A verdict was stored or undone.
    Review(ReviewRecord),
    /// A station alarm was raised or cleared.
    Alarm(Alarm),
    /// Updates were dropped (the client was too slow): reload everything.
    Resync,
}

/// Login form.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Base map settings for the page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MapSettings {
    /// XYZ tile URL template (`{z}/{x}/{y}`), none for a plain background.
    pub tile_url: Option<String>,
    /// Attribution shown for the tiles.
    pub tile_attribution: Option<String>,
    /// The tiles use GCJ-02 (Chinese web maps): overlays are shifted at display time only.
    pub tiles_gcj02: bool,
}

/// Who is logged in, with the token for state-changing requests and the page settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionInfo {
    /// User name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Send this in `X-CSRF-Token` on every POST, PUT and DELETE.
    pub csrf_token: String,
    /// Base map settings.
    pub map: MapSettings,
}

/// A new user.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// Login name.
    pub username: String,
    /// Initial password.
    pub password: String,
    /// Role.
    pub role: Role,
}

impl std::fmt::Debug for NewUserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUserRequest").field("username", &self.username).field("role", &self.role).finish()
    }
}

/// The user list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserList {
    /// Users by name.
    pub users: Vec<UserInfo>,
}
