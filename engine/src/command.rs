//! `SessionHandle`: the typed front of a session actor, and the `Command`s it sends.

use tokio::sync::{mpsc, oneshot, watch};

use crate::error::EngineError;
use crate::events::{ConnectionState, InstanceId};

pub type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// An outgoing message. Minimal until the messaging pipeline lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingMessage {
    Text { text: String },
}

/// What a session actor can be asked to do. Messaging variants need an open connection
/// ([`EngineError::NotConnected`] otherwise); group sends answer [`EngineError::Unsupported`]
/// until group metadata is wired in.
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
    // ---- messaging (stubbed) ----
    SendMessage {
        to: String,
        message: OutgoingMessage,
        reply: Reply<String>,
    },
    SendPresence {
        available: bool,
        reply: Reply<()>,
    },
    /// Read receipts for `ids`, all sent by `participant` (groups) or the chat's peer.
    MarkRead {
        chat: String,
        participant: Option<String>,
        ids: Vec<String>,
        reply: Reply<()>,
    },
    /// Fault injection for tests of the supervisor: the actor panics on receipt.
    #[doc(hidden)]
    InjectPanic,
}

/// What a session reports about itself, readable without asking the actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    pub state: ConnectionState,
    /// The session wants to be connected (it reconnects on its own while this is set).
    pub running: bool,
    /// Own device JID once paired.
    pub jid: Option<String>,
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
        let (to, message) = (
            to.to_owned(),
            OutgoingMessage::Text {
                text: text.to_owned(),
            },
        );
        self.ask(|reply| Command::SendMessage { to, message, reply })
            .await
    }

    /// `<presence type=available|unavailable>` (available uses the push name).
    pub async fn send_presence(&self, available: bool) -> Result<(), EngineError> {
        self.ask(|reply| Command::SendPresence { available, reply })
            .await
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
