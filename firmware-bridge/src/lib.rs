//! MAVLink links to ArduPilot and PX4 vehicles.
//!
//! - [`mode`]: flight modes and the ArduPilot/PX4 mode tables.
//!
//! No `mavlink` type appears in this crate's public API: everything is translated at the boundary.

pub mod mode;
