//! Instance tokens at rest.
//!
//! An instance token is a credential: it unlocks every route of its instance. Evolution must be
//! able to show it again (`fetchInstances` and create return it as `hash`), so it cannot be
//! stored only as a one-way hash. Each row therefore keeps two forms, both under the process's
//! master key (`ZAPIN_MASTER_KEY`, else the signal store's key file, see
//! [`crate::Config::resolve_master_key`]):
//!
//! * `token`: AES-256-GCM ciphertext (`enc1:` + base64 of nonce ‖ ciphertext), opened only to
//!   show the token back;
//! * `token_hash`: hex HMAC-SHA256 of the token under a key derived from the master key. Auth
//!   compares the presented key's HMAC with it in constant time, so checking a request costs
//!   one HMAC and no decryption, and the column alone reveals nothing.
//!
//! Rows written by earlier versions in plain text are sealed on start (see
//! [`crate::db::Db::seal_at_rest`]). A row sealed under another key has no usable hash under
//! this one: requests with its token get 401, not an error.
//!
//! During a key rotation the cipher reads the process's [`SharedKeyring`]: tokens are sealed and
//! hashed under the current key, and opened and matched under the current or the previous one,
//! so rows not re-sealed yet keep working.
//!
//! Without a key (library use and tests that build a [`TokenCipher`] from a bare `Config`)
//! tokens are stored as given; a plain-text token that itself starts with `enc1:` or `raw:` is
//! stored as `raw:<token>` so it cannot be mistaken for a sealed one. The `zapin` binary always
//! has a key.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use zapin_signal_store::{KeyUsed, SharedKeyring};

use crate::config::MasterKey;
use crate::db::Instance;

/// Domain label of the lookup key derived from the master key.
const LOOKUP_LABEL: &[u8] = b"zapin/instance-token-lookup/v1";

const PREFIX: &str = "enc1:";
const RAW_PREFIX: &str = "raw:";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the operating system RNG failed")]
    Rng,
    #[error("encrypting an instance token failed")]
    Encrypt,
    /// Wrong master key, or a damaged row.
    #[error("a stored instance token cannot be decrypted (was ZAPIN_MASTER_KEY changed?)")]
    Decrypt,
}

/// Seals and opens stored tokens. `None` key: plain text.
#[derive(Clone, Default)]
pub struct TokenCipher {
    keys: Option<SharedKeyring>,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher")
            .field("encrypts", &self.encrypts())
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA256 over the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    let mut out = Zeroizing::new([0u8; 32]);
    if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        for part in parts {
            mac.update(part);
        }
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// `token_hash` of `token` under `key`.
fn lookup_hash(key: &MasterKey, token: &[u8]) -> String {
    hex::encode(*hmac_sha256(key.derive(LOOKUP_LABEL).as_slice(), &[token]))
}

impl TokenCipher {
    /// A cipher with one fixed key (`None`: plain text).
    pub fn new(key: Option<MasterKey>) -> Self {
        Self {
            keys: key.as_ref().map(SharedKeyring::from),
        }
    }

    /// A cipher that follows the process's keyring (see the module doc).
    pub fn with_keyring(keys: Option<SharedKeyring>) -> Self {
        Self { keys }
    }

    /// The `token_hash` column for `token` (under the current key): `None` without a key.
    pub fn lookup(&self, token: &[u8]) -> Option<String> {
        let keys = self.keys.as_ref()?.get();
        Some(lookup_hash(keys.current(), token))
    }

    /// Whether `candidate` (an `apikey` header) is `instance`'s token. With a key only the
    /// `token_hash` is consulted (constant-time comparison of equal-length hex digests, under the
    /// current key and during a rotation the previous one); a row without one (sealed under
    /// another key) matches nothing.
    pub fn unlocks(&self, instance: &Instance, candidate: &[u8]) -> bool {
        if candidate.is_empty() {
            return false;
        }
        let Some(keys) = &self.keys else {
            return self.matches(&instance.token, candidate);
        };
        let Some(stored) = &instance.token_hash else {
            return false;
        };
        let keys = keys.get();
        keys.keys().fold(false, |found, (_, key)| {
            let probe = lookup_hash(key, candidate);
            found | bool::from(probe.as_bytes().ct_eq(stored.as_bytes()))
        })
    }

    pub fn encrypts(&self) -> bool {
        self.keys.is_some()
    }

    /// The form to store.
    pub fn seal(&self, token: &str) -> Result<String, TokenError> {
        let Some(keys) = &self.keys else {
            if token.starts_with(PREFIX) || token.starts_with(RAW_PREFIX) {
                return Ok(format!("{RAW_PREFIX}{token}"));
            }
            return Ok(token.to_owned());
        };
        let keys = keys.get();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| TokenError::Rng)?;
        let ct = Aes256Gcm::new(keys.current().expose().into())
            .encrypt(&nonce.into(), token.as_bytes())
            .map_err(|_| TokenError::Encrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The token itself from its stored form.
    pub fn open(&self, stored: &str) -> Result<Zeroizing<String>, TokenError> {
        self.open_which(stored).map(|(token, _)| token)
    }

    /// [`TokenCipher::open`], also telling which key opened it (`None`: stored in plain text).
    pub fn open_which(
        &self,
        stored: &str,
    ) -> Result<(Zeroizing<String>, Option<KeyUsed>), TokenError> {
        if let Some(raw) = stored.strip_prefix(RAW_PREFIX) {
            return Ok((Zeroizing::new(raw.to_owned()), None));
        }
        let Some(sealed) = stored.strip_prefix(PREFIX) else {
            return Ok((Zeroizing::new(stored.to_owned()), None));
        };
        let keys = self.keys.as_ref().ok_or(TokenError::Decrypt)?.get();
        let raw = STANDARD.decode(sealed).map_err(|_| TokenError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(TokenError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| TokenError::Decrypt)?;
        let (pt, used) = keys.open_with(|key| {
            Aes256Gcm::new(key.expose().into())
                .decrypt(&nonce.into(), ct)
                .map(Zeroizing::new)
                .map_err(|_| TokenError::Decrypt)
        })?;
        let token = std::str::from_utf8(&pt).map_err(|_| TokenError::Decrypt)?;
        Ok((Zeroizing::new(token.to_owned()), Some(used)))
    }

    /// Whether `candidate` is the token stored as `stored`, in constant time for equal lengths.
    /// A row that cannot be opened matches nothing. Only for key-less storage: with a key,
    /// [`TokenCipher::unlocks`] compares hashes instead.
    fn matches(&self, stored: &str, candidate: &[u8]) -> bool {
        match self.open(stored) {
            Ok(token) => !token.is_empty() && bool::from(token.as_bytes().ct_eq(candidate)),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Config;

    fn keyed(hex_key: &str) -> TokenCipher {
        let config =
            Config::from_env([("ZAPIN_MASTER_KEY".to_owned(), hex_key.to_owned())]).unwrap();
        TokenCipher::new(config.master_key)
    }

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn sealed_tokens_open_only_under_their_key() {
        let c = keyed(K1);
        let sealed = c.seal("TOKEN-1").unwrap();
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("TOKEN-1"));
        assert_ne!(sealed, c.seal("TOKEN-1").unwrap(), "fresh nonce each time");
        assert_eq!(c.open(&sealed).unwrap().as_str(), "TOKEN-1");
        assert!(c.matches(&sealed, b"TOKEN-1"));
        assert!(!c.matches(&sealed, b"TOKEN-2"));
        assert!(!c.matches(&sealed, sealed.as_bytes()));
        assert!(keyed(K2).open(&sealed).is_err());
        assert!(TokenCipher::new(None).open(&sealed).is_err());
        assert!(!TokenCipher::new(None).matches(&sealed, sealed.as_bytes()));
        // Damaged rows are errors, not panics.
        for bad in ["enc1:", "enc1:!!", "enc1:AAAA", &sealed[..sealed.len() - 2]] {
            assert!(c.open(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_storage_round_trips_every_token() {
        let plain = TokenCipher::new(None);
        for token in ["ABC", "enc1:looks-sealed", "raw:x", ""] {
            let stored = plain.seal(token).unwrap();
            assert_eq!(plain.open(&stored).unwrap().as_str(), token);
            // A key added later still reads rows stored without one.
            assert_eq!(keyed(K1).open(&stored).unwrap().as_str(), token);
        }
        assert_eq!(plain.seal("ABC").unwrap(), "ABC");
        assert!(!plain.matches("", b""), "an empty token unlocks nothing");
    }

    fn instance(token: String, token_hash: Option<String>) -> Instance {
        Instance {
            id: "id".to_owned(),
            name: "n".to_owned(),
            token,
            token_hash,
            owner_jid: None,
            profile_name: None,
            connection_status: "close".to_owned(),
            integration: "WHATSAPP-BAILEYS".to_owned(),
            number: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn keyed_auth_compares_lookup_hashes_only() {
        let c = keyed(K1);
        let hash = c.lookup(b"TOKEN-1").unwrap();
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("TOKEN-1"));
        assert_eq!(Some(hash.clone()), c.lookup(b"TOKEN-1"), "deterministic");
        assert_ne!(Some(hash.clone()), keyed(K2).lookup(b"TOKEN-1"), "keyed");
        let row = instance(c.seal("TOKEN-1").unwrap(), Some(hash));
        assert!(c.unlocks(&row, b"TOKEN-1"));
        assert!(!c.unlocks(&row, b"TOKEN-2"));
        assert!(!c.unlocks(&row, b""));
        assert!(
            !c.unlocks(&row, row.token.as_bytes()),
            "the ciphertext is no key"
        );
        assert!(
            !keyed(K2).unlocks(&row, b"TOKEN-1"),
            "another master key: refused"
        );
        // A row without a hash (sealed under another key) unlocks nothing, even its plain text.
        let plain = instance("TOKEN-1".to_owned(), None);
        assert!(!c.unlocks(&plain, b"TOKEN-1"));
        // Without a key, the stored plain text is compared.
        assert!(TokenCipher::new(None).unlocks(&plain, b"TOKEN-1"));
        assert!(!TokenCipher::new(None).unlocks(&plain, b"TOKEN-2"));
        assert!(TokenCipher::new(None).lookup(b"TOKEN-1").is_none());
        assert!(!format!("{c:?}").contains("TOKEN"));
    }

    #[test]
    fn during_a_rotation_old_tokens_still_open_and_unlock() {
        use zapin_signal_store::Keyring;
        let old = MasterKey::parse(K1).unwrap();
        let new = MasterKey::parse(K2).unwrap();
        let c = TokenCipher::new(Some(old.clone()));
        let row = instance(c.seal("TOKEN-1").unwrap(), c.lookup(b"TOKEN-1"));
        let keys = SharedKeyring::new(Keyring::new(new.clone()).with_previous(Some(old)));
        let rotating = TokenCipher::with_keyring(Some(keys.clone()));
        let (token, used) = rotating.open_which(&row.token).unwrap();
        assert_eq!((token.as_str(), used), ("TOKEN-1", Some(KeyUsed::Previous)));
        assert!(
            rotating.unlocks(&row, b"TOKEN-1"),
            "hash under the previous key"
        );
        assert!(!rotating.unlocks(&row, b"TOKEN-2"));
        // New rows are sealed and hashed under the new key.
        let fresh = instance(
            rotating.seal("TOKEN-3").unwrap(),
            rotating.lookup(b"TOKEN-3"),
        );
        assert_eq!(
            rotating.open_which(&fresh.token).unwrap().1,
            Some(KeyUsed::Current)
        );
        // Once the previous key is dropped, only rows under the new key work.
        keys.replace(Keyring::new(new));
        assert!(!rotating.unlocks(&row, b"TOKEN-1"));
        assert!(rotating.open(&row.token).is_err());
        assert!(rotating.unlocks(&fresh, b"TOKEN-3"));
    }
}
