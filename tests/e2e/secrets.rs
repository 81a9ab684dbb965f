//! Issue 8: secrets are never logged. A full `patrol serve` runs with `RUST_LOG=debug` and every kind of secret
//! configured: the MQTT password (from the environment, checked by a Mosquitto that refuses anyone else), the
//! push token, a MAVLink signing key (a signed simulated drone talks to it) and a console user's password (made
//! with `patrol user`). It is exercised: frames pushed and detected, hazards published over the authenticated
//! session, a login and a failed login with a near-miss password. Then every byte it wrote (stdout, stderr, any
//! file in its folders other than the config, key and database) is searched for each secret, the signing key in
//! hex, base64 and byte-list forms too.

// Helpers outside #[test] functions panic on purpose: a panic is how a test reports failure.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e::{Mosquitto, files_under, free_port, http_request, patrol_binary};
use firmware_bridge::signing::SigningKey;
use firmware_bridge::sim::{PersonalityMix, SimConfig, SimFleet, SimLink};
use mission_planner::geo::GeoPoint;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

use crate::daemon::{ConfigExtras, TOKEN, push_photos, start_daemon, write_config};

const MQTT_USER: &str = "patrol-station";
const MQTT_PASSWORD: &str = "mqtt-Kx7vQ2pL9wZr4";
const CONSOLE_USER: &str = "night-admin";
const CONSOLE_PASSWORD: &str = "console-Tr4vel-Ochre-91";
/// A typo of the real password: logging a failed attempt's password leaks the real one nearly as well.
const WRONG_PASSWORD: &str = "console-Tr4vel-Ochre-19";
const WAIT: Duration = Duration::from_secs(120);

fn signing_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        // Arbitrary, and no run of it is text that a log could hold by chance.
        *byte = u8::try_from((i * 73 + 29) % 251).unwrap();
    }
    key
}

/// Base64 (RFC 4648) with `alphabet`, padded or not.
fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
        }
        if pad {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

/// Every form a secret could be written in, with a name for the failure message.
fn secret_forms() -> Vec<(String, String)> {
    let key = signing_key();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let standard = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let url_safe = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut forms = vec![
        ("MQTT password".to_owned(), MQTT_PASSWORD.to_owned()),
        ("push token".to_owned(), TOKEN.to_owned()),
        ("console password".to_owned(), CONSOLE_PASSWORD.to_owned()),
        ("failed login's password".to_owned(), WRONG_PASSWORD.to_owned()),
        ("signing key (hex)".to_owned(), hex.clone()),
        ("signing key (HEX)".to_owned(), hex.to_uppercase()),
        ("signing key (base64)".to_owned(), base64(&key, standard, true)),
        ("signing key (base64, url-safe)".to_owned(), base64(&key, url_safe, false)),
        ("signing key (byte list)".to_owned(), format!("{key:?}")),
        ("signing key (hex byte list)".to_owned(), format!("{key:x?}")),
    ];
    // Half the key is as good as a hint: catch a truncated hex dump too.
    forms.push(("signing key (hex, first half)".to_owned(), hex[..32].to_owned()));
    forms
}

/// Each secret form found in the file at `path`, with the line that holds it.
fn secrets_in(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut found = Vec::new();
    for (name, form) in secret_forms() {
        if let Some(at) = bytes.windows(form.len()).position(|w| w == form.as_bytes()) {
            let line_start = bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let line_end = bytes[at..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| at + i);
            let line = String::from_utf8_lossy(&bytes[line_start..line_end]);
            found.push(format!("{name} in {}: {line}", path.display()));
        }
    }
    found
}

/// An MQTT session with the station's credentials (the broker refuses anonymous clients) that forwards every
/// `(topic, payload)` under `patrol/`.
fn authenticated_subscriber(
    port: u16,
) -> (tokio::sync::mpsc::Receiver<(String, Vec<u8>)>, tokio::task::JoinHandle<()>) {
    let mut options = MqttOptions::new("command-center", "127.0.0.1", port);
    options.set_credentials(MQTT_USER, MQTT_PASSWORD);
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let (tx, rx) = tokio::sync::mpsc::channel(10_000);
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    if client.subscribe("patrol/#", QoS::AtLeastOnce).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    if tx.send((p.topic.clone(), p.payload.to_vec())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    (rx, task)
}

/// Waits for a message on `topic` whose payload contains `needle`.
async fn wait_for(rx: &mut tokio::sync::mpsc::Receiver<(String, Vec<u8>)>, topic: &str, needle: &str) {
    tokio::time::timeout(WAIT, async {
        loop {
            let (t, payload) = rx.recv().await.unwrap();
            if t == topic && String::from_utf8_lossy(&payload).contains(needle) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("nothing on {topic} with {needle:?}"));
}

/// Kills the daemon if the test fails before stopping it.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn login(web: SocketAddr, password: &str) -> (u16, String) {
    let body = serde_json::json!({ "username": CONSOLE_USER, "password": password }).to_string();
    http_request(web, "POST /api/login HTTP/1.1\r\nContent-Type: application/json", body.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_at_debug_level_never_logs_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let _broker = Mosquitto::start_with_password(dir.path(), broker_port, MQTT_USER, MQTT_PASSWORD);
    let (mut mqtt, subscriber) = authenticated_subscriber(broker_port);

    let key_file = dir.path().join("drone-1.key");
    let hex: String = signing_key().iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&key_file, format!("{hex}\n")).unwrap();
    let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let udp = free_port();
    let extras = ConfigExtras {
        mqtt: format!("username = \"{MQTT_USER}\""),
        drone: format!("signing_key_file = \"{}\"", key_file.display()),
        ..ConfigExtras::default()
    };
    let config = write_config(dir.path(), broker_port, web, udp, &extras);
    let log = dir.path().join("daemon.log");

    // The console user, made the documented way: the password on standard input.
    let station = dir.path().join("station");
    std::fs::create_dir_all(&station).unwrap();
    let user_log = std::fs::File::create(dir.path().join("patrol-user.log")).unwrap();
    let mut add = Command::new(patrol_binary())
        .args(["user", "--db"])
        .arg(station.join("patrol.sqlite"))
        .args(["add", CONSOLE_USER, "--role", "admin", "--password-stdin"])
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(user_log.try_clone().unwrap())
        .stderr(user_log)
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{CONSOLE_PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success(), "patrol user add failed");

    // The MQTT password comes from the environment, as the config reference recommends.
    let mut daemon = KillOnDrop(Some(start_daemon(
        &config,
        &log,
        web,
        &[("RUST_LOG", "debug"), ("GS__MQTT__PASSWORD", MQTT_PASSWORD)],
    )));

    // A drone signing with the key: the daemon hears it only if it verifies the signatures.
    let token = CancellationToken::new();
    let gcs = SocketAddr::from(([127, 0, 0, 1], udp));
    let mut sim =
        SimConfig::fleet(1, PersonalityMix::ArduPilot, &[GeoPoint::new(22.541, 113.881)], &SimLink::UdpOut { gcs })
            .unwrap();
    sim.http_bind = None;
    sim.drones[0].signing_key = Some(SigningKey::from_bytes(signing_key()));
    let fleet = SimFleet::spawn(sim, token.clone()).await.unwrap();

    // Exercise it: the broker took the password, the signed drone is heard, pushed frames become hazards.
    wait_for(&mut mqtt, "patrol/available", "online").await;
    wait_for(&mut mqtt, "patrol/drones/drone-1/state", r#""link":"up""#).await;
    tokio::task::spawn_blocking(move || push_photos(web)).await.unwrap();
    wait_for(&mut mqtt, "patrol/hazards", r#""type":"new""#).await;
    let (status, body) = tokio::task::spawn_blocking(move || login(web, CONSOLE_PASSWORD)).await.unwrap();
    assert_eq!(status, 200, "login refused: {body}");
    let (status, body) = tokio::task::spawn_blocking(move || login(web, WRONG_PASSWORD)).await.unwrap();
    assert_eq!(status, 401, "a wrong password was not refused: {body}");
    let mut wrong_token = TOKEN.to_owned();
    wrong_token.replace_range(..5, "guess");
    let head = format!("POST /api/frames HTTP/1.1\r\nAuthorization: Bearer {wrong_token}\r\nContent-Type: image/jpeg");
    let (status, _) = tokio::task::spawn_blocking(move || http_request(web, &head, b"not a photo")).await.unwrap();
    assert_eq!(status, 401, "a wrong push token was not refused");

    // A clean stop, so everything is flushed.
    let mut daemon = daemon.0.take().unwrap();
    let status = Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || daemon.wait().unwrap()).await.unwrap();
    token.cancel();
    fleet.wait().await;
    subscriber.abort();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit:?}\n{text}");
    assert!(text.contains("DEBUG"), "debug logging was not on:\n{text}");

    // Search everything the run wrote, except the files that hold secrets on purpose.
    let on_purpose = [config.clone(), key_file.clone(), dir.path().join("mosquitto-passwords")];
    let scanned: Vec<PathBuf> = files_under(dir.path())
        .into_iter()
        .filter(|p| !on_purpose.contains(p))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("patrol.sqlite"))
        .filter(|p| !p.starts_with(dir.path().join("mosquitto-data")))
        .collect();
    assert!(scanned.contains(&log) && scanned.contains(&dir.path().join("patrol-user.log")), "{scanned:?}");
    let leaks: Vec<String> = scanned.iter().flat_map(|path| secrets_in(path)).collect();
    assert!(leaks.is_empty(), "secrets written out:\n{}", leaks.join("\n"));
    // Control: the same search finds the secrets where they are on purpose.
    let found: Vec<String> = on_purpose[..2].iter().flat_map(|path| secrets_in(path)).collect();
    assert!(found.iter().any(|f| f.starts_with("push token in")), "{found:?}");
    assert!(found.iter().any(|f| f.starts_with("signing key (hex) in")), "{found:?}");
    println!(
        "scanned {} files ({} bytes, {} DEBUG lines of daemon log) for {} secret forms: none found",
        scanned.len(),
        text.len(),
        text.lines().filter(|l| l.contains("DEBUG")).count(),
        secret_forms().len()
    );
}
