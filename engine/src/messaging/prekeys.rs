//! Prekey bundle fetches (wa-protocol.md §6.3): the `encrypt` key IQ, and reading `<user>`
//! bundles (also the `<keys>` of a retry receipt, §7.5) into [`PreKeyBundle`]s.

use zapin_protocol::binary::Node;
use zapin_protocol::crypto::PublicKey;
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::signal::PreKeyBundle;

use super::{MessagingError, check_iq_result};

/// Why one device's bundle could not be used. Other devices of the same fetch are unaffected
/// (whatsapp-rust's behaviour; Baileys aborts the whole send instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("server error {code} for this device: {text}")]
    Server { code: u16, text: String },
    #[error("missing <{0}>")]
    Missing(&'static str),
    #[error("<{0}> has the wrong length")]
    BadLength(&'static str),
    #[error("key type is not 05")]
    BadKeyType,
    #[error("signed prekey signature does not verify")]
    BadSignature,
}

/// A fetched bundle and, for companion devices, their `ADVSignedDeviceIdentity` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedBundle {
    pub bundle: PreKeyBundle,
    pub device_identity: Option<Vec<u8>>,
}

/// `<iq to=s.whatsapp.net type=get xmlns=encrypt><key><user jid/>…</key></iq>`; the caller adds
/// the IQ `id`.
pub fn key_fetch_query(devices: &[Jid]) -> Node {
    let users = devices
        .iter()
        .map(|d| Node::new("user").attr("jid", d.clone()))
        .collect();
    Node::new("iq")
        .attr("to", Jid::server_only(Server::Pn))
        .attr("type", "get")
        .attr("xmlns", "encrypt")
        .children(vec![Node::new("key").children(users)])
}

fn bytes_of<'a>(parent: &'a Node, tag: &'static str) -> Result<&'a [u8], BundleError> {
    parent
        .child(tag)
        .and_then(Node::content_bytes)
        .map(|b| b.as_ref())
        .ok_or(BundleError::Missing(tag))
}

fn fixed<const N: usize>(parent: &Node, tag: &'static str) -> Result<[u8; N], BundleError> {
    bytes_of(parent, tag)?
        .try_into()
        .map_err(|_| BundleError::BadLength(tag))
}

/// Big-endian unsigned integer of 1 to 4 bytes (ids are 3 bytes, registration ids 4).
fn be_uint(parent: &Node, tag: &'static str) -> Result<u32, BundleError> {
    let b = bytes_of(parent, tag)?;
    if b.is_empty() || b.len() > 4 {
        return Err(BundleError::BadLength(tag));
    }
    Ok(b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x)))
}

fn key_pair_node(parent: &Node, tag: &'static str) -> Result<(u32, PublicKey), BundleError> {
    let node = parent.child(tag).ok_or(BundleError::Missing(tag))?;
    let id = be_uint(node, "id")?;
    let value = PublicKey(fixed::<32>(node, "value")?);
    Ok((id, value))
}

/// Reads the key fields of a bundle: `type`, `identity`, `skey` and an optional `key`, under
/// `keys_parent`, with the registration id given separately (in a retry receipt it sits outside
/// `<keys>`). Verifies the signed prekey's signature.
pub fn parse_bundle_fields(
    keys_parent: &Node,
    registration_id: u32,
) -> Result<FetchedBundle, BundleError> {
    if bytes_of(keys_parent, "type")? != [5] {
        return Err(BundleError::BadKeyType);
    }
    let identity_key = PublicKey(fixed::<32>(keys_parent, "identity")?);
    let skey = keys_parent
        .child("skey")
        .ok_or(BundleError::Missing("skey"))?;
    let (signed_pre_key_id, signed_pre_key) = key_pair_node(keys_parent, "skey")?;
    let signed_pre_key_signature = fixed::<64>(skey, "signature")?;
    let pre_key = match keys_parent.child("key") {
        Some(_) => Some(key_pair_node(keys_parent, "key")?),
        None => None,
    };
    let bundle = PreKeyBundle {
        registration_id,
        identity_key,
        signed_pre_key_id,
        signed_pre_key,
        signed_pre_key_signature,
        pre_key,
    };
    bundle.verify().map_err(|_| BundleError::BadSignature)?;
    let device_identity = keys_parent
        .child("device-identity")
        .and_then(Node::content_bytes)
        .map(|b| b.to_vec());
    Ok(FetchedBundle {
        bundle,
        device_identity,
    })
}

/// One `<user jid>` of a key-fetch answer. Fields directly under `<user>` (Baileys' layout) or
/// wrapped in `<keys>` (also accepted by whatsmeow and whatsapp-rust).
pub fn parse_user_bundle(user: &Node) -> Result<FetchedBundle, BundleError> {
    if let Some(err) = user.child("error") {
        return Err(BundleError::Server {
            code: err
                .attr_str("code")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            text: err.attr_str("text").unwrap_or_default().to_owned(),
        });
    }
    let registration_id = be_uint(user, "registration")?;
    let parent = user.child("keys").unwrap_or(user);
    let mut fetched = parse_bundle_fields(parent, registration_id)?;
    if fetched.device_identity.is_none() {
        fetched.device_identity = user
            .child("device-identity")
            .and_then(Node::content_bytes)
            .map(|b| b.to_vec());
    }
    Ok(fetched)
}

/// One device's entry in a key-fetch answer.
pub type DeviceBundle = (Jid, Result<FetchedBundle, BundleError>);

/// Reads a key-fetch answer: one entry per `<user>` with a parseable `jid`, each with its own
/// result.
pub fn parse_key_fetch_result(iq: &Node) -> Result<Vec<DeviceBundle>, MessagingError> {
    check_iq_result(iq)?;
    let list = iq
        .child("list")
        .ok_or(MessagingError::Malformed("key fetch", "no <list>"))?;
    Ok(list
        .children_by_tag("user")
        .filter_map(|u| Some((u.attr_jid("jid")?, parse_user_bundle(u))))
        .collect())
}

/// Big-endian bytes of the low `n` bytes of `v` (3 for prekey ids, 4 for registration ids).
pub(crate) fn be_bytes(v: u32, n: usize) -> Vec<u8> {
    v.to_be_bytes()[4 - n.min(4)..].to_vec()
}

/// The key fields of `bundle` as a server (or our retry receipt) lays them out: `type`,
/// `identity`, `key` (if any), `skey`.
pub fn bundle_key_nodes(bundle: &PreKeyBundle) -> Vec<Node> {
    let mut out = vec![
        Node::new("type").bytes(vec![5u8]),
        Node::new("identity").bytes(bundle.identity_key.0.to_vec()),
    ];
    if let Some((id, key)) = bundle.pre_key {
        out.push(Node::new("key").children(vec![
            Node::new("id").bytes(be_bytes(id, 3)),
            Node::new("value").bytes(key.0.to_vec()),
        ]));
    }
    out.push(Node::new("skey").children(vec![
        Node::new("id").bytes(be_bytes(bundle.signed_pre_key_id, 3)),
        Node::new("value").bytes(bundle.signed_pre_key.0.to_vec()),
        Node::new("signature").bytes(bundle.signed_pre_key_signature.to_vec()),
    ]));
    out
}

/// A `<user jid>` entry as the server answers a key fetch (used by test servers and the
/// simulator's tests).
pub fn user_bundle_node(jid: &Jid, bundle: &PreKeyBundle, device_identity: Option<&[u8]>) -> Node {
    let mut children = vec![Node::new("registration").bytes(be_bytes(bundle.registration_id, 4))];
    children.extend(bundle_key_nodes(bundle));
    if let Some(di) = device_identity {
        children.push(Node::new("device-identity").bytes(di.to_vec()));
    }
    Node::new("user")
        .attr("jid", jid.clone())
        .children(children)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;
    use zapin_protocol::signal::{LocalIdentity, PreKey, SignedPreKey};

    fn bundle(with_one_time: bool) -> PreKeyBundle {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let id = LocalIdentity::generate(&mut rng);
        let spk = SignedPreKey::generate(&id, 0x01_02_03, &mut rng);
        let pk = PreKey::generate(0x0a_0b_0c, &mut rng);
        PreKeyBundle::from_local(&id, &spk, with_one_time.then_some(&pk))
    }

    #[test]
    fn bundle_round_trips_through_the_node_form() {
        for one_time in [true, false] {
            let b = bundle(one_time);
            let dev = Jid::with_device("1", 2, Server::Lid);
            let iq = Node::new("iq").attr("type", "result").children(vec![
                Node::new("list").children(vec![user_bundle_node(&dev, &b, Some(b"adv"))]),
            ]);
            let parsed = parse_key_fetch_result(&iq).unwrap();
            assert_eq!(parsed.len(), 1);
            assert_eq!(parsed[0].0, dev);
            let got = parsed[0].1.as_ref().unwrap();
            assert_eq!(got.bundle, b);
            assert_eq!(got.device_identity.as_deref(), Some(&b"adv"[..]));
        }
    }

    #[test]
    fn per_device_errors_and_missing_parts_are_typed() {
        let b = bundle(true);
        let good = user_bundle_node(&Jid::pn("1"), &b, None);
        let gone = Node::new("user").attr("jid", Jid::pn("2")).children(vec![
            Node::new("error").attr("code", "406").attr("text", "gone"),
        ]);
        let mut no_skey = good.clone();
        if let zapin_protocol::binary::Content::Nodes(c) = &mut no_skey.content {
            c.retain(|n| n.tag != "skey");
        }
        let mut bad_sig = b.clone();
        bad_sig.signed_pre_key_signature[0] ^= 1;
        let bad_sig = user_bundle_node(&Jid::pn("4"), &bad_sig, None);
        assert_eq!(
            parse_user_bundle(&gone),
            Err(BundleError::Server {
                code: 406,
                text: "gone".into()
            })
        );
        assert_eq!(
            parse_user_bundle(&no_skey),
            Err(BundleError::Missing("skey"))
        );
        assert_eq!(parse_user_bundle(&bad_sig), Err(BundleError::BadSignature));
        assert!(parse_user_bundle(&good).is_ok());
        assert_eq!(
            parse_user_bundle(&Node::new("user")),
            Err(BundleError::Missing("registration"))
        );
    }

    #[test]
    fn key_fetch_query_lists_device_jids() {
        let q = key_fetch_query(&[Jid::with_device("1", 2, Server::Lid)]);
        assert_eq!(q.attr_str("xmlns"), Some("encrypt"));
        let user = q.child("key").unwrap().child("user").unwrap();
        assert_eq!(
            user.attr_jid("jid"),
            Some(Jid::with_device("1", 2, Server::Lid))
        );
    }
}
