//! Instance tokens at rest.
//!
//! An instance token is a credential: it unlocks every route of its instance. Evolution must be
//! able to show it again (`fetchInstances` returns `token`), so it cannot be stored as a one-way
//! hash. When `ZAPIN_MASTER_KEY` is set, tokens are stored encrypted with AES-256-GCM under that
//! key (`enc1:` + base64 of nonce ‖ ciphertext), so a leaked database alone does not leak them.
//! Without a master key they are stored as given, and the server logs a warning at startup.
//! Rows stored in plain text before a key was configured stay readable.
//!
//! Authenticating with an instance token therefore decrypts the stored token and compares it in
//! constant time; `fetchInstances` with an instance token does this for every instance (a few
//! microseconds each).

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::config::MasterKey;

const PREFIX: &str = "enc1:";
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
#[derive(Clone, Debug, Default)]
pub struct TokenCipher {
    key: Option<MasterKey>,
}

impl TokenCipher {
    pub fn new(key: Option<MasterKey>) -> Self {
        Self { key }
    }

    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    /// The form to store.
    pub fn seal(&self, token: &str) -> Result<String, TokenError> {
        let Some(key) = &self.key else {
            return Ok(token.to_owned());
        };
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| TokenError::Rng)?;
        let ct = Aes256Gcm::new(key.expose().into())
            .encrypt(&nonce.into(), token.as_bytes())
            .map_err(|_| TokenError::Encrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The token itself from its stored form.
    pub fn open(&self, stored: &str) -> Result<Zeroizing<String>, TokenError> {
        let Some(sealed) = stored.strip_prefix(PREFIX) else {
            return Ok(Zeroizing::new(stored.to_owned()));
        };
        let key = self.key.as_ref().ok_or(TokenError::Decrypt)?;
        let raw = STANDARD.decode(sealed).map_err(|_| TokenError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(TokenError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| TokenError::Decrypt)?;
        let pt = Aes256Gcm::new(key.expose().into())
            .decrypt(&nonce.into(), ct)
            .map_err(|_| TokenError::Decrypt)?;
        String::from_utf8(pt)
            .map(Zeroizing::new)
            .map_err(|_| TokenError::Decrypt)
    }

    /// Whether `candidate` is the token stored as `stored`, in constant time for equal lengths.
    /// A row that cannot be opened matches nothing.
    pub fn matches(&self, stored: &str, candidate: &[u8]) -> bool {
        match self.open(stored) {
            Ok(token) => !token.is_empty() && bool::from(token.as_bytes().ct_eq(candidate)),
            Err(_) => false,
        }
    }
}
