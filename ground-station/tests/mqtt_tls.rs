//! MQTT security against a real broker: a private Mosquitto started (and stopped) by each test on free ports,
//! with a TLS-only listener, a second TLS listener that requires client certificates, a password file and an
//! ACL that lets user `patrol` write only under `patrol/#`. The certificates (CA, broker, client, and a second
//! CA the broker does not use) are made by the test with rcgen. The station's side is configured the way an
//! operator does it: `[mqtt]` keys through the config loader, then `ConnectOptions::from_settings`.
//!
//! Needs `/usr/sbin/mosquitto` and `/usr/bin/mosquitto_passwd` (both in Debian's `mosquitto` package, which
//! `scripts/setup-test-deps.sh` installs). Without them the tests fail with a message saying so; they are never
//! silently skipped.

// Test helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ground_station::config::{self, Settings};
use ground_station::mqtt::{self, ConnectOptions, MqttStatus};
use ground_station::storage::{OutboxMessage, StorageHandle};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Incoming, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";
const MOSQUITTO_PASSWD: &str = "/usr/bin/mosquitto_passwd";
/// Generous: the CI machine is shared and slow.
const WAIT: Duration = Duration::from_secs(60);
/// The station's account: may write only under `patrol/#`.
const STATION_USER: &str = "patrol";
const STATION_PASSWORD: &str = "station-secret";
/// A test observer that may read everything.
const OBSERVER_USER: &str = "observer";
const OBSERVER_PASSWORD: &str = "observer-secret";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// PEM files of a test PKI, in a temporary folder.
struct Pki {
    ca: PathBuf,
    /// A CA that signed nothing the broker uses.
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf certificate signed by `ca`; returns (certificate PEM, key PEM).
fn new_leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &**ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn generate(dir: &Path) -> Self {
        let ca = new_ca("patrol test CA");
        let other_ca = new_ca("some other CA");
        // The station connects to 127.0.0.1, so the broker's certificate names that address.
        let (server_cert, server_key) =
            new_leaf(&ca, "mosquitto", &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = new_leaf(&ca, "patrol-gs-1", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Self {
            ca: write("ca.pem", &ca.pem()),
            other_ca: write("other-ca.pem", &other_ca.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
        }
    }
}

/// A private Mosquitto with two TLS listeners (`tls_port`: server certificate only; `mtls_port`: client
/// certificate required), password authentication and an ACL. No plain listener.
struct SecureMosquitto {
    child: Child,
    tls_port: u16,
    mtls_port: u16,
}

impl SecureMosquitto {
    fn start(dir: &Path, pki: &Pki) -> Self {
        for tool in [MOSQUITTO, MOSQUITTO_PASSWD] {
            assert!(Path::new(tool).exists(), "{tool} is missing: run scripts/setup-test-deps.sh (installs mosquitto)");
        }
        let passwords = dir.join("passwords");
        std::fs::write(&passwords, "").unwrap();
        for (user, password) in [(STATION_USER, STATION_PASSWORD), (OBSERVER_USER, OBSERVER_PASSWORD)] {
            let status =
                Command::new(MOSQUITTO_PASSWD).arg("-b").arg(&passwords).arg(user).arg(password).status().unwrap();
            assert!(status.success(), "mosquitto_passwd failed for {user}");
        }
        let acl = dir.join("acl");
        std::fs::write(
            &acl,
            format!("user {STATION_USER}\ntopic readwrite patrol/#\n\nuser {OBSERVER_USER}\ntopic read #\n"),
        )
        .unwrap();
        let (tls_port, mtls_port) = (free_port(), free_port());
        let tls = format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n",
            pki.ca.display(),
            pki.server_cert.display(),
            pki.server_key.display()
        );
        let conf = dir.join("mosquitto.conf");
        // `user root` keeps a broker started by root from switching to the `mosquitto` user, which could not read
        // the files in this private folder; a broker started by anyone else ignores it.
        std::fs::write(
            &conf,
            format!(
                "user root\nper_listener_settings false\nallow_anonymous false\npassword_file {}\nacl_file {}\n\
                 log_dest none\n\
                 listener {tls_port} 127.0.0.1\n{tls}require_certificate false\n\
                 listener {mtls_port} 127.0.0.1\n{tls}require_certificate true\n",
                passwords.display(),
                acl.display()
            ),
        )
        .unwrap();
        let child =
            Command::new(MOSQUITTO).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let broker = Self { child, tls_port, mtls_port };
        for port in [tls_port, mtls_port] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = std::time::Instant::now() + WAIT;
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(std::time::Instant::now() < deadline, "mosquitto did not start on port {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        broker
    }
}

impl Drop for SecureMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the station's `[mqtt]` section says, as an operator would write it.
struct StationMqtt<'a> {
    port: u16,
    ca_file: &'a Path,
    password: &'a str,
    client_certificate: Option<(&'a Path, &'a Path)>,
}

/// Loads the station's settings through the config loader: the file for the broker and TLS, the password from
/// the environment (as the docs recommend).
fn station_settings(mqtt: &StationMqtt<'_>) -> Settings {
    let mut text = format!(
        "[mqtt]\nbroker = \"external\"\nhost = \"127.0.0.1\"\nport = {}\ntls = true\nca_file = \"{}\"\n\
         username = \"{STATION_USER}\"\nkeep_alive = \"5s\"\n",
        mqtt.port,
        mqtt.ca_file.display()
    );
    if let Some((cert, key)) = mqtt.client_certificate {
        text.push_str(&format!("client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n", cert.display(), key.display()));
    }
    let env = [("GS__MQTT__PASSWORD".to_owned(), mqtt.password.to_owned())];
    config::load_str(Some((Path::new("ground-station.toml"), &text)), env).unwrap()
}

fn connect_options(mqtt: &StationMqtt<'_>) -> ConnectOptions {
    ConnectOptions::from_settings(&station_settings(mqtt).mqtt).unwrap()
}

/// The result of the first connection attempt with `options`.
async fn first_connect(options: ConnectOptions) -> Result<Event, ConnectionError> {
    let (_client, mut eventloop) = AsyncClient::new(options.mqtt, 10);
    tokio::time::timeout(WAIT, eventloop.poll()).await.expect("the connection attempt neither succeeded nor failed")
}

/// An observer (TLS, user `observer`) subscribed to `#`: returns once the broker acknowledged the subscription,
/// with a receiver of (topic, payload).
async fn observe(pki: &Pki, port: u16) -> (mpsc::Receiver<(String, Vec<u8>)>, tokio::task::JoinHandle<()>) {
    let mut options = rumqttc::MqttOptions::new("observer", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_credentials(OBSERVER_USER, OBSERVER_PASSWORD);
    let ca = std::fs::read(&pki.ca).unwrap();
    options.set_transport(rumqttc::Transport::tls(ca, None, None));
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    client.subscribe("#", QoS::AtLeastOnce).await.unwrap();
    let suback = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await.unwrap() {
                Event::Incoming(Incoming::SubAck(ack)) => return ack,
                _ => continue,
            }
        }
    })
    .await
    .expect("no SUBACK for the observer");
    assert_eq!(suback.return_codes, vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
    let (tx, rx) = mpsc::channel(100);
    let task = tokio::spawn(async move {
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::Publish(publish))) => {
                    if tx.send((publish.topic, publish.payload.to_vec())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => panic!("the observer lost the broker: {error}"),
            }
        }
    });
    (rx, task)
}

/// Receives until a message on `topic` arrives; returns the topics of everything received before it.
async fn receive_until(rx: &mut mpsc::Receiver<(String, Vec<u8>)>, topic: &str) -> (Vec<u8>, Vec<String>) {
    let mut before = Vec::new();
    loop {
        let (got, payload) = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("nothing on {topic} in time; got {before:?}"))
            .unwrap();
        if got == topic {
            return (payload, before);
        }
        before.push(got);
    }
}

async fn wait_status(
    status: &mut tokio::sync::watch::Receiver<MqttStatus>,
    what: &str,
    ok: impl Fn(&MqttStatus) -> bool,
) {
    tokio::time::timeout(WAIT, status.wait_for(|s| ok(s)))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap();
}

/// Runs the station's MQTT publisher (`mqtt::spawn`, durable outbox) with `options`, commits one hazard event to
/// the outbox, and checks that the observer receives it and the broker acknowledged it.
async fn station_publishes_an_event(dir: &Path, options: ConnectOptions, rx: &mut mpsc::Receiver<(String, Vec<u8>)>) {
    let (storage, storage_thread) = StorageHandle::open(&dir.join("gs.sqlite")).unwrap();
    let tasks = TaskTracker::new();
    let cancel = CancellationToken::new();
    let handle = mqtt::spawn(options, storage.clone(), &tasks, cancel.clone());
    let mut status = handle.status();
    wait_status(&mut status, "the TLS connection", |s| s.connected).await;
    let (online, _) = receive_until(rx, "patrol/available").await;
    assert_eq!(online, mqtt::AVAILABLE_ONLINE.as_bytes());

    let payload = serde_json::json!({"event_id": "gs-1:e:1", "type": "new"}).to_string().into_bytes();
    let message = OutboxMessage { topic: "patrol/hazards".into(), payload: payload.clone(), retain: false };
    storage.call(move |db| db.outbox_append(&[message])).await.unwrap();
    handle.outbox_changed();
    let (received, _) = receive_until(rx, "patrol/hazards").await;
    assert_eq!(received, payload);
    wait_status(&mut status, "the PUBACK", |s| s.delivered_total >= 1).await;

    cancel.cancel();
    tasks.close();
    tokio::time::timeout(WAIT, tasks.wait()).await.unwrap();
    drop((handle, storage));
    storage_thread.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_station_publishes_over_tls_verified_against_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let broker = SecureMosquitto::start(dir.path(), &pki);
    let (mut rx, observer) = observe(&pki, broker.tls_port).await;

    let options = connect_options(&StationMqtt {
        port: broker.tls_port,
        ca_file: &pki.ca,
        password: STATION_PASSWORD,
        client_certificate: None,
    });
    station_publishes_an_event(dir.path(), options, &mut rx).await;
    observer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let broker = SecureMosquitto::start(dir.path(), &pki);

    let options = connect_options(&StationMqtt {
        port: broker.tls_port,
        ca_file: &pki.other_ca,
        password: STATION_PASSWORD,
        client_certificate: None,
    });
    let error = first_connect(options).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ConnectionError::Tls(_)), "{message}");
    assert!(message.contains("invalid peer certificate") && message.contains("UnknownIssuer"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let broker = SecureMosquitto::start(dir.path(), &pki);

    let wrong = connect_options(&StationMqtt {
        port: broker.tls_port,
        ca_file: &pki.ca,
        password: "guessed",
        client_certificate: None,
    });
    let error = first_connect(wrong).await.unwrap_err();
    // MQTT 3.1.1: Mosquitto answers bad credentials with return code 5, "not authorized".
    assert!(matches!(error, ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized)), "{error}");

    let right = connect_options(&StationMqtt {
        port: broker.tls_port,
        ca_file: &pki.ca,
        password: STATION_PASSWORD,
        client_certificate: None,
    });
    let event = first_connect(right).await.unwrap();
    assert!(matches!(event, Event::Incoming(Incoming::ConnAck(_))), "{event:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_outside_the_station_prefix_are_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let broker = SecureMosquitto::start(dir.path(), &pki);
    let (mut rx, observer) = observe(&pki, broker.tls_port).await;

    let options = connect_options(&StationMqtt {
        port: broker.tls_port,
        ca_file: &pki.ca,
        password: STATION_PASSWORD,
        client_certificate: None,
    });
    let (client, eventloop) = AsyncClient::new(options.mqtt, 10);
    let driver = tokio::spawn(poll_until_closed(eventloop));
    // Mosquitto handles one client's publishes in order, so once the allowed one arrives, the denied ones before
    // it were already decided.
    for topic in ["city/alerts", "patrolx/hazards", "other/patrol/hazards"] {
        client.publish(topic, QoS::AtLeastOnce, false, b"denied".to_vec()).await.unwrap();
    }
    client.publish("patrol/hazards", QoS::AtLeastOnce, false, b"allowed".to_vec()).await.unwrap();
    let (payload, before) = receive_until(&mut rx, "patrol/hazards").await;
    assert_eq!(payload, b"allowed");
    assert!(before.iter().all(|topic| topic.starts_with("patrol/")), "delivered outside patrol/#: {before:?}");
    client.disconnect().await.unwrap();
    tokio::time::timeout(WAIT, driver).await.unwrap().unwrap();
    observer.abort();
}

async fn poll_until_closed(mut eventloop: EventLoop) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(error) => panic!("the station's connection failed: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_requires_client_certificates_accepts_the_configured_one_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let broker = SecureMosquitto::start(dir.path(), &pki);

    let without = connect_options(&StationMqtt {
        port: broker.mtls_port,
        ca_file: &pki.ca,
        password: STATION_PASSWORD,
        client_certificate: None,
    });
    let error = first_connect(without).await.unwrap_err();
    // TLS 1.3: the client's handshake finishes first, and the broker's alert arrives in place of the CONNACK.
    assert!(error.to_string().contains("received fatal alert: CertificateRequired"), "{error}");

    // The observer needs a certificate on this listener too: it watches through the server-only listener.
    let (mut rx, observer) = observe(&pki, broker.tls_port).await;
    let with = connect_options(&StationMqtt {
        port: broker.mtls_port,
        ca_file: &pki.ca,
        password: STATION_PASSWORD,
        client_certificate: Some((&pki.client_cert, &pki.client_key)),
    });
    station_publishes_an_event(dir.path(), with, &mut rx).await;
    observer.abort();
}
