//! What the engine asks of the caller: send a planned reply through the normal send path (so
//! it is charged to the tenant's quota and appears in webhooks like any send), and hear about
//! session changes and failures (for logs and `*.change-status`/error events).

use crate::BoxFuture;
use crate::reply::ReplyPlan;
use crate::session::SessionStatus;

/// A send the caller could not complete.
#[derive(Debug, thiserror::Error)]
#[error("send failed: {0}")]
pub struct SendError(pub String);

/// Something the caller may turn into a log line or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotEvent {
    /// A session was created, changed status or was deleted (`None`).
    SessionStatus {
        instance: String,
        remote_jid: String,
        kind: String,
        bot_id: Option<String>,
        status: Option<SessionStatus>,
    },
    /// A bot call produced no answer; the conversation got no reply.
    BotFailed {
        instance: String,
        remote_jid: String,
        kind: String,
        bot_id: String,
        attempts: u32,
        error: String,
    },
    /// The reply could not be sent.
    SendFailed {
        instance: String,
        remote_jid: String,
        error: String,
    },
    /// The conversation already had too many messages waiting; this one was dropped for bots.
    Overloaded {
        instance: String,
        remote_jid: String,
    },
    /// Session storage failed; the message was dropped for bots.
    StoreFailed {
        instance: String,
        remote_jid: String,
        error: String,
    },
    /// A bot call was answered and its plan handed to [`Outbound::send`] (possibly empty).
    Answered {
        instance: String,
        remote_jid: String,
        kind: String,
        bot_id: String,
    },
}

/// Implemented by the gateway.
pub trait Outbound: Send + Sync + 'static {
    /// Sends the plan's messages to `remote_jid` in order, honouring each step's typing time.
    fn send<'a>(
        &'a self,
        instance: &'a str,
        remote_jid: &'a str,
        plan: ReplyPlan,
    ) -> BoxFuture<'a, Result<(), SendError>>;

    /// Reports an event. Must not block (queue it).
    fn event(&self, event: BotEvent);
}
