//! One module per `patrol` subcommand.

pub mod config;
pub mod ingest;
pub mod sim;
pub mod watch;
