//! Pairwise session state: X3DH setup and the Double Ratchet, plus the persisted record.
//!
//! The ratchet follows Signal's Double Ratchet specification in the shape libsignal v3 gives it
//! (wa-protocol.md §7.6): X3DH yields a root key and a first chain key; the initiator keeps that
//! chain as a receiving chain for the responder's signed prekey and immediately ratchets to a fresh
//! sending key, while the responder starts with its signed prekey as its sending ratchet key.
//! A new remote ratchet key triggers one receiving and one sending root step.
//!
//! Old receiving chains are kept (up to [`MAX_RECEIVER_CHAINS`]) with their chain keys, so late
//! messages from an earlier chain can still be derived without trusting `previous_counter`.

use std::collections::VecDeque;

use prost::Message as _;
use rand_core::CryptoRng;
use zeroize::Zeroize;

use crate::crypto::{KeyPair, PublicKey};
use crate::proto::signal as pb;

use super::SignalError;
use super::identity::{LocalIdentity, PreKeyBundle};
use super::kdf::{
    ChainKey, INFO_TEXT, MessageKeys, aes_cbc_decrypt, aes_cbc_encrypt, hkdf, ratchet_root, split64,
};
use super::wire::{PreKeySignalMessage, SignalMessage};

/// How far ahead of a chain a message counter may be (libsignal's and whatsapp-rust's 2000).
pub const MAX_FORWARD_JUMPS: u32 = 2000;
/// Skipped message keys kept per session state, across all its receiving chains; oldest go first.
pub const MAX_SKIPPED_KEYS: usize = 2000;
/// Receiving chains kept per session state; older chains (and their skipped keys) are dropped.
pub const MAX_RECEIVER_CHAINS: usize = 5;
/// Superseded session states kept for late messages; the oldest is dropped beyond this.
pub const MAX_ARCHIVED_STATES: usize = 40;

const RECORD_FORMAT: u32 = 1;

#[derive(Clone)]
pub(crate) struct ReceiverChain {
    ratchet_key: PublicKey,
    chain: ChainKey,
    /// `(counter, message-key seed)` of messages skipped on this chain, oldest first.
    skipped: VecDeque<(u32, [u8; 32])>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingPreKey {
    pre_key_id: Option<u32>,
    signed_pre_key_id: u32,
    base_key: PublicKey,
}

/// One session with a peer device: both identities, the root key and the chains.
#[derive(Clone)]
pub(crate) struct SessionState {
    local_identity: PublicKey,
    remote_identity: PublicKey,
    local_registration_id: u32,
    remote_registration_id: u32,
    root_key: [u8; 32],
    previous_counter: u32,
    sender_ratchet: KeyPair,
    sender_chain: ChainKey,
    receiver_chains: Vec<ReceiverChain>,
    /// Set on the initiator until the first reply: outgoing messages are then PreKeySignalMessages.
    pending: Option<PendingPreKey>,
    /// The initiator's X3DH base key; identifies the session when a PreKeySignalMessage repeats.
    base_key: PublicKey,
}

/// Secrets (root key, chain keys, skipped seeds) are never printed.
impl std::fmt::Debug for ReceiverChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverChain")
            .field("ratchet_key", &self.ratchet_key)
            .field("index", &self.chain.index)
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("remote_identity", &self.remote_identity)
            .field("remote_registration_id", &self.remote_registration_id)
            .field("base_key", &self.base_key)
            .field("sender_index", &self.sender_chain.index)
            .field("receiver_chains", &self.receiver_chains)
            .field("pending_pre_key", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for SessionState {
    fn drop(&mut self) {
        self.root_key.zeroize();
        for c in &mut self.receiver_chains {
            for (_, seed) in &mut c.skipped {
                seed.zeroize();
            }
        }
    }
}

fn x3dh_secret(parts: &[[u8; 32]]) -> ([u8; 32], [u8; 32]) {
    let mut ikm = Vec::with_capacity(32 * (parts.len() + 1));
    ikm.extend_from_slice(&[0xFF; 32]);
    for p in parts {
        ikm.extend_from_slice(p);
    }
    let okm: [u8; 64] = hkdf(&ikm, &[0u8; 32], INFO_TEXT);
    ikm.zeroize();
    split64(&okm)
}

impl SessionState {
    /// Initiator side of X3DH (Alice), from a verified bundle.
    pub(crate) fn initiate<R: CryptoRng + ?Sized>(
        ours: &LocalIdentity,
        bundle: &PreKeyBundle,
        rng: &mut R,
    ) -> Result<Self, SignalError> {
        bundle.verify()?;
        let base = KeyPair::generate(rng);
        let mut parts = vec![
            ours.key_pair.agree(&bundle.signed_pre_key),
            base.agree(&bundle.identity_key),
            base.agree(&bundle.signed_pre_key),
        ];
        if let Some((_, opk)) = &bundle.pre_key {
            parts.push(base.agree(opk));
        }
        let (root, chain) = x3dh_secret(&parts);
        parts.zeroize();
        let sending = KeyPair::generate(rng);
        let (root, sending_chain) = ratchet_root(&root, &sending.agree(&bundle.signed_pre_key));
        Ok(SessionState {
            local_identity: *ours.public(),
            remote_identity: bundle.identity_key,
            local_registration_id: ours.registration_id,
            remote_registration_id: bundle.registration_id,
            root_key: root,
            previous_counter: 0,
            sender_ratchet: sending,
            sender_chain: ChainKey {
                index: 0,
                key: sending_chain,
            },
            receiver_chains: vec![ReceiverChain {
                ratchet_key: bundle.signed_pre_key,
                chain: ChainKey {
                    index: 0,
                    key: chain,
                },
                skipped: VecDeque::new(),
            }],
            pending: Some(PendingPreKey {
                pre_key_id: bundle.pre_key.map(|(id, _)| id),
                signed_pre_key_id: bundle.signed_pre_key_id,
                base_key: *base.public(),
            }),
            base_key: *base.public(),
        })
    }

    /// Responder side of X3DH (Bob), from the initiator's PreKeySignalMessage.
    pub(crate) fn respond(
        ours: &LocalIdentity,
        signed_pre_key: &KeyPair,
        one_time_pre_key: Option<&KeyPair>,
        msg: &PreKeySignalMessage,
    ) -> Self {
        let mut parts = vec![
            signed_pre_key.agree(&msg.identity_key),
            ours.key_pair.agree(&msg.base_key),
            signed_pre_key.agree(&msg.base_key),
        ];
        if let Some(opk) = one_time_pre_key {
            parts.push(opk.agree(&msg.base_key));
        }
        let (root, chain) = x3dh_secret(&parts);
        parts.zeroize();
        SessionState {
            local_identity: *ours.public(),
            remote_identity: msg.identity_key,
            local_registration_id: ours.registration_id,
            remote_registration_id: msg.registration_id,
            root_key: root,
            previous_counter: 0,
            sender_ratchet: signed_pre_key.clone(),
            sender_chain: ChainKey {
                index: 0,
                key: chain,
            },
            receiver_chains: Vec::new(),
            pending: None,
            base_key: msg.base_key,
        }
    }

    pub(crate) fn remote_identity(&self) -> &PublicKey {
        &self.remote_identity
    }

    pub(crate) fn base_key(&self) -> &PublicKey {
        &self.base_key
    }

    /// Encrypts with the next sending message key and advances the sending chain.
    pub(crate) fn encrypt(
        &mut self,
        plaintext: &[u8],
    ) -> Result<super::CiphertextMessage, SignalError> {
        let keys = MessageKeys::from_seed(&self.sender_chain.seed());
        let ciphertext = aes_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
        let msg = SignalMessage::build(
            &keys.mac_key,
            *self.sender_ratchet.public(),
            self.sender_chain.index,
            self.previous_counter,
            ciphertext,
            &self.local_identity,
            &self.remote_identity,
        );
        self.sender_chain = self.sender_chain.next();
        Ok(match &self.pending {
            Some(p) => super::CiphertextMessage::PreKey(PreKeySignalMessage::build(
                self.local_registration_id,
                p.pre_key_id,
                p.signed_pre_key_id,
                p.base_key,
                self.local_identity,
                msg,
            )),
            None => super::CiphertextMessage::Whisper(msg),
        })
    }

    /// Decrypts and advances the receiving side. Mutates `self` even on error: callers work on a
    /// copy and keep it only on success.
    pub(crate) fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        msg: &SignalMessage,
        rng: &mut R,
    ) -> Result<Vec<u8>, SignalError> {
        let idx = match self
            .receiver_chains
            .iter()
            .position(|c| c.ratchet_key == msg.ratchet_key)
        {
            Some(i) => i,
            None => self.dh_ratchet(&msg.ratchet_key, rng),
        };
        let mut seed = self.take_message_seed(idx, msg.counter)?;
        let keys = MessageKeys::from_seed(&seed);
        seed.zeroize();
        if !msg.verify_mac(&keys.mac_key, &self.remote_identity, &self.local_identity) {
            return Err(SignalError::BadMac);
        }
        let plaintext = aes_cbc_decrypt(&keys.cipher_key, &keys.iv, &msg.ciphertext)?;
        // The peer has our session: stop sending PreKeySignalMessages.
        self.pending = None;
        Ok(plaintext)
    }

    /// One Double Ratchet step on a new remote ratchet key; returns the new receiving chain's index.
    fn dh_ratchet<R: CryptoRng + ?Sized>(&mut self, their: &PublicKey, rng: &mut R) -> usize {
        let (root, receiving) = ratchet_root(&self.root_key, &self.sender_ratchet.agree(their));
        self.receiver_chains.push(ReceiverChain {
            ratchet_key: *their,
            chain: ChainKey {
                index: 0,
                key: receiving,
            },
            skipped: VecDeque::new(),
        });
        if self.receiver_chains.len() > MAX_RECEIVER_CHAINS {
            self.receiver_chains.remove(0);
        }
        let next = KeyPair::generate(rng);
        let (root, sending) = ratchet_root(&root, &next.agree(their));
        // libsignal's convention: the counter of the last message sent on the previous chain.
        self.previous_counter = self.sender_chain.index.saturating_sub(1);
        self.root_key = root;
        self.sender_ratchet = next;
        self.sender_chain = ChainKey {
            index: 0,
            key: sending,
        };
        self.receiver_chains.len() - 1
    }

    fn take_message_seed(&mut self, idx: usize, counter: u32) -> Result<[u8; 32], SignalError> {
        let chain = self
            .receiver_chains
            .get_mut(idx)
            .ok_or(SignalError::NoSession)?;
        if counter < chain.chain.index {
            let pos = chain
                .skipped
                .iter()
                .position(|(i, _)| *i == counter)
                .ok_or(SignalError::DuplicateMessage(counter))?;
            return chain
                .skipped
                .remove(pos)
                .map(|(_, s)| s)
                .ok_or(SignalError::DuplicateMessage(counter));
        }
        if counter - chain.chain.index > MAX_FORWARD_JUMPS {
            return Err(SignalError::TooFarInFuture {
                counter,
                current: chain.chain.index,
            });
        }
        while chain.chain.index < counter {
            chain
                .skipped
                .push_back((chain.chain.index, chain.chain.seed()));
            chain.chain = chain.chain.next();
        }
        let seed = chain.chain.seed();
        chain.chain = chain.chain.next();
        self.trim_skipped();
        Ok(seed)
    }

    /// Enforces [`MAX_SKIPPED_KEYS`], dropping from the oldest chains first.
    fn trim_skipped(&mut self) {
        let mut total: usize = self.receiver_chains.iter().map(|c| c.skipped.len()).sum();
        for chain in &mut self.receiver_chains {
            while total > MAX_SKIPPED_KEYS && chain.skipped.pop_front().is_some() {
                total -= 1;
            }
        }
    }

    pub(crate) fn skipped_key_count(&self) -> usize {
        self.receiver_chains.iter().map(|c| c.skipped.len()).sum()
    }

    fn to_pb(&self) -> pb::SessionStateData {
        pb::SessionStateData {
            local_identity: Some(self.local_identity.serialize_djb().to_vec()),
            remote_identity: Some(self.remote_identity.serialize_djb().to_vec()),
            local_registration_id: Some(self.local_registration_id),
            remote_registration_id: Some(self.remote_registration_id),
            root_key: Some(self.root_key.to_vec()),
            previous_counter: Some(self.previous_counter),
            sender_ratchet_public: Some(self.sender_ratchet.public().serialize_djb().to_vec()),
            sender_ratchet_private: Some(self.sender_ratchet.private_bytes().to_vec()),
            sender_chain_key: Some(chain_to_pb(&self.sender_chain)),
            receiver_chains: self
                .receiver_chains
                .iter()
                .map(|c| pb::ReceiverChainData {
                    ratchet_key: Some(c.ratchet_key.serialize_djb().to_vec()),
                    chain_key: Some(chain_to_pb(&c.chain)),
                    skipped: c
                        .skipped
                        .iter()
                        .map(|(i, s)| pb::SkippedKeyData {
                            index: Some(*i),
                            seed: Some(s.to_vec()),
                        })
                        .collect(),
                })
                .collect(),
            pending_pre_key: self.pending.as_ref().map(|p| pb::PendingPreKeyData {
                pre_key_id: p.pre_key_id,
                signed_pre_key_id: Some(p.signed_pre_key_id),
                base_key: Some(p.base_key.serialize_djb().to_vec()),
            }),
            base_key: Some(self.base_key.serialize_djb().to_vec()),
        }
    }

    fn from_pb(s: pb::SessionStateData) -> Result<Self, SignalError> {
        let sender_private = bytes32(s.sender_ratchet_private.as_deref())?;
        let sender_ratchet = KeyPair::from_private(sender_private);
        if Some(sender_ratchet.public().serialize_djb().as_slice())
            != s.sender_ratchet_public.as_deref()
        {
            return Err(SignalError::CorruptRecord(
                "sender ratchet key pair mismatch",
            ));
        }
        if s.receiver_chains.len() > MAX_RECEIVER_CHAINS {
            return Err(SignalError::CorruptRecord("too many receiver chains"));
        }
        let mut receiver_chains = Vec::with_capacity(s.receiver_chains.len());
        let mut skipped_total = 0usize;
        for c in s.receiver_chains {
            skipped_total += c.skipped.len();
            if skipped_total > MAX_SKIPPED_KEYS {
                return Err(SignalError::CorruptRecord("too many skipped keys"));
            }
            let mut skipped = VecDeque::with_capacity(c.skipped.len());
            for k in c.skipped {
                let index = k.index.ok_or(SignalError::CorruptRecord("skipped index"))?;
                skipped.push_back((index, bytes32(k.seed.as_deref())?));
            }
            receiver_chains.push(ReceiverChain {
                ratchet_key: record_key(c.ratchet_key.as_deref())?,
                chain: chain_from_pb(c.chain_key)?,
                skipped,
            });
        }
        let pending = match s.pending_pre_key {
            None => None,
            Some(p) => Some(PendingPreKey {
                pre_key_id: p.pre_key_id,
                signed_pre_key_id: p
                    .signed_pre_key_id
                    .ok_or(SignalError::CorruptRecord("pending signed prekey id"))?,
                base_key: record_key(p.base_key.as_deref())?,
            }),
        };
        Ok(SessionState {
            local_identity: record_key(s.local_identity.as_deref())?,
            remote_identity: record_key(s.remote_identity.as_deref())?,
            local_registration_id: s.local_registration_id.unwrap_or(0),
            remote_registration_id: s.remote_registration_id.unwrap_or(0),
            root_key: bytes32(s.root_key.as_deref())?,
            previous_counter: s.previous_counter.unwrap_or(0),
            sender_ratchet,
            sender_chain: chain_from_pb(s.sender_chain_key)?,
            receiver_chains,
            pending,
            base_key: record_key(s.base_key.as_deref())?,
        })
    }
}

fn chain_to_pb(c: &ChainKey) -> pb::ChainKeyData {
    pb::ChainKeyData {
        index: Some(c.index),
        key: Some(c.key.to_vec()),
    }
}

fn chain_from_pb(c: Option<pb::ChainKeyData>) -> Result<ChainKey, SignalError> {
    let c = c.ok_or(SignalError::CorruptRecord("missing chain key"))?;
    Ok(ChainKey {
        index: c.index.ok_or(SignalError::CorruptRecord("chain index"))?,
        key: bytes32(c.key.as_deref())?,
    })
}

pub(crate) fn bytes32(b: Option<&[u8]>) -> Result<[u8; 32], SignalError> {
    b.and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(SignalError::CorruptRecord("expected 32 bytes"))
}

pub(crate) fn record_key(b: Option<&[u8]>) -> Result<PublicKey, SignalError> {
    match b {
        Some(b) if b.len() == 33 => {
            PublicKey::from_slice(b).map_err(|_| SignalError::CorruptRecord("bad public key"))
        }
        _ => Err(SignalError::CorruptRecord("expected a 33-byte public key")),
    }
}

/// Everything stored for one peer device (one Signal address): the session in use and superseded
/// ones kept for late messages. Opaque to the store; see [`SessionRecord::to_bytes`].
#[derive(Clone, Debug, Default)]
pub struct SessionRecord {
    pub(crate) current: Option<SessionState>,
    /// Newest first.
    pub(crate) previous: VecDeque<SessionState>,
}

impl SessionRecord {
    /// A record with no session (what to use when the store has nothing for the address).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there is a session to encrypt with.
    pub fn has_current_session(&self) -> bool {
        self.current.is_some()
    }

    /// The peer identity of the current session, to compare against a trusted identity.
    pub fn remote_identity(&self) -> Option<&PublicKey> {
        self.current.as_ref().map(|s| &s.remote_identity)
    }

    pub fn remote_registration_id(&self) -> Option<u32> {
        self.current.as_ref().map(|s| s.remote_registration_id)
    }

    pub fn local_registration_id(&self) -> Option<u32> {
        self.current.as_ref().map(|s| s.local_registration_id)
    }

    /// Number of superseded states kept for late messages.
    pub fn archived_count(&self) -> usize {
        self.previous.len()
    }

    /// Skipped message keys held by the current session (for tests and metrics).
    pub fn skipped_key_count(&self) -> usize {
        self.current
            .as_ref()
            .map_or(0, SessionState::skipped_key_count)
    }

    /// Moves the current session to the archive, e.g. before a retry forces a fresh session.
    pub fn archive_current(&mut self) {
        if let Some(s) = self.current.take() {
            self.previous.push_front(s);
            self.previous.truncate(MAX_ARCHIVED_STATES);
        }
    }

    /// Makes `state` current, archiving the one it replaces.
    pub(crate) fn promote_new(&mut self, state: SessionState) {
        self.archive_current();
        self.current = Some(state);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        pb::SessionRecordData {
            format: Some(RECORD_FORMAT),
            current: self.current.as_ref().map(SessionState::to_pb),
            previous: self.previous.iter().map(SessionState::to_pb).collect(),
        }
        .encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        let data = pb::SessionRecordData::decode(bytes)
            .map_err(|_| SignalError::CorruptRecord("not a session record protobuf"))?;
        match data.format {
            Some(RECORD_FORMAT) => {}
            Some(f) => return Err(SignalError::UnknownRecordFormat(f)),
            None => return Err(SignalError::CorruptRecord("missing format")),
        }
        if data.previous.len() > MAX_ARCHIVED_STATES {
            return Err(SignalError::CorruptRecord("too many archived states"));
        }
        let current = data.current.map(SessionState::from_pb).transpose()?;
        let previous = data
            .previous
            .into_iter()
            .map(SessionState::from_pb)
            .collect::<Result<VecDeque<_>, _>>()?;
        Ok(SessionRecord { current, previous })
    }
}

/// Used by the ciphers: decrypts on a copy of `state`; the copy comes back only on success.
pub(crate) fn try_decrypt<R: CryptoRng + ?Sized>(
    state: &SessionState,
    msg: &SignalMessage,
    rng: &mut R,
) -> Result<(SessionState, Vec<u8>), SignalError> {
    let mut copy = state.clone();
    let plaintext = copy.decrypt(msg, rng)?;
    Ok((copy, plaintext))
}

/// Used by the ciphers: encrypts on a copy.
pub(crate) fn try_encrypt(
    state: &SessionState,
    plaintext: &[u8],
) -> Result<(SessionState, super::CiphertextMessage), SignalError> {
    let mut copy = state.clone();
    let msg = copy.encrypt(plaintext)?;
    Ok((copy, msg))
}
