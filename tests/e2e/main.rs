//! End-to-end tests.

mod console;
