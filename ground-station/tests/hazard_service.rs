//! The hazard service end to end through storage: events are committed to the outbox in order with the
//! hazards, and a restarted service resumes the same hazards and id counters from the database.

// Test helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ground_station::district::District;
use ground_station::hazard::{EndReason, HazardEvent, HazardEventType, HazardKind, Position, ReviewEvent, Verdict};
use ground_station::hazard_service::{self, HazardHandle, HazardServiceError, ReviewRequest};
use ground_station::mqtt::{self, ConnectOptions, Topics};
use ground_station::storage::{OutboxEntry, StorageHandle};
use ground_station::tracking::{Observation, SeverityRules, TrackerConfig};
use rumqttc::MqttOptions;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn config() -> TrackerConfig {
    TrackerConfig {
        station_id: "gs".into(),
        merge_radius_m: 15.0,
        uncertainty_sigmas: 3.0,
        end_after: Duration::from_secs(6 * 3600),
        confirm_photos: 1,
        severity: SeverityRules { rules: vec![], default_level: "C".into() },
    }
}

fn fire(lat_deg: f64, seconds: u64) -> Observation {
    Observation {
        kind: HazardKind::Fire,
        label: "fire".into(),
        confidence: 0.7,
        position: Position::new(lat_deg, 8.0, 2.0),
        // Recent, so the service's periodic expiry leaves it open.
        seen_at: SystemTime::now() - Duration::from_secs(600) + Duration::from_secs(seconds),
        drone_id: "d1".into(),
        mission_id: Some("m1".into()),
        capture_id: Some(format!("c{seconds}")),
        picture: None,
        model_sha256: None,
    }
}

struct Station {
    hazards: HazardHandle,
    storage: StorageHandle,
    tasks: TaskTracker,
    cancel: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

/// A station whose broker never answers (nothing listens on the port): everything stays in the outbox.
async fn start(db: &Path) -> Station {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (storage, thread) = StorageHandle::open(db).unwrap();
    let tasks = TaskTracker::new();
    let cancel = CancellationToken::new();
    let options = ConnectOptions::new(MqttOptions::new("gs", "127.0.0.1", port), Topics::new("patrol"));
    let mqtt = mqtt::spawn(options, storage.clone(), &tasks, cancel.clone());
    let hazards =
        hazard_service::start(config(), Arc::new(District::empty()), storage.clone(), mqtt, &tasks, cancel.clone())
            .await
            .unwrap();
    Station { hazards, storage, tasks, cancel, thread }
}

async fn stop(station: Station) {
    station.cancel.cancel();
    station.tasks.close();
    station.tasks.wait().await;
    drop((station.hazards, station.storage));
    station.thread.join().unwrap();
}

async fn outbox(storage: &StorageHandle) -> Vec<OutboxEntry> {
    storage.call(|db| db.outbox_pending(0, 1000)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_stored_in_order_and_a_restart_resumes_hazards_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.sqlite");

    let station = start(&db).await;
    let first = station.hazards.observe(fire(47.0, 0)).await.unwrap().unwrap();
    assert_eq!(
        (first.event_type, first.event_id.as_str(), first.after.id.as_str()),
        (HazardEventType::New, "gs:e:1", "gs:h:1")
    );
    assert!(station.hazards.observe(fire(47.00001, 1)).await.unwrap().is_none(), "same fire, nothing new to say");
    let second = station.hazards.observe(fire(47.01, 2)).await.unwrap().unwrap();
    assert_eq!(second.after.id, "gs:h:2");
    let review = station
        .hazards
        .review(ReviewRequest {
            hazard_id: "gs:h:2".into(),
            verdict: Verdict::FalsePositive,
            reviewer: "op".into(),
            comment: "sun glint".into(),
        })
        .await
        .unwrap();
    assert_eq!(review.event_id, "gs:e:3");
    let unknown = station
        .hazards
        .review(ReviewRequest {
            hazard_id: "gs:h:2".into(),
            verdict: Verdict::Closed,
            reviewer: "op".into(),
            comment: String::new(),
        })
        .await;
    assert!(matches!(unknown, Err(HazardServiceError::Track(_))));

    let entries = outbox(&station.storage).await;
    let topics: Vec<&str> = entries.iter().map(|e| e.message.topic.as_str()).collect();
    assert_eq!(topics, ["patrol/hazards", "patrol/hazards", "patrol/reviews", "patrol/hazards"]);
    let end: HazardEvent = serde_json::from_slice(&entries[3].message.payload).unwrap();
    assert_eq!((end.event_type, end.event_id.as_str()), (HazardEventType::End, "gs:e:4"));
    assert_eq!(end.after.end_reason, Some(EndReason::Review));
    let stored_review: ReviewEvent = serde_json::from_slice(&entries[2].message.payload).unwrap();
    assert_eq!(stored_review, review);
    stop(station).await;

    // Restart on the same database.
    let station = start(&db).await;
    let open = station.hazards.open_hazards().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].id.as_str(), open[0].detections), ("gs:h:1", 2));
    assert!(station.hazards.observe(fire(47.0, 3)).await.unwrap().is_none(), "merged into the resumed hazard");
    let third = station.hazards.observe(fire(47.02, 4)).await.unwrap().unwrap();
    assert_eq!((third.after.id.as_str(), third.event_id.as_str()), ("gs:h:3", "gs:e:5"), "ids continue");
    let ended = station.hazards.mission_finished(UNIX_EPOCH, vec!["none".into()]).await.unwrap();
    assert!(ended.is_empty(), "hazards without a grid cell are not ended by passes");
    assert_eq!(outbox(&station.storage).await.len(), 5, "nothing was delivered: all still pending");
    stop(station).await;
}
