//! `patrol sim`: run simulated drones that speak MAVLink 2 like ArduPilot or PX4.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use firmware_bridge::signing::SigningKey;
use firmware_bridge::sim::{CameraConfig, GasWorld, PersonalityMix, SimConfig, SimFleet, SimLink, WorldRaster};
use mission_planner::geo::GeoPoint;
use tokio_util::sync::CancellationToken;

/// Home used when none is given (ArduPilot SITL's default, Canberra model flying club).
const DEFAULT_HOME: GeoPoint = GeoPoint::new(-35.363_261, 149.165_230);

/// Arguments of `patrol sim`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    patrol sim --drones 3 --personality mixed --gcs udpout:127.0.0.1:14550\n  \
    patrol sim --personality px4 --gcs udpin:0.0.0.0:14540 --speedup 5 --home 22.55,113.88\n  \
    patrol sim --world area.png --leaks leaks.json --camera camera.toml --http 127.0.0.1:8090\n\n\
    The world raster needs an ESRI world file next to it (area.pgw / area.jgw / area.wld) in WGS84 degrees.\n\
    Without --world the camera sees a plain ground colour.")]
pub struct SimArgs {
    /// How many drones (MAVLink system ids 1..=N).
    #[arg(long, default_value_t = 1)]
    pub drones: usize,
    /// Which autopilot they imitate: `ardupilot`, `px4`, or `mixed` (alternating, ArduPilot first).
    #[arg(long, value_enum, default_value_t = PersonalityArg::Ardupilot)]
    pub personality: PersonalityArg,
    /// Ground station link: `udpout:HOST:PORT` sends to a ground station from each drone's own socket (and
    /// answers whoever talks to it); `udpin:HOST:PORT` listens (drone i on PORT+i).
    #[arg(long, default_value = "udpout:127.0.0.1:14550")]
    pub gcs: String,
    /// Home position `LAT,LON` in degrees; repeat for several (drones take them in turn).
    #[arg(long = "home", value_parser = parse_home)]
    pub homes: Vec<GeoPoint>,
    /// File with one `LAT,LON` launch point per line (`#` starts a comment); added after `--home`.
    #[arg(long)]
    pub launch_points: Option<PathBuf>,
    /// Simulation speed: sim time runs this many times faster than wall time.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Seed for GPS noise and sensor noise (same seed, same flight).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// World raster (PNG or JPEG with a world file) the cameras photograph.
    #[arg(long)]
    pub world: Option<PathBuf>,
    /// Methane leaks JSON: `{"leaks": [{"lat_deg": .., "lon_deg": .., "strength_ppm_m": 800, "radius_m": 15}]}`.
    #[arg(long)]
    pub leaks: Option<PathBuf>,
    /// Camera profile TOML (`pitch_deg`, `jpeg_quality`, `[spec]` with image size and lens); default 1280x960,
    /// 70 degrees horizontal field of view, looking straight down.
    #[arg(long)]
    pub camera: Option<PathBuf>,
    /// Where the image server listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub http: SocketAddr,
    /// Do not serve images (captures are announced without a file URL).
    #[arg(long)]
    pub no_http: bool,
    /// Wind speed in m/s.
    #[arg(long, default_value_t = 0.0)]
    pub wind_mps: f64,
    /// Direction the wind blows from, degrees clockwise from north.
    #[arg(long, default_value_t = 0.0)]
    pub wind_from_deg: f64,
    /// Standard deviation of the reported GPS position error in metres (0 = exact).
    #[arg(long, default_value_t = 0.0)]
    pub gps_noise_m: f64,
    /// MAVLink 2 signing key for every drone, 64 hex digits: outgoing packets are signed; unsigned, wrongly
    /// signed and replayed incoming packets are dropped and counted.
    #[arg(long, env = "PATROL_SIM_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// Stop after this many wall seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub run_for_s: Option<f64>,
}

/// `--personality` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PersonalityArg {
    /// ArduPilot copter.
    Ardupilot,
    /// PX4.
    Px4,
    /// Alternating ArduPilot and PX4.
    Mixed,
}

fn parse_home(text: &str) -> Result<GeoPoint, String> {
    let (lat, lon) = text.split_once(',').ok_or_else(|| format!("expected LAT,LON in degrees, got {text:?}"))?;
    let parse = |v: &str, what: &str| v.trim().parse::<f64>().map_err(|e| format!("{what} {v:?}: {e}"));
    let point = GeoPoint::new(parse(lat, "latitude")?, parse(lon, "longitude")?);
    if !point.is_valid() {
        return Err(format!("{text:?} is not a valid latitude,longitude"));
    }
    Ok(point)
}

/// Builds the fleet configuration from the arguments.
///
/// # Errors
/// Bad links, homes, files or numbers, each with what to fix.
pub fn config_from_args(args: &SimArgs) -> anyhow::Result<SimConfig> {
    let link: SimLink = args.gcs.parse().context("--gcs")?;
    let mut homes = args.homes.clone();
    if let Some(path) = &args.launch_points {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let point = parse_home(line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
            homes.push(point);
        }
    }
    if homes.is_empty() {
        homes.push(DEFAULT_HOME);
    }
    let mix = match args.personality {
        PersonalityArg::Ardupilot => PersonalityMix::ArduPilot,
        PersonalityArg::Px4 => PersonalityMix::Px4,
        PersonalityArg::Mixed => PersonalityMix::Mixed,
    };
    let mut config = SimConfig::fleet(args.drones, mix, &homes, &link)?;
    if !(args.speedup.is_finite() && args.speedup > 0.0) {
        bail!("--speedup must be a number above 0, got {}", args.speedup);
    }
    config.speedup = args.speedup;
    config.seed = args.seed;
    config.http_bind = (!args.no_http).then_some(args.http);
    if let Some(path) = &args.world {
        config.world = Some(Arc::new(WorldRaster::load(path)?));
    }
    if let Some(path) = &args.leaks {
        config.gas = GasWorld::load(path)?;
    }
    let camera = match &args.camera {
        Some(path) => CameraConfig::load(path)?,
        None => CameraConfig::default(),
    };
    let key = args
        .signing_key
        .as_deref()
        .map(SigningKey::from_hex)
        .transpose()
        .context("--signing-key: make one with `patrol keygen`")?;
    for drone in &mut config.drones {
        drone.camera = camera.clone();
        drone.vehicle.wind_speed_mps = args.wind_mps;
        drone.vehicle.wind_from_deg = args.wind_from_deg;
        drone.vehicle.gps_noise_m = args.gps_noise_m;
        drone.signing_key = key.clone();
    }
    Ok(config)
}

/// Runs `patrol sim` until Ctrl-C (or `--run-for-s`).
///
/// # Errors
/// Bad arguments or files, or sockets that cannot be bound.
pub fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let config = config_from_args(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let token = CancellationToken::new();
        let fleet = SimFleet::spawn(config, token.clone()).await?;
        for drone in fleet.drones() {
            println!(
                "drone {:>3} {:<9} home {:.6},{:.6} socket {} -> {}",
                drone.system_id,
                drone.personality,
                drone.home.lat_deg,
                drone.home.lon_deg,
                drone.local_addr,
                drone.link
            );
        }
        match fleet.http_addr() {
            Some(addr) => println!("images: http://{addr}/images/<system id>/<image index>.jpg"),
            None => println!("images: not served (--no-http)"),
        }
        println!("speed-up {}x; Ctrl-C stops.", args.speedup);
        let stop = async {
            match args.run_for_s {
                Some(secs) => tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await,
                None => {
                    if let Err(error) = tokio::signal::ctrl_c().await {
                        tracing::error!(%error, "Cannot listen for Ctrl-C; stopping.");
                    }
                }
            }
        };
        stop.await;
        token.cancel();
        let stats: Vec<_> = fleet.drones().iter().map(|d| (d.system_id, d.stats.snapshot())).collect();
        fleet.wait().await;
        for (id, s) in stats {
            println!(
                "drone {id}: rx {} (malformed {}, unsigned dropped {}, bad signature dropped {}), tx {}, images {} \
                 (missed {})",
                s.rx_messages,
                s.rx_malformed,
                s.rx_unsigned_dropped,
                s.rx_bad_signature_dropped,
                s.tx_messages,
                s.captures_rendered,
                s.captures_dropped
            );
        }
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SimArgs,
    }

    #[test]
    fn arguments_build_a_mixed_fleet() {
        let w = Wrapper::parse_from([
            "sim",
            "--drones",
            "3",
            "--personality",
            "mixed",
            "--home",
            "22.55,113.88",
            "--speedup",
            "10",
            "--gcs",
            "udpin:127.0.0.1:14700",
            "--wind-mps",
            "3",
        ]);
        let config = config_from_args(&w.args).unwrap();
        assert_eq!(config.drones.len(), 3);
        assert_eq!(config.speedup, 10.0);
        assert_eq!(config.drones[1].personality, firmware_bridge::sim::Personality::Px4);
        assert_eq!(config.drones[2].link.to_string(), "udpin:127.0.0.1:14702");
        assert_eq!(config.drones[0].vehicle.wind_speed_mps, 3.0);
    }

    #[test]
    fn bad_inputs_say_what_to_fix() {
        assert!(parse_home("22.55").unwrap_err().contains("LAT,LON"));
        assert!(parse_home("95,10").unwrap_err().contains("valid"));
        let w = Wrapper::parse_from(["sim", "--gcs", "serial:/dev/ttyUSB0"]);
        let err = format!("{:#}", config_from_args(&w.args).unwrap_err());
        assert!(err.contains("udpout:HOST:PORT"), "{err}");
        let w = Wrapper::parse_from(["sim", "--signing-key", "abcd"]);
        let err = format!("{:#}", config_from_args(&w.args).unwrap_err());
        assert!(err.contains("64 hex digits") && err.contains("patrol keygen"), "{err}");
        let w = Wrapper::parse_from(["sim", "--signing-key", &"0f".repeat(32)]);
        let config = config_from_args(&w.args).unwrap();
        assert_eq!(config.drones[0].signing_key.as_ref().map(|k| *k.as_bytes()), Some([0x0f; 32]));
    }
}
