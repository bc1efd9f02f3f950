//! zapin-compat-evolution: Evolution API v2.3.6 compatibility.
//!
//! Owns the HTTP contract's shapes so that the gateway and the engine speak zapin's own types:
//! error envelopes ([`error`]), request validation with Evolution's exact 400 texts
//! ([`request`]), response bodies ([`response`]), event names ([`events`]), event `data`
//! payloads ([`payload`]), the message record's content ([`content`]), the webhook envelope
//! ([`envelope`]), what real Evolution clients send ([`client_tolerance`]) and the few header
//! values parsed besides `apikey` ([`headers`]).
//!
//! It performs no I/O, knows nothing of HTTP frameworks and holds no state. See README.md for
//! which Evolution quirks are replicated and which are fixed.

pub mod client_tolerance;
pub mod content;
pub mod envelope;
pub mod error;
pub mod events;
pub mod headers;
pub mod numbers;
pub mod payload;
pub mod request;
pub mod response;
mod schema;

pub use error::{ConnectErrorBody, ErrorEnvelope, ErrorMessage, PropertyError, RawErrorBody};
pub use events::{EventName, EventSubscription};
