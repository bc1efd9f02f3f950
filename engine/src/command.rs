//! `SessionHandle`: the typed front of a session actor, and the `Command`s it sends.

use tokio::sync::{mpsc, oneshot, watch};

use zapin_protocol::jid::Jid;
use zapin_protocol::proto::wa;

use crate::error::EngineError;
use crate::events::{ConnectionState, InstanceId};
use crate::messaging::account::{AccountAnswer, AccountOp};
use crate::messaging::group_admin::{GroupAnswer, GroupOp};
use crate::messaging::presence::ChatState;
use crate::messaging::usync::{MAX_CONTACT_QUERY, normalize_number};

pub type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// An outgoing message.
#[derive(Debug, Clone, PartialEq)]
pub enum OutgoingMessage {
    Text {
        text: String,
        options: SendOptions,
    },
    /// Any prepared content (media, location, contact, reaction, poll, …). The quote and
    /// mentions of `options` go into the `contextInfo` of its content field.
    Content {
        message: Box<wa::Message>,
        options: SendOptions,
    },
}

/// What a text may carry besides its body (Evolution's `quoted`, `mentioned`,
/// `mentionsEveryOne`), and the id to send it under. The default is a plain text with a new id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendOptions {
    /// The message id, chosen by the caller so that it can record the message (and answer for
    /// it) before anything goes on the wire, and send it again under the same id after a crash:
    /// WhatsApp clients keep one message per id. It must pass
    /// [`crate::messaging::ids::is_valid_message_id`] ([`EngineError::InvalidMessageId`]
    /// otherwise); `None` lets the session generate one.
    pub id: Option<String>,
    /// The message this one replies to.
    pub quoted: Option<QuotedMessage>,
    /// Users mentioned (`digits` or JIDs), listed in `contextInfo.mentionedJid`.
    pub mentions: Vec<String>,
    /// In a group: mention every current member (added to `mentions`).
    pub mention_everyone: bool,
    /// Held at the wire: the stanza is encrypted (its ratchet state durable) and then written
    /// only once the gate opens, and not at all if it closes. See [`WireGate`].
    pub gate: Option<WireGate>,
}

/// Lets a caller overlap its own durable bookkeeping with the session's encryption.
///
/// A gateway must record a message before it can be on the wire (so a crash never sends one it
/// did not answer for). Committing that record and then asking the session to send costs two
/// fsyncs one after the other; with a gate, the caller commits while the session encrypts and
/// commits its ratchet, and the stanza waits only for whichever finishes last. Closing the gate
/// (or dropping the [`GateOpener`]) withdraws the send: nothing is written and the send answers
/// [`EngineError::Withdrawn`]. The ratchet step it used is simply skipped, as after a crash
/// between encryption and write; receivers tolerate such gaps.
#[derive(Debug, Clone)]
pub struct WireGate(watch::Receiver<Option<bool>>);

/// The caller's side of a [`WireGate`].
#[derive(Debug)]
pub struct GateOpener(watch::Sender<Option<bool>>);

impl WireGate {
    /// A closed gate and the opener that decides it.
    pub fn new() -> (GateOpener, WireGate) {
        let (tx, rx) = watch::channel(None);
        (GateOpener(tx), WireGate(rx))
    }

    /// Whether the stanza may go: waits for the opener's decision (`false` when it was dropped
    /// without one).
    pub async fn pass(&mut self) -> bool {
        match self.0.wait_for(Option::is_some).await {
            Ok(decided) => decided.unwrap_or(false),
            Err(_) => false,
        }
    }
}

impl PartialEq for WireGate {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl GateOpener {
    /// Lets the stanza go.
    pub fn open(self) {
        let _ = self.0.send(Some(true));
    }

    /// Withdraws the send.
    pub fn close(self) {
        let _ = self.0.send(Some(false));
    }
}

/// The message a reply quotes.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotedMessage {
    /// Its message id (`contextInfo.stanzaId`).
    pub id: String,
    /// The chat it was sent in, when not the chat of the reply (`contextInfo.remoteJid`).
    pub chat: Option<String>,
    /// Who wrote it: required for group messages of others; otherwise the chat's peer, or our
    /// own user when `from_me`.
    pub participant: Option<String>,
    pub from_me: bool,
    /// Its content (`contextInfo.quotedMessage`); [`QuotedMessage::text`] makes a text one.
    pub message: wa::Message,
}

impl QuotedMessage {
    /// A quote of a plain text message.
    pub fn text(id: impl Into<String>, text: impl Into<String>) -> Self {
        QuotedMessage {
            id: id.into(),
            chat: None,
            participant: None,
            from_me: false,
            message: wa::Message {
                conversation: Some(text.into()),
                ..Default::default()
            },
        }
    }
}

/// What a session actor can be asked to do. Messaging variants need an open connection
/// ([`EngineError::NotConnected`] otherwise); broadcast/status sends answer
/// [`EngineError::Unsupported`].
#[derive(Debug)]
pub enum Command {
    /// Connect (and keep reconnecting) until stopped. Unpaired sessions start showing QR codes.
    Connect {
        reply: Reply<()>,
    },
    /// Close the connection and stay offline; credentials are kept.
    Stop {
        reply: Reply<()>,
    },
    /// Tell the server (when connected), then clear the credentials and stop. The session stays
    /// registered, unpaired, with fresh keys.
    Logout {
        reply: Reply<()>,
    },
    /// Pair by phone number: answers the 8-character code to type on the phone.
    RequestPairingCode {
        phone: String,
        reply: Reply<String>,
    },
    /// Stop and end the actor (used by `delete` and `shutdown`).
    Shutdown {
        reply: Reply<()>,
    },
    // ---- messaging ----
    SendMessage {
        to: String,
        /// Boxed: a quote carries a whole message, and every command pays the largest size.
        message: Box<OutgoingMessage>,
        reply: Reply<String>,
    },
    SendPresence {
        available: bool,
        reply: Reply<()>,
    },
    /// `<presence type=subscribe>` to a user: its presence updates follow as events.
    SubscribePresence {
        jid: String,
        reply: Reply<()>,
    },
    /// Typing/recording/paused in a chat.
    SendChatPresence {
        to: String,
        state: ChatState,
        reply: Reply<()>,
    },
    /// Which of `numbers` (normalized, deduplicated, at most [`MAX_CONTACT_QUERY`]) are on
    /// WhatsApp: one usync contact query.
    CheckNumbers {
        numbers: Vec<String>,
        reply: Reply<Vec<NumberCheck>>,
    },
    /// A group's metadata (cached, else one `w:g2` IQ); `None` if the server does not know the
    /// group or we are not in it.
    GroupInfo {
        group: String,
        reply: Reply<Option<GroupInfo>>,
    },
    /// A group operation (one or two IQs, see [`crate::messaging::group_admin`]).
    Group {
        op: GroupOp,
        reply: Reply<GroupAnswer>,
    },
    /// An account setting (privacy, block list, about text, picture): one IQ.
    Account {
        op: AccountOp,
        reply: Reply<AccountAnswer>,
    },
    /// Read receipts for `ids`, all sent by `participant` (groups) or the chat's peer.
    MarkRead {
        chat: String,
        participant: Option<String>,
        ids: Vec<String>,
        reply: Reply<()>,
    },
    /// The session's `media_conn` (cached until it expires; `refresh` fetches a new one) and its
    /// media HTTP client, for a transfer the caller runs ([`crate::media`]).
    MediaConn {
        refresh: bool,
        reply: Reply<(crate::media::MediaConn, crate::media::MediaHttp)>,
    },
    /// Fault injection for tests of the supervisor: the actor panics on receipt.
    #[doc(hidden)]
    InjectPanic,
}

/// What the server says about a group we are in (Evolution's whatsappNumbers answer for a group
/// JID, and later its group routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub jid: Jid,
    pub subject: Option<String>,
    /// Members as user JIDs in the group's addressing namespace (LIDs in a `lid` group).
    pub members: Vec<Jid>,
}

/// Whether one phone number is on WhatsApp (Evolution's `POST /chat/whatsappNumbers` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberCheck {
    /// The number as asked, normalized to digits.
    pub number: String,
    pub exists: bool,
    /// `digits@s.whatsapp.net` (also when the number does not exist).
    pub jid: Jid,
    /// The account's LID, when the server told it.
    pub lid: Option<Jid>,
}

/// What a session reports about itself, readable without asking the actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    pub state: ConnectionState,
    /// The session wants to be connected (it reconnects on its own while this is set).
    pub running: bool,
    /// Own device JID once paired.
    pub jid: Option<String>,
    /// Why the last connection attempt or connection failed, while the session is retrying
    /// (a TLS error, a refused login, a lost socket); cleared when a connection opens. The state
    /// stays `Connecting` through retries, so this is where the cause is visible.
    pub last_error: Option<String>,
}

/// A cheap, cloneable handle to one session's actor.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub(crate) instance: InstanceId,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) status: watch::Receiver<SessionStatus>,
}

impl SessionHandle {
    pub fn instance(&self) -> &InstanceId {
        &self.instance
    }

    pub fn status(&self) -> SessionStatus {
        self.status.borrow().clone()
    }

    pub fn state(&self) -> ConnectionState {
        self.status.borrow().state
    }

    /// Waits until the state satisfies `f` (useful for callers and tests; never sleeps blindly).
    pub async fn wait_for(&self, f: impl Fn(&SessionStatus) -> bool) -> Result<(), EngineError> {
        let mut rx = self.status.clone();
        rx.wait_for(|s| f(s))
            .await
            .map(|_| ())
            .map_err(|_| EngineError::SessionGone)
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| EngineError::SessionGone)?;
        rx.await.map_err(|_| EngineError::SessionGone)?
    }

    pub async fn connect(&self) -> Result<(), EngineError> {
        self.ask(|reply| Command::Connect { reply }).await
    }

    pub async fn stop(&self) -> Result<(), EngineError> {
        self.ask(|reply| Command::Stop { reply }).await
    }

    pub async fn logout(&self) -> Result<(), EngineError> {
        self.ask(|reply| Command::Logout { reply }).await
    }

    /// Starts phone-number pairing (connecting first if needed) and returns the code.
    pub async fn request_pairing_code(&self, phone: &str) -> Result<String, EngineError> {
        let phone = phone.to_owned();
        self.ask(|reply| Command::RequestPairingCode { phone, reply })
            .await
    }

    pub(crate) async fn shutdown(&self) -> Result<(), EngineError> {
        self.ask(|reply| Command::Shutdown { reply }).await
    }

    /// Sends a text to a user (`digits` or a JID); answers the message id once the stanza is
    /// written. Status updates follow as [`crate::EventKind::MessageUpdate`].
    pub async fn send_text(&self, to: &str, text: &str) -> Result<String, EngineError> {
        self.send_text_with(to, text, SendOptions::default()).await
    }

    /// [`SessionHandle::send_text`] with a quote and/or mentions: sent as an
    /// `extendedTextMessage` whose `contextInfo` carries them. `mention_everyone` on a group
    /// mentions its members as the (cached) group metadata lists them.
    ///
    /// Errors before the stanza is written mean nothing was sent. [`EngineError::WriteInterrupted`]
    /// means the connection broke while writing it: the server may or may not have it.
    pub async fn send_text_with(
        &self,
        to: &str,
        text: &str,
        options: SendOptions,
    ) -> Result<String, EngineError> {
        if let Some(id) = &options.id
            && !crate::messaging::ids::is_valid_message_id(id)
        {
            return Err(EngineError::InvalidMessageId(id.clone()));
        }
        let (to, message) = (
            to.to_owned(),
            Box::new(OutgoingMessage::Text {
                text: text.to_owned(),
                options,
            }),
        );
        self.ask(|reply| Command::SendMessage { to, message, reply })
            .await
    }

    /// Sends prepared content (built with [`crate::messaging::content`]: an uploaded media's
    /// message, a location, a contact, a reaction, …) like [`SessionHandle::send_text_with`]:
    /// same id, gate and failure rules; the quote and mentions are added to the content's
    /// `contextInfo`.
    pub async fn send_message_with(
        &self,
        to: &str,
        message: wa::Message,
        options: SendOptions,
    ) -> Result<String, EngineError> {
        if let Some(id) = &options.id
            && !crate::messaging::ids::is_valid_message_id(id)
        {
            return Err(EngineError::InvalidMessageId(id.clone()));
        }
        let (to, message) = (
            to.to_owned(),
            Box::new(OutgoingMessage::Content {
                message: Box::new(message),
                options,
            }),
        );
        self.ask(|reply| Command::SendMessage { to, message, reply })
            .await
    }

    /// `<presence type=available|unavailable>` (available uses the push name).
    pub async fn send_presence(&self, available: bool) -> Result<(), EngineError> {
        self.ask(|reply| Command::SendPresence { available, reply })
            .await
    }

    /// Asks for `jid`'s presence: the server answers with its current availability and then
    /// relays changes, all as [`crate::EventKind::Presence`]. Lasts for this connection.
    pub async fn subscribe_presence(&self, jid: &str) -> Result<(), EngineError> {
        let jid = jid.to_owned();
        self.ask(|reply| Command::SubscribePresence { jid, reply })
            .await
    }

    /// The metadata of a group (`…@g.us`), from the session's cache or one IQ; `Ok(None)` when
    /// the server answers that the group does not exist or we are not a member. Anything but a
    /// group JID is [`EngineError::InvalidJid`].
    pub async fn group_info(&self, group: &str) -> Result<Option<GroupInfo>, EngineError> {
        let group = group.to_owned();
        self.ask(|reply| Command::GroupInfo { group, reply }).await
    }

    /// Runs a group operation: create, metadata, participants, subject, description, picture,
    /// settings, ephemeral timer, invite links, leave. Server refusals are
    /// [`EngineError::Messaging`] carrying [`crate::messaging::MessagingError::Iq`] with
    /// WhatsApp's code. Needs an open connection.
    pub async fn group(&self, op: GroupOp) -> Result<GroupAnswer, EngineError> {
        self.ask(|reply| Command::Group { op, reply }).await
    }

    /// Reads or changes the account's own settings (see [`crate::messaging::account`]).
    /// Server refusals are [`EngineError::Messaging`] with WhatsApp's code. Needs an open
    /// connection.
    pub async fn account(&self, op: AccountOp) -> Result<AccountAnswer, EngineError> {
        self.ask(|reply| Command::Account { op, reply }).await
    }

    /// Shows us typing ([`ChatState::Composing`]), recording, or stopping ([`ChatState::Paused`])
    /// in a chat (a user or a group). Evolution's `/chat/sendPresence`.
    pub async fn send_chat_presence(&self, to: &str, state: ChatState) -> Result<(), EngineError> {
        let to = to.to_owned();
        self.ask(|reply| Command::SendChatPresence { to, state, reply })
            .await
    }

    /// Which of `numbers` have a WhatsApp account, one answer per input in input order
    /// (duplicates answered alike). Numbers may carry `+`, spaces, `-`, `(`, `)`, `.`; any other
    /// character or a length outside 7..=15 digits is [`EngineError::InvalidPhone`], and more than
    /// [`MAX_CONTACT_QUERY`] distinct numbers is [`EngineError::TooManyNumbers`], both before
    /// anything is sent. Needs an open connection.
    pub async fn on_whatsapp(
        &self,
        numbers: &[impl AsRef<str>],
    ) -> Result<Vec<NumberCheck>, EngineError> {
        let mut normalized = Vec::with_capacity(numbers.len());
        for n in numbers {
            let n = n.as_ref();
            normalized
                .push(normalize_number(n).ok_or_else(|| EngineError::InvalidPhone(n.to_owned()))?);
        }
        let mut distinct = normalized.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > MAX_CONTACT_QUERY {
            return Err(EngineError::TooManyNumbers {
                max: MAX_CONTACT_QUERY,
            });
        }
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        let found = self
            .ask(|reply| Command::CheckNumbers {
                numbers: distinct,
                reply,
            })
            .await?;
        Ok(normalized
            .into_iter()
            .map(|number| {
                found
                    .iter()
                    .find(|c| c.number == number)
                    .cloned()
                    .unwrap_or_else(|| NumberCheck {
                        jid: Jid::pn(number.clone()),
                        number,
                        exists: false,
                        lid: None,
                    })
            })
            .collect())
    }

    /// Marks messages as read (`participant`: their sender in a group).
    pub async fn mark_read(
        &self,
        chat: &str,
        participant: Option<&str>,
        ids: Vec<String>,
    ) -> Result<(), EngineError> {
        let chat = chat.to_owned();
        let participant = participant.map(str::to_owned);
        self.ask(|reply| Command::MarkRead {
            chat,
            participant,
            ids,
            reply,
        })
        .await
    }

    /// Test hook: makes the actor panic (the manager restarts it with backoff).
    #[doc(hidden)]
    pub async fn inject_panic(&self) -> Result<(), EngineError> {
        self.commands
            .send(Command::InjectPanic)
            .await
            .map_err(|_| EngineError::SessionGone)
    }
}
