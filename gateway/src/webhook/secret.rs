//! Webhook signing secrets at rest.
//!
//! A webhook's `secret` (zapin extension) signs its deliveries, so whoever reads it can forge
//! them. It is stored AES-256-GCM encrypted (`enc1:` + base64 of nonce ‖ ciphertext) under a key
//! derived from the master key, with the owning instance id as associated data: a ciphertext
//! copied to another instance's row does not open. The outbox copies the sealed form as is
//! (same instance), and only the dispatcher opens it, to sign.
//!
//! Without a key (library use and tests) secrets are stored as given. Values without the
//! `enc1:` prefix are read as plain text: rows of earlier versions, which
//! [`crate::db::Db::seal_at_rest`] seals on start.
//!
//! Like instance tokens, secrets follow the process's [`SharedKeyring`]: sealed under the current
//! key, opened under the current or (during a rotation) the previous one.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use zapin_signal_store::{KeyUsed, SharedKeyring};

use crate::config::MasterKey;

const PREFIX: &str = "enc1:";
const NONCE_LEN: usize = 12;
const KEY_LABEL: &[u8] = b"zapin/webhook-secret/v1";
const AAD_LABEL: &[u8] = b"zapin/webhook-secret\0";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the operating system RNG failed")]
    Rng,
    #[error("encrypting a webhook secret failed")]
    Encrypt,
    /// Wrong master key, another instance's ciphertext, or a damaged row.
    #[error("a stored webhook secret cannot be decrypted (was ZAPIN_MASTER_KEY changed?)")]
    Decrypt,
}

/// Seals and opens webhook secrets. `None` key: plain text.
#[derive(Clone, Default)]
pub struct SecretCipher {
    keys: Option<SharedKeyring>,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCipher")
            .field("encrypts", &self.keys.is_some())
            .finish_non_exhaustive()
    }
}

fn aad(instance_id: &str) -> Vec<u8> {
    [AAD_LABEL, instance_id.as_bytes()].concat()
}

fn cipher(key: &MasterKey) -> Aes256Gcm {
    Aes256Gcm::new((&*key.derive(KEY_LABEL)).into())
}

impl SecretCipher {
    /// A cipher with one fixed key (`None`: plain text).
    pub fn new(key: Option<&MasterKey>) -> Self {
        Self {
            keys: key.map(SharedKeyring::from),
        }
    }

    /// A cipher that follows the process's keyring (see the module doc).
    pub fn with_keyring(keys: Option<SharedKeyring>) -> Self {
        Self { keys }
    }

    /// Whether `stored` is in sealed form (as opposed to plain text from an earlier version).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// The form to store for `instance_id`'s webhook.
    pub fn seal(&self, instance_id: &str, secret: &str) -> Result<String, SecretError> {
        let Some(keys) = &self.keys else {
            return Ok(secret.to_owned());
        };
        let keys = keys.get();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SecretError::Rng)?;
        let ct = cipher(keys.current())
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad(instance_id),
                },
            )
            .map_err(|_| SecretError::Encrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The secret itself from its stored form.
    pub fn open(&self, instance_id: &str, stored: &str) -> Result<Zeroizing<String>, SecretError> {
        self.open_which(instance_id, stored)
            .map(|(secret, _)| secret)
    }

    /// [`SecretCipher::open`], also telling which key opened it (`None`: plain text).
    pub fn open_which(
        &self,
        instance_id: &str,
        stored: &str,
    ) -> Result<(Zeroizing<String>, Option<KeyUsed>), SecretError> {
        let Some(sealed) = stored.strip_prefix(PREFIX) else {
            return Ok((Zeroizing::new(stored.to_owned()), None));
        };
        let keys = self.keys.as_ref().ok_or(SecretError::Decrypt)?.get();
        let raw = STANDARD.decode(sealed).map_err(|_| SecretError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Decrypt)?;
        let aad = aad(instance_id);
        let (pt, used) = keys.open_with(|key| {
            cipher(key)
                .decrypt(&nonce.into(), Payload { msg: ct, aad: &aad })
                .map(Zeroizing::new)
                .map_err(|_| SecretError::Decrypt)
        })?;
        std::str::from_utf8(&pt)
            .map(|s| (Zeroizing::new(s.to_owned()), Some(used)))
            .map_err(|_| SecretError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn keyed(byte: u8) -> SecretCipher {
        SecretCipher::new(Some(&MasterKey::from_bytes([byte; 32])))
    }

    #[test]
    fn sealed_secrets_open_only_for_their_instance_and_key() {
        let c = keyed(1);
        let sealed = c.seal("inst-a", "s3cr3t").unwrap();
        assert!(SecretCipher::is_sealed(&sealed));
        assert!(!sealed.contains("s3cr3t"));
        assert_ne!(sealed, c.seal("inst-a", "s3cr3t").unwrap(), "fresh nonce");
        assert_eq!(c.open("inst-a", &sealed).unwrap().as_str(), "s3cr3t");
        assert!(c.open("inst-b", &sealed).is_err(), "bound to its instance");
        assert!(
            keyed(2).open("inst-a", &sealed).is_err(),
            "bound to its key"
        );
        assert!(SecretCipher::new(None).open("inst-a", &sealed).is_err());
        for bad in ["enc1:", "enc1:!!", "enc1:AAAA", &sealed[..sealed.len() - 2]] {
            assert!(c.open("inst-a", bad).is_err(), "{bad}");
        }
        // Plain text from earlier versions reads as is.
        assert_eq!(c.open("inst-a", "legacy").unwrap().as_str(), "legacy");
        assert_eq!(SecretCipher::new(None).seal("i", "x").unwrap(), "x");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
