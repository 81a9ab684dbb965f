//! MQTT publishing with a durable outbox, and the embedded broker.
//!
//! Delivery contract (see `docs/mqtt.md`):
//! - Every event is committed to the SQLite outbox ([`crate::storage`]) *before* it is published, and removed
//!   only when the broker's PUBACK for it arrives. rumqttc drops in-flight and queued messages when a clean
//!   session reconnects, so the outbox, not rumqttc, is the source of truth.
//! - After every (re)connect and after a restart, the outbox is re-sent from its oldest message, in order.
//!   A message whose PUBACK was lost is therefore sent twice: consumers de-duplicate by `event_id`.
//! - `<prefix>/available` is retained: `online` after each connect, `stopped` on a clean shutdown, and the Last
//!   Will `offline` when the station vanishes.
//! - Drone state (`<prefix>/drones/<id>/state`, retained) is perishable: only the latest per drone is kept and it
//!   is not stored.
//!
//! Tasks: [`spawn`] starts a connection driver (one fresh rumqttc client + `EventLoop` per connection attempt,
//! polled in its own task, capped exponential backoff with jitter) and a publisher actor that owns the
//! correlation of packet ids to outbox rows. Because each connection has its own client, a request queued on a
//! dead connection can never be mistaken for one on the next.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{BrokerSettings, MqttSettings};
use crate::hazard::{AlarmKind, DroneState, HazardEvent, MissionProgress, ReviewEvent, StationAlarm};
use crate::storage::{OutboxMessage, StorageError, StorageHandle};

/// Payload of `<prefix>/available` while the station runs.
pub const AVAILABLE_ONLINE: &str = "online";
/// Payload of `<prefix>/available` after a clean shutdown.
pub const AVAILABLE_STOPPED: &str = "stopped";
/// Payload of `<prefix>/available` the broker publishes (Last Will) when the station vanishes.
pub const AVAILABLE_OFFLINE: &str = "offline";

/// Most messages published and not yet acknowledged; below rumqttc's in-flight limit so it never stalls.
const MAX_WINDOW: usize = 64;
/// rumqttc's in-flight limit.
const RUMQTTC_INFLIGHT: u16 = 100;
/// rumqttc's request channel capacity (above [`MAX_WINDOW`] plus the drone states).
const REQUEST_CAPACITY: usize = 512;
/// Capacity of the driver -> publisher event channel (the driver waits when it is full).
const EVENT_CAPACITY: usize = 256;
/// Capacity of the drone-state channel; on full, a state is dropped and counted (the next one replaces it).
const STATE_CAPACITY: usize = 64;
/// First and largest reconnect delay.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a clean shutdown waits for the `stopped` PUBACK.
const STOP_ACK_TIMEOUT: Duration = Duration::from_secs(3);

/// The topics under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics under `prefix` (validated by the config: no wildcards, no leading/trailing `/`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// `<prefix>/available`.
    pub fn available(&self) -> String {
        format!("{}/available", self.prefix)
    }

    /// `<prefix>/hazards`.
    pub fn hazards(&self) -> String {
        format!("{}/hazards", self.prefix)
    }

    /// `<prefix>/reviews`.
    pub fn reviews(&self) -> String {
        format!("{}/reviews", self.prefix)
    }

    /// `<prefix>/drones/<id>/state`.
    pub fn drone_state(&self, drone_id: &str) -> String {
        format!("{}/drones/{drone_id}/state", self.prefix)
    }

    /// `<prefix>/missions/<id>`.
    pub fn mission(&self, mission_id: &str) -> String {
        format!("{}/missions/{mission_id}", self.prefix)
    }

    /// `<prefix>/alarms/<alarm>`.
    pub fn alarm(&self, kind: AlarmKind) -> String {
        format!("{}/alarms/{}", self.prefix, kind.as_str())
    }

    /// The outbox message for an alarm change (`<prefix>/alarms/<alarm>`, retained: a subscriber that comes later
    /// sees whether the alarm is on).
    pub fn alarm_message(&self, alarm: &StationAlarm) -> OutboxMessage {
        OutboxMessage { topic: self.alarm(alarm.alarm), payload: json(alarm), retain: true }
    }

    /// The outbox message for a hazard event (`<prefix>/hazards`, not retained).
    pub fn hazard_message(&self, event: &HazardEvent) -> OutboxMessage {
        OutboxMessage { topic: self.hazards(), payload: json(event), retain: false }
    }

    /// The outbox message for a review (`<prefix>/reviews`, not retained).
    pub fn review_message(&self, review: &ReviewEvent) -> OutboxMessage {
        OutboxMessage { topic: self.reviews(), payload: json(review), retain: false }
    }

    /// The outbox message for mission progress (`<prefix>/missions/<id>`, retained: late subscribers see the
    /// latest state).
    pub fn mission_message(&self, progress: &MissionProgress) -> OutboxMessage {
        OutboxMessage { topic: self.mission(&progress.mission_id), payload: json(progress), retain: true }
    }
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs (strings, numbers, enums) cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// How to reach the broker.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// rumqttc options (client id, keep-alive, credentials, TLS, Last Will).
    pub mqtt: MqttOptions,
    /// Topics.
    pub topics: Topics,
}

/// Failures preparing the MQTT connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    /// The CA file could not be read.
    #[error("cannot read MQTT CA file {path}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS client certificate or its key could not be read.
    #[error("cannot read MQTT client certificate file {path}")]
    ClientCertificateFile {
        /// The file (certificate or key).
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The embedded broker could not start.
    #[error("embedded MQTT broker on {listen}: {message}")]
    EmbeddedBroker {
        /// Its address.
        listen: SocketAddr,
        /// What failed.
        message: String,
    },
}

impl ConnectOptions {
    /// Options from the validated `[mqtt]` settings. With an embedded broker, connects to its listen address.
    ///
    /// With TLS, the broker's certificate is verified against `ca_file` (else the system roots), and the client
    /// certificate, when configured, is presented to the broker.
    ///
    /// # Errors
    /// [`MqttError::CaFile`] when the CA bundle cannot be read, [`MqttError::ClientCertificateFile`] when the
    /// client certificate or its key cannot be read.
    pub fn from_settings(settings: &MqttSettings) -> Result<Self, MqttError> {
        let topics = Topics::new(settings.topic_prefix.clone());
        let (host, port, tls) = match &settings.broker {
            BrokerSettings::Embedded { listen } => {
                let host = if listen.ip().is_unspecified() { "127.0.0.1".to_owned() } else { listen.ip().to_string() };
                (host, listen.port(), None)
            }
            BrokerSettings::External { host, port, tls } => (host.clone(), *port, tls.clone()),
        };
        let mut mqtt = MqttOptions::new(settings.client_id.clone(), host, port);
        mqtt.set_keep_alive(settings.keep_alive);
        if let Some(credentials) = &settings.credentials {
            mqtt.set_credentials(credentials.username.clone(), credentials.password.expose().to_owned());
        }
        if let Some(tls) = tls {
            let client_auth = match &tls.client_certificate {
                Some(client) => {
                    let read = |path: &std::path::PathBuf| {
                        std::fs::read(path)
                            .map_err(|source| MqttError::ClientCertificateFile { path: path.clone(), source })
                    };
                    Some((read(&client.cert_file)?, read(&client.key_file)?))
                }
                None => None,
            };
            // The config loader only accepts a client certificate together with `ca_file`.
            let transport = match &tls.ca_file {
                Some(path) => {
                    let ca = std::fs::read(path).map_err(|source| MqttError::CaFile { path: path.clone(), source })?;
                    rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple {
                        ca,
                        alpn: None,
                        client_auth,
                    })
                }
                None => rumqttc::Transport::tls_with_default_config(),
            };
            mqtt.set_transport(transport);
        }
        Ok(Self::new(mqtt, topics))
    }

    /// Options from rumqttc options: sets the Last Will, clean session, in-flight limit and channel capacity.
    pub fn new(mut mqtt: MqttOptions, topics: Topics) -> Self {
        mqtt.set_last_will(LastWill::new(topics.available(), AVAILABLE_OFFLINE, QoS::AtLeastOnce, true));
        mqtt.set_clean_session(true);
        mqtt.set_inflight(RUMQTTC_INFLIGHT);
        mqtt.set_request_channel_capacity(REQUEST_CAPACITY);
        Self { mqtt, topics }
    }
}

/// Live publisher status, for health checks, the console and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MqttStatus {
    /// Connected to the broker now.
    pub connected: bool,
    /// Outbox messages acknowledged by the broker since start.
    pub delivered_total: u64,
    /// Successful connections since start.
    pub connections_total: u64,
    /// Drone states dropped because the channel was full.
    pub states_dropped_total: u64,
}

/// Handle to the MQTT publisher.
#[derive(Debug, Clone)]
pub struct MqttHandle {
    outbox_changed: Arc<Notify>,
    states: mpsc::Sender<DroneState>,
    status: watch::Receiver<MqttStatus>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    topics: Topics,
}

impl MqttHandle {
    /// Tells the publisher that messages were committed to the outbox. Call after every commit.
    pub fn outbox_changed(&self) {
        self.outbox_changed.notify_one();
    }

    /// Queues a drone state (retained, latest wins, not stored). Never waits: when the queue is full the state
    /// is dropped and counted in [`MqttStatus::states_dropped_total`].
    pub fn publish_drone_state(&self, state: DroneState) {
        if self.states.try_send(state).is_err() {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Publisher status updates.
    pub fn status(&self) -> watch::Receiver<MqttStatus> {
        self.status.clone()
    }

    /// The topics.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }
}

/// Starts the MQTT publisher: the connection driver and the publisher actor, both on `tasks`. On `cancel` the
/// publisher publishes `stopped` (retained), waits briefly for its PUBACK, disconnects cleanly and stops.
/// Unsent outbox messages stay stored for the next start.
pub fn spawn(
    options: ConnectOptions,
    storage: StorageHandle,
    tasks: &TaskTracker,
    cancel: CancellationToken,
) -> MqttHandle {
    let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
    let (states_tx, states_rx) = mpsc::channel(STATE_CAPACITY);
    let (status_tx, status_rx) = watch::channel(MqttStatus::default());
    let outbox_changed = Arc::new(Notify::new());
    let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let driver_stop = CancellationToken::new();
    tasks.spawn(drive(options.mqtt.clone(), events_tx, driver_stop.clone()));
    let publisher = Publisher {
        topics: options.topics.clone(),
        storage,
        events: events_rx,
        states: states_rx,
        outbox_changed: outbox_changed.clone(),
        status: status_tx,
        dropped: dropped.clone(),
        session: None,
        fifo: VecDeque::new(),
        inflight: HashMap::new(),
        cursor: 0,
        maybe_more: true,
        latest_states: BTreeMap::new(),
    };
    tasks.spawn(publisher.run(cancel, driver_stop));
    MqttHandle { outbox_changed, states: states_tx, status: status_rx, dropped, topics: options.topics }
}

/// What the driver tells the publisher.
enum DriverEvent {
    /// A new connection attempt with this client.
    Session(u64, AsyncClient),
    /// An event of a session.
    Event(u64, Event),
    /// A session ended (the driver logs why).
    Lost(u64),
}

/// Connection driver: a fresh client + event loop per attempt, polled until it fails, then backoff.
async fn drive(options: MqttOptions, events: mpsc::Sender<DriverEvent>, stop: CancellationToken) {
    let mut session = 0_u64;
    let mut backoff = BACKOFF_MIN;
    let mut logged_down = false;
    let mut ever_connected = false;
    loop {
        session += 1;
        let (client, mut eventloop): (AsyncClient, EventLoop) = AsyncClient::new(options.clone(), REQUEST_CAPACITY);
        if events.send(DriverEvent::Session(session, client)).await.is_err() {
            return;
        }
        let mut disconnecting = false;
        let error = loop {
            let polled = tokio::select! {
                () = stop.cancelled() => return,
                polled = eventloop.poll() => polled,
            };
            match polled {
                Ok(event) => {
                    // Our own DISCONNECT (clean shutdown): the broker closes the connection next, which is the end
                    // of this driver, not a lost connection.
                    disconnecting |= matches!(event, Event::Outgoing(Outgoing::Disconnect));
                    if matches!(event, Event::Incoming(Incoming::ConnAck(_))) {
                        backoff = BACKOFF_MIN;
                        if !ever_connected {
                            tracing::info!("MQTT connected.");
                        } else if logged_down {
                            tracing::warn!("MQTT broker reachable again.");
                        }
                        ever_connected = true;
                        logged_down = false;
                    }
                    if events.send(DriverEvent::Event(session, event)).await.is_err() {
                        return;
                    }
                }
                Err(error) if disconnecting => {
                    tracing::debug!(%error, "MQTT connection closed after our DISCONNECT.");
                    let _ = events.try_send(DriverEvent::Lost(session));
                    return;
                }
                Err(error) => break error,
            }
        };
        if !ever_connected && session == 1 {
            // At start-up (an embedded broker may still be binding its port): not yet an outage.
            tracing::info!(%error, "MQTT broker not reachable yet; retrying with backoff.");
        } else if !logged_down {
            if ever_connected {
                tracing::error!(%error, "MQTT connection lost; retrying with backoff.");
            } else {
                tracing::error!(%error, "Cannot connect to the MQTT broker; retrying with backoff.");
            }
            logged_down = true;
        } else {
            tracing::debug!(%error, "MQTT connection attempt failed.");
        }
        if events.send(DriverEvent::Lost(session)).await.is_err() {
            return;
        }
        let delay = jitter(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// `delay` scaled by a factor in [0.5, 1.0), from the clock's sub-second nanoseconds (no RNG needed).
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    delay.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}

struct Publisher {
    topics: Topics,
    storage: StorageHandle,
    events: mpsc::Receiver<DriverEvent>,
    states: mpsc::Receiver<DroneState>,
    outbox_changed: Arc<Notify>,
    status: watch::Sender<MqttStatus>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    /// The current session and its client; `connected` once its CONNACK arrived.
    session: Option<Session>,
    /// Published on the current session, waiting for rumqttc to assign a packet id (outbox id, or `None` for
    /// messages that are not in the outbox).
    fifo: VecDeque<Option<i64>>,
    /// Packet id -> outbox id, waiting for PUBACK.
    inflight: HashMap<u16, Option<i64>>,
    /// Highest outbox id published on the current session.
    cursor: i64,
    /// The outbox may hold messages above `cursor`.
    maybe_more: bool,
    /// Latest unsent state per drone.
    latest_states: BTreeMap<String, DroneState>,
}

struct Session {
    id: u64,
    client: AsyncClient,
    connected: bool,
}

impl Publisher {
    async fn run(mut self, cancel: CancellationToken, driver_stop: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                event = self.events.recv() => match event {
                    Some(event) => self.on_driver(event).await,
                    None => break,
                },
                () = self.outbox_changed.notified() => self.maybe_more = true,
                Some(state) = self.states.recv() => {
                    self.latest_states.insert(state.drone_id.clone(), state);
                }
            }
            if let Err(error) = self.pump().await {
                tracing::error!(%error, "Cannot read the MQTT outbox.");
            }
        }
        self.stop().await;
        driver_stop.cancel();
    }

    fn connected_client(&self) -> Option<&AsyncClient> {
        self.session.as_ref().filter(|s| s.connected).map(|s| &s.client)
    }

    async fn on_driver(&mut self, event: DriverEvent) {
        match event {
            DriverEvent::Session(id, client) => {
                self.session = Some(Session { id, client, connected: false });
                self.reset();
            }
            DriverEvent::Lost(id) => {
                if self.session.as_ref().is_some_and(|s| s.id == id) {
                    self.session = None;
                    self.reset();
                    self.status.send_modify(|s| s.connected = false);
                }
            }
            DriverEvent::Event(id, event) => {
                if self.session.as_ref().is_none_or(|s| s.id != id) {
                    return;
                }
                self.on_event(event).await;
            }
        }
    }

    /// Forgets the packet-id bookkeeping of a finished session; the outbox is re-sent from the start.
    fn reset(&mut self) {
        self.fifo.clear();
        self.inflight.clear();
        self.cursor = 0;
        self.maybe_more = true;
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Incoming::ConnAck(_)) => {
                if let Some(session) = &mut self.session {
                    session.connected = true;
                }
                self.reset();
                self.status.send_modify(|s| {
                    s.connected = true;
                    s.connections_total += 1;
                });
                tracing::info!(topic = %self.topics.available(), "MQTT connected.");
                self.publish_raw(self.topics.available(), AVAILABLE_ONLINE.as_bytes().to_vec(), true, None);
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => match self.fifo.pop_front() {
                Some(entry) => {
                    self.inflight.insert(pkid, entry);
                }
                None => tracing::warn!(pkid, "MQTT publish that the station did not queue."),
            },
            Event::Incoming(Incoming::PubAck(ack)) => {
                if let Some(Some(outbox_id)) = self.inflight.remove(&ack.pkid) {
                    match self.storage.call(move |db| db.outbox_remove(outbox_id)).await {
                        Ok(()) => self.status.send_modify(|s| s.delivered_total += 1),
                        // Left in the outbox: it is re-sent after the next reconnect (consumers de-duplicate).
                        Err(error) => tracing::error!(%error, outbox_id, "Cannot remove a delivered MQTT message."),
                    }
                }
            }
            _ => {}
        }
    }

    /// Publishes as much as the window allows: outbox messages in order, then the latest drone states.
    async fn pump(&mut self) -> Result<(), StorageError> {
        self.status.send_if_modified(|s| {
            let dropped = self.dropped.load(std::sync::atomic::Ordering::Relaxed);
            let changed = s.states_dropped_total != dropped;
            s.states_dropped_total = dropped;
            changed
        });
        if self.connected_client().is_none() {
            return Ok(());
        }
        while self.maybe_more && self.window() < MAX_WINDOW {
            let after = self.cursor;
            let room = u32::try_from(MAX_WINDOW - self.window()).unwrap_or(1);
            let entries = self.storage.call(move |db| db.outbox_pending(after, room)).await?;
            if entries.len() < room as usize {
                self.maybe_more = false;
            }
            if entries.is_empty() {
                break;
            }
            for entry in entries {
                if !self.publish_raw(entry.message.topic, entry.message.payload, entry.message.retain, Some(entry.id)) {
                    // The client's queue is full; the rest goes once acknowledgements free the window.
                    self.maybe_more = true;
                    return Ok(());
                }
                self.cursor = entry.id;
            }
        }
        while self.window() < MAX_WINDOW {
            let Some((drone_id, state)) = self.latest_states.pop_first() else { break };
            let topic = self.topics.drone_state(&drone_id);
            if !self.publish_raw(topic, json(&state), true, None) {
                self.latest_states.entry(drone_id).or_insert(state);
                break;
            }
        }
        Ok(())
    }

    fn window(&self) -> usize {
        self.fifo.len() + self.inflight.len()
    }

    /// Hands a QoS 1 publish to the current client; false when it could not take it.
    fn publish_raw(&mut self, topic: String, payload: Vec<u8>, retain: bool, outbox_id: Option<i64>) -> bool {
        let Some(client) = self.connected_client() else { return false };
        match client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
            Ok(()) => {
                self.fifo.push_back(outbox_id);
                true
            }
            Err(error) => {
                tracing::debug!(%error, "MQTT client queue full.");
                false
            }
        }
    }

    /// Clean shutdown: `stopped` (retained), wait for its PUBACK (bounded), DISCONNECT.
    async fn stop(&mut self) {
        if self.connected_client().is_none() {
            return;
        }
        self.publish_raw(self.topics.available(), AVAILABLE_STOPPED.as_bytes().to_vec(), true, None);
        let waiting = async {
            while let Some(event) = self.events.recv().await {
                let acked_all = matches!(&event, DriverEvent::Event(_, Event::Incoming(Incoming::PubAck(_))));
                let lost = matches!(&event, DriverEvent::Lost(..));
                self.on_driver(event).await;
                if lost || (acked_all && self.window() == 0) {
                    return;
                }
            }
        };
        if tokio::time::timeout(STOP_ACK_TIMEOUT, waiting).await.is_err() {
            tracing::warn!("MQTT broker did not acknowledge `stopped` in time.");
        }
        if let Some(client) = self.connected_client() {
            // The DISCONNECT tells the broker not to publish the Last Will.
            if let Err(error) = client.try_disconnect() {
                tracing::debug!(%error, "MQTT disconnect not sent.");
            }
            let flush = async {
                while let Some(event) = self.events.recv().await {
                    if matches!(
                        event,
                        DriverEvent::Lost(..) | DriverEvent::Event(_, Event::Outgoing(Outgoing::Disconnect))
                    ) {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), flush).await;
        }
        self.status.send_modify(|s| s.connected = false);
    }
}

/// Starts the embedded MQTT broker (rumqttd, MQTT 3.1.1) on `listen` in its own threads. It runs until the
/// process exits (rumqttd has no stop); the returned thread handle is for joining at exit only.
///
/// # Errors
/// [`MqttError::EmbeddedBroker`] when the configuration is refused or the thread cannot start. A port already
/// in use is reported by rumqttd in the log and then shows as a failing MQTT connection.
pub fn start_embedded_broker(listen: SocketAddr) -> Result<std::thread::JoinHandle<()>, MqttError> {
    let text = format!(
        r#"
id = 0
[router]
max_connections = 256
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "patrol-embedded"
listen = "{listen}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 1048576
max_inflight_count = 200
dynamic_filters = true
"#
    );
    let config: rumqttd::Config =
        toml::from_str(&text).map_err(|error| MqttError::EmbeddedBroker { listen, message: error.to_string() })?;
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(%error, "Embedded MQTT broker stopped.");
            }
        })
        .map_err(|error| MqttError::EmbeddedBroker { listen, message: error.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_prefix() {
        let topics = Topics::new("city/patrol");
        assert_eq!(topics.available(), "city/patrol/available");
        assert_eq!(topics.hazards(), "city/patrol/hazards");
        assert_eq!(topics.reviews(), "city/patrol/reviews");
        assert_eq!(topics.drone_state("d1"), "city/patrol/drones/d1/state");
        assert_eq!(topics.mission("m7"), "city/patrol/missions/m7");
        assert_eq!(topics.alarm(AlarmKind::EvidenceStorage), "city/patrol/alarms/evidence_storage");
    }

    #[test]
    fn options_carry_the_last_will_and_credentials() {
        let settings = crate::config::load_str(
            None,
            [
                ("GS__MQTT__BROKER".to_owned(), "external".to_owned()),
                ("GS__MQTT__USERNAME".to_owned(), "u".to_owned()),
                ("GS__MQTT__PASSWORD".to_owned(), "p".to_owned()),
            ],
        )
        .unwrap();
        let options = ConnectOptions::from_settings(&settings.mqtt).unwrap();
        let will = options.mqtt.last_will().unwrap();
        assert_eq!(will.topic, "patrol/available");
        assert_eq!(&will.message[..], b"offline");
        assert!(will.retain);
        assert_eq!(options.mqtt.credentials().unwrap().username, "u");
        assert_eq!(options.mqtt.broker_address(), ("127.0.0.1".to_owned(), 1883));
        assert!(options.mqtt.clean_session());
    }

    #[test]
    fn tls_options_carry_the_ca_and_the_client_certificate() {
        use crate::config::{ClientCertificate, TlsSettings};

        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = (dir.path().join("ca.pem"), dir.path().join("client.pem"), dir.path().join("client.key"));
        for (path, text) in [(&ca, "ca"), (&cert, "cert"), (&key, "key")] {
            std::fs::write(path, text).unwrap();
        }
        let mut settings = crate::config::load_str(None, std::iter::empty()).unwrap().mqtt;
        let client_certificate = ClientCertificate { cert_file: cert, key_file: key.clone() };
        let tls = TlsSettings { ca_file: Some(ca), client_certificate: Some(client_certificate) };
        settings.broker = BrokerSettings::External { host: "broker".into(), port: 8883, tls: Some(tls) };

        let options = ConnectOptions::from_settings(&settings).unwrap();
        match options.mqtt.transport() {
            rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Simple { ca, client_auth, .. }) => {
                assert_eq!(ca, b"ca");
                assert_eq!(client_auth, Some((b"cert".to_vec(), b"key".to_vec())));
            }
            _ => panic!("expected TLS with a CA and a client certificate"),
        }

        std::fs::remove_file(&key).unwrap();
        match ConnectOptions::from_settings(&settings) {
            Err(MqttError::ClientCertificateFile { path, .. }) => assert_eq!(path, key),
            other => panic!("expected the missing key to be named, got {other:?}"),
        }
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(5) && d < Duration::from_secs(10), "{d:?}");
        }
    }
}
