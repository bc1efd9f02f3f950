//! Response bodies and event payloads reproduce the samples of contract §4, §5, §7 and §13.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use std::collections::BTreeMap;

use serde_json::{Value, json};
use zapin_compat_evolution::envelope::{
    WebhookEnvelope, envelope_apikey, format_date_time, webhook_target,
};
use zapin_compat_evolution::payload::*;
use zapin_compat_evolution::request::{Integration, Presence};
use zapin_compat_evolution::response::*;
use zapin_compat_evolution::{EventName, EventSubscription};

const INSTANCE_ID: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

fn value(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap()
}

/// Top-level key order of the serialised text.
fn keys_in_order(v: &impl serde::Serialize, keys: &[&str]) {
    let text = serde_json::to_string(v).unwrap();
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing in {text}"))
        })
        .collect();
    assert!(positions.is_sorted(), "key order {keys:?} in {text}");
}

fn acme_settings() -> InstanceSettings {
    InstanceSettings {
        reject_call: true,
        msg_call: "This number does not take calls.".into(),
        groups_ignore: true,
        ..InstanceSettings::default()
    }
}

fn qr() -> QrImage {
    QrImage {
        pairing_code: None,
        code: "2@Xq0c...,Qm9v...,YmFy...,Zm9v...".into(),
        base64: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA...".into(),
    }
}

#[test]
fn create_response_13_1() {
    let mut headers = serde_json::Map::new();
    headers.insert("x-tenant".into(), json!("acme"));
    let response = CreateInstanceResponse {
        instance: CreatedInstance {
            instance_name: "acme-sales".into(),
            instance_id: INSTANCE_ID.into(),
            integration: Integration::WhatsappBaileys,
            webhook_wa_business: None,
            access_token_wa_business: String::new(),
            status: ConnectionState::Connecting,
        },
        hash: "5C1E0E39-2B4E-4C6B-9D57-1A3F0B8E6D21".into(),
        webhook: CreateWebhookEcho {
            webhook_url: Some("https://hooks.acme.test/evolution".into()),
            webhook_headers: Some(headers),
            webhook_by_events: Some(false),
            webhook_base64: Some(false),
        },
        websocket: EnabledEcho::default(),
        rabbitmq: EnabledEcho::default(),
        nats: EnabledEcho::default(),
        sqs: EnabledEcho::default(),
        settings: acme_settings(),
        qrcode: Some(QrCode {
            image: Some(qr()),
            count: 1,
        }),
        chatwoot: None,
    };
    assert_eq!(
        value(&response),
        json!({
          "instance": {
            "instanceName": "acme-sales",
            "instanceId": INSTANCE_ID,
            "integration": "WHATSAPP-BAILEYS",
            "webhookWaBusiness": null,
            "accessTokenWaBusiness": "",
            "status": "connecting"
          },
          "hash": "5C1E0E39-2B4E-4C6B-9D57-1A3F0B8E6D21",
          "webhook": {
            "webhookUrl": "https://hooks.acme.test/evolution",
            "webhookHeaders": { "x-tenant": "acme" },
            "webhookByEvents": false,
            "webhookBase64": false
          },
          "websocket": {},
          "rabbitmq": {},
          "nats": {},
          "sqs": {},
          "settings": {
            "rejectCall": true,
            "msgCall": "This number does not take calls.",
            "groupsIgnore": true,
            "alwaysOnline": false,
            "readMessages": false,
            "readStatus": false,
            "syncFullHistory": false,
            "wavoipToken": ""
          },
          "qrcode": {
            "pairingCode": null,
            "code": "2@Xq0c...,Qm9v...,YmFy...,Zm9v...",
            "base64": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA...",
            "count": 1
          }
        })
    );
    keys_in_order(
        &response,
        &[
            "instance",
            "hash",
            "webhook",
            "websocket",
            "rabbitmq",
            "nats",
            "sqs",
            "settings",
            "qrcode",
        ],
    );
    // Without qrcode:true and without a webhook.
    let bare = CreateInstanceResponse {
        qrcode: None,
        webhook: CreateWebhookEcho::default(),
        ..response
    };
    let v = value(&bare);
    assert_eq!(v["webhook"], json!({}));
    assert!(v.get("qrcode").is_none() && v.get("chatwoot").is_none());
}

#[test]
fn connect_bodies_13_2_and_4_2() {
    let with_code = ConnectResponse::Qr(QrCode {
        image: Some(QrImage {
            pairing_code: Some("WZYEH1YY".into()),
            ..qr()
        }),
        count: 1,
    });
    assert_eq!(
        serde_json::to_string(&with_code).unwrap(),
        r#"{"pairingCode":"WZYEH1YY","code":"2@Xq0c...,Qm9v...,YmFy...,Zm9v...","base64":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA...","count":1}"#
    );
    assert_eq!(
        serde_json::to_string(&ConnectResponse::Qr(QrCode::pending(0))).unwrap(),
        r#"{"count":0}"#
    );
    let open = ConnectResponse::State(ConnectionStateBody::new(
        "acme-sales",
        Some(ConnectionState::Open),
    ));
    assert_eq!(
        serde_json::to_string(&open).unwrap(),
        r#"{"instance":{"instanceName":"acme-sales","state":"open"}}"#
    );
    let other = ConnectResponse::Other {
        instance: InstanceStatusView {
            instance_name: "x".into(),
            status: ConnectionState::Refused,
        },
        qrcode: QrCode::pending(0),
    };
    assert_eq!(
        value(&other),
        json!({"instance":{"instanceName":"x","status":"refused"},"qrcode":{"count":0}})
    );
}

#[test]
fn connection_state_13_3() {
    assert_eq!(
        value(&ConnectionStateBody::new(
            "acme-sales",
            Some(ConnectionState::Open)
        )),
        json!({ "instance": { "instanceName": "acme-sales", "state": "open" } })
    );
    assert_eq!(
        value(&ConnectionStateBody::new("db-only", None)),
        json!({ "instance": { "instanceName": "db-only" } })
    );
}

#[test]
fn fetch_instances_13_4() {
    let row = FetchInstanceRow {
        id: INSTANCE_ID.into(),
        name: "acme-sales".into(),
        connection_status: ConnectionState::Open,
        owner_jid: Some("5511912345678@s.whatsapp.net".into()),
        profile_name: Some("ACME Sales".into()),
        profile_pic_url: Some("https://pps.whatsapp.net/v/t61.24694-24/...".into()),
        integration: Integration::WhatsappBaileys,
        number: None,
        business_id: None,
        token: "5C1E0E39-2B4E-4C6B-9D57-1A3F0B8E6D21".into(),
        client_name: "evolution_exchange".into(),
        disconnection_reason_code: None,
        disconnection_object: None,
        disconnection_at: None,
        created_at: "2025-10-21T14:00:00.000Z".into(),
        updated_at: "2025-10-21T14:02:11.000Z".into(),
        chatwoot: None,
        proxy: None,
        rabbitmq: None,
        nats: None,
        sqs: None,
        websocket: None,
        setting: Some(FetchSettingRow {
            id: "cm2k0a1b20001xyz".into(),
            settings: acme_settings(),
            created_at: "2025-10-21T14:00:00.000Z".into(),
            updated_at: "2025-10-21T14:00:00.000Z".into(),
            instance_id: INSTANCE_ID.into(),
        }),
        count: InstanceCounts {
            message: 42,
            contact: 17,
            chat: 9,
        },
    };
    assert_eq!(
        value(&vec![row]),
        json!([
          {
            "id": INSTANCE_ID,
            "name": "acme-sales",
            "connectionStatus": "open",
            "ownerJid": "5511912345678@s.whatsapp.net",
            "profileName": "ACME Sales",
            "profilePicUrl": "https://pps.whatsapp.net/v/t61.24694-24/...",
            "integration": "WHATSAPP-BAILEYS",
            "number": null,
            "businessId": null,
            "token": "5C1E0E39-2B4E-4C6B-9D57-1A3F0B8E6D21",
            "clientName": "evolution_exchange",
            "disconnectionReasonCode": null,
            "disconnectionObject": null,
            "disconnectionAt": null,
            "createdAt": "2025-10-21T14:00:00.000Z",
            "updatedAt": "2025-10-21T14:02:11.000Z",
            "Chatwoot": null,
            "Proxy": null,
            "Rabbitmq": null,
            "Nats": null,
            "Sqs": null,
            "Websocket": null,
            "Setting": {
              "id": "cm2k0a1b20001xyz",
              "rejectCall": true,
              "msgCall": "This number does not take calls.",
              "groupsIgnore": true,
              "alwaysOnline": false,
              "readMessages": false,
              "readStatus": false,
              "syncFullHistory": false,
              "wavoipToken": "",
              "createdAt": "2025-10-21T14:00:00.000Z",
              "updatedAt": "2025-10-21T14:00:00.000Z",
              "instanceId": INSTANCE_ID
            },
            "_count": { "Message": 42, "Contact": 17, "Chat": 9 }
          }
        ])
    );
}

#[test]
fn logout_and_delete_13_5() {
    assert_eq!(
        serde_json::to_string(&StatusResponse::logged_out()).unwrap(),
        r#"{"status":"SUCCESS","error":false,"response":{"message":"Instance logged out"}}"#
    );
    assert_eq!(
        serde_json::to_string(&StatusResponse::deleted()).unwrap(),
        r#"{"status":"SUCCESS","error":false,"response":{"message":"Instance deleted"}}"#
    );
}

fn maria_key(id: &str, from_me: bool) -> MessageKey {
    MessageKey {
        remote_jid: "5511987654321@s.whatsapp.net".into(),
        from_me,
        id: id.into(),
        participant: None,
        remote_jid_alt: None,
        participant_alt: None,
        addressing_mode: None,
    }
}

fn sent_record() -> MessageRecord {
    MessageRecord {
        key: maria_key("3EB0A1B2C3D4E5F6A7B8C9", true),
        push_name: OWN_PUSH_NAME.into(),
        status: Some(MessageStatus::Pending),
        message: json!({ "conversation": "Hi Maria, your order shipped!" }),
        context_info: Some(json!({
            "mentionedJid": [],
            "groupMentions": [],
            "ephemeralSettingTimestamp": { "low": 1729353600, "high": 0, "unsigned": false },
            "disappearingMode": { "initiator": 0 }
        })),
        message_type: "conversation".into(),
        message_timestamp: 1729526400,
        instance_id: INSTANCE_ID.into(),
        source: "web".into(),
    }
}

#[test]
fn send_text_record_13_6() {
    let record = sent_record();
    assert_eq!(
        value(&record),
        json!({
          "key": { "remoteJid": "5511987654321@s.whatsapp.net", "fromMe": true, "id": "3EB0A1B2C3D4E5F6A7B8C9" },
          "pushName": "Você",
          "status": "PENDING",
          "message": { "conversation": "Hi Maria, your order shipped!" },
          "contextInfo": {
            "mentionedJid": [],
            "groupMentions": [],
            "ephemeralSettingTimestamp": { "low": 1729353600, "high": 0, "unsigned": false },
            "disappearingMode": { "initiator": 0 }
          },
          "messageType": "conversation",
          "messageTimestamp": 1729526400,
          "instanceId": INSTANCE_ID,
          "source": "web"
        })
    );
    keys_in_order(
        &record,
        &[
            "key",
            "pushName",
            "status",
            "message",
            "contextInfo",
            "messageType",
            "messageTimestamp",
            "instanceId",
            "source",
        ],
    );
    // Undefined status and contextInfo are omitted; a null contextInfo stays.
    let bare = MessageRecord {
        status: None,
        context_info: None,
        ..sent_record()
    };
    let v = value(&bare);
    assert!(v.get("status").is_none() && v.get("contextInfo").is_none());
    let null_ctx = MessageRecord {
        context_info: Some(Value::Null),
        ..sent_record()
    };
    assert_eq!(value(&null_ctx)["contextInfo"], Value::Null);
}

#[test]
fn whatsapp_numbers_13_8() {
    let items = vec![
        WhatsappNumberItem {
            jid: "120363025555555555@g.us".into(),
            exists: true,
            number: "120363025555555555@g.us".into(),
            name: Some("ACME Sales Team".into()),
            lid: None,
        },
        WhatsappNumberItem {
            jid: "5511987654321@s.whatsapp.net".into(),
            exists: true,
            number: "5511987654321".into(),
            name: Some("Maria".into()),
            lid: None,
        },
        WhatsappNumberItem {
            jid: "5511900000000@s.whatsapp.net".into(),
            exists: false,
            number: "5511900000000".into(),
            name: None,
            lid: None,
        },
    ];
    assert_eq!(
        value(&items),
        json!([
          { "jid": "120363025555555555@g.us", "exists": true, "number": "120363025555555555@g.us", "name": "ACME Sales Team" },
          { "jid": "5511987654321@s.whatsapp.net", "exists": true, "number": "5511987654321", "name": "Maria" },
          { "jid": "5511900000000@s.whatsapp.net", "exists": false, "number": "5511900000000" }
        ])
    );
}

#[test]
fn find_messages_13_9() {
    let records = vec![
        MessageRow {
            id: "cm2k0f9z80003abc".into(),
            key: maria_key("3EB0A1B2C3D4E5F6A7B8C9", true),
            push_name: "Você".into(),
            message_type: "conversation".into(),
            message: json!({ "conversation": "Hi Maria, your order shipped!" }),
            message_timestamp: 1729526400,
            instance_id: INSTANCE_ID.into(),
            source: "web".into(),
            context_info: Some(json!({ "mentionedJid": [], "groupMentions": [] })),
            message_update: vec![
                MessageUpdateStatus {
                    status: MessageStatus::DeliveryAck,
                },
                MessageUpdateStatus {
                    status: MessageStatus::Read,
                },
            ],
        },
        MessageRow {
            id: "cm2k0e1y70002abc".into(),
            key: maria_key("A5F2C07D1E9B3A4C5D6E7F8091A2B3C4", false),
            push_name: "Maria".into(),
            message_type: "conversation".into(),
            message: json!({ "conversation": "Any news on my order?" }),
            message_timestamp: 1729526300,
            instance_id: INSTANCE_ID.into(),
            source: "android".into(),
            context_info: None,
            message_update: vec![],
        },
    ];
    let response = FindMessagesResponse {
        messages: FindMessagesPage::new(7, 1, 2, records),
    };
    assert_eq!(
        value(&response),
        json!({
          "messages": {
            "total": 7,
            "pages": 4,
            "currentPage": 1,
            "records": [
              {
                "id": "cm2k0f9z80003abc",
                "key": { "id": "3EB0A1B2C3D4E5F6A7B8C9", "fromMe": true, "remoteJid": "5511987654321@s.whatsapp.net" },
                "pushName": "Você",
                "messageType": "conversation",
                "message": { "conversation": "Hi Maria, your order shipped!" },
                "messageTimestamp": 1729526400,
                "instanceId": INSTANCE_ID,
                "source": "web",
                "contextInfo": { "mentionedJid": [], "groupMentions": [] },
                "MessageUpdate": [ { "status": "DELIVERY_ACK" }, { "status": "READ" } ]
              },
              {
                "id": "cm2k0e1y70002abc",
                "key": { "id": "A5F2C07D1E9B3A4C5D6E7F8091A2B3C4", "fromMe": false, "remoteJid": "5511987654321@s.whatsapp.net" },
                "pushName": "Maria",
                "messageType": "conversation",
                "message": { "conversation": "Any news on my order?" },
                "messageTimestamp": 1729526300,
                "instanceId": INSTANCE_ID,
                "source": "android",
                "contextInfo": null,
                "MessageUpdate": []
              }
            ]
          }
        })
    );
    assert_eq!(FindMessagesPage::new(0, 1, 50, vec![]).pages, 0);
    assert_eq!(FindMessagesPage::new(50, 1, 50, vec![]).pages, 1);
    assert_eq!(FindMessagesPage::new(51, 1, 50, vec![]).pages, 2);
}

#[test]
fn webhook_row_13_10() {
    let mut headers = serde_json::Map::new();
    headers.insert("jwt_key".into(), json!("s3cr3t"));
    headers.insert("x-tenant".into(), json!("acme"));
    let events = vec![
        "MESSAGES_UPSERT".to_owned(),
        "MESSAGES_UPDATE".to_owned(),
        "CONNECTION_UPDATE".to_owned(),
        "QRCODE_UPDATED".to_owned(),
    ];
    let row = WebhookRow {
        id: "cm2k0h2x90004abc".into(),
        url: "https://hooks.acme.test/evolution".into(),
        headers: Some(headers),
        enabled: true,
        events: EventSubscription::from_request(true, Some(events)),
        webhook_by_events: true,
        webhook_base64: true,
        created_at: "2025-10-21T14:00:00.000Z".into(),
        updated_at: "2025-10-21T14:05:00.000Z".into(),
        instance_id: INSTANCE_ID.into(),
    };
    assert_eq!(
        value(&row),
        json!({
          "id": "cm2k0h2x90004abc",
          "url": "https://hooks.acme.test/evolution",
          "headers": { "jwt_key": "s3cr3t", "x-tenant": "acme" },
          "enabled": true,
          "events": ["MESSAGES_UPSERT", "MESSAGES_UPDATE", "CONNECTION_UPDATE", "QRCODE_UPDATED"],
          "webhookByEvents": true,
          "webhookBase64": true,
          "createdAt": "2025-10-21T14:00:00.000Z",
          "updatedAt": "2025-10-21T14:05:00.000Z",
          "instanceId": INSTANCE_ID
        })
    );
    assert_eq!(
        webhook_target(&row.url, true, EventName::MessagesUpsert),
        "https://hooks.acme.test/evolution/messages-upsert"
    );
    assert_eq!(
        webhook_target(&row.url, false, EventName::MessagesUpsert),
        row.url
    );
}

#[test]
fn settings_13_a() {
    let sent = json!({"rejectCall":true,"msgCall":"No calls","groupsIgnore":false,"alwaysOnline":true,"readMessages":false,"readStatus":false,"syncFullHistory":false});
    let response = SettingsSetResponse {
        settings: SettingsSetEcho {
            instance_name: "acme-sales".into(),
            settings: sent.clone(),
        },
    };
    assert_eq!(
        value(&response),
        json!({"settings":{"instanceName":"acme-sales","settings":sent}})
    );
    let row: SettingsRow = InstanceSettings {
        reject_call: true,
        msg_call: "No calls".into(),
        always_online: true,
        ..InstanceSettings::default()
    };
    assert_eq!(
        serde_json::to_string(&row).unwrap(),
        r#"{"rejectCall":true,"msgCall":"No calls","groupsIgnore":false,"alwaysOnline":true,"readMessages":false,"readStatus":false,"syncFullHistory":false,"wavoipToken":""}"#
    );
}

#[test]
fn small_acknowledgements() {
    assert_eq!(
        serde_json::to_string(&PresenceResponse {
            presence: Presence::Composing
        })
        .unwrap(),
        r#"{"presence":"composing"}"#
    );
    assert_eq!(
        serde_json::to_string(&MarkAsReadResponse::default()).unwrap(),
        r#"{"message":"Read messages","read":"success"}"#
    );
}

#[test]
fn messages_upsert_envelope_13_a() {
    let record = MessageRecord {
        key: maria_key("A5F2C07D1E9B3A4C5D6E7F8091A2B3C4", false),
        push_name: "Maria".into(),
        status: Some(MessageStatus::DeliveryAck),
        message: json!({ "conversation": "Any news on my order?", "messageContextInfo": { "...": "..." } }),
        context_info: Some(Value::Null),
        message_type: "conversation".into(),
        message_timestamp: 1729526300,
        instance_id: INSTANCE_ID.into(),
        source: "android".into(),
    };
    // 2025-10-21T14:05:00.123Z
    let date_time = format_date_time(1_761_055_500_123, 0);
    let envelope = WebhookEnvelope {
        event: EventName::MessagesUpsert,
        instance: "acme-sales",
        data: record,
        destination: "https://hooks.acme.test/evolution",
        date_time,
        sender: Some("5511912345678@s.whatsapp.net"),
        server_url: "https://evo.acme.test",
        apikey: envelope_apikey(true, "5C1E0E39-2B4E-4C6B-9D57-1A3F0B8E6D21"),
    };
    assert_eq!(
        value(&envelope),
        json!({
          "event": "messages.upsert",
          "instance": "acme-sales",
          "data": {
            "key": { "remoteJid": "5511987654321@s.whatsapp.net", "fromMe": false, "id": "A5F2C07D1E9B3A4C5D6E7F8091A2B3C4" },
            "pushName": "Maria",
            "status": "DELIVERY_ACK",
            "message": { "conversation": "Any news on my order?", "messageContextInfo": { "...": "..." } },
            "contextInfo": null,
            "messageType": "conversation",
            "messageTimestamp": 1729526300,
            "instanceId": INSTANCE_ID,
            "source": "android"
          },
          "destination": "https://hooks.acme.test/evolution",
          "date_time": "2025-10-21T14:05:00.123Z",
          "sender": "5511912345678@s.whatsapp.net",
          "server_url": "https://evo.acme.test",
          "apikey": "5C1E0E39-2B4E-4C6B-9D57-1A3F0B8E6D21"
        })
    );
    let text = serde_json::to_string(&envelope).unwrap();
    assert!(
        text.starts_with(r#"{"event":"messages.upsert","instance":"acme-sales","data":{"key":"#),
        "{text}"
    );
    assert!(
        text.ends_with(r#""destination":"https://hooks.acme.test/evolution","date_time":"2025-10-21T14:05:00.123Z","sender":"5511912345678@s.whatsapp.net","server_url":"https://evo.acme.test","apikey":"5C1E0E39-2B4E-4C6B-9D57-1A3F0B8E6D21"}"#),
        "{text}"
    );

    // Before the first open: no sender. Exposure off: apikey null.
    let early = WebhookEnvelope {
        event: EventName::QrcodeUpdated,
        instance: "acme-sales",
        data: QrcodeUpdated::limit_reached(),
        destination: "https://h",
        date_time: format_date_time(0, 0),
        sender: None,
        server_url: "https://evo",
        apikey: envelope_apikey(false, "T"),
    };
    assert_eq!(
        serde_json::to_string(&early).unwrap(),
        r#"{"event":"qrcode.updated","instance":"acme-sales","data":{"message":"QR code limit reached, please login again","statusCode":500},"destination":"https://h","date_time":"1970-01-01T00:00:00.000Z","server_url":"https://evo","apikey":null}"#
    );
    assert_eq!(envelope_apikey(true, ""), Some("Apikey not found"));
}

#[test]
fn date_time_is_local_wall_clock_with_z() {
    for (millis, offset, expected) in [
        (0, 0, "1970-01-01T00:00:00.000Z"),
        (1_761_055_500_123, 0, "2025-10-21T14:05:00.123Z"),
        // A UTC-3 server labels 11:05 local time with Z.
        (1_761_055_500_123, -180, "2025-10-21T11:05:00.123Z"),
        (951_782_400_000, 0, "2000-02-29T00:00:00.000Z"),
        (-1, 0, "1969-12-31T23:59:59.999Z"),
        (4_102_444_800_000, 0, "2100-01-01T00:00:00.000Z"),
    ] {
        assert_eq!(format_date_time(millis, offset), expected);
    }
}

#[test]
fn event_payloads_4_5_and_13_a() {
    let cases: Vec<(Value, Value)> = vec![
        (
            value(&ConnectionUpdate::open(
                "acme-sales",
                "5511912345678@s.whatsapp.net".into(),
                Some("ACME Sales".into()),
                Some("https://pps.whatsapp.net/…".into()),
            )),
            json!({"instance":"acme-sales","wuid":"5511912345678@s.whatsapp.net","profileName":"ACME Sales","profilePictureUrl":"https://pps.whatsapp.net/…","state":"open","statusReason":200}),
        ),
        (
            value(&ConnectionUpdate::connecting("acme-sales")),
            json!({"instance":"acme-sales","state":"connecting","statusReason":200}),
        ),
        (
            value(&ConnectionUpdate::close("acme-sales", 401)),
            json!({"instance":"acme-sales","state":"close","statusReason":401}),
        ),
        (
            value(&ConnectionUpdate::refused("acme-sales", None, None, None)),
            json!({"instance":"acme-sales","state":"refused","statusReason":428}),
        ),
        (
            value(&QrcodeUpdated::qr(
                "acme-sales",
                Some("WZYEH1YY".into()),
                "2@…".into(),
                "data:image/png;base64,…".into(),
            )),
            json!({"qrcode":{"instance":"acme-sales","pairingCode":"WZYEH1YY","code":"2@…","base64":"data:image/png;base64,…"}}),
        ),
        (
            value(&QrcodeUpdated::qr("a", None, "c".into(), "b".into())),
            json!({"qrcode":{"instance":"a","pairingCode":null,"code":"c","base64":"b"}}),
        ),
        (
            value(&MessagesUpdate {
                key_id: "3EB0A1B2C3D4E5F6A7B8C9".into(),
                remote_jid: "5511987654321@s.whatsapp.net".into(),
                from_me: true,
                participant: None,
                status: MessageStatus::Read,
                poll_updates: None,
                instance_id: "7c9e6679-…".into(),
                message_id: Some("cm2k0f9z80003abc".into()),
            }),
            json!({"keyId":"3EB0A1B2C3D4E5F6A7B8C9","remoteJid":"5511987654321@s.whatsapp.net","fromMe":true,"status":"READ","instanceId":"7c9e6679-…","messageId":"cm2k0f9z80003abc"}),
        ),
        (
            value(&PresenceUpdate {
                id: "5511987654321@s.whatsapp.net".into(),
                presences: BTreeMap::from([(
                    "5511987654321@s.whatsapp.net".to_owned(),
                    PresenceEntry {
                        last_known_presence: "composing".into(),
                        last_seen: None,
                    },
                )]),
            }),
            json!({"id":"5511987654321@s.whatsapp.net","presences":{"5511987654321@s.whatsapp.net":{"lastKnownPresence":"composing"}}}),
        ),
        (
            value(&InstanceLifecycle {
                instance_name: "acme-sales".into(),
                instance_id: INSTANCE_ID.into(),
            }),
            json!({"instanceName":"acme-sales","instanceId":INSTANCE_ID}),
        ),
    ];
    for (got, expected) in cases {
        assert_eq!(got, expected);
    }
    // The open payload keeps Evolution's key order.
    keys_in_order(
        &ConnectionUpdate::open("a", "w".into(), None, None),
        &[
            "instance",
            "wuid",
            "profileName",
            "profilePictureUrl",
            "state",
            "statusReason",
        ],
    );
    let statuses: Vec<Value> = (0..=5)
        .map(|n| value(&MessageStatus::from_baileys(n).unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            "ERROR",
            "PENDING",
            "SERVER_ACK",
            "DELIVERY_ACK",
            "READ",
            "PLAYED"
        ]
        .map(Value::from)
    );
    assert_eq!(MessageStatus::from_baileys(6), None);
    assert!(is_terminal_close(401) && is_terminal_close(406) && !is_terminal_close(408));
}

#[test]
fn contacts_and_chats_upsert_5_4() {
    // Message path: one object, `profilePicUrl` present even when unknown.
    let contact = ContactUpsert {
        remote_jid: "5511987654321@s.whatsapp.net".into(),
        push_name: Some("Maria".into()),
        profile_pic_url: None,
        instance_id: "inst-1".into(),
    };
    assert_eq!(
        value(&contact),
        json!({"remoteJid":"5511987654321@s.whatsapp.net","pushName":"Maria","profilePicUrl":null,"instanceId":"inst-1"})
    );
    keys_in_order(
        &contact,
        &["remoteJid", "pushName", "profilePicUrl", "instanceId"],
    );

    // An array; `name` is left out when unknown and the unread count defaults to 0.
    let chats: ChatsUpsert = vec![
        ChatUpsert {
            remote_jid: "5511987654321@s.whatsapp.net".into(),
            instance_id: "inst-1".into(),
            name: Some("Maria".into()),
            unread_messages: 0,
        },
        ChatUpsert {
            remote_jid: "120363025555555555@g.us".into(),
            instance_id: "inst-1".into(),
            name: None,
            unread_messages: 2,
        },
    ];
    assert_eq!(
        value(&chats),
        json!([
            {"remoteJid":"5511987654321@s.whatsapp.net","instanceId":"inst-1","name":"Maria","unreadMessages":0},
            {"remoteJid":"120363025555555555@g.us","instanceId":"inst-1","unreadMessages":2}
        ])
    );
    keys_in_order(
        &chats[0],
        &["remoteJid", "instanceId", "name", "unreadMessages"],
    );
}

#[test]
fn disconnection_object_is_baileys_last_disconnect_stringified() {
    use zapin_compat_evolution::response::disconnection_object;
    let text = disconnection_object(401, "Intentional Logout", "2025-10-21T14:05:00.000Z");
    // A JSON *string* in the row; its text is what `JSON.stringify(lastDisconnect)` writes.
    assert_eq!(
        text,
        r#"{"error":{"data":null,"isBoom":true,"isServer":false,"output":{"statusCode":401,"payload":{"statusCode":401,"error":"Unauthorized","message":"Intentional Logout"},"headers":{}}},"date":"2025-10-21T14:05:00.000Z"}"#
    );
    let server: serde_json::Value =
        serde_json::from_str(&disconnection_object(515, "restart", "x")).unwrap();
    assert_eq!(server["error"]["isServer"], true);
    assert_eq!(
        server["error"]["output"]["payload"],
        json!({"statusCode": 515, "error": "Unknown", "message": "An internal server error occurred"})
    );
}
