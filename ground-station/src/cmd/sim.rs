//! `patrol sim`.

use std::process::ExitCode;

/// Arguments of `patrol sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {}

/// Runs `patrol sim`.
///
/// # Errors
/// Not implemented yet.
pub fn run(_args: SimArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("patrol sim is not implemented yet")
}
