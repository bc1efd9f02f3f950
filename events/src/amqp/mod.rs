//! RabbitMQ (AMQP 0-9-1), as Evolution publishes to it (contract §5.5):
//!
//! * **per instance**: a durable topic exchange named after the instance; a durable quorum
//!   queue `<instance>.<event>` bound to it with the routing key `<event>`;
//! * **global** (`RABBITMQ_GLOBAL_ENABLED` + `RABBITMQ_EVENTS_<KEY>`): the exchange
//!   `RABBITMQ_EXCHANGE_NAME` (default `evolution_exchange`), the queue `<RABBITMQ_PREFIX_KEY>.<event>`
//!   (or `<event>` without a prefix) bound with the routing key `<event>`;
//!
//! where `<event>` is the dotted name (`messages.upsert`). The message is the envelope without
//! `destination`. zapin waits for the broker's publisher confirm before a row counts as
//! delivered, and sets the AMQP `message_id` to the event id (the same in every transport and
//! across retries), so consumers can deduplicate: delivery is at least once, in order per
//! instance and target.

mod publisher;

pub use publisher::{AmqpError, AmqpTransport};

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::outbox::NewDelivery;
use crate::transports::{env_events, env_flag};

/// The outbox `transport` of RabbitMQ rows.
pub const TRANSPORT: &str = "rabbitmq";
/// Target kinds: the instance's exchange, or the global one.
pub const KIND_INSTANCE: &str = "rabbitmq";
pub const KIND_GLOBAL: &str = "rabbitmq:global";

/// RabbitMQ's environment: `RABBITMQ_*`.
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpRouting {
    /// `RABBITMQ_URI`. Secret (it carries the password): never logged.
    pub uri: String,
    /// `RABBITMQ_EXCHANGE_NAME` (default `evolution_exchange`).
    pub exchange: String,
    /// `RABBITMQ_GLOBAL_ENABLED`.
    pub global: bool,
    /// `RABBITMQ_PREFIX_KEY`: the global queues' prefix.
    pub prefix_key: Option<String>,
    /// `RABBITMQ_EVENTS_<KEY>=true`.
    pub global_events: BTreeSet<String>,
    /// `RABBITMQ_FRAME_MAX` (default 8192).
    pub frame_max: u32,
}

impl std::fmt::Debug for AmqpRouting {
    /// Without the URI, which carries credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpRouting")
            .field("exchange", &self.exchange)
            .field("global", &self.global)
            .field("prefix_key", &self.prefix_key)
            .field("global_events", &self.global_events)
            .field("frame_max", &self.frame_max)
            .finish_non_exhaustive()
    }
}

impl AmqpRouting {
    /// Reads `RABBITMQ_*` through `get`; `None` unless `RABBITMQ_ENABLED=true`.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        if !env_flag(get, "RABBITMQ_ENABLED") {
            return None;
        }
        Some(Self {
            uri: get("RABBITMQ_URI").unwrap_or_default(),
            exchange: get("RABBITMQ_EXCHANGE_NAME")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "evolution_exchange".to_owned()),
            global: env_flag(get, "RABBITMQ_GLOBAL_ENABLED"),
            prefix_key: get("RABBITMQ_PREFIX_KEY").filter(|s| !s.is_empty()),
            global_events: env_events("RABBITMQ", get),
            frame_max: get("RABBITMQ_FRAME_MAX")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(8192),
        })
    }

    pub(crate) fn instance_row(&self, instance: &str, dotted: &str, body: String) -> NewDelivery {
        route_row(
            KIND_INSTANCE,
            instance,
            &format!("{instance}.{dotted}"),
            dotted,
            body,
        )
    }

    pub(crate) fn global_row(&self, dotted: &str, body: String) -> NewDelivery {
        let queue = match &self.prefix_key {
            Some(prefix) => format!("{prefix}.{dotted}"),
            None => dotted.to_owned(),
        };
        route_row(KIND_GLOBAL, &self.exchange, &queue, dotted, body)
    }
}

/// Where one row goes, stored in the row's `headers` column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmqpRoute {
    pub queue: String,
    pub routing_key: String,
}

fn route_row(kind: &str, exchange: &str, queue: &str, key: &str, body: String) -> NewDelivery {
    let route = AmqpRoute {
        queue: queue.to_owned(),
        routing_key: key.to_owned(),
    };
    NewDelivery {
        transport: TRANSPORT,
        target_kind: kind.to_owned(),
        url: exchange.to_owned(),
        headers: serde_json::to_string(&route).unwrap_or_else(|_| "{}".to_owned()),
        secret: None,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evolution_names() {
        let env = |k: &str| match k {
            "RABBITMQ_ENABLED" => Some("true".to_owned()),
            "RABBITMQ_GLOBAL_ENABLED" => Some("true".to_owned()),
            "RABBITMQ_PREFIX_KEY" => Some("evo".to_owned()),
            _ => None,
        };
        let r = AmqpRouting::from_env(&env).unwrap();
        assert_eq!(r.exchange, "evolution_exchange");
        let row = r.instance_row("shop", "messages.upsert", "{}".into());
        assert_eq!(row.url, "shop");
        let route: AmqpRoute = serde_json::from_str(&row.headers).unwrap();
        assert_eq!(route.queue, "shop.messages.upsert");
        assert_eq!(route.routing_key, "messages.upsert");
        let row = r.global_row("messages.upsert", "{}".into());
        assert_eq!(row.url, "evolution_exchange");
        assert_eq!(row.target_kind, KIND_GLOBAL);
        let route: AmqpRoute = serde_json::from_str(&row.headers).unwrap();
        assert_eq!(route.queue, "evo.messages.upsert");
        assert!(AmqpRouting::from_env(&|_| None).is_none());
    }
}
