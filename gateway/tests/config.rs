//! Configuration parsing: defaults, every rejected value, and secrets kept out of Debug output.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use zapin_gateway::config::{Database, LogLevel, Secret};
use zapin_gateway::{Config, ConfigError};

fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// The variable an error blames.
fn blamed(err: &ConfigError) -> String {
    match err {
        ConfigError::Invalid { var, .. }
        | ConfigError::InvalidSecret { var, .. }
        | ConfigError::Unsupported { var, .. }
        | ConfigError::Missing { var, .. } => var.to_string(),
        ConfigError::NotUnicode { var } => var.clone(),
        ConfigError::BadFile { var, .. } => var.to_string(),
    }
}

#[test]
fn defaults_with_an_empty_environment() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.listen_host, IpAddr::from([0, 0, 0, 0]));
    assert_eq!(c.server_port, 8080);
    assert_eq!(c.server_url, None);
    assert!(!c.disable_manager);
    assert_eq!(c.api_key.expose(), "BQYHJGJHJ");
    assert!(c.api_key_is_default);
    assert!(!c.expose_api_key_in_events);
    assert_eq!(c.database, Database::EmbeddedSqlite);
    assert_eq!(c.client_name, "evolution");
    assert!(c.redis.is_none());
    assert_eq!(c.redis_prefix, "zapin");
    assert_eq!(c.phone_client, "zapin");
    assert_eq!(c.phone_name, "Chrome");
    assert_eq!(c.qrcode_limit, 30);
    assert_eq!(c.del_instance_minutes, None);
    assert_eq!(c.send_resend_window, std::time::Duration::from_secs(300));
    assert_eq!(c.webhook_global_url, None);
    assert!(!c.webhook_global_by_events);
    assert!(c.webhook_global_events.is_empty());
    assert_eq!(c.webhook_request_timeout_ms, 30_000);
    assert_eq!(c.webhook_retry_max_attempts, 10);
    assert_eq!(c.webhook_retry_initial_delay_secs, 5);
    assert!(c.webhook_retry_exponential);
    assert_eq!(c.webhook_retry_max_delay_secs, 300);
    assert!((c.webhook_retry_jitter - 0.2).abs() < f64::EPSILON);
    assert_eq!(
        c.webhook_non_retryable_status,
        BTreeSet::from([400, 401, 403, 404, 422])
    );
    assert_eq!(c.log_level, LogLevel::Info);
    assert!(!c.log_webhooks && !c.log_websocket);
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.wa_ws_url, "wss://web.whatsapp.com/ws/chat");
    assert_eq!(
        hex::encode(c.wa_root_pubkey),
        "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b"
    );
    assert_eq!(c.wa_version_string(), "2.3000.1045649367");
    assert!(c.master_key.is_none());
}

#[test]
fn empty_values_count_as_unset() {
    let c = parse(&[
        ("SERVER_PORT", ""),
        ("AUTHENTICATION_API_KEY", ""),
        ("DATABASE_CONNECTION_URI", "  "),
        ("QRCODE_LIMIT", ""),
    ])
    .unwrap();
    assert_eq!(c, parse(&[]).unwrap());
}

#[test]
fn every_setting_is_read_from_its_variable() {
    let master = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let c = parse(&[
        ("ZAPIN_LISTEN_HOST", "::1"),
        ("SERVER_PORT", "9090"),
        ("SERVER_TYPE", "http"),
        ("SERVER_URL", "https://zapin.example.com"),
        ("SERVER_DISABLE_MANAGER", "TRUE"),
        ("AUTHENTICATION_API_KEY", "k3y"),
        ("AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES", "true"),
        ("DATABASE_PROVIDER", "postgresql"),
        ("DATABASE_CONNECTION_URI", "postgresql://u:p@db:5432/zapin"),
        ("DATABASE_CONNECTION_CLIENT_NAME", "tenant_a"),
        ("CACHE_REDIS_URI", "redis://cache:6379/1"),
        ("CACHE_REDIS_PREFIX_KEY", "evolution-cache"),
        ("CONFIG_SESSION_PHONE_CLIENT", "Acme"),
        ("CONFIG_SESSION_PHONE_NAME", "Firefox"),
        ("QRCODE_LIMIT", "5"),
        ("ZAPIN_SEND_RESEND_WINDOW_SECS", "0"),
        ("DEL_INSTANCE", "15"),
        ("WEBHOOK_GLOBAL_ENABLED", "true"),
        ("WEBHOOK_GLOBAL_URL", "http://hooks.example.com/in"),
        ("WEBHOOK_GLOBAL_WEBHOOK_BY_EVENTS", "true"),
        ("WEBHOOK_EVENTS_MESSAGES_UPSERT", "true"),
        ("WEBHOOK_EVENTS_QRCODE_UPDATED", "true"),
        ("WEBHOOK_EVENTS_CALL", "false"),
        ("WEBHOOK_REQUEST_TIMEOUT_MS", "1000"),
        ("WEBHOOK_RETRY_MAX_ATTEMPTS", "3"),
        ("WEBHOOK_RETRY_INITIAL_DELAY_SECONDS", "1"),
        ("WEBHOOK_RETRY_USE_EXPONENTIAL_BACKOFF", "false"),
        ("WEBHOOK_RETRY_MAX_DELAY_SECONDS", "60"),
        ("WEBHOOK_RETRY_JITTER_FACTOR", "0"),
        ("WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES", "400, 410"),
        ("LOG_LEVEL", "ERROR,WARN,DEBUG,WEBHOOKS"),
        ("ZAPIN_DATA_DIR", "/var/lib/zapin"),
        ("ZAPIN_WA_WS_URL", "ws://127.0.0.1:5222/ws/chat"),
        ("ZAPIN_WA_ROOT_PUBKEY", &"ab".repeat(32)),
        ("ZAPIN_WA_VERSION", "2.3000.1"),
        ("ZAPIN_MASTER_KEY", master),
    ])
    .unwrap();
    assert_eq!(c.listen_host, "::1".parse::<IpAddr>().unwrap());
    assert_eq!(c.server_port, 9090);
    assert_eq!(c.server_url.as_deref(), Some("https://zapin.example.com"));
    assert!(c.disable_manager);
    assert_eq!(c.api_key.expose(), "k3y");
    assert!(!c.api_key_is_default);
    assert!(c.expose_api_key_in_events);
    match &c.database {
        Database::Postgres(uri) => assert_eq!(uri.expose(), "postgresql://u:p@db:5432/zapin"),
        other => panic!("expected PostgreSQL, got {other:?}"),
    }
    assert_eq!(c.client_name, "tenant_a");
    assert_eq!(
        c.redis.as_ref().map(|u| u.expose()),
        Some("redis://cache:6379/1")
    );
    assert_eq!(c.redis_prefix, "evolution-cache");
    assert_eq!(c.phone_client, "Acme");
    assert_eq!(c.phone_name, "Firefox");
    assert_eq!(c.qrcode_limit, 5);
    assert_eq!(c.del_instance_minutes, Some(15));
    assert_eq!(c.send_resend_window, std::time::Duration::ZERO);
    assert_eq!(
        c.webhook_global_url.as_deref(),
        Some("http://hooks.example.com/in")
    );
    assert!(c.webhook_global_by_events);
    assert_eq!(
        c.webhook_global_events,
        BTreeSet::from(["MESSAGES_UPSERT", "QRCODE_UPDATED"])
    );
    assert_eq!(c.webhook_request_timeout_ms, 1000);
    assert_eq!(c.webhook_retry_max_attempts, 3);
    assert_eq!(c.webhook_retry_initial_delay_secs, 1);
    assert!(!c.webhook_retry_exponential);
    assert_eq!(c.webhook_retry_max_delay_secs, 60);
    assert_eq!(c.webhook_retry_jitter, 0.0);
    assert_eq!(c.webhook_non_retryable_status, BTreeSet::from([400, 410]));
    assert_eq!(c.log_level, LogLevel::Debug);
    assert!(c.log_webhooks && !c.log_websocket);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/zapin"));
    assert_eq!(c.wa_ws_url, "ws://127.0.0.1:5222/ws/chat");
    assert_eq!(c.wa_root_pubkey, [0xab; 32]);
    assert_eq!(c.wa_version, [2, 3000, 1]);
    assert_eq!(hex::encode(c.master_key.as_ref().unwrap().expose()), master);
}

#[test]
fn log_level_takes_the_most_verbose_category() {
    let level = |v: &str| parse(&[("LOG_LEVEL", v)]).unwrap().log_level;
    assert_eq!(level("ERROR"), LogLevel::Error);
    assert_eq!(level("ERROR,WARN"), LogLevel::Warn);
    assert_eq!(level("LOG"), LogLevel::Info);
    assert_eq!(level("warn,verbose"), LogLevel::Debug);
    assert_eq!(
        level("ERROR,WARN,DEBUG,INFO,LOG,VERBOSE,DARK,WEBHOOKS,WEBSOCKET"),
        LogLevel::Trace
    );
    let c = parse(&[("LOG_LEVEL", "WEBSOCKET")]).unwrap();
    assert_eq!(c.log_level, LogLevel::Error);
    assert!(c.log_websocket);
}

#[test]
fn redis_is_used_when_its_uri_is_set_unless_disabled() {
    let uri = ("CACHE_REDIS_URI", "redis://127.0.0.1:6379");
    assert!(parse(&[uri]).unwrap().redis.is_some());
    assert!(
        parse(&[uri, ("CACHE_REDIS_ENABLED", "false")])
            .unwrap()
            .redis
            .is_none()
    );
    assert!(
        parse(&[uri, ("CACHE_REDIS_ENABLED", "true")])
            .unwrap()
            .redis
            .is_some()
    );
}

#[test]
fn global_webhook_url_is_ignored_while_disabled() {
    let c = parse(&[("WEBHOOK_GLOBAL_URL", "http://hooks.example.com")]).unwrap();
    assert_eq!(c.webhook_global_url, None);
}

#[test]
fn del_instance_accepts_false() {
    let c = parse(&[("DEL_INSTANCE", "false")]).unwrap();
    assert_eq!(c.del_instance_minutes, None);
}

#[test]
fn every_bad_value_is_rejected_naming_its_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("ZAPIN_LISTEN_HOST", "localhost")], "ZAPIN_LISTEN_HOST"),
        (&[("SERVER_PORT", "http")], "SERVER_PORT"),
        (&[("SERVER_PORT", "65536")], "SERVER_PORT"),
        (&[("SERVER_PORT", "-1")], "SERVER_PORT"),
        (&[("SERVER_TYPE", "https")], "SERVER_TYPE"),
        (&[("SERVER_URL", "zapin.example.com")], "SERVER_URL"),
        (&[("SERVER_URL", "http://")], "SERVER_URL"),
        (
            &[("SERVER_DISABLE_MANAGER", "yes")],
            "SERVER_DISABLE_MANAGER",
        ),
        (
            &[("AUTHENTICATION_API_KEY", "two words")],
            "AUTHENTICATION_API_KEY",
        ),
        (
            &[("AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES", "1")],
            "AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES",
        ),
        (&[("DATABASE_PROVIDER", "mysql")], "DATABASE_PROVIDER"),
        (
            &[("DATABASE_CONNECTION_URI", "mysql://u:p@db/x")],
            "DATABASE_CONNECTION_URI",
        ),
        (&[("CACHE_REDIS_URI", "127.0.0.1:6379")], "CACHE_REDIS_URI"),
        (&[("CACHE_REDIS_ENABLED", "true")], "CACHE_REDIS_URI"),
        (&[("CACHE_REDIS_ENABLED", "on")], "CACHE_REDIS_ENABLED"),
        (&[("QRCODE_LIMIT", "0")], "QRCODE_LIMIT"),
        (&[("QRCODE_LIMIT", "many")], "QRCODE_LIMIT"),
        (
            &[("ZAPIN_SEND_RESEND_WINDOW_SECS", "5m")],
            "ZAPIN_SEND_RESEND_WINDOW_SECS",
        ),
        (
            &[("ZAPIN_SEND_RESEND_WINDOW_SECS", "-1")],
            "ZAPIN_SEND_RESEND_WINDOW_SECS",
        ),
        (&[("DEL_INSTANCE", "0")], "DEL_INSTANCE"),
        (&[("DEL_INSTANCE", "true")], "DEL_INSTANCE"),
        (&[("WEBHOOK_GLOBAL_ENABLED", "true")], "WEBHOOK_GLOBAL_URL"),
        (&[("WEBHOOK_GLOBAL_URL", "ftp://x")], "WEBHOOK_GLOBAL_URL"),
        (
            &[("WEBHOOK_GLOBAL_WEBHOOK_BY_EVENTS", "sometimes")],
            "WEBHOOK_GLOBAL_WEBHOOK_BY_EVENTS",
        ),
        (&[("WEBHOOK_EVENTS_CALL", "yes")], "WEBHOOK_EVENTS_CALL"),
        (
            &[("WEBHOOK_REQUEST_TIMEOUT_MS", "1.5")],
            "WEBHOOK_REQUEST_TIMEOUT_MS",
        ),
        (
            &[("WEBHOOK_RETRY_MAX_ATTEMPTS", "-3")],
            "WEBHOOK_RETRY_MAX_ATTEMPTS",
        ),
        (
            &[("WEBHOOK_RETRY_INITIAL_DELAY_SECONDS", "5s")],
            "WEBHOOK_RETRY_INITIAL_DELAY_SECONDS",
        ),
        (
            &[("WEBHOOK_RETRY_USE_EXPONENTIAL_BACKOFF", "0")],
            "WEBHOOK_RETRY_USE_EXPONENTIAL_BACKOFF",
        ),
        (
            &[("WEBHOOK_RETRY_MAX_DELAY_SECONDS", "x")],
            "WEBHOOK_RETRY_MAX_DELAY_SECONDS",
        ),
        (
            &[("WEBHOOK_RETRY_JITTER_FACTOR", "1.5")],
            "WEBHOOK_RETRY_JITTER_FACTOR",
        ),
        (
            &[("WEBHOOK_RETRY_JITTER_FACTOR", "NaN")],
            "WEBHOOK_RETRY_JITTER_FACTOR",
        ),
        (
            &[("WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES", "400,abc")],
            "WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES",
        ),
        (
            &[("WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES", "99")],
            "WEBHOOK_RETRY_NON_RETRYABLE_STATUS_CODES",
        ),
        (&[("LOG_LEVEL", "ERROR,LOUD")], "LOG_LEVEL"),
        (
            &[("ZAPIN_WA_WS_URL", "https://web.whatsapp.com")],
            "ZAPIN_WA_WS_URL",
        ),
        (&[("ZAPIN_WA_WS_URL", "wss://")], "ZAPIN_WA_WS_URL"),
        (&[("ZAPIN_WA_ROOT_PUBKEY", "1423")], "ZAPIN_WA_ROOT_PUBKEY"),
        (
            &[("ZAPIN_WA_ROOT_PUBKEY", &"zz".repeat(32))],
            "ZAPIN_WA_ROOT_PUBKEY",
        ),
        (
            &[("ZAPIN_WA_TLS_CA_FILE", "/nonexistent/zapin-ca.pem")],
            "ZAPIN_WA_TLS_CA_FILE",
        ),
        (&[("ZAPIN_WA_VERSION", "2.3000")], "ZAPIN_WA_VERSION"),
        (&[("ZAPIN_WA_VERSION", "2.3000.1.4")], "ZAPIN_WA_VERSION"),
        (&[("ZAPIN_WA_VERSION", "2.x.1")], "ZAPIN_WA_VERSION"),
        (&[("ZAPIN_MASTER_KEY", "abcd")], "ZAPIN_MASTER_KEY"),
        (
            &[("ZAPIN_MASTER_KEY", &"g0".repeat(32))],
            "ZAPIN_MASTER_KEY",
        ),
        (
            &[("ZAPIN_MASTER_KEY_PREVIOUS", "abcd")],
            "ZAPIN_MASTER_KEY_PREVIOUS",
        ),
    ];
    for (pairs, var) in cases {
        match parse(pairs) {
            Ok(_) => panic!("{pairs:?} was accepted"),
            Err(err) => {
                assert_eq!(
                    blamed(&err),
                    *var,
                    "{pairs:?} blamed the wrong variable: {err}"
                );
                assert!(
                    err.to_string().contains(var),
                    "message does not name {var}: {err}"
                );
            }
        }
    }
}

#[test]
fn errors_say_what_was_expected() {
    let err = parse(&[("SERVER_PORT", "80a")]).unwrap_err();
    assert_eq!(
        err,
        ConfigError::Invalid {
            var: "SERVER_PORT",
            value: "80a".into(),
            expected: "a TCP port number 0-65535",
        }
    );
    assert_eq!(
        err.to_string(),
        "SERVER_PORT=\"80a\" is invalid: expected a TCP port number 0-65535"
    );
}

#[test]
fn secrets_never_appear_in_debug_output_or_errors() {
    let api_key = "Sup3rSecretApiKey";
    let master = "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2";
    let c = parse(&[
        ("AUTHENTICATION_API_KEY", api_key),
        ("ZAPIN_MASTER_KEY", master),
        (
            "DATABASE_CONNECTION_URI",
            "postgres://zapin:dbPassw0rd@db/zapin",
        ),
        ("CACHE_REDIS_URI", "redis://:redisPassw0rd@cache:6379"),
    ])
    .unwrap();
    let debug = format!("{c:?} {c:#?}");
    for secret in [api_key, master, "5ec2e7", "dbPassw0rd", "redisPassw0rd"] {
        assert!(!debug.contains(secret), "Debug shows {secret}: {debug}");
    }
    assert!(debug.contains("postgres://zapin:***@db/zapin"), "{debug}");
    assert!(debug.contains("redis://:***@cache:6379"), "{debug}");

    let err = parse(&[("AUTHENTICATION_API_KEY", "bad key")]).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("bad key"));
    let err = parse(&[("ZAPIN_MASTER_KEY", "deadbeef")]).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("deadbeef"));
    let err = parse(&[("DATABASE_CONNECTION_URI", "mysql://root:hunter2@db/x")]).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
}

#[test]
fn api_key_comparison() {
    let key = Secret::new("abc123");
    assert!(key.matches(b"abc123"));
    assert!(!key.matches(b"abc124"));
    assert!(!key.matches(b"abc12"));
    assert!(!key.matches(b""));
}

#[test]
fn tls_ca_file_adds_trust_anchors_and_a_bad_one_names_the_variable() {
    assert!(parse(&[]).unwrap().wa_tls.extra_roots().is_empty());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "1", "-newkey", "ec"])
        .args([
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-subj",
            "/CN=proxy CA",
        ])
        .arg("-keyout")
        .arg(dir.path().join("ca.key"))
        .arg("-out")
        .arg(&ca)
        .status()
        .expect("the openssl CLI is needed for this test");
    assert!(ok.success());
    let c = parse(&[("ZAPIN_WA_TLS_CA_FILE", ca.to_str().unwrap())]).unwrap();
    assert_eq!(c.wa_tls.extra_roots().len(), 1);

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "no certificates here\n").unwrap();
    let err = parse(&[("ZAPIN_WA_TLS_CA_FILE", junk.to_str().unwrap())]).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::BadFile {
                var: "ZAPIN_WA_TLS_CA_FILE",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}

#[test]
fn metrics_access_and_log_format() {
    use zapin_gateway::config::LogFormat;
    let c = parse(&[]).unwrap();
    assert!(!c.metrics.enabled);
    assert!(!c.metrics.auth_required);
    assert_eq!(c.metrics.allowed_ips, None);
    assert_eq!(c.log_format, LogFormat::Text);

    let c = parse(&[
        ("PROMETHEUS_METRICS", "true"),
        ("METRICS_AUTH_REQUIRED", "TRUE"),
        ("METRICS_USER", "u"),
        ("METRICS_PASSWORD", "p"),
        ("METRICS_ALLOWED_IPS", " 127.0.0.1, ::ffff:10.0.0.5 ,,::1"),
        ("ZAPIN_LOG_FORMAT", "JSON"),
    ])
    .unwrap();
    assert!(c.metrics.enabled && c.metrics.auth_required);
    assert_eq!(c.metrics.user, Some(Secret::new("u")));
    assert_eq!(c.metrics.password, Some(Secret::new("p")));
    // IPv4-mapped addresses are compared as the IPv4 address a peer shows.
    let ips: Vec<IpAddr> = ["127.0.0.1", "10.0.0.5", "::1"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(c.metrics.allowed_ips, Some(ips));
    assert_eq!(c.log_format, LogFormat::Json);
    assert!(
        !format!("{c:?}").contains("\"p\""),
        "the password stays out of Debug"
    );

    assert_eq!(
        parse(&[("METRICS_ALLOWED_IPS", "")])
            .unwrap()
            .metrics
            .allowed_ips,
        None
    );
    for (var, value) in [
        ("METRICS_ALLOWED_IPS", "127.0.0.1,10.0.0.0/8"),
        ("METRICS_ALLOWED_IPS", "localhost"),
        ("PROMETHEUS_METRICS", "yes"),
        ("METRICS_AUTH_REQUIRED", "1"),
        ("ZAPIN_LOG_FORMAT", "logfmt"),
    ] {
        let err = parse(&[(var, value)]).unwrap_err();
        assert_eq!(blamed(&err), var, "{var}={value}");
    }
}
