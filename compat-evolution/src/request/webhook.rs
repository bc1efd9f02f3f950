//! `POST /webhook/set/{instance}`: body `{"webhook": {enabled, url, headers, byEvents, base64, events}}`.

use serde_json::{Map, Value};

use super::instance::webhook_object_schema;
use super::{get_bool, get_str, get_strings, run_schema};
use crate::client_tolerance;
use crate::error::ErrorEnvelope;
use crate::events::EventSubscription;
use crate::schema::Rules;

/// A validated webhook config.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSet {
    pub enabled: bool,
    /// Not validated as a URL (Evolution only checks `^https?://` at delivery time).
    pub url: String,
    pub headers: Option<Map<String, Value>>,
    pub by_events: bool,
    pub base64: bool,
    /// After the §5.1 rules: `[]` when disabled, all 31 names when enabled with none listed.
    pub events: EventSubscription,
}

/// Validates a webhook/set body. The wrapper object is mandatory (§11 #10): a flat body reads
/// `instance requires property "webhook"`. Unknown event names read
/// `webhook.events[i] is not one of enum values: APPLICATION_STARTUP,…` (jsonschema enum text).
pub fn validate_webhook_set(body: &Value) -> Result<WebhookSet, ErrorEnvelope> {
    run_schema(body, |c| {
        c.object("webhook", Rules::NONE, |w| {
            webhook_object_schema(w);
            w.required(&["enabled", "url"]);
            w.not_empty(&["enabled", "url"]);
        });
        c.required(&["webhook"]);
    })?;
    let empty = Value::Null;
    let w = body.get("webhook").unwrap_or(&empty);
    let enabled = get_bool(w, "enabled").unwrap_or(false);
    Ok(WebhookSet {
        enabled,
        url: get_str(w, "url").unwrap_or_default(),
        headers: w.get("headers").and_then(Value::as_object).cloned(),
        by_events: client_tolerance::webhook_by_events(w).unwrap_or(false),
        base64: client_tolerance::webhook_base64(w).unwrap_or(false),
        events: EventSubscription::from_request(enabled, get_strings(w, "events")),
    })
}
