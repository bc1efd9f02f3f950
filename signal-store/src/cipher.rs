//! Authenticated encryption of secret columns.
//!
//! Format of an encrypted value: `0x01 || nonce (12 bytes, random per write) || AES-256-GCM
//! ciphertext || tag (16 bytes)`. The associated data binds the value to its row: a domain label,
//! then the owning device, the table and the row's key, each length-prefixed so that no two rows
//! produce the same AAD. A value copied into another row, or another device's row, fails to
//! authenticate.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::error::StoreError;
use crate::keyring::{KeyUsed, SharedKeyring};
use crate::master_key::MasterKey;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const DOMAIN: &[u8] = b"zapin-signal-store/v1";

/// Which row a value belongs to; turned into the AAD.
#[derive(Debug, Clone)]
pub(crate) struct RowRef<'a> {
    pub owner: &'a str,
    pub table: &'static str,
    pub key: Vec<Vec<u8>>,
}

impl RowRef<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        for part in [DOMAIN, self.owner.as_bytes(), self.table.as_bytes()]
            .into_iter()
            .chain(self.key.iter().map(Vec::as_slice))
        {
            // Parts are short (ids, names); u32 lengths cannot overflow for them.
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }
}

/// Seals under the keyring's current key; opens with the current key, then the previous one
/// (see [`crate::Keyring`]).
pub(crate) struct RowCipher {
    keys: SharedKeyring,
}

impl std::fmt::Debug for RowCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RowCipher(<redacted>)")
    }
}

impl RowCipher {
    pub fn new(keys: SharedKeyring) -> Self {
        Self { keys }
    }

    pub fn keys(&self) -> &SharedKeyring {
        &self.keys
    }

    pub fn seal(&self, row: RowRef<'_>, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        seal_with(self.keys.get().current(), &row, plaintext)
    }

    pub fn open(&self, row: RowRef<'_>, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.open_which(&row, sealed).map(|(plain, _)| plain)
    }

    /// [`RowCipher::open`], also telling which key opened the value.
    pub fn open_which(
        &self,
        row: &RowRef<'_>,
        sealed: &[u8],
    ) -> Result<(Vec<u8>, KeyUsed), StoreError> {
        self.keys.get().open_with(|key| open_with(key, row, sealed))
    }
}

pub(crate) fn seal_with(
    key: &MasterKey,
    row: &RowRef<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| StoreError::Random)?;
    let aad = row.aad();
    let ciphertext = Aes256Gcm::new(key.expose().into())
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| StoreError::OutOfRange("plaintext length"))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

pub(crate) fn open_with(
    key: &MasterKey,
    row: &RowRef<'_>,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let corrupt = StoreError::Decrypt { table: row.table };
    let Some((&version, rest)) = sealed.split_first() else {
        return Err(corrupt);
    };
    if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(corrupt);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce =
        <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| StoreError::Decrypt { table: row.table })?;
    let aad = row.aad();
    Aes256Gcm::new(key.expose().into())
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> RowCipher {
        RowCipher::new(SharedKeyring::from(&MasterKey::from_bytes([7; 32])))
    }

    fn row<'a>(owner: &'a str, key: &[&[u8]]) -> RowRef<'a> {
        RowRef {
            owner,
            table: "sessions",
            key: key.iter().map(|k| k.to_vec()).collect(),
        }
    }

    #[test]
    fn round_trip_and_fresh_nonce() {
        let c = cipher();
        let a = c.seal(row("dev", &[b"alice", b"1"]), b"secret").unwrap();
        let b = c.seal(row("dev", &[b"alice", b"1"]), b"secret").unwrap();
        assert_ne!(a, b, "each write must use a new nonce");
        assert_eq!(
            c.open(row("dev", &[b"alice", b"1"]), &a).unwrap(),
            b"secret"
        );
    }

    #[test]
    fn other_row_or_owner_fails() {
        let c = cipher();
        let a = c.seal(row("dev", &[b"alice", b"1"]), b"secret").unwrap();
        assert!(matches!(
            c.open(row("dev2", &[b"alice", b"1"]), &a),
            Err(StoreError::Decrypt { .. })
        ));
        assert!(c.open(row("dev", &[b"alice", b"2"]), &a).is_err());
        // Length prefixes keep ("alice","1") and ("alice1","") apart.
        assert!(c.open(row("dev", &[b"alice1", b""]), &a).is_err());
    }

    #[test]
    fn tampering_and_truncation_fail() {
        let c = cipher();
        let mut a = c.seal(row("dev", &[b"x"]), b"secret").unwrap();
        let last = a.len() - 1;
        a[last] ^= 1;
        assert!(c.open(row("dev", &[b"x"]), &a).is_err());
        for n in 0..30 {
            assert!(c.open(row("dev", &[b"x"]), &a[..n.min(a.len())]).is_err());
        }
        let other = RowCipher::new(SharedKeyring::from(&MasterKey::from_bytes([8; 32])));
        let b = c.seal(row("dev", &[b"x"]), b"secret").unwrap();
        assert!(other.open(row("dev", &[b"x"]), &b).is_err());
    }

    #[test]
    fn previous_key_still_opens_and_new_seals_use_the_current_one() {
        use crate::keyring::Keyring;
        let old = MasterKey::from_bytes([7; 32]);
        let new = MasterKey::from_bytes([9; 32]);
        let c = cipher();
        let sealed_old = c.seal(row("dev", &[b"x"]), b"secret").unwrap();
        c.keys()
            .replace(Keyring::new(new.clone()).with_previous(Some(old)));
        let (plain, used) = c.open_which(&row("dev", &[b"x"]), &sealed_old).unwrap();
        assert_eq!(
            (plain.as_slice(), used),
            (&b"secret"[..], KeyUsed::Previous)
        );
        let sealed_new = c.seal(row("dev", &[b"x"]), b"secret").unwrap();
        assert_eq!(
            c.open_which(&row("dev", &[b"x"]), &sealed_new).unwrap().1,
            KeyUsed::Current
        );
        // Without the previous key, the old value no longer opens.
        c.keys().replace(Keyring::new(new));
        assert!(c.open(row("dev", &[b"x"]), &sealed_old).is_err());
    }
}
