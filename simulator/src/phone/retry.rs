//! The phone answering a retry receipt for one of its messages (§7.5): a fresh session with the
//! device that could not decrypt (from the receipt's `<keys>` when given, else a new bundle) and
//! the text re-encrypted for that device alone.

use prost::Message as _;
use zapin_protocol::binary::Node;
use zapin_protocol::crypto::PublicKey;
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::proto::wa;
use zapin_protocol::signal::{PreKeyBundle, padding};

use super::signal;
use crate::addr;
use crate::router;
use crate::sim::Sim;

/// WhatsApp clients stop asking after five retries; so does the phone answering.
const MAX_RETRIES: u32 = 5;

pub(super) fn resend(sim: &Sim, phone: &str, receipt: &Node) {
    let (Some(id), Some(from)) = (receipt.attr_str("id"), receipt.attr_jid("from")) else {
        return;
    };
    let group = from.is_group().then(|| from.user.clone());
    let Some(requester) = (if group.is_some() {
        receipt.attr_jid("participant")
    } else {
        Some(from.clone())
    }) else {
        return;
    };
    // Phones never ask the phone for retries (and a phone-to-phone loop must be impossible).
    let Some((peer_phone, peer_device)) =
        router::resolve_device(sim, &requester).filter(|(_, d)| *d != 0)
    else {
        return;
    };
    let count = receipt
        .child("retry")
        .and_then(|r| r.attr_str("count"))
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(1);
    if count >= MAX_RETRIES {
        tracing::info!("phone {phone}: {requester} asked {count} times for {id}; giving up");
        return;
    }
    let Some(text) = sim
        .state()
        .logged_message(id)
        .filter(|m| m.sender == addr::pn_device_jid(phone, 0))
        .and_then(|m| m.text)
    else {
        return;
    };
    let state = sim.state();
    if let Err(e) =
        signal::restart_session(state, phone, &peer_phone, peer_device, keys_bundle(receipt))
    {
        tracing::info!("phone {phone}: no new session with {requester} for retry: {e}");
        return;
    }
    let mut content = wa::Message {
        conversation: Some(text),
        ..Default::default()
    };
    if let Some(g) = &group {
        let gjid = addr::group_jid(g);
        match signal::own_sender_key(state, phone, &gjid) {
            Ok(skdm) => {
                content.sender_key_distribution_message =
                    Some(wa::message::SenderKeyDistributionMessage {
                        group_id: Some(gjid),
                        axolotl_sender_key_distribution_message: Some(skdm.serialized().to_vec()),
                    });
            }
            Err(e) => tracing::info!("phone {phone}: no sender key for {g}: {e}"),
        }
    }
    let padded = padding::pad(&content.encode_to_vec(), &mut signal::op_rng(state, phone));
    let ct = match signal::encrypt_for(state, phone, &peer_phone, peer_device, &padded) {
        Ok(ct) => ct,
        Err(e) => {
            tracing::info!("phone {phone}: retry encrypt for {requester} failed: {e}");
            return;
        }
    };
    let Some((lid, push_name)) = router::identity_of(sim, phone) else {
        return;
    };
    let mut node = Node::new("message");
    node = match &group {
        Some(g) => node
            .attr("from", Jid::new(g.clone(), Server::Group))
            .attr("participant", Jid::pn(phone.to_string()))
            .attr("addressing_mode", "pn")
            .attr("participant_lid", Jid::lid(lid)),
        None => node
            .attr("from", Jid::pn(phone.to_string()))
            .attr("sender_lid", Jid::lid(lid)),
    };
    node = node
        .attr("id", id.to_string())
        .attr("t", router::now_secs().to_string())
        .attr("type", "text");
    if let Some(name) = push_name {
        node = node.attr("notify", name);
    }
    let enc = Node::new("enc")
        .attr("v", "2")
        .attr("type", ct.enc_type())
        .attr("count", count.to_string())
        .bytes(ct.serialized().to_vec());
    router::deliver(
        sim,
        &peer_phone,
        u32::from(peer_device),
        node.children(vec![enc]),
    );
}

/// The bundle a retry receipt carries in `<keys>` (§7.5), if complete.
fn keys_bundle(receipt: &Node) -> Option<PreKeyBundle> {
    let keys = receipt.child("keys")?;
    let bytes = |n: Option<&Node>| n.and_then(Node::content_bytes).map(|b| b.to_vec());
    let key32 =
        |n: Option<&Node>| -> Option<PublicKey> { Some(PublicKey(bytes(n)?.try_into().ok()?)) };
    let id24 = |n: Option<&Node>| -> Option<u32> {
        let b: [u8; 3] = bytes(n)?.try_into().ok()?;
        Some(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    };
    let registration = bytes(receipt.child("registration"))?;
    let registration = u32::from_be_bytes(registration.try_into().ok()?);
    let skey = keys.child("skey")?;
    let signature: [u8; 64] = bytes(skey.child("signature"))?.try_into().ok()?;
    let pre_key = keys
        .child("key")
        .and_then(|k| Some((id24(k.child("id"))?, key32(k.child("value"))?)));
    Some(PreKeyBundle {
        registration_id: registration,
        identity_key: key32(keys.child("identity"))?,
        signed_pre_key_id: id24(skey.child("id"))?,
        signed_pre_key: key32(skey.child("value"))?,
        signed_pre_key_signature: signature,
        pre_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(skey_sig_len: usize) -> Node {
        Node::new("receipt").children(vec![
            Node::new("registration").bytes(vec![0, 0, 1, 2]),
            Node::new("keys").children(vec![
                Node::new("identity").bytes(vec![9; 32]),
                Node::new("key").children(vec![
                    Node::new("id").bytes(vec![0, 0, 7]),
                    Node::new("value").bytes(vec![8; 32]),
                ]),
                Node::new("skey").children(vec![
                    Node::new("id").bytes(vec![0, 1, 0]),
                    Node::new("value").bytes(vec![6; 32]),
                    Node::new("signature").bytes(vec![5; skey_sig_len]),
                ]),
            ]),
        ])
    }

    #[test]
    fn keys_bundle_parses_and_rejects_bad_lengths() {
        let b = keys_bundle(&keys(64)).unwrap();
        assert_eq!(b.registration_id, 258);
        assert_eq!(b.pre_key, Some((7, PublicKey([8; 32]))));
        assert_eq!(b.signed_pre_key_id, 256);
        assert_eq!(b.identity_key, PublicKey([9; 32]));
        assert!(keys_bundle(&keys(63)).is_none());
        assert!(keys_bundle(&Node::new("receipt")).is_none());
    }
}
