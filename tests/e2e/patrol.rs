//! Issue 5's end-to-end test: a whole simulated patrol against a private Mosquitto. Two simulated drones (one
//! ArduPilot, one PX4) fly the planned sorties over the demo world at a speed-up; their cameras render the
//! painted town (hazards planted at known places) and serve the photos; the ground station downloads, detects
//! with the shipped model, georeferences, tracks and publishes. A separate subscriber, like a command center,
//! must get exactly one `new` per planted hazard, with the right kind and grid cell, within 5 m. The image
//! model's false alarms are counted in the summary, not hidden. In the middle of the patrol the broker is stopped
//! for two and a half minutes and started again: every event, those raised while it was down included, still
//! arrives, in order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use e2e::{Mosquitto, free_port, subscribe, wait_subscribed, workspace_root};
use ground_station::demo::{self, DemoOptions};
use ground_station::hazard::{HazardEvent, HazardEventType};
use ground_station::storage::StorageHandle;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_simulated_patrol_publishes_one_new_event_per_planted_hazard() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Mosquitto::start(dir.path(), port);
    let (mut rx, subscriber) = subscribe(port, "command-center", "patrol/hazards");
    wait_subscribed(port, "patrol/hazards", &mut rx).await;
    // A broker outage of minutes in the middle of the patrol (which takes about 4.5 minutes): down from 45 s to
    // 195 s, then back.
    // Just before the broker comes back, the station's outbox is read: the hazard events raised meanwhile.
    let (storage_tx, storage_rx) = tokio::sync::oneshot::channel::<StorageHandle>();
    let outage = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(45)).await;
        broker.stop();
        tokio::time::sleep(Duration::from_secs(150)).await;
        let storage = storage_rx.await.unwrap();
        let held = storage.call(|db| db.outbox_pending(0, 10_000)).await.unwrap();
        let held = held.iter().filter(|entry| entry.message.topic == "patrol/hazards").count();
        broker.spawn();
        (broker, held)
    });

    let options = DemoOptions {
        data_dir: workspace_root().join("data"),
        work_dir: dir.path().join("station"),
        drones: 2,
        // The detector (debug build, shared CI cores) keeps up with two drones at twice real time.
        speedup: 2.0,
        broker: Some(("127.0.0.1".into(), port)),
        web: None,
        cells: Vec::new(),
        time_limit: Duration::from_secs(20 * 60),
        progress: false,
        model: None,
    };
    let summary = demo::run(options, |station| {
        let _ = storage_tx.send(station.storage.clone());
    })
    .await
    .unwrap();
    println!("{}", summary.report());
    let (_broker, held_while_down) = outage.await.unwrap();

    // The command center's own view, de-duplicated by event id, in arrival order.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut events = BTreeMap::new();
    let mut arrival = Vec::new();
    while let Ok((payload, _)) = rx.try_recv() {
        let Ok(event) = serde_json::from_slice::<HazardEvent>(&payload) else { continue };
        if !events.contains_key(&event.event_id) {
            arrival.push(event_number(&event.event_id));
        }
        events.insert(event.event_id.clone(), event);
    }
    subscriber.abort();
    assert!(arrival.windows(2).all(|w| w[0] < w[1]), "events out of order: {arrival:?}");
    assert_eq!(events.len(), summary.events_total, "the command center got every event the station published");
    assert!(
        events.values().all(|e| e.event_id.starts_with("demo:e:") && e.after.id.starts_with("demo:h:")),
        "event and hazard ids name the demo station"
    );
    let news: Vec<&HazardEvent> = events.values().filter(|e| e.event_type == HazardEventType::New).collect();
    assert!(held_while_down > 0, "no hazard event was raised during the outage: it proves nothing about delivery");
    println!("{held_while_down} of {} hazard events waited in the outbox while the broker was down", events.len());

    assert_eq!(summary.sorties_completed, summary.sorties_planned, "every sortie flown to the end");
    assert_eq!(summary.photos_dropped, 0, "the detector kept up at this speed-up");
    assert_eq!(summary.photos_failed + summary.photos_unreadable, 0, "every announced photo downloaded and read");
    for planted in summary.planted.iter().filter(|p| p.label != "CH4") {
        let id = planted.hazard_id.as_deref().unwrap_or_else(|| panic!("{} not found", planted.id));
        let error = planted.error_m.unwrap();
        assert!(error < 5.0, "{} found {error:.1} m off", planted.id);
        assert_eq!(planted.grid_cell, planted.true_cell, "{} in the wrong cell", planted.id);
        let new_for_it = news.iter().filter(|e| e.after.id == id).count();
        assert_eq!(new_for_it, 1, "{}: exactly one `new` event for its hazard {id}", planted.id);
    }
    // Methane leaks are read by the sensor under the drone, so only where a flight line passes within the
    // plume; a leak that is found is within the plume radius of the truth.
    let leaks: Vec<_> = summary.planted.iter().filter(|p| p.label == "CH4").collect();
    assert!(leaks.iter().any(|l| l.hazard_id.is_some()), "no methane leak found: {leaks:?}");
    for leak in &leaks {
        assert!(leak.error_m.is_none_or(|e| e < 15.0), "{leak:?}");
    }
    // Sensor readings of clean air (the ambient methane column) never raise a hazard.
    assert!(
        summary.false_alarms.iter().all(|f| f.label != "CH4"),
        "gas alarms away from the leaks: {:?}",
        summary.false_alarms.iter().filter(|f| f.label == "CH4").collect::<Vec<_>>()
    );
    // The demo world's south-west quadrant holds no hazard: no event for it (issue 5). Elsewhere a false alarm of
    // the image model is measured and reported (train/MODEL_CARD.md), each with exactly one `new`.
    let in_empty: Vec<_> = summary.false_alarms.iter().filter(|f| f.in_empty_area).collect();
    assert!(in_empty.is_empty(), "hazard events in the empty cells: {in_empty:?}");
    println!("false alarms outside the empty cells: {:?}", summary.false_alarms);
    let matched: BTreeSet<&str> = summary.planted.iter().filter_map(|p| p.hazard_id.as_deref()).collect();
    assert_eq!(news.len(), matched.len() + summary.false_alarms.len(), "one `new` per published hazard");
}

/// `<station>:e:<n>` -> n.
fn event_number(event_id: &str) -> u64 {
    event_id.rsplit(':').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("bad event id {event_id}"))
}
