//! Frames in: turn what drones hand over (SD-card photos, pushed JPEGs with metadata) into a capture pose the
//! georeferencer can use.
//!
//! - [`photo_pose`] reads the pose of a drone photo from its EXIF (GPS, time, focal length) and the DJI XMP
//!   tags (relative altitude, gimbal and flight attitude), for `patrol ingest <folder>`.
//! - [`folder`] finds the JPEGs of an offloaded SD card and makes one [`folder::FrameRecord`] per photo.
//! - [`push`] parses what a companion computer posts to the push endpoint: a JPEG plus a JSON metadata
//!   document, as multipart/form-data or as a raw JPEG body with the metadata in a header or the query string.
//!
//! Both are pure: they take bytes and return typed records or typed errors, and never panic on bad input.

#[cfg(test)]
pub(crate) mod fixture;
pub mod folder;
mod jpeg;
pub mod photo_pose;
pub mod push;
mod xmp;
