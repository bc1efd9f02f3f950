//! What Evolution's own clients send, read the way Evolution reads it: the one place for every
//! variant a real client relies on.
//!
//! The clients whose request code was read: **Evolution Manager v2** (the build Evolution
//! 2.3.6 serves under `/manager`), the **n8n node `n8n-nodes-evolution-api` 1.0.4** and the
//! official **Python client `evolutionapi` 0.1.2**. What they send on the routes zapin serves,
//! and where it is handled:
//!
//! * a chat JID where a number is expected (Manager's chat, n8n's `remoteJid` field, Python's
//!   examples), with a device suffix or in whatsapp-web.js's `@c.us` form: [`chat_jid`];
//! * findMessages `where.key` filters that Evolution drops because they are falsy (Python sends
//!   `fromMe: false` for "received messages"; Evolution then returns all): [`key_filter_text`],
//!   [`key_filter_from_me`];
//! * spellings Evolution documents in two forms: create's nested `webhook{}` or flat
//!   `webhookUrl`/`webhookByEvents`/… ([`create_webhook`]), `mentionsEveryOne` or `everyOne`
//!   ([`mentions_every_one`]), and inside webhook/set's `webhook{}` the `webhookByEvents` /
//!   `webhookBase64` names n8n sends ([`webhook_by_events`], [`webhook_base64`]; Evolution
//!   ignores those two, zapin honours them);
//! * and what needs no code but is relied on, pinned by the tests below: a JSON `Content-Type`
//!   with no body at all (Python, on every GET/DELETE and on restart) is `{}`; unknown fields
//!   are ignored (Manager's v1-style `options` on sendText, n8n's proxy/chatwoot/rabbitmq
//!   fields on create); `where` keys Evolution does not read are not filters; `page`/`offset`
//!   default to 1/50; n8n's group, privacy and block bodies (numbers split from a comma list,
//!   create's empty default description, a JID as the number to block).

use serde_json::Value;

use crate::events::EventSubscription;
use crate::request::CreateWebhook;

/// The chat a `number` field names, as Evolution's `createJid` reads it: a JID (`…@s.whatsapp.net`,
/// `…@g.us`, `…@lid`, `…@broadcast`) is kept, minus a device suffix (`5511…:12@s.whatsapp.net`);
/// anything else is a phone number: `+`, spaces, parentheses and any `@…` (`@c.us`) go, a long
/// `xxx-yyy` id or 18+ digits is a group, otherwise the digits are a user.
///
/// Unlike `createJid`, a plain number keeps its digits: the Brazilian/Mexican mobile-digit
/// rewrite is left to the number lookup (`/chat/whatsappNumbers`), which tries both forms.
pub fn chat_jid(number: &str) -> String {
    let number = strip_device(number.trim());
    if ["@g.us", "@s.whatsapp.net", "@lid", "@broadcast"]
        .iter()
        .any(|server| number.contains(server))
    {
        return number;
    }
    let cleaned: String = number
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '+' | '(' | ')'))
        .collect();
    let user = cleaned.split(':').next().unwrap_or_default();
    let user = user.split('@').next().unwrap_or_default();
    if user.contains('-') && user.len() >= 24 {
        let id: String = user
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        return format!("{id}@g.us");
    }
    let digits: String = user.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 18 {
        return format!("{digits}@g.us");
    }
    format!("{digits}@s.whatsapp.net")
}

/// `createJid`'s `replace(/:\d+/, '')`: the first `:` followed by digits loses them.
fn strip_device(s: &str) -> String {
    if let Some(colon) = s.find(':') {
        let rest = &s[colon + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            return format!("{}{}", &s[..colon], &rest[digits..]);
        }
    }
    s.to_owned()
}

/// A findMessages `where.key` text filter (`id`, `remoteJid`, `participant`, `remoteJidAlt`).
/// Evolution applies one only when it is truthy, so `""` filters nothing.
pub fn key_filter_text(key: &Value, field: &str) -> Option<String> {
    key.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `where.key.fromMe`: Evolution applies it only when truthy, so `false` selects received *and*
/// sent messages. `Some(true)` or nothing.
pub fn key_filter_from_me(key: &Value) -> Option<bool> {
    (key.get("fromMe").and_then(Value::as_bool) == Some(true)).then_some(true)
}

/// `mentionsEveryOne`, or the schema's `everyOne` (contract §11 #20).
pub fn mentions_every_one(body: &Value) -> Option<bool> {
    flag(body, "mentionsEveryOne").or_else(|| flag(body, "everyOne"))
}

/// webhook/set's `webhook.byEvents`, or `webhook.webhookByEvents` as n8n sends it.
pub fn webhook_by_events(webhook: &Value) -> Option<bool> {
    flag(webhook, "byEvents").or_else(|| flag(webhook, "webhookByEvents"))
}

/// webhook/set's `webhook.base64`, or `webhook.webhookBase64` as n8n sends it.
pub fn webhook_base64(webhook: &Value) -> Option<bool> {
    flag(webhook, "base64").or_else(|| flag(webhook, "webhookBase64"))
}

/// Create's webhook: the nested `webhook{url, byEvents, base64, headers, events}` Evolution's
/// code reads (n8n's create sends it), or the flat `webhookUrl`/`webhookByEvents`/
/// `webhookBase64`/`webhookEvents` its schema documents (§11 #20). Without a URL there is none.
pub fn create_webhook(body: &Value) -> Option<CreateWebhook> {
    let text = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
    let strings = |o: &Value, k: &str| -> Option<Vec<String>> {
        o.get(k)?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    if let Some(w) = body.get("webhook").filter(|w| w.is_object()) {
        return Some(CreateWebhook {
            url: text(w, "url")?,
            by_events: flag(w, "byEvents"),
            base64: flag(w, "base64"),
            headers: w.get("headers").and_then(Value::as_object).cloned(),
            events: EventSubscription::from_request(true, strings(w, "events")),
        });
    }
    Some(CreateWebhook {
        url: text(body, "webhookUrl")?,
        by_events: flag(body, "webhookByEvents"),
        base64: flag(body, "webhookBase64"),
        headers: None,
        events: EventSubscription::from_request(true, strings(body, "webhookEvents")),
    })
}

fn flag(o: &Value, key: &str) -> Option<bool> {
    o.get(key).and_then(Value::as_bool)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::request::{
        parse_json_body, validate_block_status, validate_create_group, validate_create_instance,
        validate_find_messages, validate_privacy_settings, validate_send_invite,
        validate_send_text, validate_settings_set, validate_toggle_ephemeral,
        validate_update_participants, validate_webhook_set,
    };

    #[test]
    fn manager_chat_sends_the_chat_jid_as_number() {
        // Evolution Manager's chat posts `{number: remoteJid, text}`.
        assert_eq!(
            chat_jid("5511987654321@s.whatsapp.net"),
            "5511987654321@s.whatsapp.net"
        );
        assert_eq!(
            chat_jid("120363025246125888@g.us"),
            "120363025246125888@g.us"
        );
        assert_eq!(chat_jid("123456789012345@lid"), "123456789012345@lid");
        assert_eq!(chat_jid("status@broadcast"), "status@broadcast");
    }

    #[test]
    fn n8n_remote_jid_field_takes_numbers_or_jids_in_any_form() {
        // n8n's sendText/sendPresence put the `remoteJid` parameter in `number`: users paste a
        // number, a JID, a device JID from an event, or a whatsapp-web.js `@c.us` id.
        assert_eq!(chat_jid("5511987654321"), "5511987654321@s.whatsapp.net");
        assert_eq!(
            chat_jid("+55 (11) 98765-4321"),
            "5511987654321@s.whatsapp.net"
        );
        assert_eq!(
            chat_jid("5511987654321:12@s.whatsapp.net"),
            "5511987654321@s.whatsapp.net"
        );
        assert_eq!(
            chat_jid("5511987654321@c.us"),
            "5511987654321@s.whatsapp.net"
        );
        assert_eq!(
            chat_jid(" 5511987654321@s.whatsapp.net "),
            "5511987654321@s.whatsapp.net"
        );
        // Long ids are groups, as createJid reads them.
        assert_eq!(chat_jid("120363025246125888"), "120363025246125888@g.us");
        assert_eq!(
            chat_jid("5511987654321-1612345678901"),
            "5511987654321-1612345678901@g.us"
        );
        // n8n's mentions arrive as `<digits>@s.whatsapp.net`.
        assert_eq!(
            chat_jid("5511912345678@s.whatsapp.net"),
            "5511912345678@s.whatsapp.net"
        );
    }

    #[test]
    fn python_client_received_messages_filter_is_dropped_as_evolution_drops_it() {
        // evolutionapi's `chat.get_messages(from_me=False)` sends `where.key.fromMe: false`;
        // Evolution applies `fromMe` only when truthy and returns every message.
        let req = validate_find_messages(&json!({
            "where": {"key": {"remoteJid": "5511987654321@s.whatsapp.net", "fromMe": false}},
            "page": 1,
            "offset": 50
        }))
        .unwrap();
        assert_eq!(req.filter.key.from_me, None);
        assert_eq!(
            req.filter.key.remote_jid.as_deref(),
            Some("5511987654321@s.whatsapp.net")
        );
        let req = validate_find_messages(&json!({"where": {"key": {"fromMe": true}}})).unwrap();
        assert_eq!(req.filter.key.from_me, Some(true));
        // Empty texts filter nothing either.
        let req = validate_find_messages(&json!({
            "where": {"key": {"id": "", "remoteJid": "", "participant": ""}}
        }))
        .unwrap();
        assert_eq!(req.filter.key, Default::default());
    }

    #[test]
    fn python_client_single_timestamp_bound_is_ignored() {
        // evolutionapi sends `messageTimestamp.gte` alone when only a start is given; Evolution
        // applies the range only with both bounds.
        let req = validate_find_messages(&json!({
            "where": {"key": {"remoteJid": "x@s.whatsapp.net"},
                      "messageTimestamp": {"gte": "2025-01-16T00:00:00Z"}}
        }))
        .unwrap();
        assert_eq!(req.filter.timestamp_bounds(), None);
    }

    #[test]
    fn where_keys_evolution_does_not_read_are_not_filters() {
        // findChats/findContacts spellings (`where.remoteJid`, `where.pushName`) sent to
        // findMessages, and Evolution 1.x's `key.participants`: Evolution ignores them.
        let req = validate_find_messages(&json!({
            "where": {"remoteJid": "a@s.whatsapp.net", "pushName": "Ana",
                      "key": {"participants": "b@s.whatsapp.net"}, "status": "READ"}
        }))
        .unwrap();
        assert_eq!(req.filter, Default::default());
    }

    #[test]
    fn n8n_find_messages_pages() {
        // n8n's findMessages: `{where: {key: {remoteJid}}, page, offset}` (defaults 1 and 10).
        let req = validate_find_messages(&json!({
            "where": {"key": {"remoteJid": "5511987654321@s.whatsapp.net"}},
            "page": 2,
            "offset": 10
        }))
        .unwrap();
        assert_eq!((req.page, req.offset), (2, 10));
        // The Manager sends neither: Evolution's 1 and 50.
        let req = validate_find_messages(&json!({"where": {"key": {"remoteJid": "x"}}})).unwrap();
        assert_eq!((req.page, req.offset), (1, 50));
    }

    #[test]
    fn python_client_sends_json_content_type_without_a_body() {
        // evolutionapi sets `Content-Type: application/json` on every request, GET and DELETE
        // included, and posts restart with no body: Express reads that as `{}`.
        assert_eq!(parse_json_body(b"").unwrap(), json!({}));
    }

    #[test]
    fn manager_send_text_with_v1_options_is_accepted() {
        // Evolution Manager types sendText with a v1-style `options` object; Evolution v2's
        // schema ignores unknown fields.
        let req = validate_send_text(&json!({
            "number": "5511987654321@s.whatsapp.net",
            "text": "hi",
            "options": {"delay": 1200, "presence": "composing", "linkPreview": false}
        }))
        .unwrap();
        assert_eq!(req.delay, None);
        assert_eq!(req.link_preview, None);
    }

    #[test]
    fn n8n_send_text_mentions_and_quote() {
        // n8n: `mentionsEveryOne: true`, or `mentioned` as JIDs, and `quoted: {key: {id}}`.
        let req = validate_send_text(&json!({
            "number": "120363025246125888@g.us",
            "text": "hi",
            "mentioned": ["5511912345678@s.whatsapp.net"],
            "quoted": {"key": {"id": "3EB0ABC"}}
        }))
        .unwrap();
        assert_eq!(req.mentioned, ["5511912345678@s.whatsapp.net"]);
        assert_eq!(req.quoted.unwrap().key.id, "3EB0ABC");
        assert_eq!(
            mentions_every_one(&json!({"mentionsEveryOne": true})),
            Some(true)
        );
        assert_eq!(mentions_every_one(&json!({"everyOne": true})), Some(true));
    }

    #[test]
    fn n8n_create_instance_body() {
        // n8n's "create instance": nested webhook, settings and proxy fields flat, chatwoot and
        // rabbitmq extras. The extras are not zapin's and are ignored, as unknown fields are.
        let req = validate_create_instance(&json!({
            "instanceName": "n8n",
            "integration": "WHATSAPP-BAILEYS",
            "token": "T",
            "number": "5511987654321",
            "rejectCall": true,
            "msgCall": "",
            "proxyHost": "", "proxyPort": "1234", "proxyProtocol": "",
            "proxyUsername": "", "proxyPassword": "",
            "webhook": {"url": "https://hooks.test/n8n", "byEvents": false, "base64": true,
                        "events": ["MESSAGES_UPSERT"]},
            "rabbitmq": {"enabled": false, "events": []},
            "chatwootAccountId": "", "chatwootToken": "", "chatwootUrl": "",
            "chatwootSignMsg": false
        }))
        .unwrap();
        let webhook = req.webhook.unwrap();
        assert_eq!(webhook.url, "https://hooks.test/n8n");
        assert_eq!(webhook.base64, Some(true));
        assert!(req.settings.reject_call);
    }

    #[test]
    fn documented_flat_webhook_spelling_on_create() {
        // Evolution's schema (and its Postman collection) spell create's webhook flat.
        let w = create_webhook(&json!({
            "webhookUrl": "https://hooks.test/flat",
            "webhookByEvents": true,
            "webhookEvents": ["QRCODE_UPDATED"]
        }))
        .unwrap();
        assert_eq!(
            (w.url.as_str(), w.by_events, w.base64),
            ("https://hooks.test/flat", Some(true), None)
        );
        assert!(create_webhook(&json!({"webhook": {"events": []}})).is_none());
    }

    #[test]
    fn n8n_set_webhook_spellings() {
        // n8n's "set webhook": `{webhook: {enabled, url, webhookByEvents, webhookBase64, events}}`.
        let req = validate_webhook_set(&json!({
            "webhook": {"enabled": true, "url": "https://hooks.test/n8n",
                        "webhookByEvents": true, "webhookBase64": true,
                        "events": ["MESSAGES_UPSERT"]}
        }))
        .unwrap();
        assert!(req.by_events && req.base64);
        // The Manager and Python send the documented names.
        let req = validate_webhook_set(&json!({
            "webhook": {"enabled": true, "url": "https://hooks.test/m", "byEvents": false,
                        "base64": false, "events": []}
        }))
        .unwrap();
        assert!(!req.by_events && !req.base64);
    }

    #[test]
    fn n8n_and_manager_settings_without_wavoip_token() {
        // Neither sends `wavoipToken`; the Manager also sends back `id`/`createdAt`/… it read.
        let req = validate_settings_set(&json!({
            "rejectCall": false, "msgCall": "", "groupsIgnore": true, "alwaysOnline": false,
            "readMessages": false, "syncFullHistory": false, "readStatus": false,
            "id": "x", "createdAt": "2025-01-01T00:00:00.000Z", "instanceId": "y"
        }))
        .unwrap();
        assert!(req.groups_ignore);
    }

    #[test]
    fn n8n_group_profile_and_block_bodies() {
        // n8n's group operations split a comma list into trimmed numbers and send the node's
        // defaults: create's description is `""` unless filled in. Evolution's `isNotEmpty`
        // never fires beside other keys, so that is accepted and no description is set.
        let group = validate_create_group(&json!({
            "subject": "n8n", "description": "",
            "participants": ["5511987654321", "5511912345678"]
        }))
        .unwrap();
        assert_eq!(group.description, None);
        assert_eq!(group.participants, ["5511987654321", "5511912345678"]);
        let invite = validate_send_invite(&json!({
            "groupJid": "120363025246125888@g.us",
            "description": "Segue o link do grupo",
            "numbers": ["5511987654321"]
        }))
        .unwrap();
        assert_eq!(invite.numbers, ["5511987654321"]);
        let update = validate_update_participants(&json!({
            "groupJid": "120363025246125888@g.us",
            "action": "remove",
            "participants": ["5511987654321"]
        }))
        .unwrap();
        assert_eq!(update.participants, ["5511987654321"]);
        // The ephemeral options are numbers.
        let (_, expiration) = validate_toggle_ephemeral(&json!({
            "groupJid": "120363025246125888@g.us", "expiration": 604800
        }))
        .unwrap();
        assert_eq!(expiration, 604800);
        // Privacy: the six categories flat, as the contract spells them.
        let privacy = validate_privacy_settings(&json!({
            "readreceipts": "all", "profile": "all", "status": "contacts",
            "online": "all", "last": "contacts", "groupadd": "all"
        }))
        .unwrap();
        assert_eq!(privacy.len(), 6);
        // Block: the node's `remoteJid` field goes in `number`, a number or a JID.
        let (number, block) = validate_block_status(&json!({
            "number": "5511987654321@s.whatsapp.net", "status": "block"
        }))
        .unwrap();
        assert!(block);
        assert_eq!(chat_jid(&number), "5511987654321@s.whatsapp.net");
    }
}
