//! The MAVLink mission protocol (<https://mavlink.io/en/services/mission.html>) for the MISSION, FENCE and
//! RALLY lists, as a sans-IO state machine.
//!
//! [`MissionTransfer`] never touches a socket or a clock: it is started with `now`, fed the vehicle's
//! messages with [`MissionTransfer::handle`] and the passing of time with [`MissionTransfer::tick`], and each
//! call returns a [`Step`]: messages to send and, once, the result. The vehicle actor is the thin async driver
//! that translates [`MissionMessage`] to and from MAVLink and sleeps until [`MissionTransfer::deadline`].
//!
//! Timeouts follow the spec and are configurable in [`MissionConfig`] for slow radios:
//! - the vehicle drives uploads (it requests each item); we wait `ack_timeout` for each request or the final
//!   ack, and on silence resend our last message (the count, or the last item);
//! - we drive downloads; we wait `item_timeout` for each requested item and re-request it;
//! - `MISSION_COUNT` after `MISSION_REQUEST_LIST`, clear and set-current wait `ack_timeout`.
//!
//! Each wait is retried `retries` times, then the transfer fails with [`MissionError::Timeout`], which says the
//! stage and how far it got. Every `MISSION_ACK` error is a distinct [`MissionAckError`].
//!
//! Both `MISSION_REQUEST` (ArduPilot asks with it even on MAVLink 2) and `MISSION_REQUEST_INT` are answered with
//! `MISSION_ITEM_INT`. The machine sends lists exactly as given: ArduPilot's home-at-seq-0 convention is handled
//! one level up (see `VehicleHandle::upload`).

use std::time::{Duration, Instant};

use mission_planner::mission_item::{MissionItem, MissionKind};

use crate::error::{MissionAckError, MissionError, MissionStage};

/// Mission protocol timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissionConfig {
    /// How long to wait for a count, a request from the vehicle, or an ack (spec: 1500 ms).
    pub ack_timeout: Duration,
    /// How long to wait for an item we requested (spec: 250 ms).
    pub item_timeout: Duration,
    /// How many times a message is re-sent before giving up (spec: 5).
    pub retries: u32,
}

impl Default for MissionConfig {
    fn default() -> Self {
        Self { ack_timeout: Duration::from_millis(1500), item_timeout: Duration::from_millis(250), retries: 5 }
    }
}

/// The mission-protocol messages, without MAVLink types. Directions are noted per variant.
#[derive(Debug, Clone, PartialEq)]
pub enum MissionMessage {
    /// `MISSION_COUNT` (both ways).
    Count {
        /// Which list.
        kind: MissionKind,
        /// Number of items.
        count: u16,
    },
    /// `MISSION_REQUEST_LIST` (to the vehicle).
    RequestList {
        /// Which list.
        kind: MissionKind,
    },
    /// `MISSION_REQUEST_INT` (`int`) or the older `MISSION_REQUEST` (both ways).
    Request {
        /// Which list.
        kind: MissionKind,
        /// The item wanted.
        seq: u16,
        /// `true` for `MISSION_REQUEST_INT`.
        int: bool,
    },
    /// `MISSION_ITEM_INT` (or `MISSION_ITEM` received) (both ways).
    Item {
        /// Which list.
        kind: MissionKind,
        /// Sequence number.
        seq: u16,
        /// The item.
        item: MissionItem,
    },
    /// `MISSION_ACK` (both ways); `error` is `None` for `MAV_MISSION_ACCEPTED`.
    Ack {
        /// Which list.
        kind: MissionKind,
        /// The error, if any.
        error: Option<MissionAckError>,
    },
    /// `MISSION_CLEAR_ALL` (to the vehicle).
    ClearAll {
        /// Which list.
        kind: MissionKind,
    },
    /// `MISSION_SET_CURRENT` (to the vehicle).
    SetCurrent {
        /// The item to fly next.
        seq: u16,
    },
    /// `MISSION_CURRENT` (from the vehicle).
    Current {
        /// The item being flown.
        seq: u16,
    },
}

/// What a finished transfer produced.
#[derive(Debug, Clone, PartialEq)]
pub enum MissionOutcome {
    /// The vehicle accepted all `count` items.
    Uploaded {
        /// Items uploaded.
        count: u16,
    },
    /// The items the vehicle holds.
    Downloaded(Vec<MissionItem>),
    /// The list was cleared.
    Cleared,
    /// The vehicle now flies item `seq`.
    CurrentSet(u16),
}

/// The output of one call into the machine.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    /// Messages to send, in order.
    pub send: Vec<MissionMessage>,
    /// The result, once; after it the machine ignores all input.
    pub done: Option<Result<MissionOutcome, MissionError>>,
}

#[derive(Debug)]
enum Op {
    Upload { items: Vec<MissionItem>, waiting_first: bool, last_sent: u16, highest_sent: Option<u16> },
    Download { count: Option<u16>, items: Vec<MissionItem> },
    Clear,
    SetCurrent { seq: u16 },
}

/// One mission transfer (upload, download, clear or set current) as a sans-IO state machine.
#[derive(Debug)]
pub struct MissionTransfer {
    kind: MissionKind,
    op: Op,
    config: MissionConfig,
    deadline: Instant,
    attempts: u32,
    last: MissionMessage,
    finished: bool,
}

impl MissionTransfer {
    /// Starts uploading `items` (sequence = index) to the `kind` list.
    ///
    /// # Errors
    /// [`MissionError::TooManyItems`] beyond 65535 items.
    pub fn upload(
        kind: MissionKind,
        items: Vec<MissionItem>,
        config: MissionConfig,
        now: Instant,
    ) -> Result<(Self, Step), MissionError> {
        let count = u16::try_from(items.len()).map_err(|_| MissionError::TooManyItems { count: items.len() })?;
        let first = MissionMessage::Count { kind, count };
        let op = Op::Upload { items, waiting_first: true, last_sent: 0, highest_sent: None };
        Ok(Self::start(kind, op, first, config.ack_timeout, config, now))
    }

    /// Starts downloading the `kind` list.
    pub fn download(kind: MissionKind, config: MissionConfig, now: Instant) -> (Self, Step) {
        let op = Op::Download { count: None, items: Vec::new() };
        Self::start(kind, op, MissionMessage::RequestList { kind }, config.ack_timeout, config, now)
    }

    /// Starts clearing the `kind` list.
    pub fn clear(kind: MissionKind, config: MissionConfig, now: Instant) -> (Self, Step) {
        Self::start(kind, Op::Clear, MissionMessage::ClearAll { kind }, config.ack_timeout, config, now)
    }

    /// Starts setting the current mission item.
    pub fn set_current(seq: u16, config: MissionConfig, now: Instant) -> (Self, Step) {
        let kind = MissionKind::Mission;
        Self::start(kind, Op::SetCurrent { seq }, MissionMessage::SetCurrent { seq }, config.ack_timeout, config, now)
    }

    fn start(
        kind: MissionKind,
        op: Op,
        first: MissionMessage,
        timeout: Duration,
        config: MissionConfig,
        now: Instant,
    ) -> (Self, Step) {
        let machine =
            Self { kind, op, config, deadline: now + timeout, attempts: 1, last: first.clone(), finished: false };
        (machine, Step { send: vec![first], done: None })
    }

    /// When [`MissionTransfer::tick`] must be called next; `None` once finished.
    pub fn deadline(&self) -> Option<Instant> {
        (!self.finished).then_some(self.deadline)
    }

    /// Whether the result has been returned.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Which list this transfer works on.
    pub fn kind(&self) -> MissionKind {
        self.kind
    }

    fn progress(&self) -> (u16, u16) {
        match &self.op {
            Op::Upload { items, highest_sent, .. } => {
                (highest_sent.map_or(0, |h| h + 1), u16::try_from(items.len()).unwrap_or(u16::MAX))
            }
            Op::Download { count, items } => (u16::try_from(items.len()).unwrap_or(u16::MAX), count.unwrap_or(0)),
            Op::Clear | Op::SetCurrent { .. } => (0, 0),
        }
    }

    fn stage(&self) -> MissionStage {
        match &self.op {
            Op::Upload { waiting_first: true, .. } => MissionStage::Count,
            Op::Upload { last_sent, .. } => MissionStage::Item { seq: *last_sent },
            Op::Download { count: None, .. } => MissionStage::RequestList,
            Op::Download { items, .. } => MissionStage::Download { seq: u16::try_from(items.len()).unwrap_or(0) },
            Op::Clear => MissionStage::Clear,
            Op::SetCurrent { .. } => MissionStage::SetCurrent,
        }
    }

    fn finish(&mut self, result: Result<MissionOutcome, MissionError>, send: Vec<MissionMessage>) -> Step {
        self.finished = true;
        Step { send, done: Some(result) }
    }

    fn rejected(&mut self, error: MissionAckError) -> Step {
        let (items_sent, total) = self.progress();
        let err = MissionError::Rejected { kind: self.kind, error, stage: self.stage(), items_sent, total };
        self.finish(Err(err), Vec::new())
    }

    /// Sends `message` as fresh progress: attempts restart.
    fn send_progress(&mut self, message: MissionMessage, timeout: Duration, now: Instant) -> Step {
        self.attempts = 1;
        self.deadline = now + timeout;
        self.last = message.clone();
        Step { send: vec![message], done: None }
    }

    /// Feeds one message received from the vehicle.
    pub fn handle(&mut self, message: &MissionMessage, now: Instant) -> Step {
        if self.finished {
            return Step::default();
        }
        let kind = self.kind;
        let config = self.config;
        match (&mut self.op, message) {
            (
                Op::Upload { items, waiting_first, last_sent, highest_sent },
                MissionMessage::Request { kind: k, seq, .. },
            ) if *k == kind => {
                let Some(item) = items.get(usize::from(*seq)) else {
                    // A request beyond the list: not ours to answer (a stale transfer); the vehicle will time out.
                    return Step::default();
                };
                let reply = MissionMessage::Item { kind, seq: *seq, item: *item };
                *waiting_first = false;
                *last_sent = *seq;
                let is_new = highest_sent.is_none_or(|h| *seq > h);
                if is_new {
                    *highest_sent = Some(*seq);
                    self.send_progress(reply, config.ack_timeout, now)
                } else {
                    // A repeated or earlier request (our item was lost, or the vehicle is re-reading): answer
                    // it without counting it as progress, so a vehicle stuck re-requesting still times out.
                    self.last = reply.clone();
                    self.deadline = now + config.ack_timeout;
                    Step { send: vec![reply], done: None }
                }
            }
            (Op::Upload { items, .. }, MissionMessage::Ack { kind: k, error }) if *k == kind => match error {
                None => {
                    let count = u16::try_from(items.len()).unwrap_or(u16::MAX);
                    self.finish(Ok(MissionOutcome::Uploaded { count }), Vec::new())
                }
                Some(error) => self.rejected(*error),
            },
            (Op::Download { count: count @ None, .. }, MissionMessage::Count { kind: k, count: n }) if *k == kind => {
                *count = Some(*n);
                if *n == 0 {
                    let ack = MissionMessage::Ack { kind, error: None };
                    return self.finish(Ok(MissionOutcome::Downloaded(Vec::new())), vec![ack]);
                }
                self.send_progress(MissionMessage::Request { kind, seq: 0, int: true }, config.item_timeout, now)
            }
            (Op::Download { count: Some(n), items }, MissionMessage::Item { kind: k, seq, item }) if *k == kind => {
                let expected = u16::try_from(items.len()).unwrap_or(u16::MAX);
                if *seq != expected {
                    // Duplicate or out of order: the re-request on timeout asks for the right one again.
                    return Step::default();
                }
                items.push(*item);
                if expected + 1 == *n {
                    let items = std::mem::take(items);
                    let ack = MissionMessage::Ack { kind, error: None };
                    return self.finish(Ok(MissionOutcome::Downloaded(items)), vec![ack]);
                }
                let next = MissionMessage::Request { kind, seq: expected + 1, int: true };
                self.send_progress(next, config.item_timeout, now)
            }
            (Op::Download { .. }, MissionMessage::Ack { kind: k, error: Some(error) }) if *k == kind => {
                self.rejected(*error)
            }
            (Op::Clear, MissionMessage::Ack { kind: k, error }) if *k == kind => match error {
                None => self.finish(Ok(MissionOutcome::Cleared), Vec::new()),
                Some(error) => self.rejected(*error),
            },
            (Op::SetCurrent { seq }, MissionMessage::Current { seq: reported }) if reported == seq => {
                let seq = *seq;
                self.finish(Ok(MissionOutcome::CurrentSet(seq)), Vec::new())
            }
            (Op::SetCurrent { .. }, MissionMessage::Ack { kind: MissionKind::Mission, error: Some(error) }) => {
                self.rejected(*error)
            }
            _ => Step::default(),
        }
    }

    /// Advances time: past the deadline, resends the last message or gives up.
    pub fn tick(&mut self, now: Instant) -> Step {
        if self.finished || now < self.deadline {
            return Step::default();
        }
        if self.attempts > self.config.retries {
            let (items_sent, total) = self.progress();
            let err = MissionError::Timeout {
                kind: self.kind,
                stage: self.stage(),
                attempts: self.attempts,
                items_sent,
                total,
            };
            // Tell the vehicle we gave up on a download so it does not wait for us.
            let send = match self.op {
                Op::Download { count: Some(_), .. } => {
                    vec![MissionMessage::Ack { kind: self.kind, error: Some(MissionAckError::OperationCancelled) }]
                }
                _ => Vec::new(),
            };
            return self.finish(Err(err), send);
        }
        self.attempts += 1;
        let timeout = match self.last {
            MissionMessage::Request { .. } => self.config.item_timeout,
            _ => self.config.ack_timeout,
        };
        self.deadline = now + timeout;
        Step { send: vec![self.last.clone()], done: None }
    }
}

#[cfg(test)]
mod tests {
    use mission_planner::mission_item::cmd;

    use super::*;

    fn items(n: usize) -> Vec<MissionItem> {
        (0..n).map(|i| MissionItem::at(cmd::NAV_WAYPOINT, [0.0; 4], 473_977_000 + i as i32, 85_456_000, 30.0)).collect()
    }

    const K: MissionKind = MissionKind::Mission;

    fn req(seq: u16) -> MissionMessage {
        MissionMessage::Request { kind: K, seq, int: false }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn upload_answers_requests_in_order_and_finishes_on_ack() {
        let t0 = Instant::now();
        let list = items(3);
        let (mut m, step) = MissionTransfer::upload(K, list.clone(), MissionConfig::default(), t0).unwrap();
        assert_eq!(step.send, vec![MissionMessage::Count { kind: K, count: 3 }]);
        for seq in 0..3u16 {
            // ArduPilot asks with MISSION_REQUEST (int: false); PX4 with _INT: both get the item.
            let int = seq % 2 == 0;
            let step = m.handle(&MissionMessage::Request { kind: K, seq, int }, t0);
            assert_eq!(step.send, vec![MissionMessage::Item { kind: K, seq, item: list[usize::from(seq)] }]);
        }
        let step = m.handle(&MissionMessage::Ack { kind: K, error: None }, t0);
        assert_eq!(step.done, Some(Ok(MissionOutcome::Uploaded { count: 3 })));
        assert!(m.is_finished());
        assert_eq!(m.deadline(), None);
        assert_eq!(m.handle(&req(0), t0), Step::default());
    }

    #[test]
    fn upload_resends_lost_count_then_times_out_with_a_report() {
        let t0 = Instant::now();
        let config = MissionConfig::default();
        let (mut m, _) = MissionTransfer::upload(K, items(2), config, t0).unwrap();
        assert_eq!(m.tick(t0 + ms(1000)), Step::default());
        let mut now = t0;
        for _ in 0..config.retries {
            now += config.ack_timeout;
            assert_eq!(m.tick(now).send, vec![MissionMessage::Count { kind: K, count: 2 }]);
        }
        now += config.ack_timeout;
        let step = m.tick(now);
        assert!(matches!(
            step.done,
            Some(Err(MissionError::Timeout { stage: MissionStage::Count, attempts: 6, items_sent: 0, total: 2, .. }))
        ));
    }

    #[test]
    fn upload_handles_duplicate_and_out_of_order_requests() {
        let t0 = Instant::now();
        let list = items(3);
        let (mut m, _) = MissionTransfer::upload(K, list.clone(), MissionConfig::default(), t0).unwrap();
        m.handle(&req(0), t0);
        // Duplicate: our item 0 was lost; answer again.
        assert_eq!(m.handle(&req(0), t0).send.len(), 1);
        // Out of order (vehicle asks for 2 before 1): answer whatever is asked.
        assert_eq!(m.handle(&req(2), t0).send, vec![MissionMessage::Item { kind: K, seq: 2, item: list[2] }]);
        assert_eq!(m.handle(&req(1), t0).send, vec![MissionMessage::Item { kind: K, seq: 1, item: list[1] }]);
        // Beyond the list, other list types: ignored.
        assert_eq!(m.handle(&req(9), t0), Step::default());
        assert_eq!(
            m.handle(&MissionMessage::Request { kind: MissionKind::Fence, seq: 0, int: true }, t0),
            Step::default()
        );
        assert_eq!(m.handle(&MissionMessage::Ack { kind: MissionKind::Rally, error: None }, t0), Step::default());
        assert!(m.handle(&MissionMessage::Ack { kind: K, error: None }, t0).done.is_some());
    }

    #[test]
    fn upload_resends_last_item_when_the_next_request_is_lost() {
        let t0 = Instant::now();
        let list = items(2);
        let config = MissionConfig::default();
        let (mut m, _) = MissionTransfer::upload(K, list.clone(), config, t0).unwrap();
        m.handle(&req(0), t0);
        let step = m.tick(t0 + config.ack_timeout);
        assert_eq!(step.send, vec![MissionMessage::Item { kind: K, seq: 0, item: list[0] }]);
        // Progress resets the retry budget.
        m.handle(&req(1), t0 + config.ack_timeout);
        assert_eq!(m.deadline(), Some(t0 + config.ack_timeout * 2));
    }

    #[test]
    fn a_vehicle_stuck_re_requesting_still_times_out() {
        let t0 = Instant::now();
        let config = MissionConfig::default();
        let (mut m, _) = MissionTransfer::upload(K, items(2), config, t0).unwrap();
        m.handle(&req(0), t0);
        let mut now = t0;
        let mut done = None;
        for _ in 0..20 {
            now += config.ack_timeout;
            m.handle(&req(0), now);
            let step = m.tick(now + config.ack_timeout);
            if step.done.is_some() {
                done = step.done;
                break;
            }
        }
        assert!(matches!(done, Some(Err(MissionError::Timeout { stage: MissionStage::Item { seq: 0 }, .. }))));
    }

    #[test]
    fn every_nack_is_a_distinct_error() {
        let t0 = Instant::now();
        let mut seen = Vec::new();
        for n in 1..=15u8 {
            let error = MissionAckError::from_number(n).unwrap();
            assert_eq!(error.number(), n);
            assert!(!seen.contains(&error), "{error:?} twice");
            seen.push(error);
            let (mut m, _) = MissionTransfer::upload(K, items(3), MissionConfig::default(), t0).unwrap();
            m.handle(&req(0), t0);
            m.handle(&req(1), t0);
            let step = m.handle(&MissionMessage::Ack { kind: K, error: Some(error) }, t0);
            match step.done {
                Some(Err(MissionError::Rejected { error: got, items_sent: 2, total: 3, .. })) => assert_eq!(got, error),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(MissionAckError::from_number(0), None);
        assert_eq!(MissionAckError::from_number(99), Some(MissionAckError::Other(99)));
    }

    #[test]
    fn empty_upload_is_just_count_and_ack() {
        let t0 = Instant::now();
        let (mut m, step) = MissionTransfer::upload(MissionKind::Fence, vec![], MissionConfig::default(), t0).unwrap();
        assert_eq!(step.send, vec![MissionMessage::Count { kind: MissionKind::Fence, count: 0 }]);
        let step = m.handle(&MissionMessage::Ack { kind: MissionKind::Fence, error: None }, t0);
        assert_eq!(step.done, Some(Ok(MissionOutcome::Uploaded { count: 0 })));
    }

    #[test]
    fn download_requests_each_item_and_acks() {
        let t0 = Instant::now();
        let list = items(3);
        let kind = MissionKind::Rally;
        let (mut m, step) = MissionTransfer::download(kind, MissionConfig::default(), t0);
        assert_eq!(step.send, vec![MissionMessage::RequestList { kind }]);
        let step = m.handle(&MissionMessage::Count { kind, count: 3 }, t0);
        assert_eq!(step.send, vec![MissionMessage::Request { kind, seq: 0, int: true }]);
        // Duplicate count: ignored.
        assert_eq!(m.handle(&MissionMessage::Count { kind, count: 3 }, t0), Step::default());
        m.handle(&MissionMessage::Item { kind, seq: 0, item: list[0] }, t0);
        // A duplicate of item 0 and an early item 2 are ignored.
        assert_eq!(m.handle(&MissionMessage::Item { kind, seq: 0, item: list[0] }, t0), Step::default());
        assert_eq!(m.handle(&MissionMessage::Item { kind, seq: 2, item: list[2] }, t0), Step::default());
        m.handle(&MissionMessage::Item { kind, seq: 1, item: list[1] }, t0);
        let step = m.handle(&MissionMessage::Item { kind, seq: 2, item: list[2] }, t0);
        assert_eq!(step.send, vec![MissionMessage::Ack { kind, error: None }]);
        assert_eq!(step.done, Some(Ok(MissionOutcome::Downloaded(list))));
    }

    #[test]
    fn download_re_requests_lost_items_with_the_item_timeout() {
        let t0 = Instant::now();
        let config = MissionConfig::default();
        let (mut m, _) = MissionTransfer::download(K, config, t0);
        // Lost MISSION_COUNT: request the list again after the ack timeout.
        assert_eq!(m.tick(t0 + config.ack_timeout).send, vec![MissionMessage::RequestList { kind: K }]);
        let t1 = t0 + config.ack_timeout;
        m.handle(&MissionMessage::Count { kind: K, count: 2 }, t1);
        assert_eq!(m.deadline(), Some(t1 + config.item_timeout));
        assert_eq!(m.tick(t1 + config.item_timeout).send, vec![MissionMessage::Request { kind: K, seq: 0, int: true }]);
        // Give up after the retries: tell the vehicle we cancelled.
        let mut now = t1 + config.item_timeout;
        let mut last = Step::default();
        for _ in 0..config.retries {
            now += config.item_timeout;
            last = m.tick(now);
        }
        assert_eq!(last.send, vec![MissionMessage::Ack { kind: K, error: Some(MissionAckError::OperationCancelled) }]);
        assert!(matches!(last.done, Some(Err(MissionError::Timeout { stage: MissionStage::Download { seq: 0 }, .. }))));
    }

    #[test]
    fn empty_download_acks_at_once() {
        let t0 = Instant::now();
        let (mut m, _) = MissionTransfer::download(K, MissionConfig::default(), t0);
        let step = m.handle(&MissionMessage::Count { kind: K, count: 0 }, t0);
        assert_eq!(step.send, vec![MissionMessage::Ack { kind: K, error: None }]);
        assert_eq!(step.done, Some(Ok(MissionOutcome::Downloaded(vec![]))));
    }

    #[test]
    fn download_nack_is_reported() {
        let t0 = Instant::now();
        let (mut m, _) = MissionTransfer::download(K, MissionConfig::default(), t0);
        let step = m.handle(&MissionMessage::Ack { kind: K, error: Some(MissionAckError::Denied) }, t0);
        assert!(matches!(
            step.done,
            Some(Err(MissionError::Rejected { error: MissionAckError::Denied, stage: MissionStage::RequestList, .. }))
        ));
    }

    #[test]
    fn clear_and_set_current() {
        let t0 = Instant::now();
        let config = MissionConfig::default();
        let (mut m, step) = MissionTransfer::clear(MissionKind::Fence, config, t0);
        assert_eq!(step.send, vec![MissionMessage::ClearAll { kind: MissionKind::Fence }]);
        assert_eq!(m.tick(t0 + config.ack_timeout).send, vec![MissionMessage::ClearAll { kind: MissionKind::Fence }]);
        let step = m.handle(&MissionMessage::Ack { kind: MissionKind::Fence, error: None }, t0);
        assert_eq!(step.done, Some(Ok(MissionOutcome::Cleared)));

        let (mut m, step) = MissionTransfer::set_current(4, config, t0);
        assert_eq!(step.send, vec![MissionMessage::SetCurrent { seq: 4 }]);
        // The periodic MISSION_CURRENT of the old item does not finish it.
        assert_eq!(m.handle(&MissionMessage::Current { seq: 2 }, t0), Step::default());
        assert_eq!(m.handle(&MissionMessage::Current { seq: 4 }, t0).done, Some(Ok(MissionOutcome::CurrentSet(4))));
    }
}
