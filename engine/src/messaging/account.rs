//! The account's own settings over IQs to `s.whatsapp.net`: privacy categories (`xmlns=privacy`),
//! the block list (`xmlns=blocklist`), the about text (`xmlns=status`) and the account's picture
//! (`xmlns=w:profile:picture` without a `target`); and what others show: their about text (a
//! usync `<status/>` query), picture URL (`w:profile:picture` get with a `target`) and business
//! profile (`xmlns=w:biz`). Builders make IQs without an `id`. The push name is not an IQ: the
//! session announces it in `<presence type=available name=…>` ([`AccountOp::SetPushName`]).

use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};

use super::{MessagingError, check_iq_result};

/// An account operation a session runs for the caller ([`crate::SessionHandle::account`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOp {
    /// Every privacy category and its value.
    FetchPrivacy,
    /// One category (`readreceipts`, `profile`, `status`, `online`, `last`, `groupadd`).
    SetPrivacy { name: String, value: String },
    /// Blocks (`true`) or unblocks a user.
    Block { jid: Jid, block: bool },
    /// The about text.
    SetStatus { text: String },
    /// A JPEG, or `None` to remove the picture.
    SetPicture { jpeg: Option<Vec<u8>> },
    /// The push name others see on our messages: remembered in the credentials and announced
    /// with a presence (no IQ).
    SetPushName { name: String },
    /// A user's about text.
    FetchStatus { jid: Jid },
    /// The URL of a user's (or group's) full-size picture.
    FetchPicture { jid: Jid },
    /// A user's business profile.
    FetchBusiness { jid: Jid },
}

/// A business profile as `w:biz` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BusinessProfile {
    /// The profile's JID (`jid` of `<profile>`).
    pub jid: Option<String>,
    pub description: String,
    pub websites: Vec<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub category: Option<String>,
    /// `timezone` of `<business_hours>`.
    pub hours_timezone: Option<String>,
    /// The attributes of each `<business_hours_config>` (`day_of_week`, `mode`, `open_time`, …).
    pub hours: Vec<Vec<(String, String)>>,
}

/// What an [`AccountOp`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAnswer {
    /// FetchPrivacy: `(category, value)` pairs in the server's order.
    Privacy(Vec<(String, String)>),
    /// FetchStatus: the text (`None` when unset or hidden) and when it was set (Unix seconds).
    Status {
        text: Option<String>,
        set_at: Option<u64>,
    },
    /// FetchPicture: the URL, `None` when there is no picture or it is hidden.
    Picture(Option<String>),
    /// FetchBusiness: `None` for an account that is not a business.
    Business(Option<Box<BusinessProfile>>),
    Done,
}

fn iq(xmlns: &'static str, kind: &'static str, children: Vec<Node>) -> Node {
    let node = Node::new("iq")
        .attr("xmlns", xmlns)
        .attr("type", kind)
        .attr("to", Jid::server_only(Server::Pn));
    if children.is_empty() {
        node
    } else {
        node.children(children)
    }
}

/// The IQ for `op`.
pub fn request(op: &AccountOp) -> Node {
    match op {
        AccountOp::FetchPrivacy => iq("privacy", "get", vec![Node::new("privacy")]),
        AccountOp::SetPrivacy { name, value } => iq(
            "privacy",
            "set",
            vec![Node::new("privacy").children(vec![
                Node::new("category")
                    .attr("name", name.clone())
                    .attr("value", value.clone()),
            ])],
        ),
        AccountOp::Block { jid, block } => iq(
            "blocklist",
            "set",
            vec![
                Node::new("item")
                    .attr("action", if *block { "block" } else { "unblock" })
                    .attr("jid", jid.to_non_ad()),
            ],
        ),
        AccountOp::SetStatus { text } => iq(
            "status",
            "set",
            vec![Node::new("status").bytes(text.as_bytes().to_vec())],
        ),
        AccountOp::SetPicture { jpeg } => iq(
            "w:profile:picture",
            "set",
            jpeg.iter()
                .map(|j| Node::new("picture").attr("type", "image").bytes(j.clone()))
                .collect(),
        ),
        // Not sent as such: the session announces the name in a presence (see the enum).
        AccountOp::SetPushName { name } => super::presence::available(name),
        AccountOp::FetchStatus { jid } => iq(
            "usync",
            "get",
            vec![
                Node::new("usync")
                    .attr("sid", format!("status.{}", jid.user))
                    .attr("mode", "query")
                    .attr("last", "true")
                    .attr("index", "0")
                    .attr("context", "interactive")
                    .children(vec![
                        Node::new("query").children(vec![Node::new("status")]),
                        Node::new("list")
                            .children(vec![Node::new("user").attr("jid", jid.to_non_ad())]),
                    ]),
            ],
        ),
        AccountOp::FetchPicture { jid } => iq(
            "w:profile:picture",
            "get",
            vec![
                Node::new("picture")
                    .attr("type", "image")
                    .attr("query", "url"),
            ],
        )
        .attr("target", jid.to_non_ad()),
        AccountOp::FetchBusiness { jid } => iq(
            "w:biz",
            "get",
            vec![
                Node::new("business_profile")
                    .attr("v", "244")
                    .children(vec![Node::new("profile").attr("jid", jid.to_non_ad())]),
            ],
        ),
    }
}

fn text_of(node: &Node, tag: &str) -> Option<String> {
    node.child(tag)
        .and_then(Node::content_str)
        .map(str::to_owned)
        .filter(|t| !t.is_empty())
}

fn business(answer: &Node) -> Option<BusinessProfile> {
    let profile = answer.child("business_profile")?.child("profile")?;
    let hours = profile.child("business_hours");
    Some(BusinessProfile {
        jid: profile
            .attr_jid("jid")
            .map(|j| j.to_string())
            .or_else(|| profile.attr_str("jid").map(str::to_owned)),
        description: text_of(profile, "description").unwrap_or_default(),
        websites: profile
            .children_by_tag("website")
            .filter_map(|w| w.content_str().map(str::to_owned))
            .filter(|w| !w.is_empty())
            .collect(),
        email: text_of(profile, "email"),
        address: text_of(profile, "address"),
        category: profile
            .child("categories")
            .and_then(|c| text_of(c, "category")),
        hours_timezone: hours
            .and_then(|h| h.attr_str("timezone"))
            .map(str::to_owned),
        hours: hours
            .map(|h| {
                h.children_by_tag("business_hours_config")
                    .map(|c| {
                        c.attrs
                            .iter()
                            .filter_map(|(k, v)| Some((k.to_owned(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Reads the server's answer to `op`.
pub fn parse(op: &AccountOp, answer: &Node) -> Result<AccountAnswer, MessagingError> {
    // A picture that is missing or hidden is an IQ error (404 / 401): no picture, as Baileys
    // callers read it.
    if matches!(op, AccountOp::FetchPicture { .. }) {
        return Ok(AccountAnswer::Picture(match check_iq_result(answer) {
            Ok(()) => answer
                .child("picture")
                .and_then(|p| p.attr_str("url"))
                .map(str::to_owned),
            Err(MessagingError::Iq {
                code: 401 | 404, ..
            }) => None,
            Err(e) => return Err(e),
        }));
    }
    check_iq_result(answer)?;
    match op {
        AccountOp::FetchStatus { .. } => {
            let node = answer
                .child("usync")
                .and_then(|u| u.child("list"))
                .and_then(|l| l.child("user"))
                .and_then(|u| u.child("status"));
            Ok(AccountAnswer::Status {
                text: node
                    .and_then(Node::content_str)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
                set_at: node
                    .and_then(|n| n.attr_str("t"))
                    .and_then(|t| t.parse().ok()),
            })
        }
        AccountOp::FetchBusiness { .. } => {
            Ok(AccountAnswer::Business(business(answer).map(Box::new)))
        }
        AccountOp::FetchPrivacy => {
            let list = answer
                .child("privacy")
                .ok_or(MessagingError::Malformed("privacy answer", "no <privacy>"))?;
            Ok(AccountAnswer::Privacy(
                list.children_by_tag("category")
                    .filter_map(|c| {
                        Some((
                            c.attr_str("name")?.to_owned(),
                            c.attr_str("value")?.to_owned(),
                        ))
                    })
                    .collect(),
            ))
        }
        _ => Ok(AccountAnswer::Done),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_and_answers() {
        let block = request(&AccountOp::Block {
            jid: Jid::pn("15550000002"),
            block: true,
        });
        assert_eq!(block.attr_str("xmlns"), Some("blocklist"));
        assert_eq!(
            block.child("item").unwrap().attr_str("action"),
            Some("block")
        );
        let remove = request(&AccountOp::SetPicture { jpeg: None });
        assert!(remove.child_nodes().is_empty());
        let answer =
            Node::new("iq")
                .attr("type", "result")
                .children(vec![Node::new("privacy").children(vec![
                Node::new("category")
                    .attr("name", "last")
                    .attr("value", "none"),
            ])]);
        assert_eq!(
            parse(&AccountOp::FetchPrivacy, &answer).unwrap(),
            AccountAnswer::Privacy(vec![("last".into(), "none".into())])
        );
        let err = Node::new("iq").attr("type", "error").children(vec![
            Node::new("error")
                .attr("code", "400")
                .attr("text", "bad-request"),
        ]);
        assert!(matches!(
            parse(&AccountOp::SetStatus { text: "x".into() }, &err),
            Err(MessagingError::Iq { code: 400, .. })
        ));
    }
    #[test]
    fn what_others_show() {
        let jid = Jid::pn("15550000002");
        let ask = request(&AccountOp::FetchStatus { jid: jid.clone() });
        assert_eq!(ask.attr_str("xmlns"), Some("usync"));
        let answer =
            Node::new("iq")
                .attr("type", "result")
                .children(vec![Node::new("usync").children(vec![
                    Node::new("list").children(vec![
                Node::new("user")
                    .attr("jid", jid.clone())
                    .children(vec![Node::new("status").attr("t", "5").text("Busy")]),
            ]),
                ])]);
        assert_eq!(
            parse(&AccountOp::FetchStatus { jid: jid.clone() }, &answer).unwrap(),
            AccountAnswer::Status {
                text: Some("Busy".into()),
                set_at: Some(5)
            }
        );
        let pic = AccountOp::FetchPicture { jid: jid.clone() };
        assert_eq!(
            request(&pic).attr_jid("target"),
            Some(Jid::pn("15550000002"))
        );
        let missing = Node::new("iq").attr("type", "error").children(vec![
            Node::new("error")
                .attr("code", "404")
                .attr("text", "item-not-found"),
        ]);
        assert_eq!(parse(&pic, &missing).unwrap(), AccountAnswer::Picture(None));
        let found = Node::new("iq").attr("type", "result").children(vec![
            Node::new("picture")
                .attr("id", "1")
                .attr("url", "https://example/p.jpg"),
        ]);
        assert_eq!(
            parse(&pic, &found).unwrap(),
            AccountAnswer::Picture(Some("https://example/p.jpg".into()))
        );
        let biz = AccountOp::FetchBusiness { jid: jid.clone() };
        let none = Node::new("iq")
            .attr("type", "result")
            .children(vec![Node::new("business_profile")]);
        assert_eq!(parse(&biz, &none).unwrap(), AccountAnswer::Business(None));
        let some = Node::new("iq").attr("type", "result").children(vec![
            Node::new("business_profile").children(vec![
                Node::new("profile").attr("jid", jid).children(vec![
                    Node::new("description").text("Bakery"),
                    Node::new("website").text("https://bread.example"),
                    Node::new("email").text("hi@bread.example"),
                    Node::new("categories")
                        .children(vec![Node::new("category").attr("id", "1").text("Food")]),
                    Node::new("business_hours")
                        .attr("timezone", "UTC")
                        .children(vec![
                            Node::new("business_hours_config")
                                .attr("day_of_week", "mon")
                                .attr("mode", "open_24h"),
                        ]),
                ]),
            ]),
        ]);
        let AccountAnswer::Business(Some(p)) = parse(&biz, &some).unwrap() else {
            panic!("no profile");
        };
        assert_eq!(p.description, "Bakery");
        assert_eq!(p.websites, vec!["https://bread.example".to_owned()]);
        assert_eq!(p.category.as_deref(), Some("Food"));
        assert_eq!(p.hours_timezone.as_deref(), Some("UTC"));
        assert_eq!(p.hours[0][1], ("mode".into(), "open_24h".into()));
    }
}
