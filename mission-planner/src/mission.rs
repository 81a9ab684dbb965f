//! The mission model: typed steps, fence and rally points; conversion to and from [`MissionItem`] lists;
//! summary (distance, time, photos) and validation against [`Limits`].
//!
//! Altitudes of typed steps are in the item's `frame` (relative to home unless said otherwise). Items that have
//! no typed form, or whose parameters the typed form does not hold, are kept verbatim as
//! [`MissionStep::Raw`], so `from_items` followed by `to_items` gives the items back.

use std::fmt;

use geo::{Contains, Coord, Intersects, Line, LineString, MultiPolygon, Polygon};

use crate::area::{NoFlyZone, ZoneShape, circle_polygon};
use crate::geo::{GeoPoint, LocalFrame};
use crate::mission_item::{MissionFrame, MissionItem, MissionKind, cmd};

/// How fast a drone flies and what each waypoint costs, for flight-time estimates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlightModel {
    /// Horizontal speed, metres per second.
    pub cruise_speed_mps: f64,
    /// Climb and descent speed, metres per second.
    pub vertical_speed_mps: f64,
    /// Time lost slowing down and turning at each waypoint, seconds.
    pub waypoint_penalty_s: f64,
}

impl Default for FlightModel {
    /// A survey multicopter: 10 m/s cruise, 3 m/s climb, 2 s per waypoint.
    fn default() -> Self {
        Self { cruise_speed_mps: 10.0, vertical_speed_mps: 3.0, waypoint_penalty_s: 2.0 }
    }
}

/// A battery's usable flight time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Battery {
    /// Flight time of a full battery, seconds.
    pub endurance_s: f64,
    /// Fraction kept in reserve on landing (0.25 = 25 %).
    pub reserve_fraction: f64,
}

impl Battery {
    /// The flight time a sortie may use: endurance minus the reserve.
    pub fn budget_s(&self) -> f64 {
        self.endurance_s * (1.0 - self.reserve_fraction)
    }
}

impl Default for Battery {
    /// 30 minutes with a 25 % reserve.
    fn default() -> Self {
        Self { endurance_s: 1800.0, reserve_fraction: 0.25 }
    }
}

/// Where the vehicle's home is (the launch point).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Home {
    /// Position.
    pub point: GeoPoint,
    /// Altitude above mean sea level, metres (0 when unknown).
    pub alt_amsl_m: f64,
}

/// One typed mission step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MissionStep {
    /// `NAV_TAKEOFF` to `alt_m`.
    Takeoff {
        /// Where (None = where the vehicle is).
        point: Option<GeoPoint>,
        /// Target altitude.
        alt_m: f64,
        /// Altitude frame.
        frame: MissionFrame,
        /// Yaw, degrees (None = the autopilot's default).
        yaw_deg: Option<f64>,
    },
    /// `NAV_WAYPOINT`.
    Waypoint {
        /// Position.
        point: GeoPoint,
        /// Altitude.
        alt_m: f64,
        /// Altitude frame.
        frame: MissionFrame,
        /// Hold time at the waypoint, seconds.
        hold_s: f64,
        /// Yaw, degrees (None = the autopilot's default).
        yaw_deg: Option<f64>,
    },
    /// `NAV_LOITER_TIME`.
    LoiterTime {
        /// Position.
        point: GeoPoint,
        /// Altitude.
        alt_m: f64,
        /// Altitude frame.
        frame: MissionFrame,
        /// How long, seconds.
        duration_s: f64,
    },
    /// `NAV_LOITER_UNLIM`.
    LoiterUnlimited {
        /// Position.
        point: GeoPoint,
        /// Altitude.
        alt_m: f64,
        /// Altitude frame.
        frame: MissionFrame,
    },
    /// `DO_CHANGE_SPEED` (ground speed).
    ChangeSpeed {
        /// New speed, metres per second.
        speed_mps: f64,
    },
    /// `DO_SET_CAM_TRIGG_DIST`: a photo every `distance_m` (0 stops).
    CameraTriggerDistance {
        /// Distance between photos, metres; 0 stops triggering.
        distance_m: f64,
        /// Take one photo immediately (param3).
        trigger_now: bool,
    },
    /// `IMAGE_START_CAPTURE`: a photo every `interval_s`.
    CameraStartInterval {
        /// Seconds between photos.
        interval_s: f64,
        /// Number of photos (0 = until stopped).
        count: u32,
    },
    /// `IMAGE_STOP_CAPTURE`.
    CameraStop,
    /// `NAV_RETURN_TO_LAUNCH`.
    ReturnToLaunch,
    /// `NAV_LAND`.
    Land {
        /// Where (None = where the vehicle is).
        point: Option<GeoPoint>,
        /// Yaw, degrees (None = the autopilot's default).
        yaw_deg: Option<f64>,
    },
    /// Any other item, kept as is.
    Raw(MissionItem),
}

fn opt_point(item: &MissionItem) -> Option<GeoPoint> {
    (item.x != 0 || item.y != 0).then(|| GeoPoint::from_e7(item.x, item.y))
}

fn is_global(frame: MissionFrame) -> bool {
    matches!(frame, MissionFrame::Global | MissionFrame::GlobalRelativeAlt | MissionFrame::GlobalTerrainAlt)
}

#[allow(clippy::cast_possible_truncation)] // mission parameters are f32 on the wire
fn f(v: f64) -> f32 {
    v as f32
}

impl MissionStep {
    /// The raw item for this step.
    pub fn to_item(&self) -> MissionItem {
        let at = |command, params, point: GeoPoint, alt_m: f64, frame| MissionItem {
            command,
            frame,
            current: false,
            autocontinue: true,
            params,
            x: point.lat_e7(),
            y: point.lon_e7(),
            z: f(alt_m),
        };
        match *self {
            MissionStep::Takeoff { point, alt_m, frame, yaw_deg } => {
                let params = [0.0, 0.0, 0.0, yaw_deg.map_or(f32::NAN, f)];
                let mut item = at(cmd::NAV_TAKEOFF, params, point.unwrap_or(GeoPoint::new(0.0, 0.0)), alt_m, frame);
                if point.is_none() {
                    (item.x, item.y) = (0, 0);
                }
                item
            }
            MissionStep::Waypoint { point, alt_m, frame, hold_s, yaw_deg } => {
                at(cmd::NAV_WAYPOINT, [f(hold_s), 0.0, 0.0, yaw_deg.map_or(f32::NAN, f)], point, alt_m, frame)
            }
            MissionStep::LoiterTime { point, alt_m, frame, duration_s } => {
                at(cmd::NAV_LOITER_TIME, [f(duration_s), 0.0, 0.0, 0.0], point, alt_m, frame)
            }
            MissionStep::LoiterUnlimited { point, alt_m, frame } => {
                at(cmd::NAV_LOITER_UNLIM, [0.0; 4], point, alt_m, frame)
            }
            MissionStep::ChangeSpeed { speed_mps } => {
                MissionItem::command(cmd::DO_CHANGE_SPEED, [1.0, f(speed_mps), -1.0, 0.0])
            }
            MissionStep::CameraTriggerDistance { distance_m, trigger_now } => MissionItem::command(
                cmd::DO_SET_CAM_TRIGG_DIST,
                [f(distance_m), 0.0, if trigger_now { 1.0 } else { 0.0 }, 0.0],
            ),
            MissionStep::CameraStartInterval { interval_s, count } => {
                #[allow(clippy::cast_precision_loss)]
                let count = count as f32;
                MissionItem::command(cmd::IMAGE_START_CAPTURE, [0.0, f(interval_s), count, 0.0])
            }
            MissionStep::CameraStop => MissionItem::command(cmd::IMAGE_STOP_CAPTURE, [0.0; 4]),
            MissionStep::ReturnToLaunch => MissionItem::command(cmd::NAV_RETURN_TO_LAUNCH, [0.0; 4]),
            MissionStep::Land { point, yaw_deg } => {
                let mut item = MissionItem::command(cmd::NAV_LAND, [0.0, 0.0, 0.0, yaw_deg.map_or(f32::NAN, f)]);
                item.frame = MissionFrame::GlobalRelativeAlt;
                if let Some(p) = point {
                    (item.x, item.y) = (p.lat_e7(), p.lon_e7());
                }
                item
            }
            MissionStep::Raw(item) => item,
        }
    }

    /// The typed step for `item`; [`MissionStep::Raw`] when no typed form holds it exactly.
    pub fn from_item(item: &MissionItem) -> MissionStep {
        let p = item.params;
        let zero = |i: usize| p[i] == 0.0;
        let alt_m = f64::from(item.z);
        let point = GeoPoint::from_e7(item.x, item.y);
        let typed = match item.command {
            cmd::NAV_TAKEOFF if is_global(item.frame) && zero(0) && zero(1) && zero(2) => Some(MissionStep::Takeoff {
                point: opt_point(item),
                alt_m,
                frame: item.frame,
                yaw_deg: (!p[3].is_nan()).then(|| f64::from(p[3])),
            }),
            cmd::NAV_WAYPOINT if is_global(item.frame) && zero(1) && zero(2) => Some(MissionStep::Waypoint {
                point,
                alt_m,
                frame: item.frame,
                hold_s: f64::from(p[0]),
                yaw_deg: (!p[3].is_nan()).then(|| f64::from(p[3])),
            }),
            cmd::NAV_LOITER_TIME if is_global(item.frame) && zero(1) && zero(2) && zero(3) => {
                Some(MissionStep::LoiterTime { point, alt_m, frame: item.frame, duration_s: f64::from(p[0]) })
            }
            cmd::NAV_LOITER_UNLIM if is_global(item.frame) && p.iter().all(|v| *v == 0.0) => {
                Some(MissionStep::LoiterUnlimited { point, alt_m, frame: item.frame })
            }
            cmd::DO_CHANGE_SPEED if p[0] == 1.0 && p[2] == -1.0 && zero(3) => {
                Some(MissionStep::ChangeSpeed { speed_mps: f64::from(p[1]) })
            }
            cmd::DO_SET_CAM_TRIGG_DIST if zero(1) && (p[2] == 0.0 || p[2] == 1.0) && zero(3) => {
                Some(MissionStep::CameraTriggerDistance { distance_m: f64::from(p[0]), trigger_now: p[2] == 1.0 })
            }
            cmd::IMAGE_START_CAPTURE if zero(0) && zero(3) && p[2] >= 0.0 && p[2].fract() == 0.0 => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked: whole, non-negative
                let count = p[2] as u32;
                Some(MissionStep::CameraStartInterval { interval_s: f64::from(p[1]), count })
            }
            cmd::IMAGE_STOP_CAPTURE if p.iter().all(|v| *v == 0.0) => Some(MissionStep::CameraStop),
            cmd::NAV_RETURN_TO_LAUNCH if p.iter().all(|v| *v == 0.0) => Some(MissionStep::ReturnToLaunch),
            cmd::NAV_LAND if zero(0) && zero(1) && zero(2) && item.frame == MissionFrame::GlobalRelativeAlt => {
                Some(MissionStep::Land { point: opt_point(item), yaw_deg: (!p[3].is_nan()).then(|| f64::from(p[3])) })
            }
            _ => None,
        };
        match typed {
            // Only keep the typed form when it converts back to the same item (frame, flags, parameters).
            Some(step) if same_item(&step.to_item(), item) => step,
            _ => MissionStep::Raw(*item),
        }
    }

    /// What the step does, reading camera and speed commands in any frame: Mission Planner writes them with
    /// the mission's frame (3) where QGC writes 2, which keeps them [`MissionStep::Raw`] for lossless round
    /// trips; summaries still need to know they trigger the camera.
    pub fn semantic(&self) -> MissionStep {
        match self {
            MissionStep::Raw(item) if !is_global(item.frame) || (item.x == 0 && item.y == 0) => {
                let mut relaxed = *item;
                relaxed.frame = MissionFrame::Mission;
                match MissionStep::from_item(&relaxed) {
                    step @ (MissionStep::CameraTriggerDistance { .. }
                    | MissionStep::CameraStartInterval { .. }
                    | MissionStep::CameraStop
                    | MissionStep::ChangeSpeed { .. }) => step,
                    _ => *self,
                }
            }
            _ => *self,
        }
    }

    /// The position, altitude and frame of a step that moves the vehicle somewhere, if it does.
    fn target(&self) -> Option<(Option<GeoPoint>, f64, MissionFrame)> {
        match *self {
            MissionStep::Takeoff { point, alt_m, frame, .. } => Some((point, alt_m, frame)),
            MissionStep::Waypoint { point, alt_m, frame, .. }
            | MissionStep::LoiterTime { point, alt_m, frame, .. }
            | MissionStep::LoiterUnlimited { point, alt_m, frame } => Some((Some(point), alt_m, frame)),
            MissionStep::Land { point, .. } => Some((point, 0.0, MissionFrame::GlobalRelativeAlt)),
            MissionStep::Raw(item) if item.command < 95 && is_global(item.frame) => {
                Some((opt_point(&item), f64::from(item.z), item.frame))
            }
            _ => None,
        }
    }
}

/// Item equality that treats NaN parameters as equal (QGC writes `null` for "unset").
pub fn same_item(a: &MissionItem, b: &MissionItem) -> bool {
    a.command == b.command
        && a.frame == b.frame
        && a.autocontinue == b.autocontinue
        && a.x == b.x
        && a.y == b.y
        && (a.z == b.z || (a.z.is_nan() && b.z.is_nan()))
        && a.params.iter().zip(&b.params).all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

/// A fence shape.
#[derive(Debug, Clone, PartialEq)]
pub enum FenceShape {
    /// A polygon (open ring, WGS84 vertices in order).
    Polygon(Vec<GeoPoint>),
    /// A circle.
    Circle {
        /// Centre.
        center: GeoPoint,
        /// Radius, metres.
        radius_m: f64,
    },
}

/// One fence zone.
#[derive(Debug, Clone, PartialEq)]
pub struct FenceZone {
    /// True: the vehicle must stay inside; false: it must stay out.
    pub inclusion: bool,
    /// The shape.
    pub shape: FenceShape,
}

impl FenceZone {
    /// The zone as a planning [`ZoneShape`].
    pub fn to_zone_shape(&self) -> ZoneShape {
        match &self.shape {
            FenceShape::Circle { center, radius_m } => ZoneShape::Circle { center: *center, radius_m: *radius_m },
            FenceShape::Polygon(points) => {
                let ring: Vec<Coord<f64>> =
                    points.iter().chain(points.first()).map(|p| Coord { x: p.lon_deg, y: p.lat_deg }).collect();
                ZoneShape::Polygon(MultiPolygon::new(vec![Polygon::new(LineString::new(ring), vec![])]))
            }
        }
    }

    /// Fence zones for a planning shape (one per polygon; holes are dropped: fences have none).
    pub fn from_zone_shape(shape: &ZoneShape, inclusion: bool) -> Vec<FenceZone> {
        match shape {
            ZoneShape::Circle { center, radius_m } => {
                vec![FenceZone { inclusion, shape: FenceShape::Circle { center: *center, radius_m: *radius_m } }]
            }
            ZoneShape::Polygon(area) => area
                .iter()
                .map(|p| {
                    let ring = &p.exterior().0;
                    let n = ring.len().saturating_sub(1);
                    let points = ring[..n].iter().map(|c| GeoPoint::new(c.y, c.x)).collect();
                    FenceZone { inclusion, shape: FenceShape::Polygon(points) }
                })
                .collect(),
        }
    }
}

/// A rally (safe landing) point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RallyPoint {
    /// Position.
    pub point: GeoPoint,
    /// Altitude relative to home, metres.
    pub alt_m: f64,
}

/// A mission: steps, geofence and rally points, plus the home it was planned from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mission {
    /// Planned home (launch point), if known.
    pub home: Option<Home>,
    /// The steps in order.
    pub steps: Vec<MissionStep>,
    /// Geofence zones.
    pub fence: Vec<FenceZone>,
    /// Rally points.
    pub rally: Vec<RallyPoint>,
}

/// What went wrong converting items into a mission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemsError {
    /// A fence polygon's vertex count (param1) does not match the vertices that follow.
    #[error("fence item {index}: polygon vertex count {count} does not match its vertices")]
    FencePolygon {
        /// Index of the first vertex item.
        index: usize,
        /// The declared count.
        count: u32,
    },
    /// An item in a fence or rally list has a command that does not belong there.
    #[error("{kind:?} item {index}: command {command} does not belong in this list")]
    UnexpectedCommand {
        /// The list.
        kind: MissionKind,
        /// Index of the item.
        index: usize,
        /// Its command.
        command: u16,
    },
}

impl Mission {
    /// The MISSION list (without a home item).
    pub fn mission_items(&self) -> Vec<MissionItem> {
        self.steps.iter().map(MissionStep::to_item).collect()
    }

    /// The path flown, for drawing: home (when known), the position of every navigation item (MAV_CMD ids below
    /// 95 that carry a position), home again.
    pub fn route(&self) -> Vec<GeoPoint> {
        let home = self.home.map(|h| h.point);
        let items = self.mission_items();
        let waypoints = items.iter().filter(|item| item.command < 95).filter_map(opt_point);
        home.into_iter().chain(waypoints).chain(home).collect()
    }

    /// The MISSION list with the home position as item 0, as ArduPilot numbers it (QGC WPL and ArduPilot
    /// uploads put home at sequence 0).
    pub fn mission_items_with_home(&self) -> Vec<MissionItem> {
        let home = self.home.unwrap_or(Home { point: GeoPoint::new(0.0, 0.0), alt_amsl_m: 0.0 });
        let mut items = vec![MissionItem {
            command: cmd::NAV_WAYPOINT,
            frame: MissionFrame::Global,
            current: false,
            autocontinue: true,
            params: [0.0; 4],
            x: home.point.lat_e7(),
            y: home.point.lon_e7(),
            z: f(home.alt_amsl_m),
        }];
        items.extend(self.mission_items());
        items
    }

    /// The FENCE list: polygon vertices (param1 = vertex count) and circles (param1 = radius).
    pub fn fence_items(&self) -> Vec<MissionItem> {
        let mut items = Vec::new();
        for zone in &self.fence {
            match &zone.shape {
                FenceShape::Polygon(points) => {
                    let command = if zone.inclusion {
                        cmd::NAV_FENCE_POLYGON_VERTEX_INCLUSION
                    } else {
                        cmd::NAV_FENCE_POLYGON_VERTEX_EXCLUSION
                    };
                    #[allow(clippy::cast_precision_loss)]
                    let count = points.len() as f32;
                    for p in points {
                        let mut item = MissionItem::at(command, [count, 0.0, 0.0, 0.0], p.lat_e7(), p.lon_e7(), 0.0);
                        item.frame = MissionFrame::Global;
                        items.push(item);
                    }
                }
                FenceShape::Circle { center, radius_m } => {
                    let command =
                        if zone.inclusion { cmd::NAV_FENCE_CIRCLE_INCLUSION } else { cmd::NAV_FENCE_CIRCLE_EXCLUSION };
                    let mut item =
                        MissionItem::at(command, [f(*radius_m), 0.0, 0.0, 0.0], center.lat_e7(), center.lon_e7(), 0.0);
                    item.frame = MissionFrame::Global;
                    items.push(item);
                }
            }
        }
        items
    }

    /// The RALLY list.
    pub fn rally_items(&self) -> Vec<MissionItem> {
        self.rally
            .iter()
            .map(|r| MissionItem::at(cmd::NAV_RALLY_POINT, [0.0; 4], r.point.lat_e7(), r.point.lon_e7(), f(r.alt_m)))
            .collect()
    }

    /// A mission from the three item lists (the MISSION list without a home item).
    ///
    /// # Errors
    /// A malformed fence polygon or a foreign command in the fence or rally list.
    pub fn from_items(
        mission: &[MissionItem],
        fence: &[MissionItem],
        rally: &[MissionItem],
    ) -> Result<Mission, ItemsError> {
        let steps = mission.iter().map(MissionStep::from_item).collect();
        let mut zones = Vec::new();
        let mut i = 0;
        while i < fence.len() {
            let item = &fence[i];
            let point = GeoPoint::from_e7(item.x, item.y);
            match item.command {
                cmd::NAV_FENCE_POLYGON_VERTEX_INCLUSION | cmd::NAV_FENCE_POLYGON_VERTEX_EXCLUSION => {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a small vertex count
                    let count = item.params[0].max(0.0) as u32;
                    let n = count as usize;
                    let group = fence.get(i..i + n).filter(|g| n >= 3 && g.iter().all(|v| v.command == item.command));
                    let Some(group) = group else {
                        return Err(ItemsError::FencePolygon { index: i, count });
                    };
                    zones.push(FenceZone {
                        inclusion: item.command == cmd::NAV_FENCE_POLYGON_VERTEX_INCLUSION,
                        shape: FenceShape::Polygon(group.iter().map(|v| GeoPoint::from_e7(v.x, v.y)).collect()),
                    });
                    i += n;
                }
                cmd::NAV_FENCE_CIRCLE_INCLUSION | cmd::NAV_FENCE_CIRCLE_EXCLUSION => {
                    zones.push(FenceZone {
                        inclusion: item.command == cmd::NAV_FENCE_CIRCLE_INCLUSION,
                        shape: FenceShape::Circle { center: point, radius_m: f64::from(item.params[0]) },
                    });
                    i += 1;
                }
                command => return Err(ItemsError::UnexpectedCommand { kind: MissionKind::Fence, index: i, command }),
            }
        }
        let rally = rally
            .iter()
            .enumerate()
            .map(|(index, r)| {
                if r.command == cmd::NAV_RALLY_POINT {
                    Ok(RallyPoint { point: GeoPoint::from_e7(r.x, r.y), alt_m: f64::from(r.z) })
                } else {
                    Err(ItemsError::UnexpectedCommand { kind: MissionKind::Rally, index, command: r.command })
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Mission { home: None, steps, fence: zones, rally })
    }

    /// The flown track: (step index, position, altitude relative to home where known). Starts at home (or the
    /// first position), follows every step that moves the vehicle and ends at home after a return to launch.
    fn track(&self) -> Vec<TrackPoint> {
        let home_point = self
            .home
            .map(|h| h.point)
            .or_else(|| self.steps.iter().find_map(|s| s.target().and_then(|(p, _, _)| p).filter(|p| p.is_valid())));
        let Some(home_point) = home_point else { return Vec::new() };
        let home_amsl = self.home.map(|h| h.alt_amsl_m);
        let mut track = vec![TrackPoint { step: None, point: home_point, rel_alt_m: Some(0.0) }];
        let mut last = home_point;
        for (index, step) in self.steps.iter().enumerate() {
            match step {
                MissionStep::ReturnToLaunch => {
                    track.push(TrackPoint { step: Some(index), point: home_point, rel_alt_m: None });
                    break;
                }
                _ => {
                    let Some((point, alt_m, frame)) = step.target() else { continue };
                    let point = point.unwrap_or(last);
                    let rel_alt_m = match frame {
                        MissionFrame::Global => home_amsl.filter(|h| *h != 0.0).map(|h| alt_m - h),
                        _ => Some(alt_m),
                    };
                    track.push(TrackPoint { step: Some(index), point, rel_alt_m });
                    last = point;
                    if matches!(step, MissionStep::Land { .. }) {
                        break;
                    }
                }
            }
        }
        track
    }

    /// Distance, time and photo estimates for the mission under `flight`.
    pub fn summary(&self, flight: &FlightModel) -> MissionSummary {
        let track = self.track();
        let frame = LocalFrame::new(track.first().map_or(GeoPoint::new(0.0, 0.0), |t| t.point));
        let local: Vec<Coord<f64>> = track
            .iter()
            .map(|t| {
                let p = frame.to_local(t.point);
                Coord { x: p.east_m, y: p.north_m }
            })
            .collect();
        let mut distance_m = 0.0;
        let mut extra_s = 0.0;
        let mut waypoints = 0usize;
        let mut max_alt_m = 0.0_f64;
        // Photos: walk the track leg by leg, with the camera state set by the DO items between legs.
        let mut photos = 0.0_f64;
        let mut trigger_distance = 0.0_f64;
        let mut interval_s = 0.0_f64;
        let mut step_to_track: Vec<Option<usize>> = vec![None; self.steps.len()];
        for (ti, t) in track.iter().enumerate() {
            if let Some(s) = t.step {
                step_to_track[s] = Some(ti);
            }
        }
        let mut prev_track = 0usize;
        for (index, step) in self.steps.iter().enumerate() {
            if let Some(ti) = step_to_track[index] {
                let leg: f64 = local[prev_track..=ti].windows(2).map(|w| crate::routing::distance(w[0], w[1])).sum();
                distance_m += leg;
                if trigger_distance > 0.0 {
                    photos += (leg / trigger_distance).floor();
                }
                if interval_s > 0.0 {
                    photos += (leg / flight.cruise_speed_mps / interval_s).floor();
                }
                prev_track = ti;
                if let Some(alt) = track[ti].rel_alt_m {
                    max_alt_m = max_alt_m.max(alt);
                }
            }
            match step.semantic() {
                MissionStep::Waypoint { hold_s, .. } => {
                    waypoints += 1;
                    extra_s += hold_s;
                }
                MissionStep::LoiterTime { duration_s, .. } => {
                    waypoints += 1;
                    extra_s += duration_s;
                }
                MissionStep::CameraTriggerDistance { distance_m: d, trigger_now } => {
                    trigger_distance = d;
                    if d > 0.0 && trigger_now {
                        photos += 1.0;
                    }
                }
                MissionStep::CameraStartInterval { interval_s: i, .. } => {
                    interval_s = i;
                    photos += 1.0;
                }
                MissionStep::CameraStop => interval_s = 0.0,
                MissionStep::Raw(item) if item.command < 95 && is_global(item.frame) => waypoints += 1,
                _ => {}
            }
        }
        let vertical_s = 2.0 * max_alt_m / flight.vertical_speed_mps;
        #[allow(clippy::cast_precision_loss)]
        let penalty = waypoints as f64 * flight.waypoint_penalty_s;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let photos = photos.max(0.0) as usize;
        MissionSummary {
            items: self.steps.len(),
            waypoints,
            distance_m,
            flight_time_s: distance_m / flight.cruise_speed_mps + vertical_s + penalty + extra_s,
            photos,
            max_alt_m,
        }
    }

    /// Checks the mission against `limits` and its own fence: every leg outside every exclusion zone and
    /// inside every inclusion zone, altitudes within limits, and the flight time within the battery budget.
    /// Returns every violation found (empty = valid).
    pub fn validate(&self, limits: &Limits) -> Vec<Violation> {
        let mut violations = Vec::new();
        let track = self.track();
        if track.is_empty() {
            if self.steps.iter().any(|s| s.target().is_some()) {
                violations.push(Violation::NoPosition);
            }
            return violations;
        }
        let frame = LocalFrame::new(track[0].point);
        let to_local = |p: GeoPoint| {
            let l = frame.to_local(p);
            Coord { x: l.east_m, y: l.north_m }
        };
        let mut exclusions: Vec<(String, MultiPolygon<f64>)> =
            limits.exclusions.iter().map(|z| (z.id.clone(), z.shape.to_local(&frame))).collect();
        let mut inclusions: Vec<(String, Inclusion)> = Vec::new();
        if let Some(fence) = &limits.inclusion {
            inclusions.push(("planning fence".into(), Inclusion::new(fence, &frame)));
        }
        for (i, zone) in self.fence.iter().enumerate() {
            let shape = zone.to_zone_shape();
            if zone.inclusion {
                inclusions.push((format!("fence inclusion #{i}"), Inclusion::new(&shape, &frame)));
            } else {
                exclusions.push((format!("fence exclusion #{i}"), shape.to_local(&frame)));
            }
        }
        let local: Vec<Coord<f64>> = track.iter().map(|t| to_local(t.point)).collect();
        for (leg, w) in local.windows(2).enumerate() {
            let step = track[leg + 1].step;
            let line = Line::new(w[0], w[1]);
            for (name, zone) in &exclusions {
                if zone.iter().any(|p| line.intersects(p)) {
                    violations.push(Violation::EntersZone { step, zone: name.clone() });
                }
            }
            for (name, inclusion) in &inclusions {
                if !inclusion.contains_leg(w[0], w[1]) {
                    violations.push(Violation::LeavesFence { step, fence: name.clone() });
                }
            }
        }
        for t in &track {
            let Some(step) = t.step else { continue };
            match t.rel_alt_m {
                Some(alt) if alt > limits.max_alt_m + 1e-3 => {
                    violations.push(Violation::TooHigh { step, alt_m: alt, max_m: limits.max_alt_m });
                }
                Some(alt)
                    if alt < limits.min_alt_m - 1e-3
                        && !matches!(self.steps[step], MissionStep::Land { .. } | MissionStep::ReturnToLaunch) =>
                {
                    violations.push(Violation::TooLow { step, alt_m: alt, min_m: limits.min_alt_m });
                }
                None if !matches!(self.steps[step], MissionStep::ReturnToLaunch) => {
                    violations.push(Violation::UnknownAltitude { step });
                }
                _ => {}
            }
        }
        if let Some(battery) = limits.battery {
            let needed_s = self.summary(&limits.flight).flight_time_s;
            if needed_s > battery.budget_s() + 1e-6 {
                violations.push(Violation::Battery { needed_s, budget_s: battery.budget_s() });
            }
        }
        violations
    }
}

struct TrackPoint {
    step: Option<usize>,
    point: GeoPoint,
    rel_alt_m: Option<f64>,
}

enum Inclusion {
    Polygon(MultiPolygon<f64>),
    Circle(Coord<f64>, f64),
}

impl Inclusion {
    fn new(shape: &ZoneShape, frame: &LocalFrame) -> Self {
        match shape {
            ZoneShape::Polygon(_) => Inclusion::Polygon(shape.to_local(frame)),
            ZoneShape::Circle { center, radius_m } => {
                let c = frame.to_local(*center);
                Inclusion::Circle(Coord { x: c.east_m, y: c.north_m }, *radius_m)
            }
        }
    }

    fn contains_leg(&self, a: Coord<f64>, b: Coord<f64>) -> bool {
        match self {
            Inclusion::Circle(c, r) => crate::routing::distance(*c, a) <= *r && crate::routing::distance(*c, b) <= *r,
            Inclusion::Polygon(area) => {
                if a == b {
                    return area.iter().any(|p| p.contains(&a));
                }
                area.iter().any(|p| p.contains(&Line::new(a, b)))
            }
        }
    }
}

/// Distance, time and photos of a mission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MissionSummary {
    /// Number of steps (items).
    pub items: usize,
    /// Number of waypoints and loiters.
    pub waypoints: usize,
    /// Horizontal distance flown, metres, from home to the end (home after a return to launch).
    pub distance_m: f64,
    /// Estimated flight time, seconds (horizontal at cruise speed, climb and descent, waypoint penalties).
    pub flight_time_s: f64,
    /// Estimated number of photos.
    pub photos: usize,
    /// Highest altitude relative to home, metres.
    pub max_alt_m: f64,
}

/// What a mission must respect.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Lowest altitude above home for flight items (landing excluded), metres.
    pub min_alt_m: f64,
    /// Ceiling above home, metres (120 m, the usual rule for light drones).
    pub max_alt_m: f64,
    /// No-fly zones every leg must stay out of (on top of the mission's own fence).
    pub exclusions: Vec<NoFlyZone>,
    /// A fence every leg must stay inside, if any.
    pub inclusion: Option<ZoneShape>,
    /// The flight model for the time estimate.
    pub flight: FlightModel,
    /// The battery; `None` skips the budget check.
    pub battery: Option<Battery>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_alt_m: 0.0,
            max_alt_m: 120.0,
            exclusions: Vec::new(),
            inclusion: None,
            flight: FlightModel::default(),
            battery: None,
        }
    }
}

/// One way a mission breaks its limits.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Violation {
    /// A leg ending at `step` (None: the leg home) touches an exclusion zone.
    EntersZone {
        /// The step the leg flies to.
        step: Option<usize>,
        /// The zone's id.
        zone: String,
    },
    /// A leg leaves an inclusion fence.
    LeavesFence {
        /// The step the leg flies to.
        step: Option<usize>,
        /// Which fence.
        fence: String,
    },
    /// A step is above the ceiling.
    TooHigh {
        /// Step index.
        step: usize,
        /// Its altitude above home.
        alt_m: f64,
        /// The ceiling.
        max_m: f64,
    },
    /// A step is below the floor.
    TooLow {
        /// Step index.
        step: usize,
        /// Its altitude above home.
        alt_m: f64,
        /// The floor.
        min_m: f64,
    },
    /// A step's altitude is AMSL and the home altitude is unknown.
    UnknownAltitude {
        /// Step index.
        step: usize,
    },
    /// The flight needs more than the battery budget.
    Battery {
        /// Estimated flight time.
        needed_s: f64,
        /// Endurance minus reserve.
        budget_s: f64,
    },
    /// The mission moves but has no position to start from.
    NoPosition,
}

fn step_name(step: Option<usize>) -> String {
    step.map_or_else(|| "home".to_string(), |s| format!("item {}", s + 1))
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::EntersZone { step, zone } => {
                write!(f, "the leg to {} crosses no-fly zone {zone:?}", step_name(*step))
            }
            Violation::LeavesFence { step, fence } => write!(f, "the leg to {} leaves the {fence}", step_name(*step)),
            Violation::TooHigh { step, alt_m, max_m } => {
                write!(f, "item {} is at {alt_m:.1} m above home, over the {max_m:.0} m ceiling", step + 1)
            }
            Violation::TooLow { step, alt_m, min_m } => {
                write!(f, "item {} is at {alt_m:.1} m above home, under the {min_m:.0} m floor", step + 1)
            }
            Violation::UnknownAltitude { step } => {
                write!(f, "item {} has an AMSL altitude and the home altitude is unknown", step + 1)
            }
            Violation::Battery { needed_s, budget_s } => write!(
                f,
                "the flight needs {:.1} min, more than the battery's {:.1} min after the reserve",
                needed_s / 60.0,
                budget_s / 60.0
            ),
            Violation::NoPosition => write!(f, "the mission has no position to start from (no home, no waypoint)"),
        }
    }
}

/// A polygon in local metres around a circle, for callers that need one.
pub fn circle_to_local(center: Coord<f64>, radius_m: f64) -> Polygon<f64> {
    circle_polygon(center.x, center.y, radius_m, crate::area::CIRCLE_SEGMENTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: GeoPoint = GeoPoint::new(22.54, 113.88);

    fn sample() -> Mission {
        let wp = |lat: f64, lon: f64| MissionStep::Waypoint {
            point: GeoPoint::new(lat, lon),
            alt_m: 100.0,
            frame: MissionFrame::GlobalRelativeAlt,
            hold_s: 0.0,
            yaw_deg: None,
        };
        Mission {
            home: Some(Home { point: HOME, alt_amsl_m: 5.0 }),
            steps: vec![
                MissionStep::Takeoff {
                    point: None,
                    alt_m: 100.0,
                    frame: MissionFrame::GlobalRelativeAlt,
                    yaw_deg: None,
                },
                MissionStep::ChangeSpeed { speed_mps: 10.0 },
                wp(22.541, 113.88),
                MissionStep::CameraTriggerDistance { distance_m: 25.0, trigger_now: true },
                wp(22.541, 113.89),
                MissionStep::CameraTriggerDistance { distance_m: 0.0, trigger_now: false },
                MissionStep::ReturnToLaunch,
            ],
            fence: vec![
                FenceZone {
                    inclusion: false,
                    shape: FenceShape::Circle { center: GeoPoint::new(22.639, 113.811), radius_m: 3000.0 },
                },
                FenceZone {
                    inclusion: true,
                    shape: FenceShape::Polygon(vec![
                        GeoPoint::new(22.53, 113.87),
                        GeoPoint::new(22.53, 113.90),
                        GeoPoint::new(22.55, 113.90),
                        GeoPoint::new(22.55, 113.87),
                    ]),
                },
            ],
            rally: vec![RallyPoint { point: GeoPoint::new(22.5401, 113.8801), alt_m: 30.0 }],
        }
    }

    #[test]
    fn items_round_trip() {
        let m = sample();
        let back = Mission::from_items(&m.mission_items(), &m.fence_items(), &m.rally_items()).unwrap();
        assert_eq!(back.steps, m.steps);
        assert_eq!(back.rally.len(), 1);
        assert_eq!(back.fence.len(), 2);
        assert!(matches!(back.fence[1].shape, FenceShape::Polygon(ref p) if p.len() == 4));
        assert_eq!(m.mission_items_with_home().len(), m.steps.len() + 1);
    }

    #[test]
    fn unknown_and_unusual_items_stay_raw() {
        let mut item = MissionItem::command(cmd::DO_MOUNT_CONTROL, [-90.0, 0.0, 0.0, 0.0]);
        assert!(matches!(MissionStep::from_item(&item), MissionStep::Raw(_)));
        item = MissionStep::Waypoint {
            point: HOME,
            alt_m: 50.0,
            frame: MissionFrame::GlobalRelativeAlt,
            hold_s: 0.0,
            yaw_deg: Some(90.0),
        }
        .to_item();
        item.params[1] = 2.0; // acceptance radius: not held by the typed form
        let step = MissionStep::from_item(&item);
        assert!(matches!(step, MissionStep::Raw(_)));
        assert!(same_item(&step.to_item(), &item));
    }

    #[test]
    fn camera_commands_in_the_mission_frame_still_count() {
        let mut item = MissionStep::CameraTriggerDistance { distance_m: 20.0, trigger_now: true }.to_item();
        item.frame = MissionFrame::GlobalRelativeAlt;
        let step = MissionStep::from_item(&item);
        assert!(matches!(step, MissionStep::Raw(_)));
        assert!(matches!(step.semantic(), MissionStep::CameraTriggerDistance { distance_m, .. } if distance_m == 20.0));
    }

    #[test]
    fn summary_counts_distance_and_photos() {
        let m = sample();
        let s = m.summary(&FlightModel::default());
        // Out 111 m north, 1027 m east, back about 1033 m.
        assert!(s.distance_m > 2150.0 && s.distance_m < 2190.0, "{}", s.distance_m);
        // 1027 m at 25 m: 1 immediate + 41.
        assert_eq!(s.photos, 42);
        assert_eq!(s.waypoints, 2);
        assert!((s.max_alt_m - 100.0).abs() < 1e-9);
    }

    #[test]
    fn validate_finds_zone_fence_altitude_and_battery_violations() {
        let mut m = sample();
        assert_eq!(m.validate(&Limits::default()), vec![]);
        // A zone across the eastbound leg.
        let zone = NoFlyZone {
            id: "Z".into(),
            name: None,
            shape: ZoneShape::Circle { center: GeoPoint::new(22.541, 113.885), radius_m: 50.0 },
        };
        let limits = Limits {
            exclusions: vec![zone],
            battery: Some(Battery { endurance_s: 60.0, reserve_fraction: 0.2 }),
            max_alt_m: 90.0,
            ..Limits::default()
        };
        let v = m.validate(&limits);
        assert!(v.iter().any(|x| matches!(x, Violation::EntersZone { step: Some(4), zone } if zone == "Z")), "{v:?}");
        assert!(v.iter().any(|x| matches!(x, Violation::TooHigh { .. })));
        assert!(v.iter().any(|x| matches!(x, Violation::Battery { .. })));
        // Leaving the inclusion triangle.
        if let MissionStep::Waypoint { point, .. } = &mut m.steps[4] {
            *point = GeoPoint::new(22.56, 113.89);
        }
        let v = m.validate(&Limits::default());
        assert!(v.iter().any(|x| matches!(x, Violation::LeavesFence { .. })), "{v:?}");
        assert!(v.iter().all(|x| !x.to_string().is_empty()));
    }
}
