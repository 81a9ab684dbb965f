//! The evidence disk fills up mid-patrol: the daemon raises a retained alarm on MQTT, detection goes on (hazard
//! events still arrive, without pictures), the pictures already stored stay intact, and once space is freed the
//! next picture is saved and the alarm clears.
//!
//! A real full disk: the daemon runs in its own mount namespace (`unshare`, a user namespace where the test is not
//! root) with the evidence folder on a 1 MiB tmpfs; the test fills it through `/proc/<pid>/root`.

// Test helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::{Mosquitto, files_under, free_port, patrol_binary, subscribe, wait_subscribed};
use ground_station::hazard::{HazardEvent, HazardEventType, StationAlarm};
use tokio::sync::mpsc::Receiver;

use crate::daemon::{ConfigExtras, push_photo, spawn_daemon, spot_lat, write_config};

type Inbox = Receiver<(Vec<u8>, std::time::SystemTime)>;

/// `patrol` in a new mount namespace with a 1 MiB tmpfs on `evidence`.
fn in_small_tmpfs(evidence: &Path) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=1m patrol-evidence "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(evidence)
        .arg(patrol_binary());
    command
}

/// The next alarm message (probes and other payloads skipped).
async fn next_alarm(alarms: &mut Inbox) -> StationAlarm {
    loop {
        let (payload, _) = tokio::time::timeout(Duration::from_secs(60), alarms.recv())
            .await
            .expect("no alarm message within 60 s")
            .unwrap();
        if let Ok(alarm) = serde_json::from_slice::<StationAlarm>(&payload) {
            return alarm;
        }
    }
}

/// The `new` events of the hazards in the photo pushed at `spot`: waits for the first, then 3 s for the rest.
async fn news_at(hazards: &mut Inbox, spot: u32) -> Vec<HazardEvent> {
    let mut news: Vec<HazardEvent> = Vec::new();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let Ok(received) = tokio::time::timeout_at(deadline, hazards.recv()).await else {
            assert!(!news.is_empty(), "no `new` event for the photo at spot {spot} within 60 s");
            return news;
        };
        let (payload, _) = received.unwrap();
        let Ok(event) = serde_json::from_slice::<HazardEvent>(&payload) else { continue };
        if event.event_type == HazardEventType::New && (event.after.position.lat_deg - spot_lat(spot)).abs() < 0.0005 {
            if news.is_empty() {
                deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            }
            news.push(event);
        }
    }
}

/// Every file under `dir` with its bytes.
fn contents_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir).into_iter().map(|path| (path.clone(), std::fs::read(path).unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_evidence_disk_raises_an_alarm_detection_goes_on_and_the_alarm_clears_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let _broker = Mosquitto::start(dir.path(), broker_port);
    let (mut alarms, alarm_task) = subscribe(broker_port, "alarm-desk", "patrol/alarms/#");
    wait_subscribed(broker_port, "patrol/alarms/probe", &mut alarms).await;
    let (mut hazards, hazard_task) = subscribe(broker_port, "command-center", "patrol/hazards");
    wait_subscribed(broker_port, "patrol/hazards", &mut hazards).await;

    let evidence = dir.path().join("evidence");
    std::fs::create_dir_all(&evidence).unwrap();
    let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let extras = ConfigExtras {
        sections: format!("[storage]\nevidence_dir = \"{}\"\n", evidence.display()),
        ..ConfigExtras::default()
    };
    let config = write_config(dir.path(), broker_port, web, free_port(), &extras);
    let log = dir.path().join("daemon.log");
    let mut daemon = spawn_daemon(in_small_tmpfs(&evidence), &config, &log, web, &[]);
    // The evidence folder as the daemon sees it (its own tmpfs).
    let mounted = PathBuf::from(format!("/proc/{}/root", daemon.id())).join(evidence.strip_prefix("/").unwrap());

    // At start the folder takes files: the retained state says so.
    let start = next_alarm(&mut alarms).await;
    assert!(!start.active, "alarm at start on an empty disk: {start:?}");

    // Space left: hazards come with pictures.
    let push = move |spot| tokio::task::spawn_blocking(move || push_photo(web, spot));
    push(0).await.unwrap();
    for event in news_at(&mut hazards, 0).await {
        assert!(event.after.image_url.is_some(), "no picture with space left: {event:?}");
    }
    let stored_before = contents_under(&mounted);
    assert!(stored_before.keys().any(|p| p.ends_with("frame.jpg")), "no frame stored: {stored_before:?}");

    // The disk fills up (another writer took the space).
    let filler = mounted.join("filler");
    let mut fill = std::fs::File::create(&filler).unwrap();
    let full = loop {
        if let Err(error) = std::io::Write::write_all(&mut fill, &[0xa5; 64 * 1024]) {
            break error;
        }
    };
    assert_eq!(full.raw_os_error(), Some(28), "expected ENOSPC, got {full}");
    drop(fill);

    push(1).await.unwrap();
    let raised = next_alarm(&mut alarms).await;
    assert!(raised.active, "no alarm with the disk full: {raised:?}");
    assert_eq!(raised.station_id, "crash");
    assert!(raised.message.contains("No space left on device"), "the alarm should say why: {}", raised.message);
    assert!(raised.message.contains("Free space"), "the alarm should say what to do: {}", raised.message);
    for event in news_at(&mut hazards, 1).await {
        assert!(event.after.image_url.is_none(), "a picture URL for a picture that was not saved: {event:?}");
    }
    let mut stored_after = contents_under(&mounted);
    stored_after.remove(&filler);
    assert_eq!(stored_after, stored_before, "the disk-full writes changed or left files in the evidence folder");

    // Space is freed: the next picture is saved and the alarm clears.
    std::fs::remove_file(&filler).unwrap();
    push(2).await.unwrap();
    let cleared = next_alarm(&mut alarms).await;
    assert!(!cleared.active, "the alarm did not clear: {cleared:?}");
    for event in news_at(&mut hazards, 2).await {
        assert!(event.after.image_url.is_some(), "no picture after space was freed: {event:?}");
    }

    alarm_task.abort();
    hazard_task.abort();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}
