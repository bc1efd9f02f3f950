//! Every validator accepts arbitrary JSON without panicking (deterministic pseudo-random values).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use serde_json::{Map, Value, json};
use zapin_compat_evolution::request::*;

/// xorshift64*: small, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const KEYS: &[&str] = &[
    "number",
    "text",
    "delay",
    "quoted",
    "key",
    "id",
    "fromMe",
    "remoteJid",
    "message",
    "mentioned",
    "mentionsEveryOne",
    "everyOne",
    "linkPreview",
    "instanceName",
    "integration",
    "token",
    "qrcode",
    "webhook",
    "url",
    "enabled",
    "events",
    "byEvents",
    "base64",
    "headers",
    "numbers",
    "readMessages",
    "where",
    "page",
    "offset",
    "_id",
    "limit",
    "presence",
    "rejectCall",
    "msgCall",
    "wavoipToken",
    "Integration",
    "webhookEvents",
    "messageTimestamp",
    "gte",
    "lte",
];

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let pick = if depth == 0 {
        rng.below(6)
    } else {
        rng.below(8)
    };
    match pick {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => json!(rng.below(3000) as i64 - 1000),
        3 => json!(rng.below(1000) as f64 / 7.0),
        4 => Value::String(
            [
                "",
                "x",
                "5511",
                "CALL",
                "GROUP_UPDATE",
                "available",
                "EVOLUTION",
            ][rng.below(7) as usize]
                .to_owned(),
        ),
        5 => Value::String(KEYS[rng.below(KEYS.len() as u64) as usize].to_owned()),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(6) {
                let key = KEYS[rng.below(KEYS.len() as u64) as usize];
                map.insert(key.to_owned(), random_value(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

#[test]
fn validators_never_panic() {
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let mut accepted = 0usize;
    for _ in 0..20_000 {
        let v = random_value(&mut rng, 4);
        let results = [
            validate_send_text(&v).is_ok(),
            validate_create_instance(&v).is_ok(),
            validate_set_presence(&v).is_ok(),
            validate_whatsapp_numbers(&v).is_ok(),
            validate_mark_message_as_read(&v).is_ok(),
            validate_find_messages(&v).is_ok(),
            validate_webhook_set(&v).is_ok(),
            validate_settings_set(&v).is_ok(),
        ];
        accepted += results.iter().filter(|ok| **ok).count();
        // The body parser agrees with serde on its own output.
        let text = serde_json::to_vec(&v).unwrap();
        let _ = parse_json_body(&text);
    }
    assert!(accepted > 0, "the generator should reach valid bodies too");
}

#[test]
fn parser_never_panics_on_truncations() {
    let body = br#"{"number":"5511987654321","text":"Ol\u00e1 \"x\"","quoted":{"key":{"id":"1"}},"mentioned":["1"]}"#;
    for end in 0..=body.len() {
        let _ = parse_json_body(&body[..end]);
    }
    assert!(parse_json_body(body).is_ok());
    // Deep nesting is rejected by serde_json's recursion limit, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_json_body(deep.as_bytes()).is_err());
}

#[test]
fn unique_items_is_linear_on_large_arrays() {
    let numbers: Vec<String> = (0..200_000).map(|i| i.to_string()).collect();
    let dto = validate_whatsapp_numbers(&json!({ "numbers": numbers })).unwrap();
    assert_eq!(dto.numbers.len(), 200_000);
}

/// Strings the send routes' parsers care about: URLs, base64, data URIs, emoji, line breaks.
const SEND_STRINGS: &[&str] = &[
    "",
    "https://cdn.example/a.png",
    "http://",
    "aGVsbG8=",
    "aGVsbG8",
    "a===",
    "data:image/png;base64,iVBORw0KGgo=",
    "data:;base64,",
    "data:text/plain,hi",
    "👍",
    "👍👍",
    "🇧🇷",
    "1️⃣",
    "Maria\nTEL:666",
    "image",
    "document",
    "video",
    "audio",
    "image/png",
    "application/pdf",
    "+55 (11) 98765-4321",
    "5522@s.whatsapp.net",
];

const SEND_KEYS: &[&str] = &[
    "number",
    "mediatype",
    "mimetype",
    "media",
    "caption",
    "fileName",
    "audio",
    "sticker",
    "video",
    "encoding",
    "notConvertSticker",
    "latitude",
    "longitude",
    "name",
    "address",
    "contact",
    "fullName",
    "phoneNumber",
    "wuid",
    "organization",
    "email",
    "url",
    "key",
    "id",
    "remoteJid",
    "fromMe",
    "reaction",
    "values",
    "selectableCount",
    "text",
    "message",
    "callDuration",
    "isVideo",
    "delay",
    "quoted",
];

fn send_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::Bool(rng.below(2) == 0),
        1 => json!(rng.below(400) as i64 - 200),
        2 => json!(rng.below(4000) as f64 / 13.0 - 100.0),
        3 | 4 => {
            Value::String(SEND_STRINGS[rng.below(SEND_STRINGS.len() as u64) as usize].to_owned())
        }
        5 => Value::Array(
            (0..rng.below(12))
                .map(|_| send_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(8) {
                let key = SEND_KEYS[rng.below(SEND_KEYS.len() as u64) as usize];
                map.insert(key.to_owned(), send_value(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

#[test]
fn send_route_validators_media_parsers_and_vcards_never_panic() {
    let mut rng = Rng(0x5EED_CAFE_F00D_0013);
    let mut accepted = 0usize;
    for _ in 0..30_000 {
        let v = send_value(&mut rng, 4);
        for has_file in [false, true] {
            accepted += usize::from(validate_send_media(&v, has_file).is_ok());
            accepted += usize::from(validate_send_audio(&v, has_file).is_ok());
            accepted += usize::from(validate_send_sticker(&v, has_file).is_ok());
            accepted += usize::from(validate_send_ptv(&v, has_file).is_ok());
        }
        accepted += usize::from(validate_send_location(&v).is_ok());
        accepted += usize::from(validate_send_reaction(&v).is_ok());
        accepted += usize::from(validate_send_poll(&v).is_ok());
        accepted += usize::from(validate_update_message(&v).is_ok());
        accepted += usize::from(validate_delete_for_everyone(&v).is_ok());
        accepted += usize::from(validate_get_base64(&v).is_ok());
        accepted += usize::from(validate_offer_call(&v).is_ok());
        if let Ok(c) = validate_send_contact(&v) {
            accepted += 1;
            for card in &c.contacts {
                let vcard = card.vcard();
                let lines: Vec<&str> = vcard.split('\n').collect();
                assert_eq!(lines.first(), Some(&"BEGIN:VCARD"));
                assert_eq!(lines.last(), Some(&"END:VCARD"));
                assert_eq!(
                    lines.iter().filter(|l| l.starts_with("FN:")).count(),
                    1,
                    "{vcard}"
                );
                assert_eq!(
                    lines.iter().filter(|l| l.starts_with("item1.TEL")).count(),
                    1
                );
            }
        }
        // Raw bytes through the sniffer and the source parser.
        let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.below(256) as u8).collect();
        let _ = sniff_mimetype(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(MediaSource::Base64 { data, .. }) = parse_media_source(&text) {
            assert!(
                data.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/-_=".contains(&b))
            );
        }
        let _ = is_single_emoji(&text);
        let _ = mimetype_for_file_name(&text);
    }
    assert!(accepted > 0, "the generator should reach valid bodies too");
}
