//! The record's `message`/`messageType`/`contextInfo` for every content kind zapin receives,
//! from proto-JSON fixtures shaped as Baileys decodes them (contract §3.3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Value, json};
use zapin_compat_evolution::content::{
    Content, ProtoObject, bytes, long, long_signed, normalize, source_of,
};
use zapin_compat_evolution::request::parse_date_seconds;

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn ctx() -> Value {
    json!({"stanzaId": "3EB0QUOTED", "participant": "5511900000000@s.whatsapp.net",
           "quotedMessage": {"conversation": "earlier"},
           "mentionedJid": ["5511911111111@s.whatsapp.net"]})
}

/// (fixture, expected messageType, expected message, expected contextInfo)
fn fixtures() -> Vec<(Value, &'static str, Value, Value)> {
    let key_bytes = bytes(&[1, 2, 3]);
    let image = json!({"url": "https://mmg.whatsapp.net/i", "mimetype": "image/jpeg",
        "caption": "look", "fileSha256": key_bytes, "fileLength": long(70_000, true),
        "height": 640, "width": 480, "mediaKey": key_bytes, "directPath": "/v/i",
        "mediaKeyTimestamp": long_signed(1_700_000_000), "contextInfo": ctx()});
    let video = json!({"url": "https://mmg.whatsapp.net/v", "mimetype": "video/mp4",
        "seconds": 12, "caption": "clip", "gifPlayback": false});
    let audio = json!({"url": "https://mmg.whatsapp.net/a", "mimetype": "audio/ogg; codecs=opus",
        "seconds": 3, "ptt": true, "waveform": bytes(&[0, 9])});
    let document = json!({"url": "https://mmg.whatsapp.net/d", "mimetype": "application/pdf",
        "title": "invoice", "pageCount": 2, "fileName": "invoice.pdf"});
    let sticker = json!({"url": "https://mmg.whatsapp.net/s", "mimetype": "image/webp",
        "isAnimated": false});
    let location = json!({"degreesLatitude": -23.55, "degreesLongitude": -46.63,
        "name": "Paulista", "address": "Av. Paulista"});
    let contact = json!({"displayName": "Maria",
        "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Maria\nitem1.TEL;waid=5511987654321:+55 11 98765-4321\nEND:VCARD"});
    let reaction = json!({"key": {"remoteJid": "5511987654321@s.whatsapp.net", "fromMe": true,
        "id": "3EB0ABC"}, "text": "👍", "senderTimestampMs": long_signed(1_700_000_000_123)});
    vec![
        (
            json!({"imageMessage": image, "messageContextInfo": {"deviceListMetadata": {}}}),
            "imageMessage",
            json!({"imageMessage": image, "messageContextInfo": {"deviceListMetadata": {}}}),
            ctx(),
        ),
        (
            json!({"videoMessage": video}),
            "videoMessage",
            json!({"videoMessage": video}),
            Value::Null,
        ),
        (
            json!({"audioMessage": audio}),
            "audioMessage",
            json!({"audioMessage": audio}),
            Value::Null,
        ),
        (
            json!({"documentMessage": document}),
            "documentMessage",
            json!({"documentMessage": document}),
            Value::Null,
        ),
        // documentWithCaptionMessage is unwrapped to documentMessage.
        (
            json!({"documentWithCaptionMessage": {"message": {"documentMessage": document}}}),
            "documentMessage",
            json!({"documentMessage": document}),
            Value::Null,
        ),
        (
            json!({"stickerMessage": sticker}),
            "stickerMessage",
            json!({"stickerMessage": sticker}),
            Value::Null,
        ),
        (
            json!({"locationMessage": location}),
            "locationMessage",
            json!({"locationMessage": location}),
            Value::Null,
        ),
        (
            json!({"contactMessage": contact}),
            "contactMessage",
            json!({"contactMessage": contact}),
            Value::Null,
        ),
        (
            json!({"reactionMessage": reaction}),
            "reactionMessage",
            json!({"reactionMessage": reaction}),
            Value::Null,
        ),
        // extendedTextMessage becomes a conversation; its contextInfo is still reported.
        (
            json!({"extendedTextMessage": {"text": "hi @5511911111111", "contextInfo": ctx()}}),
            "conversation",
            json!({"conversation": "hi @5511911111111"}),
            ctx(),
        ),
        (
            json!({"conversation": "plain"}),
            "conversation",
            json!({"conversation": "plain"}),
            Value::Null,
        ),
        // A sender-key distribution alone is no content.
        (
            json!({"senderKeyDistributionMessage": {"groupId": "1@g.us"}}),
            "unknown",
            json!({"senderKeyDistributionMessage": {"groupId": "1@g.us"}}),
            Value::Null,
        ),
        (
            json!({"senderKeyDistributionMessage": {"groupId": "1@g.us"}, "conversation": "hey"}),
            "conversation",
            json!({"senderKeyDistributionMessage": {"groupId": "1@g.us"}, "conversation": "hey"}),
            Value::Null,
        ),
    ]
}

#[test]
fn every_content_kind_maps_to_evolutions_record_fields() {
    for (fixture, message_type, message, context_info) in fixtures() {
        let got = normalize(map(fixture.clone()));
        assert_eq!(
            got,
            Content {
                message_type: message_type.to_owned(),
                message,
                context_info,
            },
            "{fixture}"
        );
    }
}

#[test]
fn bytes_and_longs_render_as_protobufjs_does() {
    assert_eq!(bytes(&[0, 255, 7]), json!({"0": 0, "1": 255, "2": 7}));
    assert_eq!(bytes(&[]), json!({}));
    assert_eq!(
        long(5, true),
        json!({"low": 5, "high": 0, "unsigned": true})
    );
    // 2^32 + 1, and a value whose low half has the sign bit set.
    assert_eq!(
        long((1 << 32) + 1, true),
        json!({"low": 1, "high": 1, "unsigned": true})
    );
    assert_eq!(
        long(0xFFFF_FFFF, true),
        json!({"low": -1, "high": 0, "unsigned": true})
    );
    assert_eq!(
        long_signed(-1),
        json!({"low": -1, "high": -1, "unsigned": false})
    );
    assert_eq!(
        long_signed(1_700_000_000_123),
        json!({"low": -807_049_093, "high": 395, "unsigned": false})
    );
}

#[test]
fn proto_objects_skip_absent_fields() {
    let obj = ProtoObject::new()
        .string("url", None)
        .string("caption", Some("c"))
        .uint64("fileLength", Some(1))
        .strings("mentionedJid", &[])
        .double("degreesLatitude", Some(1.5))
        .object("contextInfo", None)
        .into_value();
    assert_eq!(
        obj,
        json!({"caption": "c", "fileLength": {"low": 1, "high": 0, "unsigned": true},
               "degreesLatitude": 1.5})
    );
}

#[test]
fn source_follows_the_message_id_shape() {
    assert_eq!(source_of("3EB0C431C26A1916E07C6A"), "web");
    assert_eq!(source_of("3A5F6E0C1B2D3A4F5E6D"), "ios");
    assert_eq!(source_of("ABCDEF0123456789ABCDEF0123456789"), "android");
    assert_eq!(source_of("ABCDEF0123456789ABCDE"), "android");
    assert_eq!(source_of("3F0123"), "desktop");
    assert_eq!(source_of("ABCDEF012345678901"), "desktop");
    assert_eq!(source_of("x"), "unknown");
}

#[test]
fn find_messages_dates_parse_like_javascript_iso_dates() {
    assert_eq!(parse_date_seconds("1970-01-01"), Some(0));
    assert_eq!(
        parse_date_seconds("2023-11-14T22:13:20Z"),
        Some(1_700_000_000)
    );
    assert_eq!(
        parse_date_seconds("2023-11-14T22:13:20.999Z"),
        Some(1_700_000_000)
    );
    assert_eq!(
        parse_date_seconds("2023-11-14T19:13:20-03:00"),
        Some(1_700_000_000)
    );
    assert_eq!(
        parse_date_seconds("2023-11-15T00:13:20+0200"),
        Some(1_700_000_000)
    );
    assert_eq!(
        parse_date_seconds("2023-11-14 22:13"),
        Some(1_700_000_000 - 20)
    );
    assert_eq!(parse_date_seconds("2024-02-29"), Some(1_709_164_800));
    assert_eq!(parse_date_seconds("yesterday"), None);
    assert_eq!(parse_date_seconds("2023-13-01"), None);
    assert_eq!(parse_date_seconds(""), None);
}
