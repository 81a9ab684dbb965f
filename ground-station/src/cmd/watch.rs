//! `patrol watch`.

use std::process::ExitCode;

/// Arguments of `patrol watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {}

/// Runs `patrol watch`.
///
/// # Errors
/// Not implemented yet.
pub fn run(_args: WatchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("patrol watch is not implemented yet")
}
