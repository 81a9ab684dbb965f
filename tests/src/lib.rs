//! Harness for the end-to-end tests: finding the Python interop peers and the workspace.

use std::path::PathBuf;

/// The workspace root (the parent of this package).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), std::path::Path::to_path_buf)
}

/// The Python interpreter of the test virtual environment that holds pymavlink and MAVSDK.
///
/// `PATROL_TEST_PYTHON` overrides it.
///
/// # Panics
/// When it is missing: the message says to run `scripts/setup-test-deps.sh`. A missing peer fails the test
/// rather than skipping it silently.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("PATROL_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let path = workspace_root().join(".venv-test/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-test-deps.sh (it installs pymavlink and MAVSDK for the interop tests)",
        path.display()
    );
    path
}

/// A path under `tests/peers/` (the Python peer scripts).
pub fn peer_script(name: &str) -> PathBuf {
    workspace_root().join("tests/peers").join(name)
}

/// Debian's Mosquitto, installed by `scripts/setup-test-deps.sh`.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// Mosquitto's password file tool, from the same package.
pub const MOSQUITTO_PASSWD: &str = "/usr/bin/mosquitto_passwd";

/// A free TCP port on 127.0.0.1.
///
/// # Panics
/// When the OS gives no port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A private Mosquitto on a free port, with persistence (a subscriber's session survives a restart). Stopped
/// (killed) when dropped. Its config says `user root`: started as root, Mosquitto would switch to the `mosquitto`
/// user, which cannot write the test's folder, save no persistence file and forget every session on restart (the
/// option only applies when started as root).
#[derive(Debug)]
pub struct Mosquitto {
    child: Option<std::process::Child>,
    /// Its port.
    pub port: u16,
    conf: PathBuf,
    /// Its persistence folder.
    data: PathBuf,
}

impl Mosquitto {
    /// Writes a config under `dir` and starts the broker on `port`, waiting until it accepts connections.
    ///
    /// # Panics
    /// When Mosquitto is missing (the message says which script installs it) or does not start.
    pub fn start(dir: &std::path::Path, port: u16) -> Self {
        Self::start_with(dir, port, "allow_anonymous true\n")
    }

    /// Like [`Mosquitto::start`], but only `username` with `password` may connect (a password file made with
    /// `mosquitto_passwd`; anonymous clients are refused).
    ///
    /// # Panics
    /// When `mosquitto_passwd` fails, else as [`Mosquitto::start`].
    pub fn start_with_password(dir: &std::path::Path, port: u16, username: &str, password: &str) -> Self {
        let passwords = dir.join("mosquitto-passwords");
        let status = std::process::Command::new(MOSQUITTO_PASSWD)
            .args(["-b", "-c"])
            .arg(&passwords)
            .args([username, password])
            .status()
            .expect("run mosquitto_passwd (scripts/setup-test-deps.sh installs it with mosquitto)");
        assert!(status.success(), "mosquitto_passwd failed");
        Self::start_with(dir, port, &format!("allow_anonymous false\npassword_file {}\n", passwords.display()))
    }

    fn start_with(dir: &std::path::Path, port: u16, access: &str) -> Self {
        assert!(
            std::path::Path::new(MOSQUITTO).exists(),
            "{MOSQUITTO} is missing: run scripts/setup-test-deps.sh (installs Debian's mosquitto)"
        );
        let conf = dir.join("mosquitto.conf");
        let data = dir.join("mosquitto-data");
        std::fs::create_dir_all(&data).expect("create the broker's data folder");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{access}persistence true\npersistence_location {}/\nlog_dest none\nuser root\n",
                data.display()
            ),
        )
        .expect("write mosquitto.conf");
        let mut broker = Self { child: None, port, conf, data };
        broker.spawn();
        broker
    }

    /// Starts the broker again after [`Mosquitto::stop`].
    ///
    /// # Panics
    /// When it does not start within a minute.
    pub fn spawn(&mut self) {
        let child = std::process::Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&self.conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)).is_err() {
            assert!(std::time::Instant::now() < deadline, "mosquitto did not start on port {}", self.port);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// SIGTERM (Mosquitto saves its persistence file) and waits for the exit.
    ///
    /// # Panics
    /// When `kill` fails, or the broker saved no persistence file (a restart would forget the sessions).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status =
                std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
            assert!(status.success());
            let _ = child.wait();
            let saved = self.data.join("mosquitto.db");
            assert!(saved.exists(), "mosquitto saved no {}: a restart would forget the sessions", saved.display());
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A command-center subscriber with a persistent session (clean session off): forwards every payload of
/// `topic` with its receive time. Keeps retrying while the broker is down.
pub fn subscribe(
    port: u16,
    client_id: &str,
    topic: &str,
) -> (tokio::sync::mpsc::Receiver<(Vec<u8>, std::time::SystemTime)>, tokio::task::JoinHandle<()>) {
    use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_clean_session(false);
    options.set_keep_alive(std::time::Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let (tx, rx) = tokio::sync::mpsc::channel(10_000);
    let topic = topic.to_owned();
    let task = tokio::spawn(async move {
        let mut subscribed = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    if !(subscribed && ack.session_present) {
                        if client.subscribe(topic.clone(), QoS::AtLeastOnce).await.is_err() {
                            return;
                        }
                        subscribed = true;
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(publish))) => {
                    if tx.send((publish.payload.to_vec(), std::time::SystemTime::now())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    });
    (rx, task)
}

/// Returns once the subscriber behind `rx` receives on `topic`: publishes `{"event_id":"probe"}` until one
/// arrives. Probes are told apart by their event id.
///
/// # Panics
/// When no probe arrives within a minute.
pub async fn wait_subscribed(
    port: u16,
    topic: &str,
    rx: &mut tokio::sync::mpsc::Receiver<(Vec<u8>, std::time::SystemTime)>,
) {
    use rumqttc::{AsyncClient, MqttOptions, QoS};
    let (client, mut eventloop) = AsyncClient::new(MqttOptions::new("probe", "127.0.0.1", port), 10);
    let pump = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "the subscriber never received a probe");
        client.publish(topic, QoS::AtMostOnce, false, br#"{"event_id":"probe"}"#.to_vec()).await.expect("publish");
        if let Ok(Some(_)) = tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await {
            break;
        }
    }
    pump.abort();
}

/// The `patrol` binary, so that the process-level tests run the real daemon.
///
/// It is the binary `cargo test --workspace` builds for the ground station's integration tests: asking cargo for
/// the same build (`cargo test --workspace --no-run`, a no-op when it is up to date) reuses it, where `cargo build
/// -p ground-station` would rebuild tokio and everything above it without the dev-dependency features the test
/// build unifies in (minutes of CI). Built once per test process.
///
/// # Panics
/// When the build fails.
pub fn patrol_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut command = std::process::Command::new(cargo);
            command.current_dir(workspace_root()).args(["test", "--workspace", "--locked", "--no-run", "--quiet"]);
            // Cargo gives a test process the variables of its package (CARGO_MANIFEST_DIR, CARGO_PKG_NAME...).
            // Build scripts such as ring's rerun when those change in cargo's environment, so passing them on
            // would rebuild ring and everything above it here, and again in the next outer build.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if [
                    "CARGO_MANIFEST_",
                    "CARGO_PKG_",
                    "CARGO_CRATE_",
                    "CARGO_BIN_",
                    "CARGO_PRIMARY_",
                    "CARGO_TARGET_TMPDIR",
                ]
                .iter()
                .any(|prefix| key.starts_with(prefix))
                    || key == "OUT_DIR"
                {
                    command.env_remove(key.as_ref());
                }
            }
            let status = command.status().expect("run cargo test --no-run");
            assert!(status.success(), "cargo test --workspace --no-run failed");
            let target =
                std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
            target.join("debug").join("patrol")
        })
        .clone()
}

/// Every file under `dir`, recursively.
///
/// # Panics
/// When a folder cannot be listed.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list a folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// One HTTP/1.1 request over a plain TCP connection; returns the status code and the body.
///
/// # Panics
/// When the connection fails or the answer is not HTTP.
pub fn http_request(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let (status, _, body) = http_exchange(addr, head, body);
    (status, body)
}

/// [`http_request`], also returning the response's header block (status line and headers).
///
/// # Panics
/// When the connection fails or the answer is not HTTP.
pub fn http_exchange(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).expect("timeout");
    let request = format!("{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(request.as_bytes()).expect("send");
    stream.write_all(body).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {text}"));
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    (status, headers.to_owned(), body.to_owned())
}
