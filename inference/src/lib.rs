//! inference (skeleton).
