//! End-to-end tests.

mod bridge_interop;
mod console;
mod console_live;
mod daemon;
mod fleet;
mod fuzz_smoke;
mod patrol;
mod sim_interop;
