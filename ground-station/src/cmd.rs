//! One module per `patrol` subcommand.

pub mod config;
pub mod demo;
pub mod detect;
pub mod ingest;
pub mod keygen;
pub mod plan;
pub mod serve;
pub mod sim;
pub mod user;
pub mod watch;
