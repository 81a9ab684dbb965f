//! Load: many simulated drones at once, each streaming telemetry at 10 Hz and taking one photo per second, into
//! one ground station (the shipped model), for minutes. Prints every 30 s and at the end: the station's memory
//! (RSS) and CPU, the simulator's CPU (a separate `patrol sim` process), and the frame counters (announced,
//! queued, processed, dropped because the bounded queue was full, failed), then checks that every hazard event
//! the station committed reached an MQTT subscriber.
//!
//! The photos are 640 x 480 (the simulator renders 50 per second, at `nice 19`, on the same cores as the
//! detector; the camera has the demo camera's 70 degree lens, at 60 m). Every queue in the pipeline is bounded (frames 64, detector
//! input 2, results 8, downloads 4 at a time), so what the detector cannot take is dropped and counted.
//!
//! `cargo bench --workspace --bench load` (release) or with `--profile dev`; `PATROL_LOAD_DRONES` (default 50)
//! and `PATROL_LOAD_MINUTES` (default 10).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ground_station::config::{self, BrokerSettings, DroneSettings};
use ground_station::station::{StartOptions, Station};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::mpsc;

/// MAVLink ids used directly here.
const MAV_CMD_SET_MESSAGE_INTERVAL: u16 = 511;
const MAV_CMD_IMAGE_START_CAPTURE: u16 = 2000;
const GLOBAL_POSITION_INT: f32 = 33.0;
const ATTITUDE: f32 = 30.0;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident memory (kB) and CPU seconds (user + system) of a process, from /proc.
fn usage(pid: &str) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SC_CLK_TCK is 100 on Linux.
    (rss_kb, (ticks(11) + ticks(12)) / 100.0)
}

/// Camera files: the station's profile and the simulator's (same lens, 640 x 480, looking down).
fn write_cameras(dir: &Path) -> (PathBuf, PathBuf) {
    let spec = "name = \"load-640x480\"\nimage_width_px = 640\nimage_height_px = 480\nhorizontal_fov_deg = 70.0\n\
                min_trigger_interval_s = 0.5\n";
    let station = dir.join("camera.toml");
    std::fs::write(&station, spec).unwrap();
    let sim = dir.join("sim-camera.toml");
    std::fs::write(&sim, format!("pitch_deg = -90.0\njpeg_quality = 85\n\n[spec]\n{spec}")).unwrap();
    (station, sim)
}

/// Counts distinct hazard event ids published on `topic` until `stop`.
async fn count_events(port: u16, topic: String, mut stop: mpsc::Receiver<()>) -> BTreeSet<String> {
    let mut options = MqttOptions::new("load-bench-observer", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut seen = BTreeSet::new();
    loop {
        tokio::select! {
            _ = stop.recv() => return seen,
            polled = eventloop.poll() => match polled {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    client.subscribe(topic.clone(), QoS::AtLeastOnce).await.unwrap();
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload)
                        && let Some(id) = v["event_id"].as_str()
                    {
                        seen.insert(id.to_owned());
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            },
        }
    }
}

fn start_sim(drones: usize, udp: u16, sim_camera: &Path, log: &Path) -> Child {
    let root = workspace_root();
    let log = std::fs::File::create(log).unwrap();
    // At the lowest CPU priority: on a small machine the renderer would otherwise take the cores the station
    // is being measured on (it then renders fewer photos than asked, which the figures show).
    let mut command = Command::new("nice");
    command
        .args(["-n", "19"])
        .arg(env!("CARGO_BIN_EXE_patrol"))
        .args(["sim", "--drones", &drones.to_string(), "--personality", "ardupilot"])
        .args(["--gcs", &format!("udpout:127.0.0.1:{udp}")])
        .arg("--world")
        .arg(root.join("data/demo-world/world.jpg"))
        .arg("--camera")
        .arg(sim_camera)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    // Homes spread over the demo world (drones at one home would photograph the same spot).
    for i in 0..drones {
        let (row, col) = ((i / 10) as f64, (i % 10) as f64);
        command.arg("--home").arg(format!("{:.6},{:.6}", 22.5405 + row * 0.0006, 113.8805 + col * 0.0004));
    }
    command.spawn().unwrap()
}

#[allow(clippy::too_many_lines)]
async fn run(drones: usize, minutes: f64) {
    let dir = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let (station_camera, sim_camera) = write_cameras(dir.path());
    let udp = free_udp_port();
    let broker_port = free_tcp_port();

    let mut settings = config::load(None, std::iter::empty()).unwrap();
    settings.station.data_dir = dir.path().join("station");
    settings.storage.database = dir.path().join("station/patrol.sqlite");
    settings.storage.evidence_dir = dir.path().join("station/evidence");
    settings.mqtt.broker = BrokerSettings::Embedded { listen: SocketAddr::from(([127, 0, 0, 1], broker_port)) };
    settings.inference.model = root.join("models/patrol-hazard.onnx");
    settings.district.cells = Some(root.join("data/sample-district/cells.geojson"));
    settings.drones = (1..=drones)
        .map(|i| DroneSettings {
            id: format!("drone-{i}"),
            link: format!("udpin:127.0.0.1:{udp}"),
            signing_key_file: None,
            system_id: u8::try_from(i).unwrap(),
            camera: Some(station_camera.clone()),
        })
        .collect();
    let topic = format!("{}/hazards", settings.mqtt.topic_prefix);

    let station = Station::start(settings, StartOptions { detector: None, web: false }).await.unwrap();
    let (stop_tx, stop_rx) = mpsc::channel(1);
    let observer = tokio::spawn(count_events(broker_port, topic, stop_rx));
    let mut sim = start_sim(drones, udp, &sim_camera, &dir.path().join("sim.log"));
    let sim_pid = sim.id().to_string();

    // Take off to 60 m, telemetry at 10 Hz, one photo per second.
    let setup = Instant::now();
    let mut handles = Vec::new();
    for i in 1..=drones {
        let id = format!("drone-{i}");
        let vehicle = loop {
            if let Some(vehicle) = station.fleet.vehicle(&id)
                && vehicle.state().position.is_some()
            {
                break vehicle;
            }
            assert!(setup.elapsed() < Duration::from_secs(120), "{id} never reported a position");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        handles.push(tokio::spawn(async move {
            // ArduPilot arms once its position estimate is ready (5 s after boot).
            let deadline = Instant::now() + Duration::from_secs(60);
            while vehicle.arm().await.is_err() {
                assert!(Instant::now() < deadline, "a drone never armed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            vehicle.takeoff(60.0).await.unwrap();
            for message in [GLOBAL_POSITION_INT, ATTITUDE] {
                vehicle
                    .command_long(MAV_CMD_SET_MESSAGE_INTERVAL, [message, 100_000.0, 0.0, 0.0, 0.0, 0.0, 0.0])
                    .await
                    .unwrap();
            }
            // Wait until it is up there, then photograph every second until told otherwise.
            let mut state = vehicle.watch();
            while state.borrow().position.is_none_or(|p| p.relative_alt_m < 55.0) {
                state.changed().await.unwrap();
            }
            vehicle.command_long(MAV_CMD_IMAGE_START_CAPTURE, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]).await.unwrap();
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    println!("load: {drones} drones airborne and photographing after {:.0} s", setup.elapsed().as_secs_f64());

    let me = std::process::id().to_string();
    let (_, cpu0) = usage(&me);
    let (_, sim_cpu0) = usage(&sim_pid);
    let start = Instant::now();
    let before = station.frames.stats();
    println!("  min  station RSS  station CPU  sim CPU  announced  processed  dropped  failed  hazards");
    let mut rss_samples = Vec::new();
    let mut last = (start, cpu0, sim_cpu0);
    while start.elapsed().as_secs_f64() < minutes * 60.0 {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let (rss, cpu) = usage(&me);
        let (_, sim_cpu) = usage(&sim_pid);
        let wall = last.0.elapsed().as_secs_f64();
        let s = station.frames.stats();
        let hazards = station.hazards.open_hazards().await.map_or(0, |h| h.len());
        rss_samples.push((start.elapsed().as_secs_f64() / 60.0, rss as f64 / 1024.0));
        println!(
            "  {:4.1}  {:8.0} MB  {:9.0} %  {:6.0} %  {:9}  {:9}  {:7}  {:6}  {:7}",
            start.elapsed().as_secs_f64() / 60.0,
            rss as f64 / 1024.0,
            100.0 * (cpu - last.1) / wall,
            100.0 * (sim_cpu - last.2) / wall,
            s.captures_announced - before.captures_announced,
            s.processed - before.processed,
            s.dropped - before.dropped,
            s.failed - before.failed,
            hazards,
        );
        last = (Instant::now(), cpu, sim_cpu);
    }
    let wall = start.elapsed().as_secs_f64();
    let (_, cpu1) = usage(&me);
    let (_, sim_cpu1) = usage(&sim_pid);
    let after = station.frames.stats();
    let _ = Command::new("kill").arg("-INT").arg(&sim_pid).status();
    let _ = sim.wait();
    station.shutdown().await;
    // Let the observer take the last events.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop_tx.send(()).await;
    let received = observer.await.unwrap();
    let storage = ground_station::storage::StorageHandle::open(&dir.path().join("station/patrol.sqlite")).unwrap().0;
    let committed = storage.call(|db| db.counters()).await.unwrap().next_event - 1;
    let pending = storage.call(|db| db.outbox_len()).await.unwrap();

    let announced = after.captures_announced - before.captures_announced;
    let processed = after.processed - before.processed;
    let dropped = after.dropped - before.dropped;
    let n = rss_samples.len() as f64;
    let (mx, my) = (rss_samples.iter().map(|s| s.0).sum::<f64>() / n, rss_samples.iter().map(|s| s.1).sum::<f64>() / n);
    let slope = rss_samples.iter().map(|s| (s.0 - mx) * (s.1 - my)).sum::<f64>()
        / rss_samples.iter().map(|s| (s.0 - mx).powi(2)).sum::<f64>().max(1e-9);
    let rss_max = rss_samples.iter().map(|s| s.1).fold(0.0, f64::max);
    println!("load: {drones} drones, {:.1} min", wall / 60.0);
    println!(
        "  photos announced {announced} ({:.1}/s), processed {processed} ({:.2}/s), dropped {dropped} ({:.1} %, \
         counted: queue full), failed {}",
        announced as f64 / wall,
        processed as f64 / wall,
        100.0 * dropped as f64 / announced.max(1) as f64,
        after.failed - before.failed
    );
    println!(
        "  station RSS max {rss_max:.0} MB, trend {slope:+.2} MB/min; station CPU {:.0} %, simulator CPU {:.0} % \
         (of one core)",
        100.0 * (cpu1 - cpu0) / wall,
        100.0 * (sim_cpu1 - sim_cpu0) / wall
    );
    println!(
        "  hazard events committed {committed}, received by the subscriber {} (the only publisher on this \
         private broker), still in the outbox {pending}",
        received.len()
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let drones: usize = env_or("PATROL_LOAD_DRONES", 50);
    let minutes: f64 = env_or("PATROL_LOAD_MINUTES", 10.0);
    assert!((1..=250).contains(&drones), "PATROL_LOAD_DRONES must be 1 to 250");
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run(drones, minutes));
}
