//! The account's own settings over IQs, as WhatsApp serves them: `privacy` (get the six
//! categories, set one), `blocklist` (get, block/unblock), `status` (the about text) and
//! `w:profile:picture` without a `target` (the account's picture, JPEG only); and what others
//! read: a user's picture URL (`w:profile:picture` get with a `target`) and business profile
//! (`w:biz` get).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};

use super::iq::Asker;
use super::nodes::{iq_error, iq_result, iq_result_with};
use crate::sim::Sim;
use crate::state::AccountProfile;

/// The longest about text WhatsApp accepts.
pub const MAX_STATUS: usize = 139;

fn profile(sim: &Sim, phone: &str) -> AccountProfile {
    sim.state()
        .read(|st| st.accounts.get(phone).map(|a| a.profile.clone()))
        .unwrap_or_default()
}

fn update(sim: &Sim, phone: &str, f: impl FnOnce(&mut AccountProfile)) {
    sim.state().write(|st| {
        if let Some(a) = st.accounts.get_mut(phone) {
            f(&mut a.profile);
        }
    });
}

/// `<privacy/>` get → every category; set `<privacy><category name value/></privacy>`.
pub fn privacy(sim: &Sim, asker: &Asker<'_>, iq: &Node, set: bool) -> Node {
    let Some(list) = iq.child("privacy") else {
        return iq_error(iq, 400, "bad-request");
    };
    if !set {
        let p = profile(sim, asker.phone);
        let categories = AccountProfile::CATEGORIES
            .iter()
            .map(|(name, _)| {
                Node::new("category")
                    .attr("name", *name)
                    .attr("value", p.privacy_value(name))
            })
            .collect();
        return iq_result_with(iq, vec![Node::new("privacy").children(categories)]);
    }
    let mut changes = Vec::new();
    for c in list.children_by_tag("category") {
        let (Some(name), Some(value)) = (c.attr_str("name"), c.attr_str("value")) else {
            return iq_error(iq, 400, "bad-request");
        };
        let allowed = AccountProfile::CATEGORIES
            .iter()
            .find(|(n, _)| *n == name)
            .is_some_and(|(_, values)| values.contains(&value));
        if !allowed {
            return iq_error(iq, 400, "bad-request");
        }
        changes.push((name.to_string(), value.to_string()));
    }
    if changes.is_empty() {
        return iq_error(iq, 400, "bad-request");
    }
    update(sim, asker.phone, |p| p.privacy.extend(changes));
    iq_result(iq)
}

/// get → `<list><item jid/>…</list>`; set `<item action=block|unblock jid/>`.
pub fn blocklist(sim: &Sim, asker: &Asker<'_>, iq: &Node, set: bool) -> Node {
    if !set {
        let items = profile(sim, asker.phone)
            .blocked
            .into_iter()
            .map(|j| Node::new("item").attr("jid", j))
            .collect();
        return iq_result_with(iq, vec![Node::new("list").children(items)]);
    }
    let Some(item) = iq.child("item") else {
        return iq_error(iq, 400, "bad-request");
    };
    let Some(jid) = item
        .attr_jid("jid")
        .map(|j| j.to_non_ad())
        .filter(|j| j.is_pn() || j.is_lid())
    else {
        return iq_error(iq, 400, "bad-request");
    };
    let block = match item.attr_str("action") {
        Some("block") => true,
        Some("unblock") => false,
        _ => return iq_error(iq, 400, "bad-request"),
    };
    update(sim, asker.phone, |p| {
        if block {
            p.blocked.insert(jid.to_string());
        } else {
            p.blocked.remove(&jid.to_string());
        }
    });
    iq_result(iq)
}

/// set `<status>TEXT</status>`.
pub fn status(sim: &Sim, asker: &Asker<'_>, iq: &Node) -> Node {
    let Some(text) = iq
        .child("status")
        .map(|s| s.content_str().unwrap_or_default())
    else {
        return iq_error(iq, 400, "bad-request");
    };
    if text.chars().count() > MAX_STATUS {
        return iq_error(iq, 400, "bad-request");
    }
    let text = text.to_string();
    let now = crate::state::unix_now().as_secs();
    update(sim, asker.phone, |p| {
        p.status = Some(text);
        p.status_at = now;
    });
    iq_result(iq)
}

/// The account's own picture: `<picture type=image>JPEG</picture>` sets it, no child removes it.
pub fn own_picture(sim: &Sim, asker: &Asker<'_>, iq: &Node) -> Node {
    if let Some(target) = iq.attr_jid("target")
        && target.to_non_ad() != Jid::pn(asker.phone.to_string())
    {
        return iq_error(iq, 401, "not-authorized");
    }
    let jpeg = iq
        .child("picture")
        .map(|p| p.content_bytes().map(|b| b.to_vec()).unwrap_or_default());
    if let Some(jpeg) = &jpeg
        && !jpeg.starts_with(&[0xFF, 0xD8, 0xFF])
    {
        return iq_error(iq, 400, "bad-request");
    }
    let id = jpeg
        .as_ref()
        .map(|_| crate::state::unix_now().as_secs().to_string());
    let len = jpeg.as_ref().map_or(0, Vec::len);
    // Kept as a media blob, so the URL others get serves the picture.
    let blob = match &jpeg {
        Some(jpeg) => {
            let token = URL_SAFE_NO_PAD.encode(Sha256::digest(jpeg));
            match sim
                .media()
                .put("profile", &token, bytes::Bytes::from(jpeg.clone()))
            {
                Ok(blob) => Some(blob),
                Err(_) => return iq_error(iq, 500, "internal-server-error"),
            }
        }
        None => None,
    };
    update(sim, asker.phone, |p| {
        p.picture_id = id.clone();
        p.picture_len = len;
        p.picture_blob = blob;
    });
    match id {
        Some(id) => iq_result_with(iq, vec![Node::new("picture").attr("id", id)]),
        None => iq_result(iq),
    }
}

/// The account `jid` names (a phone-number or LID user), if it exists.
fn account_of(sim: &Sim, jid: &Jid) -> Option<String> {
    let jid = jid.to_non_ad();
    sim.state().read(|st| match jid.server {
        Server::Pn => st
            .accounts
            .contains_key(&jid.user)
            .then(|| jid.user.clone()),
        Server::Lid => st.lids.get(&jid.user).cloned(),
        _ => None,
    })
}

/// Another user's picture: `<picture type=image query=url/>` with `target` →
/// `<picture id url direct_path type=image/>`, or 404 when the user has none (or does not exist).
/// Group pictures are not served here (404).
pub fn picture_of(sim: &Sim, iq: &Node) -> Node {
    let Some(target) = iq.attr_jid("target") else {
        return iq_error(iq, 400, "bad-request");
    };
    let Some(phone) = account_of(sim, &target) else {
        return iq_error(iq, 404, "item-not-found");
    };
    let p = profile(sim, &phone);
    let (Some(id), Some(blob)) = (p.picture_id, p.picture_blob) else {
        return iq_error(iq, 404, "item-not-found");
    };
    let direct_path = crate::media::MediaStore::direct_path(&blob);
    let url = format!("{}{direct_path}", sim.media().url_base());
    iq_result_with(
        iq,
        vec![
            Node::new("picture")
                .attr("id", id)
                .attr("type", "image")
                .attr("url", url)
                .attr("direct_path", direct_path),
        ],
    )
}

/// `<business_profile v><profile jid/></business_profile>` → the profile of each business
/// account asked about; non-business and unknown users are left out (WhatsApp's answer).
pub fn business_profile(sim: &Sim, iq: &Node) -> Node {
    let Some(ask) = iq.child("business_profile") else {
        return iq_error(iq, 400, "bad-request");
    };
    let profiles = ask
        .children_by_tag("profile")
        .filter_map(|p| {
            let jid = p.attr_jid("jid")?.to_non_ad();
            let phone = account_of(sim, &jid)?;
            let b = profile(sim, &phone).business?;
            let mut children = vec![Node::new("description").bytes(b.description.into_bytes())];
            let texts = [
                ("email", b.email),
                ("website", b.website),
                ("address", b.address),
            ];
            for (tag, value) in texts {
                if let Some(v) = value {
                    children.push(Node::new(tag).bytes(v.into_bytes()));
                }
            }
            if let Some(c) = b.category {
                children.push(Node::new("categories").children(vec![
                    Node::new("category").attr("id", "0").bytes(c.into_bytes()),
                ]));
            }
            Some(
                Node::new("profile")
                    .attr("jid", jid)
                    .attr("tag", "0")
                    .children(children),
            )
        })
        .collect::<Vec<_>>();
    let mut answer = Node::new("business_profile").attr("v", "244");
    if !profiles.is_empty() {
        answer = answer.children(profiles);
    }
    iq_result_with(iq, vec![answer])
}
