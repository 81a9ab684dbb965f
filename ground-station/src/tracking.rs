//! Hazard tracking (STYLE calls it `events`): merges detections of the same kind close together into one
//! hazard, across frames, passes and drones, and runs each hazard's lifecycle `new` -> `update` -> `end`.
//!
//! Pure: no clocks (every call takes the time), no I/O, no async. The caller persists what each call returns
//! ([`Change`]: the hazard as it now is, and the event to publish, if any) together with [`Tracker::counters`],
//! in one storage transaction, and restores the tracker after a restart with [`Tracker::restore`].
//!
//! Rules:
//! - An observation joins the nearest open hazard of its kind within the merge gate, `max(merge_radius_m,
//!   uncertainty_sigmas * sqrt(s_hazard^2 + s_observation^2))` (one-sigma uncertainties), else starts a new one.
//! - The fused position is the inverse-variance weighted mean; its uncertainty shrinks with evidence, but not
//!   below half of a new sighting's own (sightings share attitude biases).
//! - A hazard seen by the camera starts **tentative** (as tentative tracks do in multi-object tracking): it is
//!   tracked and stored but announced with `new` only once it has been seen in `confirm_photos` distinct photos.
//!   A detector's false alarm on a texture is rarely repeated from another viewpoint; a real hazard under
//!   overlapping photos is. Tentative hazards that end do so silently. Sensor readings (no photo) are
//!   measurements, not guesses, and are announced at once.
//! - `update` is published when the confidence rises by at least [`CONFIDENCE_STEP`] (or the severity changes),
//!   a better picture arrives (score at least [`PICTURE_GAIN`] times the best so far), another drone or mission
//!   sees it, the grid cell changes, or an operator confirms it. Other sightings only update the stored record,
//!   so ten frames of the same fire give one `new`.
//! - `end`: a mission that covered the hazard's grid cell finished without seeing it again
//!   ([`EndReason::NotSeenOnLaterPass`]); nobody saw it for `end_after` ([`EndReason::Stale`]); or an operator
//!   closed it or marked it a false positive ([`EndReason::Review`]). Ended hazards never merge again: a fire
//!   seen again after it ended is a new hazard.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use mission_planner::geo::{GeoPoint, geodesic_distance_m};

use crate::hazard::{
    Address, EndReason, Hazard, HazardEvent, HazardEventType, HazardKind, MAX_CAPTURE_IDS, Position, ReviewStatus,
    Verdict,
};

/// A confidence rise smaller than this does not publish an `update` on its own.
pub const CONFIDENCE_STEP: f64 = 0.05;
/// A picture must score this many times the best so far to replace it with an `update`.
pub const PICTURE_GAIN: f64 = 1.1;

/// One severity rule: hazards of `kind` with confidence at least `min_confidence` get `level`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeverityRule {
    /// Hazard kind.
    pub kind: HazardKind,
    /// Minimum confidence, 0..1.
    pub min_confidence: f64,
    /// Level, e.g. "A".
    pub level: String,
}

/// Severity rules, first match wins.
#[derive(Debug, Clone, PartialEq)]
pub struct SeverityRules {
    /// Rules in order.
    pub rules: Vec<SeverityRule>,
    /// Level when no rule matches.
    pub default_level: String,
}

impl SeverityRules {
    /// The level of a hazard of `kind` with `confidence`.
    pub fn level(&self, kind: HazardKind, confidence: f64) -> &str {
        self.rules
            .iter()
            .find(|rule| rule.kind == kind && confidence >= rule.min_confidence)
            .map_or(self.default_level.as_str(), |rule| rule.level.as_str())
    }
}

/// Tracker settings (from `[station]`, `[tracking]` and `[severity]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// Station id, the prefix of hazard and event ids.
    pub station_id: String,
    /// Merge radius, metres.
    pub merge_radius_m: f64,
    /// The merge gate grows to this many combined one-sigma uncertainties.
    pub uncertainty_sigmas: f64,
    /// Open hazards nobody saw for this long end.
    pub end_after: Duration,
    /// A hazard seen by the camera is announced once it is in this many distinct photos (1: at once).
    pub confirm_photos: u32,
    /// Severity rules.
    pub severity: SeverityRules,
}

/// Where a position is in the district: the seam to [`crate::district::District`].
pub trait Locate {
    /// The grid cell containing `point`.
    fn grid_cell(&self, point: GeoPoint) -> Option<String>;
    /// The nearest registered address to `point` within the configured distance.
    fn nearest_address(&self, point: GeoPoint) -> Option<Address>;
}

/// The picture of a sighting.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// Full frame URL.
    pub image_url: String,
    /// Crop URL.
    pub crop_url: String,
    /// How good the picture is (higher is better), e.g. confidence times the crop's share of the frame.
    pub score: f64,
}

/// One sighting of a hazard: a georeferenced detection, or a gas reading over the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Kind.
    pub kind: HazardKind,
    /// Model label or sensor name.
    pub label: String,
    /// Confidence, 0..1 (sensor readings: 1).
    pub confidence: f64,
    /// Where, with its one-sigma uncertainty.
    pub position: Position,
    /// When the frame or reading was taken.
    pub seen_at: SystemTime,
    /// Which drone.
    pub drone_id: String,
    /// During which mission, if any.
    pub mission_id: Option<String>,
    /// Which capture (photo), if any.
    pub capture_id: Option<String>,
    /// The picture, if any.
    pub picture: Option<Picture>,
    /// SHA-256 of the model that detected it.
    pub model_sha256: Option<String>,
}

/// What a tracker call changed: the hazard as it now is, and the event to publish, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The hazard after the change (persist it).
    pub hazard: Hazard,
    /// The event to publish, if the change is worth one.
    pub event: Option<HazardEvent>,
}

/// The id counters, persisted with every change so ids are never reused after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Number of the next hazard id.
    pub next_hazard: u64,
    /// Number of the next event id.
    pub next_event: u64,
}

/// Why a review could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// No open hazard has this id.
    #[error("no open hazard with id {hazard_id}")]
    NotOpen {
        /// The id.
        hazard_id: String,
    },
    /// A reopen of a hazard no verdict is holding: unreviewed, or ended for another reason than a review.
    #[error("hazard {hazard_id} has no verdict to undo (it is unreviewed, or it ended without a review)")]
    NotReviewed {
        /// The id.
        hazard_id: String,
    },
}

/// The hazard tracker.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackerConfig,
    open: Vec<Hazard>,
    counters: Counters,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Self {
        Self::restore(config, Vec::new(), Counters { next_hazard: 1, next_event: 1 })
    }

    /// A tracker resumed from storage: the open hazards and the persisted counters.
    pub fn restore(config: TrackerConfig, open: Vec<Hazard>, counters: Counters) -> Self {
        let open = open.into_iter().filter(Hazard::is_open).collect();
        Self { config, open, counters }
    }

    /// The counters to persist with the changes of the last call.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The open hazards, tentative ones included.
    pub fn open_hazards(&self) -> &[Hazard] {
        &self.open
    }

    /// A fresh event id (also for review events, which share the id space).
    pub fn next_event_id(&mut self) -> String {
        let id = format!("{}:e:{}", self.config.station_id, self.counters.next_event);
        self.counters.next_event += 1;
        id
    }

    fn next_hazard_id(&mut self) -> String {
        let id = format!("{}:h:{}", self.config.station_id, self.counters.next_hazard);
        self.counters.next_hazard += 1;
        id
    }

    fn event(&mut self, event_type: HazardEventType, before: Option<Hazard>, after: &Hazard) -> HazardEvent {
        HazardEvent { event_id: self.next_event_id(), event_type, before, after: after.clone() }
    }

    /// Adds a sighting: merges it into the nearest open hazard of its kind within the gate, or starts one.
    pub fn observe(&mut self, observation: Observation, locate: &dyn Locate) -> Change {
        let target = self.nearest_match(&observation);
        match target {
            Some(index) => self.merge(index, observation, locate),
            None => self.create(observation, locate),
        }
    }

    fn nearest_match(&self, observation: &Observation) -> Option<usize> {
        let point = observation.position.point();
        self.open
            .iter()
            .enumerate()
            .filter(|(_, hazard)| hazard.kind == observation.kind)
            .filter_map(|(i, hazard)| {
                let distance = geodesic_distance_m(hazard.position.point(), point);
                let combined = hazard.position.uncertainty_m.hypot(observation.position.uncertainty_m);
                let gate = self.config.merge_radius_m.max(self.config.uncertainty_sigmas * combined);
                (distance <= gate).then_some((i, distance))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    fn create(&mut self, observation: Observation, locate: &dyn Locate) -> Change {
        let point = observation.position.point();
        let (image_url, crop_url, picture_score) = match observation.picture {
            Some(picture) => (Some(picture.image_url), Some(picture.crop_url), Some(picture.score)),
            None => (None, None, None),
        };
        let mut hazard = Hazard {
            id: self.next_hazard_id(),
            kind: observation.kind,
            label: observation.label,
            confidence: observation.confidence,
            severity: self.config.severity.level(observation.kind, observation.confidence).to_owned(),
            position: observation.position,
            grid_cell: locate.grid_cell(point),
            address: locate.nearest_address(point),
            first_seen: observation.seen_at,
            last_seen: observation.seen_at,
            detections: 1,
            drone_ids: vec![observation.drone_id],
            mission_ids: observation.mission_id.into_iter().collect(),
            capture_ids: observation.capture_id.into_iter().collect(),
            image_url,
            crop_url,
            picture_score,
            model_sha256: observation.model_sha256,
            review: ReviewStatus::Unreviewed,
            end_reason: None,
            tentative: false,
        };
        hazard.tentative = !self.is_confirmed(&hazard);
        let event = (!hazard.tentative).then(|| self.event(HazardEventType::New, None, &hazard));
        self.open.push(hazard.clone());
        Change { hazard, event }
    }

    /// Whether a hazard has enough evidence to be announced: seen in `confirm_photos` photos, or by a sensor.
    fn is_confirmed(&self, hazard: &Hazard) -> bool {
        let photos = u32::try_from(hazard.capture_ids.len()).unwrap_or(u32::MAX);
        hazard.capture_ids.is_empty() || photos >= self.config.confirm_photos
    }

    fn merge(&mut self, index: usize, observation: Observation, locate: &dyn Locate) -> Change {
        let before = self.open[index].clone();
        let by_sensor = observation.capture_id.is_none();
        let severity = &self.config.severity;
        let hazard = &mut self.open[index];
        let mut notable = false;

        let (fused, uncertainty) = fuse(&hazard.position, &observation.position);
        hazard.position = Position::new(fused.lat_deg, fused.lon_deg, uncertainty);
        let cell = locate.grid_cell(fused);
        notable |= cell != hazard.grid_cell;
        hazard.grid_cell = cell;
        hazard.address = locate.nearest_address(fused);

        if observation.confidence > hazard.confidence {
            notable |= observation.confidence >= before.confidence + CONFIDENCE_STEP;
            hazard.confidence = observation.confidence;
            hazard.label = observation.label;
            if observation.model_sha256.is_some() {
                hazard.model_sha256 = observation.model_sha256;
            }
        }
        let level = severity.level(hazard.kind, hazard.confidence).to_owned();
        notable |= level != hazard.severity;
        hazard.severity = level;

        if let Some(picture) = observation.picture {
            let better = hazard.picture_score.is_none_or(|best| picture.score >= best * PICTURE_GAIN);
            if better {
                notable = true;
                hazard.image_url = Some(picture.image_url);
                hazard.crop_url = Some(picture.crop_url);
                hazard.picture_score = Some(picture.score);
            }
        }
        if !hazard.drone_ids.contains(&observation.drone_id) {
            notable = true;
            hazard.drone_ids.push(observation.drone_id);
        }
        if let Some(mission_id) = observation.mission_id
            && !hazard.mission_ids.contains(&mission_id)
        {
            notable = true;
            hazard.mission_ids.push(mission_id);
        }
        if let Some(capture_id) = observation.capture_id
            && hazard.capture_ids.len() < MAX_CAPTURE_IDS
            && !hazard.capture_ids.contains(&capture_id)
        {
            hazard.capture_ids.push(capture_id);
        }
        hazard.detections = hazard.detections.saturating_add(1);
        hazard.first_seen = hazard.first_seen.min(observation.seen_at);
        hazard.last_seen = hazard.last_seen.max(observation.seen_at);

        if before.tentative {
            let confirmed = by_sensor || self.is_confirmed(&self.open[index]);
            self.open[index].tentative = !confirmed;
            let after = self.open[index].clone();
            // Its first announcement: `new`, with everything gathered while it was tentative.
            let event = confirmed.then(|| self.event(HazardEventType::New, None, &after));
            return Change { hazard: after, event };
        }
        let after = hazard.clone();
        let event = notable.then(|| self.event(HazardEventType::Update, Some(before), &after));
        Change { hazard: after, event }
    }

    /// A mission finished: every open hazard in one of the `covered_cells` that it did not see (last seen before
    /// `started_at`) ends as [`EndReason::NotSeenOnLaterPass`].
    pub fn mission_finished(&mut self, started_at: SystemTime, covered_cells: &[String]) -> Vec<Change> {
        let covered: BTreeSet<&str> = covered_cells.iter().map(String::as_str).collect();
        self.end_where(EndReason::NotSeenOnLaterPass, |hazard| {
            hazard.last_seen < started_at && hazard.grid_cell.as_deref().is_some_and(|cell| covered.contains(cell))
        })
    }

    /// Ends every open hazard nobody has seen for `end_after` ([`EndReason::Stale`]).
    pub fn expire(&mut self, now: SystemTime) -> Vec<Change> {
        let end_after = self.config.end_after;
        self.end_where(EndReason::Stale, |hazard| {
            now.duration_since(hazard.last_seen).is_ok_and(|silent| silent >= end_after)
        })
    }

    fn end_where(&mut self, reason: EndReason, mut ends: impl FnMut(&Hazard) -> bool) -> Vec<Change> {
        let (ending, staying): (Vec<Hazard>, Vec<Hazard>) =
            std::mem::take(&mut self.open).into_iter().partition(&mut ends);
        self.open = staying;
        ending.into_iter().map(|hazard| self.end(hazard, reason)).collect()
    }

    fn end(&mut self, before: Hazard, reason: EndReason) -> Change {
        let mut after = before.clone();
        after.end_reason = Some(reason);
        // Nobody heard of a tentative hazard: it ends without an event.
        let event = (!before.tentative).then(|| self.event(HazardEventType::End, Some(before), &after));
        Change { hazard: after, event }
    }

    /// Applies an operator's verdict: `confirmed` publishes an `update`; `false_positive` and `closed` end the
    /// hazard ([`EndReason::Review`]); `reopened` is [`Tracker::reopen`] of an open hazard.
    ///
    /// # Errors
    /// [`TrackError::NotOpen`] when no open hazard has this id; for `reopened`, as [`Tracker::reopen`].
    pub fn review(&mut self, hazard_id: &str, verdict: Verdict) -> Result<Change, TrackError> {
        if verdict == Verdict::Reopened {
            return self.reopen(hazard_id, None);
        }
        let index = self
            .open
            .iter()
            .position(|hazard| hazard.id == hazard_id && !hazard.tentative)
            .ok_or_else(|| TrackError::NotOpen { hazard_id: hazard_id.to_owned() })?;
        if verdict.ends_hazard() {
            let before = self.open.remove(index);
            let mut change = self.end(before, EndReason::Review);
            change.hazard.review = verdict.status();
            if let Some(event) = &mut change.event {
                event.after.review = verdict.status();
            }
            return Ok(change);
        }
        let before = self.open[index].clone();
        self.open[index].review = verdict.status();
        let after = self.open[index].clone();
        let event = (before.review != after.review).then(|| self.event(HazardEventType::Update, Some(before), &after));
        Ok(Change { hazard: after, event })
    }

    /// Undoes a verdict: the hazard is unreviewed again, and open again when the verdict had ended it, with an
    /// `update` (`before` the reviewed hazard). `ended` is the hazard as stored, needed when a verdict ended it
    /// (the tracker forgets ended hazards); a hazard that ended for any other reason stays ended.
    ///
    /// # Errors
    /// [`TrackError::NotReviewed`] when the hazard is open and unreviewed, or ended otherwise than by a review;
    /// [`TrackError::NotOpen`] when it is not open and `ended` is not it.
    pub fn reopen(&mut self, hazard_id: &str, ended: Option<Hazard>) -> Result<Change, TrackError> {
        let not_reviewed = || TrackError::NotReviewed { hazard_id: hazard_id.to_owned() };
        if let Some(index) = self.open.iter().position(|hazard| hazard.id == hazard_id) {
            if self.open[index].review == ReviewStatus::Unreviewed {
                return Err(not_reviewed());
            }
            let before = self.open[index].clone();
            self.open[index].review = ReviewStatus::Unreviewed;
            let after = self.open[index].clone();
            let event = self.event(HazardEventType::Update, Some(before), &after);
            return Ok(Change { hazard: after, event: Some(event) });
        }
        let before = ended
            .filter(|hazard| hazard.id == hazard_id)
            .ok_or_else(|| TrackError::NotOpen { hazard_id: hazard_id.to_owned() })?;
        if before.end_reason != Some(EndReason::Review) {
            return Err(not_reviewed());
        }
        let mut after = before.clone();
        after.end_reason = None;
        after.review = ReviewStatus::Unreviewed;
        self.open.push(after.clone());
        let event = self.event(HazardEventType::Update, Some(before), &after);
        Ok(Change { hazard: after, event: Some(event) })
    }

    /// Whether an open hazard has this id.
    pub fn is_open(&self, hazard_id: &str) -> bool {
        self.open.iter().any(|hazard| hazard.id == hazard_id)
    }
}

/// Inverse-variance weighted mean of two positions (`a` the hazard, `b` the new sighting), and its uncertainty.
fn fuse(a: &Position, b: &Position) -> (GeoPoint, f64) {
    let sigma_a = a.uncertainty_m.max(0.01);
    let sigma_b = b.uncertainty_m.max(0.01);
    let (wa, wb) = (1.0 / (sigma_a * sigma_a), 1.0 / (sigma_b * sigma_b));
    let frame = mission_planner::geo::LocalFrame::new(a.point());
    let offset = frame.to_local(b.point());
    let share = wb / (wa + wb);
    let fused = frame.to_geo(mission_planner::geo::LocalPoint::new(offset.east_m * share, offset.north_m * share));
    // The floor keeps a precise earlier fix (min with sigma_a) and stops repeated sightings with shared biases
    // from shrinking the uncertainty below half of a single sighting's.
    let uncertainty = (1.0 / (wa + wb)).sqrt().max(sigma_a.min(0.5 * sigma_b));
    (fused, uncertainty)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use mission_planner::geo::{LocalFrame, LocalPoint};

    use super::*;

    const ORIGIN: GeoPoint = GeoPoint::new(47.0, 8.0);

    /// Cells are 100 m bands of northing: "c0" for 0..100 m north of the origin, "c1" for 100..200 m, ...;
    /// one address at the origin, found within 50 m.
    struct Bands;

    impl Locate for Bands {
        fn grid_cell(&self, point: GeoPoint) -> Option<String> {
            let north = LocalFrame::new(ORIGIN).to_local(point).north_m;
            (north >= 0.0).then(|| format!("c{}", (north / 100.0).floor()))
        }

        fn nearest_address(&self, point: GeoPoint) -> Option<Address> {
            let distance_m = geodesic_distance_m(point, ORIGIN);
            (distance_m <= 50.0).then(|| Address {
                building_id: "b1".into(),
                address: "Main Street 1".into(),
                distance_m,
            })
        }
    }

    fn config() -> TrackerConfig {
        TrackerConfig {
            station_id: "gs".into(),
            merge_radius_m: 15.0,
            uncertainty_sigmas: 3.0,
            end_after: Duration::from_secs(3600),
            confirm_photos: 1,
            severity: SeverityRules {
                rules: vec![SeverityRule { kind: HazardKind::Fire, min_confidence: 0.6, level: "A".into() }],
                default_level: "C".into(),
            },
        }
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    fn obs(kind: HazardKind, east_m: f64, north_m: f64, confidence: f64, seconds: u64) -> Observation {
        let point = LocalFrame::new(ORIGIN).to_geo(LocalPoint::new(east_m, north_m));
        Observation {
            kind,
            label: kind.to_string(),
            confidence,
            position: Position::new(point.lat_deg, point.lon_deg, 2.0),
            seen_at: at(seconds),
            drone_id: "d1".into(),
            mission_id: Some("m1".into()),
            capture_id: Some(format!("cap{seconds}")),
            picture: None,
            model_sha256: Some("abc".into()),
        }
    }

    fn fire(east_m: f64, north_m: f64, confidence: f64, seconds: u64) -> Observation {
        obs(HazardKind::Fire, east_m, north_m, confidence, seconds)
    }

    fn event_type(change: &Change) -> Option<HazardEventType> {
        change.event.as_ref().map(|event| event.event_type)
    }

    #[test]
    fn first_sighting_is_new_with_cell_address_and_severity() {
        let mut tracker = Tracker::new(config());
        let change = tracker.observe(fire(3.0, 4.0, 0.7, 0), &Bands);
        let event = change.event.unwrap();
        assert_eq!(event.event_type, HazardEventType::New);
        assert_eq!(event.event_id, "gs:e:1");
        assert!(event.before.is_none());
        let hazard = event.after;
        assert_eq!(hazard.id, "gs:h:1");
        assert_eq!(hazard.severity, "A");
        assert_eq!(hazard.grid_cell.as_deref(), Some("c0"));
        assert!((hazard.address.as_ref().unwrap().distance_m - 5.0).abs() < 0.01);
        assert_eq!(hazard.detections, 1);
        assert_eq!(hazard.capture_ids, vec!["cap0".to_owned()]);
        assert!(hazard.is_open());
        assert_eq!(tracker.counters(), Counters { next_hazard: 2, next_event: 2 });
    }

    fn confirming(photos: u32) -> TrackerConfig {
        TrackerConfig { confirm_photos: photos, ..config() }
    }

    #[test]
    fn a_hazard_is_announced_only_from_its_second_photo() {
        let mut tracker = Tracker::new(confirming(2));
        let first = tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        assert!(first.event.is_none() && first.hazard.tentative, "one photo: tracked, not announced");
        // A second detection in the same photo (an overlapping tile) is no second view.
        let mut same_photo = fire(1.0, 0.0, 0.9, 1);
        same_photo.capture_id = Some("cap0".into());
        let again = tracker.observe(same_photo, &Bands);
        assert!(again.event.is_none() && again.hazard.tentative);
        let second = tracker.observe(fire(0.5, 0.0, 0.6, 2), &Bands);
        let event = second.event.unwrap();
        assert_eq!(event.event_type, HazardEventType::New);
        assert!(event.before.is_none(), "its first announcement");
        assert!(!event.after.tentative);
        assert_eq!((event.after.detections, event.after.capture_ids.len()), (3, 2));
        assert!((event.after.confidence - 0.9).abs() < 1e-9, "the evidence gathered while tentative counts");
        assert_eq!(event.event_id, "gs:e:1", "no event id spent on the tentative sightings");
        // From here on as usual: a similar sighting publishes nothing.
        assert!(tracker.observe(fire(0.0, 0.5, 0.7, 3), &Bands).event.is_none());
    }

    #[test]
    fn tentative_hazards_end_silently_and_take_no_review() {
        let mut tracker = Tracker::new(confirming(2));
        let lone = tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands).hazard;
        assert!(matches!(tracker.review(&lone.id, Verdict::Confirmed), Err(TrackError::NotOpen { .. })));
        let ended = tracker.mission_finished(at(10), &["c0".to_owned()]);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].hazard.end_reason, Some(EndReason::NotSeenOnLaterPass));
        assert!(ended[0].event.is_none(), "nobody heard of it");
        let stale = tracker.observe(fire(300.0, 0.0, 0.7, 20), &Bands).hazard;
        let expired = tracker.expire(at(20 + 3600));
        assert_eq!(
            expired.iter().map(|c| (c.hazard.id.as_str(), c.event.is_none())).collect::<Vec<_>>(),
            [(stale.id.as_str(), true)]
        );
        assert!(tracker.open_hazards().is_empty());
    }

    #[test]
    fn sensor_readings_are_announced_at_once_and_confirm_a_tentative_sighting() {
        let mut tracker = Tracker::new(confirming(3));
        let mut reading = obs(HazardKind::Gas, 0.0, 0.0, 1.0, 0);
        reading.capture_id = None;
        reading.label = "CH4".into();
        assert_eq!(event_type(&tracker.observe(reading.clone(), &Bands)), Some(HazardEventType::New));
        // A cylinder seen in one photo, then a methane reading over it: measured, so announced.
        let cylinder = tracker.observe(obs(HazardKind::Gas, 200.0, 0.0, 0.6, 1), &Bands);
        assert!(cylinder.event.is_none());
        reading.position = cylinder.hazard.position;
        reading.seen_at = at(2);
        let change = tracker.observe(reading, &Bands);
        assert_eq!(change.hazard.id, cylinder.hazard.id);
        assert_eq!(event_type(&change), Some(HazardEventType::New));
    }

    #[test]
    fn ten_frames_of_one_fire_give_one_new_and_no_update() {
        let mut tracker = Tracker::new(config());
        let changes: Vec<Change> =
            (0..10_u32).map(|i| tracker.observe(fire(f64::from(i) * 0.5, 10.0, 0.7, u64::from(i)), &Bands)).collect();
        let events: Vec<_> = changes.iter().filter_map(event_type).collect();
        assert_eq!(events, vec![HazardEventType::New]);
        assert_eq!(tracker.open_hazards().len(), 1);
        let hazard = &tracker.open_hazards()[0];
        assert_eq!(hazard.detections, 10);
        assert_eq!(hazard.last_seen, at(9));
        assert_eq!(hazard.first_seen, at(0));
        assert_eq!(hazard.capture_ids.len(), 10);
    }

    #[test]
    fn sightings_within_the_radius_merge_and_beyond_it_do_not() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        tracker.observe(fire(14.0, 0.0, 0.7, 1), &Bands);
        assert_eq!(tracker.open_hazards().len(), 1);
        // The fused position moved towards the second sighting; 40 m away is a different fire.
        tracker.observe(fire(50.0, 0.0, 0.7, 2), &Bands);
        assert_eq!(tracker.open_hazards().len(), 2);
    }

    #[test]
    fn different_kinds_never_merge() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        let change = tracker.observe(obs(HazardKind::Gas, 1.0, 0.0, 1.0, 1), &Bands);
        assert_eq!(event_type(&change), Some(HazardEventType::New));
        assert_eq!(tracker.open_hazards().len(), 2);
    }

    #[test]
    fn the_gate_grows_with_uncertainty() {
        let mut tracker = Tracker::new(config());
        let mut a = fire(0.0, 0.0, 0.7, 0);
        a.position.uncertainty_m = 10.0;
        tracker.observe(a, &Bands);
        let mut b = fire(35.0, 0.0, 0.7, 1);
        b.position.uncertainty_m = 10.0;
        // Gate = 3 * sqrt(10^2 + 10^2) = 42 m > 35 m.
        tracker.observe(b, &Bands);
        assert_eq!(tracker.open_hazards().len(), 1);
        let mut c = fire(300.0, 0.0, 0.7, 2);
        c.position.uncertainty_m = 10.0;
        tracker.observe(c, &Bands);
        assert_eq!(tracker.open_hazards().len(), 2);
    }

    #[test]
    fn an_observation_joins_the_nearest_of_two_candidates() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        tracker.observe(fire(20.0, 0.0, 0.7, 1), &Bands);
        let change = tracker.observe(fire(12.0, 0.0, 0.7, 2), &Bands);
        assert_eq!(change.hazard.id, "gs:h:2");
    }

    #[test]
    fn fused_position_is_inverse_variance_weighted_and_more_certain() {
        let mut tracker = Tracker::new(config());
        let mut precise = fire(0.0, 0.0, 0.7, 0);
        precise.position.uncertainty_m = 1.0;
        tracker.observe(precise, &Bands);
        let mut rough = fire(9.0, 0.0, 0.7, 1);
        rough.position.uncertainty_m = 2.0;
        let change = tracker.observe(rough, &Bands);
        let east = LocalFrame::new(ORIGIN).to_local(change.hazard.position.point()).east_m;
        // Weights 1 and 1/4: 9 * 0.25 / 1.25 = 1.8 m.
        assert!((east - 1.8).abs() < 0.01, "{east}");
        // sqrt(1 / 1.25) = 0.89 is below half the new sighting's 2 m, so the floor keeps the precise 1 m.
        assert!((change.hazard.position.uncertainty_m - 1.0).abs() < 1e-9);
        // Two equal sightings: the midpoint, sigma / sqrt(2).
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 10.0, 0.7, 0), &Bands);
        let change = tracker.observe(fire(9.0, 10.0, 0.7, 1), &Bands);
        let east = LocalFrame::new(ORIGIN).to_local(change.hazard.position.point()).east_m;
        assert!((east - 4.5).abs() < 0.01, "{east}");
        assert!((change.hazard.position.uncertainty_m - 2.0_f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn uncertainty_never_drops_below_half_the_best_sighting() {
        let mut tracker = Tracker::new(config());
        for i in 0..50 {
            tracker.observe(fire(0.0, 10.0, 0.7, i), &Bands);
        }
        assert!((tracker.open_hazards()[0].position.uncertainty_m - 1.0).abs() < 1e-9);
    }

    #[test]
    fn higher_confidence_updates_and_raises_severity() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.5, 0), &Bands);
        assert_eq!(tracker.open_hazards()[0].severity, "C");
        let small = tracker.observe(fire(0.0, 0.0, 0.52, 1), &Bands);
        assert_eq!(event_type(&small), None, "a small rise is not worth an event");
        assert_eq!(small.hazard.confidence, 0.52);
        let big = tracker.observe(fire(0.0, 0.0, 0.65, 2), &Bands);
        let event = big.event.unwrap();
        assert_eq!(event.event_type, HazardEventType::Update);
        assert_eq!(event.before.unwrap().severity, "C");
        assert_eq!(event.after.severity, "A");
        assert_eq!(event.after.confidence, 0.65);
        let lower = tracker.observe(fire(0.0, 0.0, 0.3, 3), &Bands);
        assert_eq!(lower.hazard.confidence, 0.65, "confidence is the highest seen");
        assert_eq!(event_type(&lower), None);
    }

    #[test]
    fn a_severity_change_alone_updates() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.58, 0), &Bands);
        let change = tracker.observe(fire(0.0, 0.0, 0.61, 1), &Bands);
        assert_eq!(event_type(&change), Some(HazardEventType::Update));
        assert_eq!(change.hazard.severity, "A");
    }

    #[test]
    fn a_better_picture_updates_and_a_similar_one_does_not() {
        let mut tracker = Tracker::new(config());
        let picture = |score: f64| Picture { image_url: format!("i{score}"), crop_url: format!("c{score}"), score };
        let mut first = fire(0.0, 0.0, 0.7, 0);
        first.picture = Some(picture(1.0));
        tracker.observe(first, &Bands);
        let mut similar = fire(0.0, 0.0, 0.7, 1);
        similar.picture = Some(picture(1.05));
        let change = tracker.observe(similar, &Bands);
        assert_eq!(event_type(&change), None);
        assert_eq!(change.hazard.image_url.as_deref(), Some("i1"));
        let mut better = fire(0.0, 0.0, 0.7, 2);
        better.picture = Some(picture(2.0));
        let change = tracker.observe(better, &Bands);
        assert_eq!(event_type(&change), Some(HazardEventType::Update));
        assert_eq!(change.hazard.crop_url.as_deref(), Some("c2"));
        assert_eq!(change.hazard.picture_score, Some(2.0));
    }

    #[test]
    fn another_drone_or_mission_updates() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        let mut other_drone = fire(1.0, 0.0, 0.7, 1);
        other_drone.drone_id = "d2".into();
        let change = tracker.observe(other_drone, &Bands);
        assert_eq!(event_type(&change), Some(HazardEventType::Update));
        assert_eq!(change.hazard.drone_ids, vec!["d1".to_owned(), "d2".to_owned()]);
        let mut next_pass = fire(1.0, 0.0, 0.7, 500);
        next_pass.mission_id = Some("m2".into());
        let change = tracker.observe(next_pass, &Bands);
        assert_eq!(event_type(&change), Some(HazardEventType::Update));
        assert_eq!(change.hazard.mission_ids, vec!["m1".to_owned(), "m2".to_owned()]);
    }

    #[test]
    fn a_grid_cell_change_updates() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 99.0, 0.7, 0), &Bands);
        assert_eq!(tracker.open_hazards()[0].grid_cell.as_deref(), Some("c0"));
        let change = tracker.observe(fire(0.0, 103.0, 0.7, 1), &Bands);
        assert_eq!(change.hazard.grid_cell.as_deref(), Some("c1"));
        assert_eq!(event_type(&change), Some(HazardEventType::Update));
    }

    #[test]
    fn capture_ids_are_capped() {
        let mut tracker = Tracker::new(config());
        for i in 0..(MAX_CAPTURE_IDS as u64 + 10) {
            tracker.observe(fire(0.0, 0.0, 0.7, i), &Bands);
        }
        let hazard = &tracker.open_hazards()[0];
        assert_eq!(hazard.capture_ids.len(), MAX_CAPTURE_IDS);
        assert_eq!(hazard.detections as usize, MAX_CAPTURE_IDS + 10);
    }

    #[test]
    fn a_finished_mission_ends_hazards_it_covered_and_did_not_see() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 10.0, 0.7, 0), &Bands); // c0, seen on the first pass only
        tracker.observe(fire(0.0, 150.0, 0.7, 0), &Bands); // c1, seen again on the second pass
        tracker.observe(fire(0.0, 250.0, 0.7, 0), &Bands); // c2, not covered by the second pass
        tracker.observe(fire(0.0, -50.0, 0.7, 0), &Bands); // no cell: passes cannot end it
        tracker.observe(fire(0.0, 150.0, 0.7, 200), &Bands);
        let ended = tracker.mission_finished(at(100), &["c0".into(), "c1".into()]);
        assert_eq!(ended.len(), 1);
        let event = ended[0].event.as_ref().unwrap();
        assert_eq!(event.event_type, HazardEventType::End);
        assert_eq!(event.after.grid_cell.as_deref(), Some("c0"));
        assert_eq!(event.after.end_reason, Some(EndReason::NotSeenOnLaterPass));
        assert!(event.before.as_ref().unwrap().is_open());
        assert_eq!(tracker.open_hazards().len(), 3);
    }

    #[test]
    fn stale_hazards_end_after_end_after() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        tracker.observe(fire(500.0, 0.0, 0.7, 1000), &Bands);
        assert!(tracker.expire(at(3599)).is_empty());
        let ended = tracker.expire(at(3600));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].hazard.end_reason, Some(EndReason::Stale));
        assert_eq!(tracker.open_hazards().len(), 1);
        assert!(tracker.expire(at(3600)).is_empty(), "an ended hazard ends once");
    }

    #[test]
    fn an_ended_hazard_never_merges_again() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        tracker.expire(at(4000));
        let change = tracker.observe(fire(0.0, 0.0, 0.7, 4001), &Bands);
        assert_eq!(event_type(&change), Some(HazardEventType::New));
        assert_eq!(change.hazard.id, "gs:h:2");
    }

    #[test]
    fn reviews_confirm_or_end() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        tracker.observe(fire(500.0, 0.0, 0.7, 0), &Bands);
        let confirmed = tracker.review("gs:h:1", Verdict::Confirmed).unwrap();
        assert_eq!(event_type(&confirmed), Some(HazardEventType::Update));
        assert_eq!(confirmed.hazard.review, ReviewStatus::Confirmed);
        let again = tracker.review("gs:h:1", Verdict::Confirmed).unwrap();
        assert_eq!(event_type(&again), None, "confirming twice changes nothing");
        let closed = tracker.review("gs:h:2", Verdict::FalsePositive).unwrap();
        let event = closed.event.unwrap();
        assert_eq!(event.event_type, HazardEventType::End);
        assert_eq!(event.after.end_reason, Some(EndReason::Review));
        assert_eq!(event.after.review, ReviewStatus::FalsePositive);
        assert_eq!(tracker.review("gs:h:2", Verdict::Closed), Err(TrackError::NotOpen { hazard_id: "gs:h:2".into() }));
        assert!(tracker.review("gs:h:99", Verdict::Closed).is_err());
    }

    #[test]
    fn reopen_undoes_a_verdict_and_brings_back_a_hazard_a_review_ended() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        tracker.observe(fire(500.0, 0.0, 0.7, 0), &Bands);
        tracker.observe(fire(0.0, 900.0, 0.7, 0), &Bands);
        assert_eq!(tracker.reopen("gs:h:1", None), Err(TrackError::NotReviewed { hazard_id: "gs:h:1".into() }));
        tracker.review("gs:h:1", Verdict::Confirmed).unwrap();
        let reopened = tracker.review("gs:h:1", Verdict::Reopened).unwrap();
        let event = reopened.event.unwrap();
        assert_eq!(event.event_type, HazardEventType::Update);
        assert_eq!(event.before.unwrap().review, ReviewStatus::Confirmed);
        assert_eq!(event.after.review, ReviewStatus::Unreviewed);

        let rejected = tracker.review("gs:h:2", Verdict::FalsePositive).unwrap().hazard;
        assert!(!tracker.is_open("gs:h:2"));
        assert_eq!(tracker.reopen("gs:h:2", None), Err(TrackError::NotOpen { hazard_id: "gs:h:2".into() }));
        let back = tracker.reopen("gs:h:2", Some(rejected)).unwrap();
        let event = back.event.unwrap();
        assert_eq!(event.event_type, HazardEventType::Update);
        assert_eq!(event.before.unwrap().end_reason, Some(EndReason::Review));
        assert!(event.after.is_open() && event.after.review == ReviewStatus::Unreviewed);
        assert!(tracker.is_open("gs:h:2"));
        // The same fire seen again merges into it, as before the verdict.
        assert_eq!(tracker.observe(fire(500.0, 0.0, 0.8, 1), &Bands).hazard.id, "gs:h:2");

        let stale = tracker.expire(at(10 * 24 * 3600)).into_iter().next().unwrap().hazard;
        assert_eq!(stale.end_reason, Some(EndReason::Stale));
        let id = stale.id.clone();
        assert_eq!(tracker.reopen(&id, Some(stale)), Err(TrackError::NotReviewed { hazard_id: id }));
    }

    #[test]
    fn restore_keeps_ids_unique_and_merges_into_restored_hazards() {
        let mut tracker = Tracker::new(config());
        tracker.observe(fire(0.0, 0.0, 0.7, 0), &Bands);
        let mut ended = tracker.observe(fire(500.0, 0.0, 0.7, 0), &Bands).hazard;
        ended.end_reason = Some(EndReason::Stale);
        let open = tracker.open_hazards()[0].clone();
        let counters = tracker.counters();
        let mut resumed = Tracker::restore(config(), vec![open, ended], counters);
        assert_eq!(resumed.open_hazards().len(), 1, "ended hazards are not restored as open");
        let merged = resumed.observe(fire(1.0, 0.0, 0.7, 5), &Bands);
        assert_eq!(merged.hazard.id, "gs:h:1");
        let fresh = resumed.observe(fire(900.0, 0.0, 0.7, 5), &Bands);
        assert_eq!(fresh.hazard.id, "gs:h:3");
        assert_eq!(fresh.event.unwrap().event_id, "gs:e:3");
    }

    #[test]
    fn event_ids_are_unique_and_increasing() {
        let mut tracker = Tracker::new(config());
        let mut ids = Vec::new();
        for i in 0..5_u32 {
            let change = tracker.observe(fire(f64::from(i) * 100.0, 0.0, 0.7, u64::from(i)), &Bands);
            ids.push(change.event.unwrap().event_id);
        }
        ids.push(tracker.next_event_id());
        assert_eq!(ids, (1..=6).map(|n| format!("gs:e:{n}")).collect::<Vec<_>>());
    }

    #[test]
    fn severity_rules_first_match_wins() {
        let rules = SeverityRules {
            rules: vec![
                SeverityRule { kind: HazardKind::Fire, min_confidence: 0.9, level: "A+".into() },
                SeverityRule { kind: HazardKind::Fire, min_confidence: 0.6, level: "A".into() },
                SeverityRule { kind: HazardKind::Gas, min_confidence: 0.0, level: "B".into() },
            ],
            default_level: "C".into(),
        };
        assert_eq!(rules.level(HazardKind::Fire, 0.95), "A+");
        assert_eq!(rules.level(HazardKind::Fire, 0.6), "A");
        assert_eq!(rules.level(HazardKind::Fire, 0.59), "C");
        assert_eq!(rules.level(HazardKind::Gas, 0.0), "B");
        assert_eq!(rules.level(HazardKind::Structure, 1.0), "C");
    }
}
