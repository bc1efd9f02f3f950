//! The keys a process seals and opens secrets with: the current master key, and during a key
//! rotation the key it replaces.
//!
//! Everything sealed is sealed under the current key. Opening tries the current key, then the
//! previous one, so rows written before a rotation (or by a writer that had not switched yet)
//! stay readable until they are re-sealed. [`SharedKeyring`] is the one handle every cipher of
//! the process reads: replacing its keyring switches them all at once, which is how a serving
//! process picks up a new key without a restart.

use std::sync::{Arc, RwLock};

use crate::master_key::{KeyFingerprint, MasterKey};

/// The current key and, while a rotation is unfinished, the previous one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyring {
    current: MasterKey,
    previous: Option<MasterKey>,
}

/// Which key of a [`Keyring`] opened a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUsed {
    Current,
    Previous,
}

impl Keyring {
    pub fn new(current: MasterKey) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// With `previous` accepted for reading. A previous key equal to the current one is dropped.
    pub fn with_previous(mut self, previous: Option<MasterKey>) -> Self {
        self.previous = previous.filter(|p| *p != self.current);
        self
    }

    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    pub fn previous(&self) -> Option<&MasterKey> {
        self.previous.as_ref()
    }

    /// The current key, then the previous one, each with which it is.
    pub fn keys(&self) -> impl Iterator<Item = (KeyUsed, &MasterKey)> {
        std::iter::once((KeyUsed::Current, &self.current))
            .chain(self.previous.iter().map(|k| (KeyUsed::Previous, k)))
    }

    /// Tries `open` with the current key, then the previous one: the first success and which
    /// key gave it, or the current key's error.
    pub fn open_with<T, E>(
        &self,
        mut open: impl FnMut(&MasterKey) -> Result<T, E>,
    ) -> Result<(T, KeyUsed), E> {
        let first = match open(&self.current) {
            Ok(v) => return Ok((v, KeyUsed::Current)),
            Err(e) => e,
        };
        match &self.previous {
            Some(previous) => open(previous)
                .map(|v| (v, KeyUsed::Previous))
                .or(Err(first)),
            None => Err(first),
        }
    }

    pub fn fingerprint(&self) -> KeyFingerprint {
        self.current.fingerprint()
    }
}

/// A [`Keyring`] shared by every cipher of a process and replaceable while they run. Cheap to
/// clone (an `Arc`); readers take a snapshot per operation.
#[derive(Clone, Debug)]
pub struct SharedKeyring(Arc<RwLock<Arc<Keyring>>>);

impl SharedKeyring {
    pub fn new(keyring: Keyring) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(keyring))))
    }

    /// The keyring as it is now.
    pub fn get(&self) -> Arc<Keyring> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Switches every holder to `keyring`: seals from now on use its current key.
    pub fn replace(&self, keyring: Keyring) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keyring);
    }
}

/// Equal when they hold the same keys now (two configurations parsed from the same variables).
impl PartialEq for SharedKeyring {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.get() == *other.get()
    }
}

impl From<&MasterKey> for SharedKeyring {
    fn from(key: &MasterKey) -> Self {
        Self::new(Keyring::new(key.clone()))
    }
}

impl From<Keyring> for SharedKeyring {
    fn from(keyring: Keyring) -> Self {
        Self::new(keyring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_with_current_then_previous() {
        let a = MasterKey::from_bytes([1; 32]);
        let b = MasterKey::from_bytes([2; 32]);
        let ring = Keyring::new(a.clone()).with_previous(Some(b.clone()));
        let which = |want: &MasterKey| {
            ring.open_with(|k| if k == want { Ok(()) } else { Err(()) })
                .map(|(_, used)| used)
        };
        assert_eq!(which(&a), Ok(KeyUsed::Current));
        assert_eq!(which(&b), Ok(KeyUsed::Previous));
        assert_eq!(which(&MasterKey::from_bytes([3; 32])), Err(()));
        // A previous key equal to the current one is no second key.
        assert!(
            Keyring::new(a.clone())
                .with_previous(Some(a))
                .previous()
                .is_none()
        );
    }

    #[test]
    fn replacing_switches_every_clone() {
        let shared = SharedKeyring::from(&MasterKey::from_bytes([1; 32]));
        let other = shared.clone();
        shared.replace(Keyring::new(MasterKey::from_bytes([2; 32])));
        assert!(*other.get().current() == MasterKey::from_bytes([2; 32]));
        assert_ne!(
            MasterKey::from_bytes([1; 32]).fingerprint(),
            other.get().fingerprint()
        );
    }
}
