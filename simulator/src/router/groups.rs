//! `iq xmlns=w:g2` (§12.5 steps 21–22) and the `w:gp2` notifications members get for changes.

use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};

use super::{Sender, deliver, devices_of, identity_of, iq_error, iq_result, now_secs};
use crate::sim::Sim;
use crate::state::{AdminRole, Group, GroupParticipant, StateError};

pub(super) fn handle_iq(sim: &Sim, sender: &Sender, iq: &Node) -> Node {
    let Some(op) = iq.child_nodes().first() else {
        return iq_error(iq, 400, "bad-request");
    };
    match op.tag.as_ref() {
        "create" => create(sim, sender, iq, op),
        "participating" => {
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
        "query" => match member_group(sim, sender, iq) {
            Ok(g) => iq_result(iq).children(vec![group_node(sim, &g)]),
            Err(e) => e,
        },
        "add" | "remove" | "promote" | "demote" => change_participants(sim, sender, iq, op),
        "subject" => set_subject(sim, sender, iq, op),
        "leave" => leave(sim, sender, iq, op),
        _ => iq_error(iq, 501, "feature-not-implemented"),
    }
}

fn create(sim: &Sim, sender: &Sender, iq: &Node, op: &Node) -> Node {
    let Some(subject) = op.attr_str("subject").filter(|s| !s.trim().is_empty()) else {
        return iq_error(iq, 400, "bad-request");
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
        Err(StateError::UnknownParticipant(_)) => return iq_error(iq, 400, "bad-request"),
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

/// The group an IQ is addressed to, if the sender is a member; else the IQ error to answer.
fn member_group(sim: &Sim, sender: &Sender, iq: &Node) -> Result<Group, Node> {
    let to = iq
        .attr_jid("to")
        .filter(Jid::is_group)
        .ok_or_else(|| iq_error(iq, 400, "bad-request"))?;
    let g = sim
        .state()
        .group(&to.user)
        .ok_or_else(|| iq_error(iq, 404, "item-not-found"))?;
    if g.participants.iter().any(|p| p.phone == sender.phone) {
        Ok(g)
    } else {
        Err(iq_error(iq, 403, "forbidden"))
    }
}

fn is_admin(g: &Group, phone: &str) -> bool {
    g.participants
        .iter()
        .any(|p| p.phone == phone && p.admin.is_some())
}

fn change_participants(sim: &Sim, sender: &Sender, iq: &Node, op: &Node) -> Node {
    let g = match member_group(sim, sender, iq) {
        Ok(g) => g,
        Err(e) => return e,
    };
    if !is_admin(&g, &sender.phone) {
        return iq_error(iq, 403, "forbidden");
    }
    let action = op.tag.to_string();
    let mut results = Vec::new();
    let mut changed = Vec::new();
    for jid in op
        .children_by_tag("participant")
        .filter_map(|p| p.attr_jid("jid"))
    {
        let phone = super::resolve_device(sim, &jid).map(|(p, _)| p);
        let code = match &phone {
            None => "404",
            Some(phone) => {
                let ok = sim.state().write(|st| {
                    let Some(g) = st.groups.get_mut(&g.id) else {
                        return false;
                    };
                    let pos = g.participants.iter().position(|p| &p.phone == phone);
                    match (action.as_str(), pos) {
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
                    "200"
                } else if action == "add" {
                    "409"
                } else {
                    "404"
                }
            }
        };
        results.push(
            Node::new("participant")
                .attr("jid", jid.to_non_ad())
                .attr("type", code),
        );
    }
    if !changed.is_empty() {
        let body = Node::new(action.clone()).children(
            changed
                .iter()
                .map(|p| Node::new("participant").attr("jid", Jid::pn(p.clone())))
                .collect(),
        );
        // Removed members hear about it too: notify the group as it was before the change.
        let mut audience = g.clone();
        if let Some(now) = sim.state().group(&g.id) {
            for p in now.participants {
                if !audience.participants.iter().any(|a| a.phone == p.phone) {
                    audience.participants.push(p);
                }
            }
        }
        notify_group(sim, &audience, &sender.phone, body, Some(sender));
    }
    iq_result(iq).children(vec![Node::new(action).children(results)])
}

fn set_subject(sim: &Sim, sender: &Sender, iq: &Node, op: &Node) -> Node {
    let g = match member_group(sim, sender, iq) {
        Ok(g) => g,
        Err(e) => return e,
    };
    let Some(subject) = op
        .content_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= 100)
        .map(str::to_string)
    else {
        return iq_error(iq, 400, "bad-request");
    };
    sim.state().write(|st| {
        if let Some(g) = st.groups.get_mut(&g.id) {
            g.subject = subject.clone();
        }
    });
    let body = Node::new("subject")
        .attr("subject", subject)
        .attr("s_o", Jid::pn(sender.phone.clone()))
        .attr("s_t", now_secs().to_string());
    notify_group(sim, &g, &sender.phone, body, Some(sender));
    iq_result(iq)
}

fn leave(sim: &Sim, sender: &Sender, iq: &Node, op: &Node) -> Node {
    let mut left = Vec::new();
    for jid in op.children_by_tag("group").filter_map(|g| g.attr_jid("id")) {
        let Some(g) = sim.state().group(&jid.user) else {
            continue;
        };
        if !g.participants.iter().any(|p| p.phone == sender.phone) {
            continue;
        }
        sim.state().write(|st| {
            if let Some(g) = st.groups.get_mut(&jid.user) {
                g.participants.retain(|p| p.phone != sender.phone);
            }
        });
        let body = Node::new("remove").children(vec![
            Node::new("participant").attr("jid", Jid::pn(sender.phone.clone())),
        ]);
        notify_group(sim, &g, &sender.phone, body, Some(sender));
        left.push(Node::new("group").attr("id", jid.to_non_ad()));
    }
    iq_result(iq).children(vec![Node::new("leave").children(left)])
}

/// The `<group>` node of IQ results and `create` notifications.
pub fn group_node(sim: &Sim, g: &Group) -> Node {
    let participants = g
        .participants
        .iter()
        .map(|p| {
            let mut n = Node::new("participant").attr("jid", Jid::pn(p.phone.clone()));
            if let Some(lid) = sim.state().lid_of(&p.phone) {
                n = n.attr("lid", Jid::lid(lid));
            }
            match p.admin {
                Some(AdminRole::Superadmin) => n.attr("type", "superadmin"),
                Some(AdminRole::Admin) => n.attr("type", "admin"),
                None => n,
            }
        })
        .collect();
    Node::new("group")
        .attr("id", g.id.clone())
        .attr("subject", g.subject.clone())
        .attr("s_t", g.created_at.to_string())
        .attr("s_o", Jid::pn(g.creator.clone()))
        .attr("creation", g.created_at.to_string())
        .attr("creator", Jid::pn(g.creator.clone()))
        .attr("addressing_mode", g.addressing_mode.clone())
        .attr("size", g.participants.len().to_string())
        .children(participants)
}

/// Sends `<notification type=w:gp2 from=J(group) participant=J(actor)>body</notification>` to every
/// device of every member of `g` except `skip` (the device that made the change and got the IQ
/// result). Phones consume notifications silently.
pub fn notify_group(sim: &Sim, g: &Group, actor: &str, body: Node, skip: Option<&Sender>) {
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
                .attr("type", "w:gp2")
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
