//! The pairwise session API: pure functions from (record, input) to (new record, output).
//!
//! Nothing here mutates its input. The caller persists the returned record *before* sending a
//! ciphertext or acting on a plaintext, so a crash can never make a message key be used twice, and
//! a failed decrypt (bad MAC, truncation, wrong version, missing prekey) leaves the stored record
//! exactly as it was.

use rand_core::CryptoRng;

use crate::crypto::PublicKey;

use super::SignalError;
use super::identity::{LocalIdentity, PreKey, PreKeyBundle, SignedPreKey};
use super::session::{SessionRecord, SessionState, try_decrypt, try_encrypt};
use super::wire::{PreKeySignalMessage, SignalMessage};

/// An encrypted pairwise message, as it goes into `<enc type=…>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiphertextMessage {
    /// `pkmsg`: sent until the peer has answered on the session.
    PreKey(PreKeySignalMessage),
    /// `msg`.
    Whisper(SignalMessage),
}

impl CiphertextMessage {
    /// The `type` attribute of `<enc>`.
    pub fn enc_type(&self) -> &'static str {
        match self {
            CiphertextMessage::PreKey(_) => "pkmsg",
            CiphertextMessage::Whisper(_) => "msg",
        }
    }

    pub fn serialized(&self) -> &[u8] {
        match self {
            CiphertextMessage::PreKey(m) => m.serialized(),
            CiphertextMessage::Whisper(m) => m.serialized(),
        }
    }
}

/// Starts a session from a fetched prekey bundle (X3DH initiator). The previous session, if any,
/// is archived. Fails with [`SignalError::BadSignature`] when the signed prekey is not signed by
/// the bundle's identity key.
pub fn initiate_session<R: CryptoRng + ?Sized>(
    record: &SessionRecord,
    ours: &LocalIdentity,
    bundle: &PreKeyBundle,
    rng: &mut R,
) -> Result<SessionRecord, SignalError> {
    let state = SessionState::initiate(ours, bundle, rng)?;
    let mut out = record.clone();
    out.promote_new(state);
    Ok(out)
}

/// Encrypts `plaintext` (already padded, §7.7) on the current session.
pub fn encrypt(
    record: &SessionRecord,
    plaintext: &[u8],
) -> Result<(SessionRecord, CiphertextMessage), SignalError> {
    let current = record.current.as_ref().ok_or(SignalError::NoSession)?;
    let (state, msg) = try_encrypt(current, plaintext)?;
    let mut out = record.clone();
    out.current = Some(state);
    Ok((out, msg))
}

/// Decrypts an `enc type=msg` body. Tries the current session, then archived ones (newest first);
/// an archived session that decrypts stays archived, so replies keep using the current one.
pub fn decrypt_message<R: CryptoRng + ?Sized>(
    record: &SessionRecord,
    ciphertext: &[u8],
    rng: &mut R,
) -> Result<(SessionRecord, Vec<u8>), SignalError> {
    let msg = SignalMessage::parse(ciphertext)?;
    decrypt_parsed(record, &msg, rng)
}

fn decrypt_parsed<R: CryptoRng + ?Sized>(
    record: &SessionRecord,
    msg: &SignalMessage,
    rng: &mut R,
) -> Result<(SessionRecord, Vec<u8>), SignalError> {
    let mut first_error = None;
    if let Some(current) = &record.current {
        match try_decrypt(current, msg, rng) {
            Ok((state, plaintext)) => {
                let mut out = record.clone();
                out.current = Some(state);
                return Ok((out, plaintext));
            }
            Err(e) => first_error = Some(e),
        }
    }
    for (i, old) in record.previous.iter().enumerate() {
        if let Ok((state, plaintext)) = try_decrypt(old, msg, rng) {
            let mut out = record.clone();
            if let Some(slot) = out.previous.get_mut(i) {
                *slot = state;
            }
            return Ok((out, plaintext));
        }
    }
    Err(first_error.unwrap_or(SignalError::NoSession))
}

/// The responder's secret prekeys named by a [`PreKeySignalMessage`], loaded by the caller from its
/// store using `message.signed_pre_key_id` and `message.pre_key_id`. Either may be `None` when the
/// store no longer has it; that is only an error if a new session has to be built.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreKeySecrets<'a> {
    pub signed_pre_key: Option<&'a SignedPreKey>,
    pub one_time_pre_key: Option<&'a PreKey>,
}

/// Outcome of [`decrypt_prekey_message`].
#[derive(Debug, Clone)]
pub struct PreKeyDecrypted {
    pub record: SessionRecord,
    pub plaintext: Vec<u8>,
    /// The one-time prekey this message named; the caller deletes it from its store (idempotent).
    pub used_pre_key_id: Option<u32>,
    /// The sender's identity key as stated in the message.
    pub remote_identity: PublicKey,
    /// The identity of the session this one replaced, when it differs from `remote_identity`: the
    /// peer reinstalled or the key changed. The caller decides trust before persisting `record`.
    pub replaced_identity: Option<PublicKey>,
    /// Whether a new session was built (false when the message belongs to a known session).
    pub new_session: bool,
}

/// Decrypts an `enc type=pkmsg` body parsed with [`PreKeySignalMessage::parse`].
///
/// If the message's base key matches a session we already have (a re-sent or late pkmsg), that
/// session decrypts it and no prekeys are needed. Otherwise a new session is built (X3DH
/// responder), becomes current, and the old current session is archived.
pub fn decrypt_prekey_message<R: CryptoRng + ?Sized>(
    record: &SessionRecord,
    ours: &LocalIdentity,
    message: &PreKeySignalMessage,
    secrets: PreKeySecrets<'_>,
    rng: &mut R,
) -> Result<PreKeyDecrypted, SignalError> {
    let known = record
        .current
        .iter()
        .chain(record.previous.iter())
        .any(|s| s.base_key() == &message.base_key && s.remote_identity() == &message.identity_key);
    if known {
        let (out, plaintext) = decrypt_parsed(record, &message.message, rng)?;
        return Ok(PreKeyDecrypted {
            record: out,
            plaintext,
            used_pre_key_id: message.pre_key_id,
            remote_identity: message.identity_key,
            replaced_identity: None,
            new_session: false,
        });
    }

    let signed = secrets
        .signed_pre_key
        .filter(|k| k.id == message.signed_pre_key_id)
        .ok_or(SignalError::UnknownSignedPreKey(message.signed_pre_key_id))?;
    let one_time = match message.pre_key_id {
        None => None,
        Some(id) => Some(
            secrets
                .one_time_pre_key
                .filter(|k| k.id == id)
                .ok_or(SignalError::UnknownPreKey(id))?,
        ),
    };
    let state = SessionState::respond(
        ours,
        &signed.key_pair,
        one_time.map(|k| &k.key_pair),
        message,
    );
    let (state, plaintext) = try_decrypt(&state, &message.message, rng)?;
    let replaced_identity = record
        .remote_identity()
        .filter(|old| **old != message.identity_key)
        .copied();
    let mut out = record.clone();
    out.promote_new(state);
    Ok(PreKeyDecrypted {
        record: out,
        plaintext,
        used_pre_key_id: message.pre_key_id,
        remote_identity: message.identity_key,
        replaced_identity,
        new_session: true,
    })
}
