//! Connected commands that talk to the server: send a message, check numbers, group info.

use zapin_protocol::jid::Jid;

use crate::command::{GroupInfo, NumberCheck, OutgoingMessage, SendOptions};
use crate::error::EngineError;
use crate::events::EventKind;
use crate::messaging::{Exchange, MessagingError, Messenger, content, ids, usync};
use crate::socket::Connection;

use super::exchange::ConnExchange;
use super::{Conn, Session, Step, now_unix, step_result};

impl Session {
    /// One usync contact query for `numbers` (already normalized and bounded by the handle).
    /// LIDs it reveals feed the messenger's PN → LID map.
    pub(super) async fn check_numbers(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        numbers: &[String],
    ) -> Result<Vec<NumberCheck>, EngineError> {
        let sid = self.next_iq_id();
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        let answer = exchange
            .query(usync::contact_query(numbers, &sid))
            .await
            .map_err(MessagingError::from)?;
        let entries = usync::parse_contact_result(&answer)?;
        if let Some(m) = self.messenger.as_mut() {
            for e in &entries {
                if let Some(lid) = &e.lid {
                    m.learn_lid(&e.jid, lid);
                }
            }
        }
        Ok(entries
            .into_iter()
            .map(|e| NumberCheck {
                number: e.number,
                exists: e.exists,
                jid: e.jid,
                lid: e.lid,
            })
            .collect())
    }

    /// [`crate::SessionHandle::group_info`]: a 404/403 answer means no such group for us.
    pub(super) async fn group_info(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        group: &str,
    ) -> Result<Option<GroupInfo>, EngineError> {
        let jid = match parse_jid(group) {
            Ok(j) if j.is_group() => j,
            _ => return Err(EngineError::InvalidJid(group.to_owned())),
        };
        let Some(messenger) = self.messenger.as_mut() else {
            return Err(EngineError::NotConnected);
        };
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        match messenger.group_metadata(&mut exchange, &jid).await {
            Ok(meta) => Ok(Some(GroupInfo {
                jid: meta.jid,
                subject: meta.subject,
                members: meta.members,
            })),
            Err(MessagingError::Iq {
                code: 403 | 404, ..
            }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Encrypts and writes a message to a user; answers its id.
    pub(super) async fn send_message(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        to: &str,
        message: Box<OutgoingMessage>,
    ) -> (Result<String, EngineError>, Step) {
        if cx.opened_at.is_none() {
            return (Err(EngineError::NotConnected), Step::Continue);
        }
        let to = match parse_jid(to) {
            Ok(j) => j,
            Err(e) => return (Err(e), Step::Continue),
        };
        if to.is_broadcast() {
            return (
                Err(EngineError::Unsupported("broadcast and status sends")),
                Step::Continue,
            );
        }
        let Some(messenger) = self.messenger.as_mut() else {
            return (Err(EngineError::NotConnected), Step::Continue);
        };
        let (body, options) = match *message {
            OutgoingMessage::Text { text, options } => (Body::Text(text), options),
            OutgoingMessage::Content { message, options } => (Body::Content(message), options),
        };
        let build = |quoted: Option<&content::Quoted>, mentions: &[Jid]| match &body {
            Body::Text(text) => content::prepare_text(&to, text, quoted, mentions),
            Body::Content(m) => content::with_context(m, &to, quoted, mentions),
        };
        let (quoted, mut mentions) = match resolve_options(&to, &messenger.me().pn, &options) {
            Ok(r) => r,
            Err(e) => return (Err(e), Step::Continue),
        };
        let id = match options.id.clone() {
            Some(id) => id,
            None => ids::message_id(now_unix(), &messenger.me().pn.user, &mut self.rng),
        };
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        let mut subject = None;
        let sent = if to.is_group() {
            match messenger.group_metadata(&mut exchange, &to).await {
                Ok(meta) => {
                    subject = meta.subject.clone();
                    if options.mention_everyone {
                        for member in &meta.members {
                            if !mentions.contains(member) {
                                mentions.push(member.clone());
                            }
                        }
                    }
                    let content = build(quoted.as_ref(), &mentions);
                    messenger
                        .send_group(
                            &mut exchange,
                            &to,
                            &meta.members,
                            meta.mode,
                            &content,
                            &id,
                            &mut self.rng,
                        )
                        .await
                }
                Err(e) => Err(e),
            }
        } else {
            let content = build(quoted.as_ref(), &mentions);
            messenger
                .send_direct(&mut exchange, &to, &content, &id, &mut self.rng)
                .await
        };
        match sent {
            Ok(sent) => {
                if let Some(mut gate) = options.gate.clone()
                    && !gate.pass().await
                {
                    if to.is_group() {
                        // The sender key shares in this stanza never left.
                        messenger_forget_shares(self.messenger.as_mut(), &to);
                    }
                    return (Err(EngineError::Withdrawn), Step::Continue);
                }
                // Encrypted and durable, and (behind a gate) the caller's record too.
                crate::crashpoint::hit("send.encrypted");
                let step = self.send(conn, &sent.stanza).await;
                if matches!(step, Step::Continue) {
                    crate::crashpoint::hit("send.written");
                }
                if step_result(&step).is_err() && to.is_group() {
                    // Never delivered: the next send must distribute the sender key again.
                    messenger_forget_shares(self.messenger.as_mut(), &to);
                }
                if step_result(&step).is_ok()
                    && let Some(chat) = self.directory.chat(&to, subject.as_deref())
                {
                    self.emit(EventKind::Chats(vec![chat]));
                }
                let result = match step {
                    Step::Continue => Ok(id),
                    Step::End(_) => Err(EngineError::WriteInterrupted),
                };
                (result, step)
            }
            Err(e) => (Err(e.into()), Step::Continue),
        }
    }
}

/// What a send carries before its context is added.
enum Body {
    Text(String),
    Content(Box<zapin_protocol::proto::wa::Message>),
}

pub(super) fn messenger_forget_shares(messenger: Option<&mut Messenger>, group: &Jid) {
    if let Some(m) = messenger {
        m.forget_sender_key_devices(group);
    }
}

/// A user as digits (a phone number) or any JID.
pub(super) fn parse_jid(s: &str) -> Result<Jid, EngineError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Jid::pn(s));
    }
    s.parse().map_err(|_| EngineError::InvalidJid(s.to_owned()))
}

/// The quote and mention list of a text to `to`, from the caller's options. A quoted message
/// of someone else in a group must name its author.
pub(super) fn resolve_options(
    to: &Jid,
    me: &Jid,
    options: &SendOptions,
) -> Result<(Option<content::Quoted>, Vec<Jid>), EngineError> {
    let mut mentions = Vec::with_capacity(options.mentions.len());
    for m in &options.mentions {
        let jid = parse_jid(m)?.to_non_ad();
        if !mentions.contains(&jid) {
            mentions.push(jid);
        }
    }
    let quoted = match &options.quoted {
        None => None,
        Some(q) => {
            let chat = match &q.chat {
                Some(c) => parse_jid(c)?.to_non_ad(),
                None => to.to_non_ad(),
            };
            let author = match (&q.participant, q.from_me) {
                (Some(p), _) => parse_jid(p)?.to_non_ad(),
                (None, true) => me.to_non_ad(),
                (None, false) if chat.is_group() => {
                    return Err(EngineError::InvalidJid(
                        "quoted group message without participant".into(),
                    ));
                }
                (None, false) => chat.clone(),
            };
            Some(content::Quoted {
                id: q.id.clone(),
                chat,
                author,
                message: q.message.clone(),
            })
        }
    };
    Ok((quoted, mentions))
}
