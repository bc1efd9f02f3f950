//! Bot kinds: one module per product behind [`BotKind`]. Adding a kind is one new module that
//! implements the trait, registered with [`crate::Engine::register`].

mod dify;
mod evoai;
mod evolution;
mod flowise;
mod n8n;
mod openai;
mod typebot;

pub use dify::DifyBot;
pub use evoai::EvoAiBot;
pub use evolution::EvolutionBot;
pub use flowise::FlowiseBot;
pub use n8n::N8nBot;
pub use openai::OpenAiBot;
pub use typebot::TypebotBot;

use serde::{Deserialize, Serialize};

use crate::BoxFuture;
use crate::config::{BotConfig, EffectiveSettings, InstanceContext};
use crate::session::Session;

/// One message a bot wants sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Reply {
    Text {
        text: String,
        /// Whether WhatsApp should render a link preview (EvolutionBot's `linkPreview`).
        link_preview: bool,
    },
    Media {
        /// `image`, `video`, `audio` or `document`.
        mediatype: String,
        url: String,
        caption: Option<String>,
        file_name: Option<String>,
    },
    List {
        title: String,
        description: String,
        button_text: String,
        footer: Option<String>,
        /// Sections of `(title, rows)`; each row is `(id, title, description)`.
        sections: Vec<ListSection>,
    },
    Buttons {
        title: String,
        description: String,
        footer: Option<String>,
        /// `(id, display text)`.
        buttons: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSection {
    pub title: String,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRow {
    pub row_id: String,
    pub title: String,
    pub description: Option<String>,
}

/// Everything an adapter may use for one call.
#[derive(Debug, Clone, Copy)]
pub struct BotCall<'a> {
    pub bot: &'a BotConfig,
    pub session: &'a Session,
    pub settings: &'a EffectiveSettings,
    pub instance: &'a InstanceContext,
    /// The joined input (debounced messages separated by `\n`).
    pub input: &'a str,
    pub push_name: Option<&'a str>,
    pub from_me: bool,
    /// The WhatsApp message id of the last message joined into `input`.
    pub key_id: &'a str,
    /// A media URL of the last message, when the caller has one (forwarded as `files`/`uploads`).
    pub media_url: Option<&'a str>,
    pub http: &'a reqwest::Client,
}

/// What a bot answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BotAnswer {
    /// Raw replies in order; the engine still applies `splitMessages`, markdown media links and
    /// typing delays to text replies.
    pub replies: Vec<Reply>,
    /// A new bot-side session id to remember (Dify's conversation id, …).
    pub session_id: Option<String>,
    /// New adapter-private state for the session.
    pub context: Option<serde_json::Value>,
    /// The bot ended the conversation (Typebot's flow without further input).
    pub finished: bool,
}

/// Why a call produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The bot's configuration is unusable (no URL, …): retrying cannot help.
    #[error("bot configuration: {0}")]
    Config(String),
    /// The bot server could not be reached or broke the connection.
    #[error("bot server unreachable: {0}")]
    Transport(String),
    /// The bot server answered with an error status.
    #[error("bot server answered HTTP {status}")]
    Status { status: u16 },
    /// The bot server answered something that is not what its API promises.
    #[error("bot server answered malformed data: {0}")]
    Malformed(String),
    /// The call did not finish within the engine's timeout.
    #[error("bot server did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

impl BotError {
    /// Whether another attempt might succeed (network trouble, 5xx, 429, timeouts).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout(_) => true,
            Self::Status { status } => *status >= 500 || *status == 429,
            Self::Config(_) | Self::Malformed(_) => false,
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        match e.status() {
            Some(status) => Self::Status {
                status: status.as_u16(),
            },
            None if e.is_decode() => Self::Malformed(e.to_string()),
            None => Self::Transport(e.without_url().to_string()),
        }
    }
}

/// A bot product. Implementations are stateless apart from configuration: everything about a
/// conversation is in the [`Session`] they are given and the [`BotAnswer`] they return.
pub trait BotKind: Send + Sync + std::fmt::Debug + 'static {
    /// The integration's name, as stored in sessions (`evolution`, `n8n`, `typebot`, …).
    fn name(&self) -> &'static str;

    /// Calls the bot once. The engine applies the timeout and retries around this.
    fn call<'a>(&'a self, call: BotCall<'a>) -> BoxFuture<'a, Result<BotAnswer, BotError>>;
}

/// Reads a kind's string parameter (`apiUrl`, `webhookUrl`, …) from the bot's `params`.
pub(crate) fn param<'a>(bot: &'a BotConfig, key: &str) -> Option<&'a str> {
    bot.params
        .get(key)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
}

/// POSTs `body` as JSON and returns the response parsed as JSON.
pub(crate) async fn post_json(
    request: reqwest::RequestBuilder,
    body: &serde_json::Value,
) -> Result<serde_json::Value, BotError> {
    let response = request
        .json(body)
        .send()
        .await
        .map_err(BotError::from_reqwest)?
        .error_for_status()
        .map_err(BotError::from_reqwest)?;
    let bytes = response.bytes().await.map_err(BotError::from_reqwest)?;
    serde_json::from_slice(&bytes).map_err(|e| BotError::Malformed(e.to_string()))
}
