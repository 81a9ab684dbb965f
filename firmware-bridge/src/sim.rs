//! Simulated drones that speak MAVLink 2 like a real ArduPilot copter or PX4, for demos, tests and contributors
//! without hardware.
//!
//! Each drone is a MAVLink *vehicle* with its own UDP socket. With [`SimLink::UdpOut`] it sends from that
//! socket to a ground station address (like `udpout:127.0.0.1:14550`) and also answers whoever talks to it;
//! with [`SimLink::UdpIn`] it listens and answers whoever talks to it.
//!
//! What a drone does:
//! - multicopter kinematics (cruise speed, climb/descent rate, yaw rate, acceleration), battery drain by time and
//!   climb, optional GPS noise and wind, all deterministic for a seed ([`VehicleParams`]);
//! - the personality's manners ([`Personality`]): HEARTBEAT autopilot and mode numbers, the mission request
//!   message, home at seq 0, telemetry that starts only after a rate request (ArduPilot), arming refused with a
//!   STATUSTEXT until the position estimate is ready, the capture messages;
//! - the mission protocol for MISSION, FENCE and RALLY; AUTO missions item by item; a fence breach or a low
//!   battery triggers return to launch;
//! - a camera that renders what it would see of a georeferenced raster ([`WorldRaster`]) and serves the JPEGs
//!   over HTTP at the `file_url` of `CAMERA_IMAGE_CAPTURED`;
//! - a methane sensor (`NAMED_VALUE_FLOAT` "CH4", ppm·m) over planted leaks ([`GasWorld`]).
//!
//! **Time:** one clock, sim time = wall time × `speedup`. Flight, battery, streams and arming delays run on sim
//! time; mission-protocol timeouts run on wall time because they are link timing. Telemetry streams send at most
//! one message of each kind per wall tick (20 ms by default), so at big speed-ups the wall rate is capped rather
//! than flooding the ground station.
//!
//! ```no_run
//! # async fn demo() -> Result<(), firmware_bridge::sim::SimError> {
//! use firmware_bridge::sim::{PersonalityMix, SimConfig, SimFleet, SimLink};
//! use mission_planner::geo::GeoPoint;
//!
//! let link: SimLink = "udpout:127.0.0.1:14550".parse()?;
//! let config = SimConfig::fleet(3, PersonalityMix::Mixed, &[GeoPoint::new(22.55, 113.88)], &link)?;
//! let token = tokio_util::sync::CancellationToken::new();
//! let fleet = SimFleet::spawn(config, token.clone()).await?;
//! for drone in fleet.drones() {
//!     println!("system {} on {}", drone.system_id, drone.local_addr);
//! }
//! token.cancel();
//! fleet.wait().await;
//! # Ok(())
//! # }
//! ```

mod autopilot;
mod camera;
mod drone;
mod fence;
mod gas;
mod kinematics;
mod mission_store;

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mission_planner::geo::{GeoPoint, LocalFrame, LocalPoint};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use camera::{CameraConfig, WorldRaster};
pub use gas::{GasLeak, GasWorld};
pub use kinematics::VehicleParams;
pub use mission_store::ProtocolTimings;

use crate::mode::AutopilotKind;
use crate::signing::SigningKey;

/// Renders the frame `camera` would see from `pose` over `world` (a plain ground colour without one): the same
/// renderer the simulated drones use at each capture. Inverse mapping per output pixel with bilinear sampling.
///
/// # Errors
/// [`SimError::Camera`] when the camera spec is invalid.
pub fn render_camera_frame(
    world: Option<&WorldRaster>,
    camera: &CameraConfig,
    pose: &mission_planner::camera::CameraPose,
) -> Result<image::RgbImage, SimError> {
    let intrinsics = camera.intrinsics()?;
    Ok(camera::render(world, &intrinsics, pose, camera.ground_rgb))
}

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The world raster or its world file is unusable.
    #[error("world raster {path}: {reason}")]
    World {
        /// The raster.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The leaks file is unusable.
    #[error("leaks file {path}: {reason}")]
    Leaks {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The camera profile is unusable.
    #[error("camera profile: {reason}")]
    Camera {
        /// Why.
        reason: String,
    },
    /// A link address could not be parsed or resolved.
    #[error("link address {address:?}: {reason}")]
    LinkAddress {
        /// What was given.
        address: String,
        /// Why, and what is expected.
        reason: String,
    },
    /// A socket could not be bound.
    #[error("cannot bind the {what} to {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Which socket.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("simulator configuration: {reason}")]
    Config {
        /// What is wrong and what to do.
        reason: String,
    },
}

/// Which autopilot a simulated drone imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Personality {
    /// ArduPilot copter.
    ArduPilot,
    /// PX4.
    Px4,
}

impl Personality {
    /// The autopilot kind (mode tables) of this personality.
    pub fn kind(self) -> AutopilotKind {
        match self {
            Personality::ArduPilot => AutopilotKind::ArduPilot,
            Personality::Px4 => AutopilotKind::Px4,
        }
    }
}

impl fmt::Display for Personality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, so tables line up.
        f.pad(match self {
            Personality::ArduPilot => "ardupilot",
            Personality::Px4 => "px4",
        })
    }
}

/// Personalities for a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalityMix {
    /// All ArduPilot.
    ArduPilot,
    /// All PX4.
    Px4,
    /// Alternating, ArduPilot first.
    Mixed,
}

impl PersonalityMix {
    /// The personality of the `index`-th drone.
    pub fn for_index(self, index: usize) -> Personality {
        match self {
            PersonalityMix::ArduPilot => Personality::ArduPilot,
            PersonalityMix::Px4 => Personality::Px4,
            PersonalityMix::Mixed if index.is_multiple_of(2) => Personality::ArduPilot,
            PersonalityMix::Mixed => Personality::Px4,
        }
    }
}

/// How a simulated drone reaches the ground station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimLink {
    /// Send to this ground station address from the drone's own socket (bound to an ephemeral port on the
    /// matching loopback/any address), and answer whoever talks to the drone.
    UdpOut {
        /// The ground station.
        gcs: SocketAddr,
    },
    /// Listen here and answer whoever talks to the drone.
    UdpIn {
        /// Where to listen (port 0 picks a free one).
        bind: SocketAddr,
    },
}

impl FromStr for SimLink {
    type Err = SimError;

    /// Parses `udpout:HOST:PORT` or `udpin:HOST:PORT`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |reason: &str| SimError::LinkAddress { address: s.to_string(), reason: reason.to_string() };
        let (scheme, rest) = s.split_once(':').ok_or_else(|| error("expected udpout:HOST:PORT or udpin:HOST:PORT"))?;
        let outgoing = match scheme {
            "udpout" | "udp-out" => true,
            "udpin" | "udp-in" | "udp" => false,
            _ => return Err(error("unknown scheme; use udpout:HOST:PORT (send to a GCS) or udpin:HOST:PORT (listen)")),
        };
        let addr = rest
            .to_socket_addrs()
            .map_err(|e| error(&format!("cannot resolve {rest:?}: {e}")))?
            .next()
            .ok_or_else(|| error("the host resolves to no address"))?;
        Ok(if outgoing { SimLink::UdpOut { gcs: addr } } else { SimLink::UdpIn { bind: addr } })
    }
}

impl fmt::Display for SimLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimLink::UdpOut { gcs } => write!(f, "udpout:{gcs}"),
            SimLink::UdpIn { bind } => write!(f, "udpin:{bind}"),
        }
    }
}

/// One simulated drone.
#[derive(Debug, Clone)]
pub struct DroneConfig {
    /// MAVLink system id (1-254, distinct in a fleet).
    pub system_id: u8,
    /// Which autopilot it imitates.
    pub personality: Personality,
    /// Where it boots (home).
    pub home: GeoPoint,
    /// Home altitude above mean sea level.
    pub home_amsl_m: f64,
    /// How it reaches the ground station.
    pub link: SimLink,
    /// Airframe, battery and failure knobs.
    pub vehicle: VehicleParams,
    /// Camera profile.
    pub camera: CameraConfig,
    /// MAVLink 2 signing key: outgoing packets are signed; unsigned, wrongly signed and replayed incoming ones are
    /// dropped and counted.
    pub signing_key: Option<SigningKey>,
}

impl DroneConfig {
    /// A drone with default airframe and camera. PX4 gets its position estimate after 2 s, ArduPilot after 5 s.
    pub fn new(system_id: u8, personality: Personality, home: GeoPoint, link: SimLink) -> Self {
        let mut vehicle = VehicleParams::default();
        if personality == Personality::Px4 {
            vehicle.position_estimate_after = Duration::from_secs(2);
        }
        Self {
            system_id,
            personality,
            home,
            home_amsl_m: 50.0,
            link,
            vehicle,
            camera: CameraConfig::default(),
            signing_key: None,
        }
    }
}

/// A fleet of simulated drones and what they share.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The drones.
    pub drones: Vec<DroneConfig>,
    /// Sim time runs this many times faster than wall time.
    pub speedup: f64,
    /// Seed of all randomness (each drone derives its own from it and its system id).
    pub seed: u64,
    /// Where the image server listens (`127.0.0.1:0` picks a free port); `None` turns it off (captures are then
    /// announced without a `file_url`).
    pub http_bind: Option<SocketAddr>,
    /// The ground the cameras see; `None` renders a plain ground colour.
    pub world: Option<Arc<WorldRaster>>,
    /// Methane leaks.
    pub gas: GasWorld,
    /// Wall time between simulation ticks.
    pub tick: Duration,
    /// Mission protocol timings of the vehicles.
    pub timings: ProtocolTimings,
}

impl SimConfig {
    /// `count` drones with system ids 1..=count, personalities from `mix`, homes taken in turn from `homes`
    /// (drones that share a home stand 5 m apart along east). For [`SimLink::UdpIn`] with a fixed port, drone
    /// `i` listens on port + i.
    ///
    /// # Errors
    /// [`SimError::Config`] for no drones, more than 254, or no home.
    pub fn fleet(count: usize, mix: PersonalityMix, homes: &[GeoPoint], link: &SimLink) -> Result<Self, SimError> {
        if count == 0 || count > 254 {
            return Err(SimError::Config { reason: format!("between 1 and 254 drones, not {count}") });
        }
        if homes.is_empty() {
            return Err(SimError::Config { reason: "give at least one home position".into() });
        }
        let mut drones = Vec::with_capacity(count);
        for i in 0..count {
            let base = homes[i % homes.len()];
            let round = i / homes.len();
            #[allow(clippy::cast_precision_loss)]
            let home =
                if round == 0 { base } else { LocalFrame::new(base).to_geo(LocalPoint::new(5.0 * round as f64, 0.0)) };
            let link = match *link {
                SimLink::UdpIn { bind } if bind.port() != 0 => {
                    let port = u16::try_from(usize::from(bind.port()) + i).map_err(|_| SimError::Config {
                        reason: format!("port {} + {i} is above 65535", bind.port()),
                    })?;
                    SimLink::UdpIn { bind: SocketAddr::new(bind.ip(), port) }
                }
                other => other,
            };
            // 1..=254 by the check above.
            let system_id = u8::try_from(i + 1).map_err(|_| SimError::Config { reason: "too many drones".into() })?;
            drones.push(DroneConfig::new(system_id, mix.for_index(i), home, link));
        }
        Ok(Self {
            drones,
            speedup: 1.0,
            seed: 0,
            http_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            world: None,
            gas: GasWorld::default(),
            tick: Duration::from_millis(20),
            timings: ProtocolTimings::default(),
        })
    }
}

/// Counters of one drone.
#[derive(Debug, Default)]
pub struct SimStats {
    rx_messages: AtomicU64,
    rx_malformed: AtomicU64,
    rx_unsigned_dropped: AtomicU64,
    rx_bad_signature_dropped: AtomicU64,
    tx_messages: AtomicU64,
    tx_errors: AtomicU64,
    captures_rendered: AtomicU64,
    captures_dropped: AtomicU64,
}

/// A snapshot of [`SimStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimStatsSnapshot {
    /// MAVLink messages received and handled.
    pub rx_messages: u64,
    /// Frames that passed the CRC but did not decode.
    pub rx_malformed: u64,
    /// Unsigned frames dropped on a signed link.
    pub rx_unsigned_dropped: u64,
    /// Signed frames dropped on a signed link because the signature does not verify (wrong key, tampered) or
    /// the timestamp is not newer than the last one of its stream (replayed, stale).
    pub rx_bad_signature_dropped: u64,
    /// Datagrams sent.
    pub tx_messages: u64,
    /// Sends that failed.
    pub tx_errors: u64,
    /// Camera frames rendered and served.
    pub captures_rendered: u64,
    /// Captures missed because the camera was busy.
    pub captures_dropped: u64,
}

impl SimStats {
    /// The current counts.
    pub fn snapshot(&self) -> SimStatsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStatsSnapshot {
            rx_messages: load(&self.rx_messages),
            rx_malformed: load(&self.rx_malformed),
            rx_unsigned_dropped: load(&self.rx_unsigned_dropped),
            rx_bad_signature_dropped: load(&self.rx_bad_signature_dropped),
            tx_messages: load(&self.tx_messages),
            tx_errors: load(&self.tx_errors),
            captures_rendered: load(&self.captures_rendered),
            captures_dropped: load(&self.captures_dropped),
        }
    }
}

/// One running drone.
#[derive(Debug, Clone)]
pub struct SimDroneInfo {
    /// MAVLink system id.
    pub system_id: u8,
    /// Which autopilot it imitates.
    pub personality: Personality,
    /// The drone's own UDP socket address.
    pub local_addr: SocketAddr,
    /// How it reaches the ground station.
    pub link: SimLink,
    /// Home.
    pub home: GeoPoint,
    /// Its counters.
    pub stats: Arc<SimStats>,
}

/// The sim clock: sim time = wall time since start × speed-up, both from tokio's clock (so paused-time tests
/// work).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimClock {
    start: tokio::time::Instant,
    speedup: f64,
}

impl SimClock {
    fn new(speedup: f64) -> Self {
        Self { start: tokio::time::Instant::now(), speedup }
    }

    /// Wall time since start.
    pub(crate) fn wall(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sim seconds since start.
    pub(crate) fn sim_s(&self) -> f64 {
        self.wall().as_secs_f64() * self.speedup
    }
}

/// A running fleet of simulated drones.
#[derive(Debug)]
pub struct SimFleet {
    drones: Vec<SimDroneInfo>,
    http_addr: Option<SocketAddr>,
    tracker: TaskTracker,
}

impl SimFleet {
    /// Binds every socket, then starts one task per drone and the image server; they run until `token` is
    /// cancelled.
    ///
    /// # Errors
    /// [`SimError::Config`] for an invalid configuration (duplicate or zero system ids, a bad speed-up or camera),
    /// [`SimError::Bind`] when a socket cannot be bound. Nothing is left running on error.
    pub async fn spawn(config: SimConfig, token: CancellationToken) -> Result<SimFleet, SimError> {
        if !(config.speedup.is_finite() && config.speedup > 0.0) {
            return Err(SimError::Config { reason: format!("speedup must be above 0, not {}", config.speedup) });
        }
        if config.tick.is_zero() {
            return Err(SimError::Config { reason: "tick must be above zero".into() });
        }
        let mut seen = std::collections::HashSet::new();
        for drone in &config.drones {
            if drone.system_id == 0 || drone.system_id == 255 || !seen.insert(drone.system_id) {
                return Err(SimError::Config {
                    reason: format!("system id {} is reserved or used twice; use distinct ids 1-254", drone.system_id),
                });
            }
            drone.camera.intrinsics()?;
        }

        // Bind everything before starting anything, so an error leaves nothing running.
        let listener = match config.http_bind {
            Some(addr) => Some(camera::bind(addr).await?),
            None => None,
        };
        let http_addr = match &listener {
            Some(l) => Some(l.local_addr().map_err(|source| SimError::Bind {
                addr: config.http_bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
                what: "image HTTP server",
                source,
            })?),
            None => None,
        };
        let mut sockets = Vec::with_capacity(config.drones.len());
        for drone in &config.drones {
            let bind = match drone.link {
                SimLink::UdpOut { gcs } if gcs.ip().is_loopback() => SocketAddr::new(gcs.ip(), 0),
                SimLink::UdpOut { gcs } if gcs.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
                SimLink::UdpOut { .. } => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
                SimLink::UdpIn { bind } => bind,
            };
            let socket = UdpSocket::bind(bind).await.map_err(|source| SimError::Bind {
                addr: bind,
                what: "drone UDP socket",
                source,
            })?;
            let local = socket.local_addr().map_err(|source| SimError::Bind {
                addr: bind,
                what: "drone UDP socket",
                source,
            })?;
            sockets.push((socket, local));
        }

        let tracker = TaskTracker::new();
        let store = camera::ImageStore::default();
        if let Some(listener) = listener {
            let router = camera::router(store.clone());
            let shutdown = token.clone();
            tracker.spawn(async move {
                let serve = axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned());
                if let Err(error) = serve.await {
                    warn!(%error, "Image HTTP server failed.");
                }
            });
        }
        let clock = SimClock::new(config.speedup);
        let mut drones = Vec::with_capacity(config.drones.len());
        for (drone, (socket, local_addr)) in config.drones.into_iter().zip(sockets) {
            let intrinsics = drone.camera.intrinsics()?;
            let frame = LocalFrame::new(drone.home);
            let autopilot = autopilot::Autopilot::new(autopilot::AutopilotConfig {
                system_id: drone.system_id,
                personality: drone.personality,
                home: drone.home,
                home_amsl_m: drone.home_amsl_m,
                vehicle: drone.vehicle.clone(),
                camera: drone.camera.clone(),
                intrinsics,
                seed: config.seed ^ (u64::from(drone.system_id) << 32),
                timings: config.timings,
                gas: config.gas.local(&frame),
            });
            let stats = Arc::new(SimStats::default());
            let peers = match drone.link {
                SimLink::UdpOut { gcs } => vec![gcs],
                SimLink::UdpIn { .. } => Vec::new(),
            };
            let task = drone::DroneTask {
                system_id: drone.system_id,
                autopilot,
                socket,
                peers,
                clock,
                tick: config.tick,
                render: drone::RenderContext {
                    world: config.world.clone(),
                    store: store.clone(),
                    http_base: http_addr.map(|a| format!("http://{a}")),
                    camera: drone.camera.clone(),
                },
                tracker: tracker.clone(),
                stats: Arc::clone(&stats),
                signing: drone::DroneTask::signing_from_key(drone.signing_key.as_ref(), drone.system_id),
                sequences: [0; 256],
            };
            tracker.spawn(task.run(token.child_token()));
            drones.push(SimDroneInfo {
                system_id: drone.system_id,
                personality: drone.personality,
                local_addr,
                link: drone.link,
                home: drone.home,
                stats,
            });
        }
        tracker.close();
        info!(drones = drones.len(), speedup = config.speedup, http = ?http_addr, "Simulated fleet started.");
        Ok(SimFleet { drones, http_addr, tracker })
    }

    /// The running drones.
    pub fn drones(&self) -> &[SimDroneInfo] {
        &self.drones
    }

    /// Where the image server listens, if on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Waits until every task ended (after the token is cancelled).
    ///
    /// Cancel safety: dropping the future does not stop the tasks; cancel the token.
    pub async fn wait(self) {
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_addresses_parse() {
        assert_eq!(
            "udpout:127.0.0.1:14550".parse::<SimLink>().unwrap(),
            SimLink::UdpOut { gcs: "127.0.0.1:14550".parse().unwrap() }
        );
        assert_eq!("udpin:0.0.0.0:14560".parse::<SimLink>().unwrap().to_string(), "udpin:0.0.0.0:14560");
        assert_eq!(format!("[{:<9}]", Personality::Px4), "[px4      ]");
        let err = "tcp:1.2.3.4:5".parse::<SimLink>().unwrap_err().to_string();
        assert!(err.contains("udpout:HOST:PORT"), "{err}");
        assert!("udpout:nonsense".parse::<SimLink>().is_err());
    }

    #[test]
    fn fleet_assigns_ids_personalities_homes_and_ports() {
        let homes = [GeoPoint::new(22.55, 113.88), GeoPoint::new(22.56, 113.89)];
        let link = SimLink::UdpIn { bind: "127.0.0.1:14600".parse().unwrap() };
        let config = SimConfig::fleet(3, PersonalityMix::Mixed, &homes, &link).unwrap();
        let ids: Vec<_> = config.drones.iter().map(|d| d.system_id).collect();
        assert_eq!(ids, [1, 2, 3]);
        let kinds: Vec<_> = config.drones.iter().map(|d| d.personality).collect();
        assert_eq!(kinds, [Personality::ArduPilot, Personality::Px4, Personality::ArduPilot]);
        assert_eq!(config.drones[1].home, homes[1]);
        let gap = mission_planner::geo::geodesic_distance_m(config.drones[0].home, config.drones[2].home);
        assert!((gap - 5.0).abs() < 0.01, "{gap}");
        assert_eq!(config.drones[2].link, SimLink::UdpIn { bind: "127.0.0.1:14602".parse().unwrap() });
        assert!(SimConfig::fleet(0, PersonalityMix::Px4, &homes, &link).is_err());
        assert!(SimConfig::fleet(1, PersonalityMix::Px4, &[], &link).is_err());
    }

    #[tokio::test]
    async fn duplicate_system_ids_are_refused_before_binding() {
        let link = SimLink::UdpOut { gcs: "127.0.0.1:9".parse().unwrap() };
        let mut config = SimConfig::fleet(2, PersonalityMix::Px4, &[GeoPoint::new(0.0, 0.0)], &link).unwrap();
        config.drones[1].system_id = 1;
        let err = SimFleet::spawn(config, CancellationToken::new()).await.unwrap_err().to_string();
        assert!(err.contains("distinct"), "{err}");
    }
}
