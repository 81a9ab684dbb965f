//! Runs a simulated fleet: `cargo run -p firmware-bridge --example sim_fleet -- udpout:127.0.0.1:14550 ardupilot 20`
//! (link, personality `ardupilot|px4|mixed`, speed-up, drone count). `patrol sim` is the full command line.

use firmware_bridge::sim::{PersonalityMix, SimConfig, SimFleet, SimLink};
use mission_planner::geo::GeoPoint;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let link: SimLink = args.get(1).map_or("udpout:127.0.0.1:14550", String::as_str).parse()?;
    let mix = match args.get(2).map_or("ardupilot", String::as_str) {
        "px4" => PersonalityMix::Px4,
        "mixed" => PersonalityMix::Mixed,
        _ => PersonalityMix::ArduPilot,
    };
    let speedup: f64 = args.get(3).map_or(Ok(1.0), |s| s.parse())?;
    let count: usize = args.get(4).map_or(Ok(1), |s| s.parse())?;
    let estimate_s: u64 = args.get(5).map_or(Ok(5), |s| s.parse())?;
    let mut config = SimConfig::fleet(count, mix, &[GeoPoint::new(22.55, 113.88)], &link)?;
    config.speedup = speedup;
    for d in &mut config.drones {
        d.vehicle.position_estimate_after = Duration::from_secs(estimate_s);
    }
    let token = tokio_util::sync::CancellationToken::new();
    let fleet = SimFleet::spawn(config, token.clone()).await?;
    for d in fleet.drones() {
        println!("drone {} {} {} -> {}", d.system_id, d.personality, d.local_addr, d.link);
    }
    println!("http {:?}", fleet.http_addr());
    tokio::signal::ctrl_c().await?;
    token.cancel();
    fleet.wait().await;
    Ok(())
}
