//! Patrols: plan over grid cells (mission-planner), give each planned drone a real one standing at its launch
//! point, validate and upload each sortie, fly it (arm, start, watch progress, land), publish progress on
//! `<prefix>/missions/<id>` and, when a sortie is over, end the hazards of its cells that were not seen again.
//!
//! A planned drone gets the configured drone whose home is within [`LAUNCH_MATCH_M`] of its launch point: a
//! mission planned from one launch point is never flown from another (its transit legs were routed around the
//! no-fly zones from there).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use firmware_bridge::vehicle::VehicleHandle;
use mission_planner::area::{self, GridCell, LaunchPoint, NoFlyZone};
use mission_planner::camera::CameraSpec;
use mission_planner::geo::{GeoPoint, geodesic_distance_m};
use mission_planner::mission::{Battery, FlightModel, Limits, Mission};
use mission_planner::mission_item::MissionKind;
use mission_planner::patrol::{self, AltitudeTarget, PatrolRequest, Sortie, UncoveredCell};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::PlannerSettings;
use crate::hazard::{MissionProgress, MissionState};
use crate::hazard_service::HazardHandle;
use crate::mqtt::MqttHandle;
use crate::storage::{MissionRecord, StorageHandle};

use super::ActiveMissions;
use super::fleet::Fleet;

/// A drone counts as standing at a launch point within this distance of it.
pub const LAUNCH_MATCH_M: f64 = 60.0;
/// How long arming may be refused (position estimate not ready) before a sortie gives up.
const ARM_PATIENCE: Duration = Duration::from_secs(120);
/// How long a sortie may take before the watcher gives up on it (the drone is left alone).
const SORTIE_PATIENCE: Duration = Duration::from_secs(3 * 3600);

/// What the planner plans with.
#[derive(Debug, Clone)]
pub struct PlannerInputs {
    /// The district's grid cells.
    pub cells: Vec<GridCell>,
    /// No-fly zones.
    pub zones: Vec<NoFlyZone>,
    /// Launch points.
    pub launch_points: Vec<LaunchPoint>,
    /// Survey camera.
    pub camera: CameraSpec,
    /// Overlaps, speed, battery, ceiling.
    pub settings: PlannerSettings,
}

impl PlannerInputs {
    /// Reads the cells, zones, launch points and camera.
    ///
    /// # Errors
    /// Unreadable or invalid files, named in the message.
    pub fn load(settings: &PlannerSettings, cells: &Path) -> anyhow::Result<Self> {
        let read_cells = area::read_cells(cells).with_context(|| format!("reading grid cells {}", cells.display()))?;
        let zones = match &settings.no_fly_zones {
            Some(path) => area::read_zones(path).with_context(|| format!("reading no-fly zones {}", path.display()))?,
            None => Vec::new(),
        };
        let launch_points = area::read_launch_points(&settings.launch_points)
            .with_context(|| format!("reading launch points {}", settings.launch_points.display()))?;
        let camera = CameraSpec::read_toml(&settings.camera)
            .with_context(|| format!("reading the camera {}", settings.camera.display()))?;
        Ok(Self { cells: read_cells, zones, launch_points, camera, settings: settings.clone() })
    }

    /// The planner request for `cell_ids` (all cells when empty) flown by `drones` drones.
    ///
    /// # Errors
    /// [`PatrolError::UnknownCell`].
    pub fn request(
        &self,
        cell_ids: &[String],
        drones: usize,
        gsd_m: Option<f64>,
    ) -> Result<PatrolRequest, PatrolError> {
        for id in cell_ids {
            if !self.cells.iter().any(|c| &c.id == id) {
                return Err(PatrolError::UnknownCell(id.clone()));
            }
        }
        let cells: Vec<GridCell> =
            self.cells.iter().filter(|c| cell_ids.is_empty() || cell_ids.contains(&c.id)).cloned().collect();
        let s = &self.settings;
        let mut req = PatrolRequest::new(
            cells,
            self.launch_points.clone(),
            self.camera.clone(),
            AltitudeTarget::GroundSampleDistance(gsd_m.unwrap_or(s.gsd_m)),
        );
        req.zones = self.zones.clone();
        req.drones = drones.max(1);
        req.front_overlap = s.front_overlap;
        req.side_overlap = s.side_overlap;
        req.flight = FlightModel { cruise_speed_mps: s.cruise_speed_mps, ..FlightModel::default() };
        req.battery = Battery { endurance_s: s.battery_endurance.as_secs_f64(), reserve_fraction: s.battery_reserve };
        req.max_alt_m = s.max_alt_m;
        Ok(req)
    }
}

/// Why a patrol request failed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatrolError {
    /// No `[planner]` configured.
    #[error("no planner is configured: set planner.launch_points and planner.camera in the config")]
    NoPlanner,
    /// A cell id not in the district.
    #[error("grid cell `{0}` is not in the district's cells")]
    UnknownCell(String),
    /// A drone id not in the config.
    #[error("drone `{0}` is not configured ([[drones]] in the config)")]
    UnknownDrone(String),
    /// No drones to plan for.
    #[error("no drones to fly: configure [[drones]] or name some")]
    NoDrones,
    /// The planner refused.
    #[error("the patrol cannot be planned: {0}")]
    Plan(String),
    /// A plan id that does not exist.
    #[error("plan `{0}` not found; plan again")]
    UnknownPlan(String),
    /// A drone is not at a launch point a sortie starts from.
    #[error(
        "no free drone stands at launch point `{launch_id}` (within {LAUNCH_MATCH_M} m) for planned drone {planned}: \
         move one there, or plan with fewer drones"
    )]
    NoDroneAtLaunch {
        /// The launch point.
        launch_id: String,
        /// The planner's drone number.
        planned: usize,
    },
    /// A sortie fails validation.
    #[error("mission {mission_id} fails validation, not uploaded: {violations}")]
    Invalid {
        /// Mission.
        mission_id: String,
        /// What is wrong.
        violations: String,
    },
}

/// One sortie as planned for a real drone.
#[derive(Debug, Clone)]
pub struct PlannedSortie {
    /// Mission id (`<plan id>-<drone id>-<n>`).
    pub mission_id: String,
    /// The drone.
    pub drone_id: String,
    /// Launch point id.
    pub launch_id: String,
    /// The planner's sortie.
    pub sortie: Sortie,
}

/// A planned patrol.
#[derive(Debug, Clone)]
pub struct PlannedPatrol {
    /// Plan id.
    pub plan_id: String,
    /// Flight altitude above the launch point, metres.
    pub altitude_m: f64,
    /// Sorties, each drone's in flying order.
    pub sorties: Vec<PlannedSortie>,
    /// Cells not (fully) covered, with why.
    pub uncovered: Vec<UncoveredCell>,
    /// Photos expected.
    pub photos: usize,
    /// Total flight time, seconds.
    pub total_flight_time_s: f64,
    /// The patrol's finish time, seconds after start.
    pub finish_s: f64,
}

/// A sortie's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct MissionRun {
    /// Mission id.
    pub mission_id: String,
    /// Drone.
    pub drone_id: String,
    /// Plan.
    pub plan_id: String,
    /// The flown route (home, waypoints, home).
    pub route: Vec<GeoPoint>,
    /// Grid cells it flies over.
    pub cells: Vec<String>,
    /// Uploaded items.
    pub total_items: u32,
    /// Index (0-based, in uploaded items) of the item being flown.
    pub current_item: u32,
    /// State.
    pub state: MissionState,
    /// When it started flying.
    pub started: Option<SystemTime>,
}

/// The patrol service. Cheap to clone.
#[derive(Clone)]
pub struct Patrols {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Patrols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patrols").finish_non_exhaustive()
    }
}

struct Inner {
    inputs: Option<PlannerInputs>,
    fleet: Fleet,
    storage: StorageHandle,
    hazards: HazardHandle,
    mqtt: MqttHandle,
    active: ActiveMissions,
    book: Mutex<Book>,
    updates: broadcast::Sender<MissionRun>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

#[derive(Default)]
struct Book {
    next_plan: u64,
    plans: BTreeMap<String, PlannedPatrol>,
    runs: BTreeMap<String, MissionRun>,
    /// Sorties taken back from storage after a restart: their plan is gone from memory, their record is not.
    resumed: BTreeMap<String, MissionRecord>,
}

/// The parts patrols work with.
pub struct PatrolDeps {
    /// Planner inputs, if a planner is configured.
    pub inputs: Option<PlannerInputs>,
    /// The drones.
    pub fleet: Fleet,
    /// Mission records and the outbox.
    pub storage: StorageHandle,
    /// Ends hazards after a sortie.
    pub hazards: HazardHandle,
    /// Told about outbox changes.
    pub mqtt: MqttHandle,
    /// Which mission each drone flies.
    pub active: ActiveMissions,
}

impl Patrols {
    /// The service; sorties run on `tasks` and stop watching on `cancel` (the drones are never commanded at
    /// shutdown).
    pub fn new(deps: PatrolDeps, tasks: &TaskTracker, cancel: CancellationToken) -> Self {
        let (updates, _) = broadcast::channel(256);
        Self {
            inner: Arc::new(Inner {
                inputs: deps.inputs,
                fleet: deps.fleet,
                storage: deps.storage,
                hazards: deps.hazards,
                mqtt: deps.mqtt,
                active: deps.active,
                book: Mutex::new(Book::default()),
                updates,
                tasks: tasks.clone(),
                cancel,
            }),
        }
    }

    /// Takes back, after a restart, the sorties storage says were uploaded, running or paused: they are listed
    /// again, frames are tagged with them, and a running one is followed to its landing as if the station had
    /// never stopped (the drone flies its uploaded mission on its own meanwhile). Plan ids go on after the highest
    /// stored one. A plan's later sorties that were never uploaded were not stored: plan those cells again.
    ///
    /// # Errors
    /// The stored missions cannot be read.
    pub async fn resume(&self) -> anyhow::Result<usize> {
        let records = self.inner.storage.call(|db| db.missions()).await.context("reading the stored missions")?;
        let mut resumed = Vec::new();
        {
            let mut book = self.book();
            let highest = records.iter().filter_map(|r| plan_number(&r.id)).max().unwrap_or(0);
            book.next_plan = book.next_plan.max(highest);
            for record in records {
                if !matches!(record.state, MissionState::Uploaded | MissionState::Running | MissionState::Paused) {
                    continue;
                }
                let run = match resumed_run(&record) {
                    Ok(run) => run,
                    Err(error) => {
                        tracing::error!(mission = %record.id, error = format!("{error:#}"), "Cannot resume a stored mission; it stays as stored.");
                        continue;
                    }
                };
                book.resumed.insert(record.id.clone(), record);
                book.runs.insert(run.mission_id.clone(), run.clone());
                resumed.push(run);
            }
        }
        for run in &resumed {
            tracing::info!(mission = %run.mission_id, drone = %run.drone_id, state = ?run.state, "Mission resumed from storage.");
            if matches!(run.state, MissionState::Running | MissionState::Paused) {
                self.inner.active.set(&run.drone_id, Some(&run.mission_id));
                let watcher = self.clone();
                let (drone_id, mission_id) = (run.drone_id.clone(), run.mission_id.clone());
                let started = run.started.unwrap_or_else(SystemTime::now);
                self.inner.tasks.spawn(async move { watcher.follow_resumed(drone_id, mission_id, started).await });
            }
        }
        Ok(resumed.len())
    }

    /// Waits for a resumed sortie's drone to be heard, then follows it like one started here.
    async fn follow_resumed(self, drone_id: String, mission_id: String, started: SystemTime) {
        let Some(drone) = self.inner.fleet.drone(&drone_id).cloned() else {
            tracing::warn!(mission = %mission_id, drone = %drone_id, "The drone of a resumed mission is no longer configured.");
            self.finish(&mission_id, MissionState::Aborted, started).await;
            return;
        };
        let Some(bridge) = self.inner.fleet.bridges().get(drone.bridge).cloned() else { return };
        let heard = tokio::select! {
            () = self.inner.cancel.cancelled() => return,
            heard = bridge.wait_for_vehicle(drone.system_id, SORTIE_PATIENCE) => heard,
        };
        match heard {
            Ok(vehicle) => self.watch_sortie(vehicle, mission_id, started, true).await,
            Err(error) => {
                tracing::warn!(mission = %mission_id, %error, "The drone of a resumed mission was not heard again.");
                self.finish(&mission_id, MissionState::Aborted, started).await;
            }
        }
    }

    /// The mission `drone_id` flies now.
    pub fn active_mission(&self, drone_id: &str) -> Option<String> {
        self.inner.active.current(drone_id)
    }

    /// The planner inputs, if a planner is configured.
    pub fn inputs(&self) -> Option<&PlannerInputs> {
        self.inner.inputs.as_ref()
    }

    /// Progress updates of every sortie (bounded; a slow reader gets `Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<MissionRun> {
        self.inner.updates.subscribe()
    }

    /// Every sortie planned, uploaded or flown, by mission id.
    pub fn runs(&self) -> Vec<MissionRun> {
        self.book().runs.values().cloned().collect()
    }

    /// A plan by id.
    pub fn planned(&self, plan_id: &str) -> Option<PlannedPatrol> {
        self.book().plans.get(plan_id).cloned()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.inner.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plans a patrol over `cell_ids` (all cells when empty) for `drone_ids` (every configured drone when
    /// empty), matching each planned drone to a real one standing at its launch point. Nothing is sent yet.
    ///
    /// # Errors
    /// [`PatrolError`]: no planner, unknown cells or drones, a plan that cannot be made, no drone at a launch
    /// point.
    pub fn plan(
        &self,
        cell_ids: &[String],
        drone_ids: &[String],
        gsd_m: Option<f64>,
    ) -> Result<PlannedPatrol, PatrolError> {
        let inputs = self.inner.inputs.as_ref().ok_or(PatrolError::NoPlanner)?;
        let fleet = &self.inner.fleet;
        for id in drone_ids {
            if fleet.drone(id).is_none() {
                return Err(PatrolError::UnknownDrone(id.clone()));
            }
        }
        let drones: Vec<String> = if drone_ids.is_empty() {
            fleet.drones().iter().map(|d| d.id.clone()).collect()
        } else {
            drone_ids.to_vec()
        };
        if drones.is_empty() {
            return Err(PatrolError::NoDrones);
        }
        let homes: Vec<(String, Option<GeoPoint>)> = drones
            .iter()
            .map(|id| {
                let home = fleet.vehicle(id).and_then(|v| {
                    let state = v.state();
                    state.home.or(state.position).map(|p| p.point)
                });
                (id.clone(), home)
            })
            .collect();
        let req = inputs.request(cell_ids, drones.len(), gsd_m)?;
        let plan = patrol::plan_patrol(&req).map_err(|error| PatrolError::Plan(error.to_string()))?;
        let mut book = self.book();
        book.next_plan += 1;
        let plan_id = format!("p{}", book.next_plan);
        let assigned = assign_drones(&plan.sorties, &inputs.launch_points, &homes)?;
        let mut sorties = Vec::with_capacity(plan.sorties.len());
        let mut per_drone: BTreeMap<&str, usize> = BTreeMap::new();
        for sortie in &plan.sorties {
            let drone_id = &assigned[&sortie.drone];
            let n = per_drone.entry(drone_id).or_default();
            *n += 1;
            sorties.push(PlannedSortie {
                mission_id: format!("{plan_id}-{drone_id}-{n}"),
                drone_id: drone_id.clone(),
                launch_id: sortie.launch_id.clone(),
                sortie: sortie.clone(),
            });
        }
        let totals = plan.totals();
        let planned = PlannedPatrol {
            plan_id: plan_id.clone(),
            altitude_m: plan.survey.altitude_m,
            sorties,
            uncovered: plan.uncovered.clone(),
            photos: totals.photos,
            total_flight_time_s: totals.flight_time_s,
            finish_s: totals.finish_s,
        };
        for s in &planned.sorties {
            let run = MissionRun {
                mission_id: s.mission_id.clone(),
                drone_id: s.drone_id.clone(),
                plan_id: plan_id.clone(),
                route: s.sortie.route.clone(),
                cells: s.sortie.cells.clone(),
                total_items: u32::try_from(s.sortie.mission.mission_items().len()).unwrap_or(u32::MAX),
                current_item: 0,
                state: MissionState::Planned,
                started: None,
            };
            book.runs.insert(run.mission_id.clone(), run);
        }
        book.plans.insert(plan_id, planned.clone());
        Ok(planned)
    }

    fn limits(&self) -> Limits {
        let Some(inputs) = &self.inner.inputs else { return Limits::default() };
        let s = &inputs.settings;
        Limits {
            max_alt_m: s.max_alt_m,
            exclusions: inputs.zones.clone(),
            flight: FlightModel { cruise_speed_mps: s.cruise_speed_mps, ..FlightModel::default() },
            battery: Some(Battery {
                endurance_s: s.battery_endurance.as_secs_f64(),
                reserve_fraction: s.battery_reserve,
            }),
            ..Limits::default()
        }
    }

    /// Validates and uploads sortie `mission_id` to its drone.
    ///
    /// # Errors
    /// A message for the operator: unknown mission, validation failures, no link, the autopilot's refusal.
    pub async fn upload(&self, mission_id: &str) -> anyhow::Result<()> {
        let (sortie, plan_id) = self.sortie(mission_id)?;
        let violations = sortie.sortie.mission.validate(&self.limits());
        if !violations.is_empty() {
            let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
            return Err(PatrolError::Invalid { mission_id: mission_id.to_owned(), violations: list.join("; ") }.into());
        }
        let vehicle = self.vehicle(&sortie.drone_id)?;
        vehicle
            .upload(MissionKind::Mission, sortie.sortie.mission.mission_items())
            .await
            .with_context(|| format!("uploading {mission_id} to {}", sortie.drone_id))?;
        tracing::info!(mission = %mission_id, drone = %sortie.drone_id, "Mission uploaded.");
        self.set_state(mission_id, MissionState::Uploaded, None).await;
        self.store_mission(&sortie, &plan_id, MissionState::Uploaded, None).await;
        Ok(())
    }

    /// Uploads each drone's first sortie of `plan_id`; one answer per drone.
    ///
    /// # Errors
    /// [`PatrolError::UnknownPlan`].
    pub async fn upload_plan(&self, plan_id: &str) -> Result<Vec<(String, anyhow::Result<()>)>, PatrolError> {
        let plan = self.planned(plan_id).ok_or_else(|| PatrolError::UnknownPlan(plan_id.to_owned()))?;
        let mut firsts: BTreeMap<String, String> = BTreeMap::new();
        for s in &plan.sorties {
            firsts.entry(s.drone_id.clone()).or_insert_with(|| s.mission_id.clone());
        }
        let uploads = firsts.into_iter().map(|(drone, mission)| async move {
            let result = self.upload(&mission).await;
            (drone, result)
        });
        Ok(futures::future::join_all(uploads).await)
    }

    /// Arms `drone_id` (waiting while the autopilot is not ready) and starts its uploaded sortie; a watcher then
    /// follows it to the landing.
    ///
    /// # Errors
    /// No uploaded sortie, no link, or the autopilot's refusal (with its reason).
    pub async fn start(&self, drone_id: &str) -> anyhow::Result<()> {
        let mission_id = self
            .runs()
            .into_iter()
            .find(|r| r.drone_id == drone_id && r.state == MissionState::Uploaded)
            .map(|r| r.mission_id)
            .with_context(|| format!("{drone_id} has no uploaded mission: upload one first"))?;
        let vehicle = self.vehicle(drone_id)?;
        arm_when_ready(&vehicle).await.with_context(|| format!("arming {drone_id}"))?;
        vehicle.start_mission().await.with_context(|| format!("starting the mission on {drone_id}"))?;
        let started = SystemTime::now();
        self.inner.active.set(drone_id, Some(&mission_id));
        self.set_state(&mission_id, MissionState::Running, Some(started)).await;
        tracing::info!(mission = %mission_id, drone = %drone_id, "Mission started.");
        let watcher = self.clone();
        let mission = mission_id.clone();
        self.inner.tasks.spawn(async move { watcher.watch_sortie(vehicle, mission, started, false).await });
        Ok(())
    }

    /// Flies every sortie of `plan_id`: per drone, upload, start, wait for the landing, then the next one.
    /// Returns at once; progress comes through [`Patrols::subscribe`].
    ///
    /// # Errors
    /// [`PatrolError::UnknownPlan`].
    pub fn fly(&self, plan_id: &str) -> Result<(), PatrolError> {
        let plan = self.planned(plan_id).ok_or_else(|| PatrolError::UnknownPlan(plan_id.to_owned()))?;
        let mut per_drone: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &plan.sorties {
            per_drone.entry(s.drone_id.clone()).or_default().push(s.mission_id.clone());
        }
        for (drone, missions) in per_drone {
            let patrols = self.clone();
            self.inner.tasks.spawn(async move {
                for mission in missions {
                    let flown = async {
                        patrols.upload(&mission).await?;
                        patrols.start(&drone).await?;
                        patrols.wait_done(&mission).await
                    };
                    let result = tokio::select! {
                        () = patrols.inner.cancel.cancelled() => return,
                        result = flown => result,
                    };
                    if let Err(error) = result {
                        tracing::error!(drone = %drone, mission = %mission, error = format!("{error:#}"), "Sortie not flown; the drone's remaining sorties are skipped.");
                        return;
                    }
                }
            });
        }
        Ok(())
    }

    /// Waits until sortie `mission_id` is completed or aborted.
    ///
    /// # Errors
    /// The sortie was aborted, or the service stopped.
    pub async fn wait_done(&self, mission_id: &str) -> anyhow::Result<()> {
        let mut updates = self.subscribe();
        loop {
            let state = self.book().runs.get(mission_id).map(|r| r.state);
            match state {
                Some(MissionState::Completed) => return Ok(()),
                Some(MissionState::Aborted) => anyhow::bail!("{mission_id} was aborted"),
                None => anyhow::bail!("{mission_id} is not a planned sortie"),
                _ => {}
            }
            match updates.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => anyhow::bail!("the patrol service stopped"),
            }
        }
    }

    fn sortie(&self, mission_id: &str) -> anyhow::Result<(PlannedSortie, String)> {
        let book = self.book();
        let run = book.runs.get(mission_id).with_context(|| format!("mission {mission_id} not found; plan again"))?;
        let plan = book.plans.get(&run.plan_id).ok_or_else(|| PatrolError::UnknownPlan(run.plan_id.clone()))?;
        let sortie = plan
            .sorties
            .iter()
            .find(|s| s.mission_id == mission_id)
            .with_context(|| format!("mission {mission_id} is not in plan {}", run.plan_id))?;
        Ok((sortie.clone(), run.plan_id.clone()))
    }

    fn vehicle(&self, drone_id: &str) -> anyhow::Result<VehicleHandle> {
        self.inner.fleet.vehicle(drone_id).with_context(|| {
            format!("{drone_id} has not been heard on its link yet: check that it is powered and the link address")
        })
    }

    /// Follows a started sortie until the drone lands and disarms (or the link is given up on). `airborne`: the
    /// drone is known to have taken off already (a sortie resumed after a restart), so the first disarmed state
    /// ends it.
    async fn watch_sortie(self, vehicle: VehicleHandle, mission_id: String, started: SystemTime, airborne: bool) {
        // Only changes count: a vehicle handle starts from a blank state (disarmed) until its first HEARTBEAT
        // is applied, which a resumed sortie must not take for a landing.
        let mut state = vehicle.watch();
        let total = self.book().runs.get(&mission_id).map_or(0, |r| r.total_items);
        // ArduPilot numbers the uploaded items from 1 (0 is home); PX4 from 0.
        let offset = u32::from(vehicle.state().autopilot == firmware_bridge::mode::AutopilotKind::ArduPilot);
        let mut airborne = airborne;
        let mut furthest = 0;
        let deadline = tokio::time::Instant::now() + SORTIE_PATIENCE;
        loop {
            let changed = tokio::select! {
                () = self.inner.cancel.cancelled() => return,
                () = tokio::time::sleep_until(deadline) => false,
                changed = state.changed() => changed.is_ok(),
            };
            if !changed {
                tracing::warn!(mission = %mission_id, "Stopped following the mission (link gone or too long).");
                self.finish(&mission_id, MissionState::Aborted, started).await;
                return;
            }
            let now = state.borrow_and_update().clone();
            airborne |= now.armed;
            let current = now.mission.current_seq.map_or(0, |seq| u32::from(seq).saturating_sub(offset));
            if current > furthest {
                furthest = current;
                self.set_progress(&mission_id, current).await;
            }
            if airborne && !now.armed {
                // The last items are the return and the landing; a sortie that got there is complete.
                let state = if furthest + 2 >= total { MissionState::Completed } else { MissionState::Aborted };
                self.finish(&mission_id, state, started).await;
                return;
            }
        }
    }

    async fn finish(&self, mission_id: &str, state: MissionState, started: SystemTime) {
        // Untagged first: once the sortie is reported over, no frame is tagged with it.
        let drone_id = self.book().runs.get(mission_id).map(|run| run.drone_id.clone());
        if let Some(drone_id) = drone_id {
            self.inner.active.set(&drone_id, None);
        }
        let run = self.set_state(mission_id, state, Some(started)).await;
        let Some(run) = run else { return };
        tracing::info!(mission = %mission_id, state = ?state, "Sortie over.");
        if state == MissionState::Completed {
            match self.inner.hazards.mission_finished(started, run.cells.clone()).await {
                Ok(ended) => {
                    tracing::info!(mission = %mission_id, ended = ended.len(), "Hazards not seen again ended.")
                }
                Err(error) => tracing::error!(mission = %mission_id, %error, "Cannot end the hazards of the sortie."),
            }
        }
    }

    async fn set_progress(&self, mission_id: &str, current: u32) {
        let run = {
            let mut book = self.book();
            let Some(run) = book.runs.get_mut(mission_id) else { return };
            run.current_item = current.min(run.total_items);
            run.clone()
        };
        self.publish(&run).await;
    }

    async fn set_state(
        &self,
        mission_id: &str,
        state: MissionState,
        started: Option<SystemTime>,
    ) -> Option<MissionRun> {
        let run = {
            let mut book = self.book();
            let run = book.runs.get_mut(mission_id)?;
            run.state = state;
            if started.is_some() {
                run.started = started;
            }
            if state == MissionState::Completed {
                run.current_item = run.total_items;
            }
            run.clone()
        };
        if let Ok((sortie, plan_id)) = self.sortie(mission_id) {
            self.store_mission(&sortie, &plan_id, state, run.started).await;
        } else {
            let resumed = self.book().resumed.get(mission_id).cloned();
            if let Some(mut record) = resumed {
                record.state = state;
                record.started = run.started;
                record.updated = SystemTime::now();
                if let Err(error) = self.inner.storage.call(move |db| db.upsert_mission(&record)).await {
                    tracing::error!(mission = %mission_id, %error, "Cannot store the mission.");
                }
            }
        }
        self.publish(&run).await;
        Some(run)
    }

    /// Stores the progress in the outbox (published on `<prefix>/missions/<id>`) and tells local subscribers.
    async fn publish(&self, run: &MissionRun) {
        let progress = MissionProgress {
            mission_id: run.mission_id.clone(),
            drone_id: run.drone_id.clone(),
            state: run.state,
            current_item: run.current_item,
            total_items: run.total_items,
            cells: run.cells.clone(),
            at: crate::hazard::rfc3339::to_millis(SystemTime::now()),
        };
        let message = self.inner.mqtt.topics().mission_message(&progress);
        match self.inner.storage.call(move |db| db.outbox_append(&[message])).await {
            Ok(_) => self.inner.mqtt.outbox_changed(),
            Err(error) => tracing::error!(mission = %run.mission_id, %error, "Cannot store the mission progress."),
        }
        // Nobody listening is fine.
        let _ = self.inner.updates.send(run.clone());
    }

    async fn store_mission(
        &self,
        sortie: &PlannedSortie,
        plan_id: &str,
        state: MissionState,
        started: Option<SystemTime>,
    ) {
        let record = MissionRecord {
            id: sortie.mission_id.clone(),
            drone_id: sortie.drone_id.clone(),
            state,
            cells: sortie.sortie.cells.clone(),
            plan_json: plan_json(plan_id, &sortie.sortie.mission, self.inner.inputs.as_ref()),
            started,
            updated: SystemTime::now(),
        };
        if let Err(error) = self.inner.storage.call(move |db| db.upsert_mission(&record)).await {
            tracing::error!(mission = %sortie.mission_id, %error, "Cannot store the mission.");
        }
    }
}

/// `p<n>-...` -> n.
fn plan_number(mission_id: &str) -> Option<u64> {
    mission_id.strip_prefix('p')?.split('-').next()?.parse().ok()
}

/// A stored sortie as a run: its route and item count from the stored `.plan`, its progress unknown until the
/// drone reports it.
fn resumed_run(record: &MissionRecord) -> anyhow::Result<MissionRun> {
    let mission = mission_planner::files::qgc_plan::parse(&record.plan_json).context("reading its stored plan")?;
    let plan: serde_json::Value = serde_json::from_str(&record.plan_json).context("reading its stored plan")?;
    let plan_id = plan.get("patrolPlanId").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    Ok(MissionRun {
        mission_id: record.id.clone(),
        drone_id: record.drone_id.clone(),
        plan_id,
        route: mission.route(),
        cells: record.cells.clone(),
        total_items: u32::try_from(mission.mission_items().len()).unwrap_or(u32::MAX),
        current_item: 0,
        state: record.state,
        started: record.started,
    })
}

/// The sortie as a QGroundControl `.plan` (what an operator can open in QGC), tagged with its plan id.
fn plan_json(plan_id: &str, mission: &Mission, inputs: Option<&PlannerInputs>) -> String {
    let speed = inputs.map_or(FlightModel::default().cruise_speed_mps, |i| i.settings.cruise_speed_mps);
    let mut value = mission_planner::files::qgc_plan::to_json(mission, speed, speed);
    if let Some(object) = value.as_object_mut() {
        object.insert("patrolPlanId".into(), serde_json::Value::String(plan_id.to_owned()));
    }
    value.to_string()
}

/// Planner drone number -> configured drone at that sortie's launch point (nearest free one within
/// [`LAUNCH_MATCH_M`]); drones with an unknown home are used only when no drone with a known home is near.
fn assign_drones(
    sorties: &[Sortie],
    launch_points: &[LaunchPoint],
    homes: &[(String, Option<GeoPoint>)],
) -> Result<BTreeMap<usize, String>, PatrolError> {
    let mut launch_of: BTreeMap<usize, &str> = BTreeMap::new();
    for s in sorties {
        launch_of.entry(s.drone).or_insert(&s.launch_id);
    }
    let mut free: Vec<&(String, Option<GeoPoint>)> = homes.iter().collect();
    let mut assigned = BTreeMap::new();
    for (planned, launch_id) in launch_of {
        let point = launch_points.iter().find(|l| l.id == launch_id).map(|l| l.point);
        let nearest = free
            .iter()
            .enumerate()
            .filter_map(|(i, (_, home))| {
                let d = geodesic_distance_m((*home)?, point?);
                (d <= LAUNCH_MATCH_M).then_some((i, d))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i);
        let Some(index) = nearest else {
            return Err(PatrolError::NoDroneAtLaunch { launch_id: launch_id.to_owned(), planned });
        };
        assigned.insert(planned, free.remove(index).0.clone());
    }
    Ok(assigned)
}

/// Arms, retrying while the autopilot refuses because it is not ready yet (ArduPilot's "PreArm: ..." while the
/// position estimate settles), up to [`ARM_PATIENCE`].
async fn arm_when_ready(vehicle: &VehicleHandle) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + ARM_PATIENCE;
    loop {
        match vehicle.arm().await {
            Ok(()) => return Ok(()),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::info!(system_id = vehicle.system_id(), %error, "Arming refused; trying again.");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sortie(drone: usize, launch: &str) -> Sortie {
        Sortie {
            drone,
            launch_id: launch.into(),
            mission: Mission::default(),
            route: Vec::new(),
            distance_m: 0.0,
            flight_time_s: 0.0,
            photos: Vec::new(),
            cells: Vec::new(),
            start_s: 0.0,
        }
    }

    #[test]
    fn planned_drones_get_the_real_drone_standing_at_their_launch_point() {
        let launch = |id: &str, lat: f64| LaunchPoint { id: id.into(), name: None, point: GeoPoint::new(lat, 113.88) };
        let points = [launch("A", 22.54), launch("B", 22.55)];
        let homes = vec![
            ("far".to_owned(), Some(GeoPoint::new(22.60, 113.88))),
            ("at-b".to_owned(), Some(GeoPoint::new(22.5501, 113.88))),
            ("at-a".to_owned(), Some(GeoPoint::new(22.5400, 113.8801))),
            ("at-a-too".to_owned(), Some(GeoPoint::new(22.5402, 113.8801))),
        ];
        let sorties = [sortie(1, "A"), sortie(2, "B"), sortie(3, "A"), sortie(1, "A")];
        let assigned = assign_drones(&sorties, &points, &homes).unwrap();
        assert_eq!(assigned[&1], "at-a");
        assert_eq!(assigned[&2], "at-b");
        assert_eq!(assigned[&3], "at-a-too");
        // A fourth drone at A does not exist: the plan cannot be flown as planned.
        let error = assign_drones(&[sortie(1, "A"), sortie(2, "A"), sortie(3, "A")], &points, &homes).unwrap_err();
        assert!(matches!(error, PatrolError::NoDroneAtLaunch { planned: 3, .. }), "{error}");
    }

    #[test]
    fn a_stored_sortie_becomes_a_run_with_its_plan_route_and_items() {
        use mission_planner::mission::{Home, MissionStep};
        use mission_planner::mission_item::MissionFrame;
        let home = GeoPoint::new(22.540, 113.880);
        let waypoint = |lat: f64| MissionStep::Waypoint {
            point: GeoPoint::new(lat, 113.881),
            alt_m: 40.0,
            frame: MissionFrame::GlobalRelativeAlt,
            hold_s: 0.0,
            yaw_deg: None,
        };
        let mission = Mission {
            home: Some(Home { point: home, alt_amsl_m: 10.0 }),
            steps: vec![waypoint(22.541), waypoint(22.542), MissionStep::ReturnToLaunch],
            ..Mission::default()
        };
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let record = MissionRecord {
            id: "p7-d1-2".into(),
            drone_id: "d1".into(),
            state: MissionState::Running,
            cells: vec!["A1".into()],
            plan_json: plan_json("p7", &mission, None),
            started: Some(t),
            updated: t,
        };
        let run = resumed_run(&record).unwrap();
        assert_eq!((run.plan_id.as_str(), run.drone_id.as_str(), run.state), ("p7", "d1", MissionState::Running));
        assert_eq!((run.total_items, run.current_item, run.started), (3, 0, Some(t)));
        let lats: Vec<f64> = run.route.iter().map(|p| (p.lat_deg * 1e3).round() / 1e3).collect();
        assert_eq!(lats, [22.540, 22.541, 22.542, 22.540], "home, the waypoints, home");
        assert_eq!(plan_number(&record.id), Some(7));
        assert_eq!(plan_number("mission-1"), None);
        let broken = MissionRecord { plan_json: "{".into(), ..record };
        assert!(resumed_run(&broken).is_err());
    }
}
