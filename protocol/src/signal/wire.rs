//! The four Signal wire messages as WhatsApp's libsignal v3 frames them (wa-protocol.md §7.6):
//! a version byte, a protobuf body, and a truncated MAC or a signature.
//!
//! Parsing checks framing, version and field presence only; MACs and signatures are checked by the
//! ciphers, which hold the keys. Every parser is total: bad bytes give a [`SignalError`].

use prost::Message as _;

use crate::crypto::PublicKey;
use crate::crypto::xeddsa;
use crate::proto::signal as pb;

use super::SignalError;
use super::kdf::hmac_sha256;

/// `(3 << 4) | 3`: message version 3, and the highest version the sender understands, 3.
pub const VERSION_BYTE: u8 = 0x33;
/// Length of the truncated HMAC-SHA256 after a [`SignalMessage`].
pub const MAC_LEN: usize = 8;
/// Length of the XEdDSA signature after a [`SenderKeyMessage`].
pub const SIGNATURE_LEN: usize = 64;

fn check_version(bytes: &[u8]) -> Result<(), SignalError> {
    let v = *bytes.first().ok_or(SignalError::Truncated)?;
    // High nibble is this message's version; only v3 exists on WhatsApp (v2 had other KDFs).
    if v >> 4 != 3 {
        return Err(SignalError::BadVersion(v));
    }
    Ok(())
}

fn key33(field: Option<&Vec<u8>>, name: &'static str) -> Result<PublicKey, SignalError> {
    let bytes = field.ok_or(SignalError::MissingField(name))?;
    if bytes.len() != 33 {
        return Err(SignalError::BadLength(name));
    }
    Ok(PublicKey::from_slice(bytes)?)
}

/// A ratchet message (`enc type=msg`): `0x33 ‖ protobuf ‖ MAC(8)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalMessage {
    pub ratchet_key: PublicKey,
    pub counter: u32,
    pub previous_counter: u32,
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SignalMessage {
    pub fn parse(bytes: &[u8]) -> Result<Self, SignalError> {
        check_version(bytes)?;
        if bytes.len() < 1 + MAC_LEN {
            return Err(SignalError::Truncated);
        }
        let body = &bytes[1..bytes.len() - MAC_LEN];
        let m = pb::SignalMessage::decode(body)
            .map_err(|_| SignalError::BadProtobuf("SignalMessage"))?;
        Ok(SignalMessage {
            ratchet_key: key33(m.ratchet_key.as_ref(), "SignalMessage.ratchet_key")?,
            counter: m
                .counter
                .ok_or(SignalError::MissingField("SignalMessage.counter"))?,
            previous_counter: m.previous_counter.unwrap_or(0),
            ciphertext: m
                .ciphertext
                .ok_or(SignalError::MissingField("SignalMessage.ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    pub(crate) fn build(
        mac_key: &[u8; 32],
        ratchet_key: PublicKey,
        counter: u32,
        previous_counter: u32,
        ciphertext: Vec<u8>,
        sender_identity: &PublicKey,
        receiver_identity: &PublicKey,
    ) -> Self {
        let body = pb::SignalMessage {
            ratchet_key: Some(ratchet_key.serialize_djb().to_vec()),
            counter: Some(counter),
            previous_counter: Some(previous_counter),
            ciphertext: Some(ciphertext.clone()),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len() + MAC_LEN);
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&body);
        let mac = compute_mac(mac_key, sender_identity, receiver_identity, &serialized);
        serialized.extend_from_slice(&mac);
        SignalMessage {
            ratchet_key,
            counter,
            previous_counter,
            ciphertext,
            serialized,
        }
    }

    /// Constant-time check of the trailing MAC.
    pub(crate) fn verify_mac(
        &self,
        mac_key: &[u8; 32],
        sender_identity: &PublicKey,
        receiver_identity: &PublicKey,
    ) -> bool {
        let split = self.serialized.len() - MAC_LEN;
        let (signed, mac) = self.serialized.split_at(split);
        let want = compute_mac(mac_key, sender_identity, receiver_identity, signed);
        subtle::ConstantTimeEq::ct_eq(&want[..], mac).into()
    }

    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// First 8 bytes of HMAC-SHA256(macKey, senderId(33) ‖ receiverId(33) ‖ version ‖ protobuf).
fn compute_mac(
    mac_key: &[u8; 32],
    sender: &PublicKey,
    receiver: &PublicKey,
    version_and_body: &[u8],
) -> [u8; MAC_LEN] {
    let full = hmac_sha256(
        mac_key,
        &[
            &sender.serialize_djb(),
            &receiver.serialize_djb(),
            version_and_body,
        ],
    );
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&full[..MAC_LEN]);
    mac
}

/// A session-opening message (`enc type=pkmsg`): `0x33 ‖ protobuf`, wrapping a [`SignalMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    pub registration_id: u32,
    pub pre_key_id: Option<u32>,
    pub signed_pre_key_id: u32,
    pub base_key: PublicKey,
    pub identity_key: PublicKey,
    pub message: SignalMessage,
    serialized: Vec<u8>,
}

impl PreKeySignalMessage {
    pub fn parse(bytes: &[u8]) -> Result<Self, SignalError> {
        check_version(bytes)?;
        let m = pb::PreKeySignalMessage::decode(&bytes[1..])
            .map_err(|_| SignalError::BadProtobuf("PreKeySignalMessage"))?;
        let inner = m
            .message
            .as_ref()
            .ok_or(SignalError::MissingField("PreKeySignalMessage.message"))?;
        Ok(PreKeySignalMessage {
            registration_id: m.registration_id.unwrap_or(0),
            pre_key_id: m.pre_key_id,
            signed_pre_key_id: m.signed_pre_key_id.ok_or(SignalError::MissingField(
                "PreKeySignalMessage.signed_pre_key_id",
            ))?,
            base_key: key33(m.base_key.as_ref(), "PreKeySignalMessage.base_key")?,
            identity_key: key33(m.identity_key.as_ref(), "PreKeySignalMessage.identity_key")?,
            message: SignalMessage::parse(inner)?,
            serialized: bytes.to_vec(),
        })
    }

    pub(crate) fn build(
        registration_id: u32,
        pre_key_id: Option<u32>,
        signed_pre_key_id: u32,
        base_key: PublicKey,
        identity_key: PublicKey,
        message: SignalMessage,
    ) -> Self {
        let body = pb::PreKeySignalMessage {
            pre_key_id,
            base_key: Some(base_key.serialize_djb().to_vec()),
            identity_key: Some(identity_key.serialize_djb().to_vec()),
            message: Some(message.serialized.clone()),
            registration_id: Some(registration_id),
            signed_pre_key_id: Some(signed_pre_key_id),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len());
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&body);
        PreKeySignalMessage {
            registration_id,
            pre_key_id,
            signed_pre_key_id,
            base_key,
            identity_key,
            message,
            serialized,
        }
    }

    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// A group message (`enc type=skmsg`): `0x33 ‖ protobuf ‖ XEdDSA signature(64)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderKeyMessage {
    pub key_id: u32,
    pub iteration: u32,
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SenderKeyMessage {
    pub fn parse(bytes: &[u8]) -> Result<Self, SignalError> {
        check_version(bytes)?;
        if bytes.len() < 1 + SIGNATURE_LEN {
            return Err(SignalError::Truncated);
        }
        let body = &bytes[1..bytes.len() - SIGNATURE_LEN];
        let m = pb::SenderKeyMessage::decode(body)
            .map_err(|_| SignalError::BadProtobuf("SenderKeyMessage"))?;
        Ok(SenderKeyMessage {
            key_id: m
                .id
                .ok_or(SignalError::MissingField("SenderKeyMessage.id"))?,
            iteration: m
                .iteration
                .ok_or(SignalError::MissingField("SenderKeyMessage.iteration"))?,
            ciphertext: m
                .ciphertext
                .ok_or(SignalError::MissingField("SenderKeyMessage.ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    pub(crate) fn build(
        signing_key: &crate::crypto::KeyPair,
        key_id: u32,
        iteration: u32,
        ciphertext: Vec<u8>,
        random: &[u8; 64],
    ) -> Self {
        let body = pb::SenderKeyMessage {
            id: Some(key_id),
            iteration: Some(iteration),
            ciphertext: Some(ciphertext.clone()),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len() + SIGNATURE_LEN);
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&body);
        let sig = xeddsa::sign(signing_key, &serialized, random);
        serialized.extend_from_slice(&sig);
        SenderKeyMessage {
            key_id,
            iteration,
            ciphertext,
            serialized,
        }
    }

    pub(crate) fn verify_signature(&self, signing_key: &PublicKey) -> bool {
        let (signed, sig) = self
            .serialized
            .split_at(self.serialized.len() - SIGNATURE_LEN);
        xeddsa::verify_slice(signing_key, signed, sig)
    }

    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// Hands a sender key to a group member: `0x33 ‖ protobuf`. Sent inside a pairwise message.
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKeyDistributionMessage {
    pub key_id: u32,
    pub iteration: u32,
    pub chain_key: [u8; 32],
    pub signing_key: PublicKey,
    serialized: Vec<u8>,
}

/// The chain key is a secret: never printed.
impl std::fmt::Debug for SenderKeyDistributionMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyDistributionMessage")
            .field("key_id", &self.key_id)
            .field("iteration", &self.iteration)
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

impl SenderKeyDistributionMessage {
    pub fn parse(bytes: &[u8]) -> Result<Self, SignalError> {
        check_version(bytes)?;
        let m = pb::SenderKeyDistributionMessage::decode(&bytes[1..])
            .map_err(|_| SignalError::BadProtobuf("SenderKeyDistributionMessage"))?;
        let chain = m.chain_key.ok_or(SignalError::MissingField(
            "SenderKeyDistributionMessage.chain_key",
        ))?;
        let chain_key: [u8; 32] = chain
            .as_slice()
            .try_into()
            .map_err(|_| SignalError::BadLength("SenderKeyDistributionMessage.chain_key"))?;
        Ok(SenderKeyDistributionMessage {
            key_id: m
                .id
                .ok_or(SignalError::MissingField("SenderKeyDistributionMessage.id"))?,
            iteration: m.iteration.ok_or(SignalError::MissingField(
                "SenderKeyDistributionMessage.iteration",
            ))?,
            chain_key,
            signing_key: key33(
                m.signing_key.as_ref(),
                "SenderKeyDistributionMessage.signing_key",
            )?,
            serialized: bytes.to_vec(),
        })
    }

    pub(crate) fn build(
        key_id: u32,
        iteration: u32,
        chain_key: [u8; 32],
        signing_key: PublicKey,
    ) -> Self {
        let body = pb::SenderKeyDistributionMessage {
            id: Some(key_id),
            iteration: Some(iteration),
            chain_key: Some(chain_key.to_vec()),
            signing_key: Some(signing_key.serialize_djb().to_vec()),
        }
        .encode_to_vec();
        let mut serialized = Vec::with_capacity(1 + body.len());
        serialized.push(VERSION_BYTE);
        serialized.extend_from_slice(&body);
        SenderKeyDistributionMessage {
            key_id,
            iteration,
            chain_key,
            signing_key,
            serialized,
        }
    }

    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}
