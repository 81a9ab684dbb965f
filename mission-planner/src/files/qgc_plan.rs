//! QGroundControl `.plan` files (JSON, `fileType: "Plan"`, mission version 2).
//!
//! Format as QGC writes it (`PlanMasterController::saveToJson`, `MissionController::_saveJsonToObject`,
//! `SimpleMissionItem::save`, `GeoFenceController::save`, `RallyPointController::save`): `params` holds
//! param1..param7 with `null` for NaN; param5/6 are latitude/longitude in degrees. The fence is stored as
//! separate `polygons` and `circles` lists, so polygons read back before circles.

use serde_json::{Map, Value, json};

use crate::error::PlanError;
use crate::geo::GeoPoint;
use crate::mission::{FenceShape, FenceZone, Home, Mission, MissionStep, RallyPoint};
use crate::mission_item::{MissionFrame, MissionItem};

const WHAT: &str = "QGC .plan";

fn num(v: f32) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

fn deg(e7: i32) -> f64 {
    f64::from(e7) / 1e7
}

fn e7(deg: f64) -> i32 {
    GeoPoint::new(deg, 0.0).lat_e7()
}

fn altitude_mode(frame: MissionFrame) -> u8 {
    match frame {
        MissionFrame::Global => 2,
        MissionFrame::GlobalTerrainAlt => 3,
        _ => 1,
    }
}

fn simple_item(item: &MissionItem, jump_id: usize) -> Value {
    json!({
        "AMSLAltAboveTerrain": null,
        "Altitude": num(item.z),
        "AltitudeMode": altitude_mode(item.frame),
        "autoContinue": item.autocontinue,
        "command": item.command,
        "doJumpId": jump_id,
        "frame": item.frame.number(),
        "params": [num(item.params[0]), num(item.params[1]), num(item.params[2]), num(item.params[3]),
                   deg(item.x), deg(item.y), num(item.z)],
        "type": "SimpleItem",
    })
}

/// The `.plan` JSON of a mission, as QGroundControl writes it (ArduPilot multirotor).
pub fn to_json(mission: &Mission, cruise_speed_mps: f64, hover_speed_mps: f64) -> Value {
    let items: Vec<Value> =
        mission.mission_items().iter().enumerate().map(|(i, item)| simple_item(item, i + 1)).collect();
    let home = mission.home.map_or(json!([0.0, 0.0, 0.0]), |h| json!([h.point.lat_deg, h.point.lon_deg, h.alt_amsl_m]));
    let mut polygons = Vec::new();
    let mut circles = Vec::new();
    for zone in &mission.fence {
        match &zone.shape {
            FenceShape::Polygon(points) => polygons.push(json!({
                "inclusion": zone.inclusion,
                "polygon": points.iter().map(|p| json!([p.lat_deg, p.lon_deg])).collect::<Vec<_>>(),
                "version": 1,
            })),
            FenceShape::Circle { center, radius_m } => circles.push(json!({
                "circle": { "center": [center.lat_deg, center.lon_deg], "radius": radius_m },
                "inclusion": zone.inclusion,
                "version": 1,
            })),
        }
    }
    json!({
        "fileType": "Plan",
        "geoFence": { "circles": circles, "polygons": polygons, "version": 2 },
        "groundStation": "QGroundControl",
        "mission": {
            "cruiseSpeed": cruise_speed_mps,
            "firmwareType": 3,
            "globalPlanAltitudeMode": 1,
            "hoverSpeed": hover_speed_mps,
            "items": items,
            "plannedHomePosition": home,
            "vehicleType": 2,
            "version": 2,
        },
        "rallyPoints": {
            "points": mission.rally.iter().map(|r| json!([r.point.lat_deg, r.point.lon_deg, r.alt_m])).collect::<Vec<_>>(),
            "version": 2,
        },
        "version": 1,
    })
}

/// The `.plan` text of a mission (pretty-printed JSON).
pub fn to_string(mission: &Mission, cruise_speed_mps: f64, hover_speed_mps: f64) -> String {
    let mut text = serde_json::to_string_pretty(&to_json(mission, cruise_speed_mps, hover_speed_mps))
        .unwrap_or_else(|_| String::from("{}"));
    text.push('\n');
    text
}

fn field<'a>(obj: &'a Value, key: &str, at: &str) -> Result<&'a Value, PlanError> {
    obj.get(key).ok_or_else(|| PlanError::format(WHAT, format!("{at}: missing `{key}`")))
}

fn f64_of(v: &Value, at: &str) -> Result<f64, PlanError> {
    match v {
        Value::Null => Ok(f64::NAN),
        Value::Number(n) => n.as_f64().ok_or_else(|| PlanError::format(WHAT, format!("{at}: bad number {n}"))),
        other => Err(PlanError::format(WHAT, format!("{at}: expected a number, got {other}"))),
    }
}

#[allow(clippy::cast_possible_truncation)] // mission parameters are f32
fn f32_of(v: &Value, at: &str) -> Result<f32, PlanError> {
    f64_of(v, at).map(|x| x as f32)
}

fn lat_lon(v: &Value, at: &str) -> Result<(f64, f64, Option<f64>), PlanError> {
    let arr = v
        .as_array()
        .filter(|a| a.len() >= 2)
        .ok_or_else(|| PlanError::format(WHAT, format!("{at}: expected [lat, lon]")))?;
    Ok((f64_of(&arr[0], at)?, f64_of(&arr[1], at)?, arr.get(2).map(|a| f64_of(a, at)).transpose()?))
}

fn parse_simple(item: &Value, at: &str) -> Result<MissionItem, PlanError> {
    let command = field(item, "command", at)?
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .ok_or_else(|| PlanError::format(WHAT, format!("{at}: `command` must be a MAV_CMD number")))?;
    let frame = field(item, "frame", at)?
        .as_u64()
        .and_then(|c| u8::try_from(c).ok())
        .ok_or_else(|| PlanError::format(WHAT, format!("{at}: `frame` must be a MAV_FRAME number")))?;
    let params = field(item, "params", at)?
        .as_array()
        .filter(|p| p.len() == 7)
        .ok_or_else(|| PlanError::format(WHAT, format!("{at}: `params` must hold 7 values")))?;
    let lat = f64_of(&params[4], at)?;
    let lon = f64_of(&params[5], at)?;
    Ok(MissionItem {
        command,
        frame: MissionFrame::from_number(frame),
        current: false,
        autocontinue: item.get("autoContinue").and_then(Value::as_bool).unwrap_or(true),
        params: [f32_of(&params[0], at)?, f32_of(&params[1], at)?, f32_of(&params[2], at)?, f32_of(&params[3], at)?],
        x: if lat.is_finite() { e7(lat) } else { 0 },
        y: if lon.is_finite() { e7(lon) } else { 0 },
        z: f32_of(&params[6], at)?,
    })
}

fn parse_items(items: &[Value], out: &mut Vec<MissionItem>, at: &str) -> Result<(), PlanError> {
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at} item {i}");
        match item.get("type").and_then(Value::as_str) {
            Some("SimpleItem") => out.push(parse_simple(item, &at)?),
            Some("ComplexItem") => {
                let kind = item.get("complexItemType").and_then(Value::as_str).unwrap_or("?");
                // Survey and corridor scans store their generated items; replay them.
                let Some(inner) =
                    item.get("TransectStyleComplexItem").and_then(|t| t.get("Items")).and_then(Value::as_array)
                else {
                    return Err(PlanError::format(
                        WHAT,
                        format!(
                            "{at}: ComplexItem {kind:?} has no TransectStyleComplexItem.Items to replay; open it in QGroundControl and save it again"
                        ),
                    ));
                };
                parse_items(inner, out, &format!("{at} ({kind})"))?;
            }
            other => return Err(PlanError::format(WHAT, format!("{at}: unknown item type {other:?}"))),
        }
    }
    Ok(())
}

/// Parses `.plan` JSON into a mission.
///
/// # Errors
/// Not JSON, not a Plan, or a malformed item, fence or rally point (the error says where).
pub fn parse(text: &str) -> Result<Mission, PlanError> {
    let root: Value = serde_json::from_str(text).map_err(|e| PlanError::format(WHAT, e.to_string()))?;
    if root.get("fileType").and_then(Value::as_str) != Some("Plan") {
        return Err(PlanError::format(WHAT, "`fileType` is not \"Plan\""));
    }
    let mission = field(&root, "mission", "root")?;
    let version = mission.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != 2 {
        return Err(PlanError::format(WHAT, format!("mission version {version} is not supported (QGC writes 2)")));
    }
    let mut items = Vec::new();
    let list = field(mission, "items", "mission")?
        .as_array()
        .ok_or_else(|| PlanError::format(WHAT, "mission.items must be an array"))?;
    parse_items(list, &mut items, "mission")?;
    let home = match mission.get("plannedHomePosition") {
        Some(v) if !v.is_null() => {
            let (lat, lon, alt) = lat_lon(v, "plannedHomePosition")?;
            Some(Home { point: GeoPoint::new(lat, lon), alt_amsl_m: alt.filter(|a| a.is_finite()).unwrap_or(0.0) })
        }
        _ => None,
    };
    let mut fence = Vec::new();
    if let Some(geofence) = root.get("geoFence") {
        let empty = Vec::new();
        for (i, p) in geofence.get("polygons").and_then(Value::as_array).unwrap_or(&empty).iter().enumerate() {
            let at = format!("geoFence polygon {i}");
            let pts = field(p, "polygon", &at)?
                .as_array()
                .ok_or_else(|| PlanError::format(WHAT, format!("{at}: polygon must be an array")))?
                .iter()
                .map(|v| lat_lon(v, &at).map(|(lat, lon, _)| GeoPoint::new(lat, lon)))
                .collect::<Result<Vec<_>, _>>()?;
            if pts.len() < 3 {
                return Err(PlanError::format(WHAT, format!("{at}: needs at least 3 vertices")));
            }
            let inclusion = p.get("inclusion").and_then(Value::as_bool).unwrap_or(true);
            fence.push(FenceZone { inclusion, shape: FenceShape::Polygon(pts) });
        }
        for (i, c) in geofence.get("circles").and_then(Value::as_array).unwrap_or(&empty).iter().enumerate() {
            let at = format!("geoFence circle {i}");
            let circle = field(c, "circle", &at)?;
            let (lat, lon, _) = lat_lon(field(circle, "center", &at)?, &at)?;
            let radius_m = f64_of(field(circle, "radius", &at)?, &at)?;
            let inclusion = c.get("inclusion").and_then(Value::as_bool).unwrap_or(true);
            fence
                .push(FenceZone { inclusion, shape: FenceShape::Circle { center: GeoPoint::new(lat, lon), radius_m } });
        }
    }
    let mut rally = Vec::new();
    if let Some(points) = root.get("rallyPoints").and_then(|r| r.get("points")).and_then(Value::as_array) {
        for (i, p) in points.iter().enumerate() {
            let (lat, lon, alt) = lat_lon(p, &format!("rally point {i}"))?;
            rally.push(RallyPoint { point: GeoPoint::new(lat, lon), alt_m: alt.unwrap_or(0.0) });
        }
    }
    let steps = items.iter().map(MissionStep::from_item).collect();
    Ok(Mission { home, steps, fence, rally })
}

/// The cruise and hover speeds a `.plan` declares, if it does (metres per second).
pub fn speeds(text: &str) -> Option<(f64, f64)> {
    let root: Map<String, Value> = serde_json::from_str(text).ok()?;
    let m = root.get("mission")?;
    Some((m.get("cruiseSpeed")?.as_f64()?, m.get("hoverSpeed")?.as_f64()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mission_item::cmd;

    fn mission() -> Mission {
        Mission {
            home: Some(Home { point: GeoPoint::new(22.5395, 113.8795), alt_amsl_m: 4.5 }),
            steps: vec![
                MissionStep::Takeoff {
                    point: None,
                    alt_m: 60.0,
                    frame: MissionFrame::GlobalRelativeAlt,
                    yaw_deg: None,
                },
                MissionStep::Waypoint {
                    point: GeoPoint::from_e7(225_400_000, 1_138_800_000),
                    alt_m: 60.0,
                    frame: MissionFrame::GlobalRelativeAlt,
                    hold_s: 0.0,
                    yaw_deg: None,
                },
                MissionStep::CameraTriggerDistance { distance_m: 12.5, trigger_now: true },
                MissionStep::Raw(MissionItem::command(cmd::DO_MOUNT_CONTROL, [-90.0, 0.0, 0.0, f32::NAN])),
                MissionStep::ReturnToLaunch,
            ],
            // .plan keeps polygons and circles in separate lists: polygons come back first.
            fence: vec![
                FenceZone {
                    inclusion: true,
                    shape: FenceShape::Polygon(vec![
                        GeoPoint::new(22.53, 113.87),
                        GeoPoint::new(22.53, 113.9),
                        GeoPoint::new(22.56, 113.9),
                    ]),
                },
                FenceZone {
                    inclusion: false,
                    shape: FenceShape::Circle { center: GeoPoint::new(22.639, 113.811), radius_m: 3000.0 },
                },
            ],
            rally: vec![RallyPoint { point: GeoPoint::new(22.5401, 113.8802), alt_m: 25.0 }],
        }
    }

    #[test]
    fn plan_round_trip_is_lossless() {
        let m = mission();
        let text = to_string(&m, 10.0, 5.0);
        let back = parse(&text).unwrap();
        // The raw item holds a NaN: compare it by item equality, the rest exactly.
        assert_eq!(back.home, m.home);
        assert_eq!(back.fence, m.fence);
        assert_eq!(back.rally, m.rally);
        assert_eq!(back.steps.len(), m.steps.len());
        for (a, b) in back.steps.iter().zip(&m.steps) {
            assert!(crate::mission::same_item(&a.to_item(), &b.to_item()), "{a:?} vs {b:?}");
        }
        assert_eq!(to_string(&back, 10.0, 5.0), text);
        assert_eq!(speeds(&text), Some((10.0, 5.0)));
    }

    #[test]
    fn bad_plans_are_clear_errors() {
        assert!(parse("{}").unwrap_err().to_string().contains("fileType"));
        let v1 = r#"{"fileType":"Plan","mission":{"version":1,"items":[]}}"#;
        assert!(parse(v1).unwrap_err().to_string().contains("version 1"));
        let bad = r#"{"fileType":"Plan","mission":{"version":2,"items":[{"type":"SimpleItem","command":16,"frame":3,"params":[0,0]}]}}"#;
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("item 0") && err.contains("params"), "{err}");
    }
}
