//! Every Evolution route body (and the gateway's body extractor, which is `parse_json_body`):
//! raw bytes → Express-style JSON parse → each route's validator → DTO or error envelope. None
//! may panic on any input, and every error envelope must serialize (it is the HTTP answer).
//! Event names inside the body also go through the event-name parsers the webhook config uses,
//! and numbers (the raw input too) through `client_tolerance::chat_jid`, which sends use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use zapin_compat_evolution::client_tolerance::chat_jid;
use zapin_compat_evolution::envelope::{format_date_time, webhook_target};
use zapin_compat_evolution::events::{EventName, EventSubscription};
use zapin_compat_evolution::request::{self as req, parse_json_body};

fn check<T, E: serde::Serialize>(r: Result<T, E>) {
    if let Err(e) = r {
        assert!(
            serde_json::to_vec(&e).is_ok(),
            "error envelope must serialize"
        );
    }
}

fn events(body: &Value) {
    let lists = [
        body.get("events"),
        body.get("webhook").and_then(|w| w.get("events")),
    ];
    for list in lists.into_iter().flatten().filter_map(Value::as_array) {
        let names: Vec<String> = list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        for n in &names {
            if let Some(e) = EventName::from_key(n).or_else(|| EventName::from_dotted(n)) {
                let url = body.get("url").and_then(Value::as_str).unwrap_or("");
                std::hint::black_box(webhook_target(url, true, e));
            }
        }
        let sub = EventSubscription::from_request(true, Some(names));
        std::hint::black_box(sub.names());
    }
}

/// A chat JID always names a server.
fn jid_of(number: &str) {
    let jid = chat_jid(number);
    assert!(jid.contains('@'), "{number:?} -> {jid:?}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        jid_of(text);
    }
    let body = match parse_json_body(data) {
        Ok(v) => v,
        Err(e) => {
            assert!(serde_json::to_vec(&e).is_ok());
            return;
        }
    };
    check(req::validate_whatsapp_numbers(&body));
    check(req::validate_mark_message_as_read(&body));
    check(req::validate_find_messages(&body));
    check(req::validate_create_instance(&body));
    check(req::validate_set_presence(&body));
    check(req::validate_send_text(&body));
    if let Some(number) = body.get("number").and_then(Value::as_str) {
        jid_of(number);
    }
    check(req::validate_settings_set(&body));
    check(req::validate_webhook_set(&body));
    check(req::validate_create_group(&body));
    let query = body.get("groupJid").and_then(Value::as_str);
    if let Ok(group) = req::with_group_jid(&body, query) {
        check(req::validate_group_jid(&group));
        check(req::validate_group_text(&group, "subject"));
        check(req::validate_send_invite(&group));
        check(req::validate_update_participants(&group));
        check(req::validate_update_setting(&group));
        check(req::validate_toggle_ephemeral(&group));
    }
    check(req::validate_get_participants(&body));
    check(req::validate_invite_code(&body));
    check(req::validate_privacy_settings(&body));
    check(req::validate_block_status(&body));
    check(req::validate_profile_text(&body, "status"));
    check(req::validate_find_contacts(&body));
    check(req::validate_find_chats(&body));
    check(req::validate_optional_number(&body));
    check(req::validate_profile_name(&body));
    if let Ok(proxy) = req::validate_proxy_set(&body) {
        std::hint::black_box(proxy.port_number());
    }
    check(req::validate_transport_set(&body, "rabbitmq"));
    check(req::validate_transport_set(&body, "nats"));
    for product in &req::BOT_PRODUCTS {
        if let Ok(bot) = req::validate_bot(product, &body) {
            // What the create route stores reads back the same.
            let fields = bot.settings.clone().with_column_defaults();
            let back = req::BotSettingFields::from_json(&Value::Object(fields.to_json()));
            assert_eq!(back, fields);
            assert!(bot.params.keys().all(|k| !bot.secrets.contains_key(k)));
        }
        check(req::validate_bot_settings(product, &body));
    }
    check(req::validate_bot_status(&body));
    check(req::validate_bot_ignore_jid(&body));
    check(req::validate_openai_creds(&body));
    if let Ok(bot) = req::validate_bot(&req::OPENAI, &body) {
        std::hint::black_box(req::product_rule_error(&req::OPENAI, &bot));
    }
    std::hint::black_box(req::validate_connect_query(
        body.get("number").and_then(Value::as_str),
    ));
    events(&body);
    if let (Some(ms), Some(off)) = (
        body.get("t").and_then(Value::as_i64),
        body.get("offset").and_then(Value::as_i64),
    ) {
        std::hint::black_box(format_date_time(ms, off as i32));
    }
});
