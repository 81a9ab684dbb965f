//! `DemoBackend`: an in-memory [`ConsoleBackend`] with a small simulated fleet, district, hazards with evidence
//! images, and a review queue with leases. For router and browser tests (feature `test-util`); it computes
//! everything it answers from its own state, and moves only when [`DemoBackend::step`] is called.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use super::api::{
    Autopilot, CameraOption, CommandOutcome, CommandRequest, District, DroneState, EvidenceBox, EvidenceFrame,
    FleetSnapshot, GridCell, Hazard, HazardFilter, HazardKind, HazardStatus, LatLon, LaunchPoint, LinkState,
    LiveUpdate, MissionProgress, MissionState, MissionStatus, NoFlyZone, PlanRequest, PlanSummary, PlannedRoute,
    ReviewItem, ReviewRecord, ReviewStatus, Severity, Sortie, VehicleCommand, Verdict,
};
use super::backend::{BackendError, ConsoleBackend, EvidenceImage};
use super::review_queue::{Candidate, ReviewQueue};

/// Metres per degree of latitude (spherical Earth; plenty for a demo district).
const M_PER_DEG_LAT: f64 = 111_320.0;
/// The demo district's south-west corner.
const ORIGIN: LatLon = LatLon { lat_deg: 30.2500, lon_deg: 120.1500 };
/// Cell edge, metres.
const CELL_M: f64 = 400.0;
/// Cruise speed, metres per second.
const SPEED_MPS: f64 = 10.0;
/// Climb and descent rate, metres per second.
const CLIMB_MPS: f64 = 3.0;
/// Arming refused below this battery level.
const MIN_ARM_BATTERY_PERCENT: f64 = 25.0;
/// Image width and focal length of the demo camera, pixels.
const IMAGE_WIDTH_PX: f64 = 4000.0;
const FOCAL_PX: f64 = 3000.0;
/// Longest sortie before a battery swap, metres.
const MAX_SORTIE_M: f64 = 9000.0;
/// Trail points kept per drone.
const TRAIL_LEN: usize = 300;
/// Live update channel capacity (slow clients lag and resync).
const LIVE_CAPACITY: usize = 256;

fn offset(origin: LatLon, east_m: f64, north_m: f64) -> LatLon {
    LatLon {
        lat_deg: origin.lat_deg + north_m / M_PER_DEG_LAT,
        lon_deg: origin.lon_deg + east_m / (M_PER_DEG_LAT * origin.lat_deg.to_radians().cos()),
    }
}

/// East and north metres from `a` to `b`.
fn delta_m(a: LatLon, b: LatLon) -> (f64, f64) {
    let east = (b.lon_deg - a.lon_deg) * M_PER_DEG_LAT * a.lat_deg.to_radians().cos();
    let north = (b.lat_deg - a.lat_deg) * M_PER_DEG_LAT;
    (east, north)
}

fn distance_m(a: LatLon, b: LatLon) -> f64 {
    let (e, n) = delta_m(a, b);
    e.hypot(n)
}

fn path_length_m(points: &[LatLon]) -> f64 {
    points.windows(2).map(|w| distance_m(w[0], w[1])).sum()
}

fn now_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn square(sw: LatLon, size_m: f64) -> Vec<LatLon> {
    vec![sw, offset(sw, size_m, 0.0), offset(sw, size_m, size_m), offset(sw, 0.0, size_m)]
}

fn bbox(polygon: &[LatLon]) -> (LatLon, LatLon) {
    let mut min = LatLon { lat_deg: f64::INFINITY, lon_deg: f64::INFINITY };
    let mut max = LatLon { lat_deg: f64::NEG_INFINITY, lon_deg: f64::NEG_INFINITY };
    for p in polygon {
        min.lat_deg = min.lat_deg.min(p.lat_deg);
        min.lon_deg = min.lon_deg.min(p.lon_deg);
        max.lat_deg = max.lat_deg.max(p.lat_deg);
        max.lon_deg = max.lon_deg.max(p.lon_deg);
    }
    (min, max)
}

#[derive(Debug)]
struct DemoDrone {
    state: DroneState,
    launch: LatLon,
    /// Uploaded mission: id and waypoints.
    mission: Option<(String, Vec<LatLon>)>,
    next_waypoint: usize,
    target_alt_m: f64,
}

#[derive(Debug)]
struct DemoState {
    drones: Vec<DemoDrone>,
    district: District,
    plans: HashMap<String, PlanSummary>,
    missions: Vec<MissionStatus>,
    next_plan: u32,
    hazards: Vec<Hazard>,
    frames: HashMap<String, Vec<EvidenceFrame>>,
    images: HashMap<String, EvidenceImage>,
    queue: ReviewQueue,
}

/// An in-memory console backend: two drones (one ArduPilot, one PX4 with a low battery that refuses to arm), a
/// 2 x 2 grid of 400 m cells with a no-fly zone, four hazards with generated evidence images, and a leased
/// review queue.
#[derive(Debug)]
pub struct DemoBackend {
    state: Mutex<DemoState>,
    live: broadcast::Sender<LiveUpdate>,
}

impl Default for DemoBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoBackend {
    /// The demo world, with hazards first seen in the last hour.
    pub fn new() -> Self {
        let now = SystemTime::now();
        let launch = offset(ORIGIN, -60.0, -60.0);
        let cells = (0..4)
            .map(|i| {
                let (col, row) = (f64::from(i % 2), f64::from(i / 2));
                GridCell {
                    id: format!("G-0{}", i + 1),
                    name: format!("Cell {}", i + 1),
                    polygon: square(offset(ORIGIN, col * CELL_M, row * CELL_M), CELL_M),
                    coverage_today: [0.85, 0.4, 0.0, 0.1][i as usize],
                }
            })
            .collect();
        let district = District {
            name: "Demo district".to_owned(),
            cells,
            no_fly_zones: vec![NoFlyZone {
                id: "NFZ-1".to_owned(),
                name: "School".to_owned(),
                polygon: square(offset(ORIGIN, 600.0, 600.0), 250.0),
            }],
            launch_points: vec![LaunchPoint { id: "LP-1".to_owned(), name: "Depot".to_owned(), position: launch }],
            cameras: vec![
                CameraOption { id: "wide".to_owned(), name: "Wide 24 mm".to_owned() },
                CameraOption { id: "zoom".to_owned(), name: "Zoom 70 mm".to_owned() },
            ],
        };
        let drone = |id: &str, name: &str, autopilot, battery, east_m| DemoDrone {
            state: DroneState {
                id: id.to_owned(),
                name: name.to_owned(),
                autopilot,
                position: Some(offset(launch, east_m, 0.0)),
                heading_deg: 0.0,
                altitude_rel_m: 0.0,
                battery_percent: Some(battery),
                mode: if autopilot == Autopilot::Px4 { "HOLD" } else { "STABILIZE" }.to_owned(),
                armed: false,
                link: LinkState::Connected,
                last_heard_unix_ms: Some(now_ms(now)),
                trail: Vec::new(),
                mission: None,
            },
            launch: offset(launch, east_m, 0.0),
            mission: None,
            next_waypoint: 0,
            target_alt_m: 0.0,
        };
        let drones = vec![
            drone("d1", "Falcon 1", Autopilot::Ardupilot, 96.0, 0.0),
            drone("d2", "Falcon 2", Autopilot::Px4, 18.0, 10.0),
        ];
        let mut state = DemoState {
            drones,
            district,
            plans: HashMap::new(),
            missions: Vec::new(),
            next_plan: 1,
            hazards: Vec::new(),
            frames: HashMap::new(),
            images: HashMap::new(),
            queue: ReviewQueue::new(),
        };
        let seeds = [
            ("h-1", HazardKind::Fire, "fire", 0.91, Severity::A, (120.0, 80.0), 50, "G-01", [230, 80, 20]),
            ("h-2", HazardKind::Smoke, "smoke", 0.72, Severity::B, (520.0, 150.0), 40, "G-02", [170, 170, 170]),
            ("h-3", HazardKind::Gas, "ch4", 0.66, Severity::B, (90.0, 610.0), 30, "G-03", [0, 0, 0]),
            (
                "h-4",
                HazardKind::IllegalStructure,
                "structure",
                0.58,
                Severity::C,
                (700.0, 500.0),
                20,
                "G-04",
                [60, 90, 200],
            ),
        ];
        for (id, kind, label, confidence, severity, (east, north), minutes_ago, cell, colour) in seeds {
            let seen = now_ms(now) - i64::from(minutes_ago) * 60_000;
            let mut evidence_ids = Vec::new();
            let mut frames = Vec::new();
            if kind != HazardKind::Gas {
                for frame in 0..2 {
                    let (image_id, crop_id) = (format!("{id}-f{frame}"), format!("{id}-f{frame}-crop"));
                    let boxed = EvidenceBox {
                        x: 0.40 + 0.05 * f64::from(frame),
                        y: 0.35,
                        width: 0.2,
                        height: 0.25,
                        label: label.to_owned(),
                        confidence: confidence - 0.05 * f64::from(frame),
                    };
                    state.images.insert(image_id.clone(), render_evidence(&boxed, colour, false));
                    state.images.insert(crop_id.clone(), render_evidence(&boxed, colour, true));
                    evidence_ids.push(image_id.clone());
                    frames.push(EvidenceFrame {
                        image_id,
                        crop_id: Some(crop_id),
                        captured_unix_ms: seen + i64::from(frame) * 4000,
                        drone_id: "d1".to_owned(),
                        boxes: vec![boxed],
                    });
                }
            }
            state.frames.insert(id.to_owned(), frames);
            state.hazards.push(Hazard {
                id: id.to_owned(),
                kind,
                label: label.to_owned(),
                confidence,
                severity,
                position: offset(ORIGIN, east, north),
                uncertainty_m: 4.5,
                grid_cell: Some(cell.to_owned()),
                address: Some(format!("{} Wenyi Road, Xihu District", 100 + minutes_ago)),
                first_seen_unix_ms: seen,
                last_seen_unix_ms: seen + 4000,
                drone_id: "d1".to_owned(),
                mission_id: None,
                evidence_ids,
                status: HazardStatus::Open,
                review: ReviewStatus::Pending,
            });
        }
        Self { state: Mutex::new(state), live: broadcast::channel(LIVE_CAPACITY).0 }
    }

    fn lock(&self) -> MutexGuard<'_, DemoState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, update: LiveUpdate) {
        // No subscriber is fine: nobody is watching.
        drop(self.live.send(update));
    }

    /// Advances the simulation by `dt`: armed drones climb to their takeoff altitude, fly their mission in
    /// `AUTO`, return in `RTL` and descend in `LAND`. Publishes each drone's new state.
    pub fn step(&self, dt: Duration) {
        let dt_s = dt.as_secs_f64();
        let now = now_ms(SystemTime::now());
        let mut updates = Vec::new();
        {
            let mut state = self.lock();
            let DemoState { drones, missions, .. } = &mut *state;
            for drone in drones.iter_mut() {
                if !drone.state.armed {
                    continue;
                }
                let Some(position) = drone.state.position else { continue };
                let s = &mut drone.state;
                match s.mode.as_str() {
                    "LAND" => {
                        s.altitude_rel_m = (s.altitude_rel_m - CLIMB_MPS * dt_s).max(0.0);
                        if s.altitude_rel_m <= 0.0 {
                            s.armed = false;
                        }
                    }
                    mode => {
                        s.altitude_rel_m +=
                            (drone.target_alt_m - s.altitude_rel_m).clamp(-CLIMB_MPS * dt_s, CLIMB_MPS * dt_s);
                        let target = match mode {
                            "AUTO" | "MISSION" => {
                                drone.mission.as_ref().and_then(|(_, route)| route.get(drone.next_waypoint)).copied()
                            }
                            "RTL" => Some(drone.launch),
                            _ => None,
                        };
                        if let Some(target) = target {
                            let (east, north) = delta_m(position, target);
                            let remaining = east.hypot(north);
                            let travel = SPEED_MPS * dt_s;
                            if remaining > 0.01 {
                                s.heading_deg = east.atan2(north).to_degrees().rem_euclid(360.0);
                            }
                            if remaining <= travel {
                                s.position = Some(target);
                                if mode == "RTL" {
                                    s.mode = "LAND".to_owned();
                                } else if let Some((mission_id, route)) = &drone.mission {
                                    drone.next_waypoint += 1;
                                    let done = drone.next_waypoint >= route.len();
                                    if let Some(m) =
                                        missions.iter_mut().find(|m| &m.mission_id == mission_id && m.drone_id == s.id)
                                    {
                                        m.reached_items = drone.next_waypoint as u32;
                                        if done {
                                            m.state = MissionState::Done;
                                        }
                                        updates.push(LiveUpdate::Mission(m.clone()));
                                    }
                                    s.mission = Some(MissionProgress {
                                        mission_id: mission_id.clone(),
                                        current_item: drone.next_waypoint as u32,
                                        total_items: route.len() as u32,
                                    });
                                    if done {
                                        s.mode = "RTL".to_owned();
                                    }
                                }
                            } else {
                                let f = travel / remaining;
                                s.position = Some(offset(position, east * f, north * f));
                            }
                        }
                    }
                }
                if let Some(p) = s.position {
                    s.trail.push(p);
                    if s.trail.len() > TRAIL_LEN {
                        s.trail.remove(0);
                    }
                }
                if let Some(battery) = &mut s.battery_percent {
                    *battery = (*battery - 0.02 * dt_s).max(0.0);
                }
                s.last_heard_unix_ms = Some(now);
                updates.push(LiveUpdate::Drone(s.clone()));
            }
        }
        for update in updates {
            self.publish(update);
        }
    }

    /// Sets a drone's link state (to show a lost link going stale) and publishes it.
    ///
    /// # Errors
    /// [`BackendError::NotFound`] for an unknown drone.
    pub fn set_link(&self, drone_id: &str, link: LinkState) -> Result<(), BackendError> {
        let update = {
            let mut state = self.lock();
            let drone = state
                .drones
                .iter_mut()
                .find(|d| d.state.id == drone_id)
                .ok_or_else(|| BackendError::NotFound(format!("drone {drone_id}")))?;
            drone.state.link = link;
            drone.state.clone()
        };
        self.publish(LiveUpdate::Drone(update));
        Ok(())
    }

    /// Every verdict stored so far (including undone ones), oldest first.
    pub fn reviews(&self) -> Vec<ReviewRecord> {
        self.lock().queue.records().to_vec()
    }

    fn plan_sync(&self, request: &PlanRequest) -> Result<PlanSummary, BackendError> {
        let mut state = self.lock();
        let mut cells = Vec::new();
        for id in &request.cell_ids {
            let cell = state.district.cells.iter().find(|c| &c.id == id);
            cells.push(cell.cloned().ok_or_else(|| BackendError::Invalid(format!("unknown grid cell {id}")))?);
        }
        if let Some(camera) = &request.camera_id
            && !state.district.cameras.iter().any(|c| &c.id == camera)
        {
            return Err(BackendError::Invalid(format!("unknown camera {camera}")));
        }
        let drone_ids: Vec<String> = if request.drone_ids.is_empty() {
            state.drones.iter().filter(|d| d.state.link != LinkState::Lost).map(|d| d.state.id.clone()).collect()
        } else {
            for id in &request.drone_ids {
                if !state.drones.iter().any(|d| &d.state.id == id) {
                    return Err(BackendError::Invalid(format!("unknown drone {id}")));
                }
            }
            request.drone_ids.clone()
        };
        if drone_ids.is_empty() {
            return Err(BackendError::Unavailable("no drone is connected".to_owned()));
        }
        let gsd_m = request.gsd_cm_per_px / 100.0;
        let altitude_rel_m = gsd_m * FOCAL_PX;
        // 20 % side overlap between lanes.
        let lane_spacing_m = gsd_m * IMAGE_WIDTH_PX * 0.8;
        let zones: Vec<_> = state.district.no_fly_zones.iter().map(|z| bbox(&z.polygon)).collect();
        let mut uncovered = Vec::new();
        let mut per_drone: Vec<Vec<Vec<LatLon>>> = vec![Vec::new(); drone_ids.len()];
        let mut assigned = 0;
        for cell in &cells {
            let (min, max) = bbox(&cell.polygon);
            let overlaps_zone = zones.iter().any(|(zmin, zmax)| {
                zmin.lat_deg < max.lat_deg
                    && zmax.lat_deg > min.lat_deg
                    && zmin.lon_deg < max.lon_deg
                    && zmax.lon_deg > min.lon_deg
            });
            if overlaps_zone {
                uncovered.push(cell.id.clone());
                continue;
            }
            let (width_m, height_m) = delta_m(min, max);
            let lanes = (width_m / lane_spacing_m).ceil().max(1.0) as usize;
            let mut waypoints = Vec::new();
            for lane in 0..lanes {
                let east = (lane as f64 + 0.5) * width_m / lanes as f64;
                let (a, b) = (offset(min, east, 0.0), offset(min, east, height_m));
                if lane % 2 == 0 { waypoints.extend([a, b]) } else { waypoints.extend([b, a]) }
            }
            per_drone[assigned % drone_ids.len()].push(waypoints);
            assigned += 1;
        }
        let mut routes = Vec::new();
        let mut total_flight_time_s = 0.0;
        for (drone_id, cell_paths) in drone_ids.iter().zip(per_drone) {
            let launch = state.drones.iter().find(|d| &d.state.id == drone_id).map_or(ORIGIN, |d| d.launch);
            let mut sorties = Vec::new();
            let mut current: Vec<LatLon> = Vec::new();
            for path in cell_paths {
                let mut candidate = current.clone();
                candidate.extend(&path);
                let with_legs = [vec![launch], candidate.clone(), vec![launch]].concat();
                if !current.is_empty() && path_length_m(&with_legs) > MAX_SORTIE_M {
                    sorties.push(std::mem::take(&mut current));
                    current = path;
                } else {
                    current = candidate;
                }
            }
            if !current.is_empty() {
                sorties.push(current);
            }
            let sorties: Vec<Sortie> = sorties
                .into_iter()
                .map(|waypoints| {
                    let distance_m = path_length_m(&[vec![launch], waypoints.clone(), vec![launch]].concat());
                    let flight_time_s = distance_m / SPEED_MPS + 2.0 * altitude_rel_m / CLIMB_MPS;
                    Sortie { waypoints, distance_m, flight_time_s }
                })
                .collect();
            total_flight_time_s += sorties.iter().map(|s| s.flight_time_s).sum::<f64>();
            routes.push(PlannedRoute { drone_id: drone_id.clone(), sorties });
        }
        let plan_id = format!("plan-{}", state.next_plan);
        state.next_plan += 1;
        let summary = PlanSummary {
            plan_id: plan_id.clone(),
            altitude_rel_m,
            routes,
            total_flight_time_s,
            uncovered_cell_ids: uncovered,
        };
        state.plans.insert(plan_id, summary.clone());
        Ok(summary)
    }

    fn command_one(drone: &mut DemoDrone, command: &VehicleCommand, missions: &mut [MissionStatus]) -> CommandOutcome {
        let s = &mut drone.state;
        let px4 = s.autopilot == Autopilot::Px4;
        let refuse = |message: String| (false, message);
        let (accepted, message) = if s.link == LinkState::Lost {
            refuse("no link to the drone".to_owned())
        } else {
            match command {
                VehicleCommand::Arm => match s.battery_percent {
                    _ if s.armed => (true, "already armed".to_owned()),
                    Some(b) if b < MIN_ARM_BATTERY_PERCENT => {
                        refuse(format!("PreArm: Battery {b:.0}% below minimum {MIN_ARM_BATTERY_PERCENT:.0}%"))
                    }
                    _ => {
                        s.armed = true;
                        s.mode = if px4 { "HOLD" } else { "GUIDED" }.to_owned();
                        (true, "armed".to_owned())
                    }
                },
                VehicleCommand::Takeoff { altitude_rel_m } => {
                    if s.armed {
                        drone.target_alt_m = *altitude_rel_m;
                        s.mode = if px4 { "TAKEOFF" } else { "GUIDED" }.to_owned();
                        (true, format!("taking off to {altitude_rel_m:.0} m"))
                    } else {
                        refuse("Arm first: the drone is disarmed".to_owned())
                    }
                }
                VehicleCommand::Start => match &drone.mission {
                    None => refuse("no mission uploaded".to_owned()),
                    Some(_) if !s.armed => refuse("Arm and take off first".to_owned()),
                    Some((mission_id, _)) => {
                        drone.next_waypoint = 0;
                        s.mode = if px4 { "MISSION" } else { "AUTO" }.to_owned();
                        if drone.target_alt_m <= 0.0 {
                            drone.target_alt_m = 60.0;
                        }
                        set_mission_state(missions, mission_id, &s.id, MissionState::Flying);
                        (true, "mission started".to_owned())
                    }
                },
                VehicleCommand::Pause => {
                    if matches!(s.mode.as_str(), "AUTO" | "MISSION") {
                        s.mode = if px4 { "HOLD" } else { "BRAKE" }.to_owned();
                        if let Some((mission_id, _)) = &drone.mission {
                            set_mission_state(missions, mission_id, &s.id, MissionState::Paused);
                        }
                        (true, "holding".to_owned())
                    } else {
                        refuse(format!("not flying a mission (mode {})", s.mode))
                    }
                }
                VehicleCommand::Resume => match &drone.mission {
                    Some((mission_id, _)) if s.armed && matches!(s.mode.as_str(), "BRAKE" | "HOLD") => {
                        s.mode = if px4 { "MISSION" } else { "AUTO" }.to_owned();
                        set_mission_state(missions, mission_id, &s.id, MissionState::Flying);
                        (true, "mission resumed".to_owned())
                    }
                    _ => refuse("no paused mission".to_owned()),
                },
                VehicleCommand::Rtl | VehicleCommand::Land if !s.armed => refuse("on the ground".to_owned()),
                VehicleCommand::Rtl => {
                    s.mode = "RTL".to_owned();
                    (true, "returning to launch".to_owned())
                }
                VehicleCommand::Land => {
                    s.mode = "LAND".to_owned();
                    (true, "landing".to_owned())
                }
            }
        };
        CommandOutcome { drone_id: s.id.clone(), accepted, message }
    }

    fn claim_sync(&self, reviewer: &str, lease: Duration) -> Option<ReviewItem> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let pending: Vec<Candidate> = state
            .hazards
            .iter()
            .filter(|h| h.review == ReviewStatus::Pending)
            .map(|h| Candidate {
                hazard_id: h.id.clone(),
                severity: h.severity,
                first_seen_unix_ms: h.first_seen_unix_ms,
            })
            .collect();
        let claimed = state.queue.claim(reviewer, &pending, lease, now)?;
        let hazard = state.hazards.iter().find(|h| h.id == claimed.hazard_id)?.clone();
        let frames = state.frames.get(&claimed.hazard_id).cloned().unwrap_or_default();
        Some(ReviewItem {
            hazard,
            frames,
            lease_expires_unix_ms: now_ms(claimed.expires),
            remaining: claimed.remaining,
        })
    }

    fn verdict_sync(
        &self,
        reviewer: &str,
        hazard_id: &str,
        verdict: Verdict,
        note: Option<String>,
    ) -> Result<(ReviewRecord, Hazard), BackendError> {
        let now = SystemTime::now();
        let mut state = self.lock();
        state.queue.check_claim(reviewer, hazard_id, now)?;
        let hazard = state
            .hazards
            .iter_mut()
            .find(|h| h.id == hazard_id)
            .ok_or_else(|| BackendError::NotFound(format!("hazard {hazard_id}")))?;
        match verdict {
            Verdict::Confirm => hazard.review = ReviewStatus::Confirmed,
            Verdict::Reject => {
                hazard.review = ReviewStatus::Rejected;
                hazard.status = HazardStatus::Ended;
            }
            Verdict::Skip => {}
        }
        let hazard = hazard.clone();
        let record = ReviewRecord {
            hazard_id: hazard_id.to_owned(),
            reviewer: reviewer.to_owned(),
            verdict,
            note,
            at_unix_ms: now_ms(now),
            undone: false,
        };
        state.queue.record(record.clone());
        Ok((record, hazard))
    }

    fn undo_sync(&self, reviewer: &str) -> Option<(ReviewRecord, Hazard)> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let record = state.queue.undo(reviewer, now)?;
        let hazard = state.hazards.iter_mut().find(|h| h.id == record.hazard_id)?;
        hazard.review = ReviewStatus::Pending;
        hazard.status = HazardStatus::Open;
        let hazard = hazard.clone();
        Some((record, hazard))
    }
}

fn set_mission_state(missions: &mut [MissionStatus], mission_id: &str, drone_id: &str, to: MissionState) {
    if let Some(m) = missions.iter_mut().find(|m| m.mission_id == mission_id && m.drone_id == drone_id) {
        m.state = to;
    }
}

/// A 640 x 480 PNG (or a 160 x 120 crop around the box) with the hazard drawn as a coloured block.
fn render_evidence(boxed: &EvidenceBox, colour: [u8; 3], crop: bool) -> EvidenceImage {
    let (w, h) = (640u32, 480u32);
    let mut image = image::RgbImage::from_fn(w, h, |x, y| {
        let fx = f64::from(x) / f64::from(w);
        let fy = f64::from(y) / f64::from(h);
        let inside = fx >= boxed.x + 0.05
            && fx <= boxed.x + boxed.width - 0.05
            && fy >= boxed.y + 0.05
            && fy <= boxed.y + boxed.height - 0.05;
        if inside { image::Rgb(colour) } else { image::Rgb([70 + (y / 12) as u8, 110 + (x / 16) as u8, 60]) }
    });
    if crop {
        let cx = ((boxed.x + boxed.width / 2.0) * f64::from(w)) as u32;
        let cy = ((boxed.y + boxed.height / 2.0) * f64::from(h)) as u32;
        image = image::imageops::crop_imm(&image, cx.saturating_sub(80), cy.saturating_sub(60), 160, 120).to_image();
    }
    let mut bytes = Vec::new();
    // Encoding an in-memory RGB image to PNG cannot fail short of running out of memory.
    let encoded = image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png);
    debug_assert!(encoded.is_ok());
    EvidenceImage { content_type: "image/png", bytes }
}

#[async_trait::async_trait]
impl ConsoleBackend for DemoBackend {
    async fn fleet(&self) -> Result<FleetSnapshot, BackendError> {
        let state = self.lock();
        Ok(FleetSnapshot {
            at_unix_ms: now_ms(SystemTime::now()),
            drones: state.drones.iter().map(|d| d.state.clone()).collect(),
            // The sample backend stores no evidence on disk: nothing to raise.
            alarms: Vec::new(),
        })
    }

    async fn district(&self) -> Result<District, BackendError> {
        Ok(self.lock().district.clone())
    }

    async fn missions(&self) -> Result<Vec<MissionStatus>, BackendError> {
        Ok(self.lock().missions.clone())
    }

    async fn plan(&self, request: PlanRequest) -> Result<PlanSummary, BackendError> {
        self.plan_sync(&request)
    }

    async fn upload(&self, plan_id: &str) -> Result<Vec<CommandOutcome>, BackendError> {
        let mut outcomes = Vec::new();
        let mut updates = Vec::new();
        {
            let mut state = self.lock();
            let plan =
                state.plans.get(plan_id).cloned().ok_or_else(|| BackendError::NotFound(format!("plan {plan_id}")))?;
            for route in &plan.routes {
                let Some(drone) = state.drones.iter_mut().find(|d| d.state.id == route.drone_id) else { continue };
                if drone.state.link == LinkState::Lost {
                    outcomes.push(CommandOutcome {
                        drone_id: route.drone_id.clone(),
                        accepted: false,
                        message: "no link to the drone".to_owned(),
                    });
                    continue;
                }
                let waypoints: Vec<LatLon> = route.sorties.iter().flat_map(|s| s.waypoints.iter().copied()).collect();
                drone.mission = Some((plan_id.to_owned(), waypoints.clone()));
                drone.next_waypoint = 0;
                drone.target_alt_m = plan.altitude_rel_m;
                let launch = drone.launch;
                outcomes.push(CommandOutcome {
                    drone_id: route.drone_id.clone(),
                    accepted: true,
                    message: format!("{} mission items accepted", waypoints.len()),
                });
                let status = MissionStatus {
                    mission_id: plan_id.to_owned(),
                    drone_id: route.drone_id.clone(),
                    route: [vec![launch], waypoints, vec![launch]].concat(),
                    reached_items: 0,
                    state: MissionState::Uploaded,
                };
                state.missions.retain(|m| m.drone_id != route.drone_id);
                state.missions.push(status.clone());
                updates.push(LiveUpdate::Mission(status));
            }
        }
        for update in updates {
            self.publish(update);
        }
        Ok(outcomes)
    }

    async fn command(&self, request: CommandRequest) -> Result<Vec<CommandOutcome>, BackendError> {
        let (outcomes, updates) = {
            let mut state = self.lock();
            for id in &request.drone_ids {
                if !state.drones.iter().any(|d| &d.state.id == id) {
                    return Err(BackendError::Invalid(format!("unknown drone {id}")));
                }
            }
            let DemoState { drones, missions, .. } = &mut *state;
            let mut outcomes = Vec::new();
            let mut updates = Vec::new();
            for drone in drones.iter_mut() {
                if request.drone_ids.is_empty() || request.drone_ids.contains(&drone.state.id) {
                    outcomes.push(Self::command_one(drone, &request.command, missions));
                    updates.push(LiveUpdate::Drone(drone.state.clone()));
                }
            }
            updates.extend(missions.iter().cloned().map(LiveUpdate::Mission));
            (outcomes, updates)
        };
        for update in updates {
            self.publish(update);
        }
        Ok(outcomes)
    }

    async fn hazards(&self, filter: HazardFilter) -> Result<Vec<Hazard>, BackendError> {
        let mut hazards: Vec<Hazard> = self.lock().hazards.iter().filter(|h| filter.matches(h)).cloned().collect();
        hazards.sort_by_key(|h| std::cmp::Reverse(h.last_seen_unix_ms));
        Ok(hazards)
    }

    async fn hazard(&self, id: &str) -> Result<Hazard, BackendError> {
        self.lock()
            .hazards
            .iter()
            .find(|h| h.id == id)
            .cloned()
            .ok_or_else(|| BackendError::NotFound(format!("hazard {id}")))
    }

    async fn evidence_image(&self, id: &str) -> Result<EvidenceImage, BackendError> {
        self.lock().images.get(id).cloned().ok_or_else(|| BackendError::NotFound(format!("image {id}")))
    }

    async fn claim_next(&self, reviewer: &str, lease: Duration) -> Result<Option<ReviewItem>, BackendError> {
        Ok(self.claim_sync(reviewer, lease))
    }

    async fn verdict(
        &self,
        reviewer: &str,
        hazard_id: &str,
        verdict: Verdict,
        note: Option<String>,
    ) -> Result<ReviewRecord, BackendError> {
        let (record, hazard) = self.verdict_sync(reviewer, hazard_id, verdict, note)?;
        self.publish(LiveUpdate::Review(record.clone()));
        self.publish(LiveUpdate::Hazard(hazard));
        Ok(record)
    }

    async fn undo(&self, reviewer: &str) -> Result<Option<ReviewRecord>, BackendError> {
        let Some((record, hazard)) = self.undo_sync(reviewer) else { return Ok(None) };
        self.publish(LiveUpdate::Review(record.clone()));
        self.publish(LiveUpdate::Hazard(hazard));
        Ok(Some(record))
    }

    fn subscribe(&self) -> broadcast::Receiver<LiveUpdate> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_reviewers_never_get_the_same_item() {
        let backend = DemoBackend::new();
        let lease = Duration::from_secs(60);
        let a = backend.claim_next("ann", lease).await.unwrap().unwrap();
        let b = backend.claim_next("bob", lease).await.unwrap().unwrap();
        assert_eq!(a.hazard.id, "h-1", "most severe first");
        assert_ne!(a.hazard.id, b.hazard.id);
        assert_eq!(backend.claim_next("ann", lease).await.unwrap().unwrap().hazard.id, "h-1", "a claim is kept");
        assert!(matches!(backend.verdict("bob", "h-1", Verdict::Confirm, None).await, Err(BackendError::Conflict(_))));
        let record = backend.verdict("ann", "h-1", Verdict::Confirm, Some("flames".into())).await.unwrap();
        assert_eq!(record.reviewer, "ann");
        assert_eq!(backend.hazard("h-1").await.unwrap().review, ReviewStatus::Confirmed);
        let undone = backend.undo("ann").await.unwrap().unwrap();
        assert!(undone.undone);
        assert_eq!(backend.hazard("h-1").await.unwrap().review, ReviewStatus::Pending);
        assert_eq!(backend.claim_next("ann", lease).await.unwrap().unwrap().hazard.id, "h-1", "undo gives it back");
    }

    #[tokio::test]
    async fn skip_moves_an_item_behind_the_others_for_that_reviewer() {
        let backend = DemoBackend::new();
        let lease = Duration::from_secs(60);
        let first = backend.claim_next("ann", lease).await.unwrap().unwrap();
        backend.verdict("ann", &first.hazard.id, Verdict::Skip, None).await.unwrap();
        let next = backend.claim_next("ann", lease).await.unwrap().unwrap();
        assert_ne!(next.hazard.id, first.hazard.id);
        assert_eq!(backend.claim_next("bob", lease).await.unwrap().unwrap().hazard.id, first.hazard.id);
    }

    #[tokio::test]
    async fn a_low_battery_drone_refuses_to_arm_and_a_mission_flies() {
        let backend = DemoBackend::new();
        let plan = backend
            .plan(PlanRequest {
                cell_ids: vec!["G-01".into(), "G-02".into()],
                drone_ids: vec!["d1".into()],
                camera_id: None,
                gsd_cm_per_px: 2.0,
            })
            .await
            .unwrap();
        assert!((plan.altitude_rel_m - 60.0).abs() < 1e-9);
        assert!(plan.uncovered_cell_ids.is_empty());
        assert!(plan.total_flight_time_s > 0.0);
        let all = backend
            .plan(PlanRequest { cell_ids: vec!["G-04".into()], drone_ids: vec![], camera_id: None, gsd_cm_per_px: 2.0 })
            .await
            .unwrap();
        assert_eq!(all.uncovered_cell_ids, vec!["G-04".to_owned()], "the no-fly zone overlaps G-04");
        backend.upload(&plan.plan_id).await.unwrap();
        let arm = backend.command(CommandRequest { command: VehicleCommand::Arm, drone_ids: vec![] }).await.unwrap();
        assert!(arm.iter().any(|o| o.drone_id == "d1" && o.accepted));
        assert!(arm.iter().any(|o| o.drone_id == "d2" && !o.accepted && o.message.contains("Battery")));
        let start = backend
            .command(CommandRequest { command: VehicleCommand::Start, drone_ids: vec!["d1".into()] })
            .await
            .unwrap();
        assert!(start[0].accepted, "{start:?}");
        let before = backend.fleet().await.unwrap().drones[0].position.unwrap();
        for _ in 0..50 {
            backend.step(Duration::from_secs(1));
        }
        let after = backend.fleet().await.unwrap().drones[0].position.unwrap();
        assert!(distance_m(before, after) > 100.0);
        assert!(backend.missions().await.unwrap()[0].reached_items > 0);
    }
}
