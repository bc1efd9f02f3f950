//! Signal operations glued to the durable store, in the one order that is crash safe.
//!
//! # Durability contract
//!
//! * **Sending.** [`encrypt_for`] and [`group_encrypt_for`] load the record, encrypt, and persist
//!   the advanced record; the ciphertext is returned only once that write is durable. A process
//!   killed at any point therefore either never saw the ciphertext (nothing left the process; the
//!   next encryption may reuse the counter, which is harmless because the earlier ciphertext was
//!   never sent) or saw it after the new record was committed (a restart continues from the next
//!   counter). No message key is ever used for two ciphertexts that leave the process. A crash
//!   after the write but before the send leaves a gap in the counters, which the peer's ratchet
//!   skips over.
//! * **Receiving.** [`decrypt_from`] and [`group_decrypt_from`] load, decrypt, and persist the
//!   new record together with the consumed one-time prekey and the sender's identity in one
//!   transaction; the plaintext is returned only once that is durable. Acknowledge the message
//!   (receipt/ack) only after they return. A crash before the commit leaves the record and the
//!   prekey as they were, so the redelivered message decrypts again. A crash after the commit
//!   but before the ack makes the server redeliver a message whose key is gone: that comes back
//!   as [`SessionError::Duplicate`], which the caller acks without surfacing the message again.
//!
//! Each operation is also available in two halves, `prepare_*` (load and compute, nothing
//! written) and [`Pending::commit`] (write, then hand out the result), so a caller can batch or
//! a test can stop between them. [`Pending`] never exposes its output before the commit.
//!
//! A send touches several records at once (every device of the recipient and of our own account,
//! sessions started from fetched bundles, our sender key in a group): [`SendBatch`] works on
//! copies of all of them in memory and writes them in ONE transaction, so one outgoing stanza
//! costs one durable commit (one fsync) however many devices it is encrypted for, and none of
//! its ciphertexts is handed out before that commit.
//!
//! Records are serialized by `zapin-protocol` and stored opaquely; callers serialize operations
//! on one address (the session actor does), since two concurrent load-modify-store cycles on the
//! same record would lose one update.

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use zapin_protocol::crypto::{KeyPair, PublicKey};
use zapin_protocol::signal::{
    self, CiphertextMessage, LocalIdentity, PreKeyBundle, PreKeySecrets, PreKeySignalMessage,
    SenderKeyDistributionMessage, SenderKeyMessage, SenderKeyRecord, SessionRecord, SignalError,
};
use zapin_signal_store::{
    Address, Batch, DeviceId, IdentityRecord, SenderKeyName, Store, StoreError, Trust,
};

/// Why a session operation failed. On any error nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The message's key was already used: it was decrypted and persisted before (a redelivery
    /// after a crash between commit and ack, or a replay). Ack it; do not surface it again.
    #[error("message counter {counter} was already decrypted")]
    Duplicate { counter: u32 },
    #[error("signal: {0}")]
    Signal(SignalError),
    #[error("no session with {0:?}")]
    NoSession(Address),
    #[error("unknown enc type {0:?}")]
    UnknownEncType(String),
}

impl From<SignalError> for SessionError {
    fn from(e: SignalError) -> Self {
        match e {
            SignalError::DuplicateMessage(counter) => SessionError::Duplicate { counter },
            e => SessionError::Signal(e),
        }
    }
}

/// The `type` attribute of a pairwise `<enc>` node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncType {
    /// `pkmsg`
    PreKey,
    /// `msg`
    Whisper,
}

impl EncType {
    pub fn parse(attr: &str) -> Result<Self, SessionError> {
        match attr {
            "pkmsg" => Ok(EncType::PreKey),
            "msg" => Ok(EncType::Whisper),
            other => Err(SessionError::UnknownEncType(other.to_owned())),
        }
    }
}

/// A computed result whose state change is not yet durable. Dropping it is the same as crashing
/// before the write: nothing happened.
pub struct Pending<T> {
    batch: Batch,
    output: T,
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl<T> Pending<T> {
    /// Hands out the writes and the result together, for a caller that must add its own writes
    /// to the same transaction (the receive inbox keeps the plaintext in the ratchet's commit).
    /// The caller takes over the contract: commit the batch before acting on the output.
    pub fn into_parts(self) -> (Batch, T) {
        (self.batch, self.output)
    }

    /// Writes the state change in one transaction and, only once it is durable, returns the
    /// output (the ciphertext to send, or the plaintext to surface and ack).
    pub async fn commit(self, store: &Store, device: &DeviceId) -> Result<T, SessionError> {
        store.apply(device, self.batch).await?;
        Ok(self.output)
    }
}

async fn load_session(
    store: &Store,
    device: &DeviceId,
    address: &Address,
) -> Result<SessionRecord, SessionError> {
    match store.load_session(device, address).await? {
        Some(bytes) => Ok(SessionRecord::from_bytes(&bytes)?),
        None => Ok(SessionRecord::new()),
    }
}

/// Starts a session with `address` from its fetched prekey bundle (durable on `Ok`). The previous
/// session, if any, is archived. Messages sent on it are `pkmsg` until the peer answers.
pub async fn initiate_with<R: CryptoRng + ?Sized>(
    store: &Store,
    device: &DeviceId,
    ours: &LocalIdentity,
    address: &Address,
    bundle: &PreKeyBundle,
    rng: &mut R,
) -> Result<(), SessionError> {
    let record = load_session(store, device, address).await?;
    let record = signal::initiate_session(&record, ours, bundle, rng)?;
    let batch = Batch::new()
        .store_session(address.clone(), record.to_bytes())
        .save_identity(
            address.clone(),
            IdentityRecord {
                key: bundle.identity_key.0,
                trust: Trust::Trusted,
            },
        );
    store.apply(device, batch).await?;
    Ok(())
}

/// Encrypts `padded` for `address` without writing anything; see [`encrypt_for`].
pub async fn prepare_encrypt(
    store: &Store,
    device: &DeviceId,
    address: &Address,
    padded: &[u8],
) -> Result<Pending<CiphertextMessage>, SessionError> {
    let record = load_session(store, device, address).await?;
    if !record.has_current_session() {
        return Err(SessionError::NoSession(address.clone()));
    }
    let (record, message) = signal::encrypt(&record, padded)?;
    Ok(Pending {
        batch: Batch::new().store_session(address.clone(), record.to_bytes()),
        output: message,
    })
}

/// Encrypts `padded` (already padded, wa-protocol.md §7.7) for `address`. The advanced record is
/// durable before the ciphertext is returned, so the ciphertext may be sent at once.
pub async fn encrypt_for(
    store: &Store,
    device: &DeviceId,
    address: &Address,
    padded: &[u8],
) -> Result<CiphertextMessage, SessionError> {
    prepare_encrypt(store, device, address, padded)
        .await?
        .commit(store, device)
        .await
}

/// A decrypted pairwise message.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Still padded (wa-protocol.md §7.7).
    pub plaintext: Vec<u8>,
    /// A `pkmsg` built a new session (the peer reinstalled, or this is the first contact).
    pub new_session: bool,
    /// The identity key the new session replaced, when it differs: the peer's security code
    /// changed. The new key is already stored as trusted (WhatsApp accepts changes).
    pub replaced_identity: Option<PublicKey>,
}

fn to_protocol_prekey(p: &zapin_signal_store::PreKey) -> signal::PreKey {
    signal::PreKey {
        id: p.id,
        key_pair: KeyPair::from_private(*p.key_pair.private.expose()),
    }
}

fn to_protocol_signed(p: &zapin_signal_store::SignedPreKey) -> signal::SignedPreKey {
    signal::SignedPreKey {
        id: p.id,
        key_pair: KeyPair::from_private(*p.key_pair.private.expose()),
        signature: p.signature,
    }
}

/// Decrypts without writing anything; see [`decrypt_from`].
pub async fn prepare_decrypt<R: CryptoRng + ?Sized>(
    store: &Store,
    device: &DeviceId,
    ours: &LocalIdentity,
    address: &Address,
    enc_type: EncType,
    body: &[u8],
    rng: &mut R,
) -> Result<Pending<Incoming>, SessionError> {
    let record = load_session(store, device, address).await?;
    match enc_type {
        EncType::Whisper => {
            if !record.has_current_session() && record.archived_count() == 0 {
                return Err(SessionError::NoSession(address.clone()));
            }
            let (record, plaintext) = signal::decrypt_message(&record, body, rng)?;
            Ok(Pending {
                batch: Batch::new().store_session(address.clone(), record.to_bytes()),
                output: Incoming {
                    plaintext,
                    new_session: false,
                    replaced_identity: None,
                },
            })
        }
        EncType::PreKey => {
            let message = PreKeySignalMessage::parse(body)?;
            let signed = store
                .load_signed_prekey(device, message.signed_pre_key_id)
                .await?
                .map(|k| to_protocol_signed(&k));
            let one_time = match message.pre_key_id {
                Some(id) => store
                    .load_prekey(device, id)
                    .await?
                    .map(|k| to_protocol_prekey(&k)),
                None => None,
            };
            let secrets = PreKeySecrets {
                signed_pre_key: signed.as_ref(),
                one_time_pre_key: one_time.as_ref(),
            };
            let out = signal::decrypt_prekey_message(&record, ours, &message, secrets, rng)?;
            let mut batch = Batch::new().store_session(address.clone(), out.record.to_bytes());
            if out.new_session {
                batch = batch.save_identity(
                    address.clone(),
                    IdentityRecord {
                        key: out.remote_identity.0,
                        trust: Trust::Trusted,
                    },
                );
            }
            // Removing an already-removed prekey is a no-op, so a pkmsg of a known session may
            // name it again safely.
            if let Some(id) = out.used_pre_key_id {
                batch = batch.remove_prekey(id);
            }
            Ok(Pending {
                batch,
                output: Incoming {
                    plaintext: out.plaintext,
                    new_session: out.new_session,
                    replaced_identity: out.replaced_identity,
                },
            })
        }
    }
}

/// Decrypts an `<enc type=pkmsg|msg>` body from `address`. The new record, the consumed one-time
/// prekey and the sender's identity are durable (one transaction) before the plaintext is
/// returned; ack the message only after this returns `Ok` or [`SessionError::Duplicate`].
pub async fn decrypt_from<R: CryptoRng + ?Sized>(
    store: &Store,
    device: &DeviceId,
    ours: &LocalIdentity,
    address: &Address,
    enc_type: EncType,
    body: &[u8],
    rng: &mut R,
) -> Result<Incoming, SessionError> {
    prepare_decrypt(store, device, ours, address, enc_type, body, rng)
        .await?
        .commit(store, device)
        .await
}

// ---- sender keys ----

async fn load_sender_key(
    store: &Store,
    device: &DeviceId,
    name: &SenderKeyName,
) -> Result<SenderKeyRecord, SessionError> {
    match store.load_sender_key(device, name).await? {
        Some(bytes) => Ok(SenderKeyRecord::from_bytes(&bytes)?),
        None => Ok(SenderKeyRecord::new()),
    }
}

/// Our distribution message for `name` (our own sender key in a group), creating the key if
/// needed. The key is durable before the message is returned, so the message may be sent.
pub async fn sender_key_distribution_for<R: CryptoRng + ?Sized>(
    store: &Store,
    device: &DeviceId,
    name: &SenderKeyName,
    rng: &mut R,
) -> Result<SenderKeyDistributionMessage, SessionError> {
    let before = load_sender_key(store, device, name).await?;
    let (after, skdm) = signal::create_sender_key_distribution(&before, rng);
    let bytes = after.to_bytes();
    if bytes != before.to_bytes() {
        store.store_sender_key(device, name, &bytes).await?;
    }
    Ok(skdm)
}

/// The write that stores a member's sender key from their distribution message, for a caller
/// that commits it with other writes; see [`process_distribution_from`].
pub async fn prepare_distribution(
    store: &Store,
    device: &DeviceId,
    name: &SenderKeyName,
    skdm: &SenderKeyDistributionMessage,
) -> Result<Batch, SessionError> {
    let record = load_sender_key(store, device, name).await?;
    let record = signal::process_sender_key_distribution(&record, skdm);
    Ok(Batch::new().store_sender_key(name.clone(), record.to_bytes()))
}

/// Stores a member's sender key from their distribution message (durable on `Ok`).
pub async fn process_distribution_from(
    store: &Store,
    device: &DeviceId,
    name: &SenderKeyName,
    skdm: &SenderKeyDistributionMessage,
) -> Result<(), SessionError> {
    let batch = prepare_distribution(store, device, name, skdm).await?;
    store.apply(device, batch).await?;
    Ok(())
}

/// Group-encrypts without writing anything; see [`group_encrypt_for`].
pub async fn prepare_group_encrypt<R: CryptoRng + ?Sized>(
    store: &Store,
    device: &DeviceId,
    name: &SenderKeyName,
    padded: &[u8],
    rng: &mut R,
) -> Result<Pending<SenderKeyMessage>, SessionError> {
    let record = load_sender_key(store, device, name).await?;
    let (record, message) = signal::group_encrypt(&record, padded, rng)?;
    Ok(Pending {
        batch: Batch::new().store_sender_key(name.clone(), record.to_bytes()),
        output: message,
    })
}

/// Encrypts `padded` with our sender key `name`; the advanced chain is durable before the
/// `skmsg` is returned.
pub async fn group_encrypt_for<R: CryptoRng + ?Sized>(
    store: &Store,
    device: &DeviceId,
    name: &SenderKeyName,
    padded: &[u8],
    rng: &mut R,
) -> Result<SenderKeyMessage, SessionError> {
    prepare_group_encrypt(store, device, name, padded, rng)
        .await?
        .commit(store, device)
        .await
}

/// Decrypts without writing anything; see [`group_decrypt_from`].
pub async fn prepare_group_decrypt(
    store: &Store,
    device: &DeviceId,
    name: &SenderKeyName,
    body: &[u8],
) -> Result<Pending<Vec<u8>>, SessionError> {
    let record = load_sender_key(store, device, name).await?;
    let (record, plaintext) = signal::group_decrypt(&record, body)?;
    Ok(Pending {
        batch: Batch::new().store_sender_key(name.clone(), record.to_bytes()),
        output: plaintext,
    })
}

/// Decrypts an `skmsg` from the member named in `name`; the advanced chain is durable before the
/// (still padded) plaintext is returned. Ack after `Ok` or [`SessionError::Duplicate`].
pub async fn group_decrypt_from(
    store: &Store,
    device: &DeviceId,
    name: &SenderKeyName,
    body: &[u8],
) -> Result<Vec<u8>, SessionError> {
    prepare_group_decrypt(store, device, name, body)
        .await?
        .commit(store, device)
        .await
}

/// The ratchet steps of one outgoing stanza, committed together.
///
/// Every operation works on an in-memory copy of the record it touches (loaded from the store on
/// first use), so later steps see earlier ones: a session started from a bundle is then encrypted
/// to, our sender key created for a distribution message is then used for the `skmsg`. Nothing is
/// written until [`SendBatch::commit`], which stores every changed record in one transaction and
/// only then hands out the ciphertexts. Dropping the batch is the same as crashing before the
/// commit: nothing happened and nothing was sent.
pub struct SendBatch {
    store: Store,
    device: DeviceId,
    sessions: BTreeMap<Address, (SessionRecord, bool)>,
    identities: BTreeMap<Address, IdentityRecord>,
    sender_keys: BTreeMap<SenderKeyName, (SenderKeyRecord, bool)>,
    pairwise: Vec<CiphertextMessage>,
    group: Option<SenderKeyMessage>,
}

/// What a committed [`SendBatch`] produced; durable, so it may be sent.
#[derive(Debug)]
pub struct Encrypted {
    /// One ciphertext per [`SendBatch::encrypt`] call, in call order.
    pub pairwise: Vec<CiphertextMessage>,
    /// The `skmsg` of a group send.
    pub group: Option<SenderKeyMessage>,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("device", &self.device)
            .field("sessions", &self.sessions.len())
            .field("sender_keys", &self.sender_keys.len())
            .finish_non_exhaustive()
    }
}

impl SendBatch {
    pub fn new(store: &Store, device: &DeviceId) -> Self {
        Self {
            store: store.clone(),
            device: device.clone(),
            sessions: BTreeMap::new(),
            identities: BTreeMap::new(),
            sender_keys: BTreeMap::new(),
            pairwise: Vec::new(),
            group: None,
        }
    }

    async fn session(
        &mut self,
        address: &Address,
    ) -> Result<&mut (SessionRecord, bool), SessionError> {
        if !self.sessions.contains_key(address) {
            let record = load_session(&self.store, &self.device, address).await?;
            self.sessions.insert(address.clone(), (record, false));
        }
        self.sessions
            .get_mut(address)
            .ok_or_else(|| SessionError::NoSession(address.clone()))
    }

    /// Whether `address` has a session to encrypt to, as this batch sees it.
    pub async fn has_session(&mut self, address: &Address) -> Result<bool, SessionError> {
        Ok(self.session(address).await?.0.has_current_session())
    }

    /// [`initiate_with`] inside the batch: the new session (and the peer's identity) is written
    /// with the rest.
    pub async fn initiate<R: CryptoRng + ?Sized>(
        &mut self,
        ours: &LocalIdentity,
        address: &Address,
        bundle: &PreKeyBundle,
        rng: &mut R,
    ) -> Result<(), SessionError> {
        let entry = self.session(address).await?;
        entry.0 = signal::initiate_session(&entry.0, ours, bundle, rng)?;
        entry.1 = true;
        self.identities.insert(
            address.clone(),
            IdentityRecord {
                key: bundle.identity_key.0,
                trust: Trust::Trusted,
            },
        );
        Ok(())
    }

    /// Encrypts `padded` for `address`; the ciphertext comes out of [`SendBatch::commit`], in
    /// [`Encrypted::pairwise`] at the position of this call.
    pub async fn encrypt(&mut self, address: &Address, padded: &[u8]) -> Result<(), SessionError> {
        let entry = self.session(address).await?;
        if !entry.0.has_current_session() {
            return Err(SessionError::NoSession(address.clone()));
        }
        let (record, message) = signal::encrypt(&entry.0, padded)?;
        *entry = (record, true);
        self.pairwise.push(message);
        Ok(())
    }

    async fn sender_key(
        &mut self,
        name: &SenderKeyName,
    ) -> Result<&mut (SenderKeyRecord, bool), SessionError> {
        if !self.sender_keys.contains_key(name) {
            let record = load_sender_key(&self.store, &self.device, name).await?;
            self.sender_keys.insert(name.clone(), (record, false));
        }
        self.sender_keys
            .get_mut(name)
            .ok_or(SessionError::Store(StoreError::Corrupt("sender key")))
    }

    /// [`sender_key_distribution_for`] inside the batch (a new key is written with the rest). The
    /// message is only ever sent encrypted by this batch's pairwise ciphertexts.
    pub async fn sender_key_distribution<R: CryptoRng + ?Sized>(
        &mut self,
        name: &SenderKeyName,
        rng: &mut R,
    ) -> Result<SenderKeyDistributionMessage, SessionError> {
        let entry = self.sender_key(name).await?;
        let before = entry.0.to_bytes();
        let (after, skdm) = signal::create_sender_key_distribution(&entry.0, rng);
        if after.to_bytes() != before {
            *entry = (after, true);
        }
        Ok(skdm)
    }

    /// Encrypts `padded` with our sender key `name` (the batch's one `skmsg`).
    pub async fn group_encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        name: &SenderKeyName,
        padded: &[u8],
        rng: &mut R,
    ) -> Result<(), SessionError> {
        let entry = self.sender_key(name).await?;
        let (record, message) = signal::group_encrypt(&entry.0, padded, rng)?;
        *entry = (record, true);
        self.group = Some(message);
        Ok(())
    }

    /// Writes every changed record in one transaction (see [`Store::apply`]) and, once that is
    /// durable, hands out the ciphertexts. A batch that changed nothing writes nothing.
    pub async fn commit(self) -> Result<Encrypted, SessionError> {
        let mut batch = Batch::new();
        for (address, (record, changed)) in self.sessions {
            if changed {
                batch = batch.store_session(address, record.to_bytes());
            }
        }
        for (address, identity) in self.identities {
            batch = batch.save_identity(address, identity);
        }
        for (name, (record, changed)) in self.sender_keys {
            if changed {
                batch = batch.store_sender_key(name, record.to_bytes());
            }
        }
        if !batch.is_empty() {
            self.store.apply(&self.device, batch).await?;
        }
        Ok(Encrypted {
            pairwise: self.pairwise,
            group: self.group,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_is_its_own_error() {
        assert!(matches!(
            SessionError::from(SignalError::DuplicateMessage(7)),
            SessionError::Duplicate { counter: 7 }
        ));
        assert!(matches!(
            SessionError::from(SignalError::BadMac),
            SessionError::Signal(SignalError::BadMac)
        ));
    }

    #[test]
    fn enc_type_parses_the_two_pairwise_types() {
        assert_eq!(EncType::parse("pkmsg").unwrap(), EncType::PreKey);
        assert_eq!(EncType::parse("msg").unwrap(), EncType::Whisper);
        assert!(matches!(
            EncType::parse("skmsg"),
            Err(SessionError::UnknownEncType(_))
        ));
    }
}
