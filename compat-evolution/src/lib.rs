//! zapin-compat-evolution: Evolution API v2.3.6 compatibility.
//!
//! Owns the request/response DTOs, validation and error envelopes of Evolution's HTTP contract, and
//! the mapping from engine events to Evolution event payloads, so that the engine and the gateway
//! speak zapin's own types. It performs no I/O.
