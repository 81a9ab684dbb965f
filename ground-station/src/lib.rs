//! The `patrol` ground station: the composition root that wires drone links (firmware-bridge), planning
//! (mission-planner), detection (inference), storage, MQTT and the web console.
//!
//! `main.rs` only parses the command line; everything lives here so end-to-end tests can run it in-process.

pub mod auth;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod demo;
pub mod district;
pub mod georef;
pub mod hazard;
pub mod hazard_service;
pub mod ingest;
pub mod mqtt;
pub mod station;
pub mod storage;
pub mod tracking;
pub mod web;
