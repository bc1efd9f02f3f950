//! zapin-signal-store: durable storage for every hosted device's credentials and Signal state.
//!
//! # What it owns
//! Device credentials (noise and identity key pairs, registration id, signed prekey, ADV data,
//! account JIDs), remote identities, one-time and signed prekeys, session records and sender-key
//! records, each keyed by the owning [`DeviceId`] chosen by the caller. Backends: memory (tests),
//! SQLite (embedded default) and PostgreSQL, all via sqlx without compile-time-checked macros;
//! migrations from `migrations/{sqlite,postgres}` are embedded and run on open.
//!
//! # What it must not do
//! Interpret Signal state: session and sender-key records are opaque bytes produced by
//! `zapin-protocol`. Open a pool, task or thread per device: one [`Store`] (one pool, and on
//! SQLite one group-commit writer task while there is work) serves all.
//!
//! # Shape
//! [`Store`] is a concrete handle over an enum of the three backends with inherent `async fn`s.
//! A trait would make every engine type generic over the store (or box futures with
//! `async-trait`) for no gain: the backend is chosen once at startup from configuration, and a
//! `match` per call costs nothing next to a database round trip. Clone it freely.
//!
//! # Encryption at rest
//! Private keys, the ADV secret, session records and sender-key records are sealed with
//! AES-256-GCM under a [`MasterKey`] (from `ZAPIN_MASTER_KEY` or a 0600 key file), with a random
//! 12-byte nonce per write and the owner, table and row key bound as associated data, so a value
//! moved to another row or device fails with [`StoreError::Decrypt`]. Public keys, JIDs and
//! signatures are stored in clear.
//!
//! # Key rotation
//! A [`Keyring`] holds the current key and, during a rotation, the previous one: values are
//! sealed under the current key and opened with either. [`Store::reseal`] re-seals what is still
//! under the previous key (table-driven over every sealed column, batched, compare-and-set), and
//! [`key_check`] records in each database which key its values are under, so a process started
//! with the wrong key can refuse to start instead of half-working.
//!
//! # Durability
//! Every write method, and [`Store::apply`] for multi-row batches, is durable when it returns
//! `Ok` (committed; SQLite runs WAL with `synchronous=FULL`). Persist ratchet state before the
//! ciphertext it produced leaves the process. On SQLite, [`Store::apply`] batches of different
//! devices that arrive while a commit is running share the next transaction (group commit, one
//! fsync for all of them; each batch still all or none); [`Store::write_transactions`] counts
//! the commits.

mod cipher;
mod error;
mod group_commit;
pub mod key_check;
mod keyring;
mod master_key;
mod memory;
mod reseal;
mod rows;
mod sql;
mod store;
mod types;

#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

pub use error::{KeyFormatError, MasterKeyError, StoreError};
pub use keyring::{KeyUsed, Keyring, SharedKeyring};
pub use master_key::{
    KeyFingerprint, KeySource, MASTER_KEY_ENV, MASTER_KEY_FILE, MASTER_KEY_PREVIOUS_ENV, MasterKey,
    PREVIOUS_KEY_FILE,
};
pub use reseal::{ResealMode, ResealReport};
pub use store::{PostgresOptions, SQLITE_FILE, SqliteOptions, Store};
pub use types::{
    Account, Address, Batch, BatchOp, DeviceCredentials, DeviceId, IdentityChange, IdentityRecord,
    InboxEntry, KeyPairBytes, MAX_DEVICE_ID_LEN, PreKey, Secret32, SenderKeyName, SignedPreKey,
    Trust,
};
