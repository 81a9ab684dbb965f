//! The planner's error type.

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
}
