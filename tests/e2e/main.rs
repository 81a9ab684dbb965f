//! End-to-end tests.

mod bridge_interop;
mod console;
mod console_live;
mod daemon;
mod disk_full;
mod fleet;
mod fuzz_smoke;
mod link_outage;
mod mission_recovery;
mod patrol;
mod secrets;
mod sim_interop;
