//! `POST /{websocket,rabbitmq,nats,sqs,kafka}/set/{instance}`: body `{"<name>": {enabled, events}}`
//! (Evolution's `eventSchema`; contract rows 83–92).

use serde_json::Value;

use super::{get_bool, get_strings, run_schema};
use crate::error::ErrorEnvelope;
use crate::events::EventSubscription;
use crate::events::SUBSCRIBABLE;
use crate::schema::{Rules, Ty};

/// A validated transport config.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportSet {
    pub enabled: bool,
    /// After the §5.1 rules: `[]` when disabled, all names when enabled with none listed (a
    /// missing `events` reads as none listed, where Evolution answers 500; §11 #10).
    pub events: EventSubscription,
}

/// Validates a `/<name>/set` body. `enabled` is required; `events` entries must be subscribable
/// names. The wrapper object is mandatory (a flat body reads `instance requires property
/// "<name>"`), where Evolution fails with a 500.
pub fn validate_transport_set(body: &Value, name: &str) -> Result<TransportSet, ErrorEnvelope> {
    run_schema(body, |c| {
        c.object(name, Rules::NONE, |t| {
            t.prop("enabled", Ty::Boolean, Rules::NONE);
            t.string_array(
                "events",
                Rules {
                    min_items: Some(0),
                    ..Rules::NONE
                },
                Rules {
                    enum_values: Some(&SUBSCRIBABLE),
                    ..Rules::NONE
                },
            );
            t.required(&["enabled"]);
        });
        c.required(&[name]);
    })?;
    let empty = Value::Null;
    let t = body.get(name).unwrap_or(&empty);
    let enabled = get_bool(t, "enabled").unwrap_or(false);
    Ok(TransportSet {
        enabled,
        events: EventSubscription::from_request(enabled, get_strings(t, "events")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules() {
        let ok = validate_transport_set(
            &json!({"rabbitmq": {"enabled": true, "events": ["MESSAGES_UPSERT"]}}),
            "rabbitmq",
        )
        .unwrap();
        assert!(ok.enabled);
        assert_eq!(ok.events.names(), ["MESSAGES_UPSERT".to_owned()]);
        let all = validate_transport_set(&json!({"nats": {"enabled": true}}), "nats").unwrap();
        assert!(all.events.names().len() > 20);
        let off = validate_transport_set(
            &json!({"rabbitmq": {"enabled": false, "events": ["MESSAGES_UPSERT"]}}),
            "rabbitmq",
        )
        .unwrap();
        assert!(off.events.names().is_empty());
        assert!(validate_transport_set(&json!({"enabled": true}), "rabbitmq").is_err());
        assert!(validate_transport_set(&json!({"rabbitmq": {}}), "rabbitmq").is_err());
        assert!(
            validate_transport_set(
                &json!({"rabbitmq": {"enabled": true, "events": ["NOPE"]}}),
                "rabbitmq"
            )
            .is_err()
        );
    }
}
