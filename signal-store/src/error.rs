//! Typed errors of the store and of master-key loading.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("device id must be 1 to 128 bytes without control characters")]
    InvalidDeviceId,
    #[error("device {0} does not exist")]
    UnknownDevice(String),
    #[error("device {0} already exists")]
    DeviceExists(String),
    #[error("prekey {id} already exists for this device")]
    DuplicatePreKey { id: u32 },
    #[error("value out of range for {0}")]
    OutOfRange(&'static str),
    /// Authentication failed: the ciphertext was altered, moved to another row, or written under
    /// another master key.
    #[error("encrypted {table} value failed authentication (tampered, moved or wrong master key)")]
    Decrypt { table: &'static str },
    /// A stored value does not have the shape the store wrote.
    #[error("stored value is malformed: {0}")]
    Corrupt(&'static str),
    #[error("operating-system randomness unavailable")]
    Random,
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Why the master key could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("ZAPIN_MASTER_KEY must be 64 hex characters or base64 of 32 bytes: {0}")]
    BadEnvValue(KeyFormatError),
    #[error("master key file {path} is malformed: {reason}")]
    BadKeyFile {
        path: PathBuf,
        reason: KeyFormatError,
    },
    #[error("master key file {path} has mode {mode:o}; it must be 0600 (owner read/write only)")]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("operating-system randomness unavailable")]
    Random,
}

/// What is wrong with a textual master key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("value is empty")]
    Empty,
    #[error("value is neither hex nor base64")]
    NotHexOrBase64,
    #[error("value decodes to {0} bytes, expected 32")]
    WrongLength(usize),
}
