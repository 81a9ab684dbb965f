//! End-to-end tests.

mod bridge_interop;
mod console;
mod fleet;
mod sim_interop;
