//! usync queries (wa-protocol.md §6.4): the device query (device lists and LID mappings, before
//! every send) and the contact query (which phone numbers are on WhatsApp).

use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};

use super::{MessagingError, check_iq_result};

/// One device of a user as usync lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceEntry {
    /// 0 = the phone, companions 1…
    pub id: u16,
    /// The ADV key index; present for every companion a usable answer lists.
    pub key_index: Option<u32>,
}

/// One `<user>` of a usync answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDevices {
    /// The user as asked (non-AD).
    pub user: Jid,
    /// The user's LID (`<lid val>`), when the server sent one.
    pub lid: Option<Jid>,
    pub devices: Vec<DeviceEntry>,
}

impl UserDevices {
    /// Device JIDs in the namespace Signal sessions are keyed by: the LID when known (as
    /// Baileys and whatsmeow do), the asked namespace otherwise.
    pub fn device_jids(&self) -> Vec<Jid> {
        let base = self.lid.as_ref().unwrap_or(&self.user);
        self.devices
            .iter()
            .map(|d| Jid {
                device: d.id,
                ..base.to_non_ad()
            })
            .collect()
    }
}

/// `<iq to=s.whatsapp.net type=get xmlns=usync>` asking devices (`version=2`) and LIDs for
/// `users` in the `message` context, as Baileys does before every send. `sid` is an opaque
/// request id; the caller adds the IQ `id`.
pub fn device_query(users: &[Jid], sid: &str) -> Node {
    let list = users
        .iter()
        .map(|u| Node::new("user").attr("jid", u.to_non_ad()))
        .collect();
    Node::new("iq")
        .attr("to", Jid::server_only(Server::Pn))
        .attr("type", "get")
        .attr("xmlns", "usync")
        .children(vec![
            Node::new("usync")
                .attr("sid", sid.to_owned())
                .attr("mode", "query")
                .attr("last", "true")
                .attr("index", "0")
                .attr("context", "message")
                .children(vec![
                    Node::new("query").children(vec![
                        Node::new("devices").attr("version", "2"),
                        Node::new("lid"),
                    ]),
                    Node::new("list").children(list),
                ]),
        ])
}

/// Reads a usync answer. Companions without `key-index` are dropped (Baileys does the same: a
/// send to them would be rejected) and so are hosted devices, which zapin does not address yet.
/// A user whose `<devices>` is missing or malformed is skipped rather than failing the others.
pub fn parse_device_result(iq: &Node) -> Result<Vec<UserDevices>, MessagingError> {
    check_iq_result(iq)?;
    let usync = iq
        .child("usync")
        .ok_or(MessagingError::Malformed("usync", "no <usync>"))?;
    let list = usync
        .child("list")
        .ok_or(MessagingError::Malformed("usync", "no <list>"))?;
    let mut out = Vec::new();
    for user in list.children_by_tag("user") {
        let Some(jid) = user.attr_jid("jid") else {
            continue;
        };
        let Some(device_list) = user.child("devices").and_then(|d| d.child("device-list")) else {
            continue;
        };
        let mut devices = Vec::new();
        for d in device_list.children_by_tag("device") {
            let Some(id) = d.attr_str("id").and_then(|s| s.parse::<u16>().ok()) else {
                continue;
            };
            if d.attr_str("is_hosted") == Some("true") {
                continue;
            }
            let key_index = d.attr_str("key-index").and_then(|s| s.parse().ok());
            if id != 0 && key_index.is_none() {
                continue;
            }
            devices.push(DeviceEntry { id, key_index });
        }
        let lid = user
            .child("lid")
            .and_then(|l| l.attr_jid("val"))
            .filter(|l| l.is_lid())
            .map(|l| l.to_non_ad());
        out.push(UserDevices {
            user: jid.to_non_ad(),
            lid,
            devices,
        });
    }
    Ok(out)
}

/// Most numbers one contact query may carry: one IQ per call keeps the answer time bounded, and
/// WhatsApp rate-limits large lookups.
pub const MAX_CONTACT_QUERY: usize = 50;

/// A phone number as the contact query wants it: digits only, 7 to 15 of them (E.164 without
/// `+`). Accepts the usual decorations (`+`, spaces, `-`, `(`, `)`, `.`) and a
/// `@s.whatsapp.net` suffix; anything else makes it invalid.
pub fn normalize_number(input: &str) -> Option<String> {
    let raw = input.trim();
    let raw = raw.strip_suffix("@s.whatsapp.net").unwrap_or(raw);
    let mut digits = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' | ' ' | '-' | '(' | ')' | '.' => {}
            _ => return None,
        }
    }
    (7..=15).contains(&digits.len()).then_some(digits)
}

/// One `<user>` of a contact-query answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEntry {
    /// The number as the server echoed it (digits).
    pub number: String,
    /// `<contact type=in>`: the number has a WhatsApp account.
    pub exists: bool,
    /// The account's user JID (`digits@s.whatsapp.net`).
    pub jid: Jid,
    /// The account's LID, when the server sent one.
    pub lid: Option<Jid>,
}

/// `<iq xmlns=usync type=get>` with the `contact` and `lid` protocols for `numbers` (normalized
/// digits, sent `+`-prefixed), in the `interactive` context as WhatsApp Web uses for lookups.
pub fn contact_query(numbers: &[String], sid: &str) -> Node {
    let list = numbers
        .iter()
        .map(|n| Node::new("user").children(vec![Node::new("contact").text(format!("+{n}"))]))
        .collect();
    Node::new("iq")
        .attr("to", Jid::server_only(Server::Pn))
        .attr("type", "get")
        .attr("xmlns", "usync")
        .children(vec![
            Node::new("usync")
                .attr("sid", sid.to_owned())
                .attr("mode", "query")
                .attr("last", "true")
                .attr("index", "0")
                .attr("context", "interactive")
                .children(vec![
                    Node::new("query").children(vec![Node::new("contact"), Node::new("lid")]),
                    Node::new("list").children(list),
                ]),
        ])
}

/// Reads a contact-query answer. A `<user>` without a usable PN `jid` is skipped.
pub fn parse_contact_result(iq: &Node) -> Result<Vec<ContactEntry>, MessagingError> {
    check_iq_result(iq)?;
    let list = iq
        .child("usync")
        .and_then(|u| u.child("list"))
        .ok_or(MessagingError::Malformed("usync", "no <usync><list>"))?;
    let mut out = Vec::new();
    for user in list.children_by_tag("user") {
        let Some(jid) = user.attr_jid("jid").filter(Jid::is_pn) else {
            continue;
        };
        let jid = jid.to_non_ad();
        let exists = user
            .child("contact")
            .is_some_and(|c| c.attr_str("type") == Some("in"));
        let lid = user
            .child("lid")
            .and_then(|l| l.attr_jid("val"))
            .filter(Jid::is_lid)
            .map(|l| l.to_non_ad());
        out.push(ContactEntry {
            number: jid.user.clone(),
            exists,
            jid,
            lid,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_has_the_baileys_shape() {
        let q = device_query(&[Jid::with_device("111", 3, Server::Pn)], "sid-1");
        assert_eq!(q.attr_jid("to"), Some(Jid::server_only(Server::Pn)));
        assert_eq!(q.attr_str("xmlns"), Some("usync"));
        let usync = q.child("usync").unwrap();
        assert_eq!(usync.attr_str("context"), Some("message"));
        let query = usync.child("query").unwrap();
        assert_eq!(
            query.child("devices").unwrap().attr_str("version"),
            Some("2")
        );
        assert!(query.child("lid").is_some());
        let user = usync.child("list").unwrap().child("user").unwrap();
        // Asked as the non-AD user, JID-typed.
        assert!(matches!(
            user.get_attr("jid"),
            Some(zapin_protocol::binary::AttrValue::Jid(j)) if *j == Jid::pn("111")
        ));
    }

    #[test]
    fn result_parses_devices_and_lid_and_drops_unindexed_companions() {
        let iq =
            Node::new("iq")
                .attr("type", "result")
                .children(vec![Node::new("usync").children(vec![
                    Node::new("list").children(vec![
                        Node::new("user").attr("jid", Jid::pn("111")).children(vec![
                            Node::new("devices").children(vec![Node::new("device-list").children(
                                vec![
                                Node::new("device").attr("id", "0"),
                                Node::new("device").attr("id", "2").attr("key-index", "1"),
                                Node::new("device").attr("id", "5"),
                                Node::new("device")
                                    .attr("id", "99")
                                    .attr("key-index", "3")
                                    .attr("is_hosted", "true"),
                                Node::new("device").attr("id", "x"),
                            ],
                            )]),
                            Node::new("lid").attr("val", Jid::lid("999")),
                        ]),
                        Node::new("user").attr("jid", Jid::pn("222")),
                    ]),
                ])]);
        let users = parse_device_result(&iq).unwrap();
        assert_eq!(users.len(), 1);
        let u = &users[0];
        assert_eq!(u.lid, Some(Jid::lid("999")));
        assert_eq!(
            u.devices,
            vec![
                DeviceEntry {
                    id: 0,
                    key_index: None
                },
                DeviceEntry {
                    id: 2,
                    key_index: Some(1)
                }
            ]
        );
        assert_eq!(
            u.device_jids(),
            vec![
                Jid::with_device("999", 0, Server::Lid),
                Jid::with_device("999", 2, Server::Lid)
            ]
        );
    }

    #[test]
    fn error_iq_is_a_typed_error() {
        let iq = Node::new("iq").attr("type", "error").children(vec![
            Node::new("error")
                .attr("code", "500")
                .attr("text", "internal"),
        ]);
        assert!(matches!(
            parse_device_result(&iq),
            Err(MessagingError::Iq { code: 500, .. })
        ));
        assert!(parse_device_result(&Node::new("iq").attr("type", "result")).is_err());
    }

    #[test]
    fn numbers_are_normalized_or_refused() {
        assert_eq!(
            normalize_number("+55 (11) 99999-0000").as_deref(),
            Some("5511999990000")
        );
        assert_eq!(
            normalize_number("15550000001@s.whatsapp.net").as_deref(),
            Some("15550000001")
        );
        assert_eq!(normalize_number("12345"), None);
        assert_eq!(normalize_number("1555abc0001"), None);
        assert_eq!(normalize_number("1234567890123456"), None);
        assert_eq!(normalize_number("123@g.us"), None);
    }

    #[test]
    fn contact_query_and_answer() {
        let q = contact_query(&["15550000001".into()], "s");
        let usync = q.child("usync").unwrap();
        assert!(usync.child("query").unwrap().child("contact").is_some());
        let user = usync.child("list").unwrap().child("user").unwrap();
        assert_eq!(
            user.child("contact").unwrap().content_str(),
            Some("+15550000001")
        );
        let iq =
            Node::new("iq")
                .attr("type", "result")
                .children(vec![Node::new("usync").children(vec![
                    Node::new("list").children(vec![
                Node::new("user")
                    .attr("jid", Jid::pn("15550000001"))
                    .children(vec![
                        Node::new("contact").attr("type", "in"),
                        Node::new("lid").attr("val", Jid::lid("77")),
                    ]),
                Node::new("user")
                    .attr("jid", Jid::pn("15550000002"))
                    .children(vec![Node::new("contact").attr("type", "out")]),
                Node::new("user").attr("jid", Jid::lid("5")),
            ]),
                ])]);
        let got = parse_contact_result(&iq).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].exists);
        assert_eq!(got[0].number, "15550000001");
        assert_eq!(got[0].lid, Some(Jid::lid("77")));
        assert!(!got[1].exists);
        assert_eq!(got[1].jid, Jid::pn("15550000002"));
    }
}
