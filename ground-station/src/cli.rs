//! The `patrol` command line: one subcommand per job, each in its own module under `cmd/`.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cmd;

/// Drone patrol ground station: plan patrols over grid cells, fly ArduPilot/PX4 drones over MAVLink, detect
/// fire, gas and illegal-structure hazards in their photos, and publish geotagged alerts over MQTT.
#[derive(Debug, Parser)]
#[command(name = "patrol", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Logging options.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Logging options shared by every subcommand.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter (`RUST_LOG` syntax), e.g. `info` or `firmware_bridge=debug`. Overrides `RUST_LOG`.
    #[arg(long, global = true)]
    pub log: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole simulated patrol: simulated drones, the ground station with the shipped model, MQTT events,
    /// the web console, and a summary measured against the hazards planted in the demo world.
    Demo(cmd::demo::DemoArgs),
    /// Run the ground station: drone links, detector, hazard tracking, MQTT events, HTTP API and web console.
    Serve(cmd::serve::ServeArgs),
    /// Plan a patrol over grid cells (one mission per sortie, GeoJSON, SVG, summary); `plan check` validates a
    /// mission file.
    Plan(Box<cmd::plan::PlanArgs>),
    /// Run simulated drones that speak MAVLink 2 (ArduPilot or PX4 personality), for demos and tests.
    Sim(cmd::sim::SimArgs),
    /// Detect hazards in photos (files or folders): JSON Lines or CSV, annotated copies, a per-class summary.
    Detect(cmd::detect::DetectArgs),
    /// Connect to a MAVLink link and print the vehicles, their live telemetry and STATUSTEXT lines.
    Watch(cmd::watch::WatchArgs),
    /// Manage web console users: add, passwd, role, remove, list.
    User(cmd::user::UserArgs),
    /// Read the capture poses of photos offloaded from a drone's SD card (EXIF GPS + DJI XMP tags) into a
    /// JSON Lines manifest of frame records.
    Ingest(cmd::ingest::IngestArgs),
    /// Make a MAVLink 2 signing key (32 random bytes as hex, file mode 0600) and print how to load it.
    Keygen(cmd::keygen::KeygenArgs),
    /// Check a ground-station.toml: prints every problem at once (with its key) and exits non-zero.
    CheckConfig(cmd::config::CheckConfigArgs),
    /// Print the default ground-station.toml: every key with its default and what it means.
    PrintDefaultConfig,
}

/// Installs the tracing subscriber: `--log`, else `RUST_LOG`, else `info`; text or JSON on stderr.
pub fn init_tracing(log: &LogArgs) {
    use tracing_subscriber::EnvFilter;
    let filter = match &log.log {
        Some(directives) => EnvFilter::new(directives),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rumqttd=warn")),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match log.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the chosen subcommand.
///
/// # Errors
/// Whatever the subcommand reports; `main` prints it with its causes.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Plan(args) => cmd::plan::run(*args),
        Command::Sim(args) => cmd::sim::run(args),
        Command::Watch(args) => cmd::watch::run(args),
        Command::User(args) => cmd::user::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
        Command::Keygen(args) => cmd::keygen::run(args),
        Command::CheckConfig(args) => cmd::config::check(args),
        Command::PrintDefaultConfig => cmd::config::print_default(),
        Command::Detect(args) => cmd::detect::run(args),
    }
}
