//! The 32-byte master key that encrypts secrets at rest.
//!
//! Taken from `ZAPIN_MASTER_KEY` when set (64 hex characters or standard base64 of 32 bytes),
//! otherwise from `<data dir>/master.key`, which is created with mode 0600 on first start and must
//! still be 0600 (no group/other access) on later starts. Losing this key loses every paired
//! device, so the file is written to a temporary name, synced and then linked into place: a crash
//! never leaves a half-written key behind.
//!
//! During a key rotation the key it replaces can be kept for reading only, in
//! `ZAPIN_MASTER_KEY_PREVIOUS` or `<data dir>/master.key.previous` (see [`crate::Keyring`]).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{KeyFormatError, MasterKeyError};

/// Environment variable holding the master key.
pub const MASTER_KEY_ENV: &str = "ZAPIN_MASTER_KEY";
/// Name of the key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Environment variable holding the key a rotation replaced, accepted for reading only.
pub const MASTER_KEY_PREVIOUS_ENV: &str = "ZAPIN_MASTER_KEY_PREVIOUS";
/// Name of the file holding the key a rotation replaced, next to [`MASTER_KEY_FILE`].
pub const PREVIOUS_KEY_FILE: &str = "master.key.previous";

/// Where the current master key came from. Shown in messages instead of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `ZAPIN_MASTER_KEY`.
    Env,
    /// The key file at this path.
    File(PathBuf),
}

impl KeySource {
    /// Where the previous key of a rotation is kept next to the key file (`None` for the
    /// environment: the operator sets `ZAPIN_MASTER_KEY_PREVIOUS`).
    pub fn previous_file(&self) -> Option<PathBuf> {
        match self {
            KeySource::Env => None,
            KeySource::File(path) => Some(path.with_file_name(PREVIOUS_KEY_FILE)),
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env => f.write_str(MASTER_KEY_ENV),
            KeySource::File(path) => write!(f, "the key file {}", path.display()),
        }
    }
}

/// Label of the HMAC that names a key without revealing it.
const FINGERPRINT_LABEL: &[u8] = b"zapin/master-key-fingerprint/v1";

/// Names a master key: hex HMAC-SHA256 of a fixed label under the key. Stored in each database
/// (see [`crate::key_check`]) so a start can tell whether its key is the one the data was sealed
/// with; it reveals nothing about the key. [`fmt::Display`] shows the first 16 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFingerprint(String);

impl KeyFingerprint {
    /// The full 64 hex digits, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fingerprint read back from a database.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get(..16).unwrap_or(&self.0))
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({self})")
    }
}

/// The master key. Zeroed on drop, never printed.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Compares without an early exit on the first differing byte.
impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for MasterKey {}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh key from the operating system's RNG.
    pub fn generate() -> Result<Self, MasterKeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|_| MasterKeyError::Random)?;
        Ok(Self(bytes))
    }

    /// The key bytes, for other stores of the same process that protect their secrets with this
    /// one key (the gateway's instance tokens and webhook secrets).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A subkey for one purpose (`label`): HMAC-SHA256 of the label under the key, so that
    /// different uses (token lookup hashes, webhook secrets) never share a key.
    pub fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        use hmac::{Hmac, KeyInit, Mac};
        let mut out = Zeroizing::new([0u8; 32]);
        // HMAC takes keys of any length, so `new_from_slice` cannot fail.
        if let Ok(mut mac) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.expose()) {
            mac.update(label);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// This key's [`KeyFingerprint`].
    pub fn fingerprint(&self) -> KeyFingerprint {
        KeyFingerprint(hex::encode(*self.derive(FINGERPRINT_LABEL)))
    }

    /// Parses 64 hex characters or standard base64 (padded or not) of 32 bytes. Surrounding
    /// whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, KeyFormatError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        // Hex first: an even-length all-hex value is read as hex, so a short hex key reports its
        // hex length rather than some base64 reading of the same characters.
        let bytes: Zeroizing<Vec<u8>> =
            if text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                Zeroizing::new(hex::decode(text).map_err(|_| KeyFormatError::NotHexOrBase64)?)
            } else {
                let engine = if text.ends_with('=') {
                    &base64::engine::general_purpose::STANDARD
                } else {
                    &base64::engine::general_purpose::STANDARD_NO_PAD
                };
                Zeroizing::new(
                    engine
                        .decode(text)
                        .map_err(|_| KeyFormatError::NotHexOrBase64)?,
                )
            };
        let array = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| KeyFormatError::WrongLength(bytes.len()))?;
        Ok(Self::from_bytes(array))
    }

    /// `ZAPIN_MASTER_KEY` if set, else the key file in `data_dir` (created if missing).
    pub fn load(data_dir: &Path) -> Result<Self, MasterKeyError> {
        let env = std::env::var(MASTER_KEY_ENV).ok();
        Self::resolve(env.as_deref(), data_dir)
    }

    /// [`MasterKey::load`] with the environment value passed in, so callers and tests need not
    /// mutate the process environment. An empty value counts as unset.
    pub fn resolve(env_value: Option<&str>, data_dir: &Path) -> Result<Self, MasterKeyError> {
        match env_value {
            Some(v) if !v.is_empty() => Self::parse(v).map_err(MasterKeyError::BadEnvValue),
            _ => Self::load_or_create_file(&data_dir.join(MASTER_KEY_FILE)),
        }
    }

    /// Reads the key file at `path`; `None` when there is none. Same format and permission
    /// rules as [`MasterKey::load_or_create_file`].
    pub fn load_file(path: &Path) -> Result<Option<Self>, MasterKeyError> {
        match read_key_file(path) {
            Err(MasterKeyError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Writes this key to `path` (mode 0600), replacing what is there atomically: a new file is
    /// written and synced under a temporary name, then renamed over `path`, so a crash leaves
    /// either the old key or the new one, never a mix.
    pub fn save_file(&self, path: &Path) -> Result<(), MasterKeyError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let tmp = temp_path(path)?;
        let written = write_new_file(&tmp, self).and_then(|()| fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(path)(e));
        }
        sync_parent(path);
        Ok(())
    }

    /// Reads the key file at `path`, or creates it (mode 0600, hex content) when it does not exist.
    pub fn load_or_create_file(path: &Path) -> Result<Self, MasterKeyError> {
        match read_key_file(path) {
            Err(MasterKeyError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                create_key_file(path)
            }
            other => other,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MasterKeyError + '_ {
    move |source| MasterKeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_key_file(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    check_permissions(path, &meta)?;
    // The file is 64 hex characters and a newline; refuse to read anything much larger.
    if meta.len() > 1024 {
        return Err(MasterKeyError::BadKeyFile {
            path: path.to_path_buf(),
            reason: KeyFormatError::NotHexOrBase64,
        });
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(io_err(path))?);
    MasterKey::parse(&text).map_err(|reason| MasterKeyError::BadKeyFile {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), MasterKeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(MasterKeyError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<(), MasterKeyError> {
    Ok(())
}

fn create_key_file(path: &Path) -> Result<MasterKey, MasterKeyError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let key = MasterKey::generate()?;
    let tmp = temp_path(path)?;

    let written = write_new_file(&tmp, &key);
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_parent(path);
            Ok(key)
        }
        // Another process created the file first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// A fresh name next to `path` for a file that is then linked or renamed into place.
fn temp_path(path: &Path) -> Result<PathBuf, MasterKeyError> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|_| MasterKeyError::Random)?;
    Ok(PathBuf::from(format!(
        "{}.tmp-{}",
        path.display(),
        hex::encode(suffix)
    )))
}

fn write_new_file(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let mut text = Zeroizing::new(hex::encode(key.expose()));
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}
