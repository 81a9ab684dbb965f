//! MAVLink links to ArduPilot and PX4 vehicles.
//!
//! - [`mode`]: flight modes and the ArduPilot/PX4 mode tables.
//! - [`sim`]: simulated ArduPilot/PX4 drones (`patrol sim`) for demos and tests.
//!
//! No `mavlink` type appears in this crate's public API: everything is translated at the boundary.

pub mod mode;
pub mod sim;
