//! GeoJSON of a patrol plan (cells, no-fly zones, launch points, routes, photo footprints) and of one mission.
//!
//! Every feature has a `kind` property (`cell`, `no_fly_zone`, `launch_point`, `route`, `photo`, `fence`) so a
//! map can style them; coordinates are [lon, lat] as RFC 7946 asks.

use geo::MultiPolygon;
use serde_json::{Value, json};

use crate::area::{NoFlyZone, ZoneShape};
use crate::geo::GeoPoint;
use crate::mission::{FenceShape, Mission};
use crate::patrol::{PatrolPlan, PatrolRequest};

fn position(p: GeoPoint) -> Value {
    json!([p.lon_deg, p.lat_deg])
}

fn multipolygon(area: &MultiPolygon<f64>) -> Value {
    let polys: Vec<Value> = area
        .iter()
        .map(|p| {
            std::iter::once(p.exterior())
                .chain(p.interiors())
                .map(|ring| ring.0.iter().map(|c| json!([c.x, c.y])).collect::<Vec<_>>())
                .collect::<Vec<_>>()
                .into()
        })
        .collect();
    json!({ "type": "MultiPolygon", "coordinates": polys })
}

fn feature(geometry: Value, properties: Value) -> Value {
    json!({ "type": "Feature", "geometry": geometry, "properties": properties })
}

fn zone_geometry(zone: &ZoneShape) -> Value {
    match zone {
        ZoneShape::Polygon(area) => multipolygon(area),
        ZoneShape::Circle { center, .. } => json!({ "type": "Point", "coordinates": position(*center) }),
    }
}

fn zone_feature(zone: &NoFlyZone) -> Value {
    let radius = match zone.shape {
        ZoneShape::Circle { radius_m, .. } => json!(radius_m),
        ZoneShape::Polygon(_) => Value::Null,
    };
    feature(
        zone_geometry(&zone.shape),
        json!({ "kind": "no_fly_zone", "id": zone.id, "name": zone.name, "radius_m": radius }),
    )
}

/// The whole plan as a GeoJSON FeatureCollection: cells (with `covered` and `reason`), zones, launch points,
/// one route per sortie (`drone`, `sortie`, `distance_m`, `flight_time_s`, `photos`) and, when
/// `with_footprints`, one polygon per photo.
pub fn plan_to_geojson(request: &PatrolRequest, plan: &PatrolPlan, with_footprints: bool) -> Value {
    let mut features = Vec::new();
    for cell in &request.cells {
        let reason = plan.uncovered.iter().find(|u| u.id == cell.id).map(|u| u.reason.to_string());
        let covered = plan.covered.iter().any(|c| c.id == cell.id);
        features.push(feature(
            multipolygon(&cell.area),
            json!({
                "kind": "cell", "grid_id": cell.id, "name": cell.name, "community": cell.community,
                "street": cell.street, "priority": cell.priority, "demo": cell.demo,
                "covered": covered && reason.is_none(), "reason": reason,
            }),
        ));
    }
    features.extend(request.zones.iter().map(zone_feature));
    for l in &request.launch_points {
        features.push(feature(
            json!({ "type": "Point", "coordinates": position(l.point) }),
            json!({ "kind": "launch_point", "id": l.id, "name": l.name }),
        ));
    }
    for (i, s) in plan.sorties.iter().enumerate() {
        features.push(feature(
            json!({ "type": "LineString", "coordinates": s.route.iter().map(|p| position(*p)).collect::<Vec<_>>() }),
            json!({
                "kind": "route", "sortie": i + 1, "drone": s.drone, "launch_point": s.launch_id,
                "distance_m": (s.distance_m * 10.0).round() / 10.0, "flight_time_s": s.flight_time_s.round(),
                "start_s": s.start_s.round(), "photos": s.photos.len(), "cells": s.cells,
            }),
        ));
        if with_footprints {
            for photo in &s.photos {
                let ring: Vec<Value> = plan.photo_footprint(photo).into_iter().map(position).collect();
                features.push(feature(
                    json!({ "type": "Polygon", "coordinates": [ring] }),
                    json!({ "kind": "photo", "sortie": i + 1, "drone": s.drone, "grid_id": request.cells[photo.cell].id,
                            "heading_deg": (photo.heading_deg * 10.0).round() / 10.0 }),
                ));
            }
        }
    }
    json!({ "type": "FeatureCollection", "features": features })
}

/// One mission as GeoJSON: its route from home and back, its fence zones and rally points.
pub fn mission_to_geojson(mission: &Mission) -> Value {
    let mut features = Vec::new();
    let route: Vec<Value> = mission.route().into_iter().map(position).collect();
    features.push(feature(json!({ "type": "LineString", "coordinates": route }), json!({ "kind": "route" })));
    for zone in &mission.fence {
        let geometry = match &zone.shape {
            FenceShape::Polygon(points) => {
                let ring: Vec<Value> = points.iter().chain(points.first()).map(|p| position(*p)).collect();
                json!({ "type": "Polygon", "coordinates": [ring] })
            }
            FenceShape::Circle { center, .. } => json!({ "type": "Point", "coordinates": position(*center) }),
        };
        let radius = match zone.shape {
            FenceShape::Circle { radius_m, .. } => json!(radius_m),
            FenceShape::Polygon(_) => Value::Null,
        };
        features.push(feature(geometry, json!({ "kind": "fence", "inclusion": zone.inclusion, "radius_m": radius })));
    }
    for r in &mission.rally {
        features.push(feature(
            json!({ "type": "Point", "coordinates": position(r.point) }),
            json!({ "kind": "rally", "alt_m": r.alt_m }),
        ));
    }
    json!({ "type": "FeatureCollection", "features": features })
}
