//! zapin-engine: WhatsApp Web sessions as tokio actors, managed by a `SessionManager`.
//!
//! Owns connection lifecycle (pairing, login, keepalive, reconnection), messaging and receipts, and
//! the typed event stream the gateway consumes. It knows nothing of HTTP or of Evolution's shapes,
//! and never depends on the simulator.
//!
//! # Using it
//!
//! * [`SessionManager::new`]`(store, config)`; [`SessionManager::subscribe`] for the
//!   [`Event`] stream (one broadcast for all sessions, filter on [`Event::instance`]).
//! * [`SessionManager::create`] registers a device (fresh keys in the store) and, with
//!   `start: true`, connects: an unpaired session emits [`EventKind::QrCode`] until scanned,
//!   [`EventKind::QrLimitReached`] + `Connection{Refused, 428}` after `qrcode_limit` codes.
//!   [`SessionHandle::request_pairing_code`] pairs by phone number instead.
//! * [`SessionManager::load_all`] at startup: every paired device in the store logs in again
//!   (no QR); unpaired devices are registered but wait for [`SessionManager::start`].
//! * `start` / `stop` / `logout` / `delete`, [`SessionManager::state`], [`SessionManager::get`].
//!
//! Messaging ([`messaging`], driven by the session actor): incoming messages are decrypted,
//! acked and surfaced as [`EventKind::MessageUpsert`]; receipts and server acks become
//! [`EventKind::MessageUpdate`]; [`SessionHandle::send_text`] sends to users (usync and key
//! fetches go over the session's own connection); to a group JID it first fetches the group's
//! metadata (`w:g2` query, cached per session, dropped on `w:gp2` notifications, which also
//! surface as [`EventKind::GroupUpdate`]). Not yet: broadcast/status sends
//! ([`EngineError::Unsupported`]), and the presence/contacts/chats events (defined, not
//! produced).
//!
//! Transport: `wss://` over rustls (ring provider, `webpki-roots` plus the CA certificates of
//! [`EngineConfig::tls`]), or plain `ws://` for the simulator.

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
pub mod messaging;
pub mod pairing;
pub mod payload;
mod session;
pub mod signal_session;
pub mod socket;
pub mod tls;

pub use command::{Command, OutgoingMessage, SessionHandle, SessionStatus};
pub use config::{BrowserInfo, EngineConfig};
pub use error::EngineError;
pub use events::{ConnectionState, Event, EventKind, InstanceId, LogoutReason};
pub use manager::{CreateOptions, SessionManager};
pub use tls::{TlsConfigError, TlsTrust};
