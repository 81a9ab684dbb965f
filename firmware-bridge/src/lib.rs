//! MAVLink links to ArduPilot and PX4 vehicles.
//!
//! - [`link`]: link addresses (`udpin:0.0.0.0:14550`, `serial:/dev/ttyUSB0:57600`, ...), socket I/O,
//!   reconnects with backoff, [`link::LinkState`].
//! - [`frame`]: MAVLink v1/v2 framing with counters for every kind of bad input; [`signing`]: MAVLink 2 signing.
//! - [`bridge`]: [`BridgeHandle`] opens a link, discovers vehicles from HEARTBEAT and routes their packets.
//! - [`vehicle`]: one actor per vehicle; [`VehicleHandle`] reads its [`vehicle::VehicleState`] and sends
//!   commands (arm, takeoff, modes, mission start/pause/resume, RTL, land, go to).
//! - [`mission`]: the mission protocol (MISSION, FENCE, RALLY) as a sans-IO state machine.
//! - [`capture`]: camera captures joined with the pose at capture time.
//! - [`mode`]: flight modes and the ArduPilot/PX4 mode tables.
//! - [`sim`]: simulated ArduPilot/PX4 drones (`patrol sim`) for demos and tests.
//!
//! No `mavlink` type appears in this crate's public API: everything is translated at the boundary.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use firmware_bridge::{BridgeConfig, BridgeHandle, link::LinkConfig};
//! use tokio_util::{sync::CancellationToken, task::TaskTracker};
//!
//! let tracker = TaskTracker::new();
//! let cancel = CancellationToken::new();
//! let link = LinkConfig::new("udpin:0.0.0.0:14550".parse()?);
//! let bridge = BridgeHandle::start(BridgeConfig::new(link), &tracker, cancel.clone()).await?;
//! let drone = bridge.wait_for_vehicle(1, Duration::from_secs(10)).await?;
//! drone.arm().await?;
//! drone.takeoff(20.0).await?;
//! # Ok(()) }
//! ```

pub mod bridge;
pub mod capture;
pub mod error;
pub mod frame;
pub mod link;
pub mod mission;
pub mod mode;
pub mod signing;
pub mod sim;
pub mod vehicle;

pub use bridge::{BridgeConfig, BridgeHandle};
pub use error::{BridgeError, CommandError, MissionError};
pub use vehicle::{VehicleEvent, VehicleEventKind, VehicleHandle, VehicleState};
