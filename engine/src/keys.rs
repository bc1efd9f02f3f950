//! Fresh device credentials and the prekey IQs (wa-protocol.md §5 preamble, §6.3).

use rand_core::CryptoRng;
use zapin_protocol::binary::Node;
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::signal::{self, LocalIdentity};
use zapin_signal_store::{DeviceCredentials, KeyPairBytes, PreKey, Secret32, SignedPreKey};

use crate::pairing::server_jid;

fn stored(kp: &KeyPair) -> KeyPairBytes {
    KeyPairBytes::new(kp.public().0, *kp.private_bytes())
}

pub fn key_pair(stored: &KeyPairBytes) -> KeyPair {
    KeyPair::from_private(*stored.private.expose())
}

/// Keys an unpaired companion needs before its first connect: noise, identity, signed prekey 1,
/// registration id, adv secret.
pub fn new_credentials<R: CryptoRng + ?Sized>(rng: &mut R, now_unix: u64) -> DeviceCredentials {
    let noise = KeyPair::generate(rng);
    let identity = LocalIdentity::generate(rng);
    let spk = signal::SignedPreKey::generate(&identity, 1, rng);
    let mut adv = [0u8; 32];
    rng.fill_bytes(&mut adv);
    DeviceCredentials {
        registration_id: identity.registration_id,
        noise_key: stored(&noise),
        identity_key: stored(&identity.key_pair),
        signed_prekey: SignedPreKey {
            id: spk.id,
            key_pair: stored(&spk.key_pair),
            signature: spk.signature,
            created_at: now_unix,
        },
        adv_secret_key: Secret32::new(adv),
        account: None,
        push_name: None,
        platform: None,
        routing_info: None,
    }
}

/// `count` prekeys numbered after `max_id` (the store's highest id ever used).
pub fn new_prekeys<R: CryptoRng + ?Sized>(
    rng: &mut R,
    max_id: Option<u32>,
    count: u32,
) -> Vec<PreKey> {
    signal::PreKey::generate_batch(max_id.unwrap_or(0).wrapping_add(1), count, rng)
        .iter()
        .map(|p| PreKey {
            id: p.id,
            key_pair: stored(&p.key_pair),
        })
        .collect()
}

fn id3(id: u32) -> Vec<u8> {
    id.to_be_bytes()[1..].to_vec()
}

pub fn iq(id: &str, kind: &'static str, xmlns: &'static str, children: Vec<Node>) -> Node {
    let node = Node::new("iq")
        .attr("id", id.to_owned())
        .attr("to", server_jid())
        .attr("type", kind)
        .attr("xmlns", xmlns);
    if children.is_empty() {
        node
    } else {
        node.children(children)
    }
}

pub fn prekey_count_iq(id: &str) -> Node {
    iq(id, "get", "encrypt", vec![Node::new("count")])
}

pub fn digest_iq(id: &str) -> Node {
    iq(id, "get", "encrypt", vec![Node::new("digest")])
}

pub fn active_iq(id: &str) -> Node {
    iq(id, "set", "passive", vec![Node::new("active")])
}

pub fn ping_iq(id: &str) -> Node {
    iq(id, "get", "w:p", vec![])
}

/// The upload IQ: registration id, identity, the one-time prekeys and the signed prekey.
pub fn prekey_upload_iq(id: &str, creds: &DeviceCredentials, prekeys: &[PreKey]) -> Node {
    let list = prekeys
        .iter()
        .map(|p| {
            Node::new("key").children(vec![
                Node::new("id").bytes(id3(p.id)),
                Node::new("value").bytes(p.key_pair.public.to_vec()),
            ])
        })
        .collect();
    let spk = &creds.signed_prekey;
    iq(
        id,
        "set",
        "encrypt",
        vec![
            Node::new("registration").bytes(creds.registration_id.to_be_bytes().to_vec()),
            Node::new("type").bytes(vec![5u8]),
            Node::new("identity").bytes(creds.identity_key.public.to_vec()),
            Node::new("list").children(list),
            Node::new("skey").children(vec![
                Node::new("id").bytes(id3(spk.id)),
                Node::new("value").bytes(spk.key_pair.public.to_vec()),
                Node::new("signature").bytes(spk.signature.to_vec()),
            ]),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20::ChaCha20Rng;
    use chacha20::rand_core::SeedableRng;
    use zapin_protocol::crypto::{PublicKey, xeddsa};

    #[test]
    fn new_credentials_have_a_valid_signed_prekey() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let c = new_credentials(&mut rng, 5);
        let pk = PublicKey(c.signed_prekey.key_pair.public).serialize_djb();
        assert!(xeddsa::verify(
            &PublicKey(c.identity_key.public),
            &pk,
            &c.signed_prekey.signature
        ));
        assert!((1..=16380).contains(&c.registration_id));
        assert_eq!(key_pair(&c.noise_key).public().0, c.noise_key.public);
    }

    #[test]
    fn prekeys_continue_after_the_highest_id() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let keys = new_prekeys(&mut rng, Some(812), 3);
        assert_eq!(
            keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            [813, 814, 815]
        );
        let first = new_prekeys(&mut rng, None, 2);
        assert_eq!(first[0].id, 1);
    }

    #[test]
    fn upload_iq_has_three_byte_ids() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let c = new_credentials(&mut rng, 0);
        let keys = new_prekeys(&mut rng, Some(0x0001_0000), 2);
        let node = prekey_upload_iq("x", &c, &keys);
        let list = node.child("list").unwrap();
        let ids: Vec<_> = list
            .children_by_tag("key")
            .map(|k| k.child("id").unwrap().content_bytes().unwrap().to_vec())
            .collect();
        assert_eq!(ids, [vec![1, 0, 1], vec![1, 0, 2]]);
        assert_eq!(node.attr_str("xmlns"), Some("encrypt"));
        assert_eq!(
            node.child("registration")
                .unwrap()
                .content_bytes()
                .unwrap()
                .len(),
            4
        );
    }
}
