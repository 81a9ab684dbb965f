//! The vehicle side of the MAVLink mission protocol for MISSION, FENCE and RALLY lists: accepts uploads (asking
//! for each item, re-asking on timeouts), serves downloads and clears. Sans-IO: messages and the wall clock in,
//! messages out.
//!
//! Personality differences: ArduPilot asks with `MISSION_REQUEST` (even on MAVLink 2) and keeps home at seq 0 of
//! the mission list; PX4 asks with `MISSION_REQUEST_INT`.

// ArduPilot still asks with the deprecated MISSION_REQUEST and accepts MISSION_ITEM; the sim must too.
#![allow(deprecated)]

use std::time::Duration;

use mavlink::dialects::ardupilotmega::{
    MISSION_ACK_DATA, MISSION_COUNT_DATA, MISSION_ITEM_DATA, MISSION_ITEM_INT_DATA, MISSION_REQUEST_DATA,
    MISSION_REQUEST_INT_DATA, MavCmd, MavFrame, MavMessage, MavMissionResult, MavMissionType,
};

/// How long the vehicle waits for the next item before asking again, and how often it asks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProtocolTimings {
    /// Wait for an item after requesting it (wall time: this is link timing, not vehicle timing).
    pub item_timeout: Duration,
    /// Requests for one item before the upload is abandoned.
    pub retries: u32,
}

impl Default for ProtocolTimings {
    fn default() -> Self {
        // The mission protocol's spec defaults.
        Self { item_timeout: Duration::from_millis(1500), retries: 5 }
    }
}

/// Most items one list holds; more is refused with `MAV_MISSION_NO_SPACE`.
pub(crate) const MAX_ITEMS: u16 = 724;

/// The three lists a vehicle keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Mission,
    Fence,
    Rally,
}

impl ListKind {
    fn from_mav(kind: MavMissionType) -> Option<Self> {
        match kind {
            MavMissionType::MAV_MISSION_TYPE_MISSION => Some(Self::Mission),
            MavMissionType::MAV_MISSION_TYPE_FENCE => Some(Self::Fence),
            MavMissionType::MAV_MISSION_TYPE_RALLY => Some(Self::Rally),
            _ => None,
        }
    }

    fn to_mav(self) -> MavMissionType {
        match self {
            Self::Mission => MavMissionType::MAV_MISSION_TYPE_MISSION,
            Self::Fence => MavMissionType::MAV_MISSION_TYPE_FENCE,
            Self::Rally => MavMissionType::MAV_MISSION_TYPE_RALLY,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Mission => 0,
            Self::Fence => 1,
            Self::Rally => 2,
        }
    }
}

/// What changed in the stored lists after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreEvent {
    /// A list was uploaded completely and replaced.
    Replaced(ListKind),
    /// A list was cleared.
    Cleared(ListKind),
}

/// Who we talk to (system id, component id).
type Partner = (u8, u8);

#[derive(Debug)]
struct Upload {
    kind: ListKind,
    count: u16,
    items: Vec<MISSION_ITEM_INT_DATA>,
    partner: Partner,
    deadline: Duration,
    requests_left: u32,
}

/// The stored lists and the upload in progress.
#[derive(Debug)]
pub(crate) struct MissionStore {
    request_int: bool,
    home_at_zero: bool,
    timings: ProtocolTimings,
    lists: [Vec<MISSION_ITEM_INT_DATA>; 3],
    upload: Option<Upload>,
}

/// Whether a frame carries latitude/longitude in x/y.
pub(crate) fn is_global(frame: MavFrame) -> bool {
    matches!(frame as u32, 0 | 3 | 5 | 6 | 10 | 11)
}

fn item_from_float(item: &MISSION_ITEM_DATA) -> MISSION_ITEM_INT_DATA {
    // Float items carry degrees; the store keeps degrees * 1e7 like MISSION_ITEM_INT.
    #[allow(clippy::cast_possible_truncation)]
    let (x, y) = if is_global(item.frame) {
        ((f64::from(item.x) * 1e7).round() as i32, (f64::from(item.y) * 1e7).round() as i32)
    } else {
        (item.x.round() as i32, item.y.round() as i32)
    };
    MISSION_ITEM_INT_DATA {
        param1: item.param1,
        param2: item.param2,
        param3: item.param3,
        param4: item.param4,
        x,
        y,
        z: item.z,
        seq: item.seq,
        command: item.command,
        target_system: item.target_system,
        target_component: item.target_component,
        frame: item.frame,
        current: item.current,
        autocontinue: item.autocontinue,
        mission_type: item.mission_type,
    }
}

fn item_to_float(item: &MISSION_ITEM_INT_DATA) -> MISSION_ITEM_DATA {
    // Degrees lose precision in f32 (about 1 m at 1e-5 degrees); that is MISSION_ITEM's known limit.
    #[allow(clippy::cast_possible_truncation)]
    let (x, y) = if is_global(item.frame) {
        ((f64::from(item.x) * 1e-7) as f32, (f64::from(item.y) * 1e-7) as f32)
    } else {
        #[allow(clippy::cast_precision_loss)]
        (item.x as f32, item.y as f32)
    };
    MISSION_ITEM_DATA {
        param1: item.param1,
        param2: item.param2,
        param3: item.param3,
        param4: item.param4,
        x,
        y,
        z: item.z,
        seq: item.seq,
        command: item.command,
        target_system: item.target_system,
        target_component: item.target_component,
        frame: item.frame,
        current: item.current,
        autocontinue: item.autocontinue,
        mission_type: item.mission_type,
    }
}

fn command_fits(kind: ListKind, command: MavCmd) -> bool {
    match kind {
        ListKind::Mission => true,
        ListKind::Fence => matches!(
            command,
            MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
                | MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION
                | MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION
                | MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION
                | MavCmd::MAV_CMD_NAV_FENCE_RETURN_POINT
        ),
        ListKind::Rally => command == MavCmd::MAV_CMD_NAV_RALLY_POINT,
    }
}

fn ack(partner: Partner, kind: ListKind, result: MavMissionResult) -> MavMessage {
    MavMessage::MISSION_ACK(MISSION_ACK_DATA {
        target_system: partner.0,
        target_component: partner.1,
        mavtype: result,
        mission_type: kind.to_mav(),
        ..Default::default()
    })
}

impl MissionStore {
    /// A store for an autopilot that asks with `MISSION_REQUEST_INT` (`request_int`) and keeps home at seq 0
    /// (`home_at_zero`).
    pub(crate) fn new(request_int: bool, home_at_zero: bool, timings: ProtocolTimings) -> Self {
        Self { request_int, home_at_zero, timings, lists: [Vec::new(), Vec::new(), Vec::new()], upload: None }
    }

    /// The stored list (for the mission of an ArduPilot, item 0 is whatever was uploaded there; the vehicle
    /// serves home instead).
    pub(crate) fn list(&self, kind: ListKind) -> &[MISSION_ITEM_INT_DATA] {
        &self.lists[kind.index()]
    }

    /// Whether an upload is in progress.
    #[cfg(test)]
    pub(crate) fn uploading(&self) -> bool {
        self.upload.is_some()
    }

    fn request(&self, upload: &Upload) -> MavMessage {
        let seq = u16::try_from(upload.items.len()).unwrap_or(u16::MAX);
        let (target_system, target_component) = upload.partner;
        if self.request_int {
            MavMessage::MISSION_REQUEST_INT(MISSION_REQUEST_INT_DATA {
                seq,
                target_system,
                target_component,
                mission_type: upload.kind.to_mav(),
            })
        } else {
            MavMessage::MISSION_REQUEST(MISSION_REQUEST_DATA {
                seq,
                target_system,
                target_component,
                mission_type: upload.kind.to_mav(),
            })
        }
    }

    /// Handles one message from `partner` at wall time `now`. `home` is the item served at seq 0 of an
    /// ArduPilot mission. Returns the replies and what changed.
    pub(crate) fn handle(
        &mut self,
        msg: &MavMessage,
        partner: Partner,
        now: Duration,
        home: &MISSION_ITEM_INT_DATA,
    ) -> (Vec<MavMessage>, Option<StoreEvent>) {
        let mut out = Vec::new();
        let mut event = None;
        match msg {
            MavMessage::MISSION_COUNT(count) => {
                let Some(kind) = ListKind::from_mav(count.mission_type) else {
                    out.push(ack(partner, ListKind::Mission, MavMissionResult::MAV_MISSION_UNSUPPORTED));
                    return (out, None);
                };
                if count.count > MAX_ITEMS {
                    self.upload = None;
                    out.push(ack(partner, kind, MavMissionResult::MAV_MISSION_NO_SPACE));
                } else if count.count == 0 {
                    self.upload = None;
                    self.lists[kind.index()].clear();
                    out.push(ack(partner, kind, MavMissionResult::MAV_MISSION_ACCEPTED));
                    event = Some(StoreEvent::Cleared(kind));
                } else {
                    let upload = Upload {
                        kind,
                        count: count.count,
                        items: Vec::with_capacity(usize::from(count.count)),
                        partner,
                        deadline: now + self.timings.item_timeout,
                        requests_left: self.timings.retries,
                    };
                    out.push(self.request(&upload));
                    self.upload = Some(upload);
                }
            }
            MavMessage::MISSION_ITEM_INT(item) => event = self.receive_item(item.clone(), partner, now, &mut out),
            MavMessage::MISSION_ITEM(item) => event = self.receive_item(item_from_float(item), partner, now, &mut out),
            MavMessage::MISSION_REQUEST_LIST(request) => {
                if let Some(kind) = ListKind::from_mav(request.mission_type) {
                    let count = self.download_count(kind);
                    out.push(MavMessage::MISSION_COUNT(MISSION_COUNT_DATA {
                        count,
                        target_system: partner.0,
                        target_component: partner.1,
                        mission_type: kind.to_mav(),
                        ..Default::default()
                    }));
                } else {
                    out.push(ack(partner, ListKind::Mission, MavMissionResult::MAV_MISSION_UNSUPPORTED));
                }
            }
            MavMessage::MISSION_REQUEST_INT(request) => {
                out.push(self.serve(request.mission_type, request.seq, partner, home, true));
            }
            MavMessage::MISSION_REQUEST(request) => {
                out.push(self.serve(request.mission_type, request.seq, partner, home, false));
            }
            MavMessage::MISSION_CLEAR_ALL(clear) => {
                let kinds: &[ListKind] = match clear.mission_type {
                    MavMissionType::MAV_MISSION_TYPE_ALL => &[ListKind::Mission, ListKind::Fence, ListKind::Rally],
                    other => match ListKind::from_mav(other) {
                        Some(ListKind::Mission) => &[ListKind::Mission],
                        Some(ListKind::Fence) => &[ListKind::Fence],
                        Some(ListKind::Rally) => &[ListKind::Rally],
                        None => &[],
                    },
                };
                for kind in kinds {
                    self.lists[kind.index()].clear();
                }
                let reply_kind = kinds.first().copied().unwrap_or(ListKind::Mission);
                out.push(ack(partner, reply_kind, MavMissionResult::MAV_MISSION_ACCEPTED));
                event = kinds.first().map(|k| StoreEvent::Cleared(*k));
            }
            _ => {}
        }
        (out, event)
    }

    fn download_count(&self, kind: ListKind) -> u16 {
        let stored = u16::try_from(self.lists[kind.index()].len()).unwrap_or(u16::MAX);
        if kind == ListKind::Mission && self.home_at_zero { stored.max(1) } else { stored }
    }

    fn serve(
        &self,
        mission_type: MavMissionType,
        seq: u16,
        partner: Partner,
        home: &MISSION_ITEM_INT_DATA,
        int: bool,
    ) -> MavMessage {
        let Some(kind) = ListKind::from_mav(mission_type) else {
            return ack(partner, ListKind::Mission, MavMissionResult::MAV_MISSION_UNSUPPORTED);
        };
        if seq >= self.download_count(kind) {
            return ack(partner, kind, MavMissionResult::MAV_MISSION_INVALID_SEQUENCE);
        }
        let mut item = if kind == ListKind::Mission && self.home_at_zero && seq == 0 {
            home.clone()
        } else {
            self.lists[kind.index()][usize::from(seq)].clone()
        };
        item.seq = seq;
        item.target_system = partner.0;
        item.target_component = partner.1;
        item.mission_type = kind.to_mav();
        if int { MavMessage::MISSION_ITEM_INT(item) } else { MavMessage::MISSION_ITEM(item_to_float(&item)) }
    }

    fn receive_item(
        &mut self,
        item: MISSION_ITEM_INT_DATA,
        partner: Partner,
        now: Duration,
        out: &mut Vec<MavMessage>,
    ) -> Option<StoreEvent> {
        let upload = self.upload.as_mut()?;
        if upload.partner != partner || ListKind::from_mav(item.mission_type) != Some(upload.kind) {
            return None;
        }
        let expected = upload.items.len();
        if usize::from(item.seq) < expected {
            // A duplicate of an item we already have (our next request crossed it): keep waiting.
            return None;
        }
        if usize::from(item.seq) > expected {
            // Out of order: ask again for the one we need.
            upload.deadline = now + self.timings.item_timeout;
            let request = self.request(self.upload.as_ref()?);
            out.push(request);
            return None;
        }
        if !command_fits(upload.kind, item.command) {
            let kind = upload.kind;
            self.upload = None;
            out.push(ack(partner, kind, MavMissionResult::MAV_MISSION_UNSUPPORTED));
            return None;
        }
        upload.items.push(item);
        upload.deadline = now + self.timings.item_timeout;
        upload.requests_left = self.timings.retries;
        if upload.items.len() < usize::from(upload.count) {
            let request = self.request(self.upload.as_ref()?);
            out.push(request);
            return None;
        }
        let done = self.upload.take()?;
        self.lists[done.kind.index()] = done.items;
        out.push(ack(partner, done.kind, MavMissionResult::MAV_MISSION_ACCEPTED));
        Some(StoreEvent::Replaced(done.kind))
    }

    /// Re-asks for the awaited item when its timeout passed; abandons the upload (with
    /// `MAV_MISSION_OPERATION_CANCELLED`) when the retries are used up.
    pub(crate) fn tick(&mut self, now: Duration) -> Vec<MavMessage> {
        let Some(upload) = self.upload.as_mut() else { return Vec::new() };
        if now < upload.deadline {
            return Vec::new();
        }
        upload.requests_left = upload.requests_left.saturating_sub(1);
        if upload.requests_left == 0 {
            let (partner, kind) = (upload.partner, upload.kind);
            self.upload = None;
            return vec![ack(partner, kind, MavMissionResult::MAV_MISSION_OPERATION_CANCELLED)];
        }
        upload.deadline = now + self.timings.item_timeout;
        self.upload.as_ref().map(|u| self.request(u)).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GCS: Partner = (255, 190);

    fn home() -> MISSION_ITEM_INT_DATA {
        MISSION_ITEM_INT_DATA {
            x: 225_500_000,
            y: 1_138_800_000,
            command: MavCmd::MAV_CMD_NAV_WAYPOINT,
            frame: MavFrame::MAV_FRAME_GLOBAL,
            ..Default::default()
        }
    }

    fn count(n: u16, kind: MavMissionType) -> MavMessage {
        MavMessage::MISSION_COUNT(MISSION_COUNT_DATA { count: n, mission_type: kind, ..Default::default() })
    }

    fn item(seq: u16, command: MavCmd, kind: MavMissionType) -> MISSION_ITEM_INT_DATA {
        MISSION_ITEM_INT_DATA {
            seq,
            command,
            frame: MavFrame::MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
            x: 225_500_000 + i32::from(seq) * 100,
            y: 1_138_800_000,
            z: 30.0,
            mission_type: kind,
            ..Default::default()
        }
    }

    fn requested_seq(msg: &MavMessage) -> Option<(u16, bool)> {
        match msg {
            MavMessage::MISSION_REQUEST(r) => Some((r.seq, false)),
            MavMessage::MISSION_REQUEST_INT(r) => Some((r.seq, true)),
            _ => None,
        }
    }

    fn ack_result(msg: &MavMessage) -> Option<MavMissionResult> {
        match msg {
            MavMessage::MISSION_ACK(a) => Some(a.mavtype),
            _ => None,
        }
    }

    const T0: Duration = Duration::ZERO;
    const MISSION: MavMissionType = MavMissionType::MAV_MISSION_TYPE_MISSION;

    #[test]
    fn ardupilot_asks_with_mission_request_and_px4_with_the_int_variant() {
        for (request_int, expected) in [(false, false), (true, true)] {
            let mut store = MissionStore::new(request_int, !request_int, ProtocolTimings::default());
            let (out, _) = store.handle(&count(2, MISSION), GCS, T0, &home());
            assert_eq!(requested_seq(&out[0]), Some((0, expected)));
        }
    }

    #[test]
    fn upload_requests_each_item_then_acks_and_replaces() {
        let mut store = MissionStore::new(false, true, ProtocolTimings::default());
        let (out, _) = store.handle(&count(3, MISSION), GCS, T0, &home());
        assert_eq!(requested_seq(&out[0]), Some((0, false)));
        for seq in 0..3 {
            let msg = MavMessage::MISSION_ITEM_INT(item(seq, MavCmd::MAV_CMD_NAV_WAYPOINT, MISSION));
            let (out, event) = store.handle(&msg, GCS, T0, &home());
            if seq < 2 {
                assert_eq!(requested_seq(&out[0]), Some((seq + 1, false)));
                assert_eq!(event, None);
            } else {
                assert_eq!(ack_result(&out[0]), Some(MavMissionResult::MAV_MISSION_ACCEPTED));
                assert_eq!(event, Some(StoreEvent::Replaced(ListKind::Mission)));
            }
        }
        assert_eq!(store.list(ListKind::Mission).len(), 3);
    }

    #[test]
    fn float_items_are_accepted_and_converted() {
        let mut store = MissionStore::new(false, true, ProtocolTimings::default());
        store.handle(&count(1, MISSION), GCS, T0, &home());
        let float = item_to_float(&item(0, MavCmd::MAV_CMD_NAV_WAYPOINT, MISSION));
        let (out, _) = store.handle(&MavMessage::MISSION_ITEM(float), GCS, T0, &home());
        assert_eq!(ack_result(&out[0]), Some(MavMissionResult::MAV_MISSION_ACCEPTED));
        let stored = &store.list(ListKind::Mission)[0];
        assert!((stored.x - 225_500_000).abs() < 20, "{}", stored.x);
    }

    #[test]
    fn duplicates_are_ignored_and_gaps_re_requested() {
        let mut store = MissionStore::new(true, false, ProtocolTimings::default());
        store.handle(&count(3, MISSION), GCS, T0, &home());
        let first = MavMessage::MISSION_ITEM_INT(item(0, MavCmd::MAV_CMD_NAV_WAYPOINT, MISSION));
        store.handle(&first, GCS, T0, &home());
        let (out, _) = store.handle(&first, GCS, T0, &home());
        assert!(out.is_empty(), "{out:?}");
        let third = MavMessage::MISSION_ITEM_INT(item(2, MavCmd::MAV_CMD_NAV_WAYPOINT, MISSION));
        let (out, _) = store.handle(&third, GCS, T0, &home());
        assert_eq!(requested_seq(&out[0]), Some((1, true)));
        assert!(store.uploading());
    }

    #[test]
    fn lost_items_are_re_requested_then_the_upload_is_cancelled() {
        let timings = ProtocolTimings { item_timeout: Duration::from_millis(100), retries: 3 };
        let mut store = MissionStore::new(true, false, timings);
        store.handle(&count(2, MISSION), GCS, T0, &home());
        assert!(store.tick(Duration::from_millis(50)).is_empty());
        let out = store.tick(Duration::from_millis(100));
        assert_eq!(requested_seq(&out[0]), Some((0, true)));
        let out = store.tick(Duration::from_millis(200));
        assert_eq!(requested_seq(&out[0]), Some((0, true)));
        let out = store.tick(Duration::from_millis(300));
        assert_eq!(ack_result(&out[0]), Some(MavMissionResult::MAV_MISSION_OPERATION_CANCELLED));
        assert!(!store.uploading());
        assert!(store.list(ListKind::Mission).is_empty());
    }

    #[test]
    fn ardupilot_serves_home_at_seq_zero() {
        let mut store = MissionStore::new(false, true, ProtocolTimings::default());
        let request_list =
            MavMessage::MISSION_REQUEST_LIST(mavlink::dialects::ardupilotmega::MISSION_REQUEST_LIST_DATA {
                mission_type: MISSION,
                ..Default::default()
            });
        let (out, _) = store.handle(&request_list, GCS, T0, &home());
        let MavMessage::MISSION_COUNT(c) = &out[0] else { panic!("{out:?}") };
        assert_eq!(c.count, 1);
        let req = MavMessage::MISSION_REQUEST_INT(MISSION_REQUEST_INT_DATA {
            seq: 0,
            mission_type: MISSION,
            ..Default::default()
        });
        let (out, _) = store.handle(&req, GCS, T0, &home());
        let MavMessage::MISSION_ITEM_INT(i) = &out[0] else { panic!("{out:?}") };
        assert_eq!((i.x, i.y), (home().x, home().y));
        let req = MavMessage::MISSION_REQUEST_INT(MISSION_REQUEST_INT_DATA {
            seq: 1,
            mission_type: MISSION,
            ..Default::default()
        });
        let (out, _) = store.handle(&req, GCS, T0, &home());
        assert_eq!(ack_result(&out[0]), Some(MavMissionResult::MAV_MISSION_INVALID_SEQUENCE));
    }

    #[test]
    fn fence_lists_refuse_non_fence_items_and_clear_separately() {
        let fence = MavMissionType::MAV_MISSION_TYPE_FENCE;
        let mut store = MissionStore::new(true, false, ProtocolTimings::default());
        store.handle(&count(1, fence), GCS, T0, &home());
        let bad = MavMessage::MISSION_ITEM_INT(item(0, MavCmd::MAV_CMD_NAV_WAYPOINT, fence));
        let (out, _) = store.handle(&bad, GCS, T0, &home());
        assert_eq!(ack_result(&out[0]), Some(MavMissionResult::MAV_MISSION_UNSUPPORTED));
        store.handle(&count(1, fence), GCS, T0, &home());
        let good = MavMessage::MISSION_ITEM_INT(item(0, MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, fence));
        let (_, event) = store.handle(&good, GCS, T0, &home());
        assert_eq!(event, Some(StoreEvent::Replaced(ListKind::Fence)));
        store.handle(&count(1, MISSION), GCS, T0, &home());
        store.handle(&MavMessage::MISSION_ITEM_INT(item(0, MavCmd::MAV_CMD_NAV_WAYPOINT, MISSION)), GCS, T0, &home());
        let clear = MavMessage::MISSION_CLEAR_ALL(mavlink::dialects::ardupilotmega::MISSION_CLEAR_ALL_DATA {
            mission_type: fence,
            ..Default::default()
        });
        let (_, event) = store.handle(&clear, GCS, T0, &home());
        assert_eq!(event, Some(StoreEvent::Cleared(ListKind::Fence)));
        assert!(store.list(ListKind::Fence).is_empty());
        assert_eq!(store.list(ListKind::Mission).len(), 1);
    }

    #[test]
    fn too_many_items_is_no_space() {
        let mut store = MissionStore::new(true, false, ProtocolTimings::default());
        let (out, _) = store.handle(&count(MAX_ITEMS + 1, MISSION), GCS, T0, &home());
        assert_eq!(ack_result(&out[0]), Some(MavMissionResult::MAV_MISSION_NO_SPACE));
    }
}
