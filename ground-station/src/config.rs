//! The station's one configuration file, `ground-station.toml`.
//!
//! Layers, later wins: the embedded default ([`DEFAULT_CONFIG`], also the reference documentation) -> the file ->
//! environment variables `GS__SECTION__KEY` (secrets such as the MQTT password) -> command-line runtime flags.
//! The merged tree is deserialized into [`RawConfig`] (unknown keys rejected) and validated into [`Settings`];
//! validation collects every problem, each with its key path, instead of stopping at the first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mission_planner::camera::PoseErrors;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::hazard::HazardKind;
use crate::tracking::{SeverityRule, SeverityRules, TrackerConfig};

/// The embedded default configuration: every key with its default and a comment.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Prefix of environment variables that override config keys (`GS__MQTT__PASSWORD`).
pub const ENV_PREFIX: &str = "GS__";

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Key path, e.g. `mqtt.port` or `drones[1].link`; empty for whole-file problems.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.key, self.message) }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The configuration has problems; all of them are listed.
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), list_issues(.0))]
    Invalid(Vec<ConfigIssue>),
}

fn list_issues(issues: &[ConfigIssue]) -> String {
    issues.iter().map(|issue| format!("  - {issue}")).collect::<Vec<_>>().join("\n")
}

/// A secret (password) that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that needs it (the MQTT connect).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The configuration tree exactly as written (after layering), before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[station]`.
    pub station: RawStation,
    /// `[mqtt]`.
    pub mqtt: RawMqtt,
    /// `[web]`.
    pub web: RawWeb,
    /// `[inference]`.
    pub inference: RawInference,
    /// `[[drones]]`.
    #[serde(default)]
    pub drones: Vec<RawDrone>,
    /// `[gas_sensor]`.
    pub gas_sensor: RawGasSensor,
    /// `[planner]`.
    pub planner: RawPlanner,
    /// `[georef]`.
    pub georef: RawGeoref,
    /// `[tracking]`.
    pub tracking: RawTracking,
    /// `[severity]`.
    pub severity: RawSeverity,
    /// `[district]`.
    pub district: RawDistrict,
    /// `[storage]`.
    pub storage: RawStorage,
}

/// `[station]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStation {
    /// Station id.
    pub id: String,
    /// Data directory.
    pub data_dir: PathBuf,
}

/// Which broker to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerMode {
    /// The embedded rumqttd broker.
    Embedded,
    /// An external broker.
    External,
}

/// `[mqtt]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// Broker mode.
    pub broker: BrokerMode,
    /// Embedded broker address.
    pub embedded_listen: SocketAddr,
    /// External broker host.
    pub host: String,
    /// External broker port.
    pub port: u16,
    /// TLS to the external broker.
    pub tls: bool,
    /// CA bundle for TLS.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for TLS client authentication.
    pub client_cert_file: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    pub client_key_file: Option<PathBuf>,
    /// User name.
    pub username: Option<String>,
    /// Password (prefer the environment or `password_file`).
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// Client id; empty means `patrol-<station id>`.
    pub client_id: String,
    /// Topic prefix.
    pub topic_prefix: String,
    /// Keep-alive interval.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
}

impl fmt::Debug for RawMqtt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawMqtt")
            .field("broker", &self.broker)
            .field("embedded_listen", &self.embedded_listen)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// `[web]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Public base URL; empty for `http://<listen>`.
    pub public_url: String,
    /// Bearer token of the frame push endpoint; unset turns it off.
    pub push_token: Option<String>,
}

impl fmt::Debug for RawWeb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawWeb")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("push_token", &self.push_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `[inference]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInference {
    /// Model path.
    pub model: PathBuf,
    /// CPU threads.
    pub threads: u32,
    /// Tile size, pixels; 0 disables tiling.
    pub tile_px: u32,
    /// With tiling, also run the whole photo downscaled.
    pub full_view: bool,
    /// Threshold for labels without their own.
    pub default_threshold: f64,
    /// Label -> hazard kind.
    #[serde(default)]
    pub hazard_map: BTreeMap<String, String>,
    /// Label -> threshold.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
}

/// One `[[drones]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrone {
    /// Drone id.
    pub id: String,
    /// MAVLink link address.
    pub link: String,
    /// MAVLink 2 signing key file.
    pub signing_key_file: Option<PathBuf>,
    /// MAVLink system id.
    #[serde(default = "default_system_id")]
    pub system_id: u8,
    /// Camera profile of its photos.
    pub camera: Option<PathBuf>,
}

fn default_system_id() -> u8 {
    1
}

/// `[planner]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlanner {
    /// No-fly zones GeoJSON; empty for none.
    pub no_fly_zones: PathBuf,
    /// Launch points GeoJSON; empty turns the planner off.
    pub launch_points: PathBuf,
    /// Camera TOML; empty turns the planner off.
    pub camera: PathBuf,
    /// Target ground sample distance, m/px.
    pub gsd_m: f64,
    /// Front overlap, fraction.
    pub front_overlap: f64,
    /// Side overlap, fraction.
    pub side_overlap: f64,
    /// Cruise speed, m/s.
    pub cruise_speed_mps: f64,
    /// Battery endurance.
    #[serde(with = "humantime_serde")]
    pub battery_endurance: Duration,
    /// Battery reserve, fraction.
    pub battery_reserve: f64,
    /// Ceiling above ground, metres.
    pub max_alt_m: f64,
}

/// `[gas_sensor]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGasSensor {
    /// `NAMED_VALUE_FLOAT` name.
    pub named_value: String,
    /// Threshold, ppm*m.
    pub threshold_ppm_m: f64,
    /// Ambient methane, ppm.
    pub ambient_ppm: f64,
}

/// Which point of a detection box is projected onto the ground.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoxAnchor {
    /// The box centre: the footprint of a flat object seen from above (nadir photos).
    #[default]
    Centre,
    /// The middle of the box's bottom edge: where an upright object meets the ground in an oblique photo.
    BottomCentre,
}

/// `[georef]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoref {
    /// Box anchor.
    pub box_anchor: BoxAnchor,
    /// One-sigma attitude error, degrees.
    pub attitude_error_deg: f64,
    /// One-sigma height error, metres.
    pub height_error_m: f64,
    /// One-sigma horizontal error, metres.
    pub horizontal_error_m: f64,
}

/// `[tracking]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracking {
    /// Merge radius, metres.
    pub merge_radius_m: f64,
    /// Uncertainty scaling of the merge radius.
    pub uncertainty_sigmas: f64,
    /// End hazards nobody saw for this long.
    #[serde(with = "humantime_serde")]
    pub end_after: Duration,
    /// Photos a hazard must be seen in before it is announced.
    pub confirm_photos: u32,
}

/// `[severity]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeverity {
    /// Level when no rule matches.
    pub default_level: String,
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RawSeverityRule>,
}

/// One `[[severity.rules]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeverityRule {
    /// Hazard kind.
    pub kind: String,
    /// Minimum confidence, 0..1.
    pub min_confidence: f64,
    /// Level, e.g. "A".
    pub level: String,
}

/// `[district]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDistrict {
    /// Grid cells GeoJSON; empty for none.
    pub cells: PathBuf,
    /// Address register GeoJSON; empty for none.
    pub addresses: PathBuf,
    /// Maximum address distance, metres.
    pub max_address_distance_m: f64,
}

/// `[storage]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// SQLite file, relative to the data dir.
    pub database: PathBuf,
    /// Evidence folder, relative to the data dir.
    pub evidence_dir: PathBuf,
    /// Evidence retention.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Evidence size limit, megabytes; 0 for none.
    pub max_evidence_mb: u64,
}

/// The validated configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Station identity and data directory.
    pub station: StationSettings,
    /// MQTT.
    pub mqtt: MqttSettings,
    /// HTTP API.
    pub web: WebSettings,
    /// Detector.
    pub inference: InferenceSettings,
    /// Drones.
    pub drones: Vec<DroneSettings>,
    /// Gas sensor.
    pub gas_sensor: GasSensorSettings,
    /// Patrol planner; `None` when no launch points or camera are configured.
    pub planner: Option<PlannerSettings>,
    /// Georeferencing.
    pub georef: GeorefSettings,
    /// Hazard tracking and severity.
    pub tracker: TrackerConfig,
    /// District cells and addresses.
    pub district: DistrictSettings,
    /// Storage.
    pub storage: StorageSettings,
}

/// `[station]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationSettings {
    /// Station id (letters, digits, `-`, `_`).
    pub id: String,
    /// Data directory.
    pub data_dir: PathBuf,
}

/// Where the MQTT broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerSettings {
    /// Run rumqttd in the daemon, listening here.
    Embedded {
        /// Listen address.
        listen: SocketAddr,
    },
    /// Connect to an external broker.
    External {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// TLS settings; `None` for plain TCP.
        tls: Option<TlsSettings>,
    },
}

/// TLS to the external broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM CA bundle; `None` uses the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for brokers that require one; `None` connects without.
    pub client_certificate: Option<ClientCertificate>,
}

/// A TLS client certificate and its private key, both PEM files (checked readable by the loader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// Certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// MQTT credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password (redacted in `Debug`).
    pub password: Secret,
}

/// `[mqtt]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttSettings {
    /// Broker.
    pub broker: BrokerSettings,
    /// Credentials, if any.
    pub credentials: Option<Credentials>,
    /// Client id.
    pub client_id: String,
    /// Topic prefix (no wildcards, no leading/trailing `/`).
    pub topic_prefix: String,
    /// Keep-alive interval.
    pub keep_alive: Duration,
}

/// `[web]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Base of the evidence URLs in events, without a trailing `/`.
    pub public_url: String,
    /// Bearer token of `POST /api/frames`; `None` turns the endpoint off.
    pub push_token: Option<Secret>,
}

/// `[inference]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceSettings {
    /// Model path.
    pub model: PathBuf,
    /// CPU threads (1..=256).
    pub threads: u32,
    /// Tile size in pixels; `None` disables tiling.
    pub tile_px: Option<u32>,
    /// With tiling, also run the whole photo downscaled (for objects larger than a tile).
    pub full_view: bool,
    /// Label -> hazard kind; other labels are ignored.
    pub hazard_map: BTreeMap<String, HazardKind>,
    /// Label -> confidence threshold.
    pub thresholds: BTreeMap<String, f64>,
    /// Threshold of labels without their own.
    pub default_threshold: f64,
}

impl InferenceSettings {
    /// The hazard kind a label reports and the threshold it must reach, or `None` when the label is ignored.
    pub fn classify(&self, label: &str) -> Option<(HazardKind, f64)> {
        let kind = *self.hazard_map.get(label)?;
        Some((kind, self.thresholds.get(label).copied().unwrap_or(self.default_threshold)))
    }
}

/// One drone, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroneSettings {
    /// Drone id.
    pub id: String,
    /// MAVLink link address, e.g. `udpin:0.0.0.0:14550`.
    pub link: String,
    /// MAVLink 2 signing key file.
    pub signing_key_file: Option<PathBuf>,
    /// MAVLink system id on its link.
    pub system_id: u8,
    /// Camera profile of its photos (falls back to the planner's camera).
    pub camera: Option<PathBuf>,
}

/// `[planner]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannerSettings {
    /// No-fly zones GeoJSON.
    pub no_fly_zones: Option<PathBuf>,
    /// Launch points GeoJSON.
    pub launch_points: PathBuf,
    /// Survey camera TOML.
    pub camera: PathBuf,
    /// Target ground sample distance, m/px.
    pub gsd_m: f64,
    /// Front overlap, fraction.
    pub front_overlap: f64,
    /// Side overlap, fraction.
    pub side_overlap: f64,
    /// Cruise speed, m/s.
    pub cruise_speed_mps: f64,
    /// Battery endurance.
    pub battery_endurance: Duration,
    /// Battery reserve, fraction.
    pub battery_reserve: f64,
    /// Ceiling above ground, metres.
    pub max_alt_m: f64,
}

/// `[gas_sensor]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct GasSensorSettings {
    /// `NAMED_VALUE_FLOAT` name (1 to 10 ASCII characters).
    pub named_value: String,
    /// Threshold, ppm*m.
    pub threshold_ppm_m: f64,
    /// Ambient methane, ppm.
    pub ambient_ppm: f64,
}

/// `[georef]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct GeorefSettings {
    /// Box anchor.
    pub box_anchor: BoxAnchor,
    /// One-sigma pose errors.
    pub pose_errors: PoseErrors,
}

/// `[district]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DistrictSettings {
    /// Grid cells GeoJSON.
    pub cells: Option<PathBuf>,
    /// Address register GeoJSON.
    pub addresses: Option<PathBuf>,
    /// Maximum address distance, metres.
    pub max_address_distance_m: f64,
}

/// `[storage]`, validated, with paths resolved against the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    /// SQLite database file.
    pub database: PathBuf,
    /// Evidence folder.
    pub evidence_dir: PathBuf,
    /// Evidence retention.
    pub retention: Duration,
    /// Evidence size limit in bytes; `None` for no limit.
    pub max_evidence_bytes: Option<u64>,
}

/// Loads the configuration: defaults, then `file` (if any), then the `GS__*` variables among `env`.
///
/// # Errors
/// [`ConfigError::Read`] / [`ConfigError::Syntax`] for an unreadable file, else [`ConfigError::Invalid`] with
/// every problem found.
pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Settings, ConfigError> {
    let text = match file {
        Some(path) => Some((
            path,
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?,
        )),
        None => None,
    };
    load_str(text.as_ref().map(|(path, text)| (*path, text.as_str())), env)
}

/// Like [`load`], with the file's text given (`path` is only used in messages).
///
/// # Errors
/// See [`load`].
pub fn load_str(
    file: Option<(&Path, &str)>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let mut issues = Vec::new();
    let mut tree: toml::Table = toml::from_str(DEFAULT_CONFIG).map_err(|error| ConfigError::Syntax {
        path: PathBuf::from("<embedded default>"),
        message: error.to_string(),
    })?;
    if let Some((path, text)) = file {
        let overlay: toml::Table = toml::from_str(text)
            .map_err(|error| ConfigError::Syntax { path: path.to_owned(), message: error.to_string() })?;
        merge(&mut tree, overlay);
    }
    apply_env(&mut tree, env, &mut issues);
    let raw = deserialize_raw(tree, &mut issues);
    match raw {
        Some(raw) => {
            let settings = validate(raw, &mut issues);
            if issues.is_empty() { Ok(settings) } else { Err(ConfigError::Invalid(issues)) }
        }
        None => Err(ConfigError::Invalid(issues)),
    }
}

/// Deep-merges `overlay` into `base`: tables merge key by key, anything else (arrays included) replaces.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge(base_table, overlay_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Applies `GS__SECTION__KEY=value` overrides. Keys are lower-cased; a numeric segment indexes an array
/// (`GS__DRONES__0__LINK`). Values are text where the current value is text or absent, else TOML values.
fn apply_env(tree: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>, issues: &mut Vec<ConfigIssue>) {
    let mut vars: Vec<(String, String)> = env.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
    vars.sort();
    for (name, value) in vars {
        let segments: Vec<String> = name[ENV_PREFIX.len()..].split("__").map(str::to_lowercase).collect();
        if segments.iter().any(String::is_empty) {
            issues.push(ConfigIssue { key: name, message: "empty key segment in environment override".into() });
            continue;
        }
        // On a clone, so that a failed override leaves no half-made tables behind.
        let mut candidate = tree.clone();
        match set_path(&mut candidate, &segments, &value) {
            Ok(()) => *tree = candidate,
            Err(message) => issues.push(ConfigIssue { key: name, message }),
        }
    }
}

fn set_path(tree: &mut toml::Table, segments: &[String], text: &str) -> Result<(), String> {
    let Some((first, rest)) = segments.split_first() else {
        return Err("empty key".into());
    };
    let mut slot: &mut toml::Value = tree.entry(first.clone()).or_insert_with(table_value);
    for segment in rest {
        slot = child(slot, segment)?;
    }
    let parsed = match &*slot {
        toml::Value::String(_) => toml::Value::String(text.to_owned()),
        toml::Value::Table(table) if table.is_empty() => toml::Value::String(text.to_owned()),
        current => {
            let wrapped: toml::Table = toml::from_str(&format!("v = {text}"))
                .map_err(|_| format!("`{text}` is not a valid {} value", current.type_str()))?;
            wrapped.get("v").cloned().ok_or_else(|| "no value".to_owned())?
        }
    };
    *slot = parsed;
    Ok(())
}

fn table_value() -> toml::Value {
    toml::Value::Table(toml::Table::new())
}

fn child<'a>(slot: &'a mut toml::Value, segment: &str) -> Result<&'a mut toml::Value, String> {
    match slot {
        toml::Value::Table(table) if table.is_empty() && segment.parse::<usize>().is_ok() => {
            Err(format!("`{segment}` indexes an array of tables, but the file has none here; add them to the file"))
        }
        toml::Value::Table(table) => Ok(table.entry(segment.to_owned()).or_insert_with(table_value)),
        toml::Value::Array(items) => {
            let index: usize = segment.parse().map_err(|_| format!("`{segment}` is not an array index"))?;
            let len = items.len();
            items.get_mut(index).ok_or_else(|| format!("index {index} is past the {len} entries in the file"))
        }
        other => Err(format!("cannot set a key below a {}", other.type_str())),
    }
}

/// Deserializes each section on its own so that problems in several sections are all reported; inside a
/// section, unknown keys are removed one by one so that every unknown key is reported.
fn deserialize_raw(mut tree: toml::Table, issues: &mut Vec<ConfigIssue>) -> Option<RawConfig> {
    let defaults: toml::Table = toml::from_str(DEFAULT_CONFIG).unwrap_or_default();
    let defaults_of = |name: &str| defaults.get(name).and_then(toml::Value::as_table);
    const SECTIONS: [&str; 12] = [
        "station",
        "mqtt",
        "web",
        "inference",
        "drones",
        "gas_sensor",
        "planner",
        "georef",
        "tracking",
        "severity",
        "district",
        "storage",
    ];
    for key in tree.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            issues.push(ConfigIssue {
                key: key.clone(),
                message: format!("unknown section (expected one of {})", SECTIONS.join(", ")),
            });
        }
    }
    let station = section::<RawStation>("station", take_from(&mut tree, "station"), defaults_of("station"), issues);
    let mqtt = section::<RawMqtt>("mqtt", take_from(&mut tree, "mqtt"), defaults_of("mqtt"), issues);
    let web = section::<RawWeb>("web", take_from(&mut tree, "web"), defaults_of("web"), issues);
    let inference =
        section::<RawInference>("inference", take_from(&mut tree, "inference"), defaults_of("inference"), issues);
    let drones = match tree.remove("drones") {
        None => Some(Vec::new()),
        Some(toml::Value::Array(items)) => {
            let parsed: Vec<Option<RawDrone>> = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| section::<RawDrone>(&format!("drones[{i}]"), item, None, issues))
                .collect();
            parsed.into_iter().collect()
        }
        Some(_) => {
            issues.push(ConfigIssue { key: "drones".into(), message: "must be an array of [[drones]] tables".into() });
            None
        }
    };
    let gas_sensor =
        section::<RawGasSensor>("gas_sensor", take_from(&mut tree, "gas_sensor"), defaults_of("gas_sensor"), issues);
    let planner = section::<RawPlanner>("planner", take_from(&mut tree, "planner"), defaults_of("planner"), issues);
    let georef = section::<RawGeoref>("georef", take_from(&mut tree, "georef"), defaults_of("georef"), issues);
    let tracking =
        section::<RawTracking>("tracking", take_from(&mut tree, "tracking"), defaults_of("tracking"), issues);
    let severity =
        section::<RawSeverity>("severity", take_from(&mut tree, "severity"), defaults_of("severity"), issues);
    let district =
        section::<RawDistrict>("district", take_from(&mut tree, "district"), defaults_of("district"), issues);
    let storage = section::<RawStorage>("storage", take_from(&mut tree, "storage"), defaults_of("storage"), issues);
    Some(RawConfig {
        station: station?,
        mqtt: mqtt?,
        web: web?,
        inference: inference?,
        drones: drones?,
        gas_sensor: gas_sensor?,
        planner: planner?,
        georef: georef?,
        tracking: tracking?,
        severity: severity?,
        district: district?,
        storage: storage?,
    })
}

fn take_from(tree: &mut toml::Table, name: &str) -> toml::Value {
    tree.remove(name).unwrap_or_else(table_value)
}

/// Deserializes one section, reporting every problem with its key path: an unknown key is removed, and a key
/// of the wrong type is replaced by its default, and the section is tried again. So one typo does not hide the
/// other problems, and validation still runs on the rest. The section is re-encoded as TOML text so that the
/// error's span gives the key.
fn section<T: DeserializeOwned>(
    name: &str,
    value: toml::Value,
    defaults: Option<&toml::Table>,
    issues: &mut Vec<ConfigIssue>,
) -> Option<T> {
    let toml::Value::Table(mut table) = value else {
        issues.push(ConfigIssue {
            key: name.to_owned(),
            message: format!("must be a table, not a {}", value.type_str()),
        });
        return None;
    };
    for _ in 0..64 {
        let text = match toml::to_string(&table) {
            Ok(text) => text,
            Err(error) => {
                issues.push(ConfigIssue { key: name.to_owned(), message: error.to_string() });
                return None;
            }
        };
        match toml::from_str::<T>(&text) {
            Ok(parsed) => return Some(parsed),
            Err(error) => {
                let message = error.message().trim().to_owned();
                if let Some(field) = unknown_field(&message)
                    && table.remove(&field).is_some()
                {
                    issues.push(ConfigIssue { key: format!("{name}.{field}"), message: unknown_key_message(&message) });
                    continue;
                }
                let key = error.span().and_then(|span| key_at(&text, span.start));
                issues.push(ConfigIssue {
                    key: key.as_ref().map_or_else(|| name.to_owned(), |key| format!("{name}.{key}")),
                    message,
                });
                let default = key.as_ref().and_then(|key| defaults?.get(key.as_str()));
                match (key, default) {
                    (Some(key), Some(default)) if table.get(&key) != Some(default) => {
                        table.insert(key, default.clone());
                    }
                    _ => return None,
                }
            }
        }
    }
    None
}

/// The key path (`table.key`) of the line of `text` that holds byte `offset`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let mut header: Option<String> = None;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let trimmed = line.trim();
        if offset < end {
            let key = match trimmed.split_once('=') {
                Some((key, _)) => key.trim().trim_matches('"').to_owned(),
                None => return header,
            };
            return Some(match header {
                Some(header) => format!("{header}.{key}"),
                None => key,
            });
        }
        if trimmed.starts_with('[') {
            header = Some(trimmed.trim_matches(|c| c == '[' || c == ']').to_owned());
        }
        start = end;
    }
    None
}

/// The field name in serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

fn unknown_key_message(message: &str) -> String {
    match message.find(", expected") {
        Some(at) => format!("unknown key (valid keys: {})", message[at + ", expected".len()..].trim()),
        None => "unknown key".to_owned(),
    }
}

/// Collects problems with one key into `issues`.
struct Check<'a> {
    issues: &'a mut Vec<ConfigIssue>,
}

impl Check<'_> {
    fn fail(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue { key: key.into(), message: message.into() });
    }

    fn require(&mut self, ok: bool, key: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.fail(key, message);
        }
    }

    fn range(&mut self, key: &str, value: f64, min: f64, max: f64) {
        self.require(
            value.is_finite() && (min..=max).contains(&value),
            key,
            format!("must be between {min} and {max}, got {value}"),
        );
    }

    fn identifier(&mut self, key: &str, value: &str) {
        self.require(
            !value.is_empty()
                && value.len() <= 64
                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            key,
            format!("`{value}` must be 1 to 64 letters, digits, `-` or `_`"),
        );
    }

    fn existing_file(&mut self, key: &str, path: &Path) {
        self.require(path.is_file(), key, format!("file {} does not exist or is not a file", path.display()));
    }
}

fn validate(raw: RawConfig, issues: &mut Vec<ConfigIssue>) -> Settings {
    let mut check = Check { issues };
    let c = &mut check;

    c.identifier("station.id", &raw.station.id);
    c.require(!raw.station.data_dir.as_os_str().is_empty(), "station.data_dir", "must not be empty");
    let station = StationSettings { id: raw.station.id, data_dir: raw.station.data_dir };

    let mqtt = validate_mqtt(raw.mqtt, &station.id, c);

    c.require(!raw.inference.model.as_os_str().is_empty(), "inference.model", "must not be empty");
    c.require((1..=256).contains(&raw.inference.threads), "inference.threads", "must be between 1 and 256");
    c.require(
        raw.inference.tile_px == 0 || (32..=8192).contains(&raw.inference.tile_px),
        "inference.tile_px",
        "must be 0 (no tiling) or between 32 and 8192",
    );
    c.range("inference.default_threshold", raw.inference.default_threshold, 0.0, 1.0);
    let mut hazard_map = BTreeMap::new();
    for (label, kind) in &raw.inference.hazard_map {
        match kind.parse::<HazardKind>() {
            Ok(kind) => {
                hazard_map.insert(label.clone(), kind);
            }
            Err(error) => c.fail(format!("inference.hazard_map.{label}"), error.to_string()),
        }
    }
    for (label, threshold) in &raw.inference.thresholds {
        let key = format!("inference.thresholds.{label}");
        c.range(&key, *threshold, 0.0, 1.0);
        c.require(
            raw.inference.hazard_map.contains_key(label),
            key,
            format!("label `{label}` is not in inference.hazard_map, so it is ignored; add it there or remove this"),
        );
    }
    let inference = InferenceSettings {
        model: raw.inference.model,
        threads: raw.inference.threads,
        tile_px: (raw.inference.tile_px != 0).then_some(raw.inference.tile_px),
        full_view: raw.inference.full_view,
        hazard_map,
        thresholds: raw.inference.thresholds,
        default_threshold: raw.inference.default_threshold,
    };

    let mut seen_ids = BTreeSet::new();
    let mut seen_systems = BTreeSet::new();
    let mut drones = Vec::new();
    for (i, drone) in raw.drones.into_iter().enumerate() {
        c.identifier(&format!("drones[{i}].id"), &drone.id);
        c.require(
            seen_ids.insert(drone.id.clone()),
            format!("drones[{i}].id"),
            format!("`{}` is used by an earlier drone; ids must be unique", drone.id),
        );
        if let Err(message) = check_link_address(&drone.link) {
            c.fail(format!("drones[{i}].link"), message);
        }
        if let Some(path) = &drone.signing_key_file {
            c.existing_file(&format!("drones[{i}].signing_key_file"), path);
        }
        c.require(
            (1..=254).contains(&drone.system_id),
            format!("drones[{i}].system_id"),
            "must be between 1 and 254 (255 is the ground station's own id)",
        );
        c.require(
            seen_systems.insert((drone.link.clone(), drone.system_id)),
            format!("drones[{i}].system_id"),
            format!(
                "system id {} on link `{}` is already taken by an earlier drone; give each drone on a shared link its \
                 own system id",
                drone.system_id, drone.link
            ),
        );
        if let Some(path) = &drone.camera {
            c.existing_file(&format!("drones[{i}].camera"), path);
        }
        drones.push(DroneSettings {
            id: drone.id,
            link: drone.link,
            signing_key_file: drone.signing_key_file,
            system_id: drone.system_id,
            camera: drone.camera,
        });
    }

    let name = &raw.gas_sensor.named_value;
    c.require(
        !name.is_empty() && name.len() <= 10 && name.chars().all(|ch| ch.is_ascii_graphic()),
        "gas_sensor.named_value",
        "must be 1 to 10 printable ASCII characters (MAVLink NAMED_VALUE_FLOAT names are char[10])",
    );
    c.require(
        raw.gas_sensor.threshold_ppm_m.is_finite() && raw.gas_sensor.threshold_ppm_m > 0.0,
        "gas_sensor.threshold_ppm_m",
        "must be a positive number of ppm*m",
    );
    c.range("gas_sensor.ambient_ppm", raw.gas_sensor.ambient_ppm, 0.0, 100.0);
    let gas_sensor = GasSensorSettings {
        named_value: raw.gas_sensor.named_value,
        threshold_ppm_m: raw.gas_sensor.threshold_ppm_m,
        ambient_ppm: raw.gas_sensor.ambient_ppm,
    };

    let planner = validate_planner(raw.planner, c);

    c.range("georef.attitude_error_deg", raw.georef.attitude_error_deg, 0.0, 45.0);
    c.range("georef.height_error_m", raw.georef.height_error_m, 0.0, 1000.0);
    c.range("georef.horizontal_error_m", raw.georef.horizontal_error_m, 0.0, 1000.0);
    let georef = GeorefSettings {
        box_anchor: raw.georef.box_anchor,
        pose_errors: PoseErrors {
            attitude_deg: raw.georef.attitude_error_deg,
            height_m: raw.georef.height_error_m,
            horizontal_m: raw.georef.horizontal_error_m,
        },
    };

    c.require(
        raw.tracking.merge_radius_m.is_finite() && raw.tracking.merge_radius_m > 0.0,
        "tracking.merge_radius_m",
        "must be a positive number of metres",
    );
    c.range("tracking.merge_radius_m", raw.tracking.merge_radius_m, 0.0, 1000.0);
    c.range("tracking.uncertainty_sigmas", raw.tracking.uncertainty_sigmas, 0.0, 10.0);
    c.require(raw.tracking.end_after >= Duration::from_secs(60), "tracking.end_after", "must be at least 1 minute");
    c.require(
        (1..=10).contains(&raw.tracking.confirm_photos),
        "tracking.confirm_photos",
        "must be 1 to 10 photos (1 announces a hazard at its first sighting)",
    );

    c.require(!raw.severity.default_level.trim().is_empty(), "severity.default_level", "must not be empty");
    let mut rules = Vec::new();
    for (i, rule) in raw.severity.rules.into_iter().enumerate() {
        let key = format!("severity.rules[{i}]");
        c.range(&format!("{key}.min_confidence"), rule.min_confidence, 0.0, 1.0);
        c.require(!rule.level.trim().is_empty(), format!("{key}.level"), "must not be empty");
        match rule.kind.parse::<HazardKind>() {
            Ok(kind) => rules.push(SeverityRule { kind, min_confidence: rule.min_confidence, level: rule.level }),
            Err(error) => c.fail(format!("{key}.kind"), error.to_string()),
        }
    }
    let tracker = TrackerConfig {
        station_id: station.id.clone(),
        merge_radius_m: raw.tracking.merge_radius_m,
        uncertainty_sigmas: raw.tracking.uncertainty_sigmas,
        end_after: raw.tracking.end_after,
        confirm_photos: raw.tracking.confirm_photos,
        severity: SeverityRules { rules, default_level: raw.severity.default_level },
    };

    let optional_path = |path: PathBuf| (!path.as_os_str().is_empty()).then_some(path);
    let district = DistrictSettings {
        cells: optional_path(raw.district.cells),
        addresses: optional_path(raw.district.addresses),
        max_address_distance_m: raw.district.max_address_distance_m,
    };
    if let Some(path) = &district.cells {
        c.existing_file("district.cells", path);
    }
    if let Some(path) = &district.addresses {
        c.existing_file("district.addresses", path);
    }
    c.require(
        district.max_address_distance_m.is_finite() && district.max_address_distance_m > 0.0,
        "district.max_address_distance_m",
        "must be a positive number of metres",
    );

    c.require(!raw.storage.database.as_os_str().is_empty(), "storage.database", "must not be empty");
    c.require(!raw.storage.evidence_dir.as_os_str().is_empty(), "storage.evidence_dir", "must not be empty");
    c.require(raw.storage.retention >= Duration::from_secs(3600), "storage.retention", "must be at least 1 hour");
    let storage = StorageSettings {
        database: station.data_dir.join(raw.storage.database),
        evidence_dir: station.data_dir.join(raw.storage.evidence_dir),
        retention: raw.storage.retention,
        max_evidence_bytes: (raw.storage.max_evidence_mb != 0)
            .then(|| raw.storage.max_evidence_mb.saturating_mul(1024 * 1024)),
    };

    Settings {
        station,
        mqtt,
        web: WebSettings {
            public_url: public_url(&raw.web, c),
            listen: raw.web.listen,
            push_token: push_token(raw.web.push_token, c),
        },
        inference,
        drones,
        gas_sensor,
        planner,
        georef,
        tracker,
        district,
        storage,
    }
}

fn public_url(raw: &RawWeb, c: &mut Check<'_>) -> String {
    let url = raw.public_url.trim().trim_end_matches('/');
    if url.is_empty() {
        return format!("http://{}", raw.listen);
    }
    c.require(
        url.starts_with("http://") || url.starts_with("https://"),
        "web.public_url",
        "must start with http:// or https://",
    );
    url.to_owned()
}

fn push_token(token: Option<String>, c: &mut Check<'_>) -> Option<Secret> {
    let token = token.filter(|t| !t.is_empty())?;
    c.require(
        token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic()),
        "web.push_token",
        "must be at least 16 printable characters without spaces (e.g. `patrol keygen` output)",
    );
    Some(Secret::new(token))
}

fn validate_planner(raw: RawPlanner, c: &mut Check<'_>) -> Option<PlannerSettings> {
    let optional_path = |path: PathBuf| (!path.as_os_str().is_empty()).then_some(path);
    let no_fly_zones = optional_path(raw.no_fly_zones);
    if let Some(path) = &no_fly_zones {
        c.existing_file("planner.no_fly_zones", path);
    }
    c.range("planner.gsd_m", raw.gsd_m, 0.001, 1.0);
    c.range("planner.front_overlap", raw.front_overlap, 0.0, 0.95);
    c.range("planner.side_overlap", raw.side_overlap, 0.0, 0.95);
    c.range("planner.cruise_speed_mps", raw.cruise_speed_mps, 0.5, 40.0);
    c.range("planner.battery_reserve", raw.battery_reserve, 0.0, 0.9);
    c.range("planner.max_alt_m", raw.max_alt_m, 5.0, 1000.0);
    c.require(
        raw.battery_endurance >= Duration::from_secs(60),
        "planner.battery_endurance",
        "must be at least 1 minute",
    );
    let launch_points = optional_path(raw.launch_points);
    let camera = optional_path(raw.camera);
    match (launch_points, camera) {
        (Some(launch_points), Some(camera)) => {
            c.existing_file("planner.launch_points", &launch_points);
            c.existing_file("planner.camera", &camera);
            Some(PlannerSettings {
                no_fly_zones,
                launch_points,
                camera,
                gsd_m: raw.gsd_m,
                front_overlap: raw.front_overlap,
                side_overlap: raw.side_overlap,
                cruise_speed_mps: raw.cruise_speed_mps,
                battery_endurance: raw.battery_endurance,
                battery_reserve: raw.battery_reserve,
                max_alt_m: raw.max_alt_m,
            })
        }
        (None, None) => None,
        (Some(_), None) => {
            c.fail("planner.camera", "the planner needs a camera profile too (or remove planner.launch_points)");
            None
        }
        (None, Some(_)) => {
            c.fail("planner.launch_points", "the planner needs launch points too (or remove planner.camera)");
            None
        }
    }
}

fn validate_mqtt(raw: RawMqtt, station_id: &str, c: &mut Check<'_>) -> MqttSettings {
    let broker = match raw.broker {
        BrokerMode::Embedded => {
            c.require(!raw.tls, "mqtt.tls", "TLS is only for an external broker (set mqtt.broker = \"external\")");
            c.require(
                raw.username.is_none() && raw.password.is_none() && raw.password_file.is_none(),
                "mqtt.username",
                "credentials are only for an external broker (set mqtt.broker = \"external\")",
            );
            c.require(
                raw.client_cert_file.is_none() && raw.client_key_file.is_none(),
                "mqtt.client_cert_file",
                "a client certificate is only for an external broker (set mqtt.broker = \"external\")",
            );
            BrokerSettings::Embedded { listen: raw.embedded_listen }
        }
        BrokerMode::External => {
            c.require(!raw.host.trim().is_empty(), "mqtt.host", "must not be empty for an external broker");
            c.require(raw.port != 0, "mqtt.port", "must not be 0 for an external broker");
            let client_certificate = validate_client_certificate(&raw, c);
            BrokerSettings::External {
                host: raw.host.clone(),
                port: raw.port,
                tls: raw.tls.then(|| TlsSettings { ca_file: raw.ca_file.clone(), client_certificate }),
            }
        }
    };
    if let Some(path) = &raw.ca_file {
        c.require(raw.tls, "mqtt.ca_file", "is set but mqtt.tls is false; set mqtt.tls = true or remove it");
        c.existing_file("mqtt.ca_file", path);
    }
    let password = match (&raw.password, &raw.password_file) {
        (Some(_), Some(_)) => {
            c.fail("mqtt.password", "set either mqtt.password or mqtt.password_file, not both");
            None
        }
        (Some(password), None) => Some(Secret::new(password.clone())),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => Some(Secret::new(text.trim_end_matches(['\r', '\n']))),
            Err(error) => {
                c.fail("mqtt.password_file", format!("cannot read {}: {error}", path.display()));
                None
            }
        },
        (None, None) => None,
    };
    let credentials = match (raw.username, password) {
        (Some(username), Some(password)) => Some(Credentials { username, password }),
        (Some(username), None) => Some(Credentials { username, password: Secret::new("") }),
        (None, Some(_)) => {
            c.fail("mqtt.username", "a password is set but no username; set mqtt.username");
            None
        }
        (None, None) => None,
    };
    let prefix = raw.topic_prefix;
    c.require(
        !prefix.is_empty()
            && !prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains("//")
            && !prefix.contains(['+', '#', '\0']),
        "mqtt.topic_prefix",
        format!("`{prefix}` must be a topic without wildcards (+, #), empty levels or leading/trailing `/`"),
    );
    c.require(
        raw.keep_alive >= Duration::from_secs(5) && raw.keep_alive <= Duration::from_secs(65_535),
        "mqtt.keep_alive",
        "must be between 5s and 65535s",
    );
    // A derived id is only as good as the station id, which is checked (and reported) on its own.
    c.require(
        raw.client_id.len() <= 256 && raw.client_id.chars().all(|ch| ch.is_ascii_graphic()),
        "mqtt.client_id",
        "must be at most 256 printable ASCII characters without spaces",
    );
    let client_id = if raw.client_id.is_empty() { format!("patrol-{station_id}") } else { raw.client_id };
    MqttSettings { broker, credentials, client_id, topic_prefix: prefix, keep_alive: raw.keep_alive }
}

/// `mqtt.client_cert_file` and `mqtt.client_key_file`: both or neither, only with TLS, each a readable PEM file
/// of the right kind (so a swapped pair is reported here, not as a failed handshake at run time).
fn validate_client_certificate(raw: &RawMqtt, c: &mut Check<'_>) -> Option<ClientCertificate> {
    let (cert_file, key_file) = match (&raw.client_cert_file, &raw.client_key_file) {
        (None, None) => return None,
        (Some(_), None) => {
            c.fail("mqtt.client_key_file", "mqtt.client_cert_file is set, so set its private key here too");
            return None;
        }
        (None, Some(_)) => {
            c.fail("mqtt.client_cert_file", "mqtt.client_key_file is set, so set its certificate here too");
            return None;
        }
        (Some(cert), Some(key)) => (cert, key),
    };
    c.require(
        raw.tls,
        "mqtt.client_cert_file",
        "a client certificate needs TLS; set mqtt.tls = true or remove the client certificate",
    );
    c.require(
        raw.ca_file.is_some(),
        "mqtt.ca_file",
        "a client certificate needs the broker's CA here: set mqtt.ca_file to the PEM bundle that signed the \
         broker's certificate (for a public CA, its root certificate)",
    );
    let cert_ok = check_pem_file(c, "mqtt.client_cert_file", cert_file, "CERTIFICATE", "a PEM certificate");
    let key_ok = check_pem_file(c, "mqtt.client_key_file", key_file, "PRIVATE KEY", "a PEM private key");
    (cert_ok && key_ok).then(|| ClientCertificate { cert_file: cert_file.clone(), key_file: key_file.clone() })
}

/// Checks that `path` can be read and holds a PEM block whose label ends with `label`; false when not.
fn check_pem_file(c: &mut Check<'_>, key: &str, path: &Path, label: &str, what: &str) -> bool {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let found = text.lines().any(|line| {
                line.strip_prefix("-----BEGIN ")
                    .and_then(|rest| rest.strip_suffix("-----"))
                    .is_some_and(|l| l.ends_with(label))
            });
            c.require(found, key, format!("{} is not {what} (no `-----BEGIN ...{label}-----` line)", path.display()));
            found
        }
        Err(error) => {
            c.fail(key, format!("cannot read {}: {error}", path.display()));
            false
        }
    }
}

/// Checks the form of a MAVLink link address: `udpin:`, `udpout:`, `udpbcast:`, `tcpin:`, `tcpout:` with
/// `host:port`, or `serial:<device>:<baud>`.
fn check_link_address(link: &str) -> Result<(), String> {
    let help = "expected udpin:<ip>:<port>, udpout:<host>:<port>, tcpin:<ip>:<port>, tcpout:<host>:<port> or \
                serial:<device>:<baud>";
    let Some((scheme, rest)) = link.split_once(':') else {
        return Err(format!("`{link}`: {help}"));
    };
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(format!("`{link}`: {help}"));
    };
    match scheme {
        "udpin" | "udpout" | "udpbcast" | "tcpin" | "tcpout" => {
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("`{link}`: needs a host and a port between 1 and 65535"));
            }
            Ok(())
        }
        "serial" => {
            if host.is_empty() || port.parse::<u32>().map_or(true, |baud| baud == 0) {
                return Err(format!("`{link}`: needs a device and a baud rate, e.g. serial:/dev/ttyUSB0:57600"));
            }
            Ok(())
        }
        _ => Err(format!("`{link}`: unknown scheme `{scheme}`; {help}")),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn load_text(text: &str) -> Result<Settings, ConfigError> {
        load_str(Some((Path::new("test.toml"), text)), std::iter::empty())
    }

    fn issues(text: &str) -> Vec<ConfigIssue> {
        issues_env(text, &[])
    }

    fn issues_env(text: &str, env: &[(&str, &str)]) -> Vec<ConfigIssue> {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        match load_str(Some((Path::new("test.toml"), text)), env) {
            Ok(settings) => panic!("expected errors, got {settings:?}"),
            Err(ConfigError::Invalid(issues)) => issues,
            Err(other) => panic!("expected validation errors, got {other}"),
        }
    }

    fn has(issues: &[ConfigIssue], key: &str) -> bool {
        issues.iter().any(|issue| issue.key == key)
    }

    #[test]
    fn the_embedded_default_is_valid() {
        let settings = load_str(None, std::iter::empty()).unwrap();
        assert_eq!(settings.station.id, "gs-1");
        assert_eq!(settings.mqtt.topic_prefix, "patrol");
        assert_eq!(settings.mqtt.client_id, "patrol-gs-1");
        assert_eq!(settings.mqtt.broker, BrokerSettings::Embedded { listen: "127.0.0.1:1884".parse().unwrap() });
        assert_eq!(settings.tracker.merge_radius_m, 15.0);
        assert_eq!(settings.tracker.confirm_photos, 2);
        assert_eq!(settings.tracker.severity.level(HazardKind::Fire, 0.7), "A");
        assert_eq!(settings.tracker.severity.level(HazardKind::Fire, 0.5), "C");
        assert_eq!(settings.gas_sensor.named_value, "CH4");
        assert_eq!(settings.storage.database, PathBuf::from("patrol-data/patrol.sqlite"));
        assert_eq!(settings.storage.retention, Duration::from_secs(30 * 86_400));
        // The alert thresholds calibrated for two-photo confirmation (train/calibrate_alerts.py).
        assert_eq!(settings.inference.classify("smoke"), Some((HazardKind::Fire, 0.65)));
        assert_eq!(settings.inference.classify("fire"), Some((HazardKind::Fire, 0.62)));
        assert_eq!(settings.inference.classify("gas_cylinder"), Some((HazardKind::Gas, 0.52)));
        assert_eq!(settings.inference.model, PathBuf::from("models/patrol-hazard.onnx"));
        assert_eq!(settings.inference.classify("car"), None);
        assert!(settings.drones.is_empty());
    }

    #[test]
    fn a_file_overrides_defaults_and_keeps_the_rest() {
        let settings = load_text(
            "[station]\nid = \"north\"\n[mqtt]\nbroker = \"external\"\nhost = \"broker.lan\"\nport = 8883\n\
             [[drones]]\nid = \"d1\"\nlink = \"udpin:0.0.0.0:14550\"\n",
        )
        .unwrap();
        assert_eq!(settings.station.id, "north");
        assert_eq!(settings.station.data_dir, PathBuf::from("patrol-data"));
        assert_eq!(settings.mqtt.broker, BrokerSettings::External { host: "broker.lan".into(), port: 8883, tls: None });
        assert_eq!(settings.drones.len(), 1);
        assert_eq!(settings.drones[0].link, "udpin:0.0.0.0:14550");
    }

    #[test]
    fn env_overrides_set_secrets_as_text_and_numbers_as_numbers() {
        let env = [
            ("GS__MQTT__BROKER".to_owned(), "external".to_owned()),
            ("GS__MQTT__USERNAME".to_owned(), "patrol".to_owned()),
            ("GS__MQTT__PASSWORD".to_owned(), "12345".to_owned()),
            ("GS__MQTT__PORT".to_owned(), "8883".to_owned()),
            ("GS__TRACKING__MERGE_RADIUS_M".to_owned(), "20".to_owned()),
            ("PATH".to_owned(), "/usr/bin".to_owned()),
        ];
        let settings = load_str(None, env).unwrap();
        let credentials = settings.mqtt.credentials.unwrap();
        assert_eq!(credentials.username, "patrol");
        assert_eq!(credentials.password.expose(), "12345");
        assert!(matches!(settings.mqtt.broker, BrokerSettings::External { port: 8883, .. }));
        assert_eq!(settings.tracker.merge_radius_m, 20.0);
    }

    #[test]
    fn env_overrides_index_drone_tables() {
        let env = vec![("GS__DRONES__0__LINK".to_owned(), "tcpout:10.0.0.2:5760".to_owned())];
        let settings =
            load_str(Some((Path::new("t.toml"), "[[drones]]\nid = \"d1\"\nlink = \"udpin:0.0.0.0:14550\"\n")), env)
                .unwrap();
        assert_eq!(settings.drones[0].link, "tcpout:10.0.0.2:5760");
        let issues = issues_env("", &[("GS__DRONES__3__LINK", "udpin:0.0.0.0:1")]);
        assert!(has(&issues, "GS__DRONES__3__LINK"), "{issues:?}");
    }

    #[test]
    fn env_overrides_with_bad_values_or_unknown_keys_are_reported() {
        let issues = issues_env("", &[("GS__MQTT__PORT", "eighty"), ("GS__MQTT__HOTS", "x")]);
        assert!(has(&issues, "GS__MQTT__PORT"), "{issues:?}");
        assert!(has(&issues, "mqtt.hots"), "{issues:?}");
    }

    #[test]
    fn every_unknown_key_is_reported_at_once() {
        let issues = issues("[mqtt]\nhots = \"x\"\nprot = 1\n[web]\nlisten_addr = \"x\"\n[extra]\na = 1\n");
        for key in ["mqtt.hots", "mqtt.prot", "web.listen_addr", "extra"] {
            assert!(has(&issues, key), "missing {key} in {issues:?}");
        }
        let hots = issues.iter().find(|i| i.key == "mqtt.hots").unwrap();
        assert!(hots.message.contains("topic_prefix"), "{hots}");
    }

    #[test]
    fn type_errors_name_the_key() {
        let issues = issues("[mqtt]\nport = \"x\"\n[tracking]\nend_after = \"soon\"\n");
        assert!(has(&issues, "mqtt.port"), "{issues:?}");
        assert!(has(&issues, "tracking.end_after"), "{issues:?}");
    }

    #[test]
    fn unknown_keys_and_type_errors_do_not_hide_validation_errors() {
        let issues = issues("[mqtt]\nhots = \"x\"\nport = \"x\"\ntopic_prefix = \"a/#\"\n[station]\nid = \"bad id\"\n");
        for key in ["mqtt.hots", "mqtt.port", "mqtt.topic_prefix", "station.id"] {
            assert!(has(&issues, key), "missing {key} in {issues:?}");
        }
        assert_eq!(issues.len(), 4, "{issues:?}");
    }

    #[test]
    fn syntax_errors_say_where() {
        let error = load_text("[mqtt\nport = 1").unwrap_err();
        assert!(matches!(&error, ConfigError::Syntax { .. }), "{error}");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn all_validation_errors_are_collected() {
        let issues = issues(
            "[station]\nid = \"bad id\"\n[mqtt]\ntopic_prefix = \"a/#\"\nkeep_alive = \"1s\"\n\
             [inference]\nthreads = 0\ntile_px = 8\ndefault_threshold = 1.5\n\
             [tracking]\nmerge_radius_m = -1.0\nend_after = \"10s\"\n",
        );
        for key in [
            "station.id",
            "mqtt.topic_prefix",
            "mqtt.keep_alive",
            "inference.threads",
            "inference.tile_px",
            "inference.default_threshold",
            "tracking.merge_radius_m",
            "tracking.end_after",
        ] {
            assert!(has(&issues, key), "missing {key} in {issues:?}");
        }
    }

    #[test]
    fn station_id_rules() {
        assert!(has(&issues("[station]\nid = \"\"\n"), "station.id"));
        assert!(has(&issues("[station]\nid = \"a/b\"\n"), "station.id"));
        assert!(has(&issues("[station]\ndata_dir = \"\"\n"), "station.data_dir"));
        assert!(load_text("[station]\nid = \"North_2-b\"\n").is_ok());
    }

    #[test]
    fn topic_prefix_rules() {
        for bad in ["", "/patrol", "patrol/", "a//b", "a/+/b", "a#"] {
            assert!(has(&issues(&format!("[mqtt]\ntopic_prefix = \"{bad}\"\n")), "mqtt.topic_prefix"), "{bad}");
        }
        assert_eq!(load_text("[mqtt]\ntopic_prefix = \"city/patrol\"\n").unwrap().mqtt.topic_prefix, "city/patrol");
    }

    #[test]
    fn tls_and_credentials_need_an_external_broker() {
        assert!(has(&issues("[mqtt]\ntls = true\n"), "mqtt.tls"));
        assert!(has(&issues("[mqtt]\nusername = \"u\"\n"), "mqtt.username"));
        let external = "[mqtt]\nbroker = \"external\"\n";
        assert!(has(&issues(&format!("{external}host = \"\"\n")), "mqtt.host"));
        assert!(has(&issues(&format!("{external}port = 0\n")), "mqtt.port"));
        assert!(has(&issues(&format!("{external}password = \"p\"\n")), "mqtt.username"));
        assert!(has(&issues(&format!("{external}ca_file = \"/nonexistent/ca.pem\"\n")), "mqtt.ca_file"));
        let both = format!("{external}username = \"u\"\npassword = \"p\"\npassword_file = \"/nonexistent\"\n");
        assert!(has(&issues(&both), "mqtt.password"));
        let unreadable = format!("{external}username = \"u\"\npassword_file = \"/nonexistent/pw\"\n");
        assert!(has(&issues(&unreadable), "mqtt.password_file"));
        let settings = load_text(&format!("{external}tls = true\n")).unwrap();
        assert!(matches!(
            settings.mqtt.broker,
            BrokerSettings::External { tls: Some(TlsSettings { ca_file: None, client_certificate: None }), .. }
        ));
        assert!(has(&issues("[mqtt]\nbroker = \"cloud\"\n"), "mqtt.broker"));
        assert!(has(&issues("[mqtt]\nclient_id = \"a b\"\n"), "mqtt.client_id"));
    }

    #[test]
    fn client_certificate_rules() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("client.pem");
        let key = dir.path().join("client.key");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n").unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let tls = format!("[mqtt]\nbroker = \"external\"\ntls = true\nca_file = \"{}\"\n", ca.display());
        let pair = |cert: &Path, key: &Path| {
            format!("client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n", cert.display(), key.display())
        };

        let settings = load_text(&format!("{tls}{}", pair(&cert, &key))).unwrap();
        let BrokerSettings::External { tls: Some(tls_settings), .. } = settings.mqtt.broker else {
            panic!("expected TLS settings: {:?}", settings.mqtt.broker);
        };
        assert_eq!(
            tls_settings.client_certificate,
            Some(ClientCertificate { cert_file: cert.clone(), key_file: key.clone() })
        );

        let only_cert = issues(&format!("{tls}client_cert_file = \"{}\"\n", cert.display()));
        assert!(has(&only_cert, "mqtt.client_key_file"), "{only_cert:?}");
        let only_key = issues(&format!("{tls}client_key_file = \"{}\"\n", key.display()));
        assert!(has(&only_key, "mqtt.client_cert_file"), "{only_key:?}");

        let missing = issues(&format!("{tls}{}", pair(&dir.path().join("nope.pem"), &key)));
        let message = &missing.iter().find(|i| i.key == "mqtt.client_cert_file").unwrap().message;
        assert!(message.contains("cannot read") && message.contains("nope.pem"), "{message}");

        let swapped = issues(&format!("{tls}{}", pair(&key, &cert)));
        assert!(has(&swapped, "mqtt.client_cert_file") && has(&swapped, "mqtt.client_key_file"), "{swapped:?}");

        let without_tls = issues(&format!("[mqtt]\nbroker = \"external\"\n{}", pair(&cert, &key)));
        assert!(has(&without_tls, "mqtt.client_cert_file"), "{without_tls:?}");
        let without_ca = issues(&format!("[mqtt]\nbroker = \"external\"\ntls = true\n{}", pair(&cert, &key)));
        assert!(has(&without_ca, "mqtt.ca_file"), "{without_ca:?}");
        let embedded = issues(&format!("[mqtt]\n{}", pair(&cert, &key)));
        assert!(has(&embedded, "mqtt.client_cert_file"), "{embedded:?}");
    }

    #[test]
    fn password_file_is_read_and_redacted() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "hunter2").unwrap();
        let text =
            format!("[mqtt]\nbroker = \"external\"\nusername = \"u\"\npassword_file = \"{}\"\n", file.path().display());
        let settings = load_text(&text).unwrap();
        let credentials = settings.mqtt.credentials.clone().unwrap();
        assert_eq!(credentials.password.expose(), "hunter2");
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn raw_mqtt_debug_redacts_the_password() {
        let raw: RawConfig = {
            let mut tree: toml::Table = toml::from_str(DEFAULT_CONFIG).unwrap();
            merge(&mut tree, toml::from_str("[mqtt]\npassword = \"topsecret\"\n").unwrap());
            tree.try_into().unwrap()
        };
        let debug = format!("{raw:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
    }

    #[test]
    fn inference_label_rules() {
        let bad_kind = issues("[inference.hazard_map]\ncar = \"vehicle\"\n");
        assert!(has(&bad_kind, "inference.hazard_map.car"));
        let orphan = issues("[inference.thresholds]\ncar = 0.5\n");
        assert!(has(&orphan, "inference.thresholds.car"));
        let out_of_range = issues("[inference.thresholds]\nfire = 1.2\n");
        assert!(has(&out_of_range, "inference.thresholds.fire"));
        assert_eq!(load_text("[inference]\ntile_px = 0\n").unwrap().inference.tile_px, None);
    }

    #[test]
    fn drone_rules() {
        let dup = "[[drones]]\nid = \"d\"\nlink = \"udpin:0.0.0.0:14550\"\n\
                   [[drones]]\nid = \"d\"\nlink = \"udpin:0.0.0.0:14551\"\n";
        assert!(has(&issues(dup), "drones[1].id"));
        for bad in
            ["udp:1.2.3.4:5", "udpin:0.0.0.0", "udpin:0.0.0.0:0", "tcpout::5760", "serial:/dev/ttyUSB0:fast", "x"]
        {
            let text = format!("[[drones]]\nid = \"d\"\nlink = \"{bad}\"\n");
            assert!(has(&issues(&text), "drones[0].link"), "{bad}");
        }
        for good in ["udpout:10.0.0.1:14550", "tcpin:0.0.0.0:5760", "serial:/dev/ttyACM0:115200"] {
            assert!(load_text(&format!("[[drones]]\nid = \"d\"\nlink = \"{good}\"\n")).is_ok(), "{good}");
        }
        let key = "[[drones]]\nid = \"d\"\nlink = \"udpin:0.0.0.0:1\"\nsigning_key_file = \"/nonexistent.key\"\n";
        assert!(has(&issues(key), "drones[0].signing_key_file"));
        assert!(has(&issues("[[drones]]\nid = \"d\"\nlink = \"udpin:0.0.0.0:1\"\nspeed = 3\n"), "drones[0].speed"));
        assert!(has(&issues("drones = 3\n"), "drones"));
    }

    #[test]
    fn gas_sensor_rules() {
        assert!(has(&issues("[gas_sensor]\nnamed_value = \"METHANE_PPM\"\n"), "gas_sensor.named_value"));
        assert!(has(&issues("[gas_sensor]\nnamed_value = \"\"\n"), "gas_sensor.named_value"));
        assert!(has(&issues("[gas_sensor]\nthreshold_ppm_m = 0.0\n"), "gas_sensor.threshold_ppm_m"));
    }

    #[test]
    fn georef_rules() {
        assert!(has(&issues("[georef]\nattitude_error_deg = 90.0\n"), "georef.attitude_error_deg"));
        assert!(has(&issues("[georef]\nheight_error_m = -1.0\n"), "georef.height_error_m"));
        assert!(has(&issues("[georef]\nhorizontal_error_m = nan\n"), "georef.horizontal_error_m"));
        assert!(has(&issues("[georef]\nterrain_file = \"dem.tif\"\n"), "georef.terrain_file"), "not supported yet");
        assert!(issues("[georef]\nbox_anchor = \"top\"\n").iter().any(|i| i.key.starts_with("georef")));
        let anchor = load_text("[georef]\nbox_anchor = \"bottom-centre\"\n").unwrap().georef.box_anchor;
        assert_eq!(anchor, BoxAnchor::BottomCentre);
    }

    #[test]
    fn tracking_rules() {
        assert!(has(&issues("[tracking]\nmerge_radius_m = 5000.0\n"), "tracking.merge_radius_m"));
        assert!(has(&issues("[tracking]\nuncertainty_sigmas = 11.0\n"), "tracking.uncertainty_sigmas"));
        assert!(has(&issues("[tracking]\nconfirm_photos = 0\n"), "tracking.confirm_photos"));
    }

    #[test]
    fn severity_rules() {
        let text = "[severity]\ndefault_level = \"\"\n[[severity.rules]]\nkind = \"flood\"\nmin_confidence = 2.0\nlevel = \"\"\n";
        let issues = issues(text);
        for key in [
            "severity.default_level",
            "severity.rules[0].kind",
            "severity.rules[0].min_confidence",
            "severity.rules[0].level",
        ] {
            assert!(has(&issues, key), "missing {key} in {issues:?}");
        }
        let settings =
            load_text("[[severity.rules]]\nkind = \"structure\"\nmin_confidence = 0.5\nlevel = \"B\"\n").unwrap();
        assert_eq!(settings.tracker.severity.rules.len(), 1, "a file's rules replace the default rules");
        assert_eq!(settings.tracker.severity.level(HazardKind::Structure, 0.5), "B");
        assert_eq!(settings.tracker.severity.level(HazardKind::Fire, 0.99), "C");
    }

    #[test]
    fn district_rules() {
        assert!(has(&issues("[district]\ncells = \"/nonexistent/cells.geojson\"\n"), "district.cells"));
        assert!(has(&issues("[district]\naddresses = \"/nonexistent/a.geojson\"\n"), "district.addresses"));
        assert!(has(&issues("[district]\nmax_address_distance_m = 0.0\n"), "district.max_address_distance_m"));
    }

    #[test]
    fn storage_rules() {
        assert!(has(&issues("[storage]\nretention = \"5m\"\n"), "storage.retention"));
        assert!(has(&issues("[storage]\ndatabase = \"\"\n"), "storage.database"));
        assert!(has(&issues("[storage]\nevidence_dir = \"\"\n"), "storage.evidence_dir"));
        let settings = load_text("[storage]\nmax_evidence_mb = 0\n").unwrap();
        assert_eq!(settings.storage.max_evidence_bytes, None);
    }

    #[test]
    fn unreadable_file_is_a_read_error() {
        let error = load(Some(Path::new("/nonexistent/ground-station.toml")), std::iter::empty()).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }));
    }

    #[test]
    fn invalid_error_lists_every_issue() {
        let error = load_text("[station]\nid = \"\"\n[mqtt]\ntopic_prefix = \"\"\n").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("2 problem(s)"), "{text}");
        assert!(text.contains("station.id") && text.contains("mqtt.topic_prefix"), "{text}");
    }
}
