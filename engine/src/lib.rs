//! zapin-engine: WhatsApp Web sessions as tokio actors, managed by a `SessionManager`.
//!
//! Owns connection lifecycle (pairing, login, keepalive, reconnection), messaging and receipts, and
//! the typed event stream the gateway consumes. It knows nothing of HTTP or of Evolution's shapes,
//! and never depends on the simulator.

pub mod backoff;
pub mod command;
pub mod config;
pub mod disconnect;
pub mod error;
pub mod events;
pub mod keepalive;
pub mod keys;
pub mod link_code;
pub mod manager;
pub mod pairing;
pub mod payload;
mod session;
pub mod signal_session;
pub mod socket;

pub use command::{Command, OutgoingMessage, SessionHandle, SessionStatus};
pub use config::{BrowserInfo, EngineConfig};
pub use error::EngineError;
pub use events::{ConnectionState, Event, EventKind, InstanceId, LogoutReason};
pub use manager::{CreateOptions, SessionManager};
