//! Operations endpoints against a running `zapin serve` wired to the simulator: `/metrics`
//! after real traffic (and who may read it), the health probes, request ids and JSON logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::eventually;
use common::serve::Serve;
use serde_json::{Value, json};
use zapin_sim::{RunningSim, SimConfig};

const API_KEY: &str = "ops-test-key";
const METRICS_USER: &str = "scraper";
const METRICS_PASSWORD: &str = "scrape-secret";

struct World {
    sim: RunningSim,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl World {
    async fn new() -> Self {
        let sim = zapin_sim::run(SimConfig {
            seed: Some(31),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        Self {
            sim,
            dir: tempfile::tempdir().unwrap(),
            client: reqwest::Client::new(),
        }
    }

    async fn serve(&self, extra: &[(&str, &str)]) -> Serve {
        let mut env: Vec<(String, String)> = vec![
            ("AUTHENTICATION_API_KEY".into(), API_KEY.into()),
            (
                "ZAPIN_DATA_DIR".into(),
                self.dir.path().display().to_string(),
            ),
            ("ZAPIN_WA_WS_URL".into(), self.sim.ws_url()),
            (
                "ZAPIN_WA_ROOT_PUBKEY".into(),
                hex::encode(self.sim.root_public_key().0),
            ),
            ("LOG_LEVEL".into(), "ERROR,WARN,INFO".into()),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Serve::start(&env)
        })
        .await
        .unwrap()
    }

    async fn api(
        &self,
        serve: &Serve,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", serve.url))
            .header("apikey", API_KEY);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn sim_post(&self, path: &str, body: Value) -> Value {
        let res = self
            .client
            .post(format!("{}{path}", self.sim.http_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap()
    }

    async fn scrape(&self, serve: &Serve) -> String {
        let res = self
            .client
            .get(format!("{}/metrics", serve.url))
            .basic_auth(METRICS_USER, Some(METRICS_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        res.text().await.unwrap()
    }
}

/// The value of the series `name{labels}` exactly as written (labels in declaration order).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn metrics_after_real_traffic_with_bounded_labels() {
    let world = World::new().await;
    let serve = world
        .serve(&[
            ("PROMETHEUS_METRICS", "true"),
            ("METRICS_AUTH_REQUIRED", "true"),
            ("METRICS_USER", METRICS_USER),
            ("METRICS_PASSWORD", METRICS_PASSWORD),
        ])
        .await;
    let url = format!("{}/metrics", serve.url);

    // Who may scrape: nobody without credentials, the metrics user, the operator key.
    let anonymous = world.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    assert_eq!(anonymous.text().await.unwrap(), "Unauthorized");
    let wrong = world
        .client
        .get(&url)
        .basic_auth(METRICS_USER, Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let token_is_not_enough = world
        .client
        .get(&url)
        .header("apikey", "not-the-operator-key")
        .send()
        .await
        .unwrap();
    assert_eq!(token_is_not_enough.status().as_u16(), 401);
    let operator = world
        .client
        .get(&url)
        .header("apikey", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status().as_u16(), 200);

    // Traffic: an instance paired with a phone, a message each way, an unknown route.
    let owner = world
        .sim_post("/sim/accounts", json!({"push_name": "owner"}))
        .await["phone"]
        .as_str()
        .unwrap()
        .to_owned();
    let contact = world
        .sim_post("/sim/accounts", json!({"push_name": "contact"}))
        .await["phone"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, created) = world
        .api(
            &serve,
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({"instanceName": "metrics-secret-name", "integration": "WHATSAPP-BAILEYS"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let code = eventually("a QR from connect", || async {
        let (_, body) = world
            .api(
                &serve,
                reqwest::Method::GET,
                "/instance/connect/metrics-secret-name",
                None,
            )
            .await;
        body["code"].as_str().map(str::to_owned)
    })
    .await;
    world
        .sim_post(&format!("/sim/accounts/{owner}/scan"), json!({"qr": code}))
        .await;
    eventually("the session open", || async {
        let (_, body) = world
            .api(
                &serve,
                reqwest::Method::GET,
                "/instance/connectionState/metrics-secret-name",
                None,
            )
            .await;
        (body["instance"]["state"] == "open").then_some(())
    })
    .await;
    let (status, sent) = world
        .api(
            &serve,
            reqwest::Method::POST,
            "/message/sendText/metrics-secret-name",
            Some(json!({"number": contact, "text": "hello metrics"})),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    world
        .sim_post(
            &format!("/sim/accounts/{contact}/messages"),
            json!({"to": format!("{owner}@s.whatsapp.net"), "text": "hi back"}),
        )
        .await;
    let missing = world
        .client
        .get(format!("{}/no/such/route", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // The counters fed by events arrive asynchronously: wait for them in the scrape.
    let text = eventually("message and ack metrics", || async {
        let text = world.scrape(&serve).await;
        let ready = value(&text, r#"zapin_messages_total{direction="in"}"#) >= Some(1.0)
            && value(&text, "zapin_send_ack_seconds_count") >= Some(1.0);
        ready.then_some(text)
    })
    .await;

    assert_eq!(
        value(&text, r#"zapin_sessions{state="open"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"zapin_sessions{state="connecting"}"#),
        Some(0.0)
    );
    assert!(value(&text, "zapin_connects_total") >= Some(1.0), "{text}");
    assert_eq!(
        value(&text, r#"zapin_messages_total{direction="out"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"zapin_http_requests_total{method="POST",route="/instance/create",status="201"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"zapin_http_requests_total{method="POST",route="/message/sendText/{instance}",status="201"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"zapin_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0)
    );
    assert!(
        value(
            &text,
            r#"zapin_http_requests_total{method="GET",route="/metrics",status="401"}"#
        ) >= Some(3.0)
    );
    assert!(
        value(
            &text,
            r#"zapin_http_request_duration_seconds_count{method="GET",route="/instance/connectionState/{instance}"}"#
        ) >= Some(1.0)
    );
    assert!(text.contains(
        r#"zapin_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/instance/create"} 1"#
    ) || text.contains(
        r#"zapin_http_request_duration_seconds_bucket{method="POST",route="/instance/create",le="+Inf"} 1"#
    ), "{text}");
    assert!(value(&text, "zapin_webhook_outbox_depth").is_some());
    assert!(value(&text, "zapin_webhook_dead_letter_depth").is_some());
    assert!(value(&text, "process_resident_memory_bytes") > Some(1_000_000.0));
    assert!(value(&text, "process_cpu_seconds_total") > Some(0.0));
    // Bounded cardinality: no instance name, no raw path in any series.
    assert!(!text.contains("metrics-secret-name"), "{text}");
    assert!(!text.contains("/no/such/route"), "{text}");
    drop(serve.stop());

    // The allow-list: another peer address is refused before any credentials are looked at.
    let serve = world
        .serve(&[
            ("PROMETHEUS_METRICS", "true"),
            ("METRICS_ALLOWED_IPS", "10.9.9.9, 192.0.2.1"),
        ])
        .await;
    let refused = world
        .client
        .get(format!("{}/metrics", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(refused.text().await.unwrap(), "Forbidden: IP not allowed");
    drop(serve.stop());
    let serve = world
        .serve(&[
            ("PROMETHEUS_METRICS", "true"),
            ("METRICS_ALLOWED_IPS", "127.0.0.1"),
        ])
        .await;
    let allowed = world
        .client
        .get(format!("{}/metrics", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
    let (status, log) = serve.stop();
    assert!(status.success(), "{log}");
}

#[tokio::test]
async fn metrics_are_off_unless_enabled_and_probes_answer() {
    let world = World::new().await;
    let serve = world.serve(&[]).await;
    let res = world
        .client
        .get(format!("{}/metrics", serve.url))
        .header("apikey", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["response"]["message"][0], "Cannot GET /metrics",
        "{body}"
    );

    let live = world
        .client
        .get(format!("{}/health/live", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(live.json::<Value>().await.unwrap()["status"], "ok");
    let ready = world
        .client
        .get(format!("{}/health/ready", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(
        ready,
        json!({"status": "ok", "checks": {"database": "ok", "sessions": "ok"}})
    );
    let health = world
        .client
        .get(format!("{}/v1/health", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let (status, log) = serve.stop();
    assert!(status.success(), "{log}");
}

/// The app without an engine, on an ephemeral port, and its database handle.
async fn start_db_only() -> (String, zapin_gateway::db::Db, tempfile::TempDir) {
    use zapin_gateway::db::{Db, DbOptions};
    let config = zapin_gateway::Config::from_env([("AUTHENTICATION_API_KEY", API_KEY)]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite_file(
        &dir.path().join("zapin.sqlite3"),
        zapin_gateway::webhook::Routing::default(),
        &DbOptions::default(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = zapin_gateway::app(zapin_gateway::AppState::new(config, db.clone()));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), db, dir)
}

#[tokio::test]
async fn readiness_is_503_until_sessions_are_restored_and_while_the_database_is_gone() {
    let (base, db, _dir) = start_db_only().await;
    let client = reqwest::Client::new();
    // No engine attached: the stored sessions were never restored.
    let res = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "unavailable", "checks": {"database": "ok", "sessions": "not restored"}})
    );
    // The database goes away: named as the failing check; liveness does not care.
    db.close().await;
    let res = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(
        res.json::<Value>().await.unwrap()["checks"]["database"],
        "unreachable"
    );
    let live = client
        .get(format!("{base}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(
        live.json::<Value>().await.unwrap(),
        json!({"status": "ok", "checks": {"process": "ok"}})
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let (base, _db, _dir) = start_db_only().await;
    let client = reqwest::Client::new();
    let id_of = |res: &reqwest::Response| {
        res.headers()
            .get("x-zapin-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // Generated: a UUID, different each time, on successes, 401s and unknown routes alike.
    let mut seen = std::collections::HashSet::new();
    for (path, status) in [
        ("/", 200),
        ("/instance/fetchInstances", 401),
        ("/no/such/route", 404),
    ] {
        let res = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
        let id = id_of(&res).unwrap_or_else(|| panic!("{path}: no request id"));
        assert_eq!(id.len(), 36, "{id}");
        assert!(seen.insert(id));
    }
    // A well-formed incoming id is kept; a malformed one is replaced.
    let res = client
        .get(format!("{base}/v1/health"))
        .header("x-zapin-request-id", "caller-trace.42")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&res).as_deref(), Some("caller-trace.42"));
    let res = client
        .get(format!("{base}/v1/health"))
        .header("x-zapin-request-id", "has spaces <and> markup")
        .send()
        .await
        .unwrap();
    let id = id_of(&res).unwrap();
    assert_ne!(id, "has spaces <and> markup");
    assert_eq!(id.len(), 36);
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let world = World::new().await;
    let serve = world
        .serve(&[
            ("ZAPIN_LOG_FORMAT", "json"),
            ("LOG_LEVEL", "ERROR,WARN,INFO,DEBUG"),
        ])
        .await;
    let res = world
        .client
        .get(format!("{}/instance/fetchInstances", serve.url))
        .header("apikey", API_KEY)
        .header("x-zapin-request-id", "json-log-probe-7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (status, log) = serve.stop();
    assert!(status.success(), "{log}");
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "serving"),
        "{log}"
    );
    let done = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "json-log-probe-7")
        .unwrap_or_else(|| panic!("no line of the request: {log}"));
    assert_eq!(done["span"]["route"], "/instance/fetchInstances");
    assert_eq!(done["fields"]["status"], 200);
}
