//! zapin-bots: the chatbot engine behind Evolution's bot routes.
//!
//! The [`Engine`] receives every inbound message of an instance ([`Inbound`]), decides with
//! Evolution's rules whether a bot answers it (sessions, triggers, settings, debounce, fallback),
//! calls the bot through its [`BotKind`] adapter off the caller's task, and hands the reply to
//! the caller as a [`ReplyPlan`] through [`Outbound`]. It owns no HTTP routes and does no
//! WhatsApp I/O: the gateway wires it in through [`BotDirectory`] (bot configuration),
//! [`SessionStore`] (sessions) and [`Outbound`] (sending and events). See the crate README.

mod clock;
mod config;
mod engine;
pub mod kind;
mod outbound;
mod reply;
mod session;
pub mod store;
mod trigger;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    BotConfig, BotDirectory, BotSettings, EffectiveSettings, InstanceBots, InstanceContext,
    KindSetup, SettingsRow, StaticDirectory, Trigger, TriggerOperator, TriggerType,
};
pub use engine::{Engine, EngineLimits, Inbound};
pub use kind::{BotAnswer, BotCall, BotError, BotKind, Reply};
pub use outbound::{BotEvent, Outbound, SendError};
pub use reply::{PlannedSend, ReplyPlan};
pub use session::{Session, SessionStatus};
pub use store::{SessionStore, StoreError};
pub use trigger::{TriggerError, advanced_match, find_bot_by_trigger};

/// A boxed, sendable future: what the object-safe traits of this crate return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
