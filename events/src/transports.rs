//! Which transports are enabled in the environment and how each routes an event: the part of
//! the fan-out that decides the rows; delivering them is each transport module's job.

use std::collections::BTreeSet;

use crate::amqp::AmqpRouting;
use crate::nats::NatsRouting;
use crate::outbox::{BrokerEnvelope, NewDelivery, globally_selected, subscribed};
use crate::settings::TransportSettings;
use crate::webhook::Routing;

/// Every transport's environment settings. `None`: the transport is disabled (`*_ENABLED` is
/// not `true`), so nothing is enqueued for it and its routes answer an empty body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transports {
    /// The global webhook (instance webhooks are always available).
    pub webhook: Routing,
    /// `RABBITMQ_ENABLED=true`.
    pub rabbitmq: Option<AmqpRouting>,
    /// `NATS_ENABLED=true`.
    pub nats: Option<NatsRouting>,
}

impl Transports {
    /// Only the webhooks, with this global routing.
    pub fn webhooks(webhook: Routing) -> Self {
        Self {
            webhook,
            ..Self::default()
        }
    }

    pub(crate) fn any_broker(&self) -> bool {
        self.rabbitmq.is_some() || self.nats.is_some()
    }

    /// Appends the broker rows of one event: per instance (the instance's row for the
    /// transport is enabled and lists the event) and global (`*_GLOBAL_ENABLED` and
    /// `*_EVENTS_<KEY>`).
    pub(crate) fn broker_rows(
        &self,
        envelope: &BrokerEnvelope<'_>,
        event: &str,
        stored: &[TransportSettings],
        rows: &mut Vec<NewDelivery>,
    ) {
        let Some(body) = envelope.to_body() else {
            return;
        };
        let wants = |transport: &str| {
            stored
                .iter()
                .any(|s| s.transport == transport && s.enabled && subscribed(&s.events, event))
        };
        let dotted = dotted(event);
        if let Some(amqp) = &self.rabbitmq {
            if wants(crate::amqp::TRANSPORT) {
                rows.push(amqp.instance_row(&envelope.instance, &dotted, body.clone()));
            }
            if amqp.global && globally_selected(&amqp.global_events, event) {
                rows.push(amqp.global_row(&dotted, body.clone()));
            }
        }
        if let Some(nats) = &self.nats {
            if wants(crate::nats::TRANSPORT) {
                rows.push(nats.instance_row(&envelope.instance, &dotted, body.clone()));
            }
            if nats.global && globally_selected(&nats.global_events, event) {
                rows.push(nats.global_row(&dotted, body.clone()));
            }
        }
    }
}

/// The dotted event string of a config key (`MESSAGES_UPSERT` → `messages.upsert`), the
/// routing key and subject suffix the brokers use.
pub fn dotted(event: &str) -> String {
    zapin_compat_evolution::EventName::from_key(event).map_or_else(
        || event.to_ascii_lowercase().replace('_', "."),
        |e| e.as_str().to_owned(),
    )
}

/// The config keys of an environment allow-list: `<PREFIX>_EVENTS_<KEY>=true`, read with `get`.
/// `*_EVENTS_GROUPS_UPDATE` is read into `GROUP_UPDATE` as Evolution does.
pub fn env_events(prefix: &str, get: &dyn Fn(&str) -> Option<String>) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for key in GLOBAL_EVENT_KEYS {
        if get(&format!("{prefix}_EVENTS_{key}")).is_some_and(|v| v.trim() == "true") {
            keys.insert(if *key == "GROUPS_UPDATE" {
                "GROUP_UPDATE".to_owned()
            } else {
                (*key).to_owned()
            });
        }
    }
    keys
}

/// The keys Evolution reads from `RABBITMQ_EVENTS_*` / `NATS_EVENTS_*` (its env.config).
pub const GLOBAL_EVENT_KEYS: &[&str] = &[
    "APPLICATION_STARTUP",
    "INSTANCE_CREATE",
    "INSTANCE_DELETE",
    "QRCODE_UPDATED",
    "MESSAGES_SET",
    "MESSAGES_UPSERT",
    "MESSAGES_EDITED",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
    "SEND_MESSAGE_UPDATE",
    "CONTACTS_SET",
    "CONTACTS_UPDATE",
    "CONTACTS_UPSERT",
    "PRESENCE_UPDATE",
    "CHATS_SET",
    "CHATS_UPDATE",
    "CHATS_UPSERT",
    "CHATS_DELETE",
    "CONNECTION_UPDATE",
    "LABELS_EDIT",
    "LABELS_ASSOCIATION",
    "GROUPS_UPSERT",
    "GROUPS_UPDATE",
    "GROUP_PARTICIPANTS_UPDATE",
    "CALL",
    "TYPEBOT_START",
    "TYPEBOT_CHANGE_STATUS",
];

/// `true` when the variable reads `true` (Evolution compares with `=== 'true'`).
pub fn env_flag(get: &dyn Fn(&str) -> Option<String>, name: &str) -> bool {
    get(name).is_some_and(|v| v.trim() == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names() {
        assert_eq!(dotted("MESSAGES_UPSERT"), "messages.upsert");
        assert_eq!(
            dotted("GROUP_PARTICIPANTS_UPDATE"),
            "group-participants.update"
        );
        assert_eq!(dotted("TYPEBOT_CHANGE_STATUS"), "typebot.change-status");
        assert_eq!(dotted("GROUP_UPDATE"), "groups.update");
    }

    #[test]
    fn env_allow_list() {
        let get = |k: &str| match k {
            "RABBITMQ_EVENTS_MESSAGES_UPSERT" => Some("true".to_owned()),
            "RABBITMQ_EVENTS_GROUPS_UPDATE" => Some("true".to_owned()),
            "RABBITMQ_EVENTS_CALL" => Some("1".to_owned()),
            _ => None,
        };
        let keys = env_events("RABBITMQ", &get);
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            vec!["GROUP_UPDATE".to_owned(), "MESSAGES_UPSERT".to_owned()]
        );
    }
}
