//! The bridge: one link, vehicle discovery, and routing of frames to per-vehicle actors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mavlink::dialects::ardupilotmega::{MavAutopilot, MavType};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::BridgeError;
use crate::frame::{Frame, LinkCounters, LinkStats, MavMessage};
use crate::link::{self, LinkConfig, LinkParts, LinkState};
use crate::vehicle::{VehicleActor, VehicleConfig, VehicleEvent, VehicleHandle, VehicleInit, translate_heartbeat};

/// Everything the bridge needs.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The link.
    pub link: LinkConfig,
    /// Per-vehicle behaviour.
    pub vehicle: VehicleConfig,
    /// Capacity of the event broadcast; slow subscribers lose the oldest events (`Lagged`).
    pub event_capacity: usize,
}

impl BridgeConfig {
    /// Defaults for `link`.
    pub fn new(link: LinkConfig) -> Self {
        Self { link, vehicle: VehicleConfig::default(), event_capacity: 1024 }
    }
}

/// Frames from the link: bounded; the link waits when the router is behind (UDP then drops in the kernel).
const INBOUND_CAPACITY: usize = 1024;

/// A cloneable handle to a running bridge.
#[derive(Debug, Clone)]
pub struct BridgeHandle {
    link: LinkParts,
    events: broadcast::Sender<VehicleEvent>,
    vehicles: watch::Receiver<BTreeMap<u8, VehicleHandle>>,
    dropped: Arc<AtomicU64>,
}

impl BridgeHandle {
    /// Opens the link and starts discovering vehicles. Every task is spawned on `tracker` and stops when
    /// `cancel` is cancelled.
    ///
    /// # Errors
    /// [`BridgeError::Bind`] when a server address (`udpin`, `tcpin`) cannot be bound. Client links
    /// (`udpout`, `tcpout`, `serial`) retry in the background; see [`BridgeHandle::link_state`].
    pub async fn start(
        config: BridgeConfig,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Self, BridgeError> {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
        let link = link::spawn_link(&config.link, inbound_tx, tracker, cancel.child_token()).await?;
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        let (vehicles_tx, vehicles) = watch::channel(BTreeMap::new());
        let dropped = Arc::new(AtomicU64::new(0));
        let router = Router {
            config: config.clone(),
            link: link.clone(),
            events: events.clone(),
            vehicles: vehicles_tx,
            inboxes: BTreeMap::new(),
            tracker: tracker.clone(),
            cancel: cancel.clone(),
            dropped: dropped.clone(),
        };
        tracker.spawn(router.run(inbound_rx));
        Ok(Self { link, events, vehicles, dropped })
    }

    /// The link state (latest wins).
    pub fn link_state(&self) -> watch::Receiver<LinkState> {
        self.link.state.clone()
    }

    /// The bound local address of a server link (`udpin`, `tcpin`), e.g. to learn the port when binding port 0.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.link.local_addr
    }

    /// The link's counters now.
    pub fn link_stats(&self) -> LinkStats {
        self.link.counters.snapshot()
    }

    /// The link's live counters.
    pub fn link_counters(&self) -> Arc<LinkCounters> {
        self.link.counters.clone()
    }

    /// Frames dropped because a vehicle actor was behind.
    pub fn frames_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Every vehicle event from now on. A slow receiver gets `RecvError::Lagged(n)`: count and continue.
    pub fn subscribe(&self) -> broadcast::Receiver<VehicleEvent> {
        self.events.subscribe()
    }

    /// The vehicles discovered so far.
    pub fn vehicles(&self) -> Vec<VehicleHandle> {
        self.vehicles.borrow().values().cloned().collect()
    }

    /// A receiver of the vehicle list, to wait for discoveries.
    pub fn vehicles_watch(&self) -> watch::Receiver<BTreeMap<u8, VehicleHandle>> {
        self.vehicles.clone()
    }

    /// The vehicle with `system_id`, if discovered.
    pub fn vehicle(&self, system_id: u8) -> Option<VehicleHandle> {
        self.vehicles.borrow().get(&system_id).cloned()
    }

    /// Waits until a vehicle with `system_id` has sent a HEARTBEAT.
    ///
    /// # Errors
    /// [`BridgeError::VehicleNotFound`] after `timeout`; [`BridgeError::Stopped`] if the bridge stops.
    /// Cancel safety: safe.
    pub async fn wait_for_vehicle(&self, system_id: u8, timeout: Duration) -> Result<VehicleHandle, BridgeError> {
        let mut rx = self.vehicles.clone();
        let wait = rx.wait_for(|map| map.contains_key(&system_id));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(map)) => map.get(&system_id).cloned().ok_or(BridgeError::Stopped),
            Ok(Err(_)) => Err(BridgeError::Stopped),
            Err(_) => Err(BridgeError::VehicleNotFound { system_id, waited: timeout }),
        }
    }
}

struct Router {
    config: BridgeConfig,
    link: LinkParts,
    events: broadcast::Sender<VehicleEvent>,
    vehicles: watch::Sender<BTreeMap<u8, VehicleHandle>>,
    inboxes: BTreeMap<u8, mpsc::Sender<Frame>>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    dropped: Arc<AtomicU64>,
}

impl Router {
    /// Cancel safety: not applicable (a task body).
    async fn run(mut self, mut inbound: mpsc::Receiver<Frame>) {
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => break,
                frame = inbound.recv() => match frame {
                    Some(frame) => self.route(frame),
                    None => break,
                },
            }
        }
    }

    fn route(&mut self, frame: Frame) {
        if frame.system_id == self.config.link.system_id {
            // Our own system id (another GCS instance, or our packets echoed by a router): not a vehicle.
            return;
        }
        if !self.inboxes.contains_key(&frame.system_id) {
            let MavMessage::HEARTBEAT(hb) = &frame.message else { return };
            // Discovery only from an autopilot's heartbeat: not from GCSes, cameras or gimbals.
            if hb.autopilot == MavAutopilot::MAV_AUTOPILOT_INVALID || hb.mavtype == MavType::MAV_TYPE_GCS {
                return;
            }
            let (autopilot, vehicle_type) = translate_heartbeat(hb);
            tracing::info!(system_id = frame.system_id, ?autopilot, ?vehicle_type, "Vehicle discovered.");
            let init = VehicleInit {
                system_id: frame.system_id,
                component_id: frame.component_id,
                gcs_system_id: self.config.link.system_id,
                autopilot,
                vehicle_type,
                config: self.config.vehicle.clone(),
                link: self.link.outgoing.clone(),
                events: self.events.clone(),
            };
            let (handle, inbox) = VehicleActor::spawn(init, &self.tracker, self.cancel.child_token());
            self.inboxes.insert(frame.system_id, inbox);
            self.vehicles.send_modify(|map| {
                map.insert(frame.system_id, handle);
            });
        }
        if let Some(inbox) = self.inboxes.get(&frame.system_id)
            && inbox.try_send(frame).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
