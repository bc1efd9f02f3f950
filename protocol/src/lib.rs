//! zapin-protocol: WhatsApp Web's multi-device wire protocol, sans-IO, for both roles.
//!
//! This crate owns every byte format zapin speaks: the connection header and 3-byte frames, the
//! Noise `XX` handshake (initiator for the engine, responder for the simulator) and its certificate
//! chain, the binary node codec and JIDs, the trimmed protobuf schema, Signal as WhatsApp uses
//! it, and app-state sync's cryptography ([`appstate`]: mutation keys, LT-hash, MACs, mutation
//! encoding). It is driven by callers that own sockets, clocks and randomness.
//!
//! It must not do I/O: no tokio, no sockets, no clock reads, no global RNG. Time is passed in as
//! Unix seconds and randomness as a `rand_core` RNG, so that every state machine here is
//! deterministic under test and can be fuzzed. Nothing in here may panic on bytes from the network.

pub mod appstate;
pub mod binary;
pub mod crypto;
pub mod frame;
pub mod jid;
pub mod media;
pub mod noise;
pub mod proto;
pub mod signal;
