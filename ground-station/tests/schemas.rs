//! Every payload the station publishes validates against its JSON Schema in `docs/schemas/`, and the schemas
//! reject payloads that break the contract.

// Test helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ground_station::district::District;
use ground_station::hazard::{
    AlarmKind, DroneState, HazardKind, LinkStatus, MissionProgress, MissionState, Position, ReviewEvent, StationAlarm,
    Verdict,
};
use ground_station::mqtt::Topics;
use ground_station::tracking::{Observation, Picture, SeverityRule, SeverityRules, Tracker, TrackerConfig};
use serde_json::Value;

fn validator(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas").join(name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, payload: &[u8]) {
    let value: Value = serde_json::from_slice(payload).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{value:#}\n{errors:#?}");
}

fn district() -> District {
    let cells = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "properties": {"id": "A1"}, "geometry": {"type": "Polygon",
        "coordinates": [[[8.000, 47.000], [8.001, 47.000], [8.001, 47.001], [8.000, 47.001], [8.000, 47.000]]]}}]}"#;
    let addresses = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "properties": {"building_id": "b1", "address": "Main Street 1"},
       "geometry": {"type": "Point", "coordinates": [8.0005, 47.0005]}}]}"#;
    District::from_geojson(Some(cells), Some(addresses), 50.0).unwrap()
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

/// Real hazard events from the tracker: new (with cell and address), update, end; and one without either.
fn hazard_payloads() -> Vec<Vec<u8>> {
    let topics = Topics::new("patrol");
    let mut tracker = Tracker::new(TrackerConfig {
        station_id: "gs-1".into(),
        merge_radius_m: 15.0,
        uncertainty_sigmas: 3.0,
        end_after: Duration::from_secs(3600),
        confirm_photos: 1,
        severity: SeverityRules {
            rules: vec![SeverityRule { kind: HazardKind::Fire, min_confidence: 0.6, level: "A".into() }],
            default_level: "C".into(),
        },
    });
    let district = district();
    let sighting = |confidence: f64, seconds: u64, drone: &str| Observation {
        kind: HazardKind::Fire,
        label: "fire".into(),
        confidence,
        position: Position::new(47.0005, 8.0005, 2.3),
        seen_at: at(seconds),
        drone_id: drone.into(),
        mission_id: Some("m1".into()),
        capture_id: Some(format!("d1-{seconds}")),
        picture: Some(Picture {
            image_url: format!("/api/captures/d1-{seconds}/frame.jpg"),
            crop_url: format!("/api/captures/d1-{seconds}/crop-0.jpg"),
            score: confidence,
        }),
        model_sha256: Some("a".repeat(64)),
    };
    let mut events = Vec::new();
    events.extend(tracker.observe(sighting(0.5, 0, "d1"), &district).event);
    events.extend(tracker.observe(sighting(0.8, 1, "d2"), &district).event);
    let mut gas = sighting(1.0, 2, "d1");
    gas.kind = HazardKind::Gas;
    gas.label = "CH4".into();
    gas.picture = None;
    gas.model_sha256 = None;
    gas.position = Position::new(46.0, 7.0, 3.0);
    events.extend(tracker.observe(gas, &district).event);
    events.extend(tracker.expire(at(10_000)).into_iter().filter_map(|change| change.event));
    assert_eq!(events.len(), 5, "new, update, new, end, end");
    events.iter().map(|event| topics.hazard_message(event).payload).collect()
}

#[test]
fn hazard_events_match_the_schema() {
    let validator = validator("hazard-event.json");
    for payload in hazard_payloads() {
        assert_valid(&validator, &payload);
    }
}

/// A change that breaks a valid payload.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn the_hazard_schema_rejects_broken_payloads() {
    let validator = validator("hazard-event.json");
    let good: Value = serde_json::from_slice(&hazard_payloads()[0]).unwrap();
    let mut breaks: Vec<Mutation> = vec![
        Box::new(|v| v["type"] = "created".into()),
        Box::new(|v| v["after"]["position"]["datum"] = "ETRS89".into()),
        Box::new(|v| v["after"]["confidence"] = 1.5.into()),
        Box::new(|v| v["after"]["kind"] = "flood".into()),
        Box::new(|v| v["after"]["first_seen"] = "yesterday".into()),
        Box::new(|v| v["after"]["unexpected"] = 1.into()),
        Box::new(|v| v["before"] = v["after"].clone()),
    ];
    breaks.push(Box::new(|v| {
        v.as_object_mut().unwrap().remove("event_id");
    }));
    for (i, mutate) in breaks.iter().enumerate() {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!validator.is_valid(&bad), "mutation {i} should be rejected: {bad:#}");
    }
}

#[test]
fn reviews_match_the_schema() {
    let validator = validator("review.json");
    let review = ReviewEvent {
        event_id: "gs-1:e:9".into(),
        hazard_id: "gs-1:h:1".into(),
        verdict: Verdict::FalsePositive,
        reviewer: "operator-2".into(),
        comment: "reflection on a roof".into(),
        at: at(100),
    };
    assert_valid(&validator, &Topics::new("patrol").review_message(&review).payload);
    let reopened = ReviewEvent { verdict: Verdict::Reopened, ..review.clone() };
    assert_valid(&validator, &Topics::new("patrol").review_message(&reopened).payload);
    let mut bad = serde_json::to_value(&review).unwrap();
    bad["verdict"] = "maybe".into();
    assert!(!validator.is_valid(&bad));
}

#[test]
fn drone_states_match_the_schema() {
    let validator = validator("drone-state.json");
    let mut state = DroneState {
        drone_id: "d1".into(),
        at: at(5),
        position: Some(Position::new(47.0, 8.0, 1.5)),
        relative_alt_m: Some(80.0),
        battery_percent: Some(76.5),
        mode: "AUTO".into(),
        armed: true,
        link: LinkStatus::Up,
    };
    assert_valid(&validator, &serde_json::to_vec(&state).unwrap());
    state.position = None;
    state.battery_percent = None;
    state.link = LinkStatus::Lost;
    assert_valid(&validator, &serde_json::to_vec(&state).unwrap());
    let mut bad = serde_json::to_value(&state).unwrap();
    bad["battery_percent"] = 120.into();
    assert!(!validator.is_valid(&bad));
}

#[test]
fn mission_progress_matches_the_schema() {
    let validator = validator("mission-progress.json");
    let progress = MissionProgress {
        mission_id: "m1".into(),
        drone_id: "d1".into(),
        state: MissionState::Running,
        current_item: 4,
        total_items: 20,
        cells: vec!["A1".into(), "A2".into()],
        at: at(7),
    };
    let message = Topics::new("patrol").mission_message(&progress);
    assert_eq!(message.topic, "patrol/missions/m1");
    assert!(message.retain);
    assert_valid(&validator, &message.payload);
    let mut bad = serde_json::to_value(&progress).unwrap();
    bad["state"] = "flying".into();
    assert!(!validator.is_valid(&bad));
}

#[test]
fn alarms_match_the_schema() {
    let validator = validator("alarm.json");
    let raised = StationAlarm {
        alarm: AlarmKind::EvidenceStorage,
        station_id: "gs-1".into(),
        active: true,
        message: "Cannot save evidence images (No space left on device).".into(),
        at: at(9),
    };
    let message = Topics::new("patrol").alarm_message(&raised);
    assert_eq!(message.topic, "patrol/alarms/evidence_storage");
    assert!(message.retain, "a late subscriber must see a raised alarm");
    assert_valid(&validator, &message.payload);
    let cleared = StationAlarm { active: false, message: "Evidence images are saved again.".into(), ..raised };
    assert_valid(&validator, &Topics::new("patrol").alarm_message(&cleared).payload);
    let mut bad = serde_json::to_value(&cleared).unwrap();
    bad["alarm"] = "disk".into();
    assert!(!validator.is_valid(&bad));
    bad = serde_json::to_value(&cleared).unwrap();
    bad.as_object_mut().unwrap().remove("active");
    assert!(!validator.is_valid(&bad));
}
