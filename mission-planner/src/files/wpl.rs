//! `QGC WPL 110` waypoint files, as Mission Planner and QGroundControl write them.
//!
//! One header line, then one item per line, tab separated: `seq current frame command p1 p2 p3 p4 lat lon alt
//! autocontinue`. Line 0 is the home position (MAV_FRAME_GLOBAL, altitude AMSL); the mission follows from 1.

use std::fmt::Write as _;

use crate::error::PlanError;
use crate::geo::GeoPoint;
use crate::mission::{Home, Mission, MissionStep};
use crate::mission_item::{MissionFrame, MissionItem};

const WHAT: &str = "QGC WPL 110 file";

/// The `QGC WPL 110` text of a mission (fence and rally points are not part of this format).
pub fn to_string(mission: &Mission) -> String {
    let mut out = String::from("QGC WPL 110\n");
    for (seq, item) in mission.mission_items_with_home().iter().enumerate() {
        let p = item.params;
        let _ = writeln!(
            out,
            "{seq}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            u8::from(seq == 0),
            item.frame.number(),
            item.command,
            p[0],
            p[1],
            p[2],
            p[3],
            f64::from(item.x) / 1e7,
            f64::from(item.y) / 1e7,
            item.z,
            u8::from(item.autocontinue),
        );
    }
    out
}

/// Parses `QGC WPL 110` text.
///
/// # Errors
/// A missing header or a line without 12 numeric fields (the error gives the line number).
pub fn parse(text: &str) -> Result<Mission, PlanError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, header)) if header.trim().starts_with("QGC WPL 110") => {}
        Some((_, header)) => {
            return Err(PlanError::format(WHAT, format!("header {header:?} is not \"QGC WPL 110\"")));
        }
        None => return Err(PlanError::format(WHAT, "the file is empty")),
    }
    let mut home = None;
    let mut items = Vec::new();
    for (n, line) in lines {
        let bad = |why: &str| PlanError::format(WHAT, format!("line {}: {why}", n + 1));
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 12 {
            return Err(bad(&format!("expected 12 fields, found {}", fields.len())));
        }
        let int = |i: usize| fields[i].parse::<f64>().ok().filter(|v| v.fract() == 0.0 && *v >= 0.0);
        let float = |i: usize| {
            fields[i].parse::<f64>().map_err(|_| bad(&format!("field {} is not a number: {:?}", i + 1, fields[i])))
        };
        let (Some(seq), Some(current), Some(frame), Some(command), Some(auto)) =
            (int(0), int(1), int(2), int(3), int(11))
        else {
            return Err(bad("seq, current, frame, command and autocontinue must be whole numbers"));
        };
        let (lat, lon, alt) = (float(8)?, float(9)?, float(10)?);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked whole and non-negative
        let (frame, command) = (frame.min(255.0) as u8, command.min(65535.0) as u16);
        if seq == 0.0 {
            home = Some(Home { point: GeoPoint::new(lat, lon), alt_amsl_m: alt });
            continue;
        }
        #[allow(clippy::cast_possible_truncation)] // parameters are f32
        let item = MissionItem {
            command,
            frame: MissionFrame::from_number(frame),
            current: current == 1.0,
            autocontinue: auto == 1.0,
            params: [float(4)? as f32, float(5)? as f32, float(6)? as f32, float(7)? as f32],
            x: GeoPoint::new(lat, 0.0).lat_e7(),
            y: GeoPoint::new(lon, 0.0).lat_e7(),
            z: alt as f32,
        };
        items.push(item);
    }
    let steps = items.iter().map(MissionStep::from_item).collect();
    Ok(Mission { home, steps, fence: Vec::new(), rally: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_home_and_items() {
        let m = Mission {
            home: Some(Home { point: GeoPoint::new(22.5395, 113.8795), alt_amsl_m: 4.5 }),
            steps: vec![
                MissionStep::Takeoff {
                    point: None,
                    alt_m: 60.0,
                    frame: MissionFrame::GlobalRelativeAlt,
                    yaw_deg: None,
                },
                MissionStep::Waypoint {
                    point: GeoPoint::from_e7(225_412_345, 1_138_801_234),
                    alt_m: 60.0,
                    frame: MissionFrame::GlobalRelativeAlt,
                    hold_s: 2.0,
                    yaw_deg: Some(90.0),
                },
                MissionStep::CameraTriggerDistance { distance_m: 12.5, trigger_now: true },
                MissionStep::ReturnToLaunch,
            ],
            fence: Vec::new(),
            rally: Vec::new(),
        };
        let text = to_string(&m);
        assert!(text.starts_with("QGC WPL 110\n0\t1\t0\t16\t"));
        assert_eq!(parse(&text).unwrap(), m);
    }

    #[test]
    fn short_line_is_an_error_with_its_number() {
        let err =
            parse("QGC WPL 110\n0\t1\t0\t16\t0\t0\t0\t0\t22.5\t113.8\t0\t1\n1\t0\t3\t16\n").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("12 fields"), "{err}");
        assert!(parse("hello").is_err());
    }
}
