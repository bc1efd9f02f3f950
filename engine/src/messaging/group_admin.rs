//! Group administration IQs (`xmlns=w:g2`, and `w:profile:picture` for the group's picture):
//! create, metadata, participating, participants, subject, description, settings, ephemeral
//! timer, invite links, leave. Each builder makes the IQ without an `id` (the exchange adds it);
//! each parser reads the server's answer into zapin's types, server errors as
//! [`MessagingError::Iq`] with WhatsApp's code (400 bad request, 401 not an admin, 403 not a
//! member, 404 no such group, 406 invalid invite code, 410 revoked invite code).

use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};

use super::{AddressingMode, MessagingError, check_iq_result};

/// What a participants IQ does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantAction {
    Add,
    Remove,
    Promote,
    Demote,
}

impl ParticipantAction {
    /// The IQ child's tag, also Evolution's `action` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Promote => "promote",
            Self::Demote => "demote",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "add" => Some(Self::Add),
            "remove" => Some(Self::Remove),
            "promote" => Some(Self::Promote),
            "demote" => Some(Self::Demote),
            _ => None,
        }
    }
}

/// A group setting toggle (the IQ child's tag is the setting's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSetting {
    /// Only admins send messages.
    Announcement,
    NotAnnouncement,
    /// Only admins edit the group's info.
    Locked,
    Unlocked,
}

impl GroupSetting {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Announcement => "announcement",
            Self::NotAnnouncement => "not_announcement",
            Self::Locked => "locked",
            Self::Unlocked => "unlocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "announcement" => Some(Self::Announcement),
            "not_announcement" => Some(Self::NotAnnouncement),
            "locked" => Some(Self::Locked),
            "unlocked" => Some(Self::Unlocked),
            _ => None,
        }
    }
}

/// One member of a group as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub jid: Jid,
    /// The member's LID when `jid` is a phone number and the server told it.
    pub lid: Option<Jid>,
    /// The member's phone number when `jid` is a LID and the server told it.
    pub phone_number: Option<Jid>,
    /// `admin`, `superadmin`, or `None` for a plain member.
    pub admin: Option<String>,
}

/// Everything a `<group>` node says (the metadata answer, `participating`, invite info, and
/// the `create` notification).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupDetails {
    pub jid: Option<Jid>,
    pub subject: String,
    pub subject_owner: Option<Jid>,
    pub subject_time: Option<u64>,
    pub creation: Option<u64>,
    pub owner: Option<Jid>,
    pub desc: Option<String>,
    pub desc_id: Option<String>,
    pub desc_owner: Option<Jid>,
    pub desc_time: Option<u64>,
    /// `locked`: only admins edit the group's info.
    pub restrict: bool,
    /// `announcement`: only admins send.
    pub announce: bool,
    pub is_community: bool,
    pub is_community_announce: bool,
    pub linked_parent: Option<String>,
    /// Disappearing-messages timer in seconds.
    pub ephemeral: Option<u32>,
    pub size: usize,
    pub lid_mode: bool,
    pub participants: Vec<GroupMember>,
}

impl GroupDetails {
    /// The group's JID; every parsed group has one.
    pub fn group_jid(&self) -> Jid {
        self.jid.clone().unwrap_or_else(|| Jid::group(""))
    }

    pub fn addressing_mode(&self) -> AddressingMode {
        if self.lid_mode {
            AddressingMode::Lid
        } else {
            AddressingMode::Pn
        }
    }
}

/// The per-participant outcome of a participants IQ: `status` is `"200"` or the server's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantResult {
    pub jid: Jid,
    pub status: String,
}

/// A group operation a session runs for the caller ([`crate::SessionHandle::group`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOp {
    Create {
        subject: String,
        participants: Vec<Jid>,
    },
    /// Asked of the server (never answered from the send cache: the caller wants it fresh).
    Metadata {
        group: Jid,
    },
    Participating,
    Participants {
        group: Jid,
        action: ParticipantAction,
        participants: Vec<Jid>,
    },
    Subject {
        group: Jid,
        subject: String,
    },
    /// An empty description deletes it.
    Description {
        group: Jid,
        description: String,
    },
    /// A JPEG, or `None` to remove the picture.
    Picture {
        group: Jid,
        jpeg: Option<Vec<u8>>,
    },
    Setting {
        group: Jid,
        setting: GroupSetting,
    },
    /// Seconds; 0 turns disappearing messages off.
    Ephemeral {
        group: Jid,
        expiration: u32,
    },
    InviteCode {
        group: Jid,
    },
    RevokeInvite {
        group: Jid,
    },
    InviteInfo {
        code: String,
    },
    AcceptInvite {
        code: String,
    },
    Leave {
        group: Jid,
    },
}

impl GroupOp {
    /// The group the operation changes (its cached metadata is stale after it).
    pub fn group(&self) -> Option<&Jid> {
        match self {
            Self::Metadata { group }
            | Self::Participants { group, .. }
            | Self::Subject { group, .. }
            | Self::Description { group, .. }
            | Self::Picture { group, .. }
            | Self::Setting { group, .. }
            | Self::Ephemeral { group, .. }
            | Self::InviteCode { group }
            | Self::RevokeInvite { group }
            | Self::Leave { group } => Some(group),
            Self::Create { .. }
            | Self::Participating
            | Self::InviteInfo { .. }
            | Self::AcceptInvite { .. } => None,
        }
    }
}

/// What a [`GroupOp`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupAnswer {
    /// Create, Metadata, InviteInfo.
    Group(Box<GroupDetails>),
    /// Participating.
    Groups(Vec<GroupDetails>),
    /// Participants: one result per requested participant the server answered for.
    Participants(Vec<ParticipantResult>),
    /// InviteCode, RevokeInvite: the (new) code.
    Code(String),
    /// AcceptInvite: the group joined.
    Joined(Jid),
    /// Everything else.
    Done,
}

fn g2(kind: &'static str, to: Jid, child: Node) -> Node {
    Node::new("iq")
        .attr("xmlns", "w:g2")
        .attr("type", kind)
        .attr("to", to)
        .children(vec![child])
}

fn groups_server() -> Jid {
    Jid::server_only(Server::Group)
}

/// `<create subject key><participant jid/>…</create>` to `@g.us`.
pub fn create_iq(subject: &str, participants: &[Jid], key: &str) -> Node {
    g2(
        "set",
        groups_server(),
        Node::new("create")
            .attr("subject", subject.to_owned())
            .attr("key", key.to_owned())
            .children(
                participants
                    .iter()
                    .map(|j| Node::new("participant").attr("jid", j.to_non_ad()))
                    .collect(),
            ),
    )
}

/// `<participating><participants/><description/></participating>` to `@g.us`.
pub fn participating_iq() -> Node {
    g2(
        "get",
        groups_server(),
        Node::new("participating")
            .children(vec![Node::new("participants"), Node::new("description")]),
    )
}

/// `<add|remove|promote|demote><participant jid/>…</…>` to the group.
pub fn participants_iq(group: &Jid, action: ParticipantAction, participants: &[Jid]) -> Node {
    g2(
        "set",
        group.to_non_ad(),
        Node::new(action.as_str()).children(
            participants
                .iter()
                .map(|j| Node::new("participant").attr("jid", j.to_non_ad()))
                .collect(),
        ),
    )
}

/// `<subject>TEXT</subject>` to the group.
pub fn subject_iq(group: &Jid, subject: &str) -> Node {
    g2(
        "set",
        group.to_non_ad(),
        Node::new("subject").bytes(subject.as_bytes().to_vec()),
    )
}

/// `<description id [prev]><body>TEXT</body></description>`, or `<description delete=true [prev]>`
/// when `description` is empty. `prev` is the current description's id (the server refuses a
/// change based on a stale one).
pub fn description_iq(group: &Jid, description: &str, id: &str, prev: Option<&str>) -> Node {
    let mut node = Node::new("description");
    if description.is_empty() {
        node = node.attr("delete", "true");
    } else {
        node = node.attr("id", id.to_owned());
    }
    if let Some(prev) = prev {
        node = node.attr("prev", prev.to_owned());
    }
    if !description.is_empty() {
        node = node.children(vec![
            Node::new("body").bytes(description.as_bytes().to_vec()),
        ]);
    }
    g2("set", group.to_non_ad(), node)
}

/// `<announcement/>`, `<not_announcement/>`, `<locked/>` or `<unlocked/>` to the group.
pub fn setting_iq(group: &Jid, setting: GroupSetting) -> Node {
    g2("set", group.to_non_ad(), Node::new(setting.as_str()))
}

/// `<ephemeral expiration=S/>`, or `<not_ephemeral/>` for 0.
pub fn ephemeral_iq(group: &Jid, expiration: u32) -> Node {
    let child = if expiration == 0 {
        Node::new("not_ephemeral")
    } else {
        Node::new("ephemeral").attr("expiration", expiration.to_string())
    };
    g2("set", group.to_non_ad(), child)
}

/// `get <invite/>` (the current code) or `set <invite/>` (revoke: a new code) to the group.
pub fn invite_code_iq(group: &Jid, revoke: bool) -> Node {
    g2(
        if revoke { "set" } else { "get" },
        group.to_non_ad(),
        Node::new("invite"),
    )
}

/// `<invite code/>` to `@g.us`: `get` describes the group, `set` joins it.
pub fn invite_iq(code: &str, join: bool) -> Node {
    g2(
        if join { "set" } else { "get" },
        groups_server(),
        Node::new("invite").attr("code", code.to_owned()),
    )
}

/// `<leave><group id/></leave>` to `@g.us`.
pub fn leave_iq(group: &Jid) -> Node {
    g2(
        "set",
        groups_server(),
        Node::new("leave").children(vec![Node::new("group").attr("id", group.to_non_ad())]),
    )
}

/// `<iq xmlns=w:profile:picture type=set to=s.whatsapp.net target=J(group)>` with the JPEG in
/// `<picture type=image>`, or without `<picture>` to remove it.
pub fn picture_iq(group: &Jid, jpeg: Option<Vec<u8>>) -> Node {
    let iq = Node::new("iq")
        .attr("xmlns", "w:profile:picture")
        .attr("type", "set")
        .attr("to", Jid::server_only(Server::Pn))
        .attr("target", group.to_non_ad());
    match jpeg {
        Some(jpeg) => iq.children(vec![Node::new("picture").attr("type", "image").bytes(jpeg)]),
        None => iq,
    }
}

fn num(node: &Node, key: &str) -> Option<u64> {
    node.attr_str(key).and_then(|v| v.parse().ok())
}

fn jid_of(id: &str) -> Option<Jid> {
    if id.contains('@') {
        id.parse::<Jid>().ok().filter(Jid::is_group)
    } else if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit() || c == '-') {
        Some(Jid::group(id))
    } else {
        None
    }
}

/// Reads a `<group>` node.
pub fn parse_group(node: &Node) -> Result<GroupDetails, MessagingError> {
    let jid = node
        .attr_jid("id")
        .filter(Jid::is_group)
        .or_else(|| node.attr_str("id").and_then(jid_of))
        .ok_or(MessagingError::Malformed("group", "no valid id"))?;
    let mut participants = Vec::new();
    for p in node.children_by_tag("participant") {
        let Some(pj) = p.attr_jid("jid").map(|j| j.to_non_ad()) else {
            return Err(MessagingError::Malformed(
                "group",
                "participant without a jid",
            ));
        };
        participants.push(GroupMember {
            lid: p
                .attr_jid("lid")
                .map(|j| j.to_non_ad())
                .filter(|l| pj.is_pn() && l.is_lid()),
            phone_number: p
                .attr_jid("phone_number")
                .map(|j| j.to_non_ad())
                .filter(|n| pj.is_lid() && n.is_pn()),
            admin: p.attr_str("type").map(str::to_owned),
            jid: pj,
        });
    }
    let description = node.child("description");
    Ok(GroupDetails {
        jid: Some(jid),
        subject: node.attr_str("subject").unwrap_or_default().to_owned(),
        subject_owner: node.attr_jid("s_o").map(|j| j.to_non_ad()),
        subject_time: num(node, "s_t"),
        creation: num(node, "creation"),
        owner: node.attr_jid("creator").map(|j| j.to_non_ad()),
        desc: description
            .and_then(|d| d.child("body"))
            .and_then(Node::content_str)
            .map(str::to_owned),
        desc_id: description
            .and_then(|d| d.attr_str("id"))
            .map(str::to_owned),
        desc_owner: description
            .and_then(|d| d.attr_jid("participant"))
            .map(|j| j.to_non_ad()),
        desc_time: description.and_then(|d| num(d, "t")),
        restrict: node.child("locked").is_some(),
        announce: node.child("announcement").is_some(),
        is_community: node.child("parent").is_some(),
        is_community_announce: node.child("default_sub_group").is_some(),
        linked_parent: node
            .child("linked_parent")
            .and_then(|l| l.get_attr("jid"))
            .map(ToString::to_string),
        ephemeral: node
            .child("ephemeral")
            .and_then(|e| e.attr_str("expiration"))
            .and_then(|e| e.parse().ok()),
        size: node
            .attr_str("size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(participants.len()),
        lid_mode: node.attr_str("addressing_mode") == Some("lid"),
        participants,
    })
}

/// The `<group>` of a create, metadata or invite-info answer.
pub fn parse_group_answer(answer: &Node) -> Result<GroupDetails, MessagingError> {
    check_iq_result(answer)?;
    parse_group(
        answer
            .child("group")
            .ok_or(MessagingError::Malformed("group answer", "no <group>"))?,
    )
}

/// The groups of a `participating` answer.
pub fn parse_participating(answer: &Node) -> Result<Vec<GroupDetails>, MessagingError> {
    check_iq_result(answer)?;
    let Some(groups) = answer.child("groups") else {
        return Ok(Vec::new());
    };
    groups.children_by_tag("group").map(parse_group).collect()
}

/// The per-participant results of a participants answer (`error=CODE` on a refused one).
pub fn parse_participants(
    answer: &Node,
    action: ParticipantAction,
) -> Result<Vec<ParticipantResult>, MessagingError> {
    check_iq_result(answer)?;
    let Some(list) = answer.child(action.as_str()) else {
        return Err(MessagingError::Malformed(
            "participants answer",
            "no action",
        ));
    };
    Ok(list
        .children_by_tag("participant")
        .filter_map(|p| {
            Some(ParticipantResult {
                jid: p.attr_jid("jid")?.to_non_ad(),
                status: p.attr_str("error").unwrap_or("200").to_owned(),
            })
        })
        .collect())
}

/// The code of an invite answer (`<invite code/>`).
pub fn parse_invite_code(answer: &Node) -> Result<String, MessagingError> {
    check_iq_result(answer)?;
    answer
        .child("invite")
        .and_then(|i| i.attr_str("code"))
        .map(str::to_owned)
        .ok_or(MessagingError::Malformed("invite answer", "no code"))
}

/// The group joined by an accept-invite answer (`<group jid/>`).
pub fn parse_joined(answer: &Node) -> Result<Jid, MessagingError> {
    check_iq_result(answer)?;
    let group = answer.child("group");
    group
        .and_then(|g| g.attr_jid("jid"))
        .filter(Jid::is_group)
        .or_else(|| group.and_then(|g| g.attr_str("jid")).and_then(jid_of))
        .ok_or(MessagingError::Malformed("invite answer", "no group jid"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn group_node() -> Node {
        Node::new("group")
            .attr("id", "120363000000000001")
            .attr("subject", "Team")
            .attr("s_o", Jid::pn("15550000001"))
            .attr("s_t", "1700000000")
            .attr("creation", "1700000000")
            .attr("creator", Jid::pn("15550000001"))
            .attr("size", "2")
            .children(vec![
                Node::new("description")
                    .attr("id", "D1")
                    .attr("participant", Jid::pn("15550000001"))
                    .attr("t", "1700000001")
                    .children(vec![Node::new("body").bytes(b"Hello".to_vec())]),
                Node::new("locked"),
                Node::new("ephemeral").attr("expiration", "86400"),
                Node::new("participant")
                    .attr("jid", Jid::pn("15550000001"))
                    .attr("lid", Jid::lid("900001"))
                    .attr("type", "superadmin"),
                Node::new("participant").attr("jid", Jid::pn("15550000002")),
            ])
    }

    #[test]
    fn group_nodes_parse_into_details() {
        let answer = Node::new("iq")
            .attr("type", "result")
            .children(vec![group_node()]);
        let g = parse_group_answer(&answer).unwrap();
        assert_eq!(g.group_jid(), Jid::group("120363000000000001"));
        assert_eq!(g.subject, "Team");
        assert_eq!(g.desc.as_deref(), Some("Hello"));
        assert_eq!(g.desc_id.as_deref(), Some("D1"));
        assert!(g.restrict);
        assert!(!g.announce);
        assert_eq!(g.ephemeral, Some(86400));
        assert_eq!(g.size, 2);
        assert_eq!(g.participants[0].admin.as_deref(), Some("superadmin"));
        assert_eq!(g.participants[0].lid, Some(Jid::lid("900001")));
        assert_eq!(g.participants[1].admin, None);
    }

    #[test]
    fn group_without_an_id_is_malformed() {
        let answer = Node::new("iq")
            .attr("type", "result")
            .children(vec![Node::new("group").attr("subject", "x")]);
        assert!(matches!(
            parse_group_answer(&answer),
            Err(MessagingError::Malformed(..))
        ));
    }

    #[test]
    fn builders_follow_the_wire_shapes() {
        let g = Jid::group("120363000000000001");
        let iq = create_iq("Team", &[Jid::pn("15550000002")], "K1");
        assert_eq!(iq.attr_str("xmlns"), Some("w:g2"));
        assert_eq!(iq.attr_jid("to"), Some(Jid::server_only(Server::Group)));
        let create = iq.child("create").unwrap();
        assert_eq!(create.attr_str("subject"), Some("Team"));
        assert_eq!(create.children_by_tag("participant").count(), 1);
        let d = description_iq(&g, "", "X", Some("P"));
        let d = d.child("description").unwrap();
        assert_eq!(d.attr_str("delete"), Some("true"));
        assert_eq!(d.attr_str("prev"), Some("P"));
        assert!(d.child("body").is_none());
        let e = ephemeral_iq(&g, 0);
        assert!(e.child("not_ephemeral").is_some());
        let p = picture_iq(&g, None);
        assert_eq!(p.attr_str("xmlns"), Some("w:profile:picture"));
        assert!(p.child_nodes().is_empty());
        assert_eq!(
            leave_iq(&g)
                .child("leave")
                .unwrap()
                .child("group")
                .unwrap()
                .attr_jid("id"),
            Some(g)
        );
    }

    #[test]
    fn participant_results_carry_the_servers_codes() {
        let answer =
            Node::new("iq")
                .attr("type", "result")
                .children(vec![Node::new("add").children(vec![
                Node::new("participant").attr("jid", Jid::pn("15550000002")),
                Node::new("participant")
                    .attr("jid", Jid::pn("15550000003"))
                    .attr("error", "409"),
            ])]);
        let r = parse_participants(&answer, ParticipantAction::Add).unwrap();
        assert_eq!(r[0].status, "200");
        assert_eq!(r[1].status, "409");
        let err = Node::new("iq").attr("type", "error").children(vec![
            Node::new("error")
                .attr("code", "401")
                .attr("text", "not-authorized"),
        ]);
        assert!(matches!(
            parse_participants(&err, ParticipantAction::Add),
            Err(MessagingError::Iq { code: 401, .. })
        ));
    }

    #[test]
    fn invite_answers() {
        let code = Node::new("iq").attr("type", "result").children(vec![
            Node::new("invite").attr("code", "AbCdEfGhIjKlMnOpQrStUv"),
        ]);
        assert_eq!(parse_invite_code(&code).unwrap(), "AbCdEfGhIjKlMnOpQrStUv");
        let joined = Node::new("iq").attr("type", "result").children(vec![
            Node::new("group").attr("jid", "120363000000000001@g.us"),
        ]);
        assert_eq!(
            parse_joined(&joined).unwrap(),
            Jid::group("120363000000000001")
        );
        let joined = Node::new("iq").attr("type", "result").children(vec![
            Node::new("group").attr("jid", Jid::group("120363000000000002")),
        ]);
        assert_eq!(
            parse_joined(&joined).unwrap(),
            Jid::group("120363000000000002")
        );
    }
}
