//! Signal as WhatsApp uses it (libsignal v3 wire format), sans-IO.
//!
//! Pairwise sessions ([`cipher`]: X3DH + Double Ratchet), group sender keys ([`group`]), the wire
//! messages ([`wire`]), identity and prekey generation ([`identity`]) and WhatsApp's plaintext
//! padding ([`padding`]). Every operation is a pure function of the caller's record: it returns a
//! new record and leaves the input untouched, and returns nothing but an error on failure. Callers
//! persist the new record before sending or acting on the result.
//!
//! # Where each fact comes from
//!
//! Written from Signal's public specifications (signal.org/docs: X3DH, Double Ratchet, XEdDSA,
//! Sender Keys) and zapin's wa-protocol.md §6.3, §7.6 and §7.7. No GPL Signal implementation was
//! read. Facts and their sources:
//!
//! * X3DH input `0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4]`, HKDF salt 32 zero bytes, info
//!   `"WhisperText"`, output root ‖ chain: wa-protocol.md §7.6 (DH order as in the X3DH spec).
//! * Root step info `"WhisperRatchet"` with the root key as salt; chain steps HMAC(ck, `01`) /
//!   HMAC(ck, `02`); message keys HKDF(seed, info `"WhisperMessageKeys"`, 80) = cipher ‖ mac ‖ iv;
//!   AES-256-CBC/PKCS#7: wa-protocol.md §7.6.
//! * Initiator keeps the X3DH chain as a receiving chain for the signed prekey and ratchets at
//!   once; responder sends with its signed prekey as ratchet key: wa-protocol.md §7.6 ("the
//!   initiator then immediately ratchets"), confirmed by the interop tests.
//! * Wire layouts, version byte `0x33`, protobuf field numbers, 8-byte MAC over
//!   `senderId(33) ‖ receiverId(33) ‖ 0x33 ‖ protobuf`: wa-protocol.md §7.6.
//! * Message counters start at 0 on each chain, and `previous_counter` is the counter of the
//!   last message sent on the previous chain: established black-box by the interop tests against
//!   npm libsignal 6.0.0 (tests/interop/libsignal-peer.mjs).
//! * Sender keys: HMAC chain `01`/`02`, HKDF(seed, info `"WhisperGroup"`, 48) = iv(16) ‖ key(32),
//!   XEdDSA signature over `0x33 ‖ protobuf`: wa-protocol.md §7.6, confirmed against Baileys 7's
//!   group cipher (npm libsignal 6.0.0 has no group API).
//! * Signed prekey signature over the 33-byte `05`-prefixed key, 24-bit prekey ids, 14-bit
//!   registration ids: wa-protocol.md §6.3 and libsignal's public key-helper API.
//! * Limits (2000 forward jumps and stored skipped keys, 5 receiving chains, 40 archived
//!   states) follow libsignal's documented defaults; wa-protocol.md §7.6 gives the 2000.

pub mod cipher;
mod error;
pub mod group;
pub mod identity;
mod kdf;
pub mod padding;
pub mod session;
pub mod wire;

pub use cipher::{
    CiphertextMessage, PreKeyDecrypted, PreKeySecrets, decrypt_message, decrypt_prekey_message,
    encrypt, initiate_session,
};
pub use error::SignalError;
pub use group::{
    SenderKeyRecord, create_sender_key_distribution, group_decrypt, group_encrypt,
    process_sender_key_distribution,
};
pub use identity::{LocalIdentity, PreKey, PreKeyBundle, SignedPreKey, generate_registration_id};
pub use session::SessionRecord;
pub use wire::{
    PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyMessage, SignalMessage,
};
