//! Registration payloads and the ADV pairing crypto of wa-protocol.md §3 and §5.3, server side.

use hmac::{Hmac, KeyInit, Mac};
use prost::Message;
use sha2::Sha256;
use zapin_protocol::crypto::{PublicKey, xeddsa};
use zapin_protocol::proto::wa::client_payload::DevicePairingRegistrationData;
use zapin_protocol::proto::wa::{
    AdvDeviceIdentity, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
};

use super::nodes::read_be;
use crate::keys::KeySource;
use crate::state::{PairTicket, Registration, SignedPreKeyPublic};

/// Account-signature prefix for E2EE (non-hosted) accounts.
pub const ACCOUNT_SIG_PREFIX: [u8; 2] = [6, 0];
/// Device-signature prefix (all clients but WR-hosted use 06 01).
pub const DEVICE_SIG_PREFIX: [u8; 2] = [6, 1];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("registration data lacks or has a malformed {0}")]
    Field(&'static str),
    #[error("the signed prekey's signature does not verify with the identity key")]
    SignedPreKeySignature,
    #[error("pair-device-sign lacks {0}")]
    Missing(&'static str),
    #[error("pair-device-sign is not a valid ADVSignedDeviceIdentity")]
    Protobuf,
    #[error("pair-device-sign changed the device identity details")]
    DetailsChanged,
    #[error("the device signature does not verify")]
    DeviceSignature,
}

/// Checks `DevicePairingRegistrationData` (field 19) and turns it into what the state keeps.
pub fn parse_registration(
    data: &DevicePairingRegistrationData,
    noise_static: PublicKey,
) -> Result<Registration, PairingError> {
    let registration_id = data
        .e_regid
        .as_deref()
        .and_then(read_be)
        .ok_or(PairingError::Field("eRegid"))?;
    if data.e_keytype.as_deref() != Some(&[5]) {
        return Err(PairingError::Field("eKeytype"));
    }
    let identity = key(data.e_ident.as_deref(), "eIdent")?;
    let skey_id = data
        .e_skey_id
        .as_deref()
        .filter(|b| b.len() <= 3)
        .and_then(read_be)
        .ok_or(PairingError::Field("eSkeyID"))?;
    let skey = key(data.e_skey_val.as_deref(), "eSkeyVal")?;
    let sig: [u8; 64] = data
        .e_skey_sig
        .as_deref()
        .and_then(|b| b.try_into().ok())
        .ok_or(PairingError::Field("eSkeySig"))?;
    if !xeddsa::verify(&identity, &skey.serialize_djb(), &sig) {
        return Err(PairingError::SignedPreKeySignature);
    }
    Ok(Registration {
        noise_static,
        identity,
        registration_id,
        signed_prekey: SignedPreKeyPublic {
            id: skey_id,
            public: skey,
            signature: sig,
        },
    })
}

fn key(b: Option<&[u8]>, field: &'static str) -> Result<PublicKey, PairingError> {
    b.and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(PublicKey)
        .ok_or(PairingError::Field(field))
}

/// What `pair-success` carries and what the answer is checked against.
#[derive(Debug, Clone)]
pub struct PairSuccessData {
    /// Serialized `ADVSignedDeviceIdentityHMAC`, the `<device-identity>` content.
    pub container: Vec<u8>,
    /// Serialized `ADVDeviceIdentity`, which the companion's device signature must cover.
    pub details: Vec<u8>,
}

/// Builds the signed, HMAC'd device identity of §5.3 / §12.2 step 8 for `ticket`.
pub fn build_pair_success(
    ticket: &PairTicket,
    adv_secret: &[u8; 32],
    keys: &KeySource,
    now_unix: u64,
) -> PairSuccessData {
    let raw_id = u32::try_from(keys.number(&format!("adv-raw-id/{}", ticket.device_jid), 1 << 31))
        .unwrap_or(1);
    let details = AdvDeviceIdentity {
        raw_id: Some(raw_id),
        timestamp: Some(now_unix),
        key_index: Some(ticket.key_index),
        account_type: Some(0),
        device_type: Some(0),
    }
    .encode_to_vec();
    let mut msg = ACCOUNT_SIG_PREFIX.to_vec();
    msg.extend_from_slice(&details);
    msg.extend_from_slice(ticket.registration.identity.as_bytes());
    let account_signature = keys.sign(
        &ticket.account_identity,
        &msg,
        &format!("adv-account-sig/{}/{now_unix}", ticket.device_jid),
    );
    let signed = AdvSignedDeviceIdentity {
        details: Some(details.clone()),
        account_signature_key: Some(ticket.account_identity.public().0.to_vec()),
        account_signature: Some(account_signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let hmac = adv_hmac(adv_secret, &signed);
    let container = AdvSignedDeviceIdentityHmac {
        details: Some(signed),
        hmac: Some(hmac.to_vec()),
        account_type: Some(0),
    }
    .encode_to_vec();
    PairSuccessData { container, details }
}

/// HMAC-SHA256 under the adv secret (E2EE accounts: no prefix).
pub fn adv_hmac(adv_secret: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this never takes the else branch.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(adv_secret) else {
        return [0; 32];
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Checks the companion's `ADVSignedDeviceIdentity` from `pair-device-sign` and returns it
/// re-serialized without `accountSignatureKey`, as the state stores it.
pub fn verify_device_sign(
    signed: &[u8],
    expected_details: &[u8],
    ticket: &PairTicket,
) -> Result<Vec<u8>, PairingError> {
    let mut identity =
        AdvSignedDeviceIdentity::decode(signed).map_err(|_| PairingError::Protobuf)?;
    let details = identity
        .details
        .as_deref()
        .ok_or(PairingError::Missing("details"))?;
    if details != expected_details {
        return Err(PairingError::DetailsChanged);
    }
    let sig = identity
        .device_signature
        .as_deref()
        .ok_or(PairingError::Missing("deviceSignature"))?;
    let mut msg = DEVICE_SIG_PREFIX.to_vec();
    msg.extend_from_slice(details);
    msg.extend_from_slice(ticket.registration.identity.as_bytes());
    msg.extend_from_slice(ticket.account_identity.public().as_bytes());
    if !xeddsa::verify_slice(&ticket.registration.identity, &msg, sig) {
        return Err(PairingError::DeviceSignature);
    }
    identity.account_signature_key = None;
    Ok(identity.encode_to_vec())
}
