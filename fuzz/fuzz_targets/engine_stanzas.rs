//! Every engine parser that reads a stanza from the server, on one fuzz-built node: receipts and
//! acks, key-fetch bundles, usync device/contact results, group metadata and notifications,
//! presence and chatstate, pair-device refs and pair-success verification, stream-error
//! classification, and the pure parts of the incoming-message path (`enc` type, padding removal,
//! `DeviceSentMessage` unwrap). None may panic; results are used so the optimiser keeps them.
//!
//! For `pair-success`, the `device-identity` bytes are optionally re-wrapped with a valid HMAC
//! (and, one step further, a valid account signature) so the checks behind them are reached.
#![no_main]

#[path = "common/node_gen.rs"]
mod node_gen;

use std::sync::OnceLock;

use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use sha2::Sha256;
use zapin_engine::disconnect::DisconnectReason;
use zapin_engine::messaging::{
    account, content, group_admin, groups, prekeys, presence, receipts, usync,
};
use zapin_engine::pairing;
use zapin_engine::signal_session::EncType;
use zapin_protocol::binary::{Content, Node};
use zapin_protocol::crypto::{KeyPair, xeddsa};
use zapin_protocol::jid::Jid;
use zapin_protocol::proto::wa::{AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac};

const ADV_SECRET: [u8; 32] = [7; 32];

struct Keys {
    device: KeyPair,
    account: KeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        device: KeyPair::from_private([1; 32]),
        account: KeyPair::from_private([2; 32]),
    })
}

fn hmac(details: &[u8], hosted: bool) -> Vec<u8> {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&ADV_SECRET) else {
        return Vec::new();
    };
    if hosted {
        mac.update(&[6, 5]);
    }
    mac.update(details);
    mac.finalize().into_bytes().to_vec()
}

/// Replaces the `device-identity` content: mode 1 treats it as the HMAC'd details, mode 2 as
/// the `ADVDeviceIdentity` bytes, signed by the account key over our identity.
fn rewrap(node: &mut Node, mode: u8) {
    let Content::Nodes(children) = &mut node.content else {
        return;
    };
    let Some(di) = children.iter_mut().find(|c| c.tag == "device-identity") else {
        return;
    };
    let Some(raw) = di.content_bytes().map(|b| b.to_vec()) else {
        return;
    };
    let hosted = raw.first().is_some_and(|b| b & 1 == 1);
    let details = if mode == 2 {
        let k = keys();
        let mut msg = vec![6, 0];
        msg.extend_from_slice(&raw);
        msg.extend_from_slice(k.device.public().as_bytes());
        AdvSignedDeviceIdentity {
            details: Some(raw.clone()),
            account_signature_key: Some(k.account.public().as_bytes().to_vec()),
            account_signature: Some(xeddsa::sign(&k.account, &msg, &[3; 64]).to_vec()),
            device_signature: None,
        }
        .encode_to_vec()
    } else {
        raw
    };
    let container = AdvSignedDeviceIdentityHmac {
        hmac: Some(hmac(&details, hosted && mode == 1)),
        account_type: (hosted && mode == 1).then_some(1),
        details: Some(details),
    };
    di.content = Content::Bytes(container.encode_to_vec().into());
}

fn pair_success(mut node: Node, mode: u8) {
    let mode = mode % 3;
    if mode != 0 {
        rewrap(&mut node, mode);
    }
    let k = keys();
    if let Err(e) = pairing::verify_pair_success(&node, &k.device, &ADV_SECRET, &[4; 64]) {
        std::hint::black_box(e.code_and_text());
    }
}

fn message_parts(node: &Node) {
    for enc in node.children_by_tag("enc") {
        let _ = EncType::parse(enc.attr_str("type").unwrap_or_default());
        if let Some(bytes) = enc.content_bytes()
            && let Ok(m) = content::decode_padded(bytes)
        {
            std::hint::black_box((content::content_type(&m), content::stanza_type(&m)));
            std::hint::black_box(content::has_content(&m));
            if let Some((inner, dest)) = content::unwrap_device_sent(&m) {
                std::hint::black_box((content::content_type(&inner), dest));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(node) = node_gen::node_from(data) else {
        return;
    };
    // The raw tail also feeds the byte-level parsers directly.
    if let Ok(m) = content::decode_padded(data) {
        std::hint::black_box(content::unwrap_device_sent(&m));
    }

    if let Ok(info) = receipts::parse_receipt(&node) {
        std::hint::black_box(receipts::receipt_statuses(&info));
        std::hint::black_box(receipts::receipt_status(info.kind.as_deref()));
    }
    std::hint::black_box(receipts::ack_for(&node, Some(487)));
    if let Some(ack) = receipts::ServerAck::parse(&node) {
        std::hint::black_box(ack.status_update());
    }

    std::hint::black_box(prekeys::parse_key_fetch_result(&node).ok());
    std::hint::black_box(prekeys::parse_user_bundle(&node).ok());
    std::hint::black_box(prekeys::parse_bundle_fields(&node, 1).ok());

    if let Ok(users) = usync::parse_device_result(&node) {
        for u in &users {
            std::hint::black_box(u.device_jids());
        }
    }
    std::hint::black_box(usync::parse_contact_result(&node).ok());
    if let Some(s) = node.attr_str("id") {
        std::hint::black_box(usync::normalize_number(s));
    }

    let group = node
        .attr_jid("from")
        .unwrap_or_else(|| Jid::group("120363000000000001"));
    std::hint::black_box(groups::parse_metadata(&group, &node).ok());
    std::hint::black_box(groups::parse_notification(&node));
    std::hint::black_box(group_admin::parse_group_answer(&node).ok());
    std::hint::black_box(group_admin::parse_participating(&node).ok());
    std::hint::black_box(group_admin::parse_invite_code(&node).ok());
    std::hint::black_box(group_admin::parse_joined(&node).ok());
    std::hint::black_box(account::parse(&account::AccountOp::FetchPrivacy, &node).ok());
    for action in [
        group_admin::ParticipantAction::Add,
        group_admin::ParticipantAction::Remove,
    ] {
        std::hint::black_box(group_admin::parse_participants(&node, action).ok());
    }

    std::hint::black_box(presence::parse_presence(&node));
    std::hint::black_box(presence::parse_chatstate(&node));

    std::hint::black_box(pairing::pair_device_refs(&node));
    let code = node.attr_str("code").and_then(|c| c.parse().ok());
    let conflict = node.child("conflict").and_then(|c| c.attr_str("type"));
    let reason = DisconnectReason::from_stream_error(code, conflict);
    std::hint::black_box((reason.next_step(), reason.status_code()));
    let failure = DisconnectReason::from_failure(code.unwrap_or_default());
    std::hint::black_box((failure.next_step(), failure.status_code()));

    message_parts(&node);
    pair_success(node, data.last().copied().unwrap_or_default());
});
