//! QR pairing (wa-protocol.md §5.1–5.3), sans-IO: the QR string, `pair-success` verification and
//! the replies. The session actor does the I/O and the storing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use prost::Message;
use sha2::Sha256;
use zapin_protocol::binary::Node;
use zapin_protocol::crypto::{KeyPair, PublicKey, xeddsa};
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::proto::wa::{
    AdvDeviceIdentity, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
};

/// What WhatsApp phones scan; whatsmeow and Baileys put it in front of the fields.
pub const QR_PREFIX: &str = "https://wa.me/settings/linked_devices#";

const ADV_HOSTED: i32 = 1;

/// The QR string for one ref: `prefix ref,noise,identity,adv,platform` (§5.2), keys in padded
/// standard base64.
pub fn qr_string(
    pairing_ref: &str,
    noise_public: &[u8; 32],
    identity_public: &[u8; 32],
    adv_secret: &[u8; 32],
    platform_id: char,
) -> String {
    format!(
        "{QR_PREFIX}{pairing_ref},{},{},{},{platform_id}",
        STANDARD.encode(noise_public),
        STANDARD.encode(identity_public),
        STANDARD.encode(adv_secret),
    )
}

/// Refs of a `<pair-device>` (non-UTF-8 refs are skipped: a phone could not scan them anyway).
pub fn pair_device_refs(pair_device: &Node) -> Vec<String> {
    pair_device
        .children_by_tag("ref")
        .filter_map(|r| r.content_str().map(str::to_owned))
        .filter(|r| !r.is_empty())
        .collect()
}

/// Why a `pair-success` was rejected. Nothing is stored in any of these cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error("malformed pair-success: {0}")]
    Malformed(&'static str),
    #[error("ADV HMAC does not match our adv secret")]
    HmacMismatch,
    #[error("account signature does not verify")]
    SignatureMismatch,
}

impl PairError {
    /// The `<error code text>` of the IQ error reply (whatsmeow's codes).
    pub fn code_and_text(&self) -> (u16, &'static str) {
        match self {
            Self::Malformed(_) => (500, "internal-error"),
            Self::HmacMismatch => (401, "hmac-mismatch"),
            Self::SignatureMismatch => (401, "signature-mismatch"),
        }
    }
}

/// A verified `pair-success`, ready to be stored and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSuccess {
    pub device_jid: Jid,
    pub lid: Option<Jid>,
    pub platform: Option<String>,
    pub business_name: Option<String>,
    pub key_index: u32,
    /// The phone's identity key (`accountSignatureKey`), trusted as LID device 0.
    pub account_identity: [u8; 32],
    /// Serialized `ADVSignedDeviceIdentity` with our device signature and without
    /// `accountSignatureKey`: the reply's content and what is stored as `account`.
    pub signed_identity: Vec<u8>,
}

/// Verifies the HMAC (adv secret) and the account signature, then signs as the device (§5.3).
pub fn verify_pair_success(
    pair_success: &Node,
    identity: &KeyPair,
    adv_secret: &[u8; 32],
    random: &[u8; 64],
) -> Result<PairSuccess, PairError> {
    let container = pair_success
        .child("device-identity")
        .and_then(Node::content_bytes)
        .ok_or(PairError::Malformed("no device-identity"))?;
    let device = pair_success
        .child("device")
        .ok_or(PairError::Malformed("no device"))?;
    let device_jid = device
        .attr_jid("jid")
        .filter(|j| j.server == Server::Pn)
        .ok_or(PairError::Malformed("device jid"))?;
    let lid = device.attr_jid("lid");
    let platform = pair_success
        .child("platform")
        .and_then(|p| p.attr_str("name"))
        .map(str::to_owned);
    let business_name = pair_success
        .child("biz")
        .and_then(|b| b.attr_str("name"))
        .map(str::to_owned);

    let container = AdvSignedDeviceIdentityHmac::decode(container.as_ref())
        .map_err(|_| PairError::Malformed("ADVSignedDeviceIdentityHMAC"))?;
    let details = container
        .details
        .as_deref()
        .ok_or(PairError::Malformed("HMAC details"))?;
    let hmac = container
        .hmac
        .as_deref()
        .ok_or(PairError::Malformed("HMAC"))?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(adv_secret)
        .map_err(|_| PairError::Malformed("adv secret"))?;
    if container.account_type == Some(ADV_HOSTED) {
        mac.update(&[6, 5]);
    }
    mac.update(details);
    mac.verify_slice(hmac)
        .map_err(|_| PairError::HmacMismatch)?;

    let signed = AdvSignedDeviceIdentity::decode(details)
        .map_err(|_| PairError::Malformed("ADVSignedDeviceIdentity"))?;
    let identity_details = signed
        .details
        .as_deref()
        .ok_or(PairError::Malformed("identity details"))?;
    let account_key: [u8; 32] = signed
        .account_signature_key
        .as_deref()
        .and_then(|k| k.try_into().ok())
        .ok_or(PairError::Malformed("accountSignatureKey"))?;
    let account_signature = signed
        .account_signature
        .as_deref()
        .ok_or(PairError::Malformed("accountSignature"))?;
    let device_identity = AdvDeviceIdentity::decode(identity_details)
        .map_err(|_| PairError::Malformed("ADVDeviceIdentity"))?;
    let hosted = device_identity.device_type == Some(ADV_HOSTED);
    let own = identity.public().as_bytes();

    let mut msg = Vec::with_capacity(2 + identity_details.len() + 64);
    msg.extend_from_slice(if hosted { &[6, 5] } else { &[6, 0] });
    msg.extend_from_slice(identity_details);
    msg.extend_from_slice(own);
    if !xeddsa::verify_slice(&PublicKey(account_key), &msg, account_signature) {
        return Err(PairError::SignatureMismatch);
    }

    msg.clear();
    msg.extend_from_slice(&[6, 1]);
    msg.extend_from_slice(identity_details);
    msg.extend_from_slice(own);
    msg.extend_from_slice(&account_key);
    let device_signature = xeddsa::sign(identity, &msg, random);

    let reply = AdvSignedDeviceIdentity {
        details: signed.details.clone(),
        account_signature_key: None,
        account_signature: signed.account_signature.clone(),
        device_signature: Some(device_signature.to_vec()),
    };
    Ok(PairSuccess {
        device_jid,
        lid,
        platform,
        business_name,
        key_index: device_identity.key_index.unwrap_or(0),
        account_identity: account_key,
        signed_identity: reply.encode_to_vec(),
    })
}

pub fn server_jid() -> Jid {
    Jid::server_only(Server::Pn)
}

/// `<iq to=s.whatsapp.net type=result id><pair-device-sign><device-identity key-index>…`
pub fn pair_device_sign_reply(id: &str, success: &PairSuccess) -> Node {
    Node::new("iq")
        .attr("to", server_jid())
        .attr("type", "result")
        .attr("id", id.to_owned())
        .children(vec![Node::new("pair-device-sign").children(vec![
            Node::new("device-identity")
                .attr("key-index", success.key_index.to_string())
                .bytes(success.signed_identity.clone()),
        ])])
}

/// `<iq to=s.whatsapp.net type=error id><error code text/></iq>`
pub fn iq_error(id: &str, code: u16, text: &str) -> Node {
    Node::new("iq")
        .attr("to", server_jid())
        .attr("type", "error")
        .attr("id", id.to_owned())
        .children(vec![
            Node::new("error")
                .attr("code", code.to_string())
                .attr("text", text.to_owned()),
        ])
}

/// `<iq to=s.whatsapp.net type=result id/>`
pub fn iq_result(id: &str) -> Node {
    Node::new("iq")
        .attr("to", server_jid())
        .attr("type", "result")
        .attr("id", id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zapin_protocol::binary::{pack, unpack};

    /// What the simulator's phone does (wa-protocol.md §12.2 step 8), written from the spec.
    fn phone_pair_success(
        phone: &KeyPair,
        companion_identity: &PublicKey,
        adv_secret: &[u8; 32],
        key_index: u32,
    ) -> Node {
        let details = AdvDeviceIdentity {
            raw_id: Some(42),
            timestamp: Some(1_700_000_000),
            key_index: Some(key_index),
            account_type: Some(0),
            device_type: Some(0),
        }
        .encode_to_vec();
        let mut msg = vec![6, 0];
        msg.extend_from_slice(&details);
        msg.extend_from_slice(companion_identity.as_bytes());
        let account_signature = xeddsa::sign(phone, &msg, &[9; 64]);
        let signed = AdvSignedDeviceIdentity {
            details: Some(details),
            account_signature_key: Some(phone.public().0.to_vec()),
            account_signature: Some(account_signature.to_vec()),
            device_signature: None,
        }
        .encode_to_vec();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(adv_secret).unwrap();
        mac.update(&signed);
        let container = AdvSignedDeviceIdentityHmac {
            details: Some(signed),
            hmac: Some(mac.finalize().into_bytes().to_vec()),
            account_type: Some(0),
        };
        Node::new("pair-success").children(vec![
            Node::new("device-identity").bytes(container.encode_to_vec()),
            Node::new("platform").attr("name", "android"),
            Node::new("device")
                .attr("jid", Jid::with_device("15550000001", 3, Server::Pn))
                .attr("lid", Jid::with_device("99887766", 3, Server::Lid)),
        ])
    }

    fn keys() -> (KeyPair, KeyPair, [u8; 32]) {
        (
            KeyPair::from_private([1; 32]),
            KeyPair::from_private([2; 32]),
            [3; 32],
        )
    }

    #[test]
    fn a_genuine_pair_success_verifies_and_the_reply_carries_a_valid_device_signature() {
        let (phone, companion, adv) = keys();
        let node = phone_pair_success(&phone, companion.public(), &adv, 5);
        // Through the codec, as it arrives.
        let node = unpack(&pack(&node).unwrap()).unwrap();
        let ok = verify_pair_success(&node, &companion, &adv, &[7; 64]).unwrap();
        assert_eq!(ok.device_jid.to_string(), "15550000001:3@s.whatsapp.net");
        assert_eq!(ok.lid.as_ref().unwrap().to_string(), "99887766:3@lid");
        assert_eq!(ok.platform.as_deref(), Some("android"));
        assert_eq!(ok.key_index, 5);
        assert_eq!(ok.account_identity, phone.public().0);

        let reply = AdvSignedDeviceIdentity::decode(ok.signed_identity.as_slice()).unwrap();
        assert!(
            reply.account_signature_key.is_none(),
            "removed as WM and BL do"
        );
        let mut msg = vec![6, 1];
        msg.extend_from_slice(reply.details.as_deref().unwrap());
        msg.extend_from_slice(companion.public().as_bytes());
        msg.extend_from_slice(phone.public().as_bytes());
        assert!(xeddsa::verify_slice(
            companion.public(),
            &msg,
            reply.device_signature.as_deref().unwrap()
        ));

        let iq = pair_device_sign_reply("abc", &ok);
        let di = iq
            .child("pair-device-sign")
            .and_then(|p| p.child("device-identity"))
            .unwrap();
        assert_eq!(di.attr_str("key-index"), Some("5"));
    }

    #[test]
    fn a_wrong_adv_secret_is_an_hmac_mismatch() {
        let (phone, companion, adv) = keys();
        let node = phone_pair_success(&phone, companion.public(), &adv, 1);
        let err = verify_pair_success(&node, &companion, &[4; 32], &[7; 64]).unwrap_err();
        assert_eq!(err, PairError::HmacMismatch);
        assert_eq!(err.code_and_text(), (401, "hmac-mismatch"));
    }

    #[test]
    fn a_signature_for_another_companion_is_rejected() {
        let (phone, companion, adv) = keys();
        let other = KeyPair::from_private([5; 32]);
        let node = phone_pair_success(&phone, other.public(), &adv, 1);
        let err = verify_pair_success(&node, &companion, &adv, &[7; 64]).unwrap_err();
        assert_eq!(err, PairError::SignatureMismatch);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let (_, companion, adv) = keys();
        let node = Node::new("pair-success").children(vec![
            Node::new("device-identity").bytes(vec![0xff, 0x01, 0x02]),
            Node::new("device").attr("jid", Jid::with_device("1", 1, Server::Pn)),
        ]);
        assert!(matches!(
            verify_pair_success(&node, &companion, &adv, &[0; 64]),
            Err(PairError::Malformed(_))
        ));
        assert!(matches!(
            verify_pair_success(&Node::new("pair-success"), &companion, &adv, &[0; 64]),
            Err(PairError::Malformed(_))
        ));
    }

    #[test]
    fn qr_string_has_the_prefix_and_five_fields() {
        let qr = qr_string("2@abc", &[1; 32], &[2; 32], &[3; 32], '1');
        let body = qr.strip_prefix(QR_PREFIX).unwrap();
        let fields: Vec<_> = body.split(',').collect();
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[0], "2@abc");
        assert_eq!(STANDARD.decode(fields[1]).unwrap(), [1; 32]);
        assert_eq!(STANDARD.decode(fields[3]).unwrap(), [3; 32]);
        assert_eq!(fields[1].len(), 44, "padded base64");
        assert_eq!(fields[4], "1");
    }
}
