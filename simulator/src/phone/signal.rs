//! The mock phone's Signal store (inside `SimState`, persisted with the snapshot) and the
//! operations on it. Each operation loads a record, runs the protocol crate's pure function, and
//! stores the result; one lock serialises them so two deliveries to the same phone cannot both
//! start from the same record.

use std::sync::Mutex;

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use zapin_protocol::signal::{
    self, CiphertextMessage, LocalIdentity, PreKey, PreKeyBundle, PreKeySecrets,
    PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyRecord, SessionRecord, SignalError,
    SignedPreKey,
};

use crate::state::{SimState, State};

/// Serialises each phone's record updates (load → crypto → store), striped by phone so that
/// different phones do not wait for each other. Never held while delivering.
static LOCKS: [Mutex<()>; 64] = [const { Mutex::new(()) }; 64];

fn lock(phone: &str) -> std::sync::MutexGuard<'static, ()> {
    // FNV-1a: any stable spread will do.
    let h = phone.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let slot = usize::try_from(h % 64).unwrap_or(0);
    LOCKS
        .get(slot)
        .unwrap_or(&LOCKS[0])
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("no account {0}")]
    NoAccount(String),
    #[error("no key bundle for {0}")]
    NoBundle(String),
    #[error("signal: {0}")]
    Signal(#[from] SignalError),
    #[error("stored record is not hex")]
    BadRecord,
    #[error("unknown enc type {0:?}")]
    UnknownEncType(String),
}

/// The phone's store key for a peer device: `phone.device` (PN form, whatever namespace the wire
/// used: the phone resolves both to the account).
pub fn address(phone: &str, device: u16) -> String {
    format!("{phone}.{device}")
}

fn sender_key_name(group: &str, sender: &str) -> String {
    format!("{group}|{sender}")
}

/// Fresh, reproducible randomness for one operation of `phone`'s Signal.
pub fn op_rng(state: &SimState, phone: &str) -> ChaCha20Rng {
    let n = state.write(|st| {
        st.accounts.get_mut(phone).map(|a| {
            a.phone_device.signal.rng_counter += 1;
            a.phone_device.signal.rng_counter
        })
    });
    let seed = state
        .key_source()
        .bytes(&format!("account/{phone}/signal-rng/{}", n.unwrap_or(0)));
    ChaCha20Rng::from_seed(seed)
}

fn local(st: &State, phone: &str) -> Option<(LocalIdentity, SignedPreKey)> {
    let a = st.accounts.get(phone)?;
    let spk = &a.phone_device.signed_prekey;
    Some((
        LocalIdentity {
            key_pair: a.identity.clone(),
            registration_id: a.phone_device.registration_id,
        },
        SignedPreKey {
            id: spk.id,
            key_pair: spk.key.clone(),
            signature: spk.signature,
        },
    ))
}

fn load_session(state: &SimState, phone: &str, peer: &str) -> Result<SessionRecord, PhoneError> {
    let hex = state.read(|st| {
        st.accounts
            .get(phone)
            .map(|a| a.phone_device.signal.sessions.get(peer).cloned())
    });
    match hex.ok_or_else(|| PhoneError::NoAccount(phone.to_string()))? {
        None => Ok(SessionRecord::new()),
        Some(h) => {
            let bytes = hex::decode(h).map_err(|_| PhoneError::BadRecord)?;
            Ok(SessionRecord::from_bytes(&bytes)?)
        }
    }
}

fn store_session(state: &SimState, phone: &str, peer: &str, record: &SessionRecord) {
    let h = hex::encode(record.to_bytes());
    state.write(|st| {
        if let Some(a) = st.accounts.get_mut(phone) {
            a.phone_device.signal.sessions.insert(peer.to_string(), h);
        }
    });
}

fn load_sender_key(
    state: &SimState,
    phone: &str,
    name: &str,
) -> Result<SenderKeyRecord, PhoneError> {
    let hex = state.read(|st| {
        st.accounts
            .get(phone)
            .and_then(|a| a.phone_device.signal.sender_keys.get(name).cloned())
    });
    match hex {
        None => Ok(SenderKeyRecord::new()),
        Some(h) => {
            let bytes = hex::decode(h).map_err(|_| PhoneError::BadRecord)?;
            Ok(SenderKeyRecord::from_bytes(&bytes)?)
        }
    }
}

fn store_sender_key(state: &SimState, phone: &str, name: &str, record: &SenderKeyRecord) {
    let h = hex::encode(record.to_bytes());
    state.write(|st| {
        if let Some(a) = st.accounts.get_mut(phone) {
            a.phone_device
                .signal
                .sender_keys
                .insert(name.to_string(), h);
        }
    });
}

/// The key bundle of device `device` of `phone` as a key-fetch IQ hands it out, consuming one
/// one-time prekey: the mock phone's (device 0) from its derived pool, a companion's from what it
/// uploaded. `None` for unknown accounts or devices.
pub fn fetch_bundle(state: &SimState, phone: &str, device: u16) -> Option<PreKeyBundle> {
    if device == 0 {
        let (identity, reg, spk) = state.read(|st| {
            let a = st.accounts.get(phone)?;
            Some((
                *a.identity.public(),
                a.phone_device.registration_id,
                a.phone_device.signed_prekey.clone(),
            ))
        })?;
        let one_time = state.take_phone_prekey(phone)?;
        return Some(PreKeyBundle {
            registration_id: reg,
            identity_key: identity,
            signed_pre_key_id: spk.id,
            signed_pre_key: *spk.key.public(),
            signed_pre_key_signature: spk.signature,
            pre_key: Some((one_time.0, *one_time.1.public())),
        });
    }
    let d = state.read(|st| st.accounts.get(phone)?.companions.get(&device).cloned())?;
    let one_time = state.take_device_prekey(phone, device).ok().flatten();
    Some(PreKeyBundle {
        registration_id: d.registration_id,
        identity_key: d.identity,
        signed_pre_key_id: d.signed_prekey.id,
        signed_pre_key: d.signed_prekey.public,
        signed_pre_key_signature: d.signed_prekey.signature,
        pre_key: one_time.map(|k| (k.id, k.public)),
    })
}

/// Encrypts padded `plaintext` from `phone`'s phone to a peer device, building the session from
/// the peer's bundle first when there is none (X3DH; the first messages are then `pkmsg`).
pub fn encrypt_for(
    state: &SimState,
    phone: &str,
    peer_phone: &str,
    peer_device: u16,
    plaintext: &[u8],
) -> Result<CiphertextMessage, PhoneError> {
    let peer = address(peer_phone, peer_device);
    let _g = lock(phone);
    let mut record = load_session(state, phone, &peer)?;
    if !record.has_current_session() {
        let (ours, _) = state
            .read(|st| local(st, phone))
            .ok_or_else(|| PhoneError::NoAccount(phone.to_string()))?;
        let bundle = fetch_bundle(state, peer_phone, peer_device)
            .ok_or_else(|| PhoneError::NoBundle(peer.clone()))?;
        record = signal::initiate_session(&record, &ours, &bundle, &mut op_rng(state, phone))?;
    }
    let (record, msg) = signal::encrypt(&record, plaintext)?;
    store_session(state, phone, &peer, &record);
    Ok(msg)
}

/// Decrypts a pairwise `<enc>` body (`pkmsg` or `msg`) from a peer device; returns the padded
/// plaintext. A `pkmsg` builds the session with the phone's signed prekey and the one-time prekey
/// it names (consumed: the pool never hands an id out twice).
pub fn decrypt_from(
    state: &SimState,
    phone: &str,
    peer_phone: &str,
    peer_device: u16,
    enc_type: &str,
    body: &[u8],
) -> Result<Vec<u8>, PhoneError> {
    let peer = address(peer_phone, peer_device);
    let _g = lock(phone);
    let record = load_session(state, phone, &peer)?;
    let (record, plaintext) = match enc_type {
        "msg" => signal::decrypt_message(&record, body, &mut op_rng(state, phone))?,
        "pkmsg" => {
            let msg = PreKeySignalMessage::parse(body)?;
            let (ours, spk) = state
                .read(|st| local(st, phone))
                .ok_or_else(|| PhoneError::NoAccount(phone.to_string()))?;
            let one_time = msg.pre_key_id.and_then(|id| {
                state
                    .phone_prekey(phone, id)
                    .map(|key_pair| PreKey { id, key_pair })
            });
            let secrets = PreKeySecrets {
                signed_pre_key: Some(&spk),
                one_time_pre_key: one_time.as_ref(),
            };
            let out = signal::decrypt_prekey_message(
                &record,
                &ours,
                &msg,
                secrets,
                &mut op_rng(state, phone),
            )?;
            (out.record, out.plaintext)
        }
        other => return Err(PhoneError::UnknownEncType(other.to_string())),
    };
    store_session(state, phone, &peer, &record);
    Ok(plaintext)
}

/// The phone's own sender key for `group` (created on first use) as a distribution message, and
/// the `skmsg` of padded `plaintext` under it.
pub fn group_encrypt(
    state: &SimState,
    phone: &str,
    group: &str,
    plaintext: &[u8],
) -> Result<(SenderKeyDistributionMessage, Vec<u8>), PhoneError> {
    let name = sender_key_name(group, &address(phone, 0));
    let _g = lock(phone);
    let record = load_sender_key(state, phone, &name)?;
    let mut rng = op_rng(state, phone);
    let (record, skdm) = signal::create_sender_key_distribution(&record, &mut rng);
    let (record, msg) = signal::group_encrypt(&record, plaintext, &mut rng)?;
    store_sender_key(state, phone, &name, &record);
    Ok((skdm, msg.serialized().to_vec()))
}

/// Stores a member's sender key from their distribution message.
pub fn process_skdm(
    state: &SimState,
    phone: &str,
    group: &str,
    sender: &str,
    skdm: &[u8],
) -> Result<(), PhoneError> {
    let skdm = SenderKeyDistributionMessage::parse(skdm)?;
    let name = sender_key_name(group, sender);
    let _g = lock(phone);
    let record = load_sender_key(state, phone, &name)?;
    let record = signal::process_sender_key_distribution(&record, &skdm);
    store_sender_key(state, phone, &name, &record);
    Ok(())
}

/// Decrypts an `skmsg` from a member device; returns the padded plaintext.
pub fn group_decrypt(
    state: &SimState,
    phone: &str,
    group: &str,
    sender: &str,
    body: &[u8],
) -> Result<Vec<u8>, PhoneError> {
    let name = sender_key_name(group, sender);
    let _g = lock(phone);
    let record = load_sender_key(state, phone, &name)?;
    let (record, plaintext) = signal::group_decrypt(&record, body)?;
    store_sender_key(state, phone, &name, &record);
    Ok(plaintext)
}

/// The phone's registration id (for `<registration>` in retry receipts).
pub fn registration_id(state: &SimState, phone: &str) -> Option<u32> {
    state.read(|st| {
        st.accounts
            .get(phone)
            .map(|a| a.phone_device.registration_id)
    })
}

/// Replaces the session with a peer device by a fresh one (X3DH from `bundle`, or from a newly
/// fetched bundle): what a sender does when the peer says it could not decrypt (§7.5).
pub fn restart_session(
    state: &SimState,
    phone: &str,
    peer_phone: &str,
    peer_device: u16,
    bundle: Option<PreKeyBundle>,
) -> Result<(), PhoneError> {
    let peer = address(peer_phone, peer_device);
    let bundle = match bundle {
        Some(b) => b,
        None => fetch_bundle(state, peer_phone, peer_device)
            .ok_or_else(|| PhoneError::NoBundle(peer.clone()))?,
    };
    let _g = lock(phone);
    let (ours, _) = state
        .read(|st| local(st, phone))
        .ok_or_else(|| PhoneError::NoAccount(phone.to_string()))?;
    let record = load_session(state, phone, &peer)?;
    let record = signal::initiate_session(&record, &ours, &bundle, &mut op_rng(state, phone))?;
    store_session(state, phone, &peer, &record);
    Ok(())
}

/// The phone's current sender key for `group` as a distribution message (creating the key if the
/// phone never wrote to the group).
pub fn own_sender_key(
    state: &SimState,
    phone: &str,
    group: &str,
) -> Result<SenderKeyDistributionMessage, PhoneError> {
    let name = sender_key_name(group, &address(phone, 0));
    let _g = lock(phone);
    let record = load_sender_key(state, phone, &name)?;
    let (record, skdm) = signal::create_sender_key_distribution(&record, &mut op_rng(state, phone));
    store_sender_key(state, phone, &name, &record);
    Ok(skdm)
}
