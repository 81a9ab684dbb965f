//! The flight logic of one simulated drone: modes, arming, commands, AUTO missions, failsafes, telemetry streams
//! and camera triggers, with ArduPilot or PX4 manners. Sans-IO: MAVLink messages and clock ticks in, MAVLink
//! messages and capture jobs out; [`super::drone`] does the sockets.

// Real autopilots still use SET_MODE, REQUEST_DATA_STREAM, MISSION_REQUEST and friends; the sim must too.
#![allow(deprecated)]

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use mavlink::dialects::ardupilotmega::{
    ATTITUDE_DATA, AUTOPILOT_VERSION_DATA, BATTERY_STATUS_DATA, CAMERA_FEEDBACK_DATA, CAMERA_IMAGE_CAPTURED_DATA,
    CAMERA_TRIGGER_DATA, COMMAND_ACK_DATA, CameraFeedbackFlags, EXTENDED_SYS_STATE_DATA, GLOBAL_POSITION_INT_DATA,
    GPS_RAW_INT_DATA, GpsFixType, HEARTBEAT_DATA, HOME_POSITION_DATA, MISSION_CURRENT_DATA, MISSION_ITEM_INT_DATA,
    MISSION_ITEM_REACHED_DATA, MavAutopilot, MavBatteryFunction, MavBatteryType, MavBool, MavCmd, MavFrame,
    MavLandedState, MavMessage, MavModeFlag, MavProtocolCapability, MavResult, MavSeverity, MavState,
    MavSysStatusSensor, MavType, MissionState, NAMED_VALUE_FLOAT_DATA, STATUSTEXT_DATA, SYS_STATUS_DATA, VFR_HUD_DATA,
};
use mavlink::{MavHeader, Message};
use mission_planner::camera::{Attitude, CameraPose, Intrinsics};
use mission_planner::geo::{GeoPoint, LocalFrame, LocalPoint};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Personality;
use super::camera::CameraConfig;
use super::fence::Fence;
use super::gas::LocalGas;
use super::kinematics::{Battery, Body, GpsNoise, Setpoint, VehicleParams};
use super::mission_store::{ListKind, MissionStore, ProtocolTimings, StoreEvent, is_global};
use crate::mode::FlightMode;

/// Component id of the autopilot.
pub(crate) const AUTOPILOT_COMPONENT: u8 = 1;
/// Component id of the camera (`MAV_COMP_ID_CAMERA`).
pub(crate) const CAMERA_COMPONENT: u8 = 100;

/// Message ids of the streams.
const ID_HEARTBEAT: u32 = 0;
const ID_SYS_STATUS: u32 = 1;
const ID_GPS_RAW_INT: u32 = 24;
const ID_ATTITUDE: u32 = 30;
const ID_GLOBAL_POSITION_INT: u32 = 33;
const ID_MISSION_CURRENT: u32 = 42;
const ID_VFR_HUD: u32 = 74;
const ID_AUTOPILOT_VERSION: u32 = 148;
const ID_BATTERY_STATUS: u32 = 147;
const ID_HOME_POSITION: u32 = 242;
const ID_EXTENDED_SYS_STATE: u32 = 245;
const ID_NAMED_VALUE_FLOAT: u32 = 251;
const ID_CAMERA_IMAGE_CAPTURED: u32 = 263;

/// Default stream intervals (sim seconds) once streaming is on.
const DEFAULT_STREAMS: [(u32, f64); 10] = [
    (ID_SYS_STATUS, 1.0),
    (ID_GPS_RAW_INT, 0.5),
    (ID_ATTITUDE, 0.1),
    (ID_GLOBAL_POSITION_INT, 0.2),
    (ID_MISSION_CURRENT, 1.0),
    (ID_VFR_HUD, 0.25),
    (ID_BATTERY_STATUS, 1.0),
    (ID_HOME_POSITION, 2.0),
    (ID_EXTENDED_SYS_STATE, 1.0),
    // The methane sensor's NAMED_VALUE_FLOAT "CH4" at 2 Hz.
    (ID_NAMED_VALUE_FLOAT, 0.5),
];

/// Acceptance radius of a waypoint without one of its own.
const DEFAULT_ACCEPT_RADIUS_M: f64 = 2.0;
/// Height below which a landing slows to the land speed.
const LAND_SLOW_BELOW_M: f64 = 10.0;
/// Armed on the ground with nothing to do for this long: the autopilot disarms (ArduPilot DISARM_DELAY, PX4
/// COM_DISARM_PRFLT).
const AUTO_DISARM_S: f64 = 10.0;
/// Capture records kept for `REQUEST_MESSAGE` re-sends.
const CAPTURES_KEPT: usize = 256;
/// `COMPONENT_ARM_DISARM` param2 that forces.
const FORCE_MAGIC: f32 = 21196.0;

/// One message to send, from which component.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outgoing {
    pub(crate) component_id: u8,
    pub(crate) message: MavMessage,
}

/// A photo to render: where the camera was and how it pointed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaptureJob {
    pub(crate) image_index: i32,
    pub(crate) pose: CameraPose,
    /// The CAMERA_IMAGE_CAPTURED to send once the image is stored (file_url filled in by the caller).
    pub(crate) announce: CAMERA_IMAGE_CAPTURED_DATA,
}

/// Everything an autopilot is built from.
#[derive(Debug, Clone)]
pub(crate) struct AutopilotConfig {
    pub(crate) system_id: u8,
    pub(crate) personality: Personality,
    pub(crate) home: GeoPoint,
    pub(crate) home_amsl_m: f64,
    pub(crate) vehicle: VehicleParams,
    pub(crate) camera: CameraConfig,
    pub(crate) intrinsics: Intrinsics,
    pub(crate) seed: u64,
    pub(crate) timings: ProtocolTimings,
    pub(crate) gas: LocalGas,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Stream {
    interval_s: f64,
    next_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RtlPhase {
    Climb,
    Return,
    Descend,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ItemPhase {
    /// Flying to the item.
    Going,
    /// Arrived; waiting until this sim time before the next item.
    Holding { until_s: f64 },
    /// Loiter forever.
    Parked,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Trigger {
    distance_m: Option<f64>,
    last_spot: Option<LocalPoint>,
    interval_s: Option<f64>,
    next_s: f64,
    remaining: Option<u32>,
    last_capture_s: f64,
}

/// The simulated autopilot.
#[derive(Debug)]
pub(crate) struct Autopilot {
    cfg: AutopilotConfig,
    frame: LocalFrame,
    body: Body,
    battery: Battery,
    gps: GpsNoise,
    rng: ChaCha8Rng,
    sim_s: f64,
    armed: bool,
    airborne: bool,
    landing: bool,
    mode: FlightMode,
    hold: Setpoint,
    takeoff_alt_m: Option<f64>,
    rtl: RtlPhase,
    rtl_alt_m: f64,
    store: MissionStore,
    fence: Fence,
    fence_breached: bool,
    battery_failsafe: bool,
    mission_current: u16,
    item_phase: ItemPhase,
    mission_done: bool,
    speed_mps: f64,
    trigger: Trigger,
    image_index: i32,
    captures: VecDeque<CAMERA_IMAGE_CAPTURED_DATA>,
    streams: HashMap<u32, Stream>,
    idle_on_ground_s: f64,
    out: Vec<Outgoing>,
    jobs: Vec<CaptureJob>,
    last_reported_current: Option<u16>,
}

fn statustext(severity: MavSeverity, text: &str) -> MavMessage {
    let mut bytes = [0u8; 50];
    for (slot, byte) in bytes.iter_mut().zip(text.bytes()) {
        *slot = byte;
    }
    MavMessage::STATUSTEXT(STATUSTEXT_DATA { severity, text: bytes.into(), ..Default::default() })
}

/// Metres to millimetres, saturating.
#[allow(clippy::cast_possible_truncation)]
fn mm(m: f64) -> i32 {
    (m * 1000.0).round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

/// Metres per second to centimetres per second, saturating.
#[allow(clippy::cast_possible_truncation)]
fn cms(mps: f64) -> i16 {
    (mps * 100.0).round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

/// Whether a mission command is a navigation command (reported with MISSION_ITEM_REACHED).
fn is_nav(command: MavCmd) -> bool {
    (command as u32) < 100
}

impl Autopilot {
    pub(crate) fn new(cfg: AutopilotConfig) -> Self {
        let px4 = cfg.personality == Personality::Px4;
        let streams = if px4 {
            let mut s: HashMap<u32, Stream> =
                DEFAULT_STREAMS.iter().map(|&(id, interval_s)| (id, Stream { interval_s, next_s: 0.0 })).collect();
            s.insert(ID_HEARTBEAT, Stream { interval_s: 1.0, next_s: 0.0 });
            s
        } else {
            // A real ArduPilot sends only these two until a GCS asks for rates.
            [(ID_HEARTBEAT, 1.0), (ID_SYS_STATUS, 1.0)]
                .iter()
                .map(|&(id, interval_s)| (id, Stream { interval_s, next_s: 0.0 }))
                .collect()
        };
        let store = MissionStore::new(px4, !px4, cfg.timings);
        let speed_mps = cfg.vehicle.cruise_speed_mps;
        Self {
            frame: LocalFrame::new(cfg.home),
            body: Body::default(),
            battery: Battery::default(),
            gps: GpsNoise::default(),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            sim_s: 0.0,
            armed: false,
            airborne: false,
            landing: false,
            mode: if px4 { FlightMode::Loiter } else { FlightMode::Manual },
            hold: Setpoint { east_m: 0.0, north_m: 0.0, up_m: 0.0, speed_mps, descent_mps: 1.0 },
            takeoff_alt_m: None,
            rtl: RtlPhase::Climb,
            rtl_alt_m: 15.0,
            store,
            fence: Fence::default(),
            fence_breached: false,
            battery_failsafe: false,
            mission_current: if px4 { 0 } else { 1 },
            item_phase: ItemPhase::Going,
            mission_done: false,
            speed_mps,
            trigger: Trigger {
                distance_m: None,
                last_spot: None,
                interval_s: None,
                next_s: 0.0,
                remaining: None,
                last_capture_s: f64::NEG_INFINITY,
            },
            image_index: -1,
            captures: VecDeque::new(),
            streams,
            idle_on_ground_s: 0.0,
            out: Vec::new(),
            jobs: Vec::new(),
            last_reported_current: None,
            cfg,
        }
    }

    fn px4(&self) -> bool {
        self.cfg.personality == Personality::Px4
    }

    fn send(&mut self, message: MavMessage) {
        self.out.push(Outgoing { component_id: AUTOPILOT_COMPONENT, message });
    }

    fn text(&mut self, severity: MavSeverity, text: &str) {
        self.send(statustext(severity, text));
    }

    /// Messages and capture jobs produced since the last call.
    pub(crate) fn take_output(&mut self) -> (Vec<Outgoing>, Vec<CaptureJob>) {
        (std::mem::take(&mut self.out), std::mem::take(&mut self.jobs))
    }

    /// Sim seconds since boot.
    pub(crate) fn sim_time_s(&self) -> f64 {
        self.sim_s
    }

    fn time_boot_ms(&self) -> u32 {
        // Saturates after 49 days of sim time.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ms = (self.sim_s * 1000.0).min(f64::from(u32::MAX)) as u32;
        ms
    }

    fn position_ready(&self) -> bool {
        self.sim_s >= self.cfg.vehicle.position_estimate_after.as_secs_f64()
    }

    fn position(&self) -> GeoPoint {
        self.frame.to_geo(LocalPoint::new(self.body.east_m, self.body.north_m))
    }

    fn reported_position(&self) -> (GeoPoint, f64) {
        let (e, n, u) = self.gps.offset_m();
        (self.frame.to_geo(LocalPoint::new(self.body.east_m + e, self.body.north_m + n)), self.body.up_m + u)
    }

    fn here(&self) -> Setpoint {
        Setpoint {
            east_m: self.body.east_m,
            north_m: self.body.north_m,
            up_m: self.body.up_m,
            speed_mps: self.speed_mps,
            descent_mps: self.cfg.vehicle.descent_rate_mps,
        }
    }

    fn home_item(&self) -> MISSION_ITEM_INT_DATA {
        #[allow(clippy::cast_possible_truncation)]
        let z = self.cfg.home_amsl_m as f32;
        MISSION_ITEM_INT_DATA {
            x: self.cfg.home.lat_e7(),
            y: self.cfg.home.lon_e7(),
            z,
            command: MavCmd::MAV_CMD_NAV_WAYPOINT,
            frame: MavFrame::MAV_FRAME_GLOBAL,
            autocontinue: 1,
            ..Default::default()
        }
    }

    // ---------------------------------------------------------------- incoming

    /// Handles one message from the link at wall time `wall`.
    pub(crate) fn handle(&mut self, header: &MavHeader, msg: &MavMessage, wall: Duration) {
        if let Some(target) = msg.target_system_id()
            && target != 0
            && target != self.cfg.system_id
        {
            return;
        }
        // 32-bit system ids (a MAVLink 2 extension) cannot be answered with our u8 targets.
        let Ok(sender) = u8::try_from(header.system_id) else { return };
        let partner = (sender, header.component_id);
        match msg {
            MavMessage::COMMAND_LONG(c) => {
                let cmd = Command {
                    command: c.command,
                    params: [c.param1, c.param2, c.param3, c.param4, c.param5, c.param6, c.param7],
                    int_position: None,
                };
                let result = self.command(&cmd);
                self.ack(c.command, result, partner);
            }
            MavMessage::COMMAND_INT(c) => {
                #[allow(clippy::cast_precision_loss)]
                let cmd = Command {
                    command: c.command,
                    params: [c.param1, c.param2, c.param3, c.param4, c.x as f32, c.y as f32, c.z],
                    int_position: Some((c.x, c.y, c.frame)),
                };
                let result = self.command(&cmd);
                self.ack(c.command, result, partner);
            }
            MavMessage::SET_MODE(m) => {
                let mode = self.cfg.personality.kind().decode_mode(m.custom_mode);
                if let Err(reason) = self.set_mode(mode) {
                    self.text(MavSeverity::MAV_SEVERITY_WARNING, reason);
                }
            }
            MavMessage::REQUEST_DATA_STREAM(r) => {
                self.request_data_stream(r.req_stream_id as u32, r.req_message_rate, r.start_stop)
            }
            MavMessage::SET_POSITION_TARGET_GLOBAL_INT(t) if self.mode == FlightMode::Guided && self.airborne => {
                let up = if matches!(t.coordinate_frame as u32, 0 | 5) {
                    f64::from(t.alt) - self.cfg.home_amsl_m
                } else {
                    f64::from(t.alt)
                };
                let local = self.frame.to_local(GeoPoint::from_e7(t.lat_int, t.lon_int));
                self.hold = Setpoint { east_m: local.east_m, north_m: local.north_m, up_m: up, ..self.here() };
            }
            MavMessage::MISSION_SET_CURRENT(s) => self.set_current(s.seq),
            MavMessage::MISSION_COUNT(_)
            | MavMessage::MISSION_ITEM(_)
            | MavMessage::MISSION_ITEM_INT(_)
            | MavMessage::MISSION_REQUEST_LIST(_)
            | MavMessage::MISSION_REQUEST(_)
            | MavMessage::MISSION_REQUEST_INT(_)
            | MavMessage::MISSION_CLEAR_ALL(_) => {
                let home = self.home_item();
                let (replies, event) = self.store.handle(msg, partner, wall, &home);
                for message in replies {
                    self.send(message);
                }
                match event {
                    Some(StoreEvent::Replaced(ListKind::Mission) | StoreEvent::Cleared(ListKind::Mission)) => {
                        self.mission_current = self.first_item();
                        self.item_phase = ItemPhase::Going;
                        self.mission_done = false;
                        self.send_mission_current();
                    }
                    Some(StoreEvent::Replaced(ListKind::Fence) | StoreEvent::Cleared(ListKind::Fence)) => {
                        self.fence = Fence::from_items(self.store.list(ListKind::Fence), &self.frame);
                        self.fence_breached = false;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn ack(&mut self, command: MavCmd, result: MavResult, partner: (u8, u8)) {
        self.send(MavMessage::COMMAND_ACK(COMMAND_ACK_DATA {
            command,
            result,
            target_system: partner.0,
            target_component: partner.1,
            ..Default::default()
        }));
    }

    fn first_item(&self) -> u16 {
        u16::from(!self.px4())
    }

    fn set_current(&mut self, seq: u16) {
        let len = self.store.list(ListKind::Mission).len();
        if usize::from(seq) < len.max(1) {
            self.mission_current = seq.max(self.first_item());
            self.item_phase = ItemPhase::Going;
            self.mission_done = false;
            self.send_mission_current();
        }
    }

    fn request_data_stream(&mut self, stream_id: u32, rate_hz: u16, start_stop: u8) {
        let ids: &[u32] = match stream_id {
            0 => &[
                ID_SYS_STATUS,
                ID_GPS_RAW_INT,
                ID_MISSION_CURRENT,
                ID_EXTENDED_SYS_STATE,
                ID_GLOBAL_POSITION_INT,
                ID_ATTITUDE,
                ID_VFR_HUD,
                ID_BATTERY_STATUS,
                ID_HOME_POSITION,
                ID_NAMED_VALUE_FLOAT,
            ],
            2 => &[ID_SYS_STATUS, ID_GPS_RAW_INT, ID_MISSION_CURRENT, ID_EXTENDED_SYS_STATE],
            6 => &[ID_GLOBAL_POSITION_INT],
            10 => &[ID_ATTITUDE],
            11 => &[ID_VFR_HUD],
            12 => &[ID_BATTERY_STATUS, ID_HOME_POSITION, ID_NAMED_VALUE_FLOAT],
            _ => &[],
        };
        for &id in ids {
            if start_stop == 0 || rate_hz == 0 {
                // SYS_STATUS keeps its boot-time 1 Hz on ArduPilot.
                if id != ID_SYS_STATUS {
                    self.streams.remove(&id);
                }
            } else {
                let interval_s = 1.0 / f64::from(rate_hz);
                self.streams.insert(id, Stream { interval_s, next_s: self.sim_s });
            }
        }
    }

    fn set_message_interval(&mut self, id: u32, interval_us: f32) -> MavResult {
        if id == ID_HEARTBEAT {
            return MavResult::MAV_RESULT_DENIED;
        }
        let Some(default) = DEFAULT_STREAMS.iter().find(|(i, _)| *i == id).map(|(_, s)| *s) else {
            return MavResult::MAV_RESULT_UNSUPPORTED;
        };
        if interval_us < 0.0 {
            self.streams.remove(&id);
        } else {
            let interval_s = if interval_us == 0.0 { default } else { f64::from(interval_us) / 1e6 };
            self.streams.insert(id, Stream { interval_s, next_s: self.sim_s });
        }
        MavResult::MAV_RESULT_ACCEPTED
    }

    // ---------------------------------------------------------------- commands

    fn command(&mut self, cmd: &Command) -> MavResult {
        let p = cmd.params;
        match cmd.command {
            MavCmd::MAV_CMD_COMPONENT_ARM_DISARM => {
                if p[0] >= 0.5 {
                    self.arm(p[1] == FORCE_MAGIC)
                } else {
                    self.disarm(p[1] == FORCE_MAGIC)
                }
            }
            MavCmd::MAV_CMD_NAV_TAKEOFF => self.takeoff_command(p[6]),
            MavCmd::MAV_CMD_DO_SET_MODE => match self.cfg.personality.kind().mode_from_set_mode_params(p[1], p[2]) {
                Some(mode) => match self.set_mode(mode) {
                    Ok(()) => MavResult::MAV_RESULT_ACCEPTED,
                    Err(reason) => {
                        self.text(MavSeverity::MAV_SEVERITY_WARNING, reason);
                        MavResult::MAV_RESULT_FAILED
                    }
                },
                None => MavResult::MAV_RESULT_DENIED,
            },
            MavCmd::MAV_CMD_MISSION_START => {
                if !self.armed {
                    self.text(MavSeverity::MAV_SEVERITY_WARNING, "Mission start: vehicle not armed");
                    return MavResult::MAV_RESULT_FAILED;
                }
                if p[0] >= 1.0 {
                    // Whole item numbers.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    self.set_current(p[0] as u16);
                }
                {
                    let outcome = self.set_mode(FlightMode::Mission);
                    self.result_of(outcome)
                }
            }
            MavCmd::MAV_CMD_NAV_RETURN_TO_LAUNCH => {
                let outcome = self.set_mode(FlightMode::ReturnToLaunch);
                self.result_of(outcome)
            }
            MavCmd::MAV_CMD_NAV_LAND => {
                let outcome = self.set_mode(FlightMode::Land);
                self.result_of(outcome)
            }
            MavCmd::MAV_CMD_DO_REPOSITION => self.reposition(cmd),
            MavCmd::MAV_CMD_DO_PAUSE_CONTINUE => {
                let mode = if p[0] == 0.0 { FlightMode::Loiter } else { FlightMode::Mission };
                {
                    let outcome = self.set_mode(mode);
                    self.result_of(outcome)
                }
            }
            MavCmd::MAV_CMD_DO_CHANGE_SPEED => {
                if p[1] > 0.0 {
                    self.speed_mps = f64::from(p[1]).min(self.cfg.vehicle.max_speed_mps);
                }
                MavResult::MAV_RESULT_ACCEPTED
            }
            MavCmd::MAV_CMD_DO_SET_HOME => {
                if p[0] >= 0.5 {
                    self.cfg.home = self.position();
                } else {
                    let home = match cmd.int_position {
                        Some((x, y, _)) => GeoPoint::from_e7(x, y),
                        None => GeoPoint::new(f64::from(p[4]), f64::from(p[5])),
                    };
                    if !home.is_valid() {
                        return MavResult::MAV_RESULT_DENIED;
                    }
                    self.cfg.home = home;
                }
                // Positions stay in the boot frame; RTL flies to the new home through it.
                self.send_home();
                MavResult::MAV_RESULT_ACCEPTED
            }
            MavCmd::MAV_CMD_SET_MESSAGE_INTERVAL => {
                // Message ids are small whole numbers.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                self.set_message_interval(p[0] as u32, p[1])
            }
            MavCmd::MAV_CMD_REQUEST_MESSAGE =>
            {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                self.request_message(p[0] as u32, p[1])
            }
            MavCmd::MAV_CMD_GET_HOME_POSITION => {
                self.send_home();
                MavResult::MAV_RESULT_ACCEPTED
            }
            MavCmd::MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES => self.request_message(ID_AUTOPILOT_VERSION, 0.0),
            MavCmd::MAV_CMD_DO_SET_MISSION_CURRENT => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                self.set_current(p[0].max(0.0) as u16);
                MavResult::MAV_RESULT_ACCEPTED
            }
            MavCmd::MAV_CMD_DO_SET_CAM_TRIGG_DIST => {
                self.set_trigger_distance(p[0], p[2]);
                MavResult::MAV_RESULT_ACCEPTED
            }
            MavCmd::MAV_CMD_IMAGE_START_CAPTURE => {
                self.start_interval_capture(p[1], p[2]);
                MavResult::MAV_RESULT_ACCEPTED
            }
            MavCmd::MAV_CMD_IMAGE_STOP_CAPTURE => {
                self.trigger.interval_s = None;
                MavResult::MAV_RESULT_ACCEPTED
            }
            MavCmd::MAV_CMD_DO_DIGICAM_CONTROL => {
                self.capture();
                MavResult::MAV_RESULT_ACCEPTED
            }
            _ => MavResult::MAV_RESULT_UNSUPPORTED,
        }
    }

    fn result_of(&mut self, outcome: Result<(), &'static str>) -> MavResult {
        match outcome {
            Ok(()) => MavResult::MAV_RESULT_ACCEPTED,
            Err(reason) => {
                self.text(MavSeverity::MAV_SEVERITY_WARNING, reason);
                MavResult::MAV_RESULT_FAILED
            }
        }
    }

    fn arm(&mut self, force: bool) -> MavResult {
        if self.armed {
            return MavResult::MAV_RESULT_ACCEPTED;
        }
        if !force {
            if !self.position_ready() {
                let reason = if self.px4() {
                    "Preflight Fail: horizontal position estimate invalid"
                } else {
                    "PreArm: Need Position Estimate"
                };
                self.text(MavSeverity::MAV_SEVERITY_CRITICAL, reason);
                return MavResult::MAV_RESULT_FAILED;
            }
            let armable = if self.px4() {
                !matches!(self.mode, FlightMode::ReturnToLaunch | FlightMode::Land)
            } else {
                matches!(
                    self.mode,
                    FlightMode::Manual
                        | FlightMode::AltitudeHold
                        | FlightMode::PositionHold
                        | FlightMode::Loiter
                        | FlightMode::Guided
                        | FlightMode::Acro
                )
            };
            if !armable {
                let reason = if self.px4() { "Arming denied: not in an armable mode" } else { "Arm: Mode not armable" };
                self.text(MavSeverity::MAV_SEVERITY_CRITICAL, reason);
                return MavResult::MAV_RESULT_FAILED;
            }
        }
        self.armed = true;
        self.idle_on_ground_s = 0.0;
        self.hold = self.here();
        self.text(
            MavSeverity::MAV_SEVERITY_INFO,
            if self.px4() { "Armed by external command" } else { "Arming motors" },
        );
        MavResult::MAV_RESULT_ACCEPTED
    }

    fn disarm(&mut self, force: bool) -> MavResult {
        if self.airborne && !force {
            self.text(MavSeverity::MAV_SEVERITY_CRITICAL, "Disarm: vehicle is flying");
            return MavResult::MAV_RESULT_FAILED;
        }
        self.do_disarm();
        MavResult::MAV_RESULT_ACCEPTED
    }

    fn do_disarm(&mut self) {
        if self.armed {
            self.armed = false;
            self.text(
                MavSeverity::MAV_SEVERITY_INFO,
                if self.px4() { "Disarmed by landing" } else { "Disarming motors" },
            );
        }
        self.airborne = false;
        self.landing = false;
        self.takeoff_alt_m = None;
        self.body.settle_on_ground();
    }

    fn takeoff_command(&mut self, alt: f32) -> MavResult {
        let alt_m = if alt.is_finite() && alt > 0.0 { f64::from(alt) } else { 2.5 };
        if self.px4() {
            if self.airborne {
                return MavResult::MAV_RESULT_FAILED;
            }
            self.mode = FlightMode::Takeoff;
            self.takeoff_alt_m = Some(alt_m);
            return MavResult::MAV_RESULT_ACCEPTED;
        }
        if self.mode != FlightMode::Guided {
            self.text(MavSeverity::MAV_SEVERITY_WARNING, "Takeoff: mode must be GUIDED");
            return MavResult::MAV_RESULT_FAILED;
        }
        if !self.armed || self.airborne {
            return MavResult::MAV_RESULT_FAILED;
        }
        self.takeoff_alt_m = Some(alt_m);
        self.hold = Setpoint { up_m: alt_m, ..self.here() };
        MavResult::MAV_RESULT_ACCEPTED
    }

    fn reposition(&mut self, cmd: &Command) -> MavResult {
        if !self.airborne {
            self.text(MavSeverity::MAV_SEVERITY_WARNING, "Reposition: vehicle is not flying");
            return MavResult::MAV_RESULT_FAILED;
        }
        let p = cmd.params;
        let (point, up) = match cmd.int_position {
            Some((x, y, frame)) => {
                let up = if matches!(frame as u32, 0 | 5) {
                    f64::from(p[6]) - self.cfg.home_amsl_m
                } else {
                    f64::from(p[6])
                };
                (GeoPoint::from_e7(x, y), up)
            }
            None => (GeoPoint::new(f64::from(p[4]), f64::from(p[5])), f64::from(p[6]) - self.cfg.home_amsl_m),
        };
        let here = self.here();
        let local = if point.is_valid() && (point.lat_deg != 0.0 || point.lon_deg != 0.0) {
            self.frame.to_local(point)
        } else {
            LocalPoint::new(here.east_m, here.north_m)
        };
        let speed = if p[0] > 0.0 { f64::from(p[0]) } else { self.speed_mps };
        let up = if up.is_finite() { up.max(1.0) } else { here.up_m };
        let target = Setpoint { east_m: local.east_m, north_m: local.north_m, up_m: up, speed_mps: speed, ..here };
        let mode = if self.px4() { FlightMode::Loiter } else { FlightMode::Guided };
        if let Err(reason) = self.set_mode(mode) {
            self.text(MavSeverity::MAV_SEVERITY_WARNING, reason);
            return MavResult::MAV_RESULT_FAILED;
        }
        self.hold = target;
        MavResult::MAV_RESULT_ACCEPTED
    }

    fn request_message(&mut self, id: u32, param2: f32) -> MavResult {
        match id {
            ID_CAMERA_IMAGE_CAPTURED => {
                // param2 = image index (-1 = the latest).
                #[allow(clippy::cast_possible_truncation)]
                let index = if param2 < 0.0 { self.image_index } else { param2 as i32 };
                match self.captures.iter().find(|c| c.image_index == index).cloned() {
                    Some(c) => {
                        self.out.push(Outgoing {
                            component_id: CAMERA_COMPONENT,
                            message: MavMessage::CAMERA_IMAGE_CAPTURED(c),
                        });
                        MavResult::MAV_RESULT_ACCEPTED
                    }
                    None => MavResult::MAV_RESULT_FAILED,
                }
            }
            ID_AUTOPILOT_VERSION => {
                let capabilities = MavProtocolCapability::MAV_PROTOCOL_CAPABILITY_MISSION_INT
                    | MavProtocolCapability::MAV_PROTOCOL_CAPABILITY_COMMAND_INT
                    | MavProtocolCapability::MAV_PROTOCOL_CAPABILITY_MAVLINK2
                    | MavProtocolCapability::MAV_PROTOCOL_CAPABILITY_MISSION_FENCE
                    | MavProtocolCapability::MAV_PROTOCOL_CAPABILITY_MISSION_RALLY
                    | MavProtocolCapability::MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT;
                let flight_sw_version = if self.px4() { 0x010f_00ff } else { 0x0406_00ff };
                self.send(MavMessage::AUTOPILOT_VERSION(AUTOPILOT_VERSION_DATA {
                    capabilities,
                    uid: u64::from(self.cfg.system_id),
                    flight_sw_version,
                    ..Default::default()
                }));
                MavResult::MAV_RESULT_ACCEPTED
            }
            ID_HOME_POSITION => {
                self.send_home();
                MavResult::MAV_RESULT_ACCEPTED
            }
            other if DEFAULT_STREAMS.iter().any(|(i, _)| *i == other) || other == ID_HEARTBEAT => {
                if let Some(message) = self.telemetry(other) {
                    self.send(message);
                }
                MavResult::MAV_RESULT_ACCEPTED
            }
            _ => MavResult::MAV_RESULT_UNSUPPORTED,
        }
    }

    /// Changes the flight mode, or says why not.
    fn set_mode(&mut self, mode: FlightMode) -> Result<(), &'static str> {
        match mode {
            FlightMode::Mission => {
                let items = self.store.list(ListKind::Mission).len();
                if items <= usize::from(self.first_item()) {
                    return Err("Mode change to AUTO failed: no mission");
                }
                if usize::from(self.mission_current) >= items || self.mission_done {
                    self.mission_current = self.first_item();
                    self.mission_done = false;
                }
                self.item_phase = ItemPhase::Going;
                self.landing = false;
                self.send_mission_current();
            }
            FlightMode::ReturnToLaunch => {
                self.rtl = RtlPhase::Climb;
                self.rtl_alt_m = self.body.up_m.max(15.0);
            }
            FlightMode::Land => {
                self.hold = self.here();
            }
            FlightMode::Takeoff => {
                if self.airborne {
                    return Err("Takeoff: already flying");
                }
                self.takeoff_alt_m.get_or_insert(2.5);
            }
            FlightMode::Guided
            | FlightMode::Loiter
            | FlightMode::PositionHold
            | FlightMode::AltitudeHold
            | FlightMode::Manual
            | FlightMode::Brake
            | FlightMode::Acro => {
                self.hold = self.here();
                self.landing = false;
            }
            FlightMode::Ready | FlightMode::Offboard | FlightMode::Unknown(_) => return Err("Mode not supported"),
        }
        if self.cfg.personality.kind().encode_mode(mode).is_none() {
            return Err("Mode not supported");
        }
        self.mode = mode;
        Ok(())
    }

    // ---------------------------------------------------------------- flight

    /// Once per wall tick: mission protocol timeouts at wall time `wall` and due telemetry (at most one of each
    /// stream per tick, so a big speed-up lowers the wall rate instead of bursting).
    pub(crate) fn tick(&mut self, wall: Duration) {
        for message in self.store.tick(wall) {
            self.send(message);
        }
        self.report_mission_current();
        self.streams_due();
    }

    /// Advances the simulation by `dt_s` sim seconds: flies, runs failsafes and the camera.
    pub(crate) fn step(&mut self, dt_s: f64) {
        self.sim_s += dt_s;
        let noise = self.cfg.vehicle.gps_noise_m;
        self.gps.step(&mut self.rng, noise, dt_s);

        let setpoint = if self.armed { self.guidance() } else { None };
        match setpoint {
            Some(sp) if self.armed => {
                if !self.airborne && sp.up_m > 0.3 {
                    self.airborne = true;
                    self.idle_on_ground_s = 0.0;
                }
                if self.airborne {
                    self.body.step(&sp, &self.cfg.vehicle, dt_s);
                    if self.landing && self.body.up_m <= 0.02 {
                        self.touch_down();
                    }
                } else {
                    self.idle(dt_s);
                }
            }
            _ => {
                if self.armed {
                    self.idle(dt_s);
                }
            }
        }
        let flying = self.airborne;
        self.battery.drain(&self.body, flying, &self.cfg.vehicle, dt_s);
        self.failsafes();
        self.camera_triggers();
        self.report_mission_current();
    }

    fn idle(&mut self, dt_s: f64) {
        self.idle_on_ground_s += dt_s;
        if self.idle_on_ground_s >= AUTO_DISARM_S {
            self.do_disarm();
        }
    }

    fn touch_down(&mut self) {
        self.body.settle_on_ground();
        self.airborne = false;
        self.landing = false;
        self.text(MavSeverity::MAV_SEVERITY_INFO, "Landed");
        if self.mode == FlightMode::Mission {
            self.reached(self.mission_current);
            self.mission_current = self.mission_current.saturating_add(1);
            self.mission_done = true;
        }
        self.do_disarm();
    }

    /// The setpoint of the current mode; `None` to sit still on the ground.
    fn guidance(&mut self) -> Option<Setpoint> {
        match self.mode {
            FlightMode::Mission => self.mission_guidance(),
            FlightMode::ReturnToLaunch => Some(self.rtl_guidance()),
            FlightMode::Land => Some(self.land_here()),
            FlightMode::Takeoff => {
                let alt = self.takeoff_alt_m.unwrap_or(2.5);
                if self.airborne && (self.body.up_m - alt).abs() < 0.3 {
                    self.takeoff_alt_m = None;
                    self.mode = FlightMode::Loiter;
                    self.hold = self.here();
                    return Some(self.hold);
                }
                Some(Setpoint { up_m: alt, ..self.here() })
            }
            _ => {
                if let Some(alt) = self.takeoff_alt_m
                    && (self.body.up_m - alt).abs() < 0.3
                {
                    self.takeoff_alt_m = None;
                }
                (self.airborne || self.hold.up_m > 0.3).then_some(self.hold)
            }
        }
    }

    fn land_here(&mut self) -> Setpoint {
        self.landing = true;
        let descent = if self.body.up_m > LAND_SLOW_BELOW_M {
            self.cfg.vehicle.descent_rate_mps
        } else {
            self.cfg.vehicle.land_speed_mps
        };
        Setpoint {
            east_m: self.hold.east_m,
            north_m: self.hold.north_m,
            up_m: -1.0,
            descent_mps: descent,
            ..self.here()
        }
    }

    fn rtl_guidance(&mut self) -> Setpoint {
        let home = self.frame.to_local(self.cfg.home);
        loop {
            match self.rtl {
                RtlPhase::Climb => {
                    if self.body.up_m >= self.rtl_alt_m - 0.5 {
                        self.rtl = RtlPhase::Return;
                        continue;
                    }
                    return Setpoint { up_m: self.rtl_alt_m, ..self.here() };
                }
                RtlPhase::Return => {
                    if self.body.horizontal_distance_m(home.east_m, home.north_m) < 1.0
                        && self.body.ground_speed_mps() < 0.5
                    {
                        self.rtl = RtlPhase::Descend;
                        self.hold = Setpoint { east_m: home.east_m, north_m: home.north_m, ..self.here() };
                        continue;
                    }
                    return Setpoint {
                        east_m: home.east_m,
                        north_m: home.north_m,
                        up_m: self.rtl_alt_m,
                        ..self.here()
                    };
                }
                RtlPhase::Descend => return self.land_here(),
            }
        }
    }

    fn mission_guidance(&mut self) -> Option<Setpoint> {
        // Do-commands are instantaneous; a mission of only do-commands must still end, so bound the loop.
        for _ in 0..64 {
            let items = self.store.list(ListKind::Mission);
            let Some(item) = items.get(usize::from(self.mission_current)).cloned() else {
                return self.mission_complete();
            };
            let target = self.item_target(&item);
            match item.command {
                MavCmd::MAV_CMD_NAV_TAKEOFF => {
                    let sp = Setpoint { up_m: target.up_m.max(1.0), ..self.here() };
                    if self.airborne && (self.body.up_m - sp.up_m).abs() < 0.5 {
                        self.advance(true);
                        continue;
                    }
                    return Some(sp);
                }
                MavCmd::MAV_CMD_NAV_WAYPOINT
                | MavCmd::MAV_CMD_NAV_LOITER_TIME
                | MavCmd::MAV_CMD_NAV_LOITER_UNLIM
                | MavCmd::MAV_CMD_NAV_LOITER_TURNS
                | MavCmd::MAV_CMD_NAV_LOITER_TO_ALT => match self.item_phase {
                    ItemPhase::Going => {
                        let radius = if item.command == MavCmd::MAV_CMD_NAV_WAYPOINT && item.param2 > 0.0 {
                            f64::from(item.param2)
                        } else {
                            DEFAULT_ACCEPT_RADIUS_M
                        };
                        let arrived = self.airborne
                            && self.body.horizontal_distance_m(target.east_m, target.north_m) <= radius
                            && (self.body.up_m - target.up_m).abs() < 1.0;
                        if !arrived {
                            return Some(target);
                        }
                        self.reached(self.mission_current);
                        let hold_s = match item.command {
                            MavCmd::MAV_CMD_NAV_WAYPOINT | MavCmd::MAV_CMD_NAV_LOITER_TIME => {
                                f64::from(item.param1.max(0.0))
                            }
                            _ => f64::INFINITY,
                        };
                        self.item_phase = if hold_s.is_infinite() {
                            ItemPhase::Parked
                        } else {
                            ItemPhase::Holding { until_s: self.sim_s + hold_s }
                        };
                        self.hold = target;
                        continue;
                    }
                    ItemPhase::Holding { until_s } => {
                        if self.sim_s >= until_s {
                            self.advance(false);
                            continue;
                        }
                        return Some(self.hold);
                    }
                    ItemPhase::Parked => return Some(self.hold),
                },
                MavCmd::MAV_CMD_NAV_RETURN_TO_LAUNCH => {
                    if self.item_phase == ItemPhase::Going {
                        self.item_phase = ItemPhase::Parked;
                        self.rtl = RtlPhase::Climb;
                        self.rtl_alt_m = self.body.up_m.max(15.0);
                    }
                    return Some(self.rtl_guidance());
                }
                MavCmd::MAV_CMD_NAV_LAND => {
                    if self.item_phase == ItemPhase::Going {
                        if item.x != 0 || item.y != 0 {
                            let arrived = self.body.horizontal_distance_m(target.east_m, target.north_m) < 1.0
                                && self.body.ground_speed_mps() < 0.5;
                            if !arrived {
                                return Some(Setpoint { up_m: self.body.up_m, ..target });
                            }
                        }
                        self.item_phase = ItemPhase::Parked;
                        self.hold = self.here();
                    }
                    return Some(self.land_here());
                }
                MavCmd::MAV_CMD_DO_CHANGE_SPEED => {
                    if item.param2 > 0.0 {
                        self.speed_mps = f64::from(item.param2).min(self.cfg.vehicle.max_speed_mps);
                    }
                    self.advance(false);
                }
                MavCmd::MAV_CMD_DO_SET_CAM_TRIGG_DIST => {
                    self.set_trigger_distance(item.param1, item.param3);
                    self.advance(false);
                }
                MavCmd::MAV_CMD_IMAGE_START_CAPTURE => {
                    self.start_interval_capture(item.param2, item.param3);
                    self.advance(false);
                }
                MavCmd::MAV_CMD_IMAGE_STOP_CAPTURE => {
                    self.trigger.interval_s = None;
                    self.advance(false);
                }
                MavCmd::MAV_CMD_DO_DIGICAM_CONTROL => {
                    self.capture();
                    self.advance(false);
                }
                other => {
                    // Unknown nav commands are skipped like ArduPilot does with unsupported ones.
                    self.advance(is_nav(other));
                }
            }
        }
        Some(self.hold)
    }

    fn mission_complete(&mut self) -> Option<Setpoint> {
        if !self.mission_done {
            self.mission_done = true;
            self.text(MavSeverity::MAV_SEVERITY_INFO, "Mission complete");
            self.hold = self.here();
            if self.px4() {
                // PX4 switches to Hold at the end of a mission.
                self.mode = FlightMode::Loiter;
            }
        }
        (self.airborne).then_some(self.hold)
    }

    /// The position an item points at, in the home frame (its altitude per its frame).
    fn item_target(&self, item: &MISSION_ITEM_INT_DATA) -> Setpoint {
        let here = self.here();
        let (east_m, north_m) = if is_global(item.frame) && (item.x != 0 || item.y != 0) {
            let local = self.frame.to_local(GeoPoint::from_e7(item.x, item.y));
            (local.east_m, local.north_m)
        } else {
            (here.east_m, here.north_m)
        };
        let z = f64::from(item.z);
        let up_m = match item.frame as u32 {
            0 | 5 => z - self.cfg.home_amsl_m,
            _ => z,
        };
        Setpoint { east_m, north_m, up_m, speed_mps: self.speed_mps, ..here }
    }

    fn advance(&mut self, report: bool) {
        if report {
            self.reached(self.mission_current);
        }
        self.mission_current = self.mission_current.saturating_add(1);
        self.item_phase = ItemPhase::Going;
    }

    fn reached(&mut self, seq: u16) {
        self.send(MavMessage::MISSION_ITEM_REACHED(MISSION_ITEM_REACHED_DATA { seq }));
    }

    fn report_mission_current(&mut self) {
        if self.last_reported_current != Some(self.mission_current) {
            self.send_mission_current();
        }
    }

    fn send_mission_current(&mut self) {
        self.last_reported_current = Some(self.mission_current);
        if let Some(message) = self.telemetry(ID_MISSION_CURRENT) {
            self.send(message);
        }
    }

    fn failsafes(&mut self) {
        if !self.airborne || matches!(self.mode, FlightMode::ReturnToLaunch | FlightMode::Land) {
            return;
        }
        let here = LocalPoint::new(self.body.east_m, self.body.north_m);
        if !self.fence.is_empty() {
            let breached = self.fence.breached(here);
            if breached && !self.fence_breached {
                self.fence_breached = true;
                self.text(MavSeverity::MAV_SEVERITY_CRITICAL, "Fence Breached: returning to launch");
                // RTL is always possible in the air.
                if self.set_mode(FlightMode::ReturnToLaunch).is_ok() {
                    return;
                }
            } else if !breached {
                self.fence_breached = false;
            }
        }
        if !self.battery_failsafe && self.battery.remaining_pct() < self.cfg.vehicle.low_battery_pct {
            self.battery_failsafe = true;
            let text = format!(
                "Battery failsafe: {:.1}V {:.0}% returning to launch",
                self.battery.voltage_v(),
                self.battery.remaining_pct()
            );
            self.text(MavSeverity::MAV_SEVERITY_CRITICAL, &text);
            if let Err(reason) = self.set_mode(FlightMode::ReturnToLaunch) {
                self.text(MavSeverity::MAV_SEVERITY_WARNING, reason);
            }
        }
    }

    // ---------------------------------------------------------------- camera

    fn set_trigger_distance(&mut self, distance_m: f32, trigger_now: f32) {
        self.trigger.distance_m = (distance_m > 0.0).then_some(f64::from(distance_m));
        self.trigger.last_spot = Some(LocalPoint::new(self.body.east_m, self.body.north_m));
        if trigger_now >= 1.0 {
            self.capture();
        }
    }

    fn start_interval_capture(&mut self, interval_s: f32, count: f32) {
        if interval_s > 0.0 {
            self.trigger.interval_s = Some(f64::from(interval_s));
            self.trigger.next_s = self.sim_s;
            // Whole counts; 0 = unlimited.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let count = count.max(0.0) as u32;
            self.trigger.remaining = (count > 0).then_some(count);
        } else {
            // Interval 0: one photo now.
            self.trigger.interval_s = None;
            self.capture();
        }
    }

    fn camera_triggers(&mut self) {
        if let Some(distance) = self.trigger.distance_m
            && self.airborne
        {
            let here = LocalPoint::new(self.body.east_m, self.body.north_m);
            let last = *self.trigger.last_spot.get_or_insert(here);
            if last.distance_to(&here) >= distance {
                self.trigger.last_spot = Some(here);
                self.capture();
            }
        }
        if let Some(interval) = self.trigger.interval_s
            && self.sim_s >= self.trigger.next_s
        {
            self.trigger.next_s = self.sim_s + interval;
            self.capture();
            if let Some(left) = self.trigger.remaining.as_mut() {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.trigger.interval_s = None;
                    self.trigger.remaining = None;
                }
            }
        }
    }

    /// Takes a photo: reports the trigger the autopilot's way and queues the render.
    fn capture(&mut self) {
        let min_gap = self.cfg.camera.spec.min_trigger_interval_s;
        if self.sim_s - self.trigger.last_capture_s < min_gap {
            return;
        }
        self.trigger.last_capture_s = self.sim_s;
        self.image_index += 1;
        let index = self.image_index;
        let (pos, up) = self.reported_position();
        let amsl = self.cfg.home_amsl_m + up;
        let yaw_deg = self.body.yaw_rad.to_degrees();
        let gimbal = Attitude::from_degrees(0.0, self.cfg.camera.pitch_deg, yaw_deg);
        let orientation = CameraPose::stabilised_gimbal(gimbal);
        #[allow(clippy::cast_possible_truncation)]
        let q = orientation.to_quaternion().map(|c| c as f32);
        let time_usec = u64::from(self.time_boot_ms()) * 1000;
        if self.px4() {
            self.send(MavMessage::CAMERA_TRIGGER(CAMERA_TRIGGER_DATA { time_usec, seq: index.unsigned_abs() }));
        } else {
            #[allow(clippy::cast_possible_truncation)]
            let feedback = CAMERA_FEEDBACK_DATA {
                time_usec,
                lat: pos.lat_e7(),
                lng: pos.lon_e7(),
                alt_msl: amsl as f32,
                alt_rel: up as f32,
                roll: self.body.roll_rad.to_degrees() as f32,
                pitch: self.body.pitch_rad.to_degrees() as f32,
                yaw: yaw_deg as f32,
                foc_len: 0.0,
                img_idx: u16::try_from(index).unwrap_or(u16::MAX),
                target_system: 0,
                cam_idx: 0,
                flags: CameraFeedbackFlags::CAMERA_FEEDBACK_PHOTO,
                completed_captures: u16::try_from(index + 1).unwrap_or(u16::MAX),
            };
            self.send(MavMessage::CAMERA_FEEDBACK(feedback));
        }
        let announce = CAMERA_IMAGE_CAPTURED_DATA {
            time_utc: 0,
            time_boot_ms: self.time_boot_ms(),
            lat: pos.lat_e7(),
            lon: pos.lon_e7(),
            alt: mm(amsl),
            relative_alt: mm(up),
            q,
            image_index: index,
            camera_id: 0,
            capture_result: MavBool::MAV_BOOL_TRUE,
            file_url: "".into(),
        };
        let pose = CameraPose { position: self.position(), height_above_ground_m: self.body.up_m, orientation };
        self.jobs.push(CaptureJob { image_index: index, pose, announce });
    }

    /// Called when a capture job finished (or failed): announces it from the camera component and keeps it for
    /// `REQUEST_MESSAGE` re-sends.
    pub(crate) fn captured(&mut self, announce: CAMERA_IMAGE_CAPTURED_DATA) {
        self.captures.push_back(announce.clone());
        while self.captures.len() > CAPTURES_KEPT {
            self.captures.pop_front();
        }
        self.out
            .push(Outgoing { component_id: CAMERA_COMPONENT, message: MavMessage::CAMERA_IMAGE_CAPTURED(announce) });
    }

    /// The camera intrinsics.
    pub(crate) fn intrinsics(&self) -> Intrinsics {
        self.cfg.intrinsics
    }

    // ---------------------------------------------------------------- telemetry

    fn streams_due(&mut self) {
        let now = self.sim_s;
        let mut due: Vec<u32> = Vec::new();
        for (id, stream) in &mut self.streams {
            if now + 1e-9 >= stream.next_s {
                due.push(*id);
                stream.next_s = (stream.next_s + stream.interval_s).max(now);
            }
        }
        due.sort_unstable();
        for id in due {
            if let Some(message) = self.telemetry(id) {
                self.send(message);
            }
        }
    }

    fn send_home(&mut self) {
        if let Some(message) = self.telemetry(ID_HOME_POSITION) {
            self.send(message);
        }
    }

    fn telemetry(&mut self, id: u32) -> Option<MavMessage> {
        let time_boot_ms = self.time_boot_ms();
        let (pos, up) = self.reported_position();
        let b = self.body;
        Some(match id {
            ID_HEARTBEAT => {
                let kind = self.cfg.personality.kind();
                let mut base_mode =
                    MavModeFlag::MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | MavModeFlag::MAV_MODE_FLAG_STABILIZE_ENABLED;
                if self.armed {
                    base_mode |= MavModeFlag::MAV_MODE_FLAG_SAFETY_ARMED;
                }
                if matches!(
                    self.mode,
                    FlightMode::Mission | FlightMode::ReturnToLaunch | FlightMode::Land | FlightMode::Takeoff
                ) {
                    base_mode |= MavModeFlag::MAV_MODE_FLAG_AUTO_ENABLED | MavModeFlag::MAV_MODE_FLAG_GUIDED_ENABLED;
                } else if matches!(self.mode, FlightMode::Guided | FlightMode::Loiter) {
                    base_mode |= MavModeFlag::MAV_MODE_FLAG_GUIDED_ENABLED;
                }
                let system_status = if self.battery_failsafe || self.fence_breached {
                    MavState::MAV_STATE_CRITICAL
                } else if self.armed {
                    MavState::MAV_STATE_ACTIVE
                } else {
                    MavState::MAV_STATE_STANDBY
                };
                MavMessage::HEARTBEAT(HEARTBEAT_DATA {
                    custom_mode: kind.encode_mode(self.mode).unwrap_or(0),
                    mavtype: MavType::MAV_TYPE_QUADROTOR,
                    autopilot: if self.px4() {
                        MavAutopilot::MAV_AUTOPILOT_PX4
                    } else {
                        MavAutopilot::MAV_AUTOPILOT_ARDUPILOTMEGA
                    },
                    base_mode,
                    system_status,
                    mavlink_version: 3,
                })
            }
            ID_SYS_STATUS => {
                let sensors = MavSysStatusSensor::MAV_SYS_STATUS_SENSOR_3D_GYRO
                    | MavSysStatusSensor::MAV_SYS_STATUS_SENSOR_3D_ACCEL
                    | MavSysStatusSensor::MAV_SYS_STATUS_SENSOR_3D_MAG
                    | MavSysStatusSensor::MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE
                    | MavSysStatusSensor::MAV_SYS_STATUS_SENSOR_GPS;
                let health = if self.position_ready() {
                    sensors
                } else {
                    sensors - MavSysStatusSensor::MAV_SYS_STATUS_SENSOR_GPS
                };
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                MavMessage::SYS_STATUS(SYS_STATUS_DATA {
                    onboard_control_sensors_present: sensors,
                    onboard_control_sensors_enabled: sensors,
                    onboard_control_sensors_health: health,
                    load: 250,
                    voltage_battery: (self.battery.voltage_v() * 1000.0) as u16,
                    current_battery: cms(self.battery.current_a),
                    battery_remaining: self.battery.remaining_pct().round() as i8,
                    ..Default::default()
                })
            }
            ID_GPS_RAW_INT => {
                let ready = self.position_ready();
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let (vel, cog) =
                    ((b.ground_speed_mps() * 100.0) as u16, (b.yaw_rad.to_degrees().rem_euclid(360.0) * 100.0) as u16);
                MavMessage::GPS_RAW_INT(GPS_RAW_INT_DATA {
                    time_usec: u64::from(time_boot_ms) * 1000,
                    lat: pos.lat_e7(),
                    lon: pos.lon_e7(),
                    alt: mm(self.cfg.home_amsl_m + up),
                    eph: if ready { 70 } else { 9999 },
                    epv: if ready { 110 } else { 9999 },
                    vel,
                    cog,
                    fix_type: if ready { GpsFixType::GPS_FIX_TYPE_3D_FIX } else { GpsFixType::GPS_FIX_TYPE_NO_FIX },
                    satellites_visible: if ready { 14 } else { 3 },
                    ..Default::default()
                })
            }
            ID_ATTITUDE =>
            {
                #[allow(clippy::cast_possible_truncation)]
                MavMessage::ATTITUDE(ATTITUDE_DATA {
                    time_boot_ms,
                    roll: b.roll_rad as f32,
                    pitch: b.pitch_rad as f32,
                    yaw: b.yaw_rad as f32,
                    rollspeed: 0.0,
                    pitchspeed: 0.0,
                    yawspeed: b.yaw_rate_rps as f32,
                })
            }
            ID_GLOBAL_POSITION_INT => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let hdg = (b.yaw_rad.to_degrees().rem_euclid(360.0) * 100.0) as u16;
                MavMessage::GLOBAL_POSITION_INT(GLOBAL_POSITION_INT_DATA {
                    time_boot_ms,
                    lat: pos.lat_e7(),
                    lon: pos.lon_e7(),
                    alt: mm(self.cfg.home_amsl_m + up),
                    relative_alt: mm(up),
                    vx: cms(b.vel_north_mps),
                    vy: cms(b.vel_east_mps),
                    vz: cms(-b.vel_up_mps),
                    hdg,
                })
            }
            ID_MISSION_CURRENT => {
                let total = u16::try_from(self.store.list(ListKind::Mission).len()).unwrap_or(u16::MAX);
                let mission_state = if total == 0 {
                    MissionState::MISSION_STATE_NO_MISSION
                } else if self.mission_done {
                    MissionState::MISSION_STATE_COMPLETE
                } else if self.mode == FlightMode::Mission {
                    MissionState::MISSION_STATE_ACTIVE
                } else if self.mission_current > self.first_item() {
                    MissionState::MISSION_STATE_PAUSED
                } else {
                    MissionState::MISSION_STATE_NOT_STARTED
                };
                MavMessage::MISSION_CURRENT(MISSION_CURRENT_DATA {
                    seq: self.mission_current.min(total),
                    total,
                    mission_state,
                    ..Default::default()
                })
            }
            ID_VFR_HUD => {
                let (wind_e, wind_n) = self.cfg.vehicle.wind_en_mps();
                #[allow(clippy::cast_possible_truncation)]
                MavMessage::VFR_HUD(VFR_HUD_DATA {
                    airspeed: (b.vel_east_mps - wind_e).hypot(b.vel_north_mps - wind_n) as f32
                        * f32::from(u8::from(self.airborne)),
                    groundspeed: b.ground_speed_mps() as f32,
                    alt: (self.cfg.home_amsl_m + up) as f32,
                    climb: b.vel_up_mps as f32,
                    heading: (b.yaw_rad.to_degrees().rem_euclid(360.0)).round() as i16,
                    throttle: if self.airborne { 50 } else { 0 },
                })
            }
            ID_BATTERY_STATUS => {
                let mut voltages = [u16::MAX; 10];
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                {
                    voltages[0] = (self.battery.voltage_v() * 1000.0) as u16;
                }
                #[allow(clippy::cast_possible_truncation)]
                MavMessage::BATTERY_STATUS(BATTERY_STATUS_DATA {
                    current_consumed: self.battery.consumed_mah.round() as i32,
                    energy_consumed: -1,
                    temperature: i16::MAX,
                    voltages,
                    current_battery: cms(self.battery.current_a),
                    id: 0,
                    battery_function: MavBatteryFunction::MAV_BATTERY_FUNCTION_ALL,
                    mavtype: MavBatteryType::MAV_BATTERY_TYPE_LIPO,
                    battery_remaining: self.battery.remaining_pct().round() as i8,
                    ..Default::default()
                })
            }
            ID_HOME_POSITION => {
                let home_local = self.frame.to_local(self.cfg.home);
                #[allow(clippy::cast_possible_truncation)]
                MavMessage::HOME_POSITION(HOME_POSITION_DATA {
                    latitude: self.cfg.home.lat_e7(),
                    longitude: self.cfg.home.lon_e7(),
                    altitude: mm(self.cfg.home_amsl_m),
                    x: home_local.north_m as f32,
                    y: home_local.east_m as f32,
                    z: 0.0,
                    q: [1.0, 0.0, 0.0, 0.0],
                    ..Default::default()
                })
            }
            ID_EXTENDED_SYS_STATE => {
                let landed_state = if !self.airborne {
                    MavLandedState::MAV_LANDED_STATE_ON_GROUND
                } else if self.landing {
                    MavLandedState::MAV_LANDED_STATE_LANDING
                } else if b.vel_up_mps > 0.3 && b.up_m < 3.0 {
                    MavLandedState::MAV_LANDED_STATE_TAKEOFF
                } else {
                    MavLandedState::MAV_LANDED_STATE_IN_AIR
                };
                MavMessage::EXTENDED_SYS_STATE(EXTENDED_SYS_STATE_DATA { landed_state, ..Default::default() })
            }
            ID_NAMED_VALUE_FLOAT => {
                let spot = LocalPoint::new(b.east_m, b.north_m);
                let value = self.cfg.gas.read(spot, b.up_m, &mut self.rng);
                #[allow(clippy::cast_possible_truncation)]
                MavMessage::NAMED_VALUE_FLOAT(NAMED_VALUE_FLOAT_DATA {
                    time_boot_ms,
                    value: value as f32,
                    name: "CH4".into(),
                })
            }
            _ => return None,
        })
    }

    // ---------------------------------------------------------------- test and status accessors

    /// Whether the motors are armed.
    #[cfg(test)]
    pub(crate) fn armed(&self) -> bool {
        self.armed
    }

    /// The current mode.
    #[cfg(test)]
    pub(crate) fn mode(&self) -> FlightMode {
        self.mode
    }

    /// Height above home.
    #[cfg(test)]
    pub(crate) fn up_m(&self) -> f64 {
        self.body.up_m
    }

    /// Horizontal distance from home.
    #[cfg(test)]
    pub(crate) fn distance_from_home_m(&self) -> f64 {
        let home = self.frame.to_local(self.cfg.home);
        self.body.horizontal_distance_m(home.east_m, home.north_m)
    }

    /// Battery percentage.
    #[cfg(test)]
    pub(crate) fn battery_pct(&self) -> f64 {
        self.battery.remaining_pct()
    }
}

/// A COMMAND_LONG or COMMAND_INT, normalised.
struct Command {
    command: MavCmd,
    /// param1..param7 (for COMMAND_INT, param5/6 are x/y as floats; use `int_position`).
    params: [f32; 7],
    /// COMMAND_INT's x, y and frame.
    int_position: Option<(i32, i32, MavFrame)>,
}

#[cfg(test)]
mod tests;
