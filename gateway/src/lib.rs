//! zapin-gateway: the Evolution API v2 compatible HTTP gateway and the `zapin` binary.
//!
//! The library holds everything the binary runs so that integration tests can start the same
//! router on an ephemeral port.

pub mod bots;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod http;
pub mod keys;
pub mod media;
pub mod metrics;
pub mod runtime;
pub mod tenancy;
pub mod webhook;

pub use config::{Config, ConfigError};
pub use http::{AppState, app};

/// zapin's own version, reported by `GET /` and `GET /v1/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
