//! Request validation: good bodies parse; bad ones give Evolution's exact status, shape and text.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use serde_json::{Value, json};
use zapin_compat_evolution::ErrorEnvelope;
use zapin_compat_evolution::events::SUBSCRIBABLE;
use zapin_compat_evolution::request::*;

fn body(text: &str) -> Value {
    parse_json_body(text.as_bytes()).unwrap()
}

/// The full error body as a value.
fn err_json(e: ErrorEnvelope) -> Value {
    serde_json::to_value(e).unwrap()
}

/// `[[...]]`: a dataValidate failure.
fn nested(messages: &[&str]) -> Value {
    json!({"status": 400, "error": "Bad Request", "response": {"message": [messages]}})
}

/// Runs a table of (body, expected error body) through one validator.
fn check_errors<T: std::fmt::Debug>(
    route: &str,
    validate: impl Fn(&Value) -> Result<T, ErrorEnvelope>,
    cases: &[(&str, Value)],
) {
    for (text, expected) in cases {
        match validate(&body(text)) {
            Ok(dto) => panic!("{route}: {text} was accepted as {dto:?}"),
            Err(e) => assert_eq!(&err_json(e), expected, "{route}: {text}"),
        }
    }
}

#[test]
fn malformed_json_is_the_body_parser_400() {
    for text in [r#"{"number": "1",}"#, "{", r#"{"a" 1}"#, "[1,2"] {
        let e = parse_json_body(text.as_bytes()).unwrap_err();
        assert_eq!(e.status, 400);
        let v = err_json(e);
        assert_eq!(v["error"], "Internal Server Error", "{text}");
        assert!(v["response"]["message"].is_string(), "{text}: {v}");
    }
    // Strict mode: only objects and arrays.
    for text in ["\"text\"", "42", "null", "true"] {
        let v = err_json(parse_json_body(text.as_bytes()).unwrap_err());
        assert_eq!(v["status"], 400);
        assert!(
            v["response"]["message"]
                .as_str()
                .unwrap()
                .ends_with("is not valid JSON"),
            "{v}"
        );
    }
    // Empty body: the parser is skipped and the body is {}.
    assert_eq!(parse_json_body(b"").unwrap(), json!({}));
    assert_eq!(parse_json_body(b"  \n").unwrap(), json!({}));
    let e = parse_json_body(b"{\"a\":").unwrap_err();
    assert_eq!(
        err_json(e)["response"]["message"],
        "Unexpected end of JSON input"
    );
    let e = parse_json_body(b"{\"a\" 1}").unwrap_err();
    assert_eq!(
        err_json(e)["response"]["message"],
        "Unexpected token in JSON at position 5"
    );
}

#[test]
fn send_text_good_bodies() {
    let dto = validate_send_text(&body(
        r#"{ "number": "5511987654321", "text": "Hi Maria, your order shipped!", "delay": 1200, "linkPreview": false }"#,
    ))
    .unwrap();
    assert_eq!(dto.number, "5511987654321");
    assert_eq!(dto.text, "Hi Maria, your order shipped!");
    assert_eq!(dto.delay, Some(1200));
    assert_eq!(dto.link_preview, Some(false));
    assert!(dto.quoted.is_none() && dto.mentioned.is_empty() && !dto.mentions_every_one);

    let dto = validate_send_text(&body(
        r#"{"number":"120363025555555555@g.us","text":"hi","delay":1.0,"unknownField":{"x":1},
            "quoted":{"key":{"id":"3EB0","fromMe":true},"message":{"conversation":"q"}},
            "mentioned":["5511987654321"],"everyOne":true}"#,
    ))
    .unwrap();
    assert_eq!(dto.delay, Some(1));
    let quoted = dto.quoted.unwrap();
    assert_eq!(quoted.key.id, "3EB0");
    assert_eq!(quoted.key.from_me, Some(true));
    assert_eq!(quoted.message, Some(json!({"conversation": "q"})));
    assert_eq!(dto.mentioned, vec!["5511987654321"]);
    assert!(
        dto.mentions_every_one,
        "the schema spelling everyOne is accepted"
    );
}

#[test]
fn send_text_errors() {
    check_errors(
        "sendText",
        validate_send_text,
        &[
            (
                r#"{"number":"5511"}"#,
                nested(&[r#"instance requires property "text""#]),
            ),
            (
                "{}",
                nested(&[
                    r#"instance requires property "number""#,
                    r#"instance requires property "text""#,
                ]),
            ),
            // Sub-schema descriptions replace the jsonschema text.
            (r#"{"number":5511,"text":"x"}"#, nested(&["Invalid format"])),
            (
                r#"{"number":"1","text":"x","delay":"1200"}"#,
                nested(&["Enter a value in milliseconds"]),
            ),
            (
                r#"{"number":"1","text":"x","delay":1.5}"#,
                nested(&["Enter a value in milliseconds"]),
            ),
            (
                r#"{"number":"1","text":7}"#,
                nested(&["text is not of a type(s) string"]),
            ),
            (
                r#"{"number":"1","text":"x","linkPreview":"no"}"#,
                nested(&["linkPreview is not of a type(s) boolean"]),
            ),
            (
                r#"{"number":"1","text":"x","mentionsEveryOne":1}"#,
                nested(&[
                    "mentionsEveryOne is not of a type(s) boolean",
                    "mentionsEveryOne is not one of enum values: true,false",
                ]),
            ),
            (
                r#"{"number":"1","text":"x","mentioned":[]}"#,
                nested(&["mentioned does not meet minimum length of 1"]),
            ),
            (
                r#"{"number":"1","text":"x","mentioned":["1","1"]}"#,
                nested(&["mentioned contains duplicate item"]),
            ),
            (
                r#"{"number":"1","text":"x","mentioned":["abc"]}"#,
                nested(&[r#""mentioned" must be an array of numeric strings"#]),
            ),
            (
                r#"{"number":"1","text":"x","quoted":{"key":{}}}"#,
                nested(&[r#"quoted.key requires property "id""#]),
            ),
            (
                r#"{"number":"1","text":"x","quoted":{"key":{"id":""}}}"#,
                nested(&[r#"The "id" cannot be empty"#]),
            ),
            (
                r#"{"number":"1","text":"x","quoted":{"key":"k"}}"#,
                nested(&["quoted.key is not of a type(s) object"]),
            ),
            // Property errors come before required errors.
            (
                r#"{"text":1}"#,
                nested(&[
                    "text is not of a type(s) string",
                    r#"instance requires property "number""#,
                ]),
            ),
            // An array body is an object with index keys: only `required` fails.
            (
                "[1,2]",
                nested(&[
                    r#"instance requires property "number""#,
                    r#"instance requires property "text""#,
                ]),
            ),
            // The handler's own check: a flat array.
            (
                r#"{"number":"1","text":""}"#,
                json!({"status":400,"error":"Bad Request","response":{"message":["Text is required"]}}),
            ),
        ],
    );
}

#[test]
fn create_instance_good_body_13_1() {
    let dto = validate_create_instance(&body(
        r#"{
  "instanceName": "acme-sales",
  "integration": "WHATSAPP-BAILEYS",
  "qrcode": true,
  "rejectCall": true,
  "msgCall": "This number does not take calls.",
  "groupsIgnore": true,
  "webhook": {
    "url": "https://hooks.acme.test/evolution",
    "byEvents": false,
    "base64": false,
    "headers": { "x-tenant": "acme" },
    "events": ["QRCODE_UPDATED", "CONNECTION_UPDATE", "MESSAGES_UPSERT", "SEND_MESSAGE"]
  }
}"#,
    ))
    .unwrap();
    assert_eq!(dto.instance_name, "acme-sales");
    assert_eq!(dto.integration, Integration::WhatsappBaileys);
    assert!(dto.qrcode && dto.token.is_none() && dto.number.is_none());
    assert!(dto.settings.reject_call && dto.settings.groups_ignore);
    assert!(!dto.settings.always_online && !dto.settings.sync_full_history);
    assert_eq!(dto.settings.msg_call, "This number does not take calls.");
    assert_eq!(dto.settings.wavoip_token, "");
    let webhook = dto.webhook.unwrap();
    assert_eq!(webhook.url, "https://hooks.acme.test/evolution");
    assert_eq!(webhook.by_events, Some(false));
    assert_eq!(webhook.headers.unwrap()["x-tenant"], "acme");
    assert_eq!(
        webhook.events.names(),
        [
            "QRCODE_UPDATED",
            "CONNECTION_UPDATE",
            "MESSAGES_UPSERT",
            "SEND_MESSAGE"
        ]
    );

    // Minimal body; `events: []` and a missing `events` both mean all events.
    for webhook in [
        r#"{"url":"https://h.test","events":[]}"#,
        r#"{"url":"https://h.test"}"#,
    ] {
        let dto = validate_create_instance(&body(&format!(
            r#"{{"instanceName":"a","integration":"EVOLUTION","number":"5511@x","rejectCall":"yes-but-ignored-type","webhook":{webhook}}}"#
        )));
        // `rejectCall` of the wrong type is a schema error.
        assert_eq!(
            err_json(dto.unwrap_err()),
            nested(&["rejectCall is not of a type(s) boolean"])
        );
        let dto = validate_create_instance(&body(&format!(
            r#"{{"instanceName":"a","integration":"EVOLUTION","number":"5511@x","webhook":{webhook}}}"#
        )))
        .unwrap();
        assert_eq!(dto.webhook.unwrap().events.names().len(), 31);
        assert!(!dto.settings.reject_call);
    }

    // The schema's flat webhook fields are accepted too (§11 #20).
    let dto = validate_create_instance(&body(
        r#"{"instanceName":"a","integration":"WHATSAPP-BUSINESS","token":"T","webhookUrl":"https://h","webhookEvents":["CALL"],"webhookBase64":true}"#,
    ))
    .unwrap();
    let webhook = dto.webhook.unwrap();
    assert_eq!(
        (webhook.url.as_str(), webhook.base64),
        ("https://h", Some(true))
    );
    assert_eq!(webhook.events.names(), ["CALL"]);
    assert_eq!(dto.token.as_deref(), Some("T"));
}

#[test]
fn create_instance_errors() {
    let invalid_integration =
        json!({"status":400,"error":"Bad Request","response":{"message":["Invalid integration"]}});
    let all = SUBSCRIBABLE.join(",");
    check_errors(
        "create",
        validate_create_instance,
        &[
            (r#"{"instanceName":"a"}"#, invalid_integration.clone()),
            (
                r#"{"instanceName":"a","integration":"WHATSAPP"}"#,
                invalid_integration.clone(),
            ),
            (
                r#"{"integration":"WHATSAPP-BAILEYS"}"#,
                nested(&[r#"instance requires property "instanceName""#]),
            ),
            // isNotEmpty only fires when every key is in its list.
            (
                r#"{"instanceName":""}"#,
                nested(&[r#"The "instanceName" cannot be empty"#]),
            ),
            (
                r#"{"instanceName":"","integration":"X"}"#,
                invalid_integration,
            ),
            (
                r#"{"instanceName":1,"qrcode":"true","integration":"WHATSAPP-BAILEYS"}"#,
                nested(&[
                    "instanceName is not of a type(s) string",
                    "qrcode is not of a type(s) boolean",
                ]),
            ),
            (
                r#"{"instanceName":"a","number":"+5511","integration":"WHATSAPP-BAILEYS"}"#,
                nested(&[r#"number does not match pattern "^\\d+[\\.@\\w-]+""#]),
            ),
            (
                r#"{"instanceName":"a","Integration":"nope","integration":"EVOLUTION"}"#,
                nested(&[
                    "Integration is not one of enum values: WHATSAPP-BAILEYS,WHATSAPP-BUSINESS,EVOLUTION",
                ]),
            ),
            (
                r#"{"instanceName":"a","integration":"EVOLUTION","webhook":{"url":1,"events":["NOPE"]}}"#,
                nested(&[
                    "webhook.url is not of a type(s) string",
                    &format!("webhook.events[0] is not one of enum values: {all}"),
                ]),
            ),
        ],
    );
}

#[test]
fn number_pattern_needs_two_chars_starting_with_a_digit() {
    for (number, ok) in [
        ("5511912345678", true),
        ("55", true),
        ("5", false),
        ("5@", true),
        ("a55", false),
        ("", false),
    ] {
        let b = json!({"instanceName": "a", "integration": "EVOLUTION", "number": number});
        assert_eq!(validate_create_instance(&b).is_ok(), ok, "{number}");
    }
}

#[test]
fn connect_query_and_set_presence() {
    assert_eq!(validate_connect_query(None).number, None);
    assert_eq!(validate_connect_query(Some("")).number, None);
    assert_eq!(
        validate_connect_query(Some("5511912345678"))
            .number
            .as_deref(),
        Some("5511912345678")
    );
    assert_eq!(
        validate_set_presence(&body(r#"{"presence":"available"}"#))
            .unwrap()
            .presence,
        Presence::Available
    );
    check_errors(
        "setPresence",
        validate_set_presence,
        &[
            ("{}", nested(&[r#"instance requires property "presence""#])),
            (
                r#"{"presence":"typing"}"#,
                nested(&[
                    "presence is not one of enum values: unavailable,available,composing,recording,paused",
                ]),
            ),
        ],
    );
}

#[test]
fn whatsapp_numbers() {
    let dto = validate_whatsapp_numbers(&body(
        r#"{ "numbers": ["5511987654321", "5511900000000", "120363025555555555@g.us"] }"#,
    ))
    .unwrap();
    assert_eq!(dto.numbers.len(), 3);
    for (text, message) in [
        (
            r#"{"numbers":[]}"#,
            json!([["numbers does not meet minimum length of 1"]]),
        ),
        (
            r#"{"numbers":["1","1"]}"#,
            json!([["numbers contains duplicate item"]]),
        ),
        (
            r#"{"numbers":[5511]}"#,
            json!([["\"numbers\" must be an array of numeric strings"]]),
        ),
        ("{}", json!([["instance requires property \"numbers\""]])),
    ] {
        let raw = validate_whatsapp_numbers(&body(text)).unwrap_err();
        assert_eq!(
            serde_json::to_value(raw).unwrap(),
            json!({"status": 400, "error": "Bad Request", "message": message}),
            "{text}"
        );
    }
}

#[test]
fn mark_message_as_read() {
    let read = validate_mark_message_as_read(&body(
        r#"{"readMessages":[{"id":"3EB0","fromMe":false,"remoteJid":"5511@s.whatsapp.net"}]}"#,
    ))
    .unwrap();
    assert_eq!(
        read,
        vec![ReadMessage {
            id: "3EB0".into(),
            from_me: false,
            remote_jid: "5511@s.whatsapp.net".into()
        }]
    );
    check_errors(
        "markMessageAsRead",
        validate_mark_message_as_read,
        &[
            (
                "{}",
                nested(&[r#"instance requires property "readMessages""#]),
            ),
            (
                r#"{"readMessages":[]}"#,
                nested(&["readMessages does not meet minimum length of 1"]),
            ),
            (
                r#"{"readMessages":[{"id":"x","remoteJid":"y"}]}"#,
                nested(&[r#"readMessages[0] requires property "fromMe""#]),
            ),
            (
                r#"{"readMessages":[{"id":"x","fromMe":"no","remoteJid":"y"}]}"#,
                nested(&[
                    "readMessages[0].fromMe is not of a type(s) boolean",
                    "readMessages[0].fromMe is not one of enum values: true,false",
                ]),
            ),
            // isNotEmpty('id','remoteJid') only fires when fromMe is absent, i.e. together
            // with a `required` error.
            (
                r#"{"readMessages":[{"id":"","remoteJid":"y"}]}"#,
                nested(&[
                    r#"readMessages[0] requires property "fromMe""#,
                    r#"The "id" cannot be empty"#,
                ]),
            ),
        ],
    );
    assert!(
        validate_mark_message_as_read(&body(
            r#"{"readMessages":[{"id":"","fromMe":true,"remoteJid":"y"}]}"#
        ))
        .is_ok(),
        "Evolution accepts an empty id next to fromMe"
    );
}

#[test]
fn find_messages() {
    let dto = validate_find_messages(&body(
        r#"{ "where": { "key": { "remoteJid": "5511987654321@s.whatsapp.net" } }, "page": 1, "offset": 2 }"#,
    ))
    .unwrap();
    assert_eq!(
        dto.filter.key.remote_jid.as_deref(),
        Some("5511987654321@s.whatsapp.net")
    );
    assert_eq!((dto.page, dto.offset), (1, 2));

    let dto = validate_find_messages(&body("{}")).unwrap();
    assert_eq!((dto.page, dto.offset), (1, DEFAULT_PAGE_SIZE));
    assert_eq!(dto.filter, MessageFilter::default());

    let dto = validate_find_messages(&body(
        r#"{"where":{"messageTimestamp":{"gte":"2025-10-01"},"messageType":"conversation"},"page":"2","offset":-1}"#,
    ))
    .unwrap();
    assert_eq!(dto.filter.timestamp_range, None, "needs both gte and lte");
    assert_eq!(dto.filter.message_type.as_deref(), Some("conversation"));
    assert_eq!((dto.page, dto.offset), (2, DEFAULT_PAGE_SIZE));
    let dto = validate_find_messages(&body(
        r#"{"where":{"messageTimestamp":{"gte":"2025-10-01","lte":"2025-10-31"}}}"#,
    ))
    .unwrap();
    assert_eq!(
        dto.filter.timestamp_range,
        Some(("2025-10-01".into(), "2025-10-31".into()))
    );

    check_errors(
        "findMessages",
        validate_find_messages,
        &[
            (
                r#"{"where":"x"}"#,
                nested(&["where is not of a type(s) object"]),
            ),
            (
                r#"{"where":{"key":{"remoteJid":""}}}"#,
                nested(&["The property cannot be empty"]),
            ),
            (
                r#"{"where":{"key":{"id":5,"fromMe":"x"}}}"#,
                nested(&[
                    "The property cannot be empty",
                    "where.key.fromMe is not of a type(s) boolean",
                    "where.key.fromMe is not one of enum values: true,false",
                ]),
            ),
            (
                r#"{"where":{"_id":""}}"#,
                nested(&[
                    "where._id does not meet minimum length of 1",
                    r#"The "_id" cannot be empty"#,
                ]),
            ),
            (
                r#"{"limit":"10"}"#,
                nested(&["limit is not of a type(s) integer"]),
            ),
        ],
    );
    // With a key outside the if-list, the key checks do not run.
    assert!(
        validate_find_messages(&body(
            r#"{"where":{"key":{"remoteJid":"","participant":"p"}}}"#
        ))
        .is_ok()
    );
}

#[test]
fn webhook_set() {
    let dto = validate_webhook_set(&body(
        r#"{
  "webhook": {
    "enabled": true,
    "url": "https://hooks.acme.test/evolution",
    "byEvents": true,
    "base64": true,
    "headers": { "jwt_key": "s3cr3t", "x-tenant": "acme" },
    "events": ["MESSAGES_UPSERT", "MESSAGES_UPDATE", "CONNECTION_UPDATE", "QRCODE_UPDATED"]
  }
}"#,
    ))
    .unwrap();
    assert!(dto.enabled && dto.by_events && dto.base64);
    assert_eq!(dto.url, "https://hooks.acme.test/evolution");
    assert_eq!(dto.headers.unwrap()["jwt_key"], "s3cr3t");
    assert_eq!(dto.events.names().len(), 4);

    // §5.1 storing rules.
    for (text, stored) in [
        (r#"{"webhook":{"enabled":true,"url":"u","events":[]}}"#, 31),
        (r#"{"webhook":{"enabled":true,"url":"u"}}"#, 31),
        (
            r#"{"webhook":{"enabled":false,"url":"u","events":["CALL"]}}"#,
            0,
        ),
        (
            r#"{"webhook":{"enabled":true,"url":"u","events":["GROUP_UPDATE"]}}"#,
            1,
        ),
    ] {
        assert_eq!(
            validate_webhook_set(&body(text))
                .unwrap()
                .events
                .names()
                .len(),
            stored,
            "{text}"
        );
    }

    let all = SUBSCRIBABLE.join(",");
    check_errors(
        "webhook/set",
        validate_webhook_set,
        &[
            (
                r#"{"url":"https://hooks.acme.test/evolution","enabled":true}"#,
                nested(&[r#"instance requires property "webhook""#]),
            ),
            (
                r#"{"webhook":{"enabled":true}}"#,
                nested(&[r#"webhook requires property "url""#]),
            ),
            (
                r#"{"webhook":{}}"#,
                nested(&[
                    r#"webhook requires property "enabled""#,
                    r#"webhook requires property "url""#,
                ]),
            ),
            (
                r#"{"webhook":{"enabled":true,"url":""}}"#,
                nested(&[r#"The "url" cannot be empty"#]),
            ),
            (
                r#"{"webhook":{"enabled":"yes","url":"u"}}"#,
                nested(&["webhook.enabled is not of a type(s) boolean"]),
            ),
            // GROUPS_UPDATE is not in Evolution's allow-list (it has GROUP_UPDATE).
            (
                r#"{"webhook":{"enabled":true,"url":"u","events":["CALL","GROUPS_UPDATE"]}}"#,
                nested(&[&format!(
                    "webhook.events[1] is not one of enum values: {all}"
                )]),
            ),
            (
                r#"{"webhook":{"enabled":true,"url":"u","events":"CALL"}}"#,
                nested(&["webhook.events is not of a type(s) array"]),
            ),
        ],
    );
}

#[test]
fn settings_set() {
    let text = r#"{"rejectCall":true,"msgCall":"No calls","groupsIgnore":false,"alwaysOnline":true,"readMessages":false,"readStatus":false,"syncFullHistory":false}"#;
    let dto = validate_settings_set(&body(text)).unwrap();
    assert!(dto.reject_call && dto.always_online && !dto.groups_ignore);
    assert_eq!(dto.msg_call.as_deref(), Some("No calls"));
    assert_eq!(dto.wavoip_token, None, "omitted keeps the stored value");
    assert_eq!(dto.body, body(text));

    check_errors(
        "settings/set",
        validate_settings_set,
        &[
            (
                r#"{"rejectCall":true}"#,
                nested(&[
                    r#"instance requires property "groupsIgnore""#,
                    r#"instance requires property "alwaysOnline""#,
                    r#"instance requires property "readMessages""#,
                    r#"instance requires property "readStatus""#,
                    r#"instance requires property "syncFullHistory""#,
                ]),
            ),
            (
                r#"{"rejectCall":"true","msgCall":1,"groupsIgnore":false,"alwaysOnline":true,"readMessages":false,"readStatus":false,"syncFullHistory":false}"#,
                nested(&[
                    "rejectCall is not of a type(s) boolean",
                    "msgCall is not of a type(s) string",
                ]),
            ),
            (
                r#"{"rejectCall":true,"groupsIgnore":false,"alwaysOnline":true,"readMessages":false,"readStatus":false,"syncFullHistory":false,"wavoipToken":""}"#,
                nested(&[r#"The "wavoipToken" cannot be empty"#]),
            ),
        ],
    );
}

#[test]
fn send_presence() {
    let dto = validate_send_presence(&body(
        r#"{"number":"5511987654321","presence":"composing","delay":1200}"#,
    ))
    .unwrap();
    assert_eq!(dto.number, "5511987654321");
    assert_eq!(dto.presence, Presence::Composing);
    assert_eq!(dto.delay_ms, 1200.0);
    // `delay` is typed `number`: a fraction passes.
    assert_eq!(
        validate_send_presence(&body(
            r#"{"number":"x@s.whatsapp.net","presence":"paused","delay":0.5}"#
        ))
        .unwrap()
        .delay_ms,
        0.5
    );
    check_errors(
        "sendPresence",
        validate_send_presence,
        &[
            (
                "{}",
                nested(&[
                    r#"instance requires property "number""#,
                    r#"instance requires property "presence""#,
                    r#"instance requires property "delay""#,
                ]),
            ),
            (
                r#"{"number":"5511987654321","presence":"composing"}"#,
                nested(&[r#"instance requires property "delay""#]),
            ),
            (
                r#"{"number":"5511987654321","presence":"composing","delay":"1s"}"#,
                nested(&["delay is not of a type(s) number"]),
            ),
            (
                r#"{"number":5511987654321,"presence":"typing","delay":1}"#,
                nested(&[
                    "Invalid format",
                    "presence is not one of enum values: unavailable,available,composing,recording,paused",
                ]),
            ),
        ],
    );
}
