//! Cross-checks wa.proto against Baileys' WAProto: tests/interop/proto-vectors.mjs encodes sample
//! messages with Baileys' protobufjs types and writes the encoding plus the sample values; here
//! each encoding is decoded with our prost types and every sample value must appear under our
//! field name, at our enum value name. With every sample value distinct, a wrong field number or
//! type shows up as a missing value; a field we lack shows up as a shorter re-encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use prost::Message;
use serde_json::Value;
use zapin_protocol::proto::wa;

/// Our field name for a Baileys (camelCase) field name.
fn snake(name: &str) -> String {
    match name {
        "inlineInitialPayloadInE2EeMsg" => return "inline_initial_payload_in_e2ee_msg".into(),
        "localeLanguageIso6391" => return "locale_language_iso_639_1".into(),
        "localeCountryIso31661Alpha2" => return "locale_country_iso_3166_1_alpha_2".into(),
        "static" => return "r#static".into(),
        _ => {}
    }
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// prost's Debug name for a protobuf enum value name: `WIFI_UNKNOWN` -> `WifiUnknown`.
fn enum_variant(value: &str) -> String {
    value
        .split('_')
        .map(|part| {
            let mut cs = part.chars();
            match cs.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + &cs.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

/// Ways a scalar JSON value may be printed by prost's Debug.
fn renderings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => {
            let mut r = vec![format!("{s:?}"), enum_variant(s)];
            if let Ok(bytes) = hex::decode(s) {
                r.push(format!("{bytes:?}"));
            }
            r
        }
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        _ => vec![],
    }
}

/// Collects "field: value" patterns that must occur in the Debug output.
fn expectations(obj: &Value, out: &mut Vec<(String, Vec<String>)>) {
    let Value::Object(map) = obj else { return };
    for (key, value) in map {
        let field = snake(key);
        match value {
            Value::Object(_) => expectations(value, out),
            Value::Array(items) if items.iter().all(Value::is_object) => {
                for item in items {
                    expectations(item, out);
                }
            }
            Value::Array(items) => {
                // A repeated scalar prints as a list; strings as quoted strings.
                let list = items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => format!("{s:?}"),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                out.push((field.clone(), vec![format!("{field}: [{list}]")]));
            }
            scalar => {
                let pats = renderings(scalar)
                    .into_iter()
                    .map(|r| format!("{field}: Some({r})"))
                    .collect();
                out.push((field, pats));
            }
        }
    }
}

fn decode<M: Message + Default + std::fmt::Debug>(bytes: &[u8]) -> (String, usize) {
    let m = M::decode(bytes).unwrap();
    (format!("{m:?}"), m.encoded_len())
}

fn decode_as(ty: &str, bytes: &[u8]) -> (String, usize) {
    use wa::cert_chain::noise_certificate::Details;
    match ty {
        "Message" => decode::<wa::Message>(bytes),
        "HistorySync" => decode::<wa::HistorySync>(bytes),
        "ADVSignedDeviceIdentityHMAC" => decode::<wa::AdvSignedDeviceIdentityHmac>(bytes),
        "ADVSignedDeviceIdentity" => decode::<wa::AdvSignedDeviceIdentity>(bytes),
        "ADVDeviceIdentity" => decode::<wa::AdvDeviceIdentity>(bytes),
        "ADVKeyIndexList" => decode::<wa::AdvKeyIndexList>(bytes),
        "ADVSignedKeyIndexList" => decode::<wa::AdvSignedKeyIndexList>(bytes),
        "ClientPayload" => decode::<wa::ClientPayload>(bytes),
        "DeviceProps" => decode::<wa::DeviceProps>(bytes),
        "SyncdPatch" => decode::<wa::SyncdPatch>(bytes),
        "SyncdSnapshot" => decode::<wa::SyncdSnapshot>(bytes),
        "SyncActionData" => decode::<wa::SyncActionData>(bytes),
        "HandshakeMessage" => decode::<wa::HandshakeMessage>(bytes),
        "CertChain" => decode::<wa::CertChain>(bytes),
        "CertChain.NoiseCertificate.Details" => decode::<Details>(bytes),
        other => panic!("no prost type mapped for {other}"),
    }
}

fn check_file(json: &str) -> usize {
    let vectors: Vec<Value> = serde_json::from_str(json).unwrap();
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let (debug, len) = decode_as(v["type"].as_str().unwrap(), &bytes);
        assert_eq!(
            len,
            bytes.len(),
            "{name}: our schema dropped fields Baileys encoded\n{debug}"
        );
        let mut exp = Vec::new();
        expectations(&v["object"], &mut exp);
        assert!(!exp.is_empty(), "{name}: no values to check");
        for (field, patterns) in exp {
            assert!(
                patterns.iter().any(|p| debug.contains(p.as_str())),
                "{name}: field `{field}` expected one of {patterns:?}\nin {debug}"
            );
        }
    }
    vectors.len()
}

#[test]
fn message_vectors() {
    assert_eq!(
        check_file(include_str!("../../tests/vectors/proto/message.json")),
        16
    );
}

#[test]
fn history_sync_vectors() {
    assert_eq!(
        check_file(include_str!("../../tests/vectors/proto/history_sync.json")),
        1
    );
}

#[test]
fn adv_vectors() {
    assert_eq!(
        check_file(include_str!("../../tests/vectors/proto/adv.json")),
        5
    );
}

#[test]
fn client_payload_vectors() {
    assert_eq!(
        check_file(include_str!(
            "../../tests/vectors/proto/client_payload.json"
        )),
        3
    );
}

#[test]
fn app_state_vectors() {
    assert_eq!(
        check_file(include_str!("../../tests/vectors/proto/app_state.json")),
        3
    );
}

#[test]
fn noise_vectors() {
    assert_eq!(
        check_file(include_str!("../../tests/vectors/proto/noise.json")),
        3
    );
}

#[test]
fn camel_to_snake_and_enum_names() {
    assert_eq!(snake("fileEncSha256"), "file_enc_sha256");
    assert_eq!(snake("eSkeyId"), "e_skey_id");
    assert_eq!(enum_variant("WIFI_UNKNOWN"), "WifiUnknown");
    assert_eq!(enum_variant("E2EE"), "E2ee");
}
