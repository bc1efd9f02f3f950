//! The usync device query (wa-protocol.md §6.4): building it and reading device lists and LID
//! mappings out of the answer.

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

    /// Device JIDs in the namespace the user was asked in: what the server hashes for the
    /// `phash` of a send addressed in that namespace (§7.10).
    pub fn device_jids_as_asked(&self) -> Vec<Jid> {
        self.devices
            .iter()
            .map(|d| Jid {
                device: d.id,
                ..self.user.to_non_ad()
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
}
