//! Pure geometry for drone patrols over a district's grid cells.
//!
//! - [`geo`]: WGS84 points and a local tangent plane for metric work.
//! - [`camera`]: the pinhole camera model, footprints and pixel <-> ground projection.
//! - [`mission_item`]: the raw mission item exchanged with autopilots and mission files.
//! - [`area`]: planning inputs (grid cells, no-fly zones, fences, launch points) from GeoJSON and KML.
//! - [`coverage`]: boustrophedon coverage of one cell; [`routing`]: free airspace and routes around zones.
//! - [`patrol`]: the whole patrol ([`patrol::plan_patrol`]): cells, sorties, drones, uncovered cells.
//! - [`mission`]: the typed [`mission::Mission`] with fence and rally points, summary and validation.
//! - [`files`]: QGC `.plan`, `QGC WPL 110` and GeoJSON files; [`svg`]: a picture of a plan.
//!
//! Non-goals: no async, no clocks (callers pass `now`), no I/O beyond reading and writing files, no MAVLink.
//!
//! ```
//! use mission_planner::area::parse_cells_geojson;
//! let cells = parse_cells_geojson(r#"{"type":"FeatureCollection","features":[{"type":"Feature",
//!   "properties":{"grid_id":"A1"},"geometry":{"type":"Polygon","coordinates":
//!   [[[113.88,22.54],[113.883,22.54],[113.883,22.543],[113.88,22.543],[113.88,22.54]]]}}]}"#).unwrap();
//! assert_eq!(cells[0].id, "A1");
//! ```

pub mod area;
pub mod camera;
pub mod coverage;
pub mod error;
pub mod files;
pub mod geo;
pub mod mission;
pub mod mission_item;
pub mod patrol;
pub mod routing;
pub mod svg;

pub use error::PlanError;
