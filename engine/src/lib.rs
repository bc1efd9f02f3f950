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
//! surface as [`EventKind::GroupUpdate`]).
//!
//! Chat-level API on [`SessionHandle`] (each needs an open connection, else
//! [`EngineError::NotConnected`]):
//!
//! * [`SessionHandle::on_whatsapp`]: which phone numbers have an account (one usync `contact`
//!   query of at most [`messaging::usync::MAX_CONTACT_QUERY`] numbers; malformed numbers are
//!   [`EngineError::InvalidPhone`] before anything is sent). Answers [`NumberCheck`]s
//!   `{number, exists, jid, lid}`, one per input.
//! * [`SessionHandle::group_info`]: a group's subject and members ([`GroupInfo`], cached per
//!   session), `None` when the server says there is no such group for us.
//! * [`SessionHandle::group`]: group administration ([`messaging::group_admin::GroupOp`]:
//!   create, metadata, participating, participants, subject, description, picture, settings,
//!   ephemeral timer, invite code/revoke/info/accept, leave), one or two `w:g2` IQs; refusals
//!   keep WhatsApp's code ([`messaging::MessagingError::Iq`]).
//! * [`SessionHandle::account`]: the account's privacy categories, block list, about text,
//!   picture and push name, and another user's about text, picture URL and business profile
//!   ([`messaging::account::AccountOp`]).
//! * [`SessionHandle::send_text_with`]: a text with [`SendOptions`] (a [`QuotedMessage`] reply,
//!   mentions, "mention everyone" in groups), sent as an `extendedTextMessage`.
//! * [`SessionHandle::subscribe_presence`], [`SessionHandle::send_chat_presence`] ([`ChatState`]),
//!   [`SessionHandle::send_presence`], [`SessionHandle::mark_read`].
//!
//! Events besides messages: [`EventKind::Presence`] for incoming `<presence>` (available /
//! unavailable with last seen) and `<chatstate>` (composing / recording / paused, in a group with
//! the participant); [`EventKind::Chats`] the first time a chat is seen in this session run (a
//! message in, or a send out); [`EventKind::Contacts`] when a message brings a new or changed push
//! name. Both remember a bounded number of entries per session
//! ([`messaging::directory::DIRECTORY_CAPACITY`]).
//!
//! Media ([`media`]): [`SessionHandle::upload_media`] encrypts a stream of any size in constant
//! memory and uploads it to the `media_conn` hosts in turn, answering the fields a media message
//! carries ([`media::MediaUpload`]); [`SessionHandle::download_media`] fetches, decrypts and
//! verifies a [`media::MediaRef`] into any `AsyncWrite`, with [`media::MediaError::Gone`] for
//! a CDN 404/410.
//!
//! Not yet: broadcast/status sends ([`EngineError::Unsupported`]).
//!
//! Transport: `wss://` over rustls (ring provider, `webpki-roots` plus the CA certificates of
//! [`EngineConfig::tls`]), or plain `ws://` for the simulator; optionally through a per-instance
//! proxy ([`SessionManager::set_proxy`], [`proxy`]: HTTP `CONNECT`, SOCKS5, SOCKS4a), read at
//! every connection attempt.

pub mod backoff;
pub mod command;
pub mod config;
pub mod crashpoint;
pub mod disconnect;
pub mod error;
pub mod events;
pub mod keepalive;
pub mod keys;
pub mod link_code;
pub mod manager;
pub mod media;
pub mod messaging;
pub mod pairing;
pub mod payload;
pub mod proxy;
mod session;
pub mod signal_session;
pub mod socket;
pub mod tls;

pub use command::{
    Command, GateOpener, GroupInfo, NumberCheck, OutgoingMessage, QuotedMessage, SendOptions,
    SessionHandle, SessionStatus, WireGate,
};
pub use config::{BrowserInfo, EngineConfig};
pub use error::EngineError;
pub use events::{
    Chat, ConnectionState, Contact, Event, EventKind, InstanceId, LogoutReason, Presence,
    PresenceState,
};
pub use manager::{CreateOptions, SessionManager};
pub use messaging::presence::ChatState;
pub use tls::{TlsConfigError, TlsTrust};
