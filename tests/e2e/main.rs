//! End-to-end tests.

mod sim_interop;
