//! Error envelopes serialise to the exact strings of contract §1.3, §1.4, §2, §13.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use serde_json::json;
use zapin_compat_evolution::{ConnectErrorBody, ErrorEnvelope, PropertyError};

fn text(e: &impl serde::Serialize) -> String {
    serde_json::to_string(e).unwrap()
}

#[test]
fn envelopes_match_contract_strings() {
    let cases: Vec<(ErrorEnvelope, u16, &str)> = vec![
        (
            ErrorEnvelope::unauthorized(),
            401,
            r#"{"status":401,"error":"Unauthorized","response":{"message":"Unauthorized"}}"#,
        ),
        (
            ErrorEnvelope::instance_not_found("acme-salez"),
            404,
            r#"{"status":404,"error":"Not Found","response":{"message":["The \"acme-salez\" instance does not exist"]}}"#,
        ),
        (
            ErrorEnvelope::name_in_use("acme-sales"),
            403,
            r#"{"status":403,"error":"Forbidden","response":{"message":["This name \"acme-sales\" is already in use."]}}"#,
        ),
        (
            ErrorEnvelope::cannot_route("get", "/path?x=1"),
            404,
            r#"{"status":404,"error":"Not Found","response":{"message":["Cannot GET /path?x=1"]}}"#,
        ),
        (
            ErrorEnvelope::bad_request(["Text is required"]),
            400,
            r#"{"status":400,"error":"Bad Request","response":{"message":["Text is required"]}}"#,
        ),
        (
            ErrorEnvelope::validation(vec!["instance requires property \"text\"".into()]),
            400,
            r#"{"status":400,"error":"Bad Request","response":{"message":[["instance requires property \"text\""]]}}"#,
        ),
        (
            ErrorEnvelope::validation_properties(vec![PropertyError {
                property: "instance".into(),
                message: "instance requires property \"subject\"".into(),
            }]),
            400,
            r#"{"status":400,"error":"Bad Request","response":{"message":[{"property":"instance","message":"instance requires property \"subject\""}]}}"#,
        ),
        (
            ErrorEnvelope::bad_request_objects(vec![json!({
                "jid": "5511900000000@s.whatsapp.net", "exists": false, "number": "5511900000000"
            })]),
            400,
            r#"{"status":400,"error":"Bad Request","response":{"message":[{"exists":false,"jid":"5511900000000@s.whatsapp.net","number":"5511900000000"}]}}"#,
        ),
        (
            ErrorEnvelope::instance_not_connected("acme-sales"),
            400,
            r#"{"status":400,"error":"Bad Request","response":{"message":["The \"acme-sales\" instance is not connected"]}}"#,
        ),
        (
            ErrorEnvelope::instance_name_not_provided(),
            400,
            r#"{"status":400,"error":"Bad Request","response":{"message":["\"instanceName\" not provided."]}}"#,
        ),
        (
            ErrorEnvelope::internal(["Error creating group", "boom"]),
            500,
            r#"{"status":500,"error":"Internal Server Error","response":{"message":["Error creating group","boom"]}}"#,
        ),
        (
            ErrorEnvelope::internal_text("Trigger value is required"),
            500,
            r#"{"status":500,"error":"Internal Server Error","response":{"message":"Trigger value is required"}}"#,
        ),
        (
            ErrorEnvelope::internal_text("Not allowed by CORS"),
            500,
            r#"{"status":500,"error":"Internal Server Error","response":{"message":"Not allowed by CORS"}}"#,
        ),
        (
            ErrorEnvelope::body_parser(413, "request entity too large"),
            413,
            r#"{"status":413,"error":"Internal Server Error","response":{"message":"request entity too large"}}"#,
        ),
        (
            ErrorEnvelope::forbidden(["x"]),
            403,
            r#"{"status":403,"error":"Forbidden","response":{"message":["x"]}}"#,
        ),
        (
            ErrorEnvelope::not_found(["Group not found"]),
            404,
            r#"{"status":404,"error":"Not Found","response":{"message":["Group not found"]}}"#,
        ),
    ];
    for (envelope, status, expected) in cases {
        assert_eq!(envelope.status, status, "{expected}");
        assert_eq!(text(&envelope), expected);
    }
}

#[test]
fn whatsapp_numbers_raw_shape_has_no_response_wrapper() {
    let raw = ErrorEnvelope::validation(vec!["numbers does not meet minimum length of 1".into()])
        .into_raw();
    assert_eq!(
        text(&raw),
        r#"{"status":400,"error":"Bad Request","message":[["numbers does not meet minimum length of 1"]]}"#
    );
}

#[test]
fn connect_and_restart_errors_are_200_bodies() {
    assert_eq!(
        text(&ConnectErrorBody::object_object()),
        r#"{"error":true,"message":"[object Object]"}"#
    );
    assert_eq!(
        text(&ConnectErrorBody::new("instance not in memory")),
        r#"{"error":true,"message":"instance not in memory"}"#
    );
}

#[test]
fn envelope_is_a_std_error() {
    let e: Box<dyn std::error::Error> = Box::new(ErrorEnvelope::unauthorized());
    assert_eq!(e.to_string(), "401 Unauthorized");
}
