//! zapin-signal-store: durable storage for every session's device credentials and Signal state.
//!
//! Owns the async store traits (identities, prekeys, signed prekeys, sessions, sender keys, device
//! credentials) and their memory, SQLite and PostgreSQL implementations; one pool serves every
//! session, rows are keyed by the owning device, and private keys are encrypted at rest.
//!
//! It must not interpret Signal state (records are opaque bytes produced by `zapin-protocol`) and
//! must not open a pool, task or thread per session.
