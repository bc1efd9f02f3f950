//! What the mock phone (device 0 of every account) does through Signal: sending texts, read
//! receipts, group-creation notifications (`PhoneActions`, called by the control API after it
//! validated the request), and receiving what the router delivers to device 0 (`receive`).
//! `SignalPhone` is the real implementation and the default; `UnwiredPhone` refuses everything
//! (for tests that want the control API without Signal).

mod content;
mod receive;
mod retry;
mod send;
pub mod signal;

pub use content::ContentDetails;
pub use receive::receive;
pub use send::SignalPhone;
pub use signal::fetch_bundle;

use crate::addr::ChatAddr;
use crate::sim::Sim;

/// A text the phone of `from` sends (`POST /sim/accounts/{phone}/messages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendText {
    pub from: String,
    /// A known user (by PN or LID) or an existing group: checked by the caller.
    pub to: ChatAddr,
    pub id: String,
    pub text: String,
    /// Instead of a plain text: an edit, a revoke or a reaction about another message.
    pub about: Option<About>,
}

/// What a phone's message may do to an earlier message of the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// Replace our message `id`'s text with `text`.
    Edit { id: String },
    /// Delete our message `id` for everyone.
    Revoke { id: String },
    /// React with `text` (`""` removes) to message `id`, written by `from_me` us or not.
    React { id: String, from_me: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeamError {
    #[error("{0} needs the protocol layer (Signal, binary codec), not wired yet")]
    NotWired(&'static str),
    #[error("{0}")]
    Failed(String),
}

pub trait PhoneActions: Send + Sync + std::fmt::Debug + 'static {
    /// Encrypts `text` for every device of `to` (and the sender's own companions) and routes it.
    fn send_text(&self, sim: &Sim, msg: SendText) -> Result<(), SeamError>;
    /// Sends `<receipt type=read>` for `ids` in `chat` to their senders.
    fn send_read(
        &self,
        sim: &Sim,
        phone: &str,
        chat: &ChatAddr,
        ids: &[String],
    ) -> Result<(), SeamError>;
    /// Notifies the members' devices that group `id` was created with them in it.
    fn group_created(&self, sim: &Sim, id: &str) -> Result<(), SeamError>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct UnwiredPhone;

impl PhoneActions for UnwiredPhone {
    fn send_text(&self, _: &Sim, _: SendText) -> Result<(), SeamError> {
        Err(SeamError::NotWired("sending a message"))
    }

    fn send_read(&self, _: &Sim, _: &str, _: &ChatAddr, _: &[String]) -> Result<(), SeamError> {
        Err(SeamError::NotWired("sending read receipts"))
    }

    fn group_created(&self, _: &Sim, _: &str) -> Result<(), SeamError> {
        Err(SeamError::NotWired("notifying group members"))
    }
}
