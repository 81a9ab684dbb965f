//! Patrols over many grid cells: cover every cell, order the cells, route around no-fly zones, split the work
//! into battery-sized sorties and share them between drones.
//!
//! The steps, all in one [`LocalFrame`] around the area:
//! 1. each cell minus the no-fly zones (grown by [`PatrolRequest::zone_margin_m`]) and clipped to the fence
//!    is swept ([`crate::coverage::sweep`]); a cell that cannot be covered is reported in
//!    [`PatrolPlan::uncovered`] with the reason;
//! 2. cells go to their nearest launch point, and drones to launch points in proportion to the work;
//! 3. per launch point the cells are ordered by priority band, then by nearest neighbour and 2-opt within each
//!    band (below), and each cell's entry corner is the one nearest to where the drone comes from;
//! 4. the passes are packed into sorties greedily in that order: a pass joins the current sortie if the transit
//!    to it, the pass and the routed flight home still fit the battery budget; a pass too long for a fresh
//!    sortie is split; every transit leg is routed on the visibility graph ([`Airspace`]);
//! 5. balancing across launch points ([`PatrolRequest::balance_launch_points`]): while the launch point whose
//!    drones land last can hand one of its cells to another launch point with drones so that the plan's finish
//!    (the latest landing of any drone) drops, the move that drops it most is made and both launch points are
//!    planned again with steps 3 and 4. The cells tried are the ones the receiving launch point reaches with the
//!    least detour (the boundary between the two groups, up to 3 per launch point); a move that would leave more
//!    passes beyond battery range is never made, and at most 64 trial re-plans are made, so planning time stays
//!    bounded (500 cells, 3 launch points: finish 1253 -> 1030 min, 93 -> 490 ms in the `plan` bench);
//! 6. sorties go to the launch point's drones longest first, each to the drone that finishes first
//!    (with [`PatrolRequest::battery_swap_s`] between sorties); every drone flies its sorties in packing order.
//!
//! Priority: a cell's [`GridCell::priority`] (higher is more urgent; a cell without one counts as 0) sets its
//! band. Within one launch point all cells of a higher band are packed before any cell of a lower band, so a
//! drone never flies a lower-priority cell in an earlier sortie than a higher-priority cell of its launch point.
//! This costs some extra transit when the bands are spread over the area; it does not order cells across
//! launch points, whose drones fly at the same time.

use std::collections::VecDeque;
use std::fmt;

use geo::{Area, BooleanOps, BoundingRect, Centroid, Coord, Intersects, MultiPolygon, Rect, Validation};

use crate::area::{GridCell, LaunchPoint, NoFlyZone, ZoneShape, to_local};
use crate::camera::CameraSpec;
use crate::coverage::{EntryCorner, Pass, SurveyGeometry, Sweep, sweep};
use crate::error::PlanError;
use crate::geo::{GeoPoint, LocalFrame, LocalPoint};
use crate::mission::{Battery, FenceZone, FlightModel, Home, Limits, Mission, MissionStep};
use crate::mission_item::MissionFrame;
use crate::routing::{Airspace, RoutesTo, distance, path_length};

/// How high to fly: from a ground sample distance or directly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AltitudeTarget {
    /// Fly at the height that gives this many metres per pixel.
    GroundSampleDistance(f64),
    /// Fly at this height above ground, metres.
    Height(f64),
}

/// How the camera is told to take photos along a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriggerMode {
    /// `DO_SET_CAM_TRIGG_DIST` at the start of a pass and 0 at its end (ArduPilot, most cameras).
    #[default]
    Distance,
    /// `IMAGE_START_CAPTURE` with an interval, `IMAGE_STOP_CAPTURE` at the end (MAVLink camera protocol).
    Interval,
}

/// Everything a patrol plan needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PatrolRequest {
    /// The cells to cover.
    pub cells: Vec<GridCell>,
    /// No-fly zones.
    pub zones: Vec<NoFlyZone>,
    /// An area every leg must stay inside, if any.
    pub inclusion_fence: Option<ZoneShape>,
    /// Where drones take off; drones are shared between them.
    pub launch_points: Vec<LaunchPoint>,
    /// Number of drones.
    pub drones: usize,
    /// The survey camera.
    pub camera: CameraSpec,
    /// Ground sample distance or height.
    pub altitude: AltitudeTarget,
    /// Front (along-track) overlap, fraction.
    pub front_overlap: f64,
    /// Side (across-track) overlap, fraction.
    pub side_overlap: f64,
    /// Speeds and waypoint cost.
    pub flight: FlightModel,
    /// Battery endurance and reserve.
    pub battery: Battery,
    /// Lowest flight altitude above ground, metres.
    pub min_alt_m: f64,
    /// Ceiling above ground, metres.
    pub max_alt_m: f64,
    /// Distance kept from every no-fly zone (and inside the fence), metres.
    pub zone_margin_m: f64,
    /// Straight run-in and run-out at each end of a pass, metres.
    pub turnaround_m: f64,
    /// Distance or interval triggering.
    pub trigger: TriggerMode,
    /// Time on the ground between two sorties of one drone (battery swap), seconds.
    pub battery_swap_s: f64,
    /// Move cells between launch points to balance when the drones are done (module doc, step 5); `false`
    /// keeps every cell with its nearest launch point.
    pub balance_launch_points: bool,
}

impl PatrolRequest {
    /// A request with the usual defaults: 75 % front and 70 % side overlap, [`FlightModel::default`],
    /// [`Battery::default`], ceiling 120 m, floor 10 m, 10 m zone margin, 5 m turnarounds, distance
    /// triggering, 3 minutes per battery swap and balancing across launch points.
    pub fn new(
        cells: Vec<GridCell>,
        launch_points: Vec<LaunchPoint>,
        camera: CameraSpec,
        altitude: AltitudeTarget,
    ) -> Self {
        Self {
            cells,
            zones: Vec::new(),
            inclusion_fence: None,
            launch_points,
            drones: 1,
            camera,
            altitude,
            front_overlap: 0.75,
            side_overlap: 0.7,
            flight: FlightModel::default(),
            battery: Battery::default(),
            min_alt_m: 10.0,
            max_alt_m: 120.0,
            zone_margin_m: 10.0,
            turnaround_m: 5.0,
            trigger: TriggerMode::Distance,
            battery_swap_s: 180.0,
            balance_launch_points: true,
        }
    }

    /// The limits a mission of this patrol must respect ([`Mission::validate`]).
    pub fn limits(&self) -> Limits {
        Limits {
            min_alt_m: self.min_alt_m,
            max_alt_m: self.max_alt_m,
            exclusions: self.zones.clone(),
            inclusion: self.inclusion_fence.clone(),
            flight: self.flight,
            battery: Some(self.battery),
        }
    }
}

/// Why a cell is not covered.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum UncoveredReason {
    /// The cell's polygon is invalid in the planning frame.
    InvalidGeometry(String),
    /// All of the cell lies inside no-fly zones (or within the margin around them).
    InsideNoFlyZone {
        /// The zones that cover it.
        zones: Vec<String>,
    },
    /// All of the cell lies outside the inclusion fence.
    OutsideFence,
    /// What is left to fly is smaller than one photo footprint.
    SmallerThanFootprint {
        /// Area left to cover, square metres.
        area_m2: f64,
        /// One footprint, square metres.
        footprint_m2: f64,
    },
    /// No pass of the cell can be reached from a launch point without entering a zone.
    Unreachable,
    /// Parts of the cell are too far for one battery from every launch point; the rest is flown.
    BeyondBatteryRange,
}

impl fmt::Display for UncoveredReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UncoveredReason::InvalidGeometry(why) => write!(f, "invalid geometry: {why}"),
            UncoveredReason::InsideNoFlyZone { zones } => {
                write!(f, "inside no-fly zone {} (with the safety margin)", zones.join(", "))
            }
            UncoveredReason::OutsideFence => write!(f, "outside the inclusion fence"),
            UncoveredReason::SmallerThanFootprint { area_m2, footprint_m2 } => write!(
                f,
                "only {area_m2:.0} m² left to fly, smaller than one photo footprint ({footprint_m2:.0} m²): lower the GSD or merge the cell"
            ),
            UncoveredReason::Unreachable => {
                write!(f, "cannot be reached from any launch point around the no-fly zones")
            }
            UncoveredReason::BeyondBatteryRange => {
                write!(f, "partly beyond battery range of every launch point (the reachable part is flown)")
            }
        }
    }
}

/// A cell that is not (fully) covered.
#[derive(Debug, Clone, PartialEq)]
pub struct UncoveredCell {
    /// The cell's id.
    pub id: String,
    /// Why.
    pub reason: UncoveredReason,
}

/// A cell that is covered.
#[derive(Debug, Clone, PartialEq)]
pub struct CoveredCell {
    /// Index into [`PatrolRequest::cells`].
    pub index: usize,
    /// The cell's id.
    pub id: String,
    /// The area flown, in the plan's local frame (the cell minus grown zones, inside the fence).
    pub region_local: MultiPolygon<f64>,
    /// Direction of the passes, degrees counter-clockwise from east.
    pub sweep_angle_deg: f64,
    /// Number of passes.
    pub passes: usize,
}

/// One photo the plan takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Photo {
    /// Where the drone is.
    pub point: GeoPoint,
    /// The drone's heading, degrees clockwise from north (the image top faces it).
    pub heading_deg: f64,
    /// Index of the cell into [`PatrolRequest::cells`].
    pub cell: usize,
}

/// One flight on one battery.
#[derive(Debug, Clone, PartialEq)]
pub struct Sortie {
    /// The drone, numbered from 1.
    pub drone: usize,
    /// The launch point's id.
    pub launch_id: String,
    /// The mission to upload.
    pub mission: Mission,
    /// The flown route (home, waypoints, home).
    pub route: Vec<GeoPoint>,
    /// Horizontal distance, metres.
    pub distance_m: f64,
    /// Estimated flight time, seconds ([`Mission::summary`]).
    pub flight_time_s: f64,
    /// The photos.
    pub photos: Vec<Photo>,
    /// Ids of the cells (fully or partly) flown, in order.
    pub cells: Vec<String>,
    /// Planned take-off, seconds after the patrol starts.
    pub start_s: f64,
}

/// One drone's day.
#[derive(Debug, Clone, PartialEq)]
pub struct DroneSchedule {
    /// The drone, numbered from 1.
    pub drone: usize,
    /// Its launch point's id.
    pub launch_id: String,
    /// Indices into [`PatrolPlan::sorties`], in flying order.
    pub sorties: Vec<usize>,
    /// When its last sortie lands, seconds after the start.
    pub finish_s: f64,
}

/// A complete patrol plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PatrolPlan {
    /// The local frame every `*_local` geometry is in.
    pub frame: LocalFrame,
    /// Height, spacing, trigger distance.
    pub survey: SurveyGeometry,
    /// The trigger mode used.
    pub trigger: TriggerMode,
    /// Seconds between photos at cruise speed.
    pub trigger_interval_s: f64,
    /// Sorties, grouped by drone in flying order.
    pub sorties: Vec<Sortie>,
    /// Drone schedules.
    pub drones: Vec<DroneSchedule>,
    /// Cells covered.
    pub covered: Vec<CoveredCell>,
    /// Cells not (fully) covered, with the reason.
    pub uncovered: Vec<UncoveredCell>,
}

/// Totals over a plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanTotals {
    /// Horizontal distance of all sorties, metres.
    pub distance_m: f64,
    /// Flight time of all sorties, seconds.
    pub flight_time_s: f64,
    /// Photos.
    pub photos: usize,
    /// Sorties (= batteries used).
    pub sorties: usize,
    /// When the last drone lands, seconds after the start.
    pub finish_s: f64,
}

impl PatrolPlan {
    /// Totals over all sorties.
    pub fn totals(&self) -> PlanTotals {
        PlanTotals {
            distance_m: self.sorties.iter().map(|s| s.distance_m).sum(),
            flight_time_s: self.sorties.iter().map(|s| s.flight_time_s).sum(),
            photos: self.sorties.iter().map(|s| s.photos.len()).sum(),
            sorties: self.sorties.len(),
            finish_s: self.drones.iter().map(|d| d.finish_s).fold(0.0, f64::max),
        }
    }

    /// The ground footprint of a photo as a closed WGS84 ring (nadir camera, image width across track).
    pub fn photo_footprint(&self, photo: &Photo) -> Vec<GeoPoint> {
        let c = self.frame.to_local(photo.point);
        let (half_w, half_h) = (self.survey.footprint_across_m / 2.0, self.survey.footprint_along_m / 2.0);
        let h = photo.heading_deg.to_radians();
        let (fwd, right) = ((h.sin(), h.cos()), (h.cos(), -h.sin()));
        [(-1.0, 1.0), (1.0, 1.0), (1.0, -1.0), (-1.0, -1.0), (-1.0, 1.0)]
            .iter()
            .map(|(sx, sy)| {
                let e = c.east_m + sx * half_w * right.0 + sy * half_h * fwd.0;
                let n = c.north_m + sx * half_w * right.1 + sy * half_h * fwd.1;
                self.frame.to_geo(LocalPoint::new(e, n))
            })
            .collect()
    }
}

/// A cell ready to fly.
struct CellWork {
    index: usize,
    sweep: Sweep,
    centroid: Coord<f64>,
}

fn c(p: LocalPoint) -> Coord<f64> {
    Coord { x: p.east_m, y: p.north_m }
}

fn check_request(req: &PatrolRequest) -> Result<(), PlanError> {
    if req.cells.is_empty() {
        return Err(PlanError::Empty { what: "the cell list".into(), hint: "pick at least one grid cell".into() });
    }
    if req.launch_points.is_empty() {
        return Err(PlanError::Empty {
            what: "the launch point list".into(),
            hint: "give at least one launch point (a GeoJSON Point)".into(),
        });
    }
    if req.drones == 0 {
        return Err(PlanError::parameter("drones", "at least one drone is needed"));
    }
    let positive = |name: &'static str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(PlanError::parameter(name, format!("must be above 0, got {v}")))
        }
    };
    positive("cruise_speed", req.flight.cruise_speed_mps)?;
    positive("vertical_speed", req.flight.vertical_speed_mps)?;
    positive("endurance", req.battery.endurance_s)?;
    if !(0.0..1.0).contains(&req.battery.reserve_fraction) {
        return Err(PlanError::parameter(
            "reserve",
            format!("must be in [0, 1), got {}", req.battery.reserve_fraction),
        ));
    }
    if !(req.zone_margin_m.is_finite() && req.zone_margin_m >= 0.0) {
        return Err(PlanError::parameter("zone_margin", format!("must be 0 m or more, got {}", req.zone_margin_m)));
    }
    if !(req.turnaround_m.is_finite() && req.turnaround_m >= 0.0) {
        return Err(PlanError::parameter("turnaround", format!("must be 0 m or more, got {}", req.turnaround_m)));
    }
    if req.max_alt_m.partial_cmp(&req.min_alt_m) != Some(std::cmp::Ordering::Greater) {
        return Err(PlanError::parameter("max_alt", "the ceiling must be above the floor"));
    }
    Ok(())
}

fn flight_altitude(req: &PatrolRequest, intrinsics: &crate::camera::Intrinsics) -> Result<f64, PlanError> {
    let altitude_m = match req.altitude {
        AltitudeTarget::GroundSampleDistance(gsd) => {
            if !(gsd.is_finite() && gsd > 0.0) {
                return Err(PlanError::parameter("gsd", format!("must be above 0 m/px, got {gsd}")));
            }
            intrinsics.height_for_gsd_m(gsd)
        }
        AltitudeTarget::Height(h) => h,
    };
    if altitude_m > req.max_alt_m {
        return Err(PlanError::parameter(
            "gsd",
            format!(
                "needs {altitude_m:.1} m above ground, over the {:.0} m ceiling: use a GSD of at most {:.4} m/px",
                req.max_alt_m,
                intrinsics.gsd_m(req.max_alt_m)
            ),
        ));
    }
    if altitude_m < req.min_alt_m {
        return Err(PlanError::parameter(
            "gsd",
            format!(
                "needs {altitude_m:.1} m above ground, under the {:.0} m floor: use a GSD of at least {:.4} m/px",
                req.min_alt_m,
                intrinsics.gsd_m(req.min_alt_m)
            ),
        ));
    }
    Ok(altitude_m)
}

fn area_frame(req: &PatrolRequest) -> LocalFrame {
    let (mut lat0, mut lat1, mut lon0, mut lon1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let points = req
        .cells
        .iter()
        .flat_map(|c| {
            c.area.bounding_rect().map(|r| [GeoPoint::new(r.min().y, r.min().x), GeoPoint::new(r.max().y, r.max().x)])
        })
        .flatten()
        .chain(req.launch_points.iter().map(|l| l.point));
    for p in points {
        lat0 = lat0.min(p.lat_deg);
        lat1 = lat1.max(p.lat_deg);
        lon0 = lon0.min(p.lon_deg);
        lon1 = lon1.max(p.lon_deg);
    }
    LocalFrame::new(GeoPoint::new((lat0 + lat1) / 2.0, (lon0 + lon1) / 2.0))
}

/// Plans a patrol.
///
/// # Errors
/// Invalid parameters or camera, an altitude outside the limits, no cells or launch points, or a launch point
/// inside a no-fly zone. Cells that cannot be covered are not errors: they are listed in
/// [`PatrolPlan::uncovered`].
pub fn plan_patrol(req: &PatrolRequest) -> Result<PatrolPlan, PlanError> {
    check_request(req)?;
    let intrinsics = req.camera.intrinsics()?;
    let altitude_m = flight_altitude(req, &intrinsics)?;
    let survey = SurveyGeometry::new(&intrinsics, altitude_m, req.front_overlap, req.side_overlap)?;
    let trigger_interval_s = survey.trigger_distance_m / req.flight.cruise_speed_mps;
    if req.camera.min_trigger_interval_s > trigger_interval_s {
        return Err(PlanError::parameter(
            "cruise_speed",
            format!(
                "photos every {:.1} m at {:.1} m/s come every {trigger_interval_s:.2} s, faster than the camera's {:.2} s: fly at most {:.1} m/s",
                survey.trigger_distance_m,
                req.flight.cruise_speed_mps,
                req.camera.min_trigger_interval_s,
                survey.trigger_distance_m / req.camera.min_trigger_interval_s
            ),
        ));
    }
    let frame = area_frame(req);
    let zones_local: Vec<MultiPolygon<f64>> = req.zones.iter().map(|z| z.shape.to_local(&frame)).collect();
    let fence_local = req.inclusion_fence.as_ref().map(|f| f.to_local(&frame));
    let airspace = Airspace::new(&zones_local, req.zone_margin_m, fence_local.as_ref());
    let launches: Vec<Coord<f64>> = req.launch_points.iter().map(|l| c(frame.to_local(l.point))).collect();
    for (l, p) in req.launch_points.iter().zip(&launches) {
        if !airspace.point_free(*p) {
            return Err(PlanError::InvalidFeature {
                what: "launch point",
                id: l.id.clone(),
                reason: format!(
                    "lies inside a no-fly zone, within {} m of one, or outside the fence: move it",
                    req.zone_margin_m
                ),
            });
        }
    }

    let mut uncovered = Vec::new();
    let mut works = Vec::new();
    let mut covered = Vec::new();
    let obstacles = airspace.obstacles();
    let obstacles_rect = obstacles.bounding_rect();
    let fence_inner = airspace.fence().map(|f| MultiPolygon::new(vec![f.clone()]));
    for (index, cell) in req.cells.iter().enumerate() {
        let local = to_local(&cell.area, &frame);
        let uncover = |reason| UncoveredCell { id: cell.id.clone(), reason };
        if let Some(problem) = local.validation_errors().first() {
            uncovered.push(uncover(UncoveredReason::InvalidGeometry(problem.to_string())));
            continue;
        }
        let mut region = local.clone();
        let touches_zone =
            matches!((local.bounding_rect(), obstacles_rect), (Some(a), Some(b)) if rect_overlap(&a, &b));
        if touches_zone {
            region = region.difference(&obstacles);
        }
        if let Some(f) = &fence_inner {
            region = region.intersection(f);
        }
        let area_m2 = region.unsigned_area();
        if area_m2 < 1e-3 {
            let zones: Vec<String> = req
                .zones
                .iter()
                .zip(&zones_local)
                .filter(|(_, z)| z.intersects(&local))
                .map(|(z, _)| z.id.clone())
                .collect();
            uncovered.push(uncover(if touches_zone && (!zones.is_empty() || fence_inner.is_none()) {
                UncoveredReason::InsideNoFlyZone { zones }
            } else {
                UncoveredReason::OutsideFence
            }));
            continue;
        }
        if area_m2 < survey.footprint_area_m2() {
            uncovered.push(uncover(UncoveredReason::SmallerThanFootprint {
                area_m2,
                footprint_m2: survey.footprint_area_m2(),
            }));
            continue;
        }
        let Some(sw) = sweep(&region, &survey, &airspace, &req.flight, req.turnaround_m) else {
            uncovered.push(uncover(UncoveredReason::Unreachable));
            continue;
        };
        let first = sw.passes(EntryCorner::ALL[0], &airspace);
        // One route per cell: a pass that still turns out unreachable while packing is reported then.
        let reachable = launches.iter().any(|l| airspace.route(*l, first[0].entry).is_some());
        if !reachable {
            uncovered.push(uncover(UncoveredReason::Unreachable));
            continue;
        }
        let centroid = region.centroid().map_or(first[0].start, |p| p.0);
        covered.push(CoveredCell {
            index,
            id: cell.id.clone(),
            region_local: region,
            sweep_angle_deg: sw.angle_deg,
            passes: sw.pass_count(),
        });
        works.push(CellWork { index, sweep: sw, centroid });
    }

    // Cells to their nearest launch point; drones to launch points by work.
    let nearest = |p: Coord<f64>, allowed: &[usize]| {
        allowed
            .iter()
            .copied()
            .min_by(|&a, &b| distance(p, launches[a]).total_cmp(&distance(p, launches[b])).then(a.cmp(&b)))
    };
    let all: Vec<usize> = (0..launches.len()).collect();
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); launches.len()];
    for (w, work) in works.iter().enumerate() {
        if let Some(l) = nearest(work.centroid, &all) {
            groups[l].push(w);
        }
    }
    let planner = GroupPlanner::new(req, &frame, &airspace, &survey, &works, &launches);
    let work_estimate = |l: usize, ws: &[usize]| -> f64 {
        ws.iter()
            .map(|&w| {
                let passes = &planner.corner_passes[w][0];
                passes.iter().map(Pass::length_m).sum::<f64>() + distance(launches[l], works[w].centroid) * 0.2
            })
            .sum()
    };
    let mut order: Vec<usize> = (0..launches.len()).filter(|&l| !groups[l].is_empty()).collect();
    let estimates: Vec<f64> = (0..launches.len()).map(|l| work_estimate(l, &groups[l])).collect();
    order.sort_by(|&a, &b| estimates[b].total_cmp(&estimates[a]).then(a.cmp(&b)));
    if req.drones < order.len() {
        let kept: Vec<usize> = order[..req.drones].to_vec();
        for &l in &order[req.drones..] {
            for w in std::mem::take(&mut groups[l]) {
                if let Some(k) = nearest(works[w].centroid, &kept) {
                    groups[k].push(w);
                }
            }
        }
        order = kept;
    }
    let mut drone_count = vec![0usize; launches.len()];
    for &l in &order {
        drone_count[l] = 1;
    }
    for _ in order.len()..req.drones {
        let best = order.iter().copied().max_by(|&a, &b| {
            #[allow(clippy::cast_precision_loss)]
            let (la, lb) = (estimates[a] / drone_count[a] as f64, estimates[b] / drone_count[b] as f64);
            la.total_cmp(&lb).then(b.cmp(&a))
        });
        match best {
            Some(l) => drone_count[l] += 1,
            None => break,
        }
    }
    order.sort_unstable();

    let mut group_plans: Vec<GroupPlan> =
        (0..launches.len()).map(|l| planner.plan(l, &groups[l], drone_count[l])).collect();
    if req.balance_launch_points {
        planner.balance(&order, &drone_count, &mut groups, &mut group_plans);
    }

    let mut sorties = Vec::new();
    let mut drones = Vec::new();
    let mut next_drone = 1;
    let mut beyond_range: Vec<usize> = Vec::new();
    for &l in &order {
        let group = std::mem::replace(&mut group_plans[l], GroupPlan::empty());
        beyond_range.extend(group.beyond);
        let ctx = planner.context(l, planner.budget_s);
        let first_sortie = sorties.len();
        for s in group.sorties {
            sorties.push(ctx.build(s, &req.launch_points[l], trigger_interval_s));
        }
        // Longest sortie first to the drone that is free first; each drone then flies its sorties in packing
        // order, so the sorties with the higher-priority cells come first.
        let ids: Vec<usize> = (next_drone..next_drone + drone_count[l]).collect();
        next_drone += drone_count[l];
        let times: Vec<f64> = sorties[first_sortie..].iter().map(|s| s.flight_time_s).collect();
        let (assigned, _) = longest_first(&times, ids.len(), req.battery_swap_s);
        for (d, list) in assigned.into_iter().enumerate() {
            let list: Vec<usize> = list.into_iter().map(|s| s + first_sortie).collect();
            let mut t = 0.0;
            for (k, &s) in list.iter().enumerate() {
                if k > 0 {
                    t += req.battery_swap_s;
                }
                sorties[s].drone = ids[d];
                sorties[s].start_s = t;
                t += sorties[s].flight_time_s;
            }
            drones.push(DroneSchedule {
                drone: ids[d],
                launch_id: req.launch_points[l].id.clone(),
                sorties: list,
                finish_s: t,
            });
        }
    }
    // Sorties grouped by drone, in flying order.
    let mut flying: Vec<usize> = drones.iter().flat_map(|d| d.sorties.iter().copied()).collect();
    let mut new_index = vec![0; sorties.len()];
    for (new, &old) in flying.iter().enumerate() {
        new_index[old] = new;
    }
    for d in &mut drones {
        for s in &mut d.sorties {
            *s = new_index[*s];
        }
    }
    let mut slots: Vec<Option<Sortie>> = sorties.into_iter().map(Some).collect();
    let sorties: Vec<Sortie> = flying.drain(..).filter_map(|old| slots[old].take()).collect();
    beyond_range.sort_unstable();
    beyond_range.dedup();
    for index in beyond_range {
        uncovered.push(UncoveredCell { id: req.cells[index].id.clone(), reason: UncoveredReason::BeyondBatteryRange });
    }
    drones.sort_by_key(|d| d.drone);
    Ok(PatrolPlan { frame, survey, trigger: req.trigger, trigger_interval_s, sorties, drones, covered, uncovered })
}

/// At most this many cells move between launch points while balancing (each move must lower the finish time,
/// so this only bounds the planning time on very large areas).
const MAX_BALANCE_MOVES: usize = 256;

/// How many boundary cells of the latest launch point are tried per receiving launch point, nearest first,
/// before balancing stops.
const BOUNDARY_CANDIDATES: usize = 3;

/// At most this many trial re-plans (two groups each) in all: on a large area (500 cells, 3 launch points)
/// balancing then costs about as much as the first plan several times over, not without bound.
const MAX_BALANCE_TRIALS: usize = 64;

/// One launch point's sorties before they become missions.
struct GroupPlan {
    sorties: Vec<OpenSortie>,
    /// Cells (indices into the request's cells) with a pass too far for one battery, once per such pass.
    beyond: Vec<usize>,
    /// When the launch point's last drone lands (packed flight times, longest first), seconds.
    finish_s: f64,
}

impl GroupPlan {
    fn empty() -> Self {
        Self { sorties: Vec::new(), beyond: Vec::new(), finish_s: 0.0 }
    }
}

/// Plans the sorties of one launch point's cells: used for the first plan and for every balancing trial.
struct GroupPlanner<'a> {
    req: &'a PatrolRequest,
    frame: &'a LocalFrame,
    airspace: &'a Airspace,
    survey: &'a SurveyGeometry,
    works: &'a [CellWork],
    launches: &'a [Coord<f64>],
    /// Each cell's passes from each of the [`EntryCorner::ALL`], computed once.
    corner_passes: Vec<Vec<Vec<Pass>>>,
    /// Routes home to each launch point.
    home_routes: Vec<RoutesTo>,
    /// Flight time a sortie may use, seconds (the battery budget less a small safety margin).
    budget_s: f64,
}

impl<'a> GroupPlanner<'a> {
    fn new(
        req: &'a PatrolRequest,
        frame: &'a LocalFrame,
        airspace: &'a Airspace,
        survey: &'a SurveyGeometry,
        works: &'a [CellWork],
        launches: &'a [Coord<f64>],
    ) -> Self {
        let corner_passes = works
            .iter()
            .map(|w| EntryCorner::ALL.iter().map(|corner| w.sweep.passes(*corner, airspace)).collect())
            .collect();
        let home_routes = launches.iter().map(|l| airspace.routes_to(*l)).collect();
        Self {
            req,
            frame,
            airspace,
            survey,
            works,
            launches,
            corner_passes,
            home_routes,
            budget_s: req.battery.budget_s() - 5.0,
        }
    }

    fn context(&self, launch: usize, budget_s: f64) -> SortieContext<'_> {
        SortieContext {
            req: self.req,
            frame: self.frame,
            airspace: self.airspace,
            survey: self.survey,
            launch: self.launches[launch],
            home_routes: &self.home_routes[launch],
            budget_s,
        }
    }

    /// Orders the cells `group` (indices into the works) of launch point `launch`, packs their passes into
    /// sorties and estimates when its `drones` drones are done.
    fn plan(&self, launch: usize, group: &[usize], drones: usize) -> GroupPlan {
        let mut group = group.to_vec();
        group.sort_unstable();
        let keyed: Vec<(i64, Coord<f64>)> = group
            .iter()
            .map(|&w| (self.req.cells[self.works[w].index].priority.unwrap_or(0), self.works[w].centroid))
            .collect();
        let cell_order: Vec<usize> =
            order_by_priority(self.launches[launch], &keyed).into_iter().map(|i| group[i]).collect();
        let mut queue: VecDeque<(usize, Pass)> = VecDeque::new();
        let mut pos = self.launches[launch];
        for (k, &w) in cell_order.iter().enumerate() {
            let next = cell_order.get(k + 1).map_or(self.launches[launch], |&n| self.works[n].centroid);
            let best = self.corner_passes[w].iter().filter(|p| !p.is_empty()).min_by(|a, b| {
                let cost = |p: &[Pass]| distance(pos, p[0].entry) + distance(p[p.len() - 1].exit, next);
                cost(a).total_cmp(&cost(b))
            });
            if let Some(passes) = best {
                pos = passes[passes.len() - 1].exit;
                queue.extend(passes.iter().map(|p| (self.works[w].index, *p)));
            }
        }
        let ctx = self.context(launch, self.budget_s);
        let mut beyond = Vec::new();
        let mut packed = ctx.pack(queue.clone(), &mut beyond);
        let times: Vec<f64> = packed.iter().map(|s| s.time_s).collect();
        let (_, mut finish_s) = longest_first(&times, drones, self.req.battery_swap_s);
        // Balance the finish time: when the sorties do not divide evenly between the launch point's drones
        // (one sortie for two drones, say), pack again into smaller sorties and keep that if all drones are
        // done sooner and nothing more is left out.
        if drones > 1 && !packed.len().is_multiple_of(drones) {
            let wanted = packed.len().div_ceil(drones) * drones;
            #[allow(clippy::cast_precision_loss)]
            let mut low = times.iter().sum::<f64>() / wanted as f64;
            let mut high = self.budget_s;
            // Bisect the smallest sortie budget that still gives at most `wanted` sorties.
            for _ in 0..8 {
                let target = (low + high) / 2.0;
                let smaller = self.context(launch, target);
                let mut beyond_smaller = Vec::new();
                let repacked = smaller.pack(queue.clone(), &mut beyond_smaller);
                if repacked.len() <= wanted && beyond_smaller.len() <= beyond.len() {
                    high = target;
                    let new_times: Vec<f64> = repacked.iter().map(|s| s.time_s).collect();
                    let (_, finish) = longest_first(&new_times, drones, self.req.battery_swap_s);
                    if finish < finish_s {
                        finish_s = finish;
                        packed = repacked;
                        beyond = beyond_smaller;
                    }
                } else {
                    low = target;
                }
            }
        }
        GroupPlan { sorties: packed, beyond, finish_s }
    }

    /// The cells of `group` (launch point `from`) that are the smallest detour for launch point `to`: least
    /// extra distance from `to` than from `from` first.
    fn boundary_cells(&self, group: &[usize], from: usize, to: usize) -> Vec<usize> {
        let detour = |w: usize| {
            let centroid = self.works[w].centroid;
            distance(centroid, self.launches[to]) - distance(centroid, self.launches[from])
        };
        let mut cells = group.to_vec();
        cells.sort_by(|&a, &b| detour(a).total_cmp(&detour(b)).then(a.cmp(&b)));
        cells.truncate(BOUNDARY_CANDIDATES);
        cells
    }

    /// Moves cells, one at a time, from the launch point whose drones land last to the staffed launch point
    /// where the move gives the earliest overall finish; a move is kept only when it lowers the overall finish
    /// and leaves no more passes out. Re-plans the two groups of every trial with [`GroupPlanner::plan`].
    fn balance(&self, staffed: &[usize], drone_count: &[usize], groups: &mut [Vec<usize>], plans: &mut [GroupPlan]) {
        let mut trials = 0;
        for _ in 0..MAX_BALANCE_MOVES {
            let latest = staffed
                .iter()
                .copied()
                .max_by(|&a, &b| plans[a].finish_s.total_cmp(&plans[b].finish_s).then(b.cmp(&a)));
            let Some(source) = latest else { return };
            let makespan_s = plans[source].finish_s;
            let candidates: Vec<(usize, Vec<usize>)> = staffed
                .iter()
                .filter(|&&target| target != source && plans[target].finish_s < makespan_s)
                .map(|&target| (target, self.boundary_cells(&groups[source], source, target)))
                .collect();
            let mut best: Option<(f64, usize, usize, GroupPlan, GroupPlan)> = None;
            // Nearest boundary cells first: a farther one is only tried when no nearer one helps anywhere.
            for rank in 0..BOUNDARY_CANDIDATES {
                for (target, cells) in &candidates {
                    let (target, Some(&cell)) = (*target, cells.get(rank)) else { continue };
                    if trials == MAX_BALANCE_TRIALS {
                        break;
                    }
                    trials += 1;
                    let rest: Vec<usize> = groups[source].iter().copied().filter(|&w| w != cell).collect();
                    let mut grown = groups[target].clone();
                    grown.push(cell);
                    let from = self.plan(source, &rest, drone_count[source]);
                    let to = self.plan(target, &grown, drone_count[target]);
                    if from.beyond.len() + to.beyond.len() > plans[source].beyond.len() + plans[target].beyond.len() {
                        continue;
                    }
                    let new_makespan_s = staffed
                        .iter()
                        .map(|&l| match l {
                            l if l == source => from.finish_s,
                            l if l == target => to.finish_s,
                            l => plans[l].finish_s,
                        })
                        .fold(0.0, f64::max);
                    let bar_s = best.as_ref().map_or(makespan_s, |b| b.0);
                    // Strictly better by more than rounding, so that balancing cannot cycle.
                    if new_makespan_s < bar_s - 1e-6 {
                        best = Some((new_makespan_s, target, cell, from, to));
                    }
                }
                if best.is_some() {
                    break;
                }
            }
            let Some((_, target, cell, from, to)) = best else { return };
            groups[source].retain(|&w| w != cell);
            groups[target].push(cell);
            plans[source] = from;
            plans[target] = to;
        }
    }
}

/// Longest processing time first: each sortie (longest first) to the drone that is free first. Returns each
/// drone's sorties (indices into `times`, in flying order) and when the last drone lands.
fn longest_first(times: &[f64], drones: usize, swap_s: f64) -> (Vec<Vec<usize>>, f64) {
    let drones = drones.max(1);
    let mut load = vec![0.0_f64; drones];
    let mut assigned: Vec<Vec<usize>> = vec![Vec::new(); drones];
    let mut by_length: Vec<usize> = (0..times.len()).collect();
    by_length.sort_by(|&a, &b| times[b].total_cmp(&times[a]).then(a.cmp(&b)));
    for s in by_length {
        let d = (0..drones).min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b))).unwrap_or(0);
        load[d] += times[s] + swap_s;
        assigned[d].push(s);
    }
    for list in &mut assigned {
        list.sort_unstable();
    }
    let finish =
        load.iter().zip(&assigned).map(|(l, a)| if a.is_empty() { 0.0 } else { l - swap_s }).fold(0.0, f64::max);
    (assigned, finish)
}

fn rect_overlap(a: &Rect<f64>, b: &Rect<f64>) -> bool {
    a.min().x <= b.max().x && b.min().x <= a.max().x && a.min().y <= b.max().y && b.min().y <= a.max().y
}

/// Visits `points` starting from `start`: nearest neighbour, then 2-opt on the closed tour. Returns indices.
pub fn order_cells(start: Coord<f64>, points: &[Coord<f64>]) -> Vec<usize> {
    let n = points.len();
    let mut visited = vec![false; n];
    let mut tour = Vec::with_capacity(n);
    let mut pos = start;
    for _ in 0..n {
        let next = (0..n)
            .filter(|&i| !visited[i])
            .min_by(|&a, &b| distance(pos, points[a]).total_cmp(&distance(pos, points[b])).then(a.cmp(&b)));
        let Some(i) = next else { break };
        visited[i] = true;
        tour.push(i);
        pos = points[i];
    }
    // 2-opt on [start, tour..., start].
    let at = |tour: &[usize], k: usize| if k == 0 || k == tour.len() + 1 { start } else { points[tour[k - 1]] };
    for _ in 0..100 {
        let mut improved = false;
        for i in 1..=n {
            for j in i + 1..=n {
                let (a, b) = (at(&tour, i - 1), at(&tour, i));
                let (cc, d) = (at(&tour, j), at(&tour, j + 1));
                let delta = distance(a, cc) + distance(b, d) - distance(a, b) - distance(cc, d);
                if delta < -1e-6 {
                    tour[i - 1..j].reverse();
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
    tour
}

/// Orders cells given as (priority, centroid) from `start`: by priority band, highest first, and within a band
/// nearest neighbour then 2-opt ([`order_cells`]) from where the previous band ended. Returns indices.
fn order_by_priority(start: Coord<f64>, cells: &[(i64, Coord<f64>)]) -> Vec<usize> {
    let mut bands: Vec<i64> = cells.iter().map(|&(priority, _)| priority).collect();
    bands.sort_unstable_by(|a, b| b.cmp(a));
    bands.dedup();
    let mut order = Vec::with_capacity(cells.len());
    let mut pos = start;
    for band in bands {
        let members: Vec<usize> = (0..cells.len()).filter(|&i| cells[i].0 == band).collect();
        let points: Vec<Coord<f64>> = members.iter().map(|&i| cells[i].1).collect();
        let band_order = order_cells(pos, &points);
        if let Some(&last) = band_order.last() {
            pos = points[last];
        }
        order.extend(band_order.into_iter().map(|k| members[k]));
    }
    order
}

/// A sortie while it is being packed.
struct OpenSortie {
    /// (transit path from the previous position to the pass entry, cell index, pass).
    legs: Vec<(Vec<Coord<f64>>, usize, Pass)>,
    home: Vec<Coord<f64>>,
    /// Estimated flight time, seconds.
    time_s: f64,
}

struct SortieContext<'a> {
    req: &'a PatrolRequest,
    frame: &'a LocalFrame,
    airspace: &'a Airspace,
    survey: &'a SurveyGeometry,
    launch: Coord<f64>,
    home_routes: &'a RoutesTo,
    budget_s: f64,
}

impl SortieContext<'_> {
    fn time_s(&self, distance_m: f64, waypoints: usize) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let penalty = waypoints as f64 * self.req.flight.waypoint_penalty_s;
        2.0 * self.survey.altitude_m / self.req.flight.vertical_speed_mps
            + distance_m / self.req.flight.cruise_speed_mps
            + penalty
    }

    /// Splits a pass at a multiple of the trigger distance near its middle; `None` when too short to split.
    fn split(&self, p: &Pass) -> Option<(Pass, Pass)> {
        let len = distance(p.start, p.end);
        let d = self.survey.trigger_distance_m;
        let k = (len / 2.0 / d).floor() * d;
        if k < d || len - k < d {
            return None;
        }
        let t = k / len;
        let mid = Coord { x: p.start.x + (p.end.x - p.start.x) * t, y: p.start.y + (p.end.y - p.start.y) * t };
        Some((
            Pass { entry: p.entry, start: p.start, end: mid, exit: mid },
            Pass { entry: mid, start: mid, end: p.end, exit: p.exit },
        ))
    }

    fn pack(&self, mut queue: VecDeque<(usize, Pass)>, beyond_range: &mut Vec<usize>) -> Vec<OpenSortie> {
        let mut out = Vec::new();
        let mut open = OpenSortie { legs: Vec::new(), home: vec![self.launch, self.launch], time_s: 0.0 };
        let (mut pos, mut dist, mut wps) = (self.launch, 0.0, 0usize);
        while let Some((cell, pass)) = queue.pop_front() {
            let (Some(transit), Some(home)) =
                (self.airspace.route(pos, pass.entry), self.airspace.route_to(pass.exit, self.home_routes))
            else {
                beyond_range.push(cell);
                continue;
            };
            let add_dist = path_length(&transit) + pass.length_m();
            let add_wps = transit.len() - 2 + pass.waypoints().len();
            let total = self.time_s(dist + add_dist + path_length(&home), wps + add_wps + home.len() - 2);
            if total <= self.budget_s {
                dist += add_dist;
                wps += add_wps;
                pos = pass.exit;
                open.legs.push((transit, cell, pass));
                open.home = home;
                open.time_s = total;
                continue;
            }
            if !open.legs.is_empty() {
                out.push(std::mem::replace(
                    &mut open,
                    OpenSortie { legs: Vec::new(), home: vec![self.launch, self.launch], time_s: 0.0 },
                ));
                (pos, dist, wps) = (self.launch, 0.0, 0);
                queue.push_front((cell, pass));
            } else if let Some((a, b)) = self.split(&pass) {
                queue.push_front((cell, b));
                queue.push_front((cell, a));
            } else {
                beyond_range.push(cell);
            }
        }
        if !open.legs.is_empty() {
            out.push(open);
        }
        out
    }

    fn geo(&self, p: Coord<f64>) -> GeoPoint {
        self.frame.to_geo(LocalPoint::new(p.x, p.y))
    }

    fn build(&self, open: OpenSortie, launch: &LaunchPoint, trigger_interval_s: f64) -> Sortie {
        let alt_m = self.survey.altitude_m;
        let waypoint = |p: GeoPoint| MissionStep::Waypoint {
            point: p,
            alt_m,
            frame: MissionFrame::GlobalRelativeAlt,
            hold_s: 0.0,
            yaw_deg: None,
        };
        let mut steps = vec![
            MissionStep::Takeoff { point: None, alt_m, frame: MissionFrame::GlobalRelativeAlt, yaw_deg: None },
            MissionStep::ChangeSpeed { speed_mps: self.req.flight.cruise_speed_mps },
        ];
        let mut route = vec![launch.point];
        let mut photos = Vec::new();
        let mut cells: Vec<String> = Vec::new();
        let mut push_wp = |steps: &mut Vec<MissionStep>, p: Coord<f64>| {
            let g = self.geo(p);
            route.push(g);
            steps.push(waypoint(g));
        };
        for (transit, cell, pass) in &open.legs {
            let id = &self.req.cells[*cell].id;
            if cells.last() != Some(id) {
                cells.push(id.clone());
            }
            for p in &transit[1..transit.len() - 1] {
                push_wp(&mut steps, *p);
            }
            if distance(pass.entry, pass.start) > 1e-6 {
                push_wp(&mut steps, pass.entry);
            }
            push_wp(&mut steps, pass.start);
            steps.push(match self.req.trigger {
                TriggerMode::Distance => {
                    MissionStep::CameraTriggerDistance { distance_m: self.survey.trigger_distance_m, trigger_now: true }
                }
                TriggerMode::Interval => MissionStep::CameraStartInterval { interval_s: trigger_interval_s, count: 0 },
            });
            if distance(pass.start, pass.end) > 1e-6 {
                push_wp(&mut steps, pass.end);
            }
            steps.push(match self.req.trigger {
                TriggerMode::Distance => MissionStep::CameraTriggerDistance { distance_m: 0.0, trigger_now: false },
                TriggerMode::Interval => MissionStep::CameraStop,
            });
            if distance(pass.end, pass.exit) > 1e-6 {
                push_wp(&mut steps, pass.exit);
            }
            let heading_deg = pass.heading_deg();
            photos.extend(pass.photo_points(self.survey.trigger_distance_m).into_iter().map(|p| Photo {
                point: self.geo(p),
                heading_deg,
                cell: *cell,
            }));
        }
        for p in &open.home[1..open.home.len() - 1] {
            push_wp(&mut steps, *p);
        }
        steps.push(MissionStep::ReturnToLaunch);
        route.push(launch.point);
        let mut fence: Vec<FenceZone> =
            self.req.zones.iter().flat_map(|z| FenceZone::from_zone_shape(&z.shape, false)).collect();
        if let Some(f) = &self.req.inclusion_fence {
            fence.extend(FenceZone::from_zone_shape(f, true));
        }
        // Polygons before circles, as `.plan` files store them, so that a saved plan reads back identical.
        fence.sort_by_key(|z| matches!(z.shape, crate::mission::FenceShape::Circle { .. }));
        let home = Some(Home { point: launch.point, alt_amsl_m: 0.0 });
        let planned = Mission { home, steps, fence, rally: Vec::new() };
        // Round everything to the precision mission items carry (1e-7 degrees, f32 parameters), so that the
        // mission is exactly what an autopilot or a file will hold.
        let mission = Mission::from_items(&planned.mission_items(), &planned.fence_items(), &[])
            .map_or(planned, |m| Mission { home, ..m });
        let summary = mission.summary(&self.req.flight);
        Sortie {
            drone: 0,
            launch_id: launch.id.clone(),
            route,
            distance_m: summary.distance_m,
            flight_time_s: summary.flight_time_s,
            mission,
            photos,
            cells,
            start_s: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use geo::{LineString, Polygon};

    use super::*;

    pub(crate) fn camera() -> CameraSpec {
        CameraSpec {
            name: "Mavic 3E wide".into(),
            image_width_px: 5280,
            image_height_px: 3956,
            sensor_width_mm: Some(17.3),
            sensor_height_mm: Some(13.0),
            focal_length_mm: Some(12.29),
            horizontal_fov_deg: None,
            min_trigger_interval_s: 0.7,
        }
    }

    fn square_cell(id: &str, lat: f64, lon: f64, size_deg: f64) -> GridCell {
        let ring = vec![
            (lon, lat),
            (lon + size_deg, lat),
            (lon + size_deg, lat + size_deg),
            (lon, lat + size_deg),
            (lon, lat),
        ];
        GridCell {
            id: id.into(),
            name: None,
            community: None,
            street: None,
            priority: None,
            demo: false,
            area: MultiPolygon::new(vec![Polygon::new(LineString::from(ring), vec![])]),
        }
    }

    /// Twelve 0.003-degree square cells, 4 columns east by 3 rows north from (22.54, 113.88), named
    /// `<prefix><column><row>`.
    fn grid_4x3(prefix: &str) -> Vec<GridCell> {
        let mut cells = Vec::new();
        for i in 0..4 {
            for j in 0..3 {
                cells.push(square_cell(
                    &format!("{prefix}{i}{j}"),
                    22.54 + 0.003 * f64::from(j),
                    113.88 + 0.003 * f64::from(i),
                    0.003,
                ));
            }
        }
        cells
    }

    fn launch(lat: f64, lon: f64) -> LaunchPoint {
        LaunchPoint { id: "L1".into(), name: None, point: GeoPoint::new(lat, lon) }
    }

    #[test]
    fn plans_a_grid_validly_and_reports_a_cell_inside_a_zone() {
        let cells = grid_4x3("C");
        let mut req = PatrolRequest::new(
            cells,
            vec![launch(22.5395, 113.8795)],
            camera(),
            AltitudeTarget::GroundSampleDistance(0.03),
        );
        req.drones = 2;
        req.zones = vec![NoFlyZone {
            id: "Z".into(),
            name: None,
            shape: ZoneShape::Circle { center: GeoPoint::new(22.5445, 113.8895), radius_m: 250.0 },
        }];
        let plan = plan_patrol(&req).unwrap();
        assert!(plan.uncovered.iter().any(|u| u.id == "C31" || u.id == "C21"), "{:?}", plan.uncovered);
        assert!(!plan.sorties.is_empty());
        let limits = req.limits();
        for s in &plan.sorties {
            let v = s.mission.validate(&limits);
            assert!(
                v.is_empty(),
                "sortie of drone {}: {:?}",
                s.drone,
                v.iter().map(ToString::to_string).collect::<Vec<_>>()
            );
        }
        assert_eq!(plan.drones.len(), 2);
        // Deterministic.
        assert_eq!(plan_patrol(&req).unwrap(), plan);
    }

    #[test]
    fn small_battery_gives_more_sorties_that_each_fit() {
        let cells = vec![square_cell("BIG", 22.54, 113.88, 0.01)];
        let mut req = PatrolRequest::new(
            cells,
            vec![launch(22.5395, 113.8795)],
            camera(),
            AltitudeTarget::GroundSampleDistance(0.03),
        );
        req.battery = Battery { endurance_s: 600.0, reserve_fraction: 0.2 };
        let plan = plan_patrol(&req).unwrap();
        assert!(plan.sorties.len() > 2, "{}", plan.sorties.len());
        for s in &plan.sorties {
            assert!(s.flight_time_s <= req.battery.budget_s(), "{}", s.flight_time_s);
        }
    }

    #[test]
    fn work_for_one_battery_is_shared_between_two_drones() {
        let cells = vec![square_cell("A", 22.54, 113.88, 0.002), square_cell("B", 22.54, 113.882, 0.002)];
        let mut req = PatrolRequest::new(
            cells,
            vec![launch(22.5395, 113.8795)],
            camera(),
            AltitudeTarget::GroundSampleDistance(0.03),
        );
        let one = plan_patrol(&req).unwrap();
        assert_eq!(one.sorties.len(), 1);
        req.drones = 2;
        let two = plan_patrol(&req).unwrap();
        assert_eq!(two.sorties.len(), 2);
        assert!(two.drones.iter().all(|d| d.sorties.len() == 1));
        assert!(
            two.totals().finish_s < one.totals().finish_s * 0.7,
            "{} vs {}",
            two.totals().finish_s,
            one.totals().finish_s
        );
        assert_eq!(two.totals().photos, one.totals().photos);
    }

    #[test]
    fn too_high_gsd_is_a_clear_error() {
        let req = PatrolRequest::new(
            vec![square_cell("A", 22.54, 113.88, 0.003)],
            vec![launch(22.5395, 113.8795)],
            camera(),
            AltitudeTarget::GroundSampleDistance(0.2),
        );
        let err = plan_patrol(&req).unwrap_err().to_string();
        assert!(err.contains("ceiling") && err.contains("at most"), "{err}");
    }

    #[test]
    fn tiny_cell_is_reported() {
        let req = PatrolRequest::new(
            vec![square_cell("TINY", 22.54, 113.88, 0.0005)],
            vec![launch(22.5395, 113.8795)],
            camera(),
            AltitudeTarget::GroundSampleDistance(0.03),
        );
        let plan = plan_patrol(&req).unwrap();
        assert!(matches!(plan.uncovered[0].reason, UncoveredReason::SmallerThanFootprint { .. }));
        assert!(plan.sorties.is_empty());
    }

    fn launch_named(id: &str, lat: f64, lon: f64) -> LaunchPoint {
        LaunchPoint { id: id.into(), name: None, point: GeoPoint::new(lat, lon) }
    }

    /// The ids of the cells flown in `plan`, sorted.
    fn flown_cells(plan: &PatrolPlan) -> Vec<String> {
        let mut ids: Vec<String> = plan.sorties.iter().flat_map(|s| s.cells.iter().cloned()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    #[test]
    fn balancing_moves_cells_to_the_idle_launch_point_and_lands_sooner() {
        // Twelve cells nearer to launch point A, one next to B: like the sample district, where one launch
        // point's drone flies three times longer than another's.
        let mut cells = grid_4x3("A");
        cells.push(square_cell("B00", 22.54, 113.903, 0.003));
        let mut req = PatrolRequest::new(
            cells,
            vec![launch_named("A", 22.5395, 113.8795), launch_named("B", 22.5395, 113.903)],
            camera(),
            AltitudeTarget::GroundSampleDistance(0.03),
        );
        req.drones = 2;
        let unbalanced = plan_patrol(&PatrolRequest { balance_launch_points: false, ..req.clone() }).unwrap();
        let balanced = plan_patrol(&req).unwrap();
        // The unbalanced plan really is lopsided: B's drone flies only its own cell.
        let b_cells = |plan: &PatrolPlan| -> Vec<String> {
            plan.sorties.iter().filter(|s| s.launch_id == "B").flat_map(|s| s.cells.iter().cloned()).collect()
        };
        assert_eq!(b_cells(&unbalanced), vec!["B00".to_string()]);
        assert!(b_cells(&balanced).iter().any(|id| id.starts_with('A')), "{:?}", b_cells(&balanced));
        assert!(
            balanced.totals().finish_s < unbalanced.totals().finish_s,
            "balanced {:.0} s, unbalanced {:.0} s",
            balanced.totals().finish_s,
            unbalanced.totals().finish_s
        );
        // Same work done, every sortie still valid, nothing more left out.
        assert_eq!(flown_cells(&balanced), flown_cells(&unbalanced));
        assert_eq!(balanced.uncovered, unbalanced.uncovered);
        let limits = req.limits();
        for s in &balanced.sorties {
            assert!(s.mission.validate(&limits).is_empty(), "sortie of drone {}", s.drone);
            assert!(s.flight_time_s <= req.battery.budget_s(), "{}", s.flight_time_s);
        }
        assert_eq!(plan_patrol(&req).unwrap(), balanced);
    }

    #[test]
    fn higher_priority_cells_are_flown_in_earlier_sorties() {
        // A row of cells going east from the launch point; the farthest are the most urgent, so nearest
        // neighbour alone would fly them last.
        let priorities = [1, 1, 2, 2, 3, 3];
        let cells: Vec<GridCell> = priorities
            .iter()
            .enumerate()
            .map(|(k, &p)| {
                #[allow(clippy::cast_precision_loss)]
                let lon = 113.88 + 0.003 * k as f64;
                GridCell { priority: Some(p), ..square_cell(&format!("P{k}"), 22.54, lon, 0.003) }
            })
            .collect();
        let mut req = PatrolRequest::new(
            cells,
            vec![launch(22.5395, 113.8795)],
            camera(),
            AltitudeTarget::GroundSampleDistance(0.03),
        );
        req.battery = Battery { endurance_s: 900.0, reserve_fraction: 0.2 };
        let priority_of =
            |id: &str| req.cells.iter().find(|c| c.id == id).and_then(|c| c.priority).expect("a planned cell");
        for drones in [1, 2] {
            req.drones = drones;
            let plan = plan_patrol(&req).unwrap();
            assert!(plan.uncovered.is_empty(), "{:?}", plan.uncovered);
            assert!(plan.sorties.len() >= 3, "{} sorties", plan.sorties.len());
            for d in &plan.drones {
                let flown: Vec<i64> =
                    d.sorties.iter().flat_map(|&s| plan.sorties[s].cells.iter().map(|id| priority_of(id))).collect();
                assert!(flown.windows(2).all(|w| w[0] >= w[1]), "drone {} flies priorities {flown:?}", d.drone);
            }
            let first_sorties_fly_priority_3 = plan
                .drones
                .iter()
                .filter_map(|d| d.sorties.first())
                .any(|&s| plan.sorties[s].cells.iter().any(|id| priority_of(id) == 3));
            assert!(first_sorties_fly_priority_3);
        }
    }

    #[test]
    fn two_opt_untangles_a_crossing_tour() {
        let pts = [
            Coord { x: 0.0, y: 10.0 },
            Coord { x: 10.0, y: 0.0 },
            Coord { x: 10.0, y: 10.0 },
            Coord { x: 0.0, y: 20.0 },
        ];
        let order = order_cells(Coord { x: 0.0, y: 0.0 }, &pts);
        let mut len = distance(Coord { x: 0.0, y: 0.0 }, pts[order[0]]);
        for w in order.windows(2) {
            len += distance(pts[w[0]], pts[w[1]]);
        }
        len += distance(pts[order[3]], Coord { x: 0.0, y: 0.0 });
        assert!(len <= 10.0 + 10.0 + 14.15 + 10.0 + 20.0 + 1e-6, "{order:?} {len}");
    }
}
