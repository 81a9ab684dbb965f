//! One module per `patrol` subcommand.

pub mod sim;
pub mod watch;
