//! Group metadata (`iq xmlns=w:g2` query, §12.5) and `w:gp2` notifications: what a group send
//! needs to know (members, addressing mode) and what invalidates it.

use zapin_protocol::binary::Node;
use zapin_protocol::jid::Jid;

use super::{AddressingMode, Exchange, MessagingError, Messenger, check_iq_result};

/// A `w:gp2` notification (or a group's `picture` notification), surfaced as
/// [`crate::EventKind::GroupUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupUpdate {
    pub group: String,
    /// The notification's action (`create`, `add`, `remove`, `leave`, `promote`, `demote`,
    /// `subject`, `description`, `announcement`, `not_announcement`, `locked`, `unlocked`,
    /// `ephemeral`, `not_ephemeral`, `invite`, `picture`, …).
    pub action: String,
    pub participants: Vec<String>,
    pub subject: Option<String>,
    /// Who made the change (the notification's `participant`).
    pub author: Option<String>,
    /// The new description (`description`; `None` when it was deleted).
    pub description: Option<String>,
    pub description_id: Option<String>,
    /// The new invite code (`invite`).
    pub invite_code: Option<String>,
    /// The disappearing-messages timer in seconds (`ephemeral`; 0 for `not_ephemeral`).
    pub ephemeral: Option<u32>,
    /// The whole group (`create`, and an `add` of ourselves that carries it).
    pub metadata: Option<Box<super::group_admin::GroupDetails>>,
}

/// What a group send needs from the group's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    pub jid: Jid,
    pub subject: Option<String>,
    pub mode: AddressingMode,
    /// Members as user JIDs in the group's addressing namespace (LIDs in a `lid` group).
    pub members: Vec<Jid>,
    /// PN user → LID user pairs the server told alongside the members.
    pub lids: Vec<(Jid, Jid)>,
}

/// `<iq xmlns=w:g2 type=get to=J(group)><query request=interactive/></iq>` (without an id).
pub fn metadata_query(group: &Jid) -> Node {
    Node::new("iq")
        .attr("xmlns", "w:g2")
        .attr("type", "get")
        .attr("to", group.to_non_ad())
        .children(vec![Node::new("query").attr("request", "interactive")])
}

/// Parses the answer to [`metadata_query`]: `<iq type=result><group …><participant …/>…`.
pub fn parse_metadata(group: &Jid, answer: &Node) -> Result<GroupMetadata, MessagingError> {
    check_iq_result(answer)?;
    let node = answer
        .child("group")
        .ok_or(MessagingError::Malformed("group metadata", "no <group>"))?;
    let mode = match node.attr_str("addressing_mode") {
        Some("lid") => AddressingMode::Lid,
        _ => AddressingMode::Pn,
    };
    let mut members = Vec::new();
    let mut lids = Vec::new();
    for p in node.children_by_tag("participant") {
        let Some(jid) = p.attr_jid("jid").map(|j| j.to_non_ad()) else {
            return Err(MessagingError::Malformed(
                "group metadata",
                "participant without a jid",
            ));
        };
        let lid = p.attr_jid("lid").map(|j| j.to_non_ad());
        let pn = p.attr_jid("phone_number").map(|j| j.to_non_ad());
        match (jid.is_pn(), lid, pn) {
            (true, Some(lid), _) if lid.is_lid() => lids.push((jid.clone(), lid)),
            (false, _, Some(pn)) if jid.is_lid() && pn.is_pn() => lids.push((pn, jid.clone())),
            _ => {}
        }
        if !members.contains(&jid) {
            members.push(jid);
        }
    }
    // Members in the group's namespace, so the device lists and phash match the server's.
    if mode == AddressingMode::Lid {
        members = members
            .into_iter()
            .map(|m| {
                lids.iter()
                    .find(|(pn, _)| *pn == m)
                    .map(|(_, lid)| lid.clone())
                    .unwrap_or(m)
            })
            .collect();
    }
    Ok(GroupMetadata {
        jid: group.to_non_ad(),
        subject: node.attr_str("subject").map(str::to_owned),
        mode,
        members,
        lids,
    })
}

/// The update a `<notification type=w:gp2>` describes (its first child is the action), or
/// `None` when it is not a group notification. A `<notification type=picture>` from a group is
/// the `picture` action.
pub fn parse_notification(node: &Node) -> Option<GroupUpdate> {
    let kind = node.attr_str("type")?;
    if kind != "w:gp2" && kind != "picture" {
        return None;
    }
    let group = node.attr_jid("from").filter(Jid::is_group)?;
    let action = node.child_nodes().first()?;
    let mut update = GroupUpdate {
        group: group.to_non_ad().to_string(),
        action: action.tag.to_string(),
        author: node
            .attr_jid("participant")
            .map(|j| j.to_non_ad().to_string()),
        ..GroupUpdate::default()
    };
    if kind == "picture" {
        update.action = "picture".to_owned();
        update.author = action
            .attr_jid("author")
            .map(|j| j.to_non_ad().to_string())
            .or(update.author);
        return Some(update);
    }
    update.participants = action
        .children_by_tag("participant")
        .filter_map(|p| p.attr_jid("jid"))
        .map(|j| j.to_non_ad().to_string())
        .collect();
    update.subject = action.attr_str("subject").map(str::to_owned);
    match action.tag.as_ref() {
        "create" => {
            if let Some(g) = action.child("group")
                && let Ok(details) = super::group_admin::parse_group(g)
            {
                update.subject = Some(details.subject.clone());
                update.participants = details
                    .participants
                    .iter()
                    .map(|p| p.jid.to_string())
                    .collect();
                update.metadata = Some(Box::new(details));
            }
        }
        "add" => {
            if let Some(g) = action.child("group")
                && let Ok(details) = super::group_admin::parse_group(g)
            {
                update.metadata = Some(Box::new(details));
            }
        }
        "description" => {
            update.description = action
                .child("body")
                .and_then(Node::content_str)
                .map(str::to_owned);
            update.description_id = action.attr_str("id").map(str::to_owned);
        }
        "invite" => update.invite_code = action.attr_str("code").map(str::to_owned),
        "ephemeral" => {
            update.ephemeral = action
                .attr_str("expiration")
                .and_then(|e| e.parse().ok())
                .or(Some(0));
        }
        "not_ephemeral" => update.ephemeral = Some(0),
        _ => {}
    }
    Some(update)
}

impl Messenger {
    /// The metadata of `group`, from the cache or asked of the server (one IQ).
    pub async fn group_metadata<E: Exchange>(
        &mut self,
        exchange: &mut E,
        group: &Jid,
    ) -> Result<GroupMetadata, MessagingError> {
        let group = group.to_non_ad();
        if let Some(meta) = self.groups.get(&group) {
            return Ok(meta.clone());
        }
        let answer = exchange.query(metadata_query(&group)).await?;
        let meta = parse_metadata(&group, &answer)?;
        for (pn, lid) in &meta.lids {
            self.learn_lid(pn, lid);
        }
        self.groups.insert(group, meta.clone());
        Ok(meta)
    }

    /// Forgets the cached metadata of `group` and who holds our sender key there (a `w:gp2`
    /// notification: membership, subject or mode may have changed).
    pub fn forget_group(&mut self, group: &Jid) {
        let group = group.to_non_ad();
        self.groups.remove(&group);
        self.forget_sender_key_devices(&group);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn answer(mode: &str) -> Node {
        Node::new("iq").attr("type", "result").children(vec![
            Node::new("group")
                .attr("id", "120363000000000001")
                .attr("subject", "Team")
                .attr("addressing_mode", mode.to_owned())
                .children(vec![
                    Node::new("participant")
                        .attr("jid", Jid::pn("15550000001"))
                        .attr("lid", Jid::lid("900001"))
                        .attr("type", "superadmin"),
                    Node::new("participant").attr("jid", Jid::pn("15550000002")),
                ]),
        ])
    }

    #[test]
    fn metadata_lists_members_in_the_group_namespace() {
        let g = Jid::group("120363000000000001");
        let pn = parse_metadata(&g, &answer("pn")).unwrap();
        assert_eq!(pn.mode, AddressingMode::Pn);
        assert_eq!(pn.subject.as_deref(), Some("Team"));
        assert_eq!(
            pn.members,
            vec![Jid::pn("15550000001"), Jid::pn("15550000002")]
        );
        assert_eq!(pn.lids, vec![(Jid::pn("15550000001"), Jid::lid("900001"))]);
        let lid = parse_metadata(&g, &answer("lid")).unwrap();
        assert_eq!(lid.mode, AddressingMode::Lid);
        assert_eq!(
            lid.members,
            vec![Jid::lid("900001"), Jid::pn("15550000002")]
        );
    }

    #[test]
    fn metadata_errors_are_typed() {
        let g = Jid::group("120363000000000001");
        let err = Node::new("iq").attr("type", "error").children(vec![
            Node::new("error")
                .attr("code", "404")
                .attr("text", "item-not-found"),
        ]);
        assert!(matches!(
            parse_metadata(&g, &err),
            Err(MessagingError::Iq { code: 404, .. })
        ));
        let empty = Node::new("iq").attr("type", "result");
        assert!(matches!(
            parse_metadata(&g, &empty),
            Err(MessagingError::Malformed(..))
        ));
    }

    #[test]
    fn gp2_notifications_become_group_updates() {
        let n = Node::new("notification")
            .attr("type", "w:gp2")
            .attr("from", Jid::group("120363000000000001"))
            .children(vec![Node::new("add").children(vec![
                Node::new("participant").attr("jid", Jid::pn("15550000003")),
            ])]);
        let u = parse_notification(&n).unwrap();
        assert_eq!(u.group, "120363000000000001@g.us");
        assert_eq!(u.action, "add");
        assert_eq!(u.participants, vec!["15550000003@s.whatsapp.net"]);
        let other = Node::new("notification").attr("type", "devices");
        assert!(parse_notification(&other).is_none());
    }

    #[test]
    fn gp2_changes_carry_their_values() {
        let g = Jid::group("120363000000000001");
        let desc = Node::new("notification")
            .attr("type", "w:gp2")
            .attr("from", g.clone())
            .attr("participant", Jid::pn("15550000001"))
            .children(vec![
                Node::new("description")
                    .attr("id", "D2")
                    .children(vec![Node::new("body").bytes(b"New rules".to_vec())]),
            ]);
        let u = parse_notification(&desc).unwrap();
        assert_eq!(u.action, "description");
        assert_eq!(u.description.as_deref(), Some("New rules"));
        assert_eq!(u.description_id.as_deref(), Some("D2"));
        assert_eq!(u.author.as_deref(), Some("15550000001@s.whatsapp.net"));
        let eph = Node::new("notification")
            .attr("type", "w:gp2")
            .attr("from", g.clone())
            .children(vec![Node::new("ephemeral").attr("expiration", "604800")]);
        assert_eq!(parse_notification(&eph).unwrap().ephemeral, Some(604800));
        let create = Node::new("notification")
            .attr("type", "w:gp2")
            .attr("from", g.clone())
            .children(vec![Node::new("create").children(vec![
                Node::new("group")
                    .attr("id", "120363000000000001")
                    .attr("subject", "Team")
                    .children(vec![
                        Node::new("participant").attr("jid", Jid::pn("15550000001")),
                    ]),
            ])]);
        let u = parse_notification(&create).unwrap();
        assert_eq!(u.subject.as_deref(), Some("Team"));
        assert_eq!(u.metadata.unwrap().participants.len(), 1);
        let picture = Node::new("notification")
            .attr("type", "picture")
            .attr("from", g)
            .children(vec![
                Node::new("set")
                    .attr("id", "1")
                    .attr("author", Jid::pn("15550000002")),
            ]);
        let u = parse_notification(&picture).unwrap();
        assert_eq!(u.action, "picture");
        assert_eq!(u.author.as_deref(), Some("15550000002@s.whatsapp.net"));
    }
}
