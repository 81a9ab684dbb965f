//! `patrol demo`: a whole simulated patrol, from plan to alert, with nothing installed but the ONNX Runtime
//! library (`scripts/demo.sh` sets that up and runs this).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;

use crate::auth::Role;
use crate::demo::{self, DemoOptions};

/// Arguments of `patrol demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    patrol demo                          # 3 drones, console on http://127.0.0.1:8080/, demo users printed\n  \
    patrol demo --headless --drones 2 --speedup 8 --summary out/demo-summary.json\n  \
    patrol demo --broker 127.0.0.1:1883  # publish to your own broker instead of the embedded one\n\n\
    The simulated drones fly over data/demo-world/ (a painted town with fires, smoke, gas cylinders and\n\
    steel sheds at known places); the summary compares what the station published with that truth.")]
pub struct DemoArgs {
    /// No web console; exit with the summary (for CI).
    #[arg(long)]
    pub headless: bool,
    /// Simulated drones (ArduPilot and PX4 alternating).
    #[arg(long, default_value_t = 3)]
    pub drones: usize,
    /// Simulation speed-up (the detector must keep up: photos it cannot take are dropped and counted).
    #[arg(long, default_value_t = 5.0)]
    pub speedup: f64,
    /// External MQTT broker `HOST:PORT` instead of the embedded one.
    #[arg(long, value_parser = parse_broker)]
    pub broker: Option<(String, u16)>,
    /// Where the console listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub web: SocketAddr,
    /// Grid cells to patrol (repeatable); default: the sample district's demo cells.
    #[arg(long = "cell")]
    pub cells: Vec<String>,
    /// Folder for the demo's database and evidence (default: a fresh `patrol-demo` folder under the system's
    /// temporary directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Write the summary as JSON here.
    #[arg(long, default_value = "demo-summary.json")]
    pub summary: PathBuf,
    /// The repository's data folder (default: found from the current directory or the executable).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Give up after this many minutes.
    #[arg(long, default_value_t = 20.0)]
    pub time_limit_min: f64,
    /// After the summary, keep the console running until Ctrl-C (not with --headless).
    #[arg(long)]
    pub stay: bool,
}

fn parse_broker(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| format!("expected HOST:PORT, got {text:?}"))?;
    let port: u16 = port.parse().map_err(|_| format!("{port:?} is not a port number"))?;
    if host.is_empty() || port == 0 {
        return Err(format!("expected HOST:PORT, got {text:?}"));
    }
    Ok((host.to_owned(), port))
}

fn password() -> String {
    const LETTERS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..14).map(|_| char::from(LETTERS[rng.random_range(0..LETTERS.len())])).collect()
}

/// Runs `patrol demo`.
///
/// # Errors
/// Missing data or ONNX Runtime, a part that cannot start, the time limit.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let data_dir = match args.data.clone() {
        Some(dir) => dir,
        None => demo::find_data_dir().context(
            "cannot find the repository's data/ folder: run from the checkout or pass --data <checkout>/data",
        )?,
    };
    let work_dir = match args.work_dir.clone() {
        Some(dir) => dir,
        None => {
            let dir = std::env::temp_dir().join(format!("patrol-demo-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            dir
        }
    };
    let options = DemoOptions {
        data_dir,
        work_dir,
        drones: args.drones,
        speedup: args.speedup,
        broker: args.broker.clone(),
        web: (!args.headless).then_some(args.web),
        cells: args.cells.clone(),
        time_limit: Duration::from_secs_f64(args.time_limit_min.max(0.5) * 60.0),
        progress: true,
        model: None,
    };
    let headless = args.headless;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let summary = demo::run(options, |station| {
            if headless {
                return;
            }
            let mut lines = Vec::new();
            for (user, role) in [("admin", Role::Admin), ("operator", Role::Operator), ("reviewer", Role::Reviewer)] {
                let secret = password();
                // A user left from an earlier run with the same work folder gets this run's password.
                let _ = station.auth.remove_user(user);
                match station.auth.add_user(user, &secret, role) {
                    Ok(()) => lines.push(format!("  {user:<9} {secret}")),
                    Err(error) => tracing::error!(%error, user, "Cannot create the demo user."),
                }
            }
            if let Some(addr) = station.web_addr {
                println!("Console: http://{addr}/  (demo users, passwords made for this run:)");
                println!("{}", lines.join("\n"));
            }
        })
        .await?;
        print!("{}", summary.report());
        let json = serde_json::to_string_pretty(&summary).context("encoding the summary")?;
        std::fs::write(&args.summary, json).with_context(|| format!("writing {}", args.summary.display()))?;
        println!("Summary written to {}", args.summary.display());
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
