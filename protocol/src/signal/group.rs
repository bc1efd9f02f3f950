//! Sender keys for groups and status (Signal's Sender Keys scheme as WhatsApp uses it,
//! wa-protocol.md §7.6).
//!
//! One [`SenderKeyRecord`] exists per sender-key name (group JID, sender address). The sender's
//! own record holds the signing private key; members' records hold only the public half, received
//! in a [`SenderKeyDistributionMessage`] over a pairwise session. Like the pairwise API, every
//! function returns a new record and leaves its input alone.

use std::collections::VecDeque;

use prost::Message as _;
use rand_core::CryptoRng;
use zeroize::Zeroize;

use crate::crypto::{KeyPair, PublicKey};
use crate::proto::signal as pb;

use super::SignalError;
use super::kdf::{ChainKey, aes_cbc_decrypt, aes_cbc_encrypt, group_message_keys};
use super::session::{MAX_FORWARD_JUMPS, bytes32, record_key};
use super::wire::{SenderKeyDistributionMessage, SenderKeyMessage};

/// Sender-key states kept per name; an older key id is still accepted for late messages.
pub const MAX_SENDER_KEY_STATES: usize = 5;
/// Skipped group message keys kept per state.
pub const MAX_SENDER_SKIPPED_KEYS: usize = 2000;

const RECORD_FORMAT: u32 = 1;

#[derive(Clone)]
struct SenderKeyState {
    key_id: u32,
    /// `index` is the iteration whose message key `key` produces next.
    chain: ChainKey,
    signing_public: PublicKey,
    signing_private: Option<KeyPair>,
    skipped: VecDeque<(u32, [u8; 32])>,
}

/// Chain keys and skipped seeds are never printed.
impl std::fmt::Debug for SenderKeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyState")
            .field("key_id", &self.key_id)
            .field("iteration", &self.chain.index)
            .field("signing_public", &self.signing_public)
            .field("own", &self.signing_private.is_some())
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

impl Drop for SenderKeyState {
    fn drop(&mut self) {
        for (_, s) in &mut self.skipped {
            s.zeroize();
        }
    }
}

impl SenderKeyState {
    fn take_seed(&mut self, iteration: u32) -> Result<[u8; 32], SignalError> {
        if iteration < self.chain.index {
            let pos = self
                .skipped
                .iter()
                .position(|(i, _)| *i == iteration)
                .ok_or(SignalError::DuplicateMessage(iteration))?;
            return self
                .skipped
                .remove(pos)
                .map(|(_, s)| s)
                .ok_or(SignalError::DuplicateMessage(iteration));
        }
        if iteration - self.chain.index > MAX_FORWARD_JUMPS {
            return Err(SignalError::TooFarInFuture {
                counter: iteration,
                current: self.chain.index,
            });
        }
        while self.chain.index < iteration {
            self.skipped
                .push_back((self.chain.index, self.chain.seed()));
            self.chain = self.chain.next();
        }
        while self.skipped.len() > MAX_SENDER_SKIPPED_KEYS {
            self.skipped.pop_front();
        }
        let seed = self.chain.seed();
        self.chain = self.chain.next();
        Ok(seed)
    }
}

/// All sender-key states for one sender-key name, newest first.
#[derive(Clone, Debug, Default)]
pub struct SenderKeyRecord {
    states: VecDeque<SenderKeyState>,
}

impl SenderKeyRecord {
    /// An empty record (nothing stored yet, or a deliberate rotation of our own key).
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Key id of the newest state (what our own distribution message carries).
    pub fn current_key_id(&self) -> Option<u32> {
        self.states.front().map(|s| s.key_id)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        pb::SenderKeyRecordData {
            format: Some(RECORD_FORMAT),
            states: self
                .states
                .iter()
                .map(|s| pb::SenderKeyStateData {
                    id: Some(s.key_id),
                    chain_key: Some(pb::ChainKeyData {
                        index: Some(s.chain.index),
                        key: Some(s.chain.key.to_vec()),
                    }),
                    signing_public: Some(s.signing_public.serialize_djb().to_vec()),
                    signing_private: s
                        .signing_private
                        .as_ref()
                        .map(|k| k.private_bytes().to_vec()),
                    skipped: s
                        .skipped
                        .iter()
                        .map(|(i, seed)| pb::SkippedKeyData {
                            index: Some(*i),
                            seed: Some(seed.to_vec()),
                        })
                        .collect(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignalError> {
        let data = pb::SenderKeyRecordData::decode(bytes)
            .map_err(|_| SignalError::CorruptRecord("not a sender key record protobuf"))?;
        match data.format {
            Some(RECORD_FORMAT) => {}
            Some(f) => return Err(SignalError::UnknownRecordFormat(f)),
            None => return Err(SignalError::CorruptRecord("missing format")),
        }
        if data.states.len() > MAX_SENDER_KEY_STATES {
            return Err(SignalError::CorruptRecord("too many sender key states"));
        }
        let mut states = VecDeque::with_capacity(data.states.len());
        for s in data.states {
            if s.skipped.len() > MAX_SENDER_SKIPPED_KEYS {
                return Err(SignalError::CorruptRecord("too many skipped keys"));
            }
            let chain = s
                .chain_key
                .ok_or(SignalError::CorruptRecord("missing chain key"))?;
            let signing_public = record_key(s.signing_public.as_deref())?;
            let signing_private = match s.signing_private {
                None => None,
                Some(p) => {
                    let kp = KeyPair::from_private(bytes32(Some(&p))?);
                    if *kp.public() != signing_public {
                        return Err(SignalError::CorruptRecord("signing key pair mismatch"));
                    }
                    Some(kp)
                }
            };
            let mut skipped = VecDeque::with_capacity(s.skipped.len());
            for k in s.skipped {
                let index = k.index.ok_or(SignalError::CorruptRecord("skipped index"))?;
                skipped.push_back((index, bytes32(k.seed.as_deref())?));
            }
            states.push_back(SenderKeyState {
                key_id: s.id.ok_or(SignalError::CorruptRecord("sender key id"))?,
                chain: ChainKey {
                    index: chain
                        .index
                        .ok_or(SignalError::CorruptRecord("chain index"))?,
                    key: bytes32(chain.key.as_deref())?,
                },
                signing_public,
                signing_private,
                skipped,
            });
        }
        Ok(SenderKeyRecord { states })
    }

    fn push_front(&mut self, state: SenderKeyState) {
        self.states.push_front(state);
        self.states.truncate(MAX_SENDER_KEY_STATES);
    }
}

/// Our distribution message for this sender-key name, creating our sender key (random 31-bit id,
/// random chain key, fresh signing key) if the record has none. The record changes only when a
/// key was created; send the message to every member device that lacks it.
pub fn create_sender_key_distribution<R: CryptoRng + ?Sized>(
    record: &SenderKeyRecord,
    rng: &mut R,
) -> (SenderKeyRecord, SenderKeyDistributionMessage) {
    let mut out = record.clone();
    if out
        .states
        .front()
        .is_none_or(|s| s.signing_private.is_none())
    {
        let mut id = [0u8; 4];
        rng.fill_bytes(&mut id);
        let mut chain = [0u8; 32];
        rng.fill_bytes(&mut chain);
        let signing = KeyPair::generate(rng);
        out.push_front(SenderKeyState {
            key_id: u32::from_be_bytes(id) & 0x7fff_ffff,
            chain: ChainKey {
                index: 0,
                key: chain,
            },
            signing_public: *signing.public(),
            signing_private: Some(signing),
            skipped: VecDeque::new(),
        });
        chain.zeroize();
    }
    let skdm = match out.states.front() {
        Some(s) => SenderKeyDistributionMessage::build(
            s.key_id,
            s.chain.index,
            s.chain.key,
            s.signing_public,
        ),
        // Just pushed above.
        None => SenderKeyDistributionMessage::build(0, 0, [0; 32], PublicKey([0; 32])),
    };
    (out, skdm)
}

/// Stores a member's sender key from their distribution message. A message for a key id we
/// already hold with the same signing key is ignored (clients re-send it; resetting the chain
/// would re-open consumed message keys).
pub fn process_sender_key_distribution(
    record: &SenderKeyRecord,
    skdm: &SenderKeyDistributionMessage,
) -> SenderKeyRecord {
    let mut out = record.clone();
    let known = out
        .states
        .iter()
        .any(|s| s.key_id == skdm.key_id && s.signing_public == skdm.signing_key);
    if !known {
        out.states.retain(|s| s.key_id != skdm.key_id);
        out.push_front(SenderKeyState {
            key_id: skdm.key_id,
            chain: ChainKey {
                index: skdm.iteration,
                key: skdm.chain_key,
            },
            signing_public: skdm.signing_key,
            signing_private: None,
            skipped: VecDeque::new(),
        });
    }
    out
}

/// Encrypts `plaintext` (already padded) with our sender key and signs it.
pub fn group_encrypt<R: CryptoRng + ?Sized>(
    record: &SenderKeyRecord,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<(SenderKeyRecord, SenderKeyMessage), SignalError> {
    let mut out = record.clone();
    let state = out.states.front_mut().ok_or(SignalError::NoOwnSenderKey)?;
    let signing = state
        .signing_private
        .clone()
        .ok_or(SignalError::NoOwnSenderKey)?;
    let iteration = state.chain.index;
    let seed = state.take_seed(iteration)?;
    let (iv, key) = group_message_keys(&seed);
    let ciphertext = aes_cbc_encrypt(&key, &iv, plaintext);
    let mut random = [0u8; 64];
    rng.fill_bytes(&mut random);
    let msg = SenderKeyMessage::build(&signing, state.key_id, iteration, ciphertext, &random);
    Ok((out, msg))
}

/// Verifies and decrypts an `enc type=skmsg` body.
pub fn group_decrypt(
    record: &SenderKeyRecord,
    ciphertext: &[u8],
) -> Result<(SenderKeyRecord, Vec<u8>), SignalError> {
    let msg = SenderKeyMessage::parse(ciphertext)?;
    let mut out = record.clone();
    let state = out
        .states
        .iter_mut()
        .find(|s| s.key_id == msg.key_id)
        .ok_or(SignalError::NoSenderKey(msg.key_id))?;
    if !msg.verify_signature(&state.signing_public) {
        return Err(SignalError::BadSignature);
    }
    let mut seed = state.take_seed(msg.iteration)?;
    let (iv, mut key) = group_message_keys(&seed);
    seed.zeroize();
    let plaintext = aes_cbc_decrypt(&key, &iv, &msg.ciphertext);
    key.zeroize();
    Ok((out, plaintext?))
}
