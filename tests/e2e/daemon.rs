//! The `patrol serve` daemon as a process: frames pushed over HTTP become hazard events in the outbox while the
//! broker is down; the daemon is killed with SIGKILL; after a restart (and the broker coming up) every stored
//! event arrives, in order, and the same hazards seen again are not re-issued under new ids. SIGTERM then stops
//! it cleanly.

// Test helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use e2e::{Mosquitto, free_port, http_request, patrol_binary, subscribe, wait_subscribed, workspace_root};
use ground_station::hazard::{HazardEvent, HazardEventType};

/// The push token of the daemon's config.
pub(crate) const TOKEN: &str = "crash-test-token-0123456789";

/// Lines added to sections of the daemon's config.
#[derive(Debug, Default)]
pub(crate) struct ConfigExtras {
    /// Under `[mqtt]`.
    pub(crate) mqtt: String,
    /// Under the one `[[drones]]`.
    pub(crate) drone: String,
    /// Whole sections, at the end.
    pub(crate) sections: String,
}

/// Writes `ground-station.toml` under `dir`: an external broker on `broker_port`, the web console on `web` with
/// [`TOKEN`] for pushes, the shipped model, one drone on `udpin:127.0.0.1:<udp>`, the sample district.
pub(crate) fn write_config(
    dir: &Path,
    broker_port: u16,
    web: SocketAddr,
    udp: u16,
    extras: &ConfigExtras,
) -> std::path::PathBuf {
    let root = workspace_root();
    let path = dir.join("ground-station.toml");
    let text = format!(
        r#"
[station]
id = "crash"
data_dir = "{data}"

[mqtt]
broker = "external"
host = "127.0.0.1"
port = {broker_port}
{mqtt_extras}

[web]
listen = "{web}"
push_token = "{TOKEN}"

[inference]
model = "{model}"

[[drones]]
id = "drone-1"
link = "udpin:127.0.0.1:{udp}"
camera = "{camera}"
{drone_extras}

[district]
cells = "{cells}"

# Each pushed photo shows its own place: announce a hazard at its first photo.
[tracking]
confirm_photos = 1
{sections}
"#,
        data = dir.join("station").display(),
        model = root.join("models/patrol-hazard.onnx").display(),
        camera = root.join("data/demo-world/camera.toml").display(),
        cells = root.join("data/sample-district/cells.geojson").display(),
        mqtt_extras = extras.mqtt,
        drone_extras = extras.drone,
        sections = extras.sections,
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `patrol serve` with `RUST_LOG=info` (unless `env` says otherwise) and `env`, its stdout and stderr
/// appended to `log`; returns once its web port accepts connections.
pub(crate) fn start_daemon(config: &Path, log: &Path, web: SocketAddr, env: &[(&str, &str)]) -> Child {
    spawn_daemon(Command::new(patrol_binary()), config, log, web, env)
}

/// [`start_daemon`] through `command`, which must end by running `patrol` with the arguments added to it (the
/// binary itself, or a wrapper that execs it).
pub(crate) fn spawn_daemon(
    mut command: Command,
    config: &Path,
    log: &Path,
    web: SocketAddr,
    env: &[(&str, &str)],
) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let child = command
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect_timeout(&web, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "the daemon's web port never opened");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Pushes the fixture scene (one hazard of each class) twice, as if taken at two spots 200 m apart (so each push
/// gives its own hazards).
pub(crate) fn push_photos(web: SocketAddr) -> usize {
    for spot in 0..2 {
        push_photo(web, spot);
    }
    2
}

/// Latitude of the photo pushed at `spot` (spots are 0.002 degrees, about 220 m, apart along a meridian).
pub(crate) fn spot_lat(spot: u32) -> f64 {
    22.5410 + 0.002 * f64::from(spot)
}

/// Pushes the fixture scene (one hazard of each class) as taken at `spot`, 25 m above it, looking straight down.
pub(crate) fn push_photo(web: SocketAddr, spot: u32) {
    let images = workspace_root().join("inference/tests/fixtures/images");
    let jpeg = std::fs::read(images.join("synth_1_fire_gas_cylinder_rooftop_addon_smoke_steel_shed.jpg")).unwrap();
    let metadata = serde_json::json!({
        "drone_id": "drone-1",
        "capture_time": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "lat_deg": spot_lat(spot),
        "lon_deg": 113.8810,
        "relative_alt_m": 25.0,
        "attitude": {"roll_deg": 0.0, "pitch_deg": 0.0, "yaw_deg": 0.0},
        "intrinsics": {"width_px": 320, "height_px": 320, "fx_px": 400.0, "fy_px": 400.0},
    });
    let head = format!(
        "POST /api/frames HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: image/jpeg\r\nX-Capture-Metadata: {metadata}"
    );
    let (status, body) = http_request(web, &head, &jpeg);
    assert_eq!(status, 202, "push refused: {body}");
}

/// The hazard events waiting in the outbox, in publish order.
fn outbox_events(db: &Path) -> Vec<HazardEvent> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT topic, payload FROM outbox ORDER BY id").unwrap();
    let rows = stmt
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    rows.into_iter()
        .filter(|(topic, _)| topic == "patrol/hazards")
        .map(|(_, payload)| serde_json::from_slice(&payload).unwrap())
        .collect()
}

/// How many captures have their detections stored (the station writes them once a photo is through the tracker).
fn captures_through_the_detector(db: &Path) -> usize {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(DISTINCT capture_id) FROM detections", [], |row| row.get::<_, i64>(0))
        .map_or(0, |n| usize::try_from(n).unwrap())
}

/// Waits until all `photos` pushed frames are through the detector and the outbox holds their hazard events.
fn settled_outbox(db: &Path, photos: usize) -> Vec<HazardEvent> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the {photos} pushed photos did not all reach the outbox");
        if db.exists() && captures_through_the_detector(db) >= photos {
            return outbox_events(db);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_before_a_sigkill_arrive_after_the_restart_and_hazards_keep_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = write_config(dir.path(), broker_port, web, free_port(), &ConfigExtras::default());
    let log = dir.path().join("daemon.log");
    let db = dir.path().join("station/patrol.sqlite");

    // Run 1: no broker. The events wait in the outbox; then SIGKILL.
    let mut daemon = start_daemon(&config, &log, web, &[]);
    let pushed = push_photos(web);
    let stored = tokio::task::spawn_blocking({
        let db = db.clone();
        move || settled_outbox(&db, pushed)
    })
    .await
    .unwrap();
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    let news: BTreeSet<String> =
        stored.iter().filter(|e| e.event_type == HazardEventType::New).map(|e| e.after.id.clone()).collect();
    assert!(!news.is_empty(), "{pushed} photos with hazards gave no `new` event");
    let stored_ids: Vec<String> = stored.iter().map(|e| e.event_id.clone()).collect();

    // Run 2: the broker is up, a command center subscribed; the restarted daemon sends what was stored.
    let _broker = Mosquitto::start(dir.path(), broker_port);
    let (mut rx, subscriber) = subscribe(broker_port, "command-center", "patrol/hazards");
    wait_subscribed(broker_port, "patrol/hazards", &mut rx).await;
    let mut daemon = start_daemon(&config, &log, web, &[]);
    let mut received: Vec<HazardEvent> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while received.len() < stored_ids.len() {
        let (payload, _) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {} stored events arrived", received.len(), stored_ids.len()))
            .unwrap();
        let Ok(event) = serde_json::from_slice::<HazardEvent>(&payload) else { continue };
        if !received.iter().any(|e| e.event_id == event.event_id) {
            received.push(event);
        }
    }
    let received_ids: Vec<String> = received.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(received_ids, stored_ids, "every stored event, in order");

    // The same hazards seen again: merged into the resumed ones, never a `new` under another id.
    push_photos(web);
    tokio::time::sleep(Duration::from_secs(8)).await;
    while let Ok((payload, _)) = rx.try_recv() {
        let Ok(event) = serde_json::from_slice::<HazardEvent>(&payload) else { continue };
        if stored_ids.contains(&event.event_id) {
            continue; // a repeat of a stored event (at-least-once delivery)
        }
        assert_ne!(event.event_type, HazardEventType::New, "a hazard seen again came as `new`: {}", event.after.id);
        assert!(news.contains(&event.after.id), "hazard {} re-issued under a new id after the restart", event.after.id);
    }
    subscriber.abort();

    // SIGTERM: a clean stop.
    let status = Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = daemon.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "exit after SIGTERM: {exit:?}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
}
