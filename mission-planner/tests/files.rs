//! Mission files: hand-written QGC and Mission Planner fixtures load correctly; plans we write load back
//! identical; the sample district data plans cleanly.

use std::path::{Path, PathBuf};

use mission_planner::area::{read_cells, read_launch_points, read_zones};
use mission_planner::camera::CameraSpec;
use mission_planner::files::{parse_mission, qgc_plan, read_mission, wpl};
use mission_planner::geo::{GeoPoint, geodesic_distance_m};
use mission_planner::mission::{FenceShape, FlightModel, Limits, MissionStep, Violation};
use mission_planner::mission_item::{MissionFrame, cmd};
use mission_planner::patrol::{AltitudeTarget, PatrolRequest, UncoveredReason, plan_patrol};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample-district").join(name)
}

#[test]
fn qgc_survey_plan_replays_the_complex_item() {
    let m = read_mission(&fixture("qgc-survey.plan")).unwrap();
    let home = m.home.unwrap();
    assert_eq!(home.point, GeoPoint::new(22.5395, 113.8795));
    assert!((home.alt_amsl_m - 8.2).abs() < 1e-9);
    // Takeoff + 10 survey items + RTL.
    assert_eq!(m.steps.len(), 12);
    assert!(matches!(m.steps[0], MissionStep::Takeoff { alt_m, .. } if alt_m == 50.0));
    assert!(
        matches!(m.steps[2], MissionStep::CameraTriggerDistance { distance_m, trigger_now: true } if distance_m == 25.0)
    );
    assert!(matches!(m.steps[10], MissionStep::CameraTriggerDistance { distance_m, .. } if distance_m == 0.0));
    assert!(matches!(m.steps[11], MissionStep::ReturnToLaunch));
    assert!(matches!(m.steps[1], MissionStep::Waypoint { yaw_deg: None, frame: MissionFrame::GlobalRelativeAlt, .. }));
    // Fence: the inclusion polygon and the exclusion circle; one rally point.
    assert_eq!(m.fence.len(), 2);
    assert!(m.fence[0].inclusion && matches!(m.fence[0].shape, FenceShape::Polygon(ref p) if p.len() == 4));
    assert!(
        !m.fence[1].inclusion && matches!(m.fence[1].shape, FenceShape::Circle { radius_m, .. } if radius_m == 40.0)
    );
    assert_eq!(m.rally.len(), 1);
    // Two transects of about 485 m at 25 m: 2 immediate... one block: 1 + floor(total / 25).
    let s = m.summary(&FlightModel::default());
    assert!(s.photos > 30 && s.photos < 50, "{}", s.photos);
    assert!((s.max_alt_m - 50.0).abs() < 1e-9);
    assert_eq!(m.validate(&Limits::default()), vec![]);
}

#[test]
fn qgc_simple_plan_has_interval_capture_and_a_fence_violation() {
    let m = read_mission(&fixture("qgc-simple.plan")).unwrap();
    assert!(matches!(m.steps[3], MissionStep::CameraStartInterval { interval_s, count: 0 } if interval_s == 2.0));
    assert!(matches!(m.steps[5], MissionStep::CameraStop));
    assert!(matches!(m.steps[6], MissionStep::Land { point: Some(_), yaw_deg: None }));
    let v = m.validate(&Limits::default());
    assert!(v.iter().any(|x| matches!(x, Violation::EntersZone { step: Some(2), .. })), "{v:?}");
}

#[test]
fn mission_planner_waypoints_load_with_home_on_line_zero() {
    let m = read_mission(&fixture("mission-planner.waypoints")).unwrap();
    assert_eq!(m.home.unwrap().point, GeoPoint::new(22.5395, 113.8795));
    assert_eq!(m.steps.len(), 8);
    assert!(matches!(m.steps[0], MissionStep::Takeoff { point: None, alt_m, .. } if alt_m == 40.0));
    // DO items in frame 3 stay raw (for a lossless round trip) but still read as what they are.
    assert!(matches!(m.steps[1].semantic(), MissionStep::ChangeSpeed { speed_mps } if speed_mps == 8.0));
    assert!(
        matches!(m.steps[3].semantic(), MissionStep::CameraTriggerDistance { distance_m, .. } if distance_m == 20.0)
    );
    assert!(matches!(m.steps[6], MissionStep::LoiterTime { duration_s, .. } if duration_s == 10.0));
    let s = m.summary(&FlightModel::default());
    // 412 m at 20 m: 1 + 20 photos.
    assert_eq!(s.photos, 21);
    // Round trip through WPL keeps every item.
    let again = wpl::parse(&wpl::to_string(&m)).unwrap();
    assert_eq!(again, m);
    assert!(parse_mission("garbage").is_err());
}

fn sample_request() -> PatrolRequest {
    let cells = read_cells(&sample("cells.geojson")).expect("sample cells");
    let launch = read_launch_points(&sample("launch-points.geojson")).expect("sample launch points");
    let camera = CameraSpec::read_toml(&sample("camera.toml")).expect("sample camera");
    let mut req = PatrolRequest::new(cells, launch, camera, AltitudeTarget::GroundSampleDistance(0.03));
    req.zones = read_zones(&sample("no-fly.geojson")).expect("sample zones");
    req.drones = 3;
    req
}

#[test]
fn sample_district_matches_the_demo_box_and_plans_validly() {
    let req = sample_request();
    assert_eq!(req.cells.len(), 30);
    let demo: Vec<_> = req.cells.iter().filter(|c| c.demo).collect();
    assert_eq!(demo.len(), 4);
    use geo::{Area, BoundingRect};
    let total: f64 = demo.iter().map(|c| c.area.unsigned_area()).sum();
    assert!((total - 0.0036 * 0.0049).abs() < 1e-12, "demo cells tile the box");
    for c in &demo {
        let r = c.area.bounding_rect().unwrap();
        assert!(r.min().x >= 113.88 - 1e-9 && r.max().x <= 113.8849 + 1e-9);
        assert!(r.min().y >= 22.54 - 1e-9 && r.max().y <= 22.5436 + 1e-9);
    }
    let l1 = req.launch_points.iter().find(|l| l.id == "L1").unwrap();
    assert!(geodesic_distance_m(l1.point, GeoPoint::new(22.54, 113.88)) < 300.0);

    let plan = plan_patrol(&req).unwrap();
    let inside: Vec<_> =
        plan.uncovered.iter().filter(|u| matches!(u.reason, UncoveredReason::InsideNoFlyZone { .. })).collect();
    assert!(!inside.is_empty(), "{:?}", plan.uncovered);
    assert!(plan.uncovered.len() <= 3, "{:?}", plan.uncovered);
    let limits = req.limits();
    for s in &plan.sorties {
        assert_eq!(s.mission.validate(&limits), vec![]);
        // A .plan we write loads back identical; so does the WPL (mission list and home).
        let text = qgc_plan::to_string(&s.mission, 10.0, 5.0);
        assert_eq!(qgc_plan::parse(&text).unwrap(), s.mission);
        let back = wpl::parse(&wpl::to_string(&s.mission)).unwrap();
        assert_eq!(back.steps, s.mission.steps);
        // Camera: a trigger distance at the start of each pass and 0 at its end.
        let items = s.mission.mission_items();
        let on = items.iter().filter(|i| i.command == cmd::DO_SET_CAM_TRIGG_DIST && i.params[0] > 0.0).count();
        let off = items.iter().filter(|i| i.command == cmd::DO_SET_CAM_TRIGG_DIST && i.params[0] == 0.0).count();
        assert!(on > 0 && on == off);
    }
    assert_eq!(plan.drones.len(), 3);
}
