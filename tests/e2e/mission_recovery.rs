//! SIGKILL of the `patrol serve` daemon mid-sortie, then a restart: the sortie is taken back from storage and
//! flown to its end, and no hazard event is lost or re-issued under a new id.
//!
//! An operator plans one demo cell through the HTTP API, uploads it and starts it on a simulated ArduPilot drone
//! (in the test process, speed-up 8, photographing the demo world). A command-center subscriber listens on
//! `patrol/hazards`. Once the drone is a few items into the mission the daemon is killed with SIGKILL; the drone
//! flies on. The restarted daemon lists the sortie as flying under the same id, follows it to the landing and
//! stores it as completed; the subscriber has every event the database committed, and at most one `new` per
//! hazard id.

// Test helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{Mosquitto, free_port, http_exchange, patrol_binary, subscribe, wait_subscribed, workspace_root};
use firmware_bridge::sim::{CameraConfig, PersonalityMix, SimConfig, SimFleet, SimLink, WorldRaster};
use ground_station::config::BrokerSettings;
use ground_station::demo::{self, DemoOptions};
use ground_station::hazard::{HazardEvent, HazardEventType};
use ground_station::station::patrols::PlannerInputs;
use mission_planner::patrol;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::daemon::{ConfigExtras, start_daemon, write_config};

/// Longest wait for the drone, the sortie's progress and its landing (the sim runs 8x faster than wall time).
const FLIGHT_WAIT: Duration = Duration::from_secs(300);
const OPERATOR: &str = "operator";
const PASSWORD: &str = "recovery-test-password-42";

/// An operator's console session over plain HTTP: the session cookie and the CSRF token.
struct Session {
    web: SocketAddr,
    cookie: String,
    csrf: String,
}

impl Session {
    fn log_in(web: SocketAddr) -> Self {
        let body = json!({ "username": OPERATOR, "password": PASSWORD }).to_string();
        let head = "POST /api/login HTTP/1.1\r\nContent-Type: application/json";
        let (status, headers, body) = http_exchange(web, head, body.as_bytes());
        assert_eq!(status, 200, "login refused: {body}");
        let cookie = headers
            .lines()
            .find_map(|line| line.strip_prefix("set-cookie: ").or_else(|| line.strip_prefix("Set-Cookie: ")))
            .and_then(|value| value.split(';').next())
            .unwrap_or_else(|| panic!("no session cookie in {headers}"))
            .to_owned();
        let csrf = serde_json::from_str::<Value>(&body).unwrap()["csrf_token"].as_str().unwrap().to_owned();
        Self { web, cookie, csrf }
    }

    fn get(&self, path: &str) -> Value {
        let head = format!("GET {path} HTTP/1.1\r\nCookie: {}", self.cookie);
        let (status, _, body) = http_exchange(self.web, &head, b"");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let head = format!(
            "POST {path} HTTP/1.1\r\nCookie: {}\r\nX-CSRF-Token: {}\r\nContent-Type: application/json",
            self.cookie, self.csrf
        );
        let (status, _, answer) = http_exchange(self.web, &head, body.to_string().as_bytes());
        assert_eq!(status, 200, "POST {path}: {answer}");
        serde_json::from_str(&answer).unwrap()
    }
}

/// The stored state of mission `id` (`"running"`, `"completed"`...).
fn stored_state(db: &Path, id: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(db).ok()?;
    let state: String = conn.query_row("SELECT state FROM missions WHERE id = ?1", [id], |row| row.get(0)).ok()?;
    serde_json::from_str(&state).ok()
}

/// Polls `check` every 250 ms until it returns `Some`, for at most [`FLIGHT_WAIT`].
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + FLIGHT_WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sortie_flying_when_the_daemon_is_killed_is_resumed_after_the_restart_and_no_event_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = workspace_root().join("data");
    let broker_port = free_port();
    let _broker = Mosquitto::start(dir.path(), broker_port);
    let (mut events, subscriber) = subscribe(broker_port, "command-center", "patrol/hazards");
    wait_subscribed(broker_port, "patrol/hazards", &mut events).await;

    let web = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let udp = free_port();
    let planner = format!(
        "[planner]\nlaunch_points = \"{}\"\nno_fly_zones = \"{}\"\ncamera = \"{}\"\ngsd_m = 0.07\n\
         front_overlap = 0.5\nside_overlap = 0.4\ncruise_speed_mps = 8.0\n",
        data.join("sample-district/launch-points.geojson").display(),
        data.join("sample-district/no-fly.geojson").display(),
        data.join("demo-world/camera.toml").display(),
    );
    let extras = ConfigExtras { sections: planner, ..ConfigExtras::default() };
    let config = write_config(dir.path(), broker_port, web, udp, &extras);
    let log = dir.path().join("daemon.log");
    let db = dir.path().join("station/patrol.sqlite");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut add = Command::new(patrol_binary())
        .args(["user", "--db"])
        .arg(&db)
        .args(["add", OPERATOR, "--role", "operator", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success(), "patrol user add failed");

    // A demo cell (hazards are planted there) and the launch point the planner flies it from, where the drone
    // stands; it flies through both daemons.
    let options = DemoOptions {
        data_dir: data.clone(),
        work_dir: dir.path().join("unused"),
        drones: 1,
        speedup: 8.0,
        broker: None,
        web: None,
        cells: Vec::new(),
        time_limit: FLIGHT_WAIT,
        progress: false,
        model: None,
    };
    let settings = demo::settings(
        &options,
        "udpin:127.0.0.1:1",
        &BrokerSettings::External { host: "127.0.0.1".into(), port: broker_port, tls: None },
    )
    .unwrap();
    let inputs =
        PlannerInputs::load(settings.planner.as_ref().unwrap(), settings.district.cells.as_ref().unwrap()).unwrap();
    // XX-0102: the demo world plants fire-2, gas-2 and shed-2 there (XX-0101 is its empty quadrant).
    let cell = inputs.cells.iter().find(|c| c.demo && c.id == "XX-0102").unwrap().id.clone();
    let dry = patrol::plan_patrol(&inputs.request(std::slice::from_ref(&cell), 1, None).unwrap()).unwrap();
    let home = inputs.launch_points.iter().find(|l| l.id == dry.sorties[0].launch_id).unwrap().point;
    let world_dir = data.join("demo-world");
    let link = SimLink::UdpOut { gcs: SocketAddr::from((Ipv4Addr::LOCALHOST, udp)) };
    let mut sim = SimConfig::fleet(1, PersonalityMix::ArduPilot, &[home], &link).unwrap();
    sim.drones[0].camera = CameraConfig::load(&world_dir.join("sim-camera.toml")).unwrap();
    sim.speedup = 8.0;
    sim.seed = 11;
    sim.http_bind = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    sim.world = Some(Arc::new(WorldRaster::load(&world_dir.join("world.jpg")).unwrap()));
    let sim_cancel = CancellationToken::new();
    let sim_fleet = SimFleet::spawn(sim, sim_cancel.clone()).await.unwrap();

    // Daemon 1: the operator plans the launch point's nearest demo cell, uploads it and starts it.
    let mut daemon = start_daemon(&config, &log, web, &[]);
    let operator = tokio::task::spawn_blocking(move || Session::log_in(web)).await.unwrap();
    let operator = Arc::new(operator);
    let api = operator.clone();
    let planned = cell.clone();
    let mission_id = tokio::task::spawn_blocking(move || {
        let plan = api.post("/api/missions/plan", &json!({ "cell_ids": [planned], "gsd_cm_per_px": 7.0 }));
        let plan_id = plan["plan_id"].as_str().unwrap().to_owned();
        assert_eq!(plan_id, "p1");
        api.post(&format!("/api/missions/{plan_id}/upload"), &json!({}));
        let missions = api.get("/api/missions");
        missions[0]["mission_id"].as_str().unwrap().to_owned()
    })
    .await
    .unwrap();
    let api = operator.clone();
    wait_for("the drone to start", || {
        let answers = api.post("/api/commands", &json!({ "command": "start" }));
        answers[0]["accepted"].as_bool().unwrap().then_some(())
    })
    .await;
    let api = operator.clone();
    let id = mission_id.clone();
    wait_for("the sortie to get under way", || {
        let missions = api.get("/api/missions");
        let run = missions.as_array().unwrap().iter().find(|m| m["mission_id"] == id.as_str())?.clone();
        (run["state"] == "flying" && run["reached_items"].as_u64()? >= 3).then_some(())
    })
    .await;
    assert_eq!(stored_state(&db, &mission_id).as_deref(), Some("running"));

    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();

    // Daemon 2 on the same data: the sortie is back, flying, and is followed to its landing.
    let mut daemon = start_daemon(&config, &log, web, &[]);
    let operator = tokio::task::spawn_blocking(move || Session::log_in(web)).await.unwrap();
    let missions = operator.get("/api/missions");
    let run = missions.as_array().unwrap().iter().find(|m| m["mission_id"] == mission_id.as_str()).cloned();
    let run = run.unwrap_or_else(|| panic!("{mission_id} not resumed after the restart: {missions}"));
    assert_eq!(run["state"], "flying", "{run}");
    assert!(run["route"].as_array().unwrap().len() > 2, "resumed without its route: {run}");
    let id = mission_id.clone();
    let state =
        wait_for("the resumed sortie to end", || stored_state(&db, &id).filter(|s| s == "completed" || s == "aborted"))
            .await;
    assert_eq!(state, "completed", "the resumed sortie ended {state}");
    let plan = operator.post("/api/missions/plan", &json!({ "cell_ids": [cell], "gsd_cm_per_px": 7.0 }));
    assert_eq!(plan["plan_id"], "p2", "a plan id of the stored missions was reused");

    // Every hazard event committed, before and after the kill, reached the command center (event numbers without
    // a gap), and no hazard got two `new` events.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let pending: i64 =
            conn.query_row("SELECT COUNT(*) FROM outbox WHERE topic = 'patrol/hazards'", [], |r| r.get(0)).unwrap();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} hazard events still in the outbox");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut received: BTreeMap<u64, HazardEvent> = BTreeMap::new();
    while let Ok((payload, _)) = events.try_recv() {
        if let Ok(event) = serde_json::from_slice::<HazardEvent>(&payload) {
            let number = event.event_id.rsplit(':').next().unwrap().parse().unwrap();
            received.insert(number, event);
        }
    }
    assert!(!received.is_empty(), "no hazard event from a demo cell: the test proves nothing about events");
    let numbers: Vec<u64> = received.keys().copied().collect();
    let expected: Vec<u64> = (1..=numbers[numbers.len() - 1]).collect();
    assert_eq!(numbers, expected, "hazard events lost");
    let news: Vec<&HazardEvent> = received.values().filter(|e| e.event_type == HazardEventType::New).collect();
    let ids: BTreeSet<&str> = news.iter().map(|e| e.after.id.as_str()).collect();
    assert_eq!(ids.len(), news.len(), "a hazard was announced twice");
    println!("{} hazard events received in full ({} `new`)", received.len(), news.len());

    subscriber.abort();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    sim_cancel.cancel();
    sim_fleet.wait().await;
}
