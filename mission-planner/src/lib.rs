//! Pure geometry for drone patrols over a district's grid cells.
//!
//! - [`geo`]: WGS84 points and a local tangent plane for metric work.
//! - [`camera`]: the pinhole camera model, footprints and pixel <-> ground projection.
//! - [`mission_item`]: the raw mission item exchanged with autopilots and mission files.
//!
//! Non-goals: no async, no clocks (callers pass `now`), no I/O beyond reading and writing files, no MAVLink.

pub mod camera;
pub mod error;
pub mod geo;
pub mod mission_item;

pub use error::PlanError;
