//! `patrol serve`: the ground station daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{self, ConfigError};
use crate::station::{StartOptions, Station};

/// Arguments of `patrol serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    patrol print-default-config > ground-station.toml   # then edit [[drones]], [district], [planner]\n  \
    patrol check-config ground-station.toml\n  \
    patrol serve --config ground-station.toml\n  \
    GS__MQTT__PASSWORD=s3cret patrol serve --config ground-station.toml\n\n\
    Stops cleanly on Ctrl-C or SIGTERM: queued frames are finished, unsent events stay in the outbox for the next\n\
    start, and no command is sent to any drone.")]
pub struct ServeArgs {
    /// The configuration file (defaults, then this file, then `GS__*` environment variables). Without it the
    /// defaults run: embedded MQTT broker on 127.0.0.1:1884, console on 127.0.0.1:8080, no drones.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Runs `patrol serve` until SIGINT/SIGTERM.
///
/// # Errors
/// An invalid configuration (every problem listed) or a part that cannot start.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = match config::load(args.config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(ConfigError::Invalid(issues)) => {
            eprintln!("the configuration has {} problem(s):", issues.len());
            for issue in issues {
                eprintln!("  - {issue}");
            }
            eprintln!("`patrol print-default-config` prints every key with its default and meaning.");
            return Ok(ExitCode::FAILURE);
        }
        Err(error) => return Err(error.into()),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let station = Station::start(settings, StartOptions { detector: None, web: true }).await?;
        tracing::info!("Ground station running; Ctrl-C stops it.");
        Station::wait_for_signal().await;
        station.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
