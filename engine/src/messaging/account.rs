//! The account's own settings over IQs to `s.whatsapp.net`: privacy categories (`xmlns=privacy`),
//! the block list (`xmlns=blocklist`), the about text (`xmlns=status`) and the account's picture
//! (`xmlns=w:profile:picture` without a `target`). Builders make IQs without an `id`.

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
}

/// What an [`AccountOp`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAnswer {
    /// FetchPrivacy: `(category, value)` pairs in the server's order.
    Privacy(Vec<(String, String)>),
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
    }
}

/// Reads the server's answer to `op`.
pub fn parse(op: &AccountOp, answer: &Node) -> Result<AccountAnswer, MessagingError> {
    check_iq_result(answer)?;
    match op {
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
}
