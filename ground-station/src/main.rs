//! The `patrol` binary: parses the command line and hands over to [`ground_station::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ground_station::cli::Cli::parse();
    ground_station::cli::init_tracing(&cli.log);
    match ground_station::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
