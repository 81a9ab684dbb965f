//! One bridge following 100 simulated vehicles at 10 Hz telemetry: CPU use of the bridge process.
//!
//! The vehicles run in a child process (this bench re-executed with `PATROL_BENCH_FLEET_TARGET` set), each with
//! its own UDP socket, sending ATTITUDE and GLOBAL_POSITION_INT at 10 Hz and HEARTBEAT, SYS_STATUS, GPS_RAW_INT
//! and VFR_HUD at 1 Hz to one `udpin` port. This process runs only the bridge; its CPU time (user + system from
//! `/proc/self/stat`, in `USER_HZ` = 100 ticks/s) over a fixed wall time gives the share of one core.
//! Goal (issue 2): under 50% of one core.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use firmware_bridge::link::LinkConfig;
use firmware_bridge::vehicle::VehicleConfig;
use firmware_bridge::{BridgeConfig, BridgeHandle};
use mavlink::MavHeader;
use mavlink::dialects::ardupilotmega::{
    ATTITUDE_DATA, GLOBAL_POSITION_INT_DATA, GPS_RAW_INT_DATA, GpsFixType, HEARTBEAT_DATA, MavAutopilot, MavMessage,
    MavModeFlag, MavType, SYS_STATUS_DATA, VFR_HUD_DATA,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const VEHICLES: u8 = 100;
const MEASURE: Duration = Duration::from_secs(10);
const ENV: &str = "PATROL_BENCH_FLEET_TARGET";

fn encode(sysid: u8, seq: &mut u8, msg: &MavMessage) -> Vec<u8> {
    *seq = seq.wrapping_add(1);
    let mut out = Vec::new();
    let header = MavHeader { system_id: u32::from(sysid), component_id: 1, sequence: *seq };
    mavlink::write_v2_msg(&mut out, header, msg).expect("encode");
    out
}

/// The child process: 100 vehicles until killed.
async fn fleet(target: SocketAddr) {
    let mut sockets = Vec::new();
    for _ in 0..VEHICLES {
        sockets.push(tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    }
    let mut seqs = vec![0u8; usize::from(VEHICLES)];
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut tick: u32 = 0;
    loop {
        ticker.tick().await;
        tick += 1;
        let t_ms = tick * 100;
        for (i, socket) in sockets.iter().enumerate() {
            let sysid = u8::try_from(i + 1).expect("at most 255 vehicles");
            let seq = &mut seqs[i];
            let mut msgs = vec![
                MavMessage::ATTITUDE(ATTITUDE_DATA { time_boot_ms: t_ms, roll: 0.01, yaw: 1.0, ..Default::default() }),
                MavMessage::GLOBAL_POSITION_INT(GLOBAL_POSITION_INT_DATA {
                    time_boot_ms: t_ms,
                    lat: 473_977_000 + i32::try_from(tick).unwrap_or(0),
                    lon: 85_456_000 + i32::from(sysid) * 100,
                    alt: 518_000,
                    relative_alt: 30_000,
                    vx: 500,
                    hdg: 9000,
                    ..Default::default()
                }),
            ];
            if tick.is_multiple_of(10) {
                msgs.push(MavMessage::HEARTBEAT(HEARTBEAT_DATA {
                    custom_mode: 3,
                    mavtype: MavType::MAV_TYPE_QUADROTOR,
                    autopilot: MavAutopilot::MAV_AUTOPILOT_ARDUPILOTMEGA,
                    base_mode: MavModeFlag::MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
                    ..Default::default()
                }));
                msgs.push(MavMessage::SYS_STATUS(SYS_STATUS_DATA {
                    voltage_battery: 15_800,
                    battery_remaining: 70,
                    ..Default::default()
                }));
                msgs.push(MavMessage::GPS_RAW_INT(GPS_RAW_INT_DATA {
                    fix_type: GpsFixType::GPS_FIX_TYPE_3D_FIX,
                    satellites_visible: 14,
                    ..Default::default()
                }));
                msgs.push(MavMessage::VFR_HUD(VFR_HUD_DATA { groundspeed: 5.0, heading: 90, ..Default::default() }));
            }
            for msg in &msgs {
                // A lost datagram is what UDP does; the bench measures the bridge, not delivery.
                let _ = socket.send_to(&encode(sysid, seq, msg), target).await;
            }
        }
    }
}

/// User + system CPU time of this process.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

async fn measure() {
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let mut config = BridgeConfig::new(LinkConfig::new("udpin:127.0.0.1:0".parse().expect("address")));
    config.vehicle = VehicleConfig { telemetry_rates: Vec::new(), ..VehicleConfig::default() };
    let bridge = BridgeHandle::start(config, &tracker, cancel.clone()).await.expect("bridge");
    let target = bridge.local_addr().expect("bound");
    let exe = std::env::current_exe().expect("own path");
    let mut child =
        tokio::process::Command::new(exe).env(ENV, target.to_string()).kill_on_drop(true).spawn().expect("fleet");

    let mut vehicles = bridge.vehicles_watch();
    let all = vehicles.wait_for(|v| v.len() == usize::from(VEHICLES));
    tokio::time::timeout(Duration::from_secs(30), all).await.expect("all vehicles discovered").expect("bridge");

    let before = bridge.link_stats();
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    tokio::time::sleep(MEASURE).await;
    let wall = wall0.elapsed();
    let cpu1 = cpu_time();
    let after = bridge.link_stats();
    let packets = after.rx_packets - before.rx_packets;
    #[allow(clippy::cast_precision_loss)]
    let rate = packets as f64 / wall.as_secs_f64();
    println!("fleet: {VEHICLES} vehicles, {packets} packets in {:.1} s ({rate:.0} packets/s)", wall.as_secs_f64());
    match (cpu0, cpu1) {
        (Some(a), Some(b)) => {
            let share = (b - a).as_secs_f64() / wall.as_secs_f64() * 100.0;
            println!(
                "fleet: bridge CPU {:.2} s over {:.1} s wall = {share:.1}% of one core",
                (b - a).as_secs_f64(),
                wall.as_secs_f64()
            );
        }
        _ => println!("fleet: CPU time unavailable (no /proc/self/stat)"),
    }
    println!("fleet: frames dropped by slow actors: {}", bridge.frames_dropped());
    child.kill().await.ok();
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    match std::env::var(ENV) {
        Ok(target) => runtime.block_on(fleet(target.parse().expect("target address"))),
        // `cargo test --benches` runs benches once with no `--bench` flag: keep that quick.
        Err(_) if !std::env::args().any(|a| a == "--bench") => println!("fleet: run with `cargo bench` to measure"),
        Err(_) => runtime.block_on(measure()),
    }
}
