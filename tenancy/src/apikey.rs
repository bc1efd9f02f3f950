//! Tenant API keys: generated here, shown once, stored only as a keyed hash.
//!
//! A key is `zpk_` followed by 64 hex digits (256 random bits from the OS). The database keeps
//! its HMAC-SHA256 under a key the caller derives from the process master key ([`KeyHasher`]),
//! so a stolen table cannot be replayed and cannot even be brute-forced without the master key;
//! a plain SHA-256 would allow offline guessing of any low-entropy key an operator imported. The
//! first eight hex digits (`zpk_1a2b3c4d`) are kept in clear as the key's visible prefix so a
//! person can tell keys apart in listings. Lookups go by hash; the final comparison is constant
//! time. Every type holding key material redacts itself in `Debug`, so a key cannot reach a log
//! through `{:?}`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::error::TenancyError;

/// Every tenant key starts with this.
pub const KEY_PREFIX: &str = "zpk_";
/// Random bytes in a key.
const KEY_BYTES: usize = 32;
/// Hex digits of the random part kept in clear as the visible prefix.
const VISIBLE_HEX: usize = 8;

/// A freshly generated key: the only time the secret exists outside the caller's hands.
pub struct ApiKey(Zeroizing<String>);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({}…[redacted])", self.visible_prefix())
    }
}

impl ApiKey {
    /// A new random key.
    pub fn generate() -> Result<Self, TenancyError> {
        let mut raw = Zeroizing::new([0u8; KEY_BYTES]);
        getrandom::fill(raw.as_mut_slice()).map_err(|_| TenancyError::Rng)?;
        let mut text = Zeroizing::new(String::with_capacity(KEY_PREFIX.len() + 2 * KEY_BYTES));
        text.push_str(KEY_PREFIX);
        text.push_str(&hex::encode(raw.as_slice()));
        Ok(Self(text))
    }

    /// The key itself, to hand to the tenant once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `zpk_` and the first eight hex digits.
    pub fn visible_prefix(&self) -> String {
        visible_prefix(self.0.as_bytes())
    }
}

/// The visible prefix of a presented key (`zpk_1a2b3c4d`), or of whatever was presented.
pub fn visible_prefix(key: &[u8]) -> String {
    let end = (KEY_PREFIX.len() + VISIBLE_HEX).min(key.len());
    String::from_utf8_lossy(key.get(..end).unwrap_or_default()).into_owned()
}

/// Whether a presented `apikey` has the shape of a tenant key (cheap pre-check before hashing).
pub fn looks_like_tenant_key(key: &[u8]) -> bool {
    key.len() == KEY_PREFIX.len() + 2 * KEY_BYTES
        && key.starts_with(KEY_PREFIX.as_bytes())
        && key
            .get(KEY_PREFIX.len()..)
            .is_some_and(|rest| rest.iter().all(|b| b.is_ascii_hexdigit()))
}

/// The keyed hash of a key, as stored (hex) and as looked up.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

impl KeyHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &KeyHash) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

/// Hashes presented keys under a secret the caller derives from the master key (a dedicated
/// label, so this key serves nothing else).
#[derive(Clone)]
pub struct KeyHasher {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher([redacted])")
    }
}

impl KeyHasher {
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self { key }
    }

    pub fn hash(&self, presented: &[u8]) -> KeyHash {
        let mut out = [0u8; 32];
        // HMAC accepts keys of any length: this cannot fail.
        if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_slice()) {
            mac.update(presented);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        KeyHash(out)
    }
}

/// A stored key, as listings show it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub id: String,
    pub tenant_id: String,
    pub prefix: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl KeyInfo {
    /// Whether the key is past its expiry at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|at| now_ms >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(b: u8) -> KeyHasher {
        KeyHasher::new(Zeroizing::new([b; 32]))
    }

    #[test]
    fn keys_are_random_well_formed_and_redacted() {
        let a = ApiKey::generate().unwrap();
        let b = ApiKey::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert!(looks_like_tenant_key(a.expose().as_bytes()));
        assert_eq!(a.expose().len(), 68);
        assert_eq!(a.visible_prefix().len(), 12);
        assert!(a.expose().starts_with(&a.visible_prefix()));
        let debug = format!("{a:?} {:?} {:?}", hasher(1), hasher(1).hash(b"x"));
        assert!(!debug.contains(&a.expose()[12..]), "{debug}");
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn hashes_are_keyed_and_compared_exactly() {
        let key = ApiKey::generate().unwrap();
        let h1 = hasher(1).hash(key.expose().as_bytes());
        assert!(h1.matches(&hasher(1).hash(key.expose().as_bytes())));
        assert!(!h1.matches(&hasher(2).hash(key.expose().as_bytes())));
        assert!(!h1.matches(&hasher(1).hash(b"zpk_other")));
        assert_eq!(KeyHash::from_hex(&h1.to_hex()), Some(h1.clone()));
        assert!(!h1.to_hex().contains(&key.expose()[4..12]));
        assert_eq!(KeyHash::from_hex("zz"), None);
    }

    #[test]
    fn shape_check() {
        assert!(!looks_like_tenant_key(b""));
        assert!(!looks_like_tenant_key(b"zpk_"));
        assert!(!looks_like_tenant_key(b"BQYHJGJHJ"));
        let mut bad = format!("zpk_{}", "a".repeat(63)).into_bytes();
        assert!(!looks_like_tenant_key(&bad));
        bad.push(b'g');
        assert!(!looks_like_tenant_key(&bad));
        assert_eq!(visible_prefix(b"ab"), "ab");
        assert_eq!(visible_prefix("zpk_é".as_bytes()), "zpk_é");
    }
}
