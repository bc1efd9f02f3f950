//! NATS, as Evolution publishes to it (contract §5.5): subject `<instance>.<event>` per
//! instance; globally (`NATS_GLOBAL_ENABLED` + `NATS_EVENTS_<KEY>`) `<NATS_PREFIX_KEY>.<event>`,
//! or `<event>` without a prefix; `<event>` is the dotted name. The message is the envelope
//! without `destination`, with the header `Nats-Msg-Id` set to the event id (the same for every
//! target of one event and across retries: consumers deduplicate on it, and a JetStream stream
//! does so by itself within its duplicate window).

mod publisher;

pub use publisher::NatsTransport;

use std::collections::BTreeSet;

use crate::outbox::NewDelivery;
use crate::transports::{env_events, env_flag};

/// The outbox `transport` of NATS rows.
pub const TRANSPORT: &str = "nats";
pub const KIND_INSTANCE: &str = "nats";
pub const KIND_GLOBAL: &str = "nats:global";

/// NATS's environment: `NATS_*`.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsRouting {
    /// `NATS_URI`. Secret (it may carry credentials): never logged.
    pub uri: String,
    /// `NATS_GLOBAL_ENABLED`.
    pub global: bool,
    /// `NATS_PREFIX_KEY`.
    pub prefix_key: Option<String>,
    /// `NATS_EVENTS_<KEY>=true`.
    pub global_events: BTreeSet<String>,
    /// `ZAPIN_NATS_JETSTREAM=true`: publish through JetStream and wait for its ack.
    pub jetstream: bool,
}

impl std::fmt::Debug for NatsRouting {
    /// Without the URI, which carries credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsRouting")
            .field("global", &self.global)
            .field("prefix_key", &self.prefix_key)
            .field("global_events", &self.global_events)
            .field("jetstream", &self.jetstream)
            .finish_non_exhaustive()
    }
}

impl NatsRouting {
    /// Reads `NATS_*` through `get`; `None` unless `NATS_ENABLED=true`.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        if !env_flag(get, "NATS_ENABLED") {
            return None;
        }
        Some(Self {
            uri: get("NATS_URI").unwrap_or_default(),
            global: env_flag(get, "NATS_GLOBAL_ENABLED"),
            prefix_key: get("NATS_PREFIX_KEY").filter(|s| !s.is_empty()),
            global_events: env_events("NATS", get),
            jetstream: env_flag(get, "ZAPIN_NATS_JETSTREAM"),
        })
    }

    pub(crate) fn instance_row(&self, instance: &str, dotted: &str, body: String) -> NewDelivery {
        row(KIND_INSTANCE, format!("{instance}.{dotted}"), body)
    }

    pub(crate) fn global_row(&self, dotted: &str, body: String) -> NewDelivery {
        let subject = match &self.prefix_key {
            Some(prefix) => format!("{prefix}.{dotted}"),
            None => dotted.to_owned(),
        };
        row(KIND_GLOBAL, subject, body)
    }
}

fn row(kind: &str, subject: String, body: String) -> NewDelivery {
    NewDelivery {
        transport: TRANSPORT,
        target_kind: kind.to_owned(),
        url: subject,
        headers: "{}".to_owned(),
        secret: None,
        body,
    }
}
