//! Mission files: QGroundControl `.plan` JSON, `QGC WPL 110` text, and GeoJSON of plans.
//!
//! - [`qgc_plan`]: read and write `.plan` (mission version 2 SimpleItems; survey/corridor ComplexItems are
//!   read by replaying their pre-generated `TransectStyleComplexItem.Items`; `geoFence` polygons and circles
//!   with `inclusion`; `rallyPoints`). Round trips are lossless for everything the mission model holds.
//! - [`wpl`]: read and write `QGC WPL 110` (home on line 0, as Mission Planner and QGC write it). It holds the
//!   mission list only: no fence, no rally points.
//! - [`geojson`]: GeoJSON of a patrol plan (cells, zones, launch points, routes, photo footprints) or of one
//!   mission.

use std::path::Path;

use crate::error::PlanError;
use crate::mission::Mission;

pub mod geojson;
pub mod qgc_plan;
pub mod wpl;

/// Reads a mission from a `.plan` or `QGC WPL 110` file, recognised by its content.
///
/// # Errors
/// The file cannot be read or is in neither format.
pub fn read_mission(path: &Path) -> Result<Mission, PlanError> {
    let text = crate::area::read_text(path)?;
    parse_mission(&text)
}

/// Parses a mission from `.plan` JSON or `QGC WPL 110` text, recognised by the content.
///
/// # Errors
/// The text is in neither format, or is malformed.
pub fn parse_mission(text: &str) -> Result<Mission, PlanError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with("QGC WPL") {
        wpl::parse(trimmed)
    } else if trimmed.starts_with('{') {
        qgc_plan::parse(trimmed)
    } else {
        Err(PlanError::format("mission file", "neither a QGroundControl .plan (JSON) nor a QGC WPL 110 waypoint file"))
    }
}

/// Writes `text` to `path`.
///
/// # Errors
/// [`PlanError::Io`] naming the file.
pub fn write_text(path: &Path, text: &str) -> Result<(), PlanError> {
    std::fs::write(path, text).map_err(|source| PlanError::Io { action: "write", path: path.to_path_buf(), source })
}
