//! The hazard record and the payloads the station publishes: the public MQTT contract (`docs/mqtt.md`, JSON
//! Schemas under `docs/schemas/`).
//!
//! Positions are WGS84 degrees and every position says so (`datum`); times are RFC 3339 UTC with milliseconds.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// What kind of hazard a detection or sensor reading reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HazardKind {
    /// Fire or smoke.
    Fire,
    /// A gas (methane) leak, from a TDLAS sensor reading.
    Gas,
    /// An illegal structure (unpermitted building, dumping site).
    Structure,
}

impl HazardKind {
    /// Every kind, in a stable order.
    pub const ALL: [HazardKind; 3] = [HazardKind::Fire, HazardKind::Gas, HazardKind::Structure];

    /// The name used in config files and payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            HazardKind::Fire => "fire",
            HazardKind::Gas => "gas",
            HazardKind::Structure => "structure",
        }
    }
}

impl fmt::Display for HazardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a hazard kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hazard kind `{0}` (expected fire, gas or structure)")]
pub struct UnknownHazardKind(pub String);

impl FromStr for HazardKind {
    type Err = UnknownHazardKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HazardKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownHazardKind(s.to_owned()))
    }
}

/// The geodetic datum every published position uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Datum {
    /// WGS84 latitude/longitude in degrees.
    #[default]
    #[serde(rename = "WGS84")]
    Wgs84,
}

/// A WGS84 position with its one-sigma horizontal uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Always WGS84.
    pub datum: Datum,
    /// Latitude, degrees north.
    pub lat_deg: f64,
    /// Longitude, degrees east.
    pub lon_deg: f64,
    /// One-sigma horizontal uncertainty radius, metres.
    pub uncertainty_m: f64,
}

impl Position {
    /// A WGS84 position.
    pub fn new(lat_deg: f64, lon_deg: f64, uncertainty_m: f64) -> Self {
        Self { datum: Datum::Wgs84, lat_deg, lon_deg, uncertainty_m }
    }

    /// The position as a mission-planner point.
    pub fn point(&self) -> mission_planner::geo::GeoPoint {
        mission_planner::geo::GeoPoint::new(self.lat_deg, self.lon_deg)
    }
}

/// The registered address nearest to a hazard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    /// Building id in the address register.
    pub building_id: String,
    /// The postal address.
    pub address: String,
    /// Distance from the hazard to the address point, metres.
    pub distance_m: f64,
}

/// The review status of a hazard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Nobody has looked at it yet.
    #[default]
    Unreviewed,
    /// An operator confirmed it.
    Confirmed,
    /// An operator marked it a false positive (the hazard ends).
    FalsePositive,
    /// An operator closed it as handled (the hazard ends).
    Closed,
}

/// An operator's verdict on a hazard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It is real.
    Confirmed,
    /// It is not real.
    FalsePositive,
    /// It was real and is handled.
    Closed,
    /// The reviewer undid their verdict: the hazard is unreviewed (and open) again, back in the review queue.
    Reopened,
}

impl Verdict {
    /// The review status a hazard takes after this verdict.
    pub fn status(self) -> ReviewStatus {
        match self {
            Verdict::Confirmed => ReviewStatus::Confirmed,
            Verdict::FalsePositive => ReviewStatus::FalsePositive,
            Verdict::Closed => ReviewStatus::Closed,
            Verdict::Reopened => ReviewStatus::Unreviewed,
        }
    }

    /// True when the verdict ends the hazard.
    pub fn ends_hazard(self) -> bool {
        matches!(self, Verdict::FalsePositive | Verdict::Closed)
    }
}

/// Why a hazard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A later mission flew over its grid cell and did not see it again.
    NotSeenOnLaterPass,
    /// Nobody saw it for the configured `tracking.end_after`.
    Stale,
    /// An operator closed it or marked it a false positive.
    Review,
}

/// One tracked hazard: many detections of the same thing, merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hazard {
    /// Stable id, `<station id>:h:<n>`.
    pub id: String,
    /// What kind of hazard it is.
    pub kind: HazardKind,
    /// The model label (or sensor name) of the most confident detection.
    pub label: String,
    /// Highest confidence seen, 0..1.
    pub confidence: f64,
    /// Severity level from the `[severity]` rules, e.g. "A".
    pub severity: String,
    /// Fused position (inverse-variance weighted mean of the sightings).
    pub position: Position,
    /// The district grid cell the position lies in, if any.
    pub grid_cell: Option<String>,
    /// The nearest registered address within the configured distance, if any.
    pub address: Option<Address>,
    /// First sighting, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    pub first_seen: SystemTime,
    /// Last sighting, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    pub last_seen: SystemTime,
    /// Number of detections merged into this hazard.
    pub detections: u32,
    /// Drones that saw it, in order of first sighting.
    pub drone_ids: Vec<String>,
    /// Missions during which it was seen, in order of first sighting.
    pub mission_ids: Vec<String>,
    /// Captures (photos) that show it, oldest first, at most [`MAX_CAPTURE_IDS`].
    pub capture_ids: Vec<String>,
    /// The best picture so far: full frame URL.
    pub image_url: Option<String>,
    /// The best picture so far: crop URL.
    pub crop_url: Option<String>,
    /// Score of the best picture so far (higher is better), used to pick it.
    pub picture_score: Option<f64>,
    /// SHA-256 of the detector model that produced the best detection (none for sensor readings).
    pub model_sha256: Option<String>,
    /// The operator's review status.
    pub review: ReviewStatus,
    /// Why it ended; `None` while it is open.
    pub end_reason: Option<EndReason>,
    /// A tentative hazard has been seen in fewer photos than `tracking.confirm_photos`: it is tracked and stored
    /// but never announced (no event, not on the console) until it is confirmed. Absent from every published
    /// event, whose hazards are all confirmed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tentative: bool,
}

/// A hazard keeps at most this many capture ids (the oldest are kept; later ones only count).
pub const MAX_CAPTURE_IDS: usize = 50;

impl Hazard {
    /// True until the hazard ends.
    pub fn is_open(&self) -> bool {
        self.end_reason.is_none()
    }
}

/// What happened to a hazard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HazardEventType {
    /// First sighting.
    New,
    /// More evidence: higher confidence, a better picture, another drone or mission, a review.
    Update,
    /// The hazard is over (see `after.end_reason`).
    End,
}

/// A hazard event as published on `<prefix>/hazards` (Frigate style: `type`, `before`, `after`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HazardEvent {
    /// Unique id of this event, `<station id>:e:<n>`. Consumers de-duplicate by it: an event can arrive twice
    /// after a reconnect, never with a different id.
    pub event_id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: HazardEventType,
    /// The hazard before the change (`None` for `new`).
    pub before: Option<Hazard>,
    /// The hazard after the change.
    pub after: Hazard,
}

/// A review verdict as published on `<prefix>/reviews`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewEvent {
    /// Unique id of this event (same id space as hazard events).
    pub event_id: String,
    /// The reviewed hazard.
    pub hazard_id: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Who gave it.
    pub reviewer: String,
    /// Free text, may be empty.
    pub comment: String,
    /// When, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
}

/// The link state of a drone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    /// Heartbeats arrive.
    Up,
    /// No heartbeat for the link-loss timeout.
    Lost,
}

/// A drone's live state as published (retained) on `<prefix>/drones/<id>/state`, about once a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroneState {
    /// The drone id from the config.
    pub drone_id: String,
    /// When this state was sampled, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    /// Position, if the drone has a fix.
    pub position: Option<Position>,
    /// Altitude above the take-off point, metres.
    pub relative_alt_m: Option<f64>,
    /// Remaining battery, percent.
    pub battery_percent: Option<f64>,
    /// Flight mode name as the autopilot reports it, e.g. "AUTO" or "Mission".
    pub mode: String,
    /// Whether the motors are armed.
    pub armed: bool,
    /// Link state.
    pub link: LinkStatus,
}

/// A mission's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissionState {
    /// Planned, not uploaded.
    Planned,
    /// Uploaded to the drone.
    Uploaded,
    /// Being flown.
    Running,
    /// Paused by an operator.
    Paused,
    /// Flown to the end.
    Completed,
    /// Stopped early (RTL, link loss, operator).
    Aborted,
}

/// Mission progress as published on `<prefix>/missions/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissionProgress {
    /// Mission id.
    pub mission_id: String,
    /// The drone flying it.
    pub drone_id: String,
    /// State.
    pub state: MissionState,
    /// Index of the mission item being flown.
    pub current_item: u32,
    /// Number of mission items.
    pub total_items: u32,
    /// Grid cells the mission covers.
    pub cells: Vec<String>,
    /// When this was sampled, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
}

/// A station fault an operator must act on, as published (retained) on `<prefix>/alarms/<alarm>`: at each start
/// (the state found then), when it is raised and when it clears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationAlarm {
    /// Which alarm.
    pub alarm: AlarmKind,
    /// The station it concerns.
    pub station_id: String,
    /// Raised (`true`) or cleared.
    pub active: bool,
    /// What happened and what to do, in English (the console shows its own translated title beside it).
    pub message: String,
    /// When the alarm took this state, RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
}

/// The alarms a station raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Evidence images cannot be written (disk full, folder unwritable): detection goes on, hazards are reported
    /// without pictures.
    EvidenceStorage,
}

impl AlarmKind {
    /// The name used in topics and payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EvidenceStorage => "evidence_storage",
        }
    }
}

/// RFC 3339 UTC timestamps with millisecond precision, for `#[serde(with = "...")]`.
pub mod rfc3339 {
    use std::time::SystemTime;

    use humantime_serde::re::humantime;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Formats a time as `2026-11-27T08:00:00.000Z`.
    pub fn format(time: SystemTime) -> String {
        humantime::format_rfc3339_millis(time).to_string()
    }

    /// `time` cut to whole milliseconds, the precision payloads carry (so a value equals its round trip).
    pub fn to_millis(time: SystemTime) -> SystemTime {
        match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => {
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(since.as_millis().try_into().unwrap_or(u64::MAX))
            }
            Err(_) => time,
        }
    }

    /// Parses an RFC 3339 time.
    ///
    /// # Errors
    /// When the text is not RFC 3339.
    pub fn parse(text: &str) -> Result<SystemTime, humantime::TimestampError> {
        humantime::parse_rfc3339_weak(text)
    }

    /// Serde serializer.
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*time))
    }

    /// Serde deserializer.
    ///
    /// # Errors
    /// When the value is not an RFC 3339 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn kinds_parse_and_print() {
        for kind in HazardKind::ALL {
            assert_eq!(kind.as_str().parse::<HazardKind>().unwrap(), kind);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
        assert!("smoke".parse::<HazardKind>().is_err());
    }

    #[test]
    fn timestamps_round_trip_with_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let text = rfc3339::format(t);
        assert!(text.ends_with(".123Z"), "{text}");
        assert_eq!(rfc3339::parse(&text).unwrap(), t);
        let fine = t + Duration::from_micros(456);
        assert_eq!(rfc3339::to_millis(fine), t);
    }

    #[test]
    fn event_type_field_is_named_type() {
        let hazard = Hazard {
            id: "gs:h:1".into(),
            kind: HazardKind::Fire,
            label: "fire".into(),
            confidence: 0.9,
            severity: "A".into(),
            position: Position::new(47.0, 8.0, 2.0),
            grid_cell: None,
            address: None,
            first_seen: UNIX_EPOCH,
            last_seen: UNIX_EPOCH,
            detections: 1,
            drone_ids: vec![],
            mission_ids: vec![],
            capture_ids: vec![],
            image_url: None,
            crop_url: None,
            picture_score: None,
            model_sha256: None,
            review: ReviewStatus::Unreviewed,
            end_reason: None,
            tentative: false,
        };
        let event =
            HazardEvent { event_id: "gs:e:1".into(), event_type: HazardEventType::New, before: None, after: hazard };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "new");
        assert_eq!(json["after"]["position"]["datum"], "WGS84");
        assert_eq!(json["after"]["first_seen"], "1970-01-01T00:00:00.000Z");
        assert!(json["after"].get("tentative").is_none(), "published hazards never carry the flag");
        let back: HazardEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
