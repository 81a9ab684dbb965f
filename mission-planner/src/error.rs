//! The planner's error type.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while reading, planning or validating.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The camera profile cannot describe a pinhole camera.
    #[error("camera {name:?} is invalid: {reason}")]
    InvalidCamera {
        /// The camera's name from its profile.
        name: String,
        /// What is wrong and what to give instead.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A file or text is not in the format it claims to be.
    #[error("{what} is not valid: {reason}")]
    Format {
        /// What was being read, e.g. "cells GeoJSON" or "QGC .plan".
        what: String,
        /// What is wrong, with a position where known.
        reason: String,
    },
    /// One feature (grid cell, no-fly zone, launch point) of an input is unusable.
    #[error("{what} {id:?}: {reason}")]
    InvalidFeature {
        /// What kind of feature, e.g. "grid cell".
        what: &'static str,
        /// The feature's id (its `grid_id`, `id` or `name`, else `#<index>`).
        id: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An input collection holds nothing to work with.
    #[error("{what} is empty: {hint}")]
    Empty {
        /// What was empty.
        what: String,
        /// What to give instead.
        hint: String,
    },
    /// A planning parameter is out of range.
    #[error("parameter {name} is invalid: {reason}")]
    InvalidParameter {
        /// The parameter's name, as the CLI and config spell it.
        name: &'static str,
        /// What is wrong and which values work.
        reason: String,
    },
}

impl PlanError {
    /// A [`PlanError::Format`] error.
    pub(crate) fn format(what: impl Into<String>, reason: impl Into<String>) -> Self {
        PlanError::Format { what: what.into(), reason: reason.into() }
    }

    /// A [`PlanError::InvalidParameter`] error.
    pub(crate) fn parameter(name: &'static str, reason: impl Into<String>) -> Self {
        PlanError::InvalidParameter { name, reason: reason.into() }
    }
}
