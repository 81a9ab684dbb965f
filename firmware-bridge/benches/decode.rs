//! Decode throughput of the bridge's MAVLink framer on a realistic mixed telemetry stream, and the same stream
//! through pymavlink for comparison.
//!
//! The stream: 10 ArduPilot-like vehicles for 60 s of flight at typical rates (ATTITUDE 10 Hz,
//! GLOBAL_POSITION_INT 5 Hz, GPS_RAW_INT / SYS_STATUS / VFR_HUD 2 Hz, HEARTBEAT / MISSION_CURRENT 1 Hz, a
//! STATUSTEXT every 10 s). After criterion's measurement the bench writes the stream to a file, runs
//! `benches/pymavlink_decode.py` on it with the test venv's Python (`.venv-test`, or `PATROL_TEST_PYTHON`) and
//! prints both throughputs and their ratio.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use firmware_bridge::frame::FrameDecoder;
use mavlink::MavHeader;
use mavlink::dialects::ardupilotmega::{
    ATTITUDE_DATA, GLOBAL_POSITION_INT_DATA, GPS_RAW_INT_DATA, GpsFixType, HEARTBEAT_DATA, MISSION_CURRENT_DATA,
    MavAutopilot, MavMessage, MavModeFlag, MavSeverity, MavType, STATUSTEXT_DATA, SYS_STATUS_DATA, VFR_HUD_DATA,
};
use mavlink::types::CharArray;

const VEHICLES: u8 = 10;
const SECONDS: u32 = 60;

fn stream() -> Vec<u8> {
    let mut out = Vec::new();
    let mut seqs = [0u8; 256];
    let mut push = |sysid: u8, msg: &MavMessage, out: &mut Vec<u8>| {
        let seq = &mut seqs[usize::from(sysid)];
        *seq = seq.wrapping_add(1);
        let header = MavHeader { system_id: u32::from(sysid), component_id: 1, sequence: *seq };
        mavlink::write_v2_msg(out, header, msg).expect("encode");
    };
    let mut text = [0u8; 50];
    text[..22].copy_from_slice(b"EKF3 IMU0 is using GPS");
    for tick in 0..SECONDS * 10 {
        let t_ms = tick * 100;
        for sysid in 1..=VEHICLES {
            let phase = f32::from(sysid) + t_ms as f32 / 1000.0;
            let lat = 473_977_000 + i32::try_from(tick).unwrap_or(0) * 7 + i32::from(sysid) * 1000;
            push(
                sysid,
                &MavMessage::ATTITUDE(ATTITUDE_DATA {
                    time_boot_ms: t_ms,
                    roll: phase.sin() * 0.1,
                    pitch: phase.cos() * 0.05,
                    yaw: phase % std::f32::consts::TAU,
                    rollspeed: 0.01,
                    pitchspeed: -0.02,
                    yawspeed: 0.003,
                }),
                &mut out,
            );
            if tick.is_multiple_of(2) {
                push(
                    sysid,
                    &MavMessage::GLOBAL_POSITION_INT(GLOBAL_POSITION_INT_DATA {
                        time_boot_ms: t_ms,
                        lat,
                        lon: 85_456_000 + i32::from(sysid) * 500,
                        alt: 518_000,
                        relative_alt: 30_000,
                        vx: 512,
                        vy: -37,
                        vz: 3,
                        hdg: 9000,
                    }),
                    &mut out,
                );
            }
            if tick.is_multiple_of(5) {
                push(
                    sysid,
                    &MavMessage::GPS_RAW_INT(GPS_RAW_INT_DATA {
                        time_usec: u64::from(t_ms) * 1000,
                        fix_type: GpsFixType::GPS_FIX_TYPE_3D_FIX,
                        lat,
                        lon: 85_456_000,
                        alt: 518_000,
                        eph: 80,
                        epv: 120,
                        vel: 512,
                        cog: 9000,
                        satellites_visible: 14,
                        ..GPS_RAW_INT_DATA::default()
                    }),
                    &mut out,
                );
                push(
                    sysid,
                    &MavMessage::SYS_STATUS(SYS_STATUS_DATA {
                        voltage_battery: 15_800,
                        current_battery: 1250,
                        battery_remaining: 71,
                        load: 420,
                        ..SYS_STATUS_DATA::default()
                    }),
                    &mut out,
                );
                push(
                    sysid,
                    &MavMessage::VFR_HUD(VFR_HUD_DATA {
                        airspeed: 5.1,
                        groundspeed: 5.0,
                        alt: 518.0,
                        climb: 0.1,
                        heading: 90,
                        throttle: 45,
                    }),
                    &mut out,
                );
            }
            if tick.is_multiple_of(10) {
                push(
                    sysid,
                    &MavMessage::HEARTBEAT(HEARTBEAT_DATA {
                        custom_mode: 3,
                        mavtype: MavType::MAV_TYPE_QUADROTOR,
                        autopilot: MavAutopilot::MAV_AUTOPILOT_ARDUPILOTMEGA,
                        base_mode: MavModeFlag::MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
                            | MavModeFlag::MAV_MODE_FLAG_SAFETY_ARMED,
                        ..HEARTBEAT_DATA::default()
                    }),
                    &mut out,
                );
                push(
                    sysid,
                    &MavMessage::MISSION_CURRENT(MISSION_CURRENT_DATA { seq: 4, ..MISSION_CURRENT_DATA::default() }),
                    &mut out,
                );
            }
            if tick.is_multiple_of(100) {
                push(
                    sysid,
                    &MavMessage::STATUSTEXT(STATUSTEXT_DATA {
                        severity: MavSeverity::MAV_SEVERITY_INFO,
                        text: CharArray::new(text),
                        ..STATUSTEXT_DATA::default()
                    }),
                    &mut out,
                );
            }
        }
    }
    out
}

/// Decodes the stream in 4 KiB reads, as a serial or TCP link would; returns the frame count.
fn decode(bytes: &[u8]) -> usize {
    let mut decoder = FrameDecoder::default();
    let mut frames = 0;
    for chunk in bytes.chunks(4096) {
        decoder.push(chunk);
        while let Some(frame) = decoder.next_decoded() {
            black_box(frame.message_id());
            frames += 1;
        }
    }
    frames
}

fn bench_decode(c: &mut Criterion, bytes: &[u8]) {
    let frames = decode(bytes);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(format!("mixed_telemetry_{frames}_frames"), |b| b.iter(|| decode(black_box(bytes))));
    group.finish();
}

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATROL_TEST_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-test/bin/python");
    venv.exists().then_some(venv)
}

fn compare_with_pymavlink(bytes: &[u8]) {
    // Our throughput, best of 5 whole-stream passes.
    let mut best = f64::MAX;
    let mut frames = 0;
    for _ in 0..5 {
        let start = Instant::now();
        frames = decode(bytes);
        best = best.min(start.elapsed().as_secs_f64());
    }
    #[allow(clippy::cast_precision_loss)]
    let (ours_fps, ours_mbps) = (frames as f64 / best, bytes.len() as f64 / best / 1e6);
    println!("bridge decode: {frames} frames, {} bytes: {ours_fps:.0} frames/s, {ours_mbps:.1} MB/s", bytes.len());

    let Some(python) = python() else {
        println!("pymavlink comparison skipped: no .venv-test (run scripts/setup-test-deps.sh)");
        return;
    };
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("telemetry_stream.bin");
    if let Err(error) = std::fs::write(&path, bytes) {
        println!("pymavlink comparison skipped: cannot write {}: {error}", path.display());
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/pymavlink_decode.py");
    let output = std::process::Command::new(&python).arg(&script).arg(&path).arg("3").output();
    let Ok(output) = output.map_err(|e| println!("pymavlink comparison failed to start: {e}")) else { return };
    let text = String::from_utf8_lossy(&output.stdout);
    let Ok(result) = serde_json::from_str::<serde_json::Value>(text.trim()) else {
        println!("pymavlink comparison failed: {text} {}", String::from_utf8_lossy(&output.stderr));
        return;
    };
    let py_fps = result["frames_per_s"].as_f64().unwrap_or(f64::NAN);
    let py_frames = result["frames"].as_u64().unwrap_or(0);
    println!(
        "pymavlink decode: {py_frames} frames: {py_fps:.0} frames/s, {:.2} MB/s",
        result["mb_per_s"].as_f64().unwrap_or(f64::NAN)
    );
    println!("ratio bridge/pymavlink: {:.1}x", ours_fps / py_fps);
}

fn main() {
    let bytes = stream();
    let mut criterion = Criterion::default().configure_from_args();
    bench_decode(&mut criterion, &bytes);
    criterion.final_summary();
    compare_with_pymavlink(&bytes);
}
