//! Planning inputs: grid cells, no-fly zones, an inclusion fence and launch points, read from GeoJSON or KML.
//!
//! All shapes are stored in WGS84 as `geo` geometries with `x` = longitude and `y` = latitude (the GeoJSON
//! order). Polygons are checked on reading: a ring needs three distinct points and no self-intersection, holes
//! must lie inside their exterior, and coordinates must be valid degrees; a bad feature is an
//! [`PlanError::InvalidFeature`] error naming its id. Winding is *fixed, not rejected*: exteriors are reoriented
//! counter-clockwise and holes clockwise (RFC 7946 asks for that order but tells readers to accept either, and
//! real files are mixed). An empty collection is a [`PlanError::Empty`] error.

use std::path::Path;

use geo::coordinate_position::{CoordPos, CoordinatePosition};
use geo::orient::Direction;
use geo::{Coord, LineString, MultiPolygon, Orient, Polygon, Validation};
use serde_json::{Map, Value};

use crate::error::PlanError;
use crate::geo::{GeoPoint, LocalFrame};

/// One grid cell of the district: the unit a squad leader picks for a patrol.
#[derive(Debug, Clone, PartialEq)]
pub struct GridCell {
    /// The cell's id (`grid_id`), unique in its file.
    pub id: String,
    /// Human name.
    pub name: Option<String>,
    /// The community (residential committee) the cell belongs to.
    pub community: Option<String>,
    /// The street the cell belongs to.
    pub street: Option<String>,
    /// Patrol priority from the file (higher is more urgent), if given.
    pub priority: Option<i64>,
    /// True for cells marked `demo: true` (the sub-area flown by simulated drones in demos).
    pub demo: bool,
    /// The cell's area, WGS84 (x = lon, y = lat), exteriors counter-clockwise.
    pub area: MultiPolygon<f64>,
}

/// The shape of a no-fly zone or fence.
#[derive(Debug, Clone, PartialEq)]
pub enum ZoneShape {
    /// One or more polygons, WGS84 (x = lon, y = lat).
    Polygon(MultiPolygon<f64>),
    /// A circle on the ground.
    Circle {
        /// Centre.
        center: GeoPoint,
        /// Radius in metres.
        radius_m: f64,
    },
}

/// Vertices used to turn a circle into a polygon. The polygon circumscribes the circle, so it contains it.
pub const CIRCLE_SEGMENTS: usize = 48;

impl ZoneShape {
    /// The shape in `frame` metres (x = east, y = north). Circles become a polygon that contains the circle.
    pub fn to_local(&self, frame: &LocalFrame) -> MultiPolygon<f64> {
        match self {
            ZoneShape::Polygon(area) => to_local(area, frame),
            ZoneShape::Circle { center, radius_m } => {
                let c = frame.to_local(*center);
                MultiPolygon::new(vec![circle_polygon(c.east_m, c.north_m, *radius_m, CIRCLE_SEGMENTS)])
            }
        }
    }

    /// Every WGS84 vertex of the shape (the centre for a circle), for choosing a frame.
    pub fn anchor_points(&self) -> Vec<GeoPoint> {
        match self {
            ZoneShape::Polygon(area) => geo_points(area),
            ZoneShape::Circle { center, .. } => vec![*center],
        }
    }
}

/// A polygon with `segments` vertices that circumscribes the circle of `radius_m` around (`x`, `y`).
pub(crate) fn circle_polygon(x: f64, y: f64, radius_m: f64, segments: usize) -> Polygon<f64> {
    let n = segments.max(8);
    #[allow(clippy::cast_precision_loss)] // a few dozen segments
    let step = std::f64::consts::TAU / n as f64;
    let r = radius_m / (step / 2.0).cos();
    let ring: Vec<Coord<f64>> = (0..=n)
        .map(|i| {
            #[allow(clippy::cast_precision_loss)]
            let a = step * (i % n) as f64;
            Coord { x: x + r * a.cos(), y: y + r * a.sin() }
        })
        .collect();
    Polygon::new(LineString::new(ring), vec![])
}

/// A no-fly (exclusion) zone.
#[derive(Debug, Clone, PartialEq)]
pub struct NoFlyZone {
    /// The zone's id (`id`, else `name`, else its index).
    pub id: String,
    /// Human name.
    pub name: Option<String>,
    /// Where flying is forbidden.
    pub shape: ZoneShape,
}

/// A place a drone takes off from and returns to.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPoint {
    /// The point's id (`id`, else `name`, else its index).
    pub id: String,
    /// Human name.
    pub name: Option<String>,
    /// Where it is.
    pub point: GeoPoint,
}

/// Maps a WGS84 multipolygon into `frame` metres (x = east, y = north).
pub fn to_local(area: &MultiPolygon<f64>, frame: &LocalFrame) -> MultiPolygon<f64> {
    use geo::MapCoords;
    area.map_coords(|c| {
        let p = frame.to_local(GeoPoint::new(c.y, c.x));
        Coord { x: p.east_m, y: p.north_m }
    })
}

/// Maps a `frame` multipolygon (x = east, y = north) back to WGS84 (x = lon, y = lat).
pub fn to_geo(area: &MultiPolygon<f64>, frame: &LocalFrame) -> MultiPolygon<f64> {
    use geo::MapCoords;
    area.map_coords(|c| {
        let p = frame.to_geo(crate::geo::LocalPoint::new(c.x, c.y));
        Coord { x: p.lon_deg, y: p.lat_deg }
    })
}

/// Every vertex of a WGS84 multipolygon as a [`GeoPoint`].
pub fn geo_points(area: &MultiPolygon<f64>) -> Vec<GeoPoint> {
    use geo::CoordsIter;
    area.coords_iter().map(|c| GeoPoint::new(c.y, c.x)).collect()
}

/// Reads a file as text.
///
/// # Errors
/// [`PlanError::Io`] naming the file.
pub fn read_text(path: &Path) -> Result<String, PlanError> {
    std::fs::read_to_string(path).map_err(|source| PlanError::Io { action: "read", path: path.to_path_buf(), source })
}

fn is_kml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("kml"))
}

/// Reads grid cells from a GeoJSON (`.geojson`, `.json`) or KML (`.kml`) file.
///
/// # Errors
/// The file cannot be read, is not GeoJSON/KML, holds no cells, or a cell is invalid (see the module docs).
pub fn read_cells(path: &Path) -> Result<Vec<GridCell>, PlanError> {
    let text = read_text(path)?;
    if is_kml(path) { parse_cells_kml(&text) } else { parse_cells_geojson(&text) }
}

/// Reads no-fly zones from a GeoJSON or KML file (polygons, and points with a `radius_m` property as circles).
///
/// # Errors
/// As [`read_cells`].
pub fn read_zones(path: &Path) -> Result<Vec<NoFlyZone>, PlanError> {
    let text = read_text(path)?;
    if is_kml(path) { parse_zones_kml(&text) } else { parse_zones_geojson(&text) }
}

/// Reads launch points (GeoJSON or KML points).
///
/// # Errors
/// As [`read_cells`].
pub fn read_launch_points(path: &Path) -> Result<Vec<LaunchPoint>, PlanError> {
    let text = read_text(path)?;
    if is_kml(path) { parse_launch_points_kml(&text) } else { parse_launch_points_geojson(&text) }
}

/// A feature read from either format, before it is typed.
struct RawFeature {
    id: Option<String>,
    properties: Map<String, Value>,
    geometry: RawGeometry,
}

enum RawGeometry {
    /// Polygons as rings of (lon, lat).
    Polygons(Vec<Vec<Vec<(f64, f64)>>>),
    Point(f64, f64),
    Other(String),
}

fn feature_id(feature: &RawFeature, keys: &[&str], index: usize) -> String {
    for key in keys {
        match feature.properties.get(*key) {
            Some(Value::String(s)) if !s.trim().is_empty() => return s.trim().to_string(),
            Some(Value::Number(n)) => return n.to_string(),
            _ => {}
        }
    }
    feature.id.clone().unwrap_or_else(|| format!("#{index}"))
}

fn prop_string(props: &Map<String, Value>, key: &str) -> Option<String> {
    match props.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn prop_f64(props: &Map<String, Value>, key: &str) -> Option<f64> {
    match props.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn prop_bool(props: &Map<String, Value>, key: &str) -> bool {
    match props.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1"),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|v| v != 0.0),
        _ => false,
    }
}

fn parse_geojson_features(text: &str, what: &str) -> Result<Vec<RawFeature>, PlanError> {
    let root: Value = serde_json::from_str(text).map_err(|e| PlanError::format(what, e.to_string()))?;
    let kind = root.get("type").and_then(Value::as_str).unwrap_or("");
    let features: Vec<&Value> = match kind {
        "FeatureCollection" => root
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| PlanError::format(what, "a FeatureCollection needs a `features` array"))?
            .iter()
            .collect(),
        "Feature" => vec![&root],
        other => {
            return Err(PlanError::format(what, format!("expected a GeoJSON FeatureCollection, found type {other:?}")));
        }
    };
    features
        .into_iter()
        .enumerate()
        .map(|(index, f)| {
            let id = match f.get("id") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let properties = f.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
            let geometry = match f.get("geometry") {
                Some(g) if !g.is_null() => geojson_geometry(g)
                    .map_err(|reason| PlanError::format(what, format!("feature #{index}: {reason}")))?,
                _ => RawGeometry::Other("no geometry".into()),
            };
            Ok(RawFeature { id, properties, geometry })
        })
        .collect()
}

fn position(value: &Value) -> Result<(f64, f64), String> {
    let arr = value.as_array().ok_or("a position must be an array [lon, lat]")?;
    match (arr.first().and_then(Value::as_f64), arr.get(1).and_then(Value::as_f64)) {
        (Some(lon), Some(lat)) => Ok((lon, lat)),
        _ => Err(format!("a position must be [lon, lat] numbers, got {value}")),
    }
}

fn rings(value: &Value) -> Result<Vec<Vec<(f64, f64)>>, String> {
    value
        .as_array()
        .ok_or("polygon coordinates must be an array of rings")?
        .iter()
        .map(|ring| ring.as_array().ok_or("a ring must be an array of positions")?.iter().map(position).collect())
        .collect()
}

fn geojson_geometry(g: &Value) -> Result<RawGeometry, String> {
    let kind = g.get("type").and_then(Value::as_str).unwrap_or("");
    let coords = g.get("coordinates").ok_or("geometry without coordinates")?;
    Ok(match kind {
        "Polygon" => RawGeometry::Polygons(vec![rings(coords)?]),
        "MultiPolygon" => RawGeometry::Polygons(
            coords
                .as_array()
                .ok_or("MultiPolygon coordinates must be an array")?
                .iter()
                .map(rings)
                .collect::<Result<_, _>>()?,
        ),
        "Point" => {
            let (lon, lat) = position(coords)?;
            RawGeometry::Point(lon, lat)
        }
        other => RawGeometry::Other(other.to_string()),
    })
}

fn kml_features(text: &str, what: &str) -> Result<Vec<RawFeature>, PlanError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| PlanError::format(what, e.to_string()))?;
    let child_text = |node: roxmltree::Node<'_, '_>, name: &str| {
        node.children().find(|c| c.tag_name().name() == name).and_then(|c| c.text()).map(|t| t.trim().to_string())
    };
    let parse_coords = |text: &str| -> Result<Vec<(f64, f64)>, String> {
        text.split_whitespace()
            .map(|tuple| {
                let mut parts = tuple.split(',').map(str::parse::<f64>);
                match (parts.next(), parts.next()) {
                    (Some(Ok(lon)), Some(Ok(lat))) => Ok((lon, lat)),
                    _ => Err(format!("bad KML coordinate tuple {tuple:?} (want lon,lat[,alt])")),
                }
            })
            .collect()
    };
    let mut out = Vec::new();
    for (index, placemark) in doc.descendants().filter(|n| n.tag_name().name() == "Placemark").enumerate() {
        let mut properties = Map::new();
        if let Some(name) = child_text(placemark, "name") {
            properties.insert("name".into(), Value::String(name));
        }
        for data in placemark.descendants().filter(|n| n.tag_name().name() == "Data") {
            if let (Some(key), Some(value)) = (data.attribute("name"), child_text(data, "value")) {
                properties.insert(key.to_string(), Value::String(value));
            }
        }
        for data in placemark.descendants().filter(|n| n.tag_name().name() == "SimpleData") {
            if let (Some(key), Some(value)) = (data.attribute("name"), data.text()) {
                properties.insert(key.to_string(), Value::String(value.trim().to_string()));
            }
        }
        let fail = |reason: String| PlanError::format(what, format!("placemark #{index}: {reason}"));
        let mut polygons = Vec::new();
        for polygon in placemark.descendants().filter(|n| n.tag_name().name() == "Polygon") {
            let mut rings = Vec::new();
            for boundary in ["outerBoundaryIs", "innerBoundaryIs"] {
                for b in polygon.children().filter(|c| c.tag_name().name() == boundary) {
                    let coords = b
                        .descendants()
                        .find(|n| n.tag_name().name() == "coordinates")
                        .and_then(|n| n.text())
                        .ok_or_else(|| fail(format!("{boundary} without coordinates")))?;
                    rings.push(parse_coords(coords).map_err(fail)?);
                }
            }
            polygons.push(rings);
        }
        let geometry = if !polygons.is_empty() {
            RawGeometry::Polygons(polygons)
        } else if let Some(point) = placemark.descendants().find(|n| n.tag_name().name() == "Point") {
            let coords = point
                .descendants()
                .find(|n| n.tag_name().name() == "coordinates")
                .and_then(|n| n.text())
                .ok_or_else(|| fail("Point without coordinates".into()))?;
            let pts = parse_coords(coords).map_err(fail)?;
            let (lon, lat) = pts.first().copied().ok_or_else(|| fail("empty Point".into()))?;
            RawGeometry::Point(lon, lat)
        } else {
            RawGeometry::Other("a placemark without Polygon or Point".into())
        };
        let id = placemark.attribute("id").map(str::to_string);
        out.push(RawFeature { id, properties, geometry });
    }
    Ok(out)
}

/// Builds and checks a WGS84 multipolygon from raw rings; the error says what is wrong, for the caller to tag
/// with the feature id.
fn build_area(raw: &[Vec<Vec<(f64, f64)>>]) -> Result<MultiPolygon<f64>, String> {
    let mut polygons = Vec::new();
    for (pi, rings) in raw.iter().enumerate() {
        let mut built = Vec::new();
        for (ri, ring) in rings.iter().enumerate() {
            let mut coords: Vec<Coord<f64>> = Vec::with_capacity(ring.len() + 1);
            for &(lon, lat) in ring {
                if !GeoPoint::new(lat, lon).is_valid() {
                    return Err(format!(
                        "polygon {pi} ring {ri} has an invalid position [{lon}, {lat}] (want [lon, lat] degrees)"
                    ));
                }
                coords.push(Coord { x: lon, y: lat });
            }
            if let Some(first) = coords.first().copied()
                && coords.last() != Some(&first)
            {
                coords.push(first);
            }
            coords.dedup();
            if coords.len() < 4 {
                return Err(format!("polygon {pi} ring {ri} needs at least 3 distinct points"));
            }
            built.push(LineString::new(coords));
        }
        let mut iter = built.into_iter();
        let Some(exterior) = iter.next() else {
            return Err(format!("polygon {pi} has no rings"));
        };
        let holes: Vec<LineString<f64>> = iter.collect();
        // Holes outside their outer ring are reported here, by a plain point-in-polygon test: geo's validation
        // (below) runs its topology graph over them and, for some such slivers, trips its own consistency check
        // (a panic in debug builds; found by fuzzing area_kml).
        let shell = Polygon::new(exterior.clone(), Vec::new());
        for (hi, hole) in holes.iter().enumerate() {
            if hole.coords().any(|c| shell.coordinate_position(c) == CoordPos::Outside) {
                return Err(format!(
                    "polygon {pi} ring {}: a hole (interior ring) must lie inside the exterior ring",
                    hi + 1
                ));
            }
        }
        polygons.push(Polygon::new(exterior, holes));
    }
    if polygons.is_empty() {
        return Err("the geometry has no polygons".into());
    }
    let area = MultiPolygon::new(polygons).orient(Direction::Default);
    let problems = area.validation_errors();
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(format!(
            "invalid polygon: {} (fix the geometry, e.g. with QGIS \"Fix geometries\")",
            list.join("; ")
        ));
    }
    Ok(area)
}

fn cells_from(features: Vec<RawFeature>, what: &str) -> Result<Vec<GridCell>, PlanError> {
    if features.is_empty() {
        return Err(PlanError::Empty {
            what: what.into(),
            hint: "give at least one Polygon feature with a grid_id".into(),
        });
    }
    let mut cells: Vec<GridCell> = Vec::with_capacity(features.len());
    for (index, f) in features.into_iter().enumerate() {
        let id = feature_id(&f, &["grid_id", "id", "name"], index);
        let invalid = |reason: String| PlanError::InvalidFeature { what: "grid cell", id: id.clone(), reason };
        let area = match &f.geometry {
            RawGeometry::Polygons(raw) => build_area(raw).map_err(invalid)?,
            RawGeometry::Point(..) => {
                return Err(invalid("is a Point; grid cells must be Polygon or MultiPolygon".into()));
            }
            RawGeometry::Other(kind) => {
                return Err(invalid(format!("has geometry {kind}; grid cells must be Polygon or MultiPolygon")));
            }
        };
        if cells.iter().any(|c| c.id == id) {
            return Err(invalid("the id appears twice; grid_id must be unique".into()));
        }
        let priority = prop_f64(&f.properties, "priority").map(|p| {
            #[allow(clippy::cast_possible_truncation)] // priorities are small integers
            let p = p.round() as i64;
            p
        });
        cells.push(GridCell {
            name: prop_string(&f.properties, "name"),
            community: prop_string(&f.properties, "community"),
            street: prop_string(&f.properties, "street"),
            priority,
            demo: prop_bool(&f.properties, "demo"),
            id,
            area,
        });
    }
    Ok(cells)
}

fn zones_from(features: Vec<RawFeature>, what: &str) -> Result<Vec<NoFlyZone>, PlanError> {
    if features.is_empty() {
        return Err(PlanError::Empty {
            what: what.into(),
            hint: "give Polygon features, or Point features with a radius_m property".into(),
        });
    }
    features
        .into_iter()
        .enumerate()
        .map(|(index, f)| {
            let id = feature_id(&f, &["id", "zone_id", "name"], index);
            let invalid = |reason: String| PlanError::InvalidFeature { what: "no-fly zone", id: id.clone(), reason };
            let shape = match &f.geometry {
                RawGeometry::Polygons(raw) => ZoneShape::Polygon(build_area(raw).map_err(invalid)?),
                RawGeometry::Point(lon, lat) => {
                    let center = GeoPoint::new(*lat, *lon);
                    if !center.is_valid() {
                        return Err(invalid(format!("invalid position [{lon}, {lat}]")));
                    }
                    match prop_f64(&f.properties, "radius_m") {
                        Some(r) if r.is_finite() && r > 0.0 => ZoneShape::Circle { center, radius_m: r },
                        Some(r) => {
                            return Err(invalid(format!("radius_m must be a positive number of metres, got {r}")));
                        }
                        None => return Err(invalid("a Point zone needs a radius_m property (metres)".into())),
                    }
                }
                RawGeometry::Other(kind) => {
                    return Err(invalid(format!("has geometry {kind}; zones must be Polygon, MultiPolygon or Point")));
                }
            };
            Ok(NoFlyZone { name: prop_string(&f.properties, "name"), id, shape })
        })
        .collect()
}

fn launch_points_from(features: Vec<RawFeature>, what: &str) -> Result<Vec<LaunchPoint>, PlanError> {
    if features.is_empty() {
        return Err(PlanError::Empty { what: what.into(), hint: "give at least one Point feature".into() });
    }
    features
        .into_iter()
        .enumerate()
        .map(|(index, f)| {
            let id = feature_id(&f, &["id", "name"], index);
            match f.geometry {
                RawGeometry::Point(lon, lat) if GeoPoint::new(lat, lon).is_valid() => {
                    Ok(LaunchPoint { name: prop_string(&f.properties, "name"), id, point: GeoPoint::new(lat, lon) })
                }
                _ => Err(PlanError::InvalidFeature {
                    what: "launch point",
                    id,
                    reason: "must be a Point with valid [lon, lat] degrees".into(),
                }),
            }
        })
        .collect()
}

/// Parses grid cells from a GeoJSON FeatureCollection of Polygon/MultiPolygon features with properties
/// `grid_id`, `name`, `community`, `street`, `priority` and `demo`.
///
/// # Errors
/// Not GeoJSON, no features, or an invalid cell (named by its id).
pub fn parse_cells_geojson(text: &str) -> Result<Vec<GridCell>, PlanError> {
    cells_from(parse_geojson_features(text, "cells GeoJSON")?, "cells GeoJSON")
}

/// Parses grid cells from KML placemarks with polygons; `ExtendedData` supplies `grid_id` and the other
/// properties, the placemark `name` is the fallback id.
///
/// # Errors
/// As [`parse_cells_geojson`].
pub fn parse_cells_kml(text: &str) -> Result<Vec<GridCell>, PlanError> {
    cells_from(kml_features(text, "cells KML")?, "cells KML")
}

/// Parses no-fly zones from GeoJSON: polygons, and points with a `radius_m` property as circles.
///
/// # Errors
/// Not GeoJSON, no features, or an invalid zone (named by its id).
pub fn parse_zones_geojson(text: &str) -> Result<Vec<NoFlyZone>, PlanError> {
    zones_from(parse_geojson_features(text, "no-fly GeoJSON")?, "no-fly GeoJSON")
}

/// Parses no-fly zones from KML (polygons, and points with a `radius_m` data field).
///
/// # Errors
/// As [`parse_zones_geojson`].
pub fn parse_zones_kml(text: &str) -> Result<Vec<NoFlyZone>, PlanError> {
    zones_from(kml_features(text, "no-fly KML")?, "no-fly KML")
}

/// Parses launch points from GeoJSON Point features.
///
/// # Errors
/// Not GeoJSON, no features, or a feature that is not a valid point.
pub fn parse_launch_points_geojson(text: &str) -> Result<Vec<LaunchPoint>, PlanError> {
    launch_points_from(parse_geojson_features(text, "launch points GeoJSON")?, "launch points GeoJSON")
}

/// Parses launch points from KML Point placemarks.
///
/// # Errors
/// As [`parse_launch_points_geojson`].
pub fn parse_launch_points_kml(text: &str) -> Result<Vec<LaunchPoint>, PlanError> {
    launch_points_from(kml_features(text, "launch points KML")?, "launch points KML")
}

#[cfg(test)]
mod tests {
    use geo::Area;

    use super::*;

    const SQUARE_CW: &str = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"grid_id":"G1",
        "name":"Block 1","community":"Xixiang","street":"Bao'an Ave","priority":2},"geometry":{"type":"Polygon",
        "coordinates":[[[113.88,22.54],[113.88,22.541],[113.881,22.541],[113.881,22.54],[113.88,22.54]]]}}]}"#;

    #[test]
    fn reads_cells_with_properties_and_fixes_winding() {
        let cells = parse_cells_geojson(SQUARE_CW).unwrap();
        assert_eq!(cells.len(), 1);
        let c = &cells[0];
        assert_eq!(c.id, "G1");
        assert_eq!(c.community.as_deref(), Some("Xixiang"));
        assert_eq!(c.priority, Some(2));
        assert!(!c.demo);
        // The clockwise exterior was reoriented counter-clockwise (positive signed area).
        assert!(c.area.0[0].signed_area() > 0.0);
    }

    #[test]
    fn self_intersecting_cell_is_an_error_naming_the_id() {
        let bowtie = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"grid_id":"BOW"},
            "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}}]}"#;
        let err = parse_cells_geojson(bowtie).unwrap_err().to_string();
        assert!(err.contains("BOW") && err.contains("self-intersection"), "{err}");
    }

    #[test]
    fn empty_collection_and_wrong_geometry_are_clear_errors() {
        let err = parse_cells_geojson(r#"{"type":"FeatureCollection","features":[]}"#).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        let point = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"grid_id":"P"},
            "geometry":{"type":"Point","coordinates":[113.9,22.5]}}]}"#;
        let err = parse_cells_geojson(point).unwrap_err().to_string();
        assert!(err.contains("\"P\"") && err.contains("Polygon"), "{err}");
        assert!(parse_cells_geojson("not json").is_err());
    }

    #[test]
    fn hole_outside_exterior_is_rejected() {
        let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"grid_id":"H"},
            "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]],
            [[2,2],[3,2],[3,3],[2,2]]]}}]}"#;
        let err = parse_cells_geojson(text).unwrap_err().to_string();
        assert!(err.contains("\"H\"") && err.contains("exterior"), "{err}");
    }

    #[test]
    fn zones_read_polygons_and_circles() {
        let text = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{"id":"ZGSZ","radius_m":3000},"geometry":{"type":"Point","coordinates":[113.811,22.639]}},
            {"type":"Feature","properties":{"name":"Plant"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[0.01,0],[0.01,0.01],[0,0]]]}}]}"#;
        let zones = parse_zones_geojson(text).unwrap();
        assert_eq!(zones[0].id, "ZGSZ");
        assert!(matches!(zones[0].shape, ZoneShape::Circle { radius_m, .. } if radius_m == 3000.0));
        assert_eq!(zones[1].id, "Plant");
        let bad = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"C"},"geometry":{"type":"Point","coordinates":[113.8,22.6]}}]}"#;
        assert!(parse_zones_geojson(bad).unwrap_err().to_string().contains("radius_m"));
    }

    #[test]
    fn circle_polygon_contains_the_circle() {
        let frame = LocalFrame::new(GeoPoint::new(22.6, 113.8));
        let shape = ZoneShape::Circle { center: GeoPoint::new(22.6, 113.8), radius_m: 1000.0 };
        let poly = shape.to_local(&frame);
        let area = poly.unsigned_area();
        let circle = std::f64::consts::PI * 1e6;
        assert!(area > circle && area < circle * 1.01, "{area}");
    }

    #[test]
    fn kml_cells_and_zones() {
        let kml = r#"<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>
          <Placemark><name>Cell A</name><ExtendedData><Data name="grid_id"><value>A1</value></Data>
          <Data name="demo"><value>true</value></Data></ExtendedData>
          <Polygon><outerBoundaryIs><LinearRing><coordinates>113.88,22.54,0 113.881,22.54,0 113.881,22.541,0 113.88,22.541,0 113.88,22.54,0</coordinates></LinearRing></outerBoundaryIs>
          <innerBoundaryIs><LinearRing><coordinates>113.8803,22.5403 113.8806,22.5403 113.8806,22.5406 113.8803,22.5403</coordinates></LinearRing></innerBoundaryIs></Polygon></Placemark>
          </Document></kml>"#;
        let cells = parse_cells_kml(kml).unwrap();
        assert_eq!(cells[0].id, "A1");
        assert!(cells[0].demo);
        assert_eq!(cells[0].area.0[0].interiors().len(), 1);
        let zone_kml = r#"<kml><Placemark><name>Tower</name><ExtendedData><Data name="radius_m"><value>150</value></Data></ExtendedData>
          <Point><coordinates>113.9,22.55</coordinates></Point></Placemark></kml>"#;
        let zones = parse_zones_kml(zone_kml).unwrap();
        assert!(matches!(zones[0].shape, ZoneShape::Circle { radius_m, .. } if radius_m == 150.0));
    }
}
