//! One module per `patrol` subcommand.

pub mod detect;
pub mod sim;
pub mod watch;
