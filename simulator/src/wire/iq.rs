//! Answers to the IQs a logged-in companion sends (wa-protocol.md §6.3–6.6, §12.3): prekeys,
//! key bundles, usync, passive, ping, props, blocklist, privacy. Everything else that is an IQ
//! request and not the router's gets `501 feature-not-implemented`.

use sha1::{Digest, Sha1};
use zapin_protocol::binary::{Content, Node};
use zapin_protocol::crypto::{PublicKey, xeddsa};
use zapin_protocol::jid::{Jid, Server};

use super::nodes::{
    be_bytes, child_bytes, child_key, error, iq_error, iq_result, iq_result_with, read_be,
};
use crate::sim::Sim;
use crate::state::{PreKeyPublic, SignedPreKeyPublic, State};

/// Who asked.
#[derive(Debug, Clone)]
pub struct Asker<'a> {
    pub phone: &'a str,
    pub device: u16,
}

/// What to do with an IQ request of a logged-in device.
#[derive(Debug)]
pub enum IqOutcome {
    /// Write these nodes back.
    Answer(Vec<Node>),
    /// Not the handler's: the router answers it.
    Route,
}

/// Most prekeys accepted in one upload (Baileys sends 812; WhatsApp caps similarly).
const MAX_UPLOAD: usize = 2000;
/// Most users in one key fetch or usync.
const MAX_USERS: usize = 1000;

pub fn answer(sim: &Sim, asker: &Asker<'_>, iq: &Node) -> IqOutcome {
    let xmlns = iq.attr_str("xmlns").unwrap_or_default();
    let kind = iq.attr_str("type").unwrap_or_default();
    let first = iq.child_nodes().first().map(|c| &*c.tag);
    let reply = match (xmlns, kind) {
        ("privacy", "set") if first == Some("privacy") => {
            super::account_iq::privacy(sim, asker, iq, true)
        }
        ("w:g2", _) | ("privacy", "set") => return IqOutcome::Route,
        ("w:profile:picture", "set") if iq.attr_jid("target").is_some_and(|t| t.is_group()) => {
            return IqOutcome::Route;
        }
        ("w:profile:picture", "set") => super::account_iq::own_picture(sim, asker, iq),
        ("w:profile:picture", "get") => super::account_iq::picture_of(sim, iq),
        ("w:biz", "get") => super::account_iq::business_profile(sim, iq),
        ("w:sync:app:state", "set") => crate::appstate::sync_iq(sim, asker, iq),
        ("blocklist", "set") => super::account_iq::blocklist(sim, asker, iq, true),
        ("status", "set") => super::account_iq::status(sim, asker, iq),
        ("encrypt", _) => encrypt(sim, asker, iq),
        ("usync", "get") => usync(sim, iq),
        ("passive", "set")
        | ("w:p", "get")
        | ("urn:xmpp:whatsapp:dirty", "set")
        | ("w:stats", _) => iq_result(iq),
        ("abt", "get") => iq_result_with(
            iq,
            vec![
                Node::new("props")
                    .attr("protocol", "1")
                    .attr("hash", "zapin-sim"),
            ],
        ),
        ("blocklist", "get") => super::account_iq::blocklist(sim, asker, iq, false),
        ("privacy", "get") if first == Some("privacy") => {
            super::account_iq::privacy(sim, asker, iq, false)
        }
        ("w:m", "set") if first == Some("media_conn") => crate::media::media_conn(sim, iq),
        ("md", "set") if first == Some("remove-companion-device") => {
            remove_companion(sim, asker, iq)
        }
        _ => {
            tracing::info!(
                "{}:{} sent an IQ the simulator does not implement: xmlns={xmlns} type={kind} child={first:?}",
                asker.phone,
                asker.device
            );
            iq_error(iq, 501, "feature-not-implemented")
        }
    };
    IqOutcome::Answer(vec![reply])
}

fn encrypt(sim: &Sim, asker: &Asker<'_>, iq: &Node) -> Node {
    let state = sim.state();
    if iq.child("count").is_some() {
        let n =
            state.read(|s| companion(s, asker.phone, asker.device).map_or(0, |d| d.prekeys.len()));
        return iq_result_with(iq, vec![Node::new("count").attr("value", n.to_string())]);
    }
    if iq.child("digest").is_some() {
        return digest(sim, asker, iq);
    }
    if let Some(key) = iq.child("key") {
        return key_fetch(sim, iq, key);
    }
    if let Some(rotate) = iq.child("rotate") {
        return match rotate.child("skey").and_then(parse_skey) {
            Some(skey) => store_skey(sim, asker, iq, skey, None),
            None => iq_error(iq, 400, "bad-request"),
        };
    }
    if iq.child("list").is_some() || iq.child("skey").is_some() {
        return upload(sim, asker, iq);
    }
    iq_error(iq, 501, "feature-not-implemented")
}

fn companion<'s>(
    s: &'s State,
    phone: &str,
    device: u16,
) -> Option<&'s crate::state::CompanionDevice> {
    s.accounts.get(phone)?.companions.get(&device)
}

fn parse_skey(n: &Node) -> Option<SignedPreKeyPublic> {
    let id = child_bytes(n, "id")
        .filter(|b| b.len() <= 3)
        .and_then(read_be)?;
    let public = PublicKey(child_key(n, "value")?);
    let signature: [u8; 64] = child_bytes(n, "signature")?.try_into().ok()?;
    Some(SignedPreKeyPublic {
        id,
        public,
        signature,
    })
}

fn parse_prekey(n: &Node) -> Option<PreKeyPublic> {
    let id = child_bytes(n, "id")
        .filter(|b| b.len() <= 3)
        .and_then(read_be)?;
    let public = PublicKey(child_key(n, "value")?);
    Some(PreKeyPublic { id, public })
}

/// Stores a signed prekey after checking its signature with the device identity.
fn store_skey(
    sim: &Sim,
    asker: &Asker<'_>,
    iq: &Node,
    skey: SignedPreKeyPublic,
    registration_id: Option<u32>,
) -> Node {
    let stored = sim.state().write(|s| {
        let Some(d) = s
            .accounts
            .get_mut(asker.phone)
            .and_then(|a| a.companions.get_mut(&asker.device))
        else {
            return Err(iq_error(iq, 404, "item-not-found"));
        };
        if !xeddsa::verify(&d.identity, &skey.public.serialize_djb(), &skey.signature) {
            return Err(iq_error(iq, 406, "not-acceptable"));
        }
        d.signed_prekey = skey;
        if let Some(r) = registration_id {
            d.registration_id = r;
        }
        Ok(())
    });
    match stored {
        Ok(()) => iq_result(iq),
        Err(e) => e,
    }
}

fn upload(sim: &Sim, asker: &Asker<'_>, iq: &Node) -> Node {
    let identity = child_key(iq, "identity").map(PublicKey);
    let own = sim
        .state()
        .read(|s| companion(s, asker.phone, asker.device).map(|d| d.identity));
    match (identity, own) {
        (_, None) => return iq_error(iq, 404, "item-not-found"),
        (Some(sent), Some(own)) if sent != own => return iq_error(iq, 406, "not-acceptable"),
        _ => {}
    }
    let registration_id = child_bytes(iq, "registration").and_then(read_be);
    if let Some(skey) = iq.child("skey") {
        let Some(skey) = parse_skey(skey) else {
            return iq_error(iq, 400, "bad-request");
        };
        let stored = store_skey(sim, asker, iq, skey, registration_id);
        if stored.attr_str("type") != Some("result") {
            return stored;
        }
    }
    let keys: Option<Vec<PreKeyPublic>> = iq
        .child("list")
        .map(|l| {
            l.children_by_tag("key")
                .take(MAX_UPLOAD)
                .map(parse_prekey)
                .collect()
        })
        .unwrap_or(Some(Vec::new()));
    let Some(keys) = keys else {
        return iq_error(iq, 400, "bad-request");
    };
    match sim.state().upload_prekeys(asker.phone, asker.device, keys) {
        Ok(_) => iq_result(iq),
        Err(_) => iq_error(iq, 404, "item-not-found"),
    }
}

fn skey_node(skey_id: u32, public: &PublicKey, signature: &[u8; 64]) -> Node {
    Node::new("skey").children(vec![
        Node::new("id").bytes(be_bytes(skey_id, 3)),
        Node::new("value").bytes(public.0.to_vec()),
        Node::new("signature").bytes(signature.to_vec()),
    ])
}

fn digest(sim: &Sim, asker: &Asker<'_>, iq: &Node) -> Node {
    let found = sim.state().read(|s| {
        companion(s, asker.phone, asker.device).map(|d| {
            (
                d.registration_id,
                d.identity,
                d.signed_prekey.clone(),
                d.prekeys.iter().copied().collect::<Vec<_>>(),
            )
        })
    });
    let Some((reg, identity, skey, prekeys)) = found else {
        return iq_error(iq, 404, "item-not-found");
    };
    let mut h = Sha1::new();
    h.update(identity.as_bytes());
    h.update(skey.public.as_bytes());
    h.update(skey.signature);
    for k in &prekeys {
        h.update(k.public.as_bytes());
    }
    let hash: [u8; 20] = h.finalize().into();
    iq_result_with(
        iq,
        vec![Node::new("digest").children(vec![
            Node::new("registration").bytes(be_bytes(reg, 4)),
            Node::new("type").bytes(vec![5u8]),
            Node::new("identity").bytes(identity.0.to_vec()),
            skey_node(skey.id, &skey.public, &skey.signature),
            Node::new("list").children(
                prekeys
                    .iter()
                    .map(|k| Node::new("id").bytes(be_bytes(k.id, 3)))
                    .collect(),
            ),
            Node::new("hash").bytes(hash.to_vec()),
        ])],
    )
}

/// The phone number behind a user JID (PN or LID).
fn phone_of(s: &State, jid: &Jid) -> Option<String> {
    match jid.server {
        Server::Pn => s.accounts.contains_key(&jid.user).then(|| jid.user.clone()),
        Server::Lid => s.lids.get(&jid.user).cloned(),
        _ => None,
    }
}

fn key_fetch(sim: &Sim, iq: &Node, key: &Node) -> Node {
    let users: Vec<Node> = key
        .children_by_tag("user")
        .take(MAX_USERS)
        .filter_map(|u| {
            let jid = u.attr_jid("jid")?;
            Some(bundle(sim, &jid).unwrap_or_else(|| {
                Node::new("user")
                    .attr("jid", jid)
                    .children(vec![error(404, "item-not-found")])
            }))
        })
        .collect();
    iq_result_with(iq, vec![Node::new("list").children(users)])
}

/// One device's key bundle, consuming one of its one-time prekeys if it has any left. The keys come
/// from `phone::fetch_bundle`, the same function the mock phones use to reach a device, so what a
/// companion is handed for a phone (device 0) is what that phone decrypts with.
fn bundle(sim: &Sim, jid: &Jid) -> Option<Node> {
    let state = sim.state();
    let phone = state.read(|s| phone_of(s, jid))?;
    let b = crate::phone::fetch_bundle(state, &phone, jid.device)?;
    let mut fields = vec![
        Node::new("registration").bytes(be_bytes(b.registration_id, 4)),
        Node::new("type").bytes(vec![5u8]),
        Node::new("identity").bytes(b.identity_key.0.to_vec()),
        skey_node(
            b.signed_pre_key_id,
            &b.signed_pre_key,
            &b.signed_pre_key_signature,
        ),
    ];
    if let Some((id, k)) = &b.pre_key {
        fields.push(prekey_node(*id, k));
    }
    if jid.device != 0 {
        let adv = state
            .read(|s| companion(s, &phone, jid.device).map(|d| d.adv_signed_identity.clone()))
            .unwrap_or_default();
        if !adv.is_empty() {
            fields.push(Node::new("device-identity").bytes(adv));
        }
    }
    Some(Node::new("user").attr("jid", jid.clone()).children(fields))
}

fn prekey_node(id: u32, public: &PublicKey) -> Node {
    Node::new("key").children(vec![
        Node::new("id").bytes(be_bytes(id, 3)),
        Node::new("value").bytes(public.0.to_vec()),
    ])
}

fn usync(sim: &Sim, iq: &Node) -> Node {
    let Some(sync) = iq.child("usync") else {
        return iq_error(iq, 400, "bad-request");
    };
    let query = sync.child("query");
    let wants = |tag: &str| query.is_some_and(|q| q.child(tag).is_some());
    let (devices, lid, contact) = (wants("devices"), wants("lid"), wants("contact"));
    let status = wants("status");
    let users: Vec<Node> = sync
        .child("list")
        .map(|l| {
            l.children_by_tag("user")
                .take(MAX_USERS)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter_map(|u| usync_user(sim, u, devices, lid, contact, status))
        .collect();
    let mut out = Node::new("usync");
    if let Some(sid) = sync.attr_str("sid") {
        out = out.attr("sid", sid.to_string());
    }
    iq_result_with(
        iq,
        vec![out.children(vec![Node::new("list").children(users)])],
    )
}

fn usync_user(
    sim: &Sim,
    user: &Node,
    devices: bool,
    lid: bool,
    contact: bool,
    status: bool,
) -> Option<Node> {
    // A user is named by `jid`, or by `<contact>+15551234567</contact>` for phone lookups.
    let (jid, phone) = match user.attr_jid("jid") {
        Some(jid) => {
            let phone = sim.state().read(|s| phone_of(s, &jid.to_non_ad()));
            (jid.to_non_ad(), phone)
        }
        None => {
            let number: String = user
                .child("contact")
                .and_then(Node::content_str)?
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let phone = sim.state().account_exists(&number).then(|| number.clone());
            (Jid::pn(number), phone)
        }
    };
    let mut children = Vec::new();
    let info = phone.as_deref().and_then(|p| {
        sim.state().read(|s| {
            let a = s.accounts.get(p)?;
            Some((
                a.lid.clone(),
                a.companions
                    .values()
                    .map(|d| (d.device, d.key_index))
                    .collect::<Vec<_>>(),
            ))
        })
    });
    if devices && let Some((_, companions)) = &info {
        let mut list = vec![Node::new("device").attr("id", "0")];
        list.extend(companions.iter().map(|(dev, key_index)| {
            Node::new("device")
                .attr("id", dev.to_string())
                .attr("key-index", key_index.to_string())
        }));
        children.push(Node::new("devices").children(vec![Node::new("device-list").children(list)]));
    }
    if lid && let Some((lid_user, _)) = &info {
        children.push(Node::new("lid").attr("val", Jid::lid(lid_user.clone())));
    }
    if contact {
        let kind = if info.is_some() { "in" } else { "out" };
        children.push(Node::new("contact").attr("type", kind));
    }
    // The about text (`<status t>TEXT</status>`; empty when unset), for existing users.
    if status && let Some(p) = phone.as_deref() {
        let (text, at) = sim
            .state()
            .read(|s| {
                s.accounts
                    .get(p)
                    .map(|a| (a.profile.status.clone(), a.profile.status_at))
            })
            .unwrap_or_default();
        let text = text.unwrap_or_default();
        let node = Node::new("status").attr("t", at.to_string());
        children.push(if text.is_empty() {
            node
        } else {
            node.bytes(text.into_bytes())
        });
    }
    let node = Node::new("user").attr("jid", jid);
    Some(if children.is_empty() {
        node
    } else {
        Node {
            content: Content::Nodes(children),
            ..node
        }
    })
}

/// Logout (`<remove-companion-device jid reason/>`): the device is unlinked as if the phone had
/// removed it, so its connection gets `401 device_removed` right after this result.
fn remove_companion(sim: &Sim, asker: &Asker<'_>, iq: &Node) -> Node {
    let target = iq
        .child("remove-companion-device")
        .and_then(|r| r.attr_jid("jid"));
    let device = match target {
        Some(jid) => {
            let owner = sim.state().read(|s| phone_of(s, &jid.to_non_ad()));
            if owner.as_deref() != Some(asker.phone) {
                return iq_error(iq, 403, "forbidden");
            }
            jid.device
        }
        None => asker.device,
    };
    if sim.state().unlink(asker.phone, device).is_err() {
        return iq_error(iq, 404, "item-not-found");
    }
    if let Some(conn) = sim.connections().connection_of(asker.phone, device) {
        let _ = sim
            .connections()
            .send(conn, crate::conn::ConnCommand::Unlinked);
    }
    iq_result(iq)
}
