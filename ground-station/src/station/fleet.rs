//! The fleet: one firmware-bridge per distinct link address, the configured drones on them (by system id), their
//! latest state and trail, and the ~1 Hz retained state on `<prefix>/drones/<id>/state`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use firmware_bridge::bridge::{BridgeConfig, BridgeHandle};
use firmware_bridge::link::{LinkAddress, LinkConfig};
use firmware_bridge::signing::SigningKey;
use firmware_bridge::vehicle::{VehicleHandle, VehicleState};
use mission_planner::camera::CameraSpec;
use mission_planner::geo::GeoPoint;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DroneSettings;
use crate::hazard::{DroneState, LinkStatus, Position};
use crate::mqtt::MqttHandle;

/// How often each drone's state is published.
const STATE_EVERY: Duration = Duration::from_secs(1);
/// Trail points kept per drone (one per [`STATE_EVERY`]).
const TRAIL_POINTS: usize = 300;

/// One configured drone.
#[derive(Debug, Clone)]
pub struct FleetDrone {
    /// Drone id from the config.
    pub id: String,
    /// Index of its bridge in [`Fleet::bridges`].
    pub bridge: usize,
    /// MAVLink system id on that link.
    pub system_id: u8,
    /// Camera of its photos, when configured.
    pub camera: Option<CameraSpec>,
}

/// A drone as the console and the pipeline see it.
#[derive(Debug, Clone)]
pub struct DroneView {
    /// Drone id.
    pub id: String,
    /// Latest state, once the drone was heard.
    pub state: Option<VehicleState>,
    /// Recent positions, oldest first.
    pub trail: Vec<GeoPoint>,
    /// Wall time of the last state sample in which the link was up.
    pub last_heard: Option<SystemTime>,
}

/// The running fleet. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fleet {
    bridges: Arc<Vec<BridgeHandle>>,
    drones: Arc<Vec<FleetDrone>>,
    trails: Arc<Mutex<BTreeMap<String, Trail>>>,
}

#[derive(Debug, Default)]
struct Trail {
    points: VecDeque<GeoPoint>,
    last_heard: Option<SystemTime>,
}

impl Fleet {
    /// Opens one bridge per distinct link in `drones` (a shared link carries several system ids) and starts the
    /// state publisher.
    ///
    /// # Errors
    /// A link address that cannot be parsed or bound, an unreadable signing key or camera file.
    pub async fn start(
        drones: &[DroneSettings],
        default_camera: Option<&CameraSpec>,
        mqtt: MqttHandle,
        tasks: &TaskTracker,
        cancel: CancellationToken,
    ) -> anyhow::Result<Self> {
        let mut links: Vec<(String, Option<std::path::PathBuf>)> = Vec::new();
        let mut fleet = Vec::new();
        for drone in drones {
            let bridge = match links.iter().position(|(link, _)| *link == drone.link) {
                Some(index) => {
                    if links[index].1 != drone.signing_key_file {
                        anyhow::bail!(
                            "drones on the shared link `{}` name different signing_key_file values; a link has one key",
                            drone.link
                        );
                    }
                    index
                }
                None => {
                    links.push((drone.link.clone(), drone.signing_key_file.clone()));
                    links.len() - 1
                }
            };
            let camera = match &drone.camera {
                Some(path) => Some(
                    CameraSpec::read_toml(path)
                        .with_context(|| format!("reading the camera of drone {} ({})", drone.id, path.display()))?,
                ),
                None => default_camera.cloned(),
            };
            fleet.push(FleetDrone { id: drone.id.clone(), bridge, system_id: drone.system_id, camera });
        }
        let mut bridges = Vec::with_capacity(links.len());
        for (link, key_file) in &links {
            let address: LinkAddress = link.parse().with_context(|| format!("link address `{link}`"))?;
            let mut config = LinkConfig::new(address);
            if let Some(path) = key_file {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the signing key {}", path.display()))?;
                config.signing_key = Some(SigningKey::from_hex(text.trim()).with_context(|| {
                    format!("{} must hold 64 hex digits (make one with `patrol keygen`)", path.display())
                })?);
            }
            let bridge = BridgeHandle::start(BridgeConfig::new(config), tasks, cancel.child_token())
                .await
                .with_context(|| format!("opening the drone link `{link}`"))?;
            tracing::info!(link = %link, local = ?bridge.local_addr(), "Drone link open.");
            bridges.push(bridge);
        }
        let fleet =
            Self { bridges: Arc::new(bridges), drones: Arc::new(fleet), trails: Arc::new(Mutex::new(BTreeMap::new())) };
        tasks.spawn(fleet.clone().publish_states(mqtt, cancel));
        Ok(fleet)
    }

    /// The bridges, in link order.
    pub fn bridges(&self) -> &[BridgeHandle] {
        &self.bridges
    }

    /// The configured drones.
    pub fn drones(&self) -> &[FleetDrone] {
        &self.drones
    }

    /// The configured drone on `bridge` with `system_id`.
    pub fn drone_at(&self, bridge: usize, system_id: u8) -> Option<&FleetDrone> {
        self.drones.iter().find(|d| d.bridge == bridge && d.system_id == system_id)
    }

    /// The configured drone named `id`.
    pub fn drone(&self, id: &str) -> Option<&FleetDrone> {
        self.drones.iter().find(|d| d.id == id)
    }

    /// The vehicle handle of drone `id`, once it has been heard.
    pub fn vehicle(&self, id: &str) -> Option<VehicleHandle> {
        let drone = self.drone(id)?;
        self.bridges.get(drone.bridge)?.vehicle(drone.system_id)
    }

    /// Every configured drone's view.
    pub fn views(&self) -> Vec<DroneView> {
        let trails = self.trails.lock().unwrap_or_else(PoisonError::into_inner);
        self.drones
            .iter()
            .map(|drone| {
                let trail = trails.get(&drone.id);
                DroneView {
                    id: drone.id.clone(),
                    state: self.vehicle(&drone.id).map(|v| v.state()),
                    trail: trail.map(|t| t.points.iter().copied().collect()).unwrap_or_default(),
                    last_heard: trail.and_then(|t| t.last_heard),
                }
            })
            .collect()
    }

    async fn publish_states(self, mqtt: MqttHandle, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(STATE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = SystemTime::now();
            for drone in self.drones.iter() {
                let Some(state) = self.vehicle(&drone.id).map(|v| v.state()) else { continue };
                self.record_trail(&drone.id, &state, now);
                mqtt.publish_drone_state(drone_state(&drone.id, &state, now));
            }
        }
    }

    fn record_trail(&self, id: &str, state: &VehicleState, now: SystemTime) {
        let mut trails = self.trails.lock().unwrap_or_else(PoisonError::into_inner);
        let trail = trails.entry(id.to_owned()).or_default();
        if state.link.connected {
            // The vehicle's own clock is not ours: the wall time of the latest sample with the link up.
            let silent = state
                .link
                .last_heard
                .map_or(Duration::MAX, |at| tokio::time::Instant::now().saturating_duration_since(at));
            trail.last_heard = Some(now.checked_sub(silent).unwrap_or(now));
        }
        if let Some(position) = state.position
            && trail.points.back() != Some(&position.point)
        {
            if trail.points.len() == TRAIL_POINTS {
                trail.points.pop_front();
            }
            trail.points.push_back(position.point);
        }
    }
}

/// The published form of a vehicle's state.
pub fn drone_state(id: &str, state: &VehicleState, at: SystemTime) -> DroneState {
    DroneState {
        drone_id: id.to_owned(),
        at: crate::hazard::rfc3339::to_millis(at),
        position: state.position.map(|p| Position::new(p.point.lat_deg, p.point.lon_deg, 0.0)),
        relative_alt_m: state.position.map(|p| p.relative_alt_m),
        battery_percent: state.battery.and_then(|b| b.remaining_pct).map(f64::from),
        mode: state.mode_name.clone(),
        armed: state.armed,
        link: if state.link.connected { LinkStatus::Up } else { LinkStatus::Lost },
    }
}
