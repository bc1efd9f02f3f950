//! zapin-engine: WhatsApp Web sessions as tokio actors, managed by a `SessionManager`.
//!
//! Owns connection lifecycle (pairing, login, keepalive, reconnection), messaging and receipts, and
//! the typed event stream the gateway consumes. It knows nothing of HTTP or of Evolution's shapes,
//! and never depends on the simulator.

pub mod backoff;
pub mod config;
pub mod disconnect;
pub mod events;
pub mod keepalive;
pub mod keys;
pub mod link_code;
pub mod pairing;
pub mod payload;
pub mod signal_session;
