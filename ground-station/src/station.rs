//! The running ground station (`patrol serve`, `patrol demo`): start order, the handles every part shares, and
//! the shutdown order.
//!
//! Start: storage -> MQTT (embedded broker first when configured) -> hazard service -> drone links -> detector
//! and frame pipeline -> patrols -> web console. Shutdown (SIGINT/SIGTERM or [`Station::shutdown`]): stop taking
//! frames and drone events, let the queued frames through the detector, then MQTT publishes `offline` and
//! disconnects, the web server drains, the links close last. Shutdown never commands a drone.

pub mod alarms;
pub mod fleet;
pub mod frames;
pub mod patrols;
pub mod push;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use inference::{Detector, DetectorConfig, HazardMap, LabelTarget, OnnxDetector, TileConfig};
use mission_planner::camera::CameraSpec;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AuthConfig, AuthService};
use crate::config::{BrokerSettings, InferenceSettings, Settings};
use crate::district::District;
use crate::georef::Georeferencer;
use crate::hazard::{AlarmKind, HazardKind};
use crate::hazard_service::{self, HazardHandle};
use crate::mqtt::{self, ConnectOptions, MqttHandle};
use crate::storage::{EvidenceStore, StorageHandle};
use crate::web::{self, AppState, ConsoleSettings};

use self::alarms::Alarms;
use self::fleet::Fleet;
use self::frames::{Frames, FramesConfig};
use self::patrols::{PatrolDeps, Patrols, PlannerInputs};

/// How long shutdown waits for the tasks before giving up on them.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// How often old evidence is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Which mission each drone is flying now: written by patrols, read by the frame pipeline to tag frames.
#[derive(Debug, Clone, Default)]
pub struct ActiveMissions(Arc<Mutex<BTreeMap<String, String>>>);

impl ActiveMissions {
    /// The mission `drone_id` flies now.
    pub fn current(&self, drone_id: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(drone_id).cloned()
    }

    /// Sets (or clears) the mission of `drone_id`.
    pub fn set(&self, drone_id: &str, mission_id: Option<&str>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match mission_id {
            Some(id) => map.insert(drone_id.to_owned(), id.to_owned()),
            None => map.remove(drone_id),
        };
    }
}

/// Choices the caller makes beyond the config.
#[derive(Default)]
pub struct StartOptions {
    /// Use this detector instead of loading `inference.model` (tests).
    pub detector: Option<Box<dyn Detector>>,
    /// Serve the web console (and the push endpoint).
    pub web: bool,
}

/// The running station.
pub struct Station {
    /// Settings it runs with.
    pub settings: Settings,
    /// Storage.
    pub storage: StorageHandle,
    /// MQTT publisher.
    pub mqtt: MqttHandle,
    /// Hazard tracking.
    pub hazards: HazardHandle,
    /// Drone links.
    pub fleet: Fleet,
    /// Frame pipeline.
    pub frames: Frames,
    /// Planning and flying.
    pub patrols: Patrols,
    /// The district.
    pub district: Arc<District>,
    /// Console users.
    pub auth: AuthService,
    /// Where the console listens, when it runs.
    pub web_addr: Option<SocketAddr>,
    /// Identity of the detector's model.
    pub model: inference::ModelInfo,
    /// Faults an operator must see.
    pub alarms: Alarms,
    tasks: TaskTracker,
    /// Cancelled first: frame intake, links' listeners, patrol watchers.
    intake: CancellationToken,
    /// Cancelled second: the rest.
    cancel: CancellationToken,
}

impl std::fmt::Debug for Station {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Station").field("web_addr", &self.web_addr).finish_non_exhaustive()
    }
}

impl Station {
    /// Starts everything the settings describe.
    ///
    /// # Errors
    /// Anything that prevents the start, with what to do about it: an unreadable district or planner file, a
    /// model that does not load (run `scripts/setup-onnxruntime.sh`), a port in use, a database that cannot be
    /// opened.
    pub async fn start(settings: Settings, options: StartOptions) -> anyhow::Result<Self> {
        let tasks = TaskTracker::new();
        let cancel = CancellationToken::new();
        let intake = CancellationToken::new();

        std::fs::create_dir_all(&settings.station.data_dir)
            .with_context(|| format!("creating the data directory {}", settings.station.data_dir.display()))?;
        // The storage thread is detached: it ends when the last `StorageHandle` is dropped.
        let (storage, _storage_thread) = StorageHandle::open(&settings.storage.database)
            .with_context(|| format!("opening the database {}", settings.storage.database.display()))?;

        if let BrokerSettings::Embedded { listen } = &settings.mqtt.broker {
            mqtt::start_embedded_broker(*listen).context("starting the embedded MQTT broker")?;
            tracing::info!(%listen, "Embedded MQTT broker listening.");
        }
        let options_mqtt = ConnectOptions::from_settings(&settings.mqtt).context("MQTT settings")?;
        let mqtt = mqtt::spawn(options_mqtt, storage.clone(), &tasks, cancel.clone());

        let district = Arc::new(
            District::load(
                settings.district.cells.as_deref(),
                settings.district.addresses.as_deref(),
                settings.district.max_address_distance_m,
            )
            .context("loading the district")?,
        );
        tracing::info!(cells = district.cell_count(), addresses = district.address_count(), "District loaded.");
        let hazards = hazard_service::start(
            settings.tracker.clone(),
            district.clone(),
            storage.clone(),
            mqtt.clone(),
            &tasks,
            cancel.clone(),
        )
        .await
        .context("resuming the hazard tracker")?;

        let inputs = match (&settings.planner, &settings.district.cells) {
            (Some(planner), Some(cells)) => Some(PlannerInputs::load(planner, cells)?),
            (Some(_), None) => anyhow::bail!("the planner needs grid cells: set district.cells"),
            (None, _) => None,
        };
        let default_camera: Option<CameraSpec> = inputs.as_ref().map(|i| i.camera.clone());
        let fleet =
            Fleet::start(&settings.drones, default_camera.as_ref(), mqtt.clone(), &tasks, intake.clone()).await?;

        let detector: Box<dyn Detector> = match options.detector {
            Some(detector) => detector,
            None => Box::new(load_detector(&settings.inference)?),
        };
        let model = detector.model_info().clone();
        tracing::info!(version = %model.version, sha256 = %model.sha256, "Detector ready.");
        let active = ActiveMissions::default();
        let evidence = EvidenceStore::new(
            settings.storage.evidence_dir.clone(),
            settings.storage.retention,
            settings.storage.max_evidence_bytes,
        );
        let alarms = Alarms::new(settings.station.id.clone(), storage.clone(), mqtt.clone());
        check_evidence_folder(&evidence, &alarms).await;
        let frames = frames::start(
            detector,
            FramesConfig {
                inference: settings.inference.clone(),
                georef: Georeferencer { anchor: settings.georef.box_anchor, errors: settings.georef.pose_errors },
                gas: settings.gas_sensor.clone(),
                public_url: settings.web.public_url.clone(),
            },
            frames::FrameDeps {
                storage: storage.clone(),
                evidence: evidence.clone(),
                hazards: hazards.clone(),
                district: district.clone(),
                fleet: fleet.clone(),
                missions: active.clone(),
                alarms: alarms.clone(),
            },
            &tasks,
            intake.clone(),
            cancel.clone(),
        )
        .context("starting the detector thread")?;
        tasks.spawn(prune_evidence(evidence, cancel.clone()));

        let patrols = Patrols::new(
            PatrolDeps {
                inputs,
                fleet: fleet.clone(),
                storage: storage.clone(),
                hazards: hazards.clone(),
                mqtt: mqtt.clone(),
                active,
            },
            &tasks,
            intake.clone(),
        );
        let resumed = patrols.resume().await?;
        if resumed > 0 {
            tracing::info!(missions = resumed, "Unfinished missions resumed from storage.");
        }

        let auth = AuthService::open(&settings.storage.database, AuthConfig::default())
            .with_context(|| format!("opening the user database {}", settings.storage.database.display()))?;
        let mut station = Self {
            settings,
            storage,
            mqtt,
            hazards,
            fleet,
            frames,
            patrols,
            district,
            auth,
            web_addr: None,
            model,
            alarms,
            tasks,
            intake,
            cancel,
        };
        if options.web {
            station.web_addr = Some(station.start_web().await?);
        }
        Ok(station)
    }

    async fn start_web(&self) -> anyhow::Result<SocketAddr> {
        let listen = self.settings.web.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen} (web.listen): is another patrol running?"))?;
        let addr = listener.local_addr().context("reading the web listen address")?;
        let backend = crate::web::station_backend::StationBackend::start(self, &self.tasks, self.cancel.clone());
        let state =
            AppState::new(Arc::new(backend), self.auth.clone(), ConsoleSettings::default(), self.cancel.clone());
        let push = push::router(push::PushState {
            frames: self.frames.clone(),
            fleet: self.fleet.clone(),
            token: self.settings.web.push_token.clone(),
            missions_of: self.patrols.clone(),
        });
        let app = web::router(state.clone()).merge(push);
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            if let Err(error) = web::serve_router(listener, app, state, cancel).await {
                tracing::error!(%error, "The web console stopped.");
            }
        });
        tracing::info!(url = %format!("http://{addr}/"), "Web console listening.");
        Ok(addr)
    }

    /// Waits for SIGINT or SIGTERM.
    pub async fn wait_for_signal() {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::warn!(%error, "Cannot listen for SIGTERM; only Ctrl-C stops the station.");
                    let _ = ctrl_c.await;
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
    }

    /// Stops in order: frame intake and drone listeners, then (after the queued frames are through) MQTT, the web
    /// server and the rest. Drones are not commanded. Waits at most [`SHUTDOWN_DEADLINE`].
    pub async fn shutdown(self) {
        tracing::info!("Shutting down: no new frames; draining the detector queue.");
        self.intake.cancel();
        // The queued frames finish while MQTT still runs: their events go out now, or stay in the outbox.
        let drained = async {
            loop {
                let stats = self.frames.stats();
                if stats.processed >= stats.queued {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_DEADLINE, drained).await.is_err() {
            tracing::warn!("Frames still queued at the deadline; their captures are not recorded.");
        }
        self.cancel.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.tasks.wait()).await.is_err() {
            tracing::warn!(tasks = self.tasks.len(), "Tasks still running at the shutdown deadline; leaving them.");
        }
        // The storage thread ends by itself when its last handle is gone.
        tracing::info!("Stopped.");
    }
}

/// Loads the ONNX model with the configured labels, thresholds and tiling.
///
/// # Errors
/// The model or the ONNX Runtime library cannot be loaded (the message says which script sets it up).
pub fn load_detector(settings: &InferenceSettings) -> anyhow::Result<OnnxDetector> {
    let hazard_map = HazardMap(
        settings
            .hazard_map
            .iter()
            .map(|(label, kind)| {
                let target = match kind {
                    HazardKind::Fire => LabelTarget::Fire,
                    HazardKind::Gas => LabelTarget::Gas,
                    HazardKind::Structure => LabelTarget::IllegalStructure,
                };
                (label.clone(), target)
            })
            .collect(),
    );
    #[allow(clippy::cast_possible_truncation)]
    let class_thresholds = settings.thresholds.iter().map(|(label, t)| (label.clone(), *t as f32)).collect();
    #[allow(clippy::cast_possible_truncation)]
    let config = DetectorConfig {
        model_path: settings.model.clone(),
        hazard_map,
        score_threshold: settings.default_threshold as f32,
        class_thresholds,
        threads: settings.threads as usize,
        tiling: settings.tile_px.map(|tile_px| TileConfig {
            tile_px,
            overlap_px: tile_px / 5,
            full_view: settings.full_view,
        }),
        ..DetectorConfig::default()
    };
    OnnxDetector::load(config).with_context(|| format!("loading the detector model {}", settings.model.display()))
}

/// Publishes at start whether the evidence folder takes new files, so a retained alarm from an earlier run does
/// not outlive the fault (and a disk that is full already is reported before the first hazard).
async fn check_evidence_folder(evidence: &EvidenceStore, alarms: &Alarms) {
    let store = evidence.clone();
    let checked = tokio::task::spawn_blocking(move || store.check_writable()).await;
    let dir = evidence.dir().display();
    match checked {
        Ok(Ok(())) => {
            alarms
                .publish_state(AlarmKind::EvidenceStorage, false, format!("The evidence folder {dir} is writable."))
                .await;
        }
        Ok(Err(error)) => {
            alarms.publish_state(AlarmKind::EvidenceStorage, true, frames::evidence_alarm_message(&error)).await;
        }
        Err(error) => tracing::error!(%error, "The evidence folder check failed."),
    }
}

async fn prune_evidence(evidence: EvidenceStore, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let store = evidence.clone();
        match tokio::task::spawn_blocking(move || store.prune(std::time::SystemTime::now())).await {
            Ok(Ok(report)) if report.captures_removed > 0 => {
                tracing::info!(removed = report.captures_removed, bytes = report.bytes_freed, "Old evidence pruned.");
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "Cannot prune the evidence folder."),
            Err(error) => tracing::error!(%error, "The evidence pruning task failed."),
        }
    }
}
