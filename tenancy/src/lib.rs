//! zapin-tenancy: who may use zapin, how much, and at what pace.
//!
//! See the crate README for what it owns and what it must not do.

pub mod analytics;
pub mod apikey;
pub mod billing;
pub mod directory;
pub mod error;
pub mod pacing;
pub mod plan;
pub mod quota;
pub mod routes;
pub mod sql;
pub mod time;
pub mod usage;
pub mod users;

pub use error::TenancyError;
pub use time::{Clock, ManualClock, SystemClock};
