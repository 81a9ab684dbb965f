//! The simulated patrol (`patrol demo`): simulated drones at the sample district's launch points flying over the
//! demo world raster (`data/demo-world/`), the ground station with the shipped model, and a summary measured
//! against the hazards planted in that world.
//!
//! Order: plan once without drones to learn which launch point each planned drone takes off from; start the
//! simulated drones there; start the station (embedded broker unless one is given) with one `[[drones]]` per
//! simulated drone on a shared UDP link; plan again with the real drones, fly every sortie; collect the hazard
//! events from the broker like a command center would; when every sortie is over and every photo processed,
//! compare with the truth.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use firmware_bridge::sim::{CameraConfig, GasWorld, PersonalityMix, SimConfig, SimFleet, SimLink, WorldRaster};
use mission_planner::geo::{GeoPoint, LocalFrame, LocalPoint, geodesic_distance_m};
use mission_planner::patrol;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{self, BrokerSettings, DroneSettings, PlannerSettings, Settings};
use crate::hazard::{HazardEvent, HazardEventType, HazardKind, MissionState};
use crate::station::patrols::PlannerInputs;
use crate::station::{StartOptions, Station};

/// How long the demo waits after the patrol for the broker to acknowledge the events still in the outbox.
const OUTBOX_DRAIN: Duration = Duration::from_secs(90);

/// What the demo runs with.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The repository's `data/` folder (sample district and demo world).
    pub data_dir: PathBuf,
    /// Where the station keeps its database and evidence (a fresh folder is best).
    pub work_dir: PathBuf,
    /// Simulated drones (ArduPilot and PX4 alternating).
    pub drones: usize,
    /// Simulation speed-up.
    pub speedup: f64,
    /// External broker `host:port`; `None` runs the embedded one on a free port.
    pub broker: Option<(String, u16)>,
    /// Serve the web console here (`None`: headless).
    pub web: Option<SocketAddr>,
    /// Grid cells to patrol (empty: the sample's demo cells).
    pub cells: Vec<String>,
    /// Give up after this long.
    pub time_limit: Duration,
    /// Show a progress line.
    pub progress: bool,
    /// Use this detector instead of the shipped model (tests of the plumbing).
    pub model: Option<PathBuf>,
}

/// One planted hazard and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlantedResult {
    /// Planted id (`fire-1`, `leak-2`, ...).
    pub id: String,
    /// Its kind as published.
    pub kind: HazardKind,
    /// Label (model class or `CH4` for a leak).
    pub label: String,
    /// The published hazard matched to it, if any.
    pub hazard_id: Option<String>,
    /// Distance between the published position and the truth, metres.
    pub error_m: Option<f64>,
    /// The matched hazard's grid cell.
    pub grid_cell: Option<String>,
    /// The cell the truth lies in.
    pub true_cell: Option<String>,
    /// The matched hazard's confidence.
    pub confidence: Option<f64>,
    /// How many sightings the matched hazard merged.
    pub sightings: Option<u32>,
}

/// A published hazard that matches nothing planted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FalseAlarm {
    /// Hazard id.
    pub hazard_id: String,
    /// Kind.
    pub kind: HazardKind,
    /// Label.
    pub label: String,
    /// Confidence.
    pub confidence: f64,
    /// Where.
    pub lat_deg: f64,
    /// Where.
    pub lon_deg: f64,
    /// In the world's empty quadrant (no hazard planted there).
    pub in_empty_area: bool,
    /// How many sightings it merged.
    pub sightings: u32,
}

/// Found/planted for one kind.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct KindScore {
    /// Planted.
    pub planted: usize,
    /// Found.
    pub found: usize,
}

/// The measured result of a demo run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSummary {
    /// Drones flown.
    pub drones: usize,
    /// Speed-up.
    pub speedup: f64,
    /// Cells patrolled.
    pub cells: Vec<String>,
    /// Sorties flown to the end / planned.
    pub sorties_completed: usize,
    /// Sorties planned.
    pub sorties_planned: usize,
    /// Photos the drones announced.
    pub photos_announced: u64,
    /// Photos run through the detector.
    pub photos_processed: u64,
    /// Photos dropped because the detector was behind.
    pub photos_dropped: u64,
    /// Photos that never reached the detector (download failed, no pose).
    pub photos_failed: u64,
    /// Photos the detector could not read.
    pub photos_unreadable: u64,
    /// Hazard `new` events received from the broker.
    pub new_events: usize,
    /// Every hazard event received.
    pub events_total: usize,
    /// Per kind (`fire`, `gas`, `structure`).
    pub per_kind: BTreeMap<String, KindScore>,
    /// Each planted hazard.
    pub planted: Vec<PlantedResult>,
    /// Published hazards matching nothing planted.
    pub false_alarms: Vec<FalseAlarm>,
    /// Median position error of found hazards, metres.
    pub median_error_m: Option<f64>,
    /// Worst position error of found hazards, metres.
    pub worst_error_m: Option<f64>,
    /// Frame (the station hears of the photo that confirmed the hazard) -> `new` event received, median, seconds.
    pub latency_p50_s: Option<f64>,
    /// Same, 99th percentile.
    pub latency_p99_s: Option<f64>,
    /// Same, worst.
    pub latency_max_s: Option<f64>,
    /// Wall time of the run, seconds.
    pub wall_s: f64,
    /// The model's sha256.
    pub model_sha256: String,
}

/// A hazard event and when it was received.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    /// The event.
    pub event: HazardEvent,
    /// Receive time.
    pub at: SystemTime,
}

#[derive(Debug, Deserialize)]
struct WorldTruth {
    hazards: Vec<TruthHazard>,
    leaks: Vec<TruthLeak>,
    empty_quadrant: EmptyQuadrant,
}

#[derive(Debug, Deserialize)]
struct TruthHazard {
    id: String,
    kind: String,
    label: String,
    lat: f64,
    lon: f64,
}

#[derive(Debug, Deserialize)]
struct TruthLeak {
    id: String,
    lat: f64,
    lon: f64,
}

#[derive(Debug, Deserialize)]
struct EmptyQuadrant {
    lat_below: f64,
    lon_below: f64,
}

/// Planted hazards match a published one of the same kind within this distance.
pub const MATCH_RADIUS_M: f64 = 15.0;

/// The demo's station settings: defaults plus the sample district, the demo camera and planner, one drone per
/// simulated drone on `link`.
///
/// # Errors
/// Invalid settings (a bug in the demo or missing data files).
pub fn settings(options: &DemoOptions, link: &str, broker: &BrokerSettings) -> anyhow::Result<Settings> {
    // The station id goes through the loader, so that what derives from it (the tracker's hazard and event ids)
    // says "demo" too.
    let mut settings = config::load_str(Some((Path::new("<demo>"), "[station]\nid = \"demo\"\n")), std::iter::empty())
        .context("the default configuration")?;
    let data = &options.data_dir;
    settings.station.data_dir = options.work_dir.clone();
    settings.storage.database = options.work_dir.join("patrol.sqlite");
    settings.storage.evidence_dir = options.work_dir.join("evidence");
    settings.mqtt.broker = broker.clone();
    settings.mqtt.client_id = format!("patrol-demo-{}", std::process::id());
    settings.district.cells = Some(data.join("sample-district/cells.geojson"));
    settings.planner = Some(PlannerSettings {
        no_fly_zones: Some(data.join("sample-district/no-fly.geojson")),
        launch_points: data.join("sample-district/launch-points.geojson"),
        camera: data.join("demo-world/camera.toml"),
        gsd_m: 0.07,
        front_overlap: 0.5,
        side_overlap: 0.4,
        cruise_speed_mps: 8.0,
        battery_endurance: Duration::from_secs(25 * 60),
        battery_reserve: 0.25,
        max_alt_m: 120.0,
    });
    if let Some(model) = &options.model {
        settings.inference.model.clone_from(model);
    } else {
        settings.inference.model = data.join("../models/patrol-hazard.onnx");
    }
    if let Some(web) = options.web {
        settings.web.listen = web;
        settings.web.public_url = format!("http://{web}");
    }
    settings.drones = (1..=options.drones)
        .map(|i| DroneSettings {
            id: format!("drone-{i}"),
            link: link.to_owned(),
            signing_key_file: None,
            system_id: u8::try_from(i).unwrap_or(u8::MAX),
            camera: None,
        })
        .collect();
    Ok(settings)
}

fn free_port() -> anyhow::Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(socket.local_addr()?.port())
}

fn free_tcp_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Runs the demo to the end and returns its summary. `on_station` is called once the station runs (the CLI
/// prints the console URL and demo users there).
///
/// # Errors
/// Missing data files, a part that cannot start, or the time limit.
pub async fn run(options: DemoOptions, on_station: impl FnOnce(&Station)) -> anyhow::Result<DemoSummary> {
    let started = Instant::now();
    if options.drones == 0 || options.drones > 20 {
        bail!("--drones must be between 1 and 20, not {}", options.drones);
    }
    if !(options.speedup.is_finite() && options.speedup > 0.0 && options.speedup <= 50.0) {
        bail!("--speedup must be above 0 and at most 50, not {}", options.speedup);
    }
    let world_dir = options.data_dir.join("demo-world");
    let truth: WorldTruth = serde_json::from_str(
        &std::fs::read_to_string(world_dir.join("world.json"))
            .with_context(|| format!("reading {}", world_dir.join("world.json").display()))?,
    )
    .context("world.json")?;
    std::fs::create_dir_all(&options.work_dir).with_context(|| format!("creating {}", options.work_dir.display()))?;

    let udp_port = free_port()?;
    let link = format!("udpin:127.0.0.1:{udp_port}");
    let broker = match &options.broker {
        Some((host, port)) => BrokerSettings::External { host: host.clone(), port: *port, tls: None },
        None => BrokerSettings::Embedded { listen: SocketAddr::from(([127, 0, 0, 1], free_tcp_port()?)) },
    };
    let settings = settings(&options, &link, &broker)?;
    let planner = settings.planner.clone().context("the demo always has a planner")?;
    let cells_path = settings.district.cells.clone().context("the demo always has cells")?;
    let inputs = PlannerInputs::load(&planner, &cells_path)?;
    let cells: Vec<String> = if options.cells.is_empty() {
        inputs.cells.iter().filter(|c| c.demo).map(|c| c.id.clone()).collect()
    } else {
        options.cells.clone()
    };

    // Where each planned drone takes off: the simulated drones stand there.
    let dry =
        patrol::plan_patrol(&inputs.request(&cells, options.drones, None)?).context("planning the demo patrol")?;
    let mut homes = Vec::with_capacity(options.drones);
    let mut at_point: BTreeMap<String, usize> = BTreeMap::new();
    for drone in 1..=options.drones {
        let launch_id = dry
            .sorties
            .iter()
            .find(|s| s.drone == drone)
            .map_or_else(|| inputs.launch_points[0].id.clone(), |s| s.launch_id.clone());
        let point = inputs.launch_points.iter().find(|l| l.id == launch_id).map(|l| l.point).context("launch point")?;
        let n = at_point.entry(launch_id).or_default();
        // Drones sharing a launch point stand 4 m apart.
        #[allow(clippy::cast_precision_loss)]
        homes.push(LocalFrame::new(point).to_geo(LocalPoint::new(4.0 * *n as f64, 0.0)));
        *n += 1;
    }

    let sim_cancel = CancellationToken::new();
    let sim_link: SimLink = format!("udpout:127.0.0.1:{udp_port}").parse().context("sim link")?;
    let mut sim = SimConfig::fleet(options.drones, PersonalityMix::Mixed, &homes, &sim_link)?;
    for (drone, home) in sim.drones.iter_mut().zip(&homes) {
        drone.home = *home;
        drone.camera = CameraConfig::load(&world_dir.join("sim-camera.toml"))?;
    }
    sim.speedup = options.speedup;
    sim.seed = 7;
    sim.http_bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    sim.world = Some(Arc::new(WorldRaster::load(&world_dir.join("world.jpg"))?));
    sim.gas = GasWorld::load(&world_dir.join("leaks.json"))?;
    let sim_fleet = SimFleet::spawn(sim, sim_cancel.clone()).await.context("starting the simulated drones")?;

    let (host, port) = match &broker {
        BrokerSettings::Embedded { listen } => (listen.ip().to_string(), listen.port()),
        BrokerSettings::External { host, port, .. } => (host.clone(), *port),
    };
    // The observer subscribes first (retrying until the broker is up), so it misses no event.
    let topic = crate::mqtt::Topics::new(settings.mqtt.topic_prefix.clone()).hazards();
    let (events_tx, mut events_rx) = mpsc::channel(4096);
    let listener_cancel = CancellationToken::new();
    let listener = tokio::spawn(listen_events(host, port, topic, events_tx, listener_cancel.clone()));
    let station = Station::start(settings, StartOptions { detector: None, web: options.web.is_some() }).await?;
    on_station(&station);

    let outcome =
        tokio::time::timeout(options.time_limit, fly(&station, &cells, options.drones, options.progress)).await;
    // Let the last events through the broker: the outbox is empty once it has acknowledged all of them (a broker
    // that was down comes back within the reconnect backoff); then the observer gets a moment to receive them.
    let deadline = Instant::now() + OUTBOX_DRAIN;
    while Instant::now() < deadline && station.storage.call(|db| db.outbox_len()).await.is_ok_and(|n| n > 0) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    listener_cancel.cancel();
    let _ = listener.await;
    let mut events = Vec::new();
    while let Ok(event) = events_rx.try_recv() {
        events.push(event);
    }
    let runs = station.patrols.runs();
    let stats = station.frames.stats();
    let latencies: Vec<f64> = events
        .iter()
        .filter(|e| e.event.event_type == HazardEventType::New)
        .filter_map(|e| {
            // The photo that raised the alert: the last of those that confirmed the hazard.
            let capture = e.event.after.capture_ids.last()?;
            let received = station.frames.received_at(capture)?;
            e.at.duration_since(received).ok().map(|d| d.as_secs_f64())
        })
        .collect();
    let model_sha256 = station.model.sha256.clone();
    let district = station.district.clone();
    station.shutdown().await;
    sim_cancel.cancel();
    sim_fleet.wait().await;
    match outcome {
        Err(_) => bail!("the demo did not finish within {:?}", options.time_limit),
        Ok(Err(error)) => return Err(error),
        Ok(Ok(())) => {}
    }

    let mut summary = score(&truth, &events, |p| district.cell_at(p).map(str::to_owned));
    summary.drones = options.drones;
    summary.speedup = options.speedup;
    summary.cells = cells;
    summary.sorties_planned = runs.len();
    summary.sorties_completed = runs.iter().filter(|r| r.state == MissionState::Completed).count();
    summary.photos_announced = stats.captures_announced;
    summary.photos_processed = stats.processed;
    summary.photos_dropped = stats.dropped;
    summary.photos_failed = stats.failed;
    summary.photos_unreadable = stats.detect_failed;
    let (p50, p99, max) = percentiles(latencies);
    summary.latency_p50_s = p50;
    summary.latency_p99_s = p99;
    summary.latency_max_s = max;
    summary.wall_s = started.elapsed().as_secs_f64();
    summary.model_sha256 = model_sha256;
    Ok(summary)
}

/// Waits for the drones, plans, flies every sortie and waits until every photo is processed.
async fn fly(station: &Station, cells: &[String], drones: usize, progress: bool) -> anyhow::Result<()> {
    for drone in station.fleet.drones() {
        let bridge = &station.fleet.bridges()[drone.bridge];
        let vehicle = bridge
            .wait_for_vehicle(drone.system_id, Duration::from_secs(30))
            .await
            .with_context(|| format!("simulated {} never said hello", drone.id))?;
        let mut state = vehicle.watch();
        tokio::time::timeout(Duration::from_secs(30), state.wait_for(|s| s.home.is_some() || s.position.is_some()))
            .await
            .with_context(|| format!("{} reports no position", drone.id))?
            .context("link closed")?;
    }
    let plan = station.patrols.plan(cells, &[], None)?;
    tracing::info!(
        plan = %plan.plan_id,
        sorties = plan.sorties.len(),
        photos = plan.photos,
        altitude_m = plan.altitude_m,
        drones,
        "Demo patrol planned."
    );
    station.patrols.fly(&plan.plan_id)?;
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let mut last_line = Instant::now();
    loop {
        let runs: Vec<_> = station.patrols.runs().into_iter().filter(|r| r.plan_id == plan.plan_id).collect();
        let over = runs.iter().all(|r| matches!(r.state, MissionState::Completed | MissionState::Aborted));
        let stats = station.frames.stats();
        let hazards = station.hazards.open_hazards().await.map(|h| h.len()).unwrap_or(0);
        let flying = runs.iter().filter(|r| r.state == MissionState::Running).count();
        let done = runs.iter().filter(|r| matches!(r.state, MissionState::Completed | MissionState::Aborted)).count();
        let line = format!(
            "drones flying {flying}/{drones} · sorties done {done}/{} · photos taken {} processed {} dropped {} · open hazards {hazards}",
            runs.len(),
            stats.captures_announced,
            stats.processed,
            stats.dropped
        );
        if let Some(bar) = &bar {
            if bar.is_hidden() {
                // Not a terminal (CI logs): a line every 10 s instead of a spinner.
                if last_line.elapsed() >= Duration::from_secs(10) {
                    println!("{line}");
                    last_line = Instant::now();
                }
            } else {
                bar.set_message(line);
            }
        }
        // Every announced photo is queued, dropped or failed; every queued one is processed.
        let drained =
            stats.queued + stats.dropped + stats.failed >= stats.captures_announced && stats.processed >= stats.queued;
        if over && drained {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

/// Subscribes to the hazard topic like a command center would and forwards every event with its receive time.
async fn listen_events(
    host: String,
    port: u16,
    topic: String,
    events: mpsc::Sender<ReceivedEvent>,
    cancel: CancellationToken,
) {
    let mut options = MqttOptions::new(format!("patrol-demo-observer-{}", std::process::id()), host, port);
    options.set_keep_alive(Duration::from_secs(10));
    // A persistent session: events published while the broker was down or the observer reconnecting still come.
    options.set_clean_session(false);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut subscribed = false;
    loop {
        let polled = tokio::select! {
            () = cancel.cancelled() => return,
            polled = eventloop.poll() => polled,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if !(subscribed && ack.session_present) {
                    match client.subscribe(topic.clone(), QoS::AtLeastOnce).await {
                        Ok(()) => subscribed = true,
                        Err(error) => tracing::warn!(%error, "Demo observer cannot subscribe."),
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                match serde_json::from_slice::<HazardEvent>(&publish.payload) {
                    Ok(event) => {
                        let _ = events.send(ReceivedEvent { event, at: SystemTime::now() }).await;
                    }
                    Err(error) => tracing::warn!(%error, "Demo observer got an unreadable hazard event."),
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn kind_of(name: &str) -> Option<HazardKind> {
    match name {
        "fire" => Some(HazardKind::Fire),
        "gas" => Some(HazardKind::Gas),
        "illegal_structure" | "structure" => Some(HazardKind::Structure),
        _ => None,
    }
}

/// Matches the published hazards (their latest state, de-duplicated by event id) against the truth.
fn score(truth: &WorldTruth, events: &[ReceivedEvent], cell_at: impl Fn(GeoPoint) -> Option<String>) -> DemoSummary {
    let mut seen_events = std::collections::BTreeSet::new();
    let mut hazards: BTreeMap<String, crate::hazard::Hazard> = BTreeMap::new();
    let mut new_events = 0;
    for e in events {
        if !seen_events.insert(e.event.event_id.clone()) {
            continue;
        }
        if e.event.event_type == HazardEventType::New {
            new_events += 1;
        }
        hazards.insert(e.event.after.id.clone(), e.event.after.clone());
    }
    let mut planted: Vec<(String, HazardKind, String, GeoPoint)> = truth
        .hazards
        .iter()
        .filter_map(|h| Some((h.id.clone(), kind_of(&h.kind)?, h.label.clone(), GeoPoint::new(h.lat, h.lon))))
        .collect();
    planted.extend(
        truth.leaks.iter().map(|l| (l.id.clone(), HazardKind::Gas, "CH4".to_owned(), GeoPoint::new(l.lat, l.lon))),
    );
    let mut matched = std::collections::BTreeSet::new();
    let mut results = Vec::new();
    let mut per_kind: BTreeMap<String, KindScore> = BTreeMap::new();
    for (id, kind, label, point) in &planted {
        let best = hazards
            .values()
            .filter(|h| h.kind == *kind)
            .map(|h| (h, geodesic_distance_m(h.position.point(), *point)))
            .filter(|(_, d)| *d <= MATCH_RADIUS_M)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let score = per_kind.entry(kind.as_str().to_owned()).or_default();
        score.planted += 1;
        if best.is_some() {
            score.found += 1;
        }
        if let Some((h, _)) = best {
            matched.insert(h.id.clone());
        }
        results.push(PlantedResult {
            id: id.clone(),
            kind: *kind,
            label: label.clone(),
            hazard_id: best.map(|(h, _)| h.id.clone()),
            error_m: best.map(|(_, d)| d),
            grid_cell: best.and_then(|(h, _)| h.grid_cell.clone()),
            true_cell: cell_at(*point),
            confidence: best.map(|(h, _)| h.confidence),
            sightings: best.map(|(h, _)| h.detections),
        });
    }
    let false_alarms = hazards
        .values()
        .filter(|h| !matched.contains(&h.id))
        .map(|h| FalseAlarm {
            hazard_id: h.id.clone(),
            kind: h.kind,
            label: h.label.clone(),
            confidence: h.confidence,
            lat_deg: h.position.lat_deg,
            lon_deg: h.position.lon_deg,
            in_empty_area: h.position.lat_deg < truth.empty_quadrant.lat_below
                && h.position.lon_deg < truth.empty_quadrant.lon_below,
            sightings: h.detections,
        })
        .collect();
    let mut errors: Vec<f64> = results.iter().filter_map(|r| r.error_m).collect();
    errors.sort_by(f64::total_cmp);
    DemoSummary {
        drones: 0,
        speedup: 0.0,
        cells: Vec::new(),
        sorties_completed: 0,
        sorties_planned: 0,
        photos_announced: 0,
        photos_processed: 0,
        photos_dropped: 0,
        photos_failed: 0,
        photos_unreadable: 0,
        new_events,
        events_total: seen_events.len(),
        per_kind,
        planted: results,
        false_alarms,
        median_error_m: median(&errors),
        worst_error_m: errors.last().copied(),
        latency_p50_s: None,
        latency_p99_s: None,
        latency_max_s: None,
        wall_s: 0.0,
        model_sha256: String::new(),
    }
}

fn median(sorted: &[f64]) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] })
}

/// (p50, p99, max) of the values.
fn percentiles(mut values: Vec<f64>) -> (Option<f64>, Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None, None);
    }
    values.sort_by(f64::total_cmp);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (median(&values), Some(at(0.99)), values.last().copied())
}

impl DemoSummary {
    /// The summary as a few readable lines.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let fmt = |v: Option<f64>, unit: &str| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} {unit}"));
        out.push_str(&format!(
            "Demo patrol: {} drones, speed-up {}x, cells {}, {} of {} sorties completed, {:.0} s wall\n",
            self.drones,
            self.speedup,
            self.cells.join(" "),
            self.sorties_completed,
            self.sorties_planned,
            self.wall_s
        ));
        out.push_str(&format!(
            "Photos: {} taken, {} processed, {} dropped (detector behind), {} not fetched, {} unreadable\n",
            self.photos_announced,
            self.photos_processed,
            self.photos_dropped,
            self.photos_failed,
            self.photos_unreadable
        ));
        out.push_str(&format!("Hazard events received: {} (`new`: {})\n", self.events_total, self.new_events));
        for (kind, score) in &self.per_kind {
            out.push_str(&format!("  {kind:<10} found {} of {} planted\n", score.found, score.planted));
        }
        for p in &self.planted {
            out.push_str(&format!(
                "  {:<10} {:<14} {}\n",
                p.id,
                p.label,
                match (&p.hazard_id, p.error_m) {
                    (Some(id), Some(e)) => format!(
                        "found as {id}, {e:.1} m off, cell {} (truth {})",
                        p.grid_cell.as_deref().unwrap_or("-"),
                        p.true_cell.as_deref().unwrap_or("-")
                    ),
                    _ => "missed".to_owned(),
                }
            ));
        }
        let in_empty = self.false_alarms.iter().filter(|f| f.in_empty_area).count();
        out.push_str(&format!("False alarms: {} ({in_empty} in the empty quadrant)\n", self.false_alarms.len()));
        for f in &self.false_alarms {
            out.push_str(&format!(
                "  {} {} {:.2} at {:.6},{:.6}\n",
                f.hazard_id, f.label, f.confidence, f.lat_deg, f.lon_deg
            ));
        }
        out.push_str(&format!(
            "Position error: median {}, worst {}\n",
            fmt(self.median_error_m, "m"),
            fmt(self.worst_error_m, "m")
        ));
        out.push_str(&format!(
            "Frame -> alert latency: p50 {}, p99 {}, worst {}\n",
            fmt(self.latency_p50_s, "s"),
            fmt(self.latency_p99_s, "s"),
            fmt(self.latency_max_s, "s")
        ));
        out
    }
}

/// The repository's `data/` folder: next to the current directory's `models/`, or found upwards from the
/// executable (so `target/release/patrol demo` works from anywhere in a checkout).
pub fn find_data_dir() -> Option<PathBuf> {
    let has_world = |dir: &Path| dir.join("demo-world/world.json").is_file();
    let cwd = std::env::current_dir().ok()?;
    let exe = std::env::current_exe().ok()?;
    for dir in cwd.ancestors().chain(exe.ancestors()) {
        let candidate = dir.join("data");
        if has_world(&candidate) {
            return Some(candidate);
        }
    }
    None
}
