//! End-to-end tests.

mod console;
mod sim_interop;
