//! The district: grid cells (GeoJSON polygons in an R-tree, point-in-polygon lookup) and the address register
//! (GeoJSON points, nearest address within a distance).
//!
//! Cells: a FeatureCollection of Polygon/MultiPolygon features whose id is the `id`, `cell_id` or `name`
//! property (else the feature id). Addresses: a FeatureCollection of Point features with `building_id` and
//! `address` properties. Coordinates are WGS84 longitude, latitude (GeoJSON order).

use std::path::{Path, PathBuf};

use geo::{Contains, Intersects};
use geo::{MultiPolygon, Point};
use mission_planner::geo::{GeoPoint, LocalFrame, geodesic_distance_m};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

use crate::hazard::Address;
use crate::tracking::Locate;

/// Why a district file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistrictError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a GeoJSON FeatureCollection.
    #[error("{what} is not a GeoJSON FeatureCollection: {source}")]
    GeoJson {
        /// Which file.
        what: String,
        /// The cause.
        source: Box<geojson::Error>,
    },
    /// A feature is unusable.
    #[error("{what}, feature {index}: {message}")]
    Feature {
        /// Which file.
        what: String,
        /// Index of the feature in the collection.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// One grid cell.
#[derive(Debug, Clone)]
struct Cell {
    id: String,
    shape: MultiPolygon<f64>,
}

/// One registered address.
#[derive(Debug, Clone)]
struct AddressPoint {
    building_id: String,
    address: String,
    point: GeoPoint,
}

/// The district's cells and addresses, indexed for lookups.
#[derive(Debug)]
pub struct District {
    cells: Vec<Cell>,
    cell_index: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
    addresses: Vec<AddressPoint>,
    address_index: RTree<GeomWithData<[f64; 2], usize>>,
    frame: Option<LocalFrame>,
    max_address_distance_m: f64,
}

impl District {
    /// An empty district: no cells, no addresses.
    pub fn empty() -> Self {
        Self {
            cells: Vec::new(),
            cell_index: RTree::new(),
            addresses: Vec::new(),
            address_index: RTree::new(),
            frame: None,
            max_address_distance_m: 0.0,
        }
    }

    /// Loads the cells and address files (either may be absent).
    ///
    /// # Errors
    /// Unreadable files, invalid GeoJSON, or features without the required geometry or properties.
    pub fn load(
        cells: Option<&Path>,
        addresses: Option<&Path>,
        max_address_distance_m: f64,
    ) -> Result<Self, DistrictError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| DistrictError::Read { path: path.to_owned(), source })
        };
        let cells_text = cells.map(read).transpose()?;
        let addresses_text = addresses.map(read).transpose()?;
        Self::from_geojson(cells_text.as_deref(), addresses_text.as_deref(), max_address_distance_m)
    }

    /// Builds the district from GeoJSON texts.
    ///
    /// # Errors
    /// Invalid GeoJSON, or features without the required geometry or properties.
    pub fn from_geojson(
        cells: Option<&str>,
        addresses: Option<&str>,
        max_address_distance_m: f64,
    ) -> Result<Self, DistrictError> {
        let mut district = Self::empty();
        district.max_address_distance_m = max_address_distance_m;
        if let Some(text) = cells {
            district.cells = parse_cells(text)?;
            let entries = district
                .cells
                .iter()
                .enumerate()
                .filter_map(|(i, cell)| {
                    let rect = geo::BoundingRect::bounding_rect(&cell.shape)?;
                    Some(GeomWithData::new(
                        Rectangle::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]),
                        i,
                    ))
                })
                .collect();
            district.cell_index = RTree::bulk_load(entries);
        }
        if let Some(text) = addresses {
            district.addresses = parse_addresses(text)?;
            let frame = LocalFrame::around(district.addresses.iter().map(|a| a.point));
            if let Some(frame) = &frame {
                let entries = district
                    .addresses
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        let local = frame.to_local(a.point);
                        GeomWithData::new([local.east_m, local.north_m], i)
                    })
                    .collect();
                district.address_index = RTree::bulk_load(entries);
            }
            district.frame = frame;
        }
        Ok(district)
    }

    /// Number of grid cells.
    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// Number of registered addresses.
    pub fn address_count(&self) -> usize {
        self.addresses.len()
    }

    /// The id of the cell containing `point`. A point on the border of two cells belongs to the first cell in
    /// the file.
    pub fn cell_at(&self, point: GeoPoint) -> Option<&str> {
        let geo_point = Point::new(point.lon_deg, point.lat_deg);
        let mut candidates: Vec<usize> = self
            .cell_index
            .locate_in_envelope_intersecting(AABB::from_point([point.lon_deg, point.lat_deg]))
            .map(|entry| entry.data)
            .collect();
        candidates.sort_unstable();
        let inside = candidates.iter().find(|&&i| self.cells[i].shape.contains(&geo_point));
        let on_border = || candidates.iter().find(|&&i| self.cells[i].shape.intersects(&geo_point));
        inside.or_else(on_border).map(|&i| self.cells[i].id.as_str())
    }

    /// The registered address nearest to `point`, if within the configured distance.
    pub fn address_near(&self, point: GeoPoint) -> Option<Address> {
        let frame = self.frame.as_ref()?;
        let local = frame.to_local(point);
        // The planar nearest neighbour in the district's tangent plane is the geodesic one to centimetres.
        let nearest = self.address_index.nearest_neighbor([local.east_m, local.north_m])?;
        let entry = &self.addresses[nearest.data];
        let distance_m = geodesic_distance_m(point, entry.point);
        (distance_m <= self.max_address_distance_m).then(|| Address {
            building_id: entry.building_id.clone(),
            address: entry.address.clone(),
            distance_m,
        })
    }
}

impl Locate for District {
    fn grid_cell(&self, point: GeoPoint) -> Option<String> {
        self.cell_at(point).map(str::to_owned)
    }

    fn nearest_address(&self, point: GeoPoint) -> Option<Address> {
        self.address_near(point)
    }
}

fn collection(text: &str, what: &str) -> Result<geojson::FeatureCollection, DistrictError> {
    text.parse::<geojson::FeatureCollection>()
        .map_err(|source| DistrictError::GeoJson { what: what.to_owned(), source: Box::new(source) })
}

fn text_property(feature: &geojson::Feature, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| match feature.property(name)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn parse_cells(text: &str) -> Result<Vec<Cell>, DistrictError> {
    let what = "grid cells";
    let fail = |index, message: String| DistrictError::Feature { what: what.to_owned(), index, message };
    let mut cells = Vec::new();
    for (index, feature) in collection(text, what)?.features.iter().enumerate() {
        let id = text_property(feature, &["grid_id", "id", "cell_id", "name"])
            .or_else(|| match &feature.id {
                Some(geojson::feature::Id::String(s)) => Some(s.clone()),
                Some(geojson::feature::Id::Number(n)) => Some(n.to_string()),
                None => None,
            })
            .ok_or_else(|| fail(index, "no `id`, `cell_id` or `name` property and no feature id".into()))?;
        let geometry = feature.geometry.as_ref().ok_or_else(|| fail(index, format!("cell `{id}` has no geometry")))?;
        let shape = match geo::Geometry::<f64>::try_from(geometry) {
            Ok(geo::Geometry::Polygon(polygon)) => MultiPolygon::new(vec![polygon]),
            Ok(geo::Geometry::MultiPolygon(multi)) => multi,
            Ok(_) => return Err(fail(index, format!("cell `{id}` is not a Polygon or MultiPolygon"))),
            Err(error) => return Err(fail(index, format!("cell `{id}`: {error}"))),
        };
        cells.push(Cell { id, shape });
    }
    Ok(cells)
}

fn parse_addresses(text: &str) -> Result<Vec<AddressPoint>, DistrictError> {
    let what = "address register";
    let fail = |index, message: String| DistrictError::Feature { what: what.to_owned(), index, message };
    let mut out = Vec::new();
    for (index, feature) in collection(text, what)?.features.iter().enumerate() {
        let building_id =
            text_property(feature, &["building_id"]).ok_or_else(|| fail(index, "no `building_id` property".into()))?;
        let address =
            text_property(feature, &["address"]).ok_or_else(|| fail(index, "no `address` property".into()))?;
        let point = match feature.geometry.as_ref().map(geo::Geometry::<f64>::try_from) {
            Some(Ok(geo::Geometry::Point(point))) => GeoPoint::new(point.y(), point.x()),
            _ => return Err(fail(index, format!("address of building `{building_id}` is not a Point"))),
        };
        if !point.is_valid() {
            return Err(fail(index, format!("address of building `{building_id}` has invalid coordinates")));
        }
        out.push(AddressPoint { building_id, address, point });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use mission_planner::geo::LocalPoint;

    use super::*;

    fn offset_point(origin: GeoPoint, east_m: f64, north_m: f64) -> GeoPoint {
        LocalFrame::new(origin).to_geo(LocalPoint::new(east_m, north_m))
    }

    /// Two 0.001 x 0.001 degree cells side by side (west "A1", east "A2"), and a hole-free L-shaped
    /// MultiPolygon "B" further north.
    const CELLS: &str = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "properties": {"id": "A1"}, "geometry": {"type": "Polygon",
        "coordinates": [[[8.000, 47.000], [8.001, 47.000], [8.001, 47.001], [8.000, 47.001], [8.000, 47.000]]]}},
      {"type": "Feature", "properties": {"cell_id": "A2"}, "geometry": {"type": "Polygon",
        "coordinates": [[[8.001, 47.000], [8.002, 47.000], [8.002, 47.001], [8.001, 47.001], [8.001, 47.000]]]}},
      {"type": "Feature", "id": "B", "properties": {}, "geometry": {"type": "MultiPolygon",
        "coordinates": [[[[8.000, 47.002], [8.002, 47.002], [8.002, 47.0025], [8.000, 47.0025], [8.000, 47.002]]],
                        [[[8.000, 47.0025], [8.0005, 47.0025], [8.0005, 47.003], [8.000, 47.003], [8.000, 47.0025]]]]}}
    ]}"#;

    const ADDRESSES: &str = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "properties": {"building_id": "b1", "address": "Main Street 1"},
       "geometry": {"type": "Point", "coordinates": [8.0005, 47.0005]}},
      {"type": "Feature", "properties": {"building_id": 2, "address": "Main Street 3"},
       "geometry": {"type": "Point", "coordinates": [8.0015, 47.0005]}}
    ]}"#;

    fn district() -> District {
        District::from_geojson(Some(CELLS), Some(ADDRESSES), 50.0).unwrap()
    }

    #[test]
    fn points_fall_in_their_cells() {
        let d = district();
        assert_eq!(d.cell_count(), 3);
        assert_eq!(d.cell_at(GeoPoint::new(47.0005, 8.0005)), Some("A1"));
        assert_eq!(d.cell_at(GeoPoint::new(47.0005, 8.0015)), Some("A2"));
        assert_eq!(d.cell_at(GeoPoint::new(47.0022, 8.0015)), Some("B"));
        assert_eq!(d.cell_at(GeoPoint::new(47.0028, 8.0002)), Some("B"), "second polygon of the MultiPolygon");
        // Inside B's bounding box but outside both of its polygons.
        assert_eq!(d.cell_at(GeoPoint::new(47.0028, 8.0015)), None);
        assert_eq!(d.cell_at(GeoPoint::new(46.0, 8.0)), None);
    }

    #[test]
    fn a_border_point_belongs_to_the_first_cell() {
        assert_eq!(district().cell_at(GeoPoint::new(47.0005, 8.001)), Some("A1"));
    }

    #[test]
    fn the_nearest_address_within_the_distance() {
        let d = district();
        let near_b1 = offset_point(GeoPoint::new(47.0005, 8.0005), 10.0, 0.0);
        let found = d.address_near(near_b1).unwrap();
        assert_eq!(found.building_id, "b1");
        assert!((found.distance_m - 10.0).abs() < 0.05, "{}", found.distance_m);
        let near_2 = GeoPoint::new(47.0005, 8.0014);
        assert_eq!(d.address_near(near_2).unwrap().building_id, "2");
        let far = offset_point(GeoPoint::new(47.0005, 8.0005), 0.0, 60.0);
        assert_eq!(d.address_near(far), None, "60 m is beyond the 50 m limit");
        assert_eq!(District::empty().address_near(near_b1), None);
    }

    #[test]
    fn locate_uses_cells_and_addresses() {
        let d = district();
        let point = GeoPoint::new(47.0005, 8.0005);
        assert_eq!(Locate::grid_cell(&d, point).as_deref(), Some("A1"));
        assert_eq!(Locate::nearest_address(&d, point).unwrap().address, "Main Street 1");
    }

    #[test]
    fn bad_files_are_reported_with_the_feature() {
        assert!(matches!(District::from_geojson(Some("{}"), None, 1.0), Err(DistrictError::GeoJson { .. })));
        let no_id = r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
            "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}}]}"#;
        let error = District::from_geojson(Some(no_id), None, 1.0).unwrap_err();
        assert!(matches!(error, DistrictError::Feature { index: 0, .. }), "{error}");
        let point_cell = r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"id": "x"},
            "geometry": {"type": "Point", "coordinates": [0, 0]}}]}"#;
        assert!(District::from_geojson(Some(point_cell), None, 1.0).is_err());
        let no_address = r#"{"type": "FeatureCollection", "features": [{"type": "Feature",
            "properties": {"building_id": "b"}, "geometry": {"type": "Point", "coordinates": [0, 0]}}]}"#;
        assert!(District::from_geojson(None, Some(no_address), 1.0).is_err());
        let missing = District::load(Some(Path::new("/nonexistent/cells.geojson")), None, 1.0);
        assert!(matches!(missing, Err(DistrictError::Read { .. })));
    }

    #[test]
    fn many_cells_are_found_through_the_index() {
        let mut features = Vec::new();
        for row in 0..30 {
            for col in 0..30 {
                let (x, y) = (8.0 + f64::from(col) * 0.001, 47.0 + f64::from(row) * 0.001);
                features.push(format!(
                    r#"{{"type": "Feature", "properties": {{"id": "r{row}c{col}"}}, "geometry": {{"type": "Polygon",
                    "coordinates": [[[{x}, {y}], [{x1}, {y}], [{x1}, {y1}], [{x}, {y1}], [{x}, {y}]]]}}}}"#,
                    x1 = x + 0.001,
                    y1 = y + 0.001
                ));
            }
        }
        let text = format!(r#"{{"type": "FeatureCollection", "features": [{}]}}"#, features.join(","));
        let d = District::from_geojson(Some(&text), None, 1.0).unwrap();
        assert_eq!(d.cell_at(GeoPoint::new(47.0175, 8.0234)), Some("r17c23"));
    }
}
