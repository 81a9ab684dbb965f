//! The per-vehicle actor: owns one vehicle's state, runs its commands and mission transfers.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use mavlink::dialects::ardupilotmega::{MavAutopilot, MavModeFlag};
use mission_planner::camera::{Attitude, Rotation};
use mission_planner::geo::GeoPoint;
use mission_planner::mission_item::{MissionFrame, MissionItem, MissionKind, cmd};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::translate::{self, Untranslatable};
use super::{
    Battery, CommandSpec, GpsStatus, MissionOp, Position, REQUEST_CAPACITY, TelemetryMessage, VehicleConfig,
    VehicleEvent, VehicleEventKind, VehicleHandle, VehicleRequest, VehicleState, VehicleType, VelocityNed,
    min_deadline,
};
use crate::capture::{CaptureTracker, Feedback, ImageCaptured};
use crate::error::{CommandError, CommandResult, MissionError};
use crate::frame::{Frame, MavMessage};
use crate::link::Outgoing;
use crate::mission::{MissionMessage, MissionOutcome, MissionTransfer, Step};
use crate::mode::AutopilotKind;

/// Inbox of received frames: bounded; the bridge uses `try_send` and counts drops, so one stuck vehicle never
/// stalls the link or the others.
pub(crate) const INBOX_CAPACITY: usize = 512;
/// How long after a refusal we wait for the STATUSTEXT that explains it (autopilots send it around the ack).
const REASON_GRACE: Duration = Duration::from_millis(300);
/// A STATUSTEXT this much older than the command's first send does not explain its refusal.
const REASON_MAX_AGE: Duration = Duration::from_secs(1);
const STATUSTEXT_HISTORY: usize = 16;
const SET_MESSAGE_INTERVAL: u16 = 511;
const REQUEST_MESSAGE: u16 = 512;
const CAMERA_IMAGE_CAPTURED_ID: f32 = 263.0;

/// What the bridge knows when it spawns an actor (from the first HEARTBEAT).
#[derive(Debug)]
pub(crate) struct VehicleInit {
    pub(crate) system_id: u8,
    pub(crate) component_id: u8,
    pub(crate) gcs_system_id: u8,
    pub(crate) autopilot: AutopilotKind,
    pub(crate) vehicle_type: VehicleType,
    pub(crate) config: VehicleConfig,
    pub(crate) link: mpsc::Sender<Outgoing>,
    pub(crate) events: broadcast::Sender<VehicleEvent>,
}

#[derive(Debug)]
enum Origin {
    Caller(oneshot::Sender<Result<(), CommandError>>),
    /// The first `SET_MESSAGE_INTERVAL`: its failure switches to `REQUEST_DATA_STREAM`.
    RateProbe,
    /// Telemetry-rate or message requests: failures are logged only.
    Internal,
}

#[derive(Debug)]
struct InFlight {
    spec: CommandSpec,
    origin: Origin,
    attempts: u32,
    max_attempts: u32,
    first_sent: Instant,
    deadline: Instant,
    /// A refusal waiting briefly for its STATUSTEXT reason.
    refused: Option<CommandResult>,
}

#[derive(Debug)]
struct ActiveMission {
    machine: MissionTransfer,
    reply: oneshot::Sender<Result<MissionOutcome, MissionError>>,
    strip_home: bool,
}

pub(crate) struct VehicleActor {
    init: VehicleInit,
    state: VehicleState,
    state_tx: watch::Sender<VehicleState>,
    queue: VecDeque<(CommandSpec, Origin)>,
    in_flight: Option<InFlight>,
    statustexts: VecDeque<(Instant, String)>,
    mission: Option<ActiveMission>,
    sequences: HashMap<u8, u8>,
    capture: CaptureTracker,
    pending_rates: Vec<(TelemetryMessage, f32)>,
    was_lost: bool,
    /// When the last command finished: STATUSTEXTs up to then explained earlier commands.
    last_command_done: Option<Instant>,
}

impl VehicleActor {
    /// Spawns the actor on `tracker`; returns its handle and the inbox the bridge feeds.
    pub(crate) fn spawn(
        init: VehicleInit,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> (VehicleHandle, mpsc::Sender<Frame>) {
        let state = VehicleState::new(init.system_id, init.autopilot, init.vehicle_type);
        let (state_tx, state_rx) = watch::channel(state.clone());
        let (req_tx, req_rx) = mpsc::channel(REQUEST_CAPACITY);
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX_CAPACITY);
        let handle = VehicleHandle::new(init.system_id, req_tx, state_rx);
        let actor = Self {
            init,
            state,
            state_tx,
            queue: VecDeque::new(),
            in_flight: None,
            statustexts: VecDeque::with_capacity(STATUSTEXT_HISTORY),
            mission: None,
            sequences: HashMap::new(),
            capture: CaptureTracker::new(),
            pending_rates: Vec::new(),
            was_lost: false,
            last_command_done: None,
        };
        tracker.spawn(actor.run(inbox_rx, req_rx, cancel));
        (handle, inbox_tx)
    }

    fn emit(&self, kind: VehicleEventKind) {
        // No subscribers is fine: events are for whoever listens.
        let _ = self.init.events.send(VehicleEvent { system_id: self.init.system_id, kind });
    }

    fn target(&self) -> (u8, u8) {
        (self.init.system_id, self.init.component_id)
    }

    fn send(&self, message: MavMessage) {
        let out = Outgoing { target_system: self.init.system_id, message };
        if self.init.link.try_send(out).is_err() {
            // A full or closed link queue loses this packet; commands and transfers retry.
            tracing::trace!(system_id = self.init.system_id, "Outgoing queue full, packet dropped.");
        }
    }

    /// The actor body. Cancel safety: not applicable (a task body); it ends on cancel or when the bridge is gone.
    #[tracing::instrument(skip_all, fields(system_id = self.init.system_id))]
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Frame>,
        mut requests: mpsc::Receiver<VehicleRequest>,
        cancel: CancellationToken,
    ) {
        let now = Instant::now();
        self.emit(VehicleEventKind::Discovered {
            autopilot: self.init.autopilot,
            vehicle_type: self.init.vehicle_type,
        });
        self.start_rate_requests(now);
        loop {
            let deadline = self.next_deadline();
            let sleep = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                frame = inbox.recv() => match frame {
                    Some(frame) => self.on_frame(frame, Instant::now()),
                    None => break,
                },
                request = requests.recv() => match request {
                    Some(request) => self.on_request(request, Instant::now()),
                    None => break,
                },
                () = sleep => self.on_tick(Instant::now()),
            }
            self.state_tx.send_if_modified(|published| {
                if *published == self.state {
                    false
                } else {
                    published.clone_from(&self.state);
                    true
                }
            });
        }
        tracing::debug!("Vehicle actor stopped.");
    }

    fn next_deadline(&self) -> Option<Instant> {
        let command = self.in_flight.as_ref().map(|f| f.deadline);
        let mission = self.mission.as_ref().and_then(|m| m.machine.deadline().map(Instant::from_std));
        let link = if self.state.link.connected {
            self.state.link.last_heartbeat.map(|t| t + self.init.config.link_lost_after)
        } else {
            None
        };
        min_deadline(min_deadline(command, mission), link)
    }

    // ---- telemetry ------------------------------------------------------------------------------------

    fn track_sequence(&mut self, component: u8, seq: u8) {
        let link = &mut self.state.link;
        link.packets_received += 1;
        if let Some(last) = self.sequences.insert(component, seq) {
            let gap = seq.wrapping_sub(last).wrapping_sub(1);
            // A large "gap" is a duplicate or reordered packet (or a reboot), not loss.
            if gap < 128 {
                link.packets_lost += u64::from(gap);
            }
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        self.track_sequence(frame.component_id, frame.sequence);
        self.state.link.last_heard = Some(now);
        let gcs = self.init.gcs_system_id;
        if let Some(m) = translate::mission_in(&frame.message, gcs) {
            self.on_mission_message(&m, now);
        }
        match frame.message {
            MavMessage::HEARTBEAT(d) if d.autopilot != MavAutopilot::MAV_AUTOPILOT_INVALID => {
                self.on_heartbeat(d.custom_mode, d.base_mode, now);
            }
            MavMessage::SYS_STATUS(d) => {
                let battery = self.state.battery.get_or_insert(Battery { voltage_v: None, remaining_pct: None });
                battery.voltage_v = (d.voltage_battery != u16::MAX).then(|| f64::from(d.voltage_battery) / 1000.0);
                battery.remaining_pct = u8::try_from(d.battery_remaining).ok();
            }
            MavMessage::BATTERY_STATUS(d) if d.id == 0 => {
                if let Ok(pct) = u8::try_from(d.battery_remaining) {
                    self.state.battery.get_or_insert(Battery { voltage_v: None, remaining_pct: None }).remaining_pct =
                        Some(pct);
                }
            }
            MavMessage::GLOBAL_POSITION_INT(d) => {
                let position = Position {
                    point: GeoPoint::from_e7(d.lat, d.lon),
                    alt_msl_m: f64::from(d.alt) / 1000.0,
                    relative_alt_m: f64::from(d.relative_alt) / 1000.0,
                };
                self.state.position = Some(position);
                self.state.velocity = Some(VelocityNed {
                    north_mps: f64::from(d.vx) / 100.0,
                    east_mps: f64::from(d.vy) / 100.0,
                    down_mps: f64::from(d.vz) / 100.0,
                });
                if d.hdg != u16::MAX {
                    self.state.heading_deg = Some(f64::from(d.hdg) / 100.0);
                }
                self.capture.on_position(d.time_boot_ms, position);
            }
            MavMessage::GPS_RAW_INT(d) => {
                self.state.gps = Some(GpsStatus {
                    fix: translate::gps_fix(d.fix_type as u8),
                    satellites: (d.satellites_visible != u8::MAX).then_some(d.satellites_visible),
                });
            }
            MavMessage::ATTITUDE(d) => {
                let attitude =
                    Attitude { roll_rad: f64::from(d.roll), pitch_rad: f64::from(d.pitch), yaw_rad: f64::from(d.yaw) };
                self.state.attitude = Some(attitude);
                self.capture.on_attitude(d.time_boot_ms, attitude);
            }
            MavMessage::HOME_POSITION(d) => {
                self.state.home = Some(Position {
                    point: GeoPoint::from_e7(d.latitude, d.longitude),
                    alt_msl_m: f64::from(d.altitude) / 1000.0,
                    relative_alt_m: 0.0,
                });
            }
            MavMessage::MISSION_CURRENT(d) if self.state.mission.current_seq != Some(d.seq) => {
                self.state.mission.current_seq = Some(d.seq);
                self.emit(VehicleEventKind::MissionCurrent { seq: d.seq });
            }
            MavMessage::MISSION_ITEM_REACHED(d) => {
                self.state.mission.last_reached_seq = Some(d.seq);
                self.emit(VehicleEventKind::MissionItemReached { seq: d.seq });
            }
            MavMessage::STATUSTEXT(d) => {
                self.on_statustext(translate::severity(d.severity), translate::text(&d.text), now)
            }
            MavMessage::NAMED_VALUE_FLOAT(d) => self.emit(VehicleEventKind::NamedValue {
                name: translate::text(&d.name),
                value: d.value,
                time_boot_ms: d.time_boot_ms,
            }),
            MavMessage::COMMAND_ACK(d) if d.target_system == 0 || d.target_system == gcs => {
                self.on_command_ack(d.command as u16, d.result as u8, now);
            }
            MavMessage::CAMERA_IMAGE_CAPTURED(d) => {
                let msg = ImageCaptured {
                    time_boot_ms: d.time_boot_ms,
                    time_utc_us: d.time_utc,
                    position: Position {
                        point: GeoPoint::from_e7(d.lat, d.lon),
                        alt_msl_m: f64::from(d.alt) / 1000.0,
                        relative_alt_m: f64::from(d.relative_alt) / 1000.0,
                    },
                    q: d.q,
                    image_index: d.image_index,
                    file_url: translate::text(&d.file_url),
                };
                let (capture, missing) = self.capture.on_image_captured(msg);
                for index in missing {
                    #[allow(clippy::cast_precision_loss)]
                    let params = [CAMERA_IMAGE_CAPTURED_ID, index as f32, 0.0, 0.0, 0.0, 0.0, 0.0];
                    // Ask the camera component that announced the capture.
                    let spec = CommandSpec { command: REQUEST_MESSAGE, params, int: None };
                    self.queue.push_back((spec, Origin::Internal));
                }
                if let Some(capture) = capture {
                    self.emit(VehicleEventKind::Capture(Box::new(capture)));
                }
                self.pump(now);
            }
            MavMessage::CAMERA_FEEDBACK(d) => {
                let capture = self.capture.on_feedback(Feedback {
                    time_usec: d.time_usec,
                    position: Position {
                        point: GeoPoint::from_e7(d.lat, d.lng),
                        alt_msl_m: f64::from(d.alt_msl),
                        relative_alt_m: f64::from(d.alt_rel),
                    },
                    attitude: Attitude::from_degrees(f64::from(d.roll), f64::from(d.pitch), f64::from(d.yaw)),
                    image_index: d.img_idx,
                });
                self.emit(VehicleEventKind::Capture(Box::new(capture)));
            }
            MavMessage::CAMERA_TRIGGER(d) => {
                let capture = self.capture.on_trigger(d.time_usec, d.seq);
                self.emit(VehicleEventKind::Capture(Box::new(capture)));
            }
            MavMessage::GIMBAL_DEVICE_ATTITUDE_STATUS(d) => {
                if let Some(rotation) = Rotation::from_quaternion(d.q.map(f64::from)) {
                    // YAW_LOCK (16) or YAW_IN_EARTH_FRAME (64): yaw relative to north.
                    let earth_yaw = d.flags.bits() & (16 | 64) != 0;
                    self.capture.on_gimbal(rotation, earth_yaw);
                }
            }
            MavMessage::MOUNT_STATUS(d) => {
                let cdeg = |v: i32| f64::from(v) / 100.0;
                let head = Attitude::from_degrees(cdeg(d.pointing_b), cdeg(d.pointing_a), cdeg(d.pointing_c));
                self.capture.on_gimbal(Rotation::from_attitude(head), false);
            }
            _ => {}
        }
    }

    fn on_heartbeat(&mut self, custom_mode: u32, base_mode: MavModeFlag, now: Instant) {
        let link = &mut self.state.link;
        link.last_heartbeat = Some(now);
        if !link.connected {
            link.connected = true;
            if self.was_lost {
                self.was_lost = false;
                tracing::warn!("Vehicle link recovered.");
                self.emit(VehicleEventKind::LinkRecovered);
            }
        }
        if self.state.custom_mode != custom_mode {
            let autopilot = self.state.autopilot;
            let mode = autopilot.decode_mode(custom_mode);
            let name = autopilot.mode_name(custom_mode);
            self.state.custom_mode = custom_mode;
            self.state.mode = mode;
            self.state.mode_name.clone_from(&name);
            self.emit(VehicleEventKind::ModeChanged { mode, name });
        }
        let armed = base_mode.contains(MavModeFlag::MAV_MODE_FLAG_SAFETY_ARMED);
        if armed != self.state.armed {
            self.state.armed = armed;
            self.emit(VehicleEventKind::ArmedChanged { armed });
        }
    }

    fn on_statustext(&mut self, severity: super::Severity, text: String, now: Instant) {
        if self.statustexts.len() == STATUSTEXT_HISTORY {
            self.statustexts.pop_front();
        }
        self.statustexts.push_back((now, text.clone()));
        let refused = self.in_flight.as_ref().and_then(|f| f.refused);
        self.emit(VehicleEventKind::StatusText { severity, text: text.clone() });
        if let Some(result) = refused {
            self.finish_command(Err(result), Some(text), now);
        }
    }

    fn check_link(&mut self, now: Instant) {
        let Some(last) = self.state.link.last_heartbeat else { return };
        let silent_for = now.saturating_duration_since(last);
        if self.state.link.connected && silent_for >= self.init.config.link_lost_after {
            self.state.link.connected = false;
            self.was_lost = true;
            tracing::error!(?silent_for, "Vehicle link lost.");
            self.emit(VehicleEventKind::LinkLost { silent_for });
        }
    }

    // ---- commands -------------------------------------------------------------------------------------

    fn start_rate_requests(&mut self, now: Instant) {
        let mut rates = self.init.config.telemetry_rates.clone();
        if rates.is_empty() {
            return;
        }
        let (first, hz) = rates.remove(0);
        self.pending_rates = rates;
        self.queue.push_back((interval_spec(first, hz), Origin::RateProbe));
        self.pump(now);
    }

    fn fall_back_to_data_streams(&mut self) {
        let mut streams: Vec<(u8, u16)> = Vec::new();
        for (message, hz) in
            std::iter::once(&(TelemetryMessage::SysStatus, 1.0)).chain(&self.init.config.telemetry_rates)
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rate = hz.ceil().clamp(1.0, 50.0) as u16;
            match streams.iter_mut().find(|(s, _)| *s == message.data_stream()) {
                Some((_, r)) => *r = (*r).max(rate),
                None => streams.push((message.data_stream(), rate)),
            }
        }
        tracing::info!(?streams, "SET_MESSAGE_INTERVAL not acknowledged; using REQUEST_DATA_STREAM.");
        for (stream, rate) in streams {
            if let Some(message) = translate::request_data_stream(stream, rate, self.target()) {
                self.send(message);
            }
        }
    }

    fn on_request(&mut self, request: VehicleRequest, now: Instant) {
        match request {
            VehicleRequest::Command { spec, reply } => {
                self.queue.push_back((spec, Origin::Caller(reply)));
                self.pump(now);
            }
            VehicleRequest::Mission { op, reply } => self.start_mission(op, reply, now),
        }
    }

    /// Starts the next queued command when none is in flight.
    fn pump(&mut self, now: Instant) {
        while self.in_flight.is_none() {
            let Some((spec, origin)) = self.queue.pop_front() else { return };
            let Some(message) = translate::command_out(&spec, 0, self.target()) else {
                let reason = format!("MAV_CMD {} or its frame is not in the MAVLink dialect", spec.command);
                if let Origin::Caller(reply) = origin {
                    let _ = reply.send(Err(CommandError::InvalidArgument { reason }));
                }
                continue;
            };
            self.send(message);
            let max_attempts = match origin {
                Origin::Caller(_) => self.init.config.command_attempts.max(1),
                // Older ArduPilot ignores SET_MESSAGE_INTERVAL: one try, then fall back.
                Origin::RateProbe | Origin::Internal => 1,
            };
            self.in_flight = Some(InFlight {
                spec,
                origin,
                attempts: 1,
                max_attempts,
                first_sent: now,
                deadline: now + self.init.config.command_timeout,
                refused: None,
            });
        }
    }

    fn recent_reason(&self, since: Instant) -> Option<String> {
        let cutoff = since.checked_sub(REASON_MAX_AGE).unwrap_or(since);
        self.statustexts
            .iter()
            .rev()
            .take_while(|(t, _)| self.last_command_done.is_none_or(|done| *t > done))
            .find(|(t, _)| *t >= cutoff)
            .map(|(_, text)| text.clone())
    }

    fn on_command_ack(&mut self, command: u16, result: u8, now: Instant) {
        let Some(flight) = self.in_flight.as_mut() else { return };
        if flight.spec.command != command || flight.refused.is_some() {
            return;
        }
        match translate::command_result(result) {
            None if result == 5 => {
                // IN_PROGRESS: the vehicle is working on it; wait longer, do not resend.
                flight.deadline = now + self.init.config.in_progress_timeout;
                flight.attempts = flight.max_attempts;
            }
            None => self.finish_command(Ok(()), None, now),
            Some(refusal) => {
                let first_sent = flight.first_sent;
                match self.recent_reason(first_sent) {
                    Some(reason) => self.finish_command(Err(refusal), Some(reason), now),
                    None => {
                        if let Some(flight) = self.in_flight.as_mut() {
                            flight.refused = Some(refusal);
                            flight.deadline = now + REASON_GRACE;
                        }
                    }
                }
            }
        }
    }

    fn command_timeout(&mut self, now: Instant) {
        let Some(flight) = self.in_flight.as_mut() else { return };
        if now < flight.deadline {
            return;
        }
        if let Some(refusal) = flight.refused {
            self.finish_command(Err(refusal), None, now);
            return;
        }
        if flight.attempts < flight.max_attempts {
            // Resend with the confirmation counter incremented, as the command protocol asks.
            let confirmation = u8::try_from(flight.attempts).unwrap_or(u8::MAX);
            flight.attempts += 1;
            flight.deadline = now + self.init.config.command_timeout;
            let spec = flight.spec;
            if let Some(message) = translate::command_out(&spec, confirmation, self.target()) {
                self.send(message);
            }
            return;
        }
        let attempts = flight.attempts;
        let command = flight.spec.command;
        let Some(flight) = self.in_flight.take() else { return };
        let error = CommandError::Timeout { command, name: translate::command_name(command), attempts };
        self.complete(flight.origin, Err(error), now);
    }

    /// Ends the in-flight command: `Ok`, or refused with `result` and `reason`.
    fn finish_command(&mut self, outcome: Result<(), CommandResult>, reason: Option<String>, now: Instant) {
        let Some(flight) = self.in_flight.take() else { return };
        let command = flight.spec.command;
        let result = outcome.map_err(|result| CommandError::Refused {
            command,
            name: translate::command_name(command),
            result,
            reason,
        });
        self.complete(flight.origin, result, now);
    }

    fn complete(&mut self, origin: Origin, result: Result<(), CommandError>, now: Instant) {
        self.last_command_done = Some(now);
        match origin {
            Origin::Caller(reply) => {
                // The caller may have stopped waiting; that is its choice.
                let _ = reply.send(result);
            }
            Origin::RateProbe => match result {
                Ok(()) => {
                    for (message, hz) in std::mem::take(&mut self.pending_rates) {
                        self.queue.push_back((interval_spec(message, hz), Origin::Internal));
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "SET_MESSAGE_INTERVAL failed.");
                    self.pending_rates.clear();
                    self.fall_back_to_data_streams();
                }
            },
            Origin::Internal => {
                if let Err(error) = result {
                    tracing::debug!(%error, "Internal request failed.");
                }
            }
        }
        self.pump(now);
    }

    fn on_tick(&mut self, now: Instant) {
        self.check_link(now);
        self.command_timeout(now);
        if let Some(active) = self.mission.as_mut() {
            let step = active.machine.tick(now.into_std());
            self.apply_mission_step(step);
        }
    }

    // ---- missions -------------------------------------------------------------------------------------

    fn home_placeholder(&self) -> MissionItem {
        let (x, y, z) = match self.state.home {
            #[allow(clippy::cast_possible_truncation)]
            Some(home) => (home.point.lat_e7(), home.point.lon_e7(), home.alt_msl_m as f32),
            None => (0, 0, 0.0),
        };
        MissionItem {
            command: cmd::NAV_WAYPOINT,
            frame: MissionFrame::Global,
            current: false,
            autocontinue: true,
            params: [0.0; 4],
            x,
            y,
            z,
        }
    }

    fn start_mission(
        &mut self,
        op: MissionOp,
        reply: oneshot::Sender<Result<MissionOutcome, MissionError>>,
        now: Instant,
    ) {
        if self.mission.is_some() {
            let _ = reply.send(Err(MissionError::Busy));
            return;
        }
        let ardupilot_mission = |kind| self.state.autopilot == AutopilotKind::ArduPilot && kind == MissionKind::Mission;
        let config = self.init.config.mission;
        let now_std = now.into_std();
        let (machine, step, strip_home) = match op {
            MissionOp::Upload(kind, items) => {
                let mut items = items;
                if ardupilot_mission(kind) {
                    items.insert(0, self.home_placeholder());
                }
                for (index, item) in items.iter().enumerate() {
                    let probe = MissionMessage::Item { kind, seq: 0, item: *item };
                    if let Err(bad) = translate::mission_out(&probe, (0, 0)) {
                        let reason = match bad {
                            Untranslatable::Command(c) => format!("MAV_CMD {c} is not in the MAVLink dialect"),
                            Untranslatable::Frame(f) => format!("MAV_FRAME {f} is not in the MAVLink dialect"),
                        };
                        let _ = reply.send(Err(MissionError::UnsupportedItem { index, reason }));
                        return;
                    }
                }
                match MissionTransfer::upload(kind, items, config, now_std) {
                    Ok((machine, step)) => (machine, step, false),
                    Err(error) => {
                        let _ = reply.send(Err(error));
                        return;
                    }
                }
            }
            MissionOp::Download(kind) => {
                let (machine, step) = MissionTransfer::download(kind, config, now_std);
                (machine, step, ardupilot_mission(kind))
            }
            MissionOp::Clear(kind) => {
                let (machine, step) = MissionTransfer::clear(kind, config, now_std);
                (machine, step, false)
            }
            MissionOp::SetCurrent(seq) => {
                let (machine, step) = MissionTransfer::set_current(seq, config, now_std);
                (machine, step, false)
            }
        };
        self.mission = Some(ActiveMission { machine, reply, strip_home });
        self.apply_mission_step(step);
    }

    fn on_mission_message(&mut self, message: &MissionMessage, now: Instant) {
        if let Some(active) = self.mission.as_mut() {
            let step = active.machine.handle(message, now.into_std());
            self.apply_mission_step(step);
        }
    }

    fn apply_mission_step(&mut self, step: Step) {
        let target = self.target();
        for message in &step.send {
            match translate::mission_out(message, target) {
                Ok(m) => self.send(m),
                Err(bad) => tracing::warn!(?bad, "Mission message cannot be translated."),
            }
        }
        let Some(result) = step.done else { return };
        let Some(active) = self.mission.take() else { return };
        let result = match result {
            Ok(MissionOutcome::Downloaded(mut items)) if active.strip_home => {
                if !items.is_empty() {
                    items.remove(0);
                }
                Ok(MissionOutcome::Downloaded(items))
            }
            other => other,
        };
        if let Err(error) = &result {
            tracing::warn!(%error, "Mission transfer failed.");
        }
        let _ = active.reply.send(result);
    }
}

fn interval_spec(message: TelemetryMessage, hz: f32) -> CommandSpec {
    let interval_us = if hz > 0.0 { 1e6 / hz } else { -1.0 };
    #[allow(clippy::cast_precision_loss)]
    let id = message.message_id() as f32;
    CommandSpec { command: SET_MESSAGE_INTERVAL, params: [id, interval_us, 0.0, 0.0, 0.0, 0.0, 0.0], int: None }
}

#[cfg(test)]
#[allow(deprecated)] // REQUEST_DATA_STREAM is what old ArduPilot needs.
mod tests {
    use mavlink::dialects::ardupilotmega::{
        COMMAND_ACK_DATA, HEARTBEAT_DATA, MavCmd, MavResult, MavSeverity, MavType, STATUSTEXT_DATA,
    };
    use mavlink::types::CharArray;

    use super::*;

    struct Harness {
        handle: VehicleHandle,
        inbox: mpsc::Sender<Frame>,
        link: mpsc::Receiver<Outgoing>,
        events: broadcast::Receiver<VehicleEvent>,
        seq: u8,
        _tracker: TaskTracker,
    }

    fn config() -> VehicleConfig {
        VehicleConfig { telemetry_rates: Vec::new(), ..VehicleConfig::default() }
    }

    fn harness(config: VehicleConfig) -> Harness {
        let (link_tx, link) = mpsc::channel(64);
        let (events_tx, events) = broadcast::channel(64);
        let tracker = TaskTracker::new();
        let init = VehicleInit {
            system_id: 1,
            component_id: 1,
            gcs_system_id: 255,
            autopilot: AutopilotKind::ArduPilot,
            vehicle_type: VehicleType::Quadrotor,
            config,
            link: link_tx,
            events: events_tx,
        };
        let (handle, inbox) = VehicleActor::spawn(init, &tracker, CancellationToken::new());
        Harness { handle, inbox, link, events, seq: 0, _tracker: tracker }
    }

    impl Harness {
        async fn feed(&mut self, message: MavMessage) {
            self.seq = self.seq.wrapping_add(1);
            let frame = Frame { system_id: 1, component_id: 1, sequence: self.seq, message };
            self.inbox.send(frame).await.unwrap();
        }

        async fn sent(&mut self) -> MavMessage {
            let out = tokio::time::timeout(Duration::from_secs(60), self.link.recv()).await.unwrap().unwrap();
            assert_eq!(out.target_system, 1);
            out.message
        }

        async fn event(&mut self, mut pred: impl FnMut(&VehicleEventKind) -> bool) -> VehicleEventKind {
            loop {
                let event = tokio::time::timeout(Duration::from_secs(60), self.events.recv()).await.unwrap().unwrap();
                if pred(&event.kind) {
                    return event.kind;
                }
            }
        }
    }

    fn ack(command: MavCmd, result: MavResult) -> MavMessage {
        MavMessage::COMMAND_ACK(COMMAND_ACK_DATA { command, result, target_system: 255, ..Default::default() })
    }

    fn statustext(text: &str) -> MavMessage {
        let mut bytes = [0u8; 50];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        MavMessage::STATUSTEXT(STATUSTEXT_DATA {
            severity: MavSeverity::MAV_SEVERITY_CRITICAL,
            text: CharArray::new(bytes),
            ..Default::default()
        })
    }

    fn heartbeat(custom_mode: u32) -> MavMessage {
        MavMessage::HEARTBEAT(HEARTBEAT_DATA {
            custom_mode,
            mavtype: MavType::MAV_TYPE_QUADROTOR,
            autopilot: MavAutopilot::MAV_AUTOPILOT_ARDUPILOTMEGA,
            base_mode: MavModeFlag::MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | MavModeFlag::MAV_MODE_FLAG_SAFETY_ARMED,
            ..Default::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn unanswered_command_is_resent_with_rising_confirmation_then_times_out() {
        let mut h = harness(config());
        let handle = h.handle.clone();
        let arm = tokio::spawn(async move { handle.arm().await });
        for expected in 0..3u8 {
            match h.sent().await {
                MavMessage::COMMAND_LONG(c) => {
                    assert_eq!(c.command, MavCmd::MAV_CMD_COMPONENT_ARM_DISARM);
                    assert_eq!(c.confirmation, expected);
                    assert_eq!(c.param1, 1.0);
                }
                other => panic!("{other:?}"),
            }
        }
        match arm.await.unwrap() {
            Err(CommandError::Timeout { command: 400, attempts: 3, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn in_progress_waits_without_resending() {
        let mut h = harness(config());
        let handle = h.handle.clone();
        let takeoff = tokio::spawn(async move { handle.command_long(22, [0.0; 7]).await });
        assert!(matches!(h.sent().await, MavMessage::COMMAND_LONG(_)));
        h.feed(ack(MavCmd::MAV_CMD_NAV_TAKEOFF, MavResult::MAV_RESULT_IN_PROGRESS)).await;
        // Longer than the command timeout: an IN_PROGRESS command is not resent.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(h.link.try_recv().is_err());
        h.feed(ack(MavCmd::MAV_CMD_NAV_TAKEOFF, MavResult::MAV_RESULT_ACCEPTED)).await;
        assert!(takeoff.await.unwrap().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn refusal_carries_the_statustext_sent_before_or_just_after_it() {
        let mut h = harness(config());
        let handle = h.handle.clone();
        let arm = tokio::spawn(async move { handle.arm().await });
        h.sent().await;
        h.feed(statustext("PreArm: EKF attitude is bad")).await;
        h.feed(ack(MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, MavResult::MAV_RESULT_FAILED)).await;
        match arm.await.unwrap() {
            Err(CommandError::Refused { result: CommandResult::Failed, reason: Some(reason), .. }) => {
                assert_eq!(reason, "PreArm: EKF attitude is bad");
            }
            other => panic!("{other:?}"),
        }
        // The reason arriving just after the ACK (PX4 order) is still attached; the old text is not reused.
        let handle = h.handle.clone();
        let arm = tokio::spawn(async move { handle.arm().await });
        h.sent().await;
        h.feed(ack(MavCmd::MAV_CMD_COMPONENT_ARM_DISARM, MavResult::MAV_RESULT_DENIED)).await;
        h.feed(statustext("Arm: Need Position Estimate")).await;
        match arm.await.unwrap() {
            Err(CommandError::Refused { result: CommandResult::Denied, reason: Some(reason), .. }) => {
                assert_eq!(reason, "Arm: Need Position Estimate");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn link_lost_after_silence_and_recovered_on_heartbeat() {
        let mut h = harness(config());
        h.feed(heartbeat(5)).await;
        let kind = h.event(|k| matches!(k, VehicleEventKind::LinkLost { .. })).await;
        let VehicleEventKind::LinkLost { silent_for } = kind else { unreachable!() };
        assert!(silent_for >= Duration::from_secs(5));
        assert!(!h.handle.state().link.connected);
        h.feed(heartbeat(3)).await;
        h.event(|k| matches!(k, VehicleEventKind::LinkRecovered)).await;
        let mut watch = h.handle.watch();
        let state = watch.wait_for(|s| s.mode == crate::mode::FlightMode::Mission).await.unwrap().clone();
        assert!(state.armed && state.link.connected);
        assert_eq!(state.mode_name, "AUTO");
    }

    #[tokio::test(start_paused = true)]
    async fn unacknowledged_set_message_interval_falls_back_to_data_streams() {
        let mut h = harness(VehicleConfig::default());
        match h.sent().await {
            MavMessage::COMMAND_LONG(c) => assert_eq!(c.command, MavCmd::MAV_CMD_SET_MESSAGE_INTERVAL),
            other => panic!("{other:?}"),
        }
        // Default rates span the EXTENDED_STATUS (2), POSITION (6), EXTRA1 (10) and EXTRA2 (11) groups.
        let mut streams = Vec::new();
        for _ in 0..4 {
            let MavMessage::REQUEST_DATA_STREAM(d) = h.sent().await else { panic!("not a stream request") };
            assert_eq!(d.start_stop, 1);
            streams.push(d.req_stream_id as u8);
        }
        streams.sort_unstable();
        assert_eq!(streams, vec![2, 6, 10, 11]);
    }

    #[tokio::test(start_paused = true)]
    async fn acknowledged_set_message_interval_requests_every_rate() {
        let mut h = harness(VehicleConfig::default());
        let expected = VehicleConfig::default().telemetry_rates.len();
        for _ in 0..expected {
            let MavMessage::COMMAND_LONG(c) = h.sent().await else { panic!("not a command") };
            assert_eq!(c.command, MavCmd::MAV_CMD_SET_MESSAGE_INTERVAL);
            h.feed(ack(MavCmd::MAV_CMD_SET_MESSAGE_INTERVAL, MavResult::MAV_RESULT_ACCEPTED)).await;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(h.link.try_recv().is_err(), "no REQUEST_DATA_STREAM after an ACK");
    }

    #[tokio::test(start_paused = true)]
    async fn sequence_gaps_count_as_loss() {
        let h = harness(config());
        for seq in [10u8, 11, 15, 16] {
            let frame = Frame { system_id: 1, component_id: 1, sequence: seq, message: heartbeat(5) };
            h.inbox.send(frame).await.unwrap();
        }
        let mut watch = h.handle.watch();
        let state = watch.wait_for(|s| s.link.packets_received == 4).await.unwrap().clone();
        assert_eq!(state.link.packets_lost, 3);
        assert!((state.link.loss_ratio() - 3.0 / 7.0).abs() < 1e-12);
    }
}
