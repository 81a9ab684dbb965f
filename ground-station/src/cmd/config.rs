//! `patrol check-config` and `patrol print-default-config`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{self, ConfigError, DEFAULT_CONFIG};

/// Arguments of `patrol check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// The config file to check (defaults, then this file, then `GS__*` environment overrides). Without it,
    /// the defaults and the environment are checked.
    pub path: Option<PathBuf>,
}

/// Runs `patrol check-config`: prints every problem and exits non-zero, or says the file is valid.
///
/// # Errors
/// None beyond printing; problems are reported with the exit code.
pub fn check(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let shown = args.path.as_ref().map_or_else(|| "the default configuration".to_owned(), |p| p.display().to_string());
    match config::load(args.path.as_deref(), std::env::vars()) {
        Ok(settings) => {
            println!(
                "{shown} is valid: station {}, {} drone(s), MQTT topic prefix `{}`.",
                settings.station.id,
                settings.drones.len(),
                settings.mqtt.topic_prefix
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ConfigError::Invalid(issues)) => {
            eprintln!("{shown} has {} problem(s):", issues.len());
            for issue in issues {
                eprintln!("  - {issue}");
            }
            eprintln!("`patrol print-default-config` prints every key with its default and meaning.");
            Ok(ExitCode::FAILURE)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Runs `patrol print-default-config`: prints the commented default configuration, the reference of every key.
///
/// # Errors
/// None.
pub fn print_default() -> anyhow::Result<ExitCode> {
    print!("{DEFAULT_CONFIG}");
    Ok(ExitCode::SUCCESS)
}
