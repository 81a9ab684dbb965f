//! End-to-end tests.

mod bridge_interop;
mod console;
mod sim_interop;
