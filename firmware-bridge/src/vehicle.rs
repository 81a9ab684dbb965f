//! Vehicles: one actor per system id owning its state, and the [`VehicleHandle`] to read and command it.
//!
//! The actor (private) decodes telemetry into [`VehicleState`] (on a `watch`), publishes [`VehicleEvent`]s
//! (on the bridge's `broadcast`), runs commands with ACK, retries and timeouts, drives mission transfers, and
//! joins camera captures with poses. The handle's async methods send it typed requests.

mod actor;
mod translate;

use std::time::Duration;

use mission_planner::camera::Attitude;
use mission_planner::geo::GeoPoint;
use mission_planner::mission_item::{MissionItem, MissionKind, cmd};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

pub(crate) use actor::{VehicleActor, VehicleInit};

use crate::capture::Capture;
use crate::error::{CommandError, MissionError};
use crate::mission::{MissionConfig, MissionOutcome};
use crate::mode::{AutopilotKind, FlightMode};

/// What kind of vehicle a HEARTBEAT announces (`MAV_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VehicleType {
    /// Quadcopter.
    Quadrotor,
    /// Hexacopter.
    Hexarotor,
    /// Octocopter.
    Octorotor,
    /// Tricopter.
    Tricopter,
    /// Helicopter.
    Helicopter,
    /// Fixed-wing aircraft.
    FixedWing,
    /// A VTOL type.
    Vtol,
    /// Ground rover.
    GroundRover,
    /// Any other `MAV_TYPE` number.
    Other(u8),
}

/// A global position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// Latitude and longitude.
    pub point: GeoPoint,
    /// Altitude above mean sea level, metres.
    pub alt_msl_m: f64,
    /// Altitude above home, metres.
    pub relative_alt_m: f64,
}

/// Velocity in the local NED frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VelocityNed {
    /// North, m/s.
    pub north_mps: f64,
    /// East, m/s.
    pub east_mps: f64,
    /// Down, m/s.
    pub down_mps: f64,
}

impl VelocityNed {
    /// Horizontal speed, m/s.
    pub fn ground_speed_mps(&self) -> f64 {
        self.north_mps.hypot(self.east_mps)
    }
}

/// GNSS fix type (`GPS_FIX_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GpsFix {
    /// No GPS connected.
    NoGps,
    /// No position.
    NoFix,
    /// 2D fix.
    Fix2d,
    /// 3D fix.
    Fix3d,
    /// DGPS/SBAS-aided 3D fix.
    Dgps,
    /// RTK float.
    RtkFloat,
    /// RTK fixed.
    RtkFixed,
    /// Static fixed (base station).
    Static,
    /// Precise point positioning.
    Ppp,
}

/// GNSS status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpsStatus {
    /// Fix type.
    pub fix: GpsFix,
    /// Satellites visible, when reported.
    pub satellites: Option<u8>,
}

/// Battery status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Battery {
    /// Voltage, volts, when reported.
    pub voltage_v: Option<f64>,
    /// Remaining capacity, percent, when reported.
    pub remaining_pct: Option<u8>,
}

/// Mission progress as the vehicle reports it, in the vehicle's own sequence numbers (on ArduPilot, seq 0 is
/// home and the first uploaded item is seq 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MissionProgress {
    /// `MISSION_CURRENT.seq`.
    pub current_seq: Option<u16>,
    /// The last `MISSION_ITEM_REACHED.seq`.
    pub last_reached_seq: Option<u16>,
}

/// Link health of one vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkHealth {
    /// When its last packet arrived.
    pub last_heard: Option<Instant>,
    /// When its last HEARTBEAT arrived.
    pub last_heartbeat: Option<Instant>,
    /// `false` after the configured silence, until the next heartbeat.
    pub connected: bool,
    /// Packets received from it.
    pub packets_received: u64,
    /// Packets missing according to sequence-number gaps.
    pub packets_lost: u64,
}

impl LinkHealth {
    /// Fraction of packets lost, 0 to 1 (0 before anything was received).
    pub fn loss_ratio(&self) -> f64 {
        let total = self.packets_received + self.packets_lost;
        if total == 0 {
            0.0
        } else {
            #[allow(clippy::cast_precision_loss)]
            let ratio = self.packets_lost as f64 / total as f64;
            ratio
        }
    }
}

/// Everything the bridge knows about one vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleState {
    /// MAVLink system id.
    pub system_id: u8,
    /// Autopilot firmware.
    pub autopilot: AutopilotKind,
    /// Airframe type.
    pub vehicle_type: VehicleType,
    /// Raw `HEARTBEAT.custom_mode`.
    pub custom_mode: u32,
    /// Decoded flight mode.
    pub mode: FlightMode,
    /// The mode's name as the autopilot's tools show it (e.g. "LOITER", "AUTO.MISSION").
    pub mode_name: String,
    /// Motors armed.
    pub armed: bool,
    /// Global position, once reported.
    pub position: Option<Position>,
    /// Velocity, once reported.
    pub velocity: Option<VelocityNed>,
    /// Vehicle attitude, once reported.
    pub attitude: Option<Attitude>,
    /// Heading, degrees clockwise from north.
    pub heading_deg: Option<f64>,
    /// GNSS status.
    pub gps: Option<GpsStatus>,
    /// Battery.
    pub battery: Option<Battery>,
    /// Home position.
    pub home: Option<Position>,
    /// Mission progress.
    pub mission: MissionProgress,
    /// Link health.
    pub link: LinkHealth,
}

impl VehicleState {
    pub(crate) fn new(system_id: u8, autopilot: AutopilotKind, vehicle_type: VehicleType) -> Self {
        Self {
            system_id,
            autopilot,
            vehicle_type,
            custom_mode: 0,
            mode: autopilot.decode_mode(0),
            mode_name: autopilot.mode_name(0),
            armed: false,
            position: None,
            velocity: None,
            attitude: None,
            heading_deg: None,
            gps: None,
            battery: None,
            home: None,
            mission: MissionProgress::default(),
            link: LinkHealth::default(),
        }
    }
}

/// STATUSTEXT severity (`MAV_SEVERITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// System is unusable.
    Emergency,
    /// Action must be taken immediately.
    Alert,
    /// Critical conditions.
    Critical,
    /// Error conditions.
    Error,
    /// Warning conditions.
    Warning,
    /// Normal but significant.
    Notice,
    /// Informational.
    Info,
    /// Debug.
    Debug,
}

/// Something that happened on a vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleEvent {
    /// Which vehicle.
    pub system_id: u8,
    /// What happened.
    pub kind: VehicleEventKind,
}

/// The kinds of [`VehicleEvent`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum VehicleEventKind {
    /// First HEARTBEAT from a new system id.
    Discovered {
        /// Autopilot firmware.
        autopilot: AutopilotKind,
        /// Airframe.
        vehicle_type: VehicleType,
    },
    /// No HEARTBEAT for the configured silence.
    LinkLost {
        /// How long it has been silent.
        silent_for: Duration,
    },
    /// A HEARTBEAT after a link loss.
    LinkRecovered,
    /// The flight mode changed.
    ModeChanged {
        /// The new mode.
        mode: FlightMode,
        /// Its name.
        name: String,
    },
    /// Armed or disarmed.
    ArmedChanged {
        /// The new state.
        armed: bool,
    },
    /// A STATUSTEXT line.
    StatusText {
        /// Severity.
        severity: Severity,
        /// The text.
        text: String,
    },
    /// `MISSION_CURRENT` changed.
    MissionCurrent {
        /// Vehicle sequence number.
        seq: u16,
    },
    /// `MISSION_ITEM_REACHED`.
    MissionItemReached {
        /// Vehicle sequence number.
        seq: u16,
    },
    /// A `NAMED_VALUE_FLOAT` reading, e.g. a `CH4` methane sensor.
    NamedValue {
        /// The value's name (up to 10 characters).
        name: String,
        /// The reading.
        value: f32,
        /// Vehicle boot time of the reading, ms.
        time_boot_ms: u32,
    },
    /// A photo was taken.
    Capture(Box<Capture>),
}

/// A telemetry message the bridge asks the autopilot to stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TelemetryMessage {
    /// `SYS_STATUS` (battery).
    SysStatus,
    /// `GPS_RAW_INT`.
    GpsRawInt,
    /// `ATTITUDE`.
    Attitude,
    /// `GLOBAL_POSITION_INT`.
    GlobalPositionInt,
    /// `MISSION_CURRENT`.
    MissionCurrent,
    /// `VFR_HUD`.
    VfrHud,
    /// `BATTERY_STATUS`.
    BatteryStatus,
    /// `HOME_POSITION`.
    HomePosition,
}

impl TelemetryMessage {
    pub(crate) fn message_id(self) -> u32 {
        match self {
            TelemetryMessage::SysStatus => 1,
            TelemetryMessage::GpsRawInt => 24,
            TelemetryMessage::Attitude => 30,
            TelemetryMessage::GlobalPositionInt => 33,
            TelemetryMessage::MissionCurrent => 42,
            TelemetryMessage::VfrHud => 74,
            TelemetryMessage::BatteryStatus => 147,
            TelemetryMessage::HomePosition => 242,
        }
    }

    /// The ArduPilot stream group (`MAV_DATA_STREAM`) that carries it, for `REQUEST_DATA_STREAM`.
    pub(crate) fn data_stream(self) -> u8 {
        match self {
            TelemetryMessage::SysStatus | TelemetryMessage::GpsRawInt | TelemetryMessage::MissionCurrent => 2,
            TelemetryMessage::GlobalPositionInt | TelemetryMessage::HomePosition => 6,
            TelemetryMessage::Attitude => 10,
            TelemetryMessage::VfrHud => 11,
            TelemetryMessage::BatteryStatus => 12,
        }
    }
}

/// Per-vehicle behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleConfig {
    /// A vehicle is "link lost" after this long without a HEARTBEAT.
    pub link_lost_after: Duration,
    /// How long to wait for a `COMMAND_ACK` before re-sending.
    pub command_timeout: Duration,
    /// How many times a command is sent before giving up.
    pub command_attempts: u32,
    /// How long to keep waiting after an `IN_PROGRESS` ack.
    pub in_progress_timeout: Duration,
    /// Telemetry rates requested when a vehicle is discovered (message, Hz). Empty: request nothing.
    pub telemetry_rates: Vec<(TelemetryMessage, f32)>,
    /// Mission protocol timings.
    pub mission: MissionConfig,
}

impl Default for VehicleConfig {
    fn default() -> Self {
        Self {
            link_lost_after: Duration::from_secs(5),
            command_timeout: Duration::from_millis(1500),
            command_attempts: 3,
            in_progress_timeout: Duration::from_secs(30),
            telemetry_rates: vec![
                (TelemetryMessage::Attitude, 10.0),
                (TelemetryMessage::GlobalPositionInt, 5.0),
                (TelemetryMessage::GpsRawInt, 2.0),
                (TelemetryMessage::SysStatus, 2.0),
                (TelemetryMessage::MissionCurrent, 1.0),
                (TelemetryMessage::VfrHud, 2.0),
                (TelemetryMessage::HomePosition, 0.5),
            ],
            mission: MissionConfig::default(),
        }
    }
}

/// A command for the actor: `COMMAND_LONG`, or `COMMAND_INT` with a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CommandSpec {
    pub(crate) command: u16,
    pub(crate) params: [f32; 7],
    /// `Some`: send as `COMMAND_INT` with this frame and position (params 5 and 6 are ignored).
    pub(crate) int: Option<IntPosition>,
}

/// The frame and position of a `COMMAND_INT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IntPosition {
    pub(crate) frame: u8,
    pub(crate) lat_e7: i32,
    pub(crate) lon_e7: i32,
}

#[derive(Debug)]
pub(crate) enum MissionOp {
    Upload(MissionKind, Vec<MissionItem>),
    Download(MissionKind),
    Clear(MissionKind),
    SetCurrent(u16),
}

#[derive(Debug)]
pub(crate) enum VehicleRequest {
    Command { spec: CommandSpec, reply: oneshot::Sender<Result<(), CommandError>> },
    Mission { op: MissionOp, reply: oneshot::Sender<Result<MissionOutcome, MissionError>> },
}

/// A cloneable handle to one vehicle.
#[derive(Debug, Clone)]
pub struct VehicleHandle {
    system_id: u8,
    requests: mpsc::Sender<VehicleRequest>,
    state: watch::Receiver<VehicleState>,
}

/// `MAV_CMD` numbers the handle sends (beyond the mission ones in `mission_item::cmd`).
mod mav_cmd {
    pub(super) const DO_SET_MODE: u16 = 176;
    pub(super) const DO_REPOSITION: u16 = 192;
    pub(super) const MISSION_START: u16 = 300;
    pub(super) const COMPONENT_ARM_DISARM: u16 = 400;
}

/// `MAV_FRAME_GLOBAL_RELATIVE_ALT_INT`.
const FRAME_GLOBAL_RELATIVE_ALT_INT: u8 = 6;

impl VehicleHandle {
    pub(crate) fn new(
        system_id: u8,
        requests: mpsc::Sender<VehicleRequest>,
        state: watch::Receiver<VehicleState>,
    ) -> Self {
        Self { system_id, requests, state }
    }

    /// MAVLink system id.
    pub fn system_id(&self) -> u8 {
        self.system_id
    }

    /// A copy of the current state.
    pub fn state(&self) -> VehicleState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change (latest wins).
    pub fn watch(&self) -> watch::Receiver<VehicleState> {
        self.state.clone()
    }

    /// Sends any `COMMAND_LONG` and waits for its ACK (retrying on silence; `IN_PROGRESS` extends the wait).
    ///
    /// # Errors
    /// [`CommandError::Refused`] with the autopilot's STATUSTEXT reason, [`CommandError::Timeout`], or
    /// [`CommandError::VehicleGone`]. Cancel safety: dropping the future abandons the wait, not the command.
    pub async fn command_long(&self, command: u16, params: [f32; 7]) -> Result<(), CommandError> {
        self.command(CommandSpec { command, params, int: None }).await
    }

    async fn command(&self, spec: CommandSpec) -> Result<(), CommandError> {
        let (reply, rx) = oneshot::channel();
        self.requests.send(VehicleRequest::Command { spec, reply }).await.map_err(|_| CommandError::VehicleGone)?;
        rx.await.map_err(|_| CommandError::VehicleGone)?
    }

    /// Arms the motors.
    ///
    /// # Errors
    /// As [`VehicleHandle::command_long`]; a refusal carries the pre-arm reason (e.g. "PreArm: EKF attitude
    /// is bad").
    pub async fn arm(&self) -> Result<(), CommandError> {
        self.command_long(mav_cmd::COMPONENT_ARM_DISARM, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]).await
    }

    /// Disarms the motors (refused in flight by most autopilots).
    ///
    /// # Errors
    /// As [`VehicleHandle::command_long`].
    pub async fn disarm(&self) -> Result<(), CommandError> {
        self.command_long(mav_cmd::COMPONENT_ARM_DISARM, [0.0; 7]).await
    }

    /// Switches flight mode with `MAV_CMD_DO_SET_MODE`, using the autopilot's mode table.
    ///
    /// # Errors
    /// [`CommandError::UnsupportedMode`] when the autopilot has no such mode, else as
    /// [`VehicleHandle::command_long`].
    pub async fn set_mode(&self, mode: FlightMode) -> Result<(), CommandError> {
        let autopilot = self.state.borrow().autopilot;
        let p = autopilot.set_mode_params(mode).ok_or(CommandError::UnsupportedMode { autopilot, mode })?;
        self.command_long(mav_cmd::DO_SET_MODE, [p.base_mode, p.custom_mode, p.custom_sub_mode, 0.0, 0.0, 0.0, 0.0])
            .await
    }

    /// Takes off to `relative_alt_m` above home. ArduPilot copters are switched to GUIDED first (they take off
    /// only in GUIDED); PX4 gets the altitude as AMSL (home + relative), as its `NAV_TAKEOFF` expects.
    ///
    /// # Errors
    /// [`CommandError::InvalidArgument`] for a non-positive or non-finite altitude, else as
    /// [`VehicleHandle::command_long`].
    pub async fn takeoff(&self, relative_alt_m: f64) -> Result<(), CommandError> {
        if !(relative_alt_m.is_finite() && relative_alt_m > 0.0) {
            return Err(CommandError::InvalidArgument { reason: format!("takeoff altitude {relative_alt_m} m") });
        }
        let state = self.state();
        let param7 = match state.autopilot {
            AutopilotKind::ArduPilot => {
                if state.mode != FlightMode::Guided {
                    self.set_mode(FlightMode::Guided).await?;
                }
                relative_alt_m
            }
            AutopilotKind::Px4 => match (state.home, state.position) {
                (Some(home), _) => home.alt_msl_m + relative_alt_m,
                (None, Some(p)) => p.alt_msl_m - p.relative_alt_m + relative_alt_m,
                (None, None) => f64::NAN,
            },
            AutopilotKind::Other => relative_alt_m,
        };
        #[allow(clippy::cast_possible_truncation)]
        let param7 = param7 as f32;
        self.command_long(cmd::NAV_TAKEOFF, [0.0, 0.0, 0.0, f32::NAN, f32::NAN, f32::NAN, param7]).await
    }

    /// Starts the uploaded mission from its first item (`MAV_CMD_MISSION_START`; both autopilots switch to
    /// their mission mode).
    ///
    /// # Errors
    /// As [`VehicleHandle::command_long`].
    pub async fn start_mission(&self) -> Result<(), CommandError> {
        self.command_long(mav_cmd::MISSION_START, [0.0; 7]).await
    }

    /// Pauses the mission: hover in place (ArduPilot LOITER, PX4 AUTO.LOITER).
    ///
    /// # Errors
    /// As [`VehicleHandle::set_mode`].
    pub async fn pause(&self) -> Result<(), CommandError> {
        self.set_mode(FlightMode::Loiter).await
    }

    /// Resumes the mission where it was paused (ArduPilot AUTO, PX4 AUTO.MISSION).
    ///
    /// # Errors
    /// As [`VehicleHandle::set_mode`].
    pub async fn resume(&self) -> Result<(), CommandError> {
        self.set_mode(FlightMode::Mission).await
    }

    /// Returns to launch.
    ///
    /// # Errors
    /// As [`VehicleHandle::command_long`].
    pub async fn return_to_launch(&self) -> Result<(), CommandError> {
        self.command_long(cmd::NAV_RETURN_TO_LAUNCH, [0.0; 7]).await
    }

    /// Lands where it is.
    ///
    /// # Errors
    /// As [`VehicleHandle::command_long`].
    pub async fn land(&self) -> Result<(), CommandError> {
        self.command_long(cmd::NAV_LAND, [0.0, 0.0, 0.0, f32::NAN, f32::NAN, f32::NAN, f32::NAN]).await
    }

    /// Flies to `point` at `relative_alt_m` above home (`MAV_CMD_DO_REPOSITION` as `COMMAND_INT`, asking the
    /// autopilot to switch to its guided mode).
    ///
    /// # Errors
    /// [`CommandError::InvalidArgument`] for an invalid point or altitude, else as
    /// [`VehicleHandle::command_long`].
    pub async fn goto(&self, point: GeoPoint, relative_alt_m: f64) -> Result<(), CommandError> {
        if !point.is_valid() || !relative_alt_m.is_finite() {
            return Err(CommandError::InvalidArgument { reason: format!("go to {point:?} at {relative_alt_m} m") });
        }
        #[allow(clippy::cast_possible_truncation)]
        let params = [
            -1.0,
            1.0, // MAV_DO_REPOSITION_FLAGS_CHANGE_MODE
            0.0,
            f32::NAN,
            0.0,
            0.0,
            relative_alt_m as f32,
        ];
        // COMMAND_INT keeps full position precision: degrees * 1e7.
        let int = IntPosition { frame: FRAME_GLOBAL_RELATIVE_ALT_INT, lat_e7: point.lat_e7(), lon_e7: point.lon_e7() };
        self.command(CommandSpec { command: mav_cmd::DO_REPOSITION, params, int: Some(int) }).await
    }

    async fn mission(&self, op: MissionOp) -> Result<MissionOutcome, MissionError> {
        let (reply, rx) = oneshot::channel();
        self.requests.send(VehicleRequest::Mission { op, reply }).await.map_err(|_| MissionError::VehicleGone)?;
        rx.await.map_err(|_| MissionError::VehicleGone)?
    }

    /// Uploads `items` to the `kind` list, replacing it.
    ///
    /// ArduPilot keeps home at mission seq 0 and overwrites it: for an ArduPilot `Mission` upload the bridge
    /// prepends a home placeholder (the known home position, else zeros), so `items[0]` becomes seq 1. Fence and
    /// rally lists, and PX4 missions, are sent as given.
    ///
    /// # Errors
    /// [`MissionError`]: a rejection names the `MISSION_ACK` error and how many items were sent; a timeout
    /// names the stage.
    pub async fn upload(&self, kind: MissionKind, items: Vec<MissionItem>) -> Result<(), MissionError> {
        self.mission(MissionOp::Upload(kind, items)).await.map(|_| ())
    }

    /// Downloads the `kind` list. For an ArduPilot `Mission` the home item (seq 0) is stripped, so the result
    /// compares equal to what [`VehicleHandle::upload`] was given.
    ///
    /// # Errors
    /// As [`VehicleHandle::upload`].
    pub async fn download(&self, kind: MissionKind) -> Result<Vec<MissionItem>, MissionError> {
        match self.mission(MissionOp::Download(kind)).await? {
            MissionOutcome::Downloaded(items) => Ok(items),
            _ => Ok(Vec::new()),
        }
    }

    /// Clears the `kind` list.
    ///
    /// # Errors
    /// As [`VehicleHandle::upload`].
    pub async fn clear(&self, kind: MissionKind) -> Result<(), MissionError> {
        self.mission(MissionOp::Clear(kind)).await.map(|_| ())
    }

    /// Makes the vehicle fly mission item `seq` (vehicle sequence numbers: on ArduPilot the first uploaded item
    /// is seq 1) next.
    ///
    /// # Errors
    /// As [`VehicleHandle::upload`].
    pub async fn set_current(&self, seq: u16) -> Result<(), MissionError> {
        self.mission(MissionOp::SetCurrent(seq)).await.map(|_| ())
    }
}

/// Autopilot kind and airframe from a HEARTBEAT.
pub(crate) fn translate_heartbeat(
    hb: &mavlink::dialects::ardupilotmega::HEARTBEAT_DATA,
) -> (AutopilotKind, VehicleType) {
    (translate::autopilot(hb.autopilot), translate::vehicle_type(hb.mavtype as u8))
}

/// The default request-channel capacity per vehicle: commands are few; a full queue makes callers wait.
pub(crate) const REQUEST_CAPACITY: usize = 16;

/// Deadline helper shared by the actor.
pub(crate) fn min_deadline(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
