//! `patrol watch`: a minimal MAVProxy-style console. Connects to a link, lists the vehicles it hears, and prints
//! a telemetry line per vehicle every interval plus STATUSTEXT lines and events as they come. The first thing to
//! run when a drone will not connect.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use firmware_bridge::link::{LinkAddress, LinkConfig, LinkState};
use firmware_bridge::signing::SigningKey;
use firmware_bridge::vehicle::{GpsFix, VehicleState};
use firmware_bridge::{BridgeConfig, BridgeHandle, VehicleEvent, VehicleEventKind};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Arguments of `patrol watch`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  patrol watch udpin:0.0.0.0:14550          # SITL, MAVProxy --out, most Wi-Fi links\n  \
                        patrol watch serial:/dev/ttyUSB0:57600     # SiK telemetry radio\n  \
                        patrol watch tcpout:127.0.0.1:5760         # ArduPilot SITL's TCP port"
)]
pub struct WatchArgs {
    /// Link address: udpin:HOST:PORT, udpout:HOST:PORT, tcpin:HOST:PORT, tcpout:HOST:PORT or serial:DEVICE:BAUD.
    pub address: String,
    /// Seconds between telemetry lines.
    #[arg(long, default_value_t = 1.0)]
    pub interval_s: f64,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Our MAVLink system id.
    #[arg(long, default_value_t = 255)]
    pub system_id: u8,
    /// MAVLink 2 signing key: 64 hex digits, or a passphrase (hashed with SHA-256 as MAVProxy's `setup_signing`
    /// does). Unsigned packets are then dropped and counted.
    #[arg(long, env = "PATROL_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
}

/// Runs `patrol watch`.
///
/// # Errors
/// A bad address or interval, a port in use, or a runtime that cannot start.
pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let address: LinkAddress = args.address.parse()?;
    anyhow::ensure!(
        args.interval_s.is_finite() && args.interval_s > 0.0,
        "--interval-s must be a positive number of seconds, got {}",
        args.interval_s
    );
    let mut link = LinkConfig::new(address);
    link.system_id = args.system_id;
    link.signing_key =
        args.signing_key.as_deref().map(|k| SigningKey::from_hex(k).unwrap_or_else(|_| SigningKey::from_passphrase(k)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(watch(
        link,
        Duration::from_secs_f64(args.interval_s),
        args.duration_s.map(Duration::from_secs_f64),
    ))
}

async fn watch(link: LinkConfig, interval: Duration, duration: Option<Duration>) -> anyhow::Result<ExitCode> {
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let address = link.address.to_string();
    let bridge = BridgeHandle::start(BridgeConfig::new(link), &tracker, cancel.clone())
        .await
        .with_context(|| format!("opening {address}"))?;
    println!(
        "Listening on {address}{}. Ctrl-C to stop.",
        bridge.local_addr().map(|a| format!(" ({a})")).unwrap_or_default()
    );
    let mut events = bridge.subscribe();
    let mut link_state = bridge.link_state();
    let mut ticker = tokio::time::interval(interval);
    let stop = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = &mut stop => break,
            changed = link_state.changed() => {
                if changed.is_err() {
                    break;
                }
                let state = link_state.borrow_and_update().clone();
                println!("link: {}", link_state_line(&state));
            }
            event = events.recv() => match event {
                Ok(event) => {
                    if let Some(line) = event_line(&event) {
                        println!("{line}");
                    }
                }
                Err(RecvError::Lagged(n)) => println!("({n} events skipped: console too slow)"),
                Err(RecvError::Closed) => break,
            },
            _ = ticker.tick() => {
                for vehicle in bridge.vehicles() {
                    println!("{}", telemetry_line(&vehicle.state()));
                }
            }
        }
    }
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await.is_err() {
        tracing::warn!("Some bridge tasks did not stop within 10 s.");
    }
    let stats = bridge.link_stats();
    println!(
        "link counters: rx {} packets ({} bytes), tx {}, CRC errors {}, parse errors {}, unknown ids {}, unsigned \
         dropped {}, bad signatures {}",
        stats.rx_packets,
        stats.rx_bytes,
        stats.tx_packets,
        stats.crc_errors,
        stats.parse_errors,
        stats.unknown_messages,
        stats.unsigned_dropped,
        stats.bad_signature_dropped
    );
    Ok(ExitCode::SUCCESS)
}

fn link_state_line(state: &LinkState) -> String {
    match state {
        LinkState::Connecting => "connecting".into(),
        LinkState::Connected => "up".into(),
        LinkState::Reconnecting { attempt, retry_in, error } => {
            format!("down ({error}); retry {attempt} in {:.1} s", retry_in.as_secs_f64())
        }
        LinkState::Stopped => "stopped".into(),
    }
}

fn event_line(event: &VehicleEvent) -> Option<String> {
    let id = event.system_id;
    Some(match &event.kind {
        VehicleEventKind::Discovered { autopilot, vehicle_type } => {
            format!("[{id}] discovered: {autopilot:?} {vehicle_type:?}")
        }
        VehicleEventKind::LinkLost { silent_for } => {
            format!("[{id}] LINK LOST (silent {:.1} s)", silent_for.as_secs_f64())
        }
        VehicleEventKind::LinkRecovered => format!("[{id}] link recovered"),
        VehicleEventKind::ModeChanged { name, .. } => format!("[{id}] mode {name}"),
        VehicleEventKind::ArmedChanged { armed } => format!("[{id}] {}", if *armed { "ARMED" } else { "disarmed" }),
        VehicleEventKind::StatusText { severity, text } => format!("[{id}] {severity:?}: {text}"),
        VehicleEventKind::MissionItemReached { seq } => format!("[{id}] reached mission item {seq}"),
        VehicleEventKind::NamedValue { name, value, .. } => format!("[{id}] {name} = {value}"),
        VehicleEventKind::Capture(capture) => format!(
            "[{id}] photo {} {}",
            capture.image_index.map(|i| format!("#{i}")).unwrap_or_default(),
            capture.file_url.as_deref().unwrap_or("")
        ),
        // MISSION_CURRENT changes show in the telemetry line.
        _ => return None,
    })
}

/// One console line for a vehicle.
pub fn telemetry_line(s: &VehicleState) -> String {
    let mut line = format!("[{}] {:<12} {:<8}", s.system_id, s.mode_name, if s.armed { "ARMED" } else { "disarmed" });
    match s.position {
        Some(p) => {
            let _ = write!(
                line,
                " {:.6},{:.6} alt {:.1} m (rel {:.1} m)",
                p.point.lat_deg, p.point.lon_deg, p.alt_msl_m, p.relative_alt_m
            );
        }
        None => line.push_str(" no position"),
    }
    if let Some(v) = s.velocity {
        let _ = write!(line, " gs {:.1} m/s", v.ground_speed_mps());
    }
    if let Some(h) = s.heading_deg {
        let _ = write!(line, " hdg {h:.0}");
    }
    if let Some(g) = s.gps {
        let fix = match g.fix {
            GpsFix::NoGps => "no GPS",
            GpsFix::NoFix => "no fix",
            GpsFix::Fix2d => "2D",
            GpsFix::Fix3d => "3D",
            GpsFix::Dgps => "DGPS",
            GpsFix::RtkFloat => "RTK float",
            GpsFix::RtkFixed => "RTK fixed",
            GpsFix::Static => "static",
            GpsFix::Ppp => "PPP",
        };
        let _ = write!(line, " GPS {fix}");
        if let Some(n) = g.satellites {
            let _ = write!(line, " {n} sats");
        }
    }
    if let Some(b) = s.battery {
        if let Some(v) = b.voltage_v {
            let _ = write!(line, " batt {v:.1} V");
        }
        if let Some(pct) = b.remaining_pct {
            let _ = write!(line, " {pct}%");
        }
    }
    if let Some(seq) = s.mission.current_seq {
        let _ = write!(line, " wp {seq}");
    }
    let _ = write!(line, " loss {:.1}%", s.link.loss_ratio() * 100.0);
    if !s.link.connected {
        line.push_str(" LINK LOST");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_addresses_fail_with_the_accepted_forms() {
        let args = WatchArgs {
            address: "14550".into(),
            interval_s: 1.0,
            duration_s: Some(0.1),
            system_id: 255,
            signing_key: None,
        };
        let err = run(args).unwrap_err().to_string();
        assert!(err.contains("udpin:0.0.0.0:14550"), "{err}");
    }

    #[test]
    fn watch_runs_for_its_duration_on_a_free_port() {
        let args = WatchArgs {
            address: "udpin:127.0.0.1:0".into(),
            interval_s: 0.05,
            duration_s: Some(0.2),
            system_id: 255,
            signing_key: Some("patrol".into()),
        };
        assert_eq!(run(args).unwrap(), ExitCode::SUCCESS);
    }
}
