//! End-to-end tests.

mod bridge_interop;
