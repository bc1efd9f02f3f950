//! `iq xmlns=w:g2` (§12.5) and the group's `w:profile:picture`, and the `w:gp2` (or `picture`)
//! notifications members' devices get for each change.
//!
//! Each change is one function taking the acting phone, so the socket IQs and the control API's
//! "the phone does it" routes share the rules: WhatsApp's codes are 400 bad request, 401 not an
//! admin (or info locked to admins), 403 not a member, 404 no such group, 406 invalid invite
//! code, 410 revoked invite code, 409 (per participant) already a member.

use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};

use super::{Sender, deliver, devices_of, identity_of, iq_error, iq_result, now_secs};
use crate::sim::Sim;
use crate::state::{AdminRole, Group, GroupDescription, GroupParticipant, StateError};

/// A refusal: the IQ error code and text.
pub type Refusal = (u16, &'static str);

const BAD_REQUEST: Refusal = (400, "bad-request");
const NOT_AUTHORIZED: Refusal = (401, "not-authorized");
const FORBIDDEN: Refusal = (403, "forbidden");
const NOT_FOUND: Refusal = (404, "item-not-found");
const NOT_ACCEPTABLE: Refusal = (406, "not-acceptable");
const GONE: Refusal = (410, "gone");
/// WhatsApp's subject limit.
pub const MAX_SUBJECT: usize = 100;
/// WhatsApp's description limit.
pub const MAX_DESCRIPTION: usize = 2048;

fn refuse(iq: &Node, (code, text): Refusal) -> Node {
    iq_error(iq, code, text)
}

pub(super) fn handle_iq(sim: &Sim, sender: &Sender, iq: &Node) -> Node {
    let Some(op) = iq.child_nodes().first() else {
        return refuse(iq, BAD_REQUEST);
    };
    let to_server = iq
        .attr_jid("to")
        .is_some_and(|j| j.server == Server::Group && j.user.is_empty());
    let set = iq.attr_str("type") == Some("set");
    match (op.tag.as_ref(), to_server) {
        ("create", _) => create(sim, sender, iq, op),
        ("participating", _) => {
            let groups: Vec<Node> = sim
                .state()
                .read(|st| {
                    st.groups
                        .values()
                        .filter(|g| g.participants.iter().any(|p| p.phone == sender.phone))
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .iter()
                .map(|g| group_node(sim, g))
                .collect();
            iq_result(iq).children(vec![Node::new("groups").children(groups)])
        }
        ("leave", _) => leave_iq(sim, sender, iq, op),
        ("invite", true) => {
            let code = op.attr_str("code").unwrap_or_default();
            let result = if set {
                accept_invite(sim, &sender.phone, code, Some(sender))
                    .map(|g| Node::new("group").attr("jid", Jid::group(g.id)))
            } else {
                group_by_code(sim, code).map(|g| group_node(sim, &g))
            };
            answer(iq, result.map(|n| vec![n]))
        }
        // A group operation addressed to the server rather than to a group.
        (
            "query" | "add" | "remove" | "promote" | "demote" | "subject" | "description"
            | "announcement" | "not_announcement" | "locked" | "unlocked" | "ephemeral"
            | "not_ephemeral",
            true,
        ) => refuse(iq, BAD_REQUEST),
        (_, true) => iq_error(iq, 501, "feature-not-implemented"),
        (tag, false) => {
            const GROUP_OPS: [&str; 15] = [
                "query",
                "add",
                "remove",
                "promote",
                "demote",
                "subject",
                "description",
                "announcement",
                "not_announcement",
                "locked",
                "unlocked",
                "ephemeral",
                "not_ephemeral",
                "invite",
                "picture",
            ];
            if !GROUP_OPS.contains(&tag) {
                return iq_error(iq, 501, "feature-not-implemented");
            }
            let g = match member_group(sim, &sender.phone, iq) {
                Ok(g) => g,
                Err(r) => return refuse(iq, r),
            };
            let skip = Some(sender);
            let actor = sender.phone.as_str();
            match tag {
                "query" => iq_result(iq).children(vec![group_node(sim, &g)]),
                "add" | "remove" | "promote" | "demote" => {
                    let jids: Vec<Jid> = op
                        .children_by_tag("participant")
                        .filter_map(|p| p.attr_jid("jid"))
                        .collect();
                    let result = change_participants(sim, &g, actor, tag, &jids, skip).map(|rs| {
                        vec![
                            Node::new(tag.to_string()).children(
                                rs.into_iter()
                                    .map(|(jid, code)| {
                                        let n =
                                            Node::new("participant").attr("jid", jid.to_non_ad());
                                        if code == 200 {
                                            n
                                        } else {
                                            n.attr("error", code.to_string())
                                        }
                                    })
                                    .collect(),
                            ),
                        ]
                    });
                    answer(iq, result)
                }
                "subject" => {
                    let text = op.content_str().unwrap_or_default();
                    answer(
                        iq,
                        set_subject(sim, &g, actor, text, skip).map(|()| Vec::new()),
                    )
                }
                "description" => {
                    let body = op
                        .child("body")
                        .and_then(Node::content_str)
                        .filter(|_| op.attr_str("delete") != Some("true"));
                    let result = set_description(
                        sim,
                        &g,
                        actor,
                        body,
                        op.attr_str("id"),
                        op.attr_str("prev"),
                        skip,
                    );
                    answer(iq, result.map(|()| Vec::new()))
                }
                "announcement" | "not_announcement" | "locked" | "unlocked" => answer(
                    iq,
                    set_setting(sim, &g, actor, tag, skip).map(|()| Vec::new()),
                ),
                "ephemeral" | "not_ephemeral" => {
                    let expiration = if tag == "ephemeral" {
                        match op.attr_str("expiration").and_then(|e| e.parse().ok()) {
                            Some(e) => e,
                            None => return refuse(iq, BAD_REQUEST),
                        }
                    } else {
                        0
                    };
                    answer(
                        iq,
                        set_ephemeral(sim, &g, actor, expiration, skip).map(|()| Vec::new()),
                    )
                }
                "invite" => {
                    let result = invite_code(sim, &g, actor, set, skip)
                        .map(|code| vec![Node::new("invite").attr("code", code)]);
                    answer(iq, result)
                }
                _ => iq_error(iq, 501, "feature-not-implemented"),
            }
        }
    }
}

fn answer(iq: &Node, result: Result<Vec<Node>, Refusal>) -> Node {
    match result {
        Ok(children) if children.is_empty() => iq_result(iq),
        Ok(children) => iq_result(iq).children(children),
        Err(r) => refuse(iq, r),
    }
}

/// `<iq xmlns=w:profile:picture type=set target=J(group)>[<picture type=image>JPEG</picture>]`.
pub(super) fn handle_picture_iq(sim: &Sim, sender: &Sender, iq: &Node) -> Node {
    let Some(target) = iq.attr_jid("target").filter(Jid::is_group) else {
        return iq_error(iq, 501, "feature-not-implemented");
    };
    let g = match sim.state().group(&target.user) {
        None => return refuse(iq, NOT_FOUND),
        Some(g) if !is_member(&g, &sender.phone) => return refuse(iq, FORBIDDEN),
        Some(g) => g,
    };
    let jpeg = iq
        .child("picture")
        .map(|p| p.content_bytes().map(|b| b.to_vec()).unwrap_or_default());
    match set_picture(sim, &g, &sender.phone, jpeg.as_deref(), Some(sender)) {
        Ok(Some(id)) => iq_result(iq).children(vec![Node::new("picture").attr("id", id)]),
        Ok(None) => iq_result(iq),
        Err(r) => refuse(iq, r),
    }
}

fn create(sim: &Sim, sender: &Sender, iq: &Node, op: &Node) -> Node {
    let Some(subject) = op
        .attr_str("subject")
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_SUBJECT)
    else {
        return refuse(iq, BAD_REQUEST);
    };
    let participants: Vec<String> = op
        .children_by_tag("participant")
        .filter_map(|p| p.attr_jid("jid"))
        .map(|j| j.to_non_ad().to_string())
        .collect();
    let id = match sim
        .state()
        .create_group(&sender.phone, subject, &participants)
    {
        Ok(id) => id,
        Err(StateError::UnknownParticipant(_)) => return refuse(iq, BAD_REQUEST),
        Err(_) => return iq_error(iq, 500, "internal-server-error"),
    };
    let Some(group) = sim.state().group(&id) else {
        return iq_error(iq, 500, "internal-server-error");
    };
    let node = group_node(sim, &group);
    notify_group(
        sim,
        &group,
        &sender.phone,
        Node::new("create").children(vec![node.clone()]),
        Some(sender),
    );
    iq_result(iq).children(vec![node])
}

fn is_member(g: &Group, phone: &str) -> bool {
    g.participants.iter().any(|p| p.phone == phone)
}

fn is_admin(g: &Group, phone: &str) -> bool {
    g.participants
        .iter()
        .any(|p| p.phone == phone && p.admin.is_some())
}

/// The group an IQ is addressed to, if `phone` is a member.
fn member_group(sim: &Sim, phone: &str, iq: &Node) -> Result<Group, Refusal> {
    let to = iq.attr_jid("to").filter(Jid::is_group).ok_or(BAD_REQUEST)?;
    member_group_by_id(sim, phone, &to.user)
}

/// Group `id`, if `phone` is a member.
pub fn member_group_by_id(sim: &Sim, phone: &str, id: &str) -> Result<Group, Refusal> {
    let g = sim.state().group(id).ok_or(NOT_FOUND)?;
    if is_member(&g, phone) {
        Ok(g)
    } else {
        Err(FORBIDDEN)
    }
}

/// Info changes (subject, description, picture, timer) are open to members unless `locked`.
fn may_edit_info(g: &Group, phone: &str) -> Result<(), Refusal> {
    if g.locked && !is_admin(g, phone) {
        Err(NOT_AUTHORIZED)
    } else {
        Ok(())
    }
}

/// Adds, removes, promotes or demotes; answers each participant's code (200, 404 no such
/// account or not a member, 409 already a member).
pub fn change_participants(
    sim: &Sim,
    g: &Group,
    actor: &str,
    action: &str,
    jids: &[Jid],
    skip: Option<&Sender>,
) -> Result<Vec<(Jid, u16)>, Refusal> {
    if !is_admin(g, actor) {
        return Err(NOT_AUTHORIZED);
    }
    if jids.is_empty() {
        return Err(BAD_REQUEST);
    }
    let mut results = Vec::new();
    let mut changed = Vec::new();
    for jid in jids {
        let phone = super::resolve_device(sim, jid).map(|(p, _)| p);
        let code = match &phone {
            None => 404,
            Some(phone) => {
                let ok = sim.state().write(|st| {
                    let Some(g) = st.groups.get_mut(&g.id) else {
                        return false;
                    };
                    let pos = g.participants.iter().position(|p| &p.phone == phone);
                    match (action, pos) {
                        ("add", None) => {
                            g.participants.push(GroupParticipant {
                                phone: phone.clone(),
                                admin: None,
                            });
                            true
                        }
                        ("remove", Some(i)) => {
                            g.participants.remove(i);
                            true
                        }
                        ("promote", Some(i)) => {
                            if let Some(p) = g.participants.get_mut(i) {
                                p.admin.get_or_insert(AdminRole::Admin);
                            }
                            true
                        }
                        ("demote", Some(i)) => {
                            if let Some(p) = g.participants.get_mut(i) {
                                p.admin = None;
                            }
                            true
                        }
                        _ => false,
                    }
                });
                if ok {
                    changed.push(phone.clone());
                    200
                } else if action == "add" {
                    409
                } else {
                    404
                }
            }
        };
        results.push((jid.to_non_ad(), code));
    }
    if !changed.is_empty() {
        let body = Node::new(action.to_string())
            .children(changed.iter().map(|p| participant_node(sim, p)).collect());
        // Removed members hear about it too: notify the group as it was and as it is.
        let mut audience = g.clone();
        if let Some(now) = sim.state().group(&g.id) {
            for p in now.participants {
                if !is_member(&audience, &p.phone) {
                    audience.participants.push(p);
                }
            }
        }
        notify_group(sim, &audience, actor, body, skip);
    }
    Ok(results)
}

fn participant_node(sim: &Sim, phone: &str) -> Node {
    let n = Node::new("participant").attr("jid", Jid::pn(phone.to_string()));
    match sim.state().lid_of(phone) {
        Some(lid) => n.attr("lid", Jid::lid(lid)),
        None => n,
    }
}

pub fn set_subject(
    sim: &Sim,
    g: &Group,
    actor: &str,
    subject: &str,
    skip: Option<&Sender>,
) -> Result<(), Refusal> {
    let subject = subject.trim();
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT {
        return Err(BAD_REQUEST);
    }
    may_edit_info(g, actor)?;
    let t = now_secs();
    sim.state().write(|st| {
        if let Some(g) = st.groups.get_mut(&g.id) {
            g.subject = subject.to_string();
            g.subject_owner = Some(actor.to_string());
            g.subject_time = Some(t);
        }
    });
    let body = Node::new("subject")
        .attr("subject", subject.to_string())
        .attr("s_o", Jid::pn(actor.to_string()))
        .attr("s_t", t.to_string());
    notify_group(sim, g, actor, body, skip);
    Ok(())
}

/// `body` `None` deletes the description. `prev` must name the current description (WhatsApp
/// refuses an edit based on a stale one with 409); `id` defaults to a fresh one.
pub fn set_description(
    sim: &Sim,
    g: &Group,
    actor: &str,
    body: Option<&str>,
    id: Option<&str>,
    prev: Option<&str>,
    skip: Option<&Sender>,
) -> Result<(), Refusal> {
    may_edit_info(g, actor)?;
    if body.is_some_and(|b| b.chars().count() > MAX_DESCRIPTION) {
        return Err(BAD_REQUEST);
    }
    let current = g.description.as_ref().map(|d| d.id.as_str());
    if prev.is_some() && prev != current {
        return Err((409, "conflict"));
    }
    let id = id
        .map(str::to_owned)
        .unwrap_or_else(|| sim.state().next_message_id());
    let t = now_secs();
    let description = body.map(|b| GroupDescription {
        id: id.clone(),
        body: b.to_string(),
        owner: actor.to_string(),
        t,
    });
    sim.state().write(|st| {
        if let Some(g) = st.groups.get_mut(&g.id) {
            g.description = description.clone();
        }
    });
    let mut node = Node::new("description")
        .attr("id", id)
        .attr("participant", Jid::pn(actor.to_string()))
        .attr("t", t.to_string());
    node = match body {
        Some(b) => node.children(vec![Node::new("body").bytes(b.as_bytes().to_vec())]),
        None => node.attr("delete", "true"),
    };
    notify_group(sim, g, actor, node, skip);
    Ok(())
}

/// `announcement`, `not_announcement`, `locked`, `unlocked`: admins only.
pub fn set_setting(
    sim: &Sim,
    g: &Group,
    actor: &str,
    setting: &str,
    skip: Option<&Sender>,
) -> Result<(), Refusal> {
    if !is_admin(g, actor) {
        return Err(NOT_AUTHORIZED);
    }
    let tag = match setting {
        "announcement" | "not_announcement" | "locked" | "unlocked" => setting.to_string(),
        _ => return Err(BAD_REQUEST),
    };
    sim.state().write(|st| {
        if let Some(g) = st.groups.get_mut(&g.id) {
            match setting {
                "announcement" => g.announce = true,
                "not_announcement" => g.announce = false,
                "locked" => g.locked = true,
                _ => g.locked = false,
            }
        }
    });
    notify_group(sim, g, actor, Node::new(tag), skip);
    Ok(())
}

/// The timers WhatsApp offers: off, 24 hours, 7 days, 90 days.
pub const EPHEMERAL_TIMERS: [u32; 4] = [0, 86_400, 604_800, 7_776_000];

pub fn set_ephemeral(
    sim: &Sim,
    g: &Group,
    actor: &str,
    expiration: u32,
    skip: Option<&Sender>,
) -> Result<(), Refusal> {
    if !EPHEMERAL_TIMERS.contains(&expiration) {
        return Err(BAD_REQUEST);
    }
    may_edit_info(g, actor)?;
    sim.state().write(|st| {
        if let Some(g) = st.groups.get_mut(&g.id) {
            g.ephemeral = expiration;
        }
    });
    let body = if expiration == 0 {
        Node::new("not_ephemeral")
    } else {
        Node::new("ephemeral").attr("expiration", expiration.to_string())
    };
    notify_group(sim, g, actor, body, skip);
    Ok(())
}

/// The group's invite code (admins only); `revoke` replaces it and tells the members.
pub fn invite_code(
    sim: &Sim,
    g: &Group,
    actor: &str,
    revoke: bool,
    skip: Option<&Sender>,
) -> Result<String, Refusal> {
    if !is_admin(g, actor) {
        return Err(NOT_AUTHORIZED);
    }
    if let (Some(code), false) = (&g.invite_code, revoke) {
        return Ok(code.clone());
    }
    let code = sim.state().new_invite_code();
    sim.state().write(|st| {
        if let Some(g) = st.groups.get_mut(&g.id) {
            if let Some(old) = g.invite_code.take()
                && revoke
            {
                g.revoked_codes.push(old);
            }
            g.invite_code = Some(code.clone());
        }
    });
    if revoke {
        notify_group(
            sim,
            g,
            actor,
            Node::new("invite").attr("code", code.clone()),
            skip,
        );
    }
    Ok(code)
}

/// A syntactically valid invite code: 22 letters and digits (Evolution checks the same).
fn invite_info(code: &str) -> Result<(), Refusal> {
    if code.len() == 22 && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(NOT_ACCEPTABLE)
    }
}

/// The group behind `code`.
pub fn group_by_code(sim: &Sim, code: &str) -> Result<Group, Refusal> {
    invite_info(code)?;
    sim.state()
        .group_by_invite(code)
        .map_err(|revoked| if revoked { GONE } else { NOT_ACCEPTABLE })
}

/// `phone` joins by invite code; the members hear an `add` (reason `invite`), and the joiner's
/// other devices a `create`-like `add` with the whole group.
pub fn accept_invite(
    sim: &Sim,
    phone: &str,
    code: &str,
    skip: Option<&Sender>,
) -> Result<Group, Refusal> {
    let g = group_by_code(sim, code)?;
    if is_member(&g, phone) {
        // Already in: joining again changes nothing.
        return Ok(g);
    }
    sim.state().write(|st| {
        if let Some(g) = st.groups.get_mut(&g.id) {
            g.participants.push(GroupParticipant {
                phone: phone.to_string(),
                admin: None,
            });
        }
    });
    let now = sim.state().group(&g.id).ok_or(NOT_FOUND)?;
    let body = Node::new("add")
        .attr("reason", "invite")
        .children(vec![participant_node(sim, phone)]);
    notify_group(sim, &now, phone, body, skip);
    Ok(now)
}

fn leave_iq(sim: &Sim, sender: &Sender, iq: &Node, op: &Node) -> Node {
    let mut left = Vec::new();
    for jid in op.children_by_tag("group").filter_map(|g| g.attr_jid("id")) {
        if leave(sim, &sender.phone, &jid.user, Some(sender)).is_ok() {
            left.push(Node::new("group").attr("id", jid.to_non_ad()));
        }
    }
    if left.is_empty() {
        return refuse(iq, NOT_FOUND);
    }
    iq_result(iq).children(vec![Node::new("leave").children(left)])
}

/// `phone` leaves group `id`; the members (and the leaver's other devices) hear a `remove`.
/// The last admin leaving hands admin to the oldest member, as WhatsApp does.
pub fn leave(sim: &Sim, phone: &str, id: &str, skip: Option<&Sender>) -> Result<(), Refusal> {
    let g = member_group_by_id(sim, phone, id)?;
    sim.state().write(|st| {
        if let Some(g) = st.groups.get_mut(id) {
            g.participants.retain(|p| p.phone != phone);
            if !g.participants.iter().any(|p| p.admin.is_some())
                && let Some(first) = g.participants.first_mut()
            {
                first.admin = Some(AdminRole::Admin);
            }
        }
    });
    let body = Node::new("remove").children(vec![participant_node(sim, phone)]);
    notify_group(sim, &g, phone, body, skip);
    Ok(())
}

/// Sets (JPEG bytes) or removes (`None`) the group's picture; answers the new picture id.
pub fn set_picture(
    sim: &Sim,
    g: &Group,
    actor: &str,
    jpeg: Option<&[u8]>,
    skip: Option<&Sender>,
) -> Result<Option<String>, Refusal> {
    may_edit_info(g, actor)?;
    if let Some(jpeg) = jpeg
        && !jpeg.starts_with(&[0xFF, 0xD8, 0xFF])
    {
        return Err(BAD_REQUEST);
    }
    let id = jpeg.map(|_| now_secs().to_string());
    sim.state().write(|st| {
        if let Some(g) = st.groups.get_mut(&g.id) {
            g.picture_id = id.clone();
            g.picture_len = jpeg.map_or(0, <[u8]>::len);
        }
    });
    let child = match &id {
        Some(id) => Node::new("set").attr("id", id.clone()),
        None => Node::new("delete"),
    }
    .attr("jid", Jid::group(g.id.clone()))
    .attr("author", Jid::pn(actor.to_string()));
    notify_group_as(sim, g, actor, "picture", child, skip);
    Ok(id)
}

/// The `<group>` node of IQ results and `create` notifications.
pub fn group_node(sim: &Sim, g: &Group) -> Node {
    let mut children: Vec<Node> = g
        .participants
        .iter()
        .map(|p| {
            let n = participant_node(sim, &p.phone);
            match p.admin {
                Some(AdminRole::Superadmin) => n.attr("type", "superadmin"),
                Some(AdminRole::Admin) => n.attr("type", "admin"),
                None => n,
            }
        })
        .collect();
    if let Some(d) = &g.description {
        children.push(
            Node::new("description")
                .attr("id", d.id.clone())
                .attr("participant", Jid::pn(d.owner.clone()))
                .attr("t", d.t.to_string())
                .children(vec![Node::new("body").bytes(d.body.as_bytes().to_vec())]),
        );
    }
    if g.announce {
        children.push(Node::new("announcement"));
    }
    if g.locked {
        children.push(Node::new("locked"));
    }
    if g.ephemeral > 0 {
        children.push(Node::new("ephemeral").attr("expiration", g.ephemeral.to_string()));
    }
    Node::new("group")
        .attr("id", g.id.clone())
        .attr("subject", g.subject.clone())
        .attr("s_t", g.subject_time.unwrap_or(g.created_at).to_string())
        .attr(
            "s_o",
            Jid::pn(g.subject_owner.clone().unwrap_or_else(|| g.creator.clone())),
        )
        .attr("creation", g.created_at.to_string())
        .attr("creator", Jid::pn(g.creator.clone()))
        .attr("addressing_mode", g.addressing_mode.clone())
        .attr("size", g.participants.len().to_string())
        .children(children)
}

/// Sends `<notification type=w:gp2 from=J(group) participant=J(actor)>body</notification>` to every
/// device of every member of `g` except `skip` (the device that made the change and got the IQ
/// result). Phones consume notifications silently.
pub fn notify_group(sim: &Sim, g: &Group, actor: &str, body: Node, skip: Option<&Sender>) {
    notify_group_as(sim, g, actor, "w:gp2", body, skip);
}

/// [`notify_group`] with another notification type (`picture`).
pub fn notify_group_as(
    sim: &Sim,
    g: &Group,
    actor: &str,
    kind: &'static str,
    body: Node,
    skip: Option<&Sender>,
) {
    let notify = identity_of(sim, actor).and_then(|(_, name)| name);
    for member in &g.participants {
        for d in devices_of(sim, &member.phone) {
            if d == 0 || skip.is_some_and(|s| s.phone == member.phone && s.device == d) {
                continue;
            }
            let mut n = Node::new("notification")
                .attr("from", Jid::new(g.id.clone(), Server::Group))
                .attr("id", sim.state().next_message_id())
                .attr("t", now_secs().to_string())
                .attr("type", kind)
                .attr("participant", Jid::pn(actor.to_string()));
            if let Some(name) = &notify {
                n = n.attr("notify", name.clone());
            }
            deliver(
                sim,
                &member.phone,
                u32::from(d),
                n.children(vec![body.clone()]),
            );
        }
    }
}
