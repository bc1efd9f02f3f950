//! Tenants, keys, quotas and the tenancy documents through the real HTTP app: isolation between
//! tenants over the whole route table, 429s with their headers, exact charging under concurrency
//! (in process and on Redis, one node and two), and counters surviving a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use zapin_gateway::db::Db;
use zapin_gateway::tenancy::Tenancy;
use zapin_gateway::webhook::Routing;
use zapin_gateway::{AppState, Config, app};

use common::{TestDb, backends};

const GLOBAL: &str = "global-test-key";
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const STARTER: &str = r#"{"name":"starter","quotas":{"message_send":{"day":100},"api_call":{"minute":600,"month":100000},"instance_create":{"total":2},"bot_create":{"total":1}},"price_cents":1900,"overage_cents":{"message_send":2}}"#;

struct Node {
    base: String,
    client: reqwest::Client,
    tenancy: Arc<Tenancy>,
    server: tokio::task::JoinHandle<()>,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn redis_url() -> Option<String> {
    let url = std::env::var("ZAPIN_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    if std::net::TcpStream::connect("127.0.0.1:6379").is_ok() || !url.contains("127.0.0.1:6379") {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but Redis is unreachable (ZAPIN_TEST_REDIS_URL)"
    );
    eprintln!("skipping: no Redis at {url}");
    None
}

fn config(data_dir: &std::path::Path, redis: Option<(&str, &str)>) -> Config {
    let mut vars = vec![
        ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
        ("ZAPIN_MASTER_KEY".to_owned(), MASTER_KEY.to_owned()),
        ("ZAPIN_DATA_DIR".to_owned(), data_dir.display().to_string()),
    ];
    if let Some((url, prefix)) = redis {
        vars.push(("CACHE_REDIS_URI".to_owned(), url.to_owned()));
        vars.push(("CACHE_REDIS_PREFIX_KEY".to_owned(), prefix.to_owned()));
    }
    Config::from_env(vars).unwrap()
}

impl Node {
    async fn start(db: &Db, data_dir: &std::path::Path, redis: Option<(&str, &str)>) -> Self {
        let config = config(data_dir, redis);
        let tenancy = Tenancy::start(&config, db).await.unwrap();
        let state = AppState::new(config, db.clone()).with_tenancy(tenancy.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(state);
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            tenancy,
            server,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.header("apikey", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        self.tenancy.shutdown().await;
    }
}

/// A plan and a tenant through the admin API; returns (tenant id, key).
async fn tenant(node: &Node, name: &str, plan: Option<&str>) -> (String, String) {
    if let Some(plan) = plan {
        let r = node
            .call(
                Method::POST,
                "/admin/plans",
                Some(GLOBAL),
                Some(serde_json::from_str(plan).unwrap()),
            )
            .await;
        assert!(
            r.status == 201 || r.status == 409,
            "{} {}",
            r.status,
            r.text
        );
    }
    let plan_name: String = plan
        .map(|p| {
            serde_json::from_str::<Value>(p).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .unwrap_or_else(|| "starter".to_owned());
    let r = node
        .call(
            Method::POST,
            "/admin/tenants",
            Some(GLOBAL),
            Some(json!({"name": name, "plan": plan_name})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], name);
    let key = r.body["apiKey"].as_str().unwrap().to_owned();
    assert!(key.starts_with("zpk_"));
    (r.body["id"].as_str().unwrap().to_owned(), key)
}

async fn create_instance(node: &Node, key: &str, name: &str) -> Reply {
    node.call(
        Method::POST,
        "/instance/create",
        Some(key),
        Some(json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_only_ever_see_their_own_instances() {
    for tdb in backends(Routing::default()).await {
        let data = tempfile::tempdir().unwrap();
        let node = Node::start(&tdb.db, data.path(), None).await;
        let (acme_id, acme) = tenant(&node, "acme", Some(STARTER)).await;
        let (beta_id, beta) = tenant(&node, "beta", None).await;

        // Admin routes: the operator only.
        for key in [Some(acme.as_str()), Some("wrong"), None] {
            let r = node.call(Method::GET, "/admin/tenants", key, None).await;
            assert_eq!(r.status, 401, "{key:?}");
        }
        let r = node
            .call(
                Method::POST,
                "/admin/plans",
                Some(GLOBAL),
                Some(json!({"name": "x", "quotas": {"sms": {}}})),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);

        let r = create_instance(&node, &acme, "acme-1").await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.header("x-zapin-tenant-id"), Some(acme_id.as_str()));
        assert!(
            r.header("x-zapin-request-id")
                .is_some_and(|v| v.len() == 36)
        );
        assert_eq!(r.header("x-ratelimit-limit"), Some("2"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some("1"));
        assert_eq!(r.header("x-ratelimit-reset"), Some("0"));
        let acme_token = r.body["hash"].as_str().unwrap().to_owned();
        let r = create_instance(&node, &beta, "beta-1").await;
        assert_eq!(r.status, 201, "{}", r.text);
        let beta_instance_id = r.body["instance"]["instanceId"]
            .as_str()
            .unwrap()
            .to_owned();
        let beta_token = r.body["hash"].as_str().unwrap().to_owned();
        // The operator's own instance.
        let r = create_instance(&node, GLOBAL, "op-1").await;
        assert_eq!(r.status, 201);
        assert_eq!(r.header("x-zapin-tenant-id"), None);
        assert!(r.header("x-zapin-request-id").is_some());

        // A name taken by another tenant: Evolution's "name already in use".
        let r = create_instance(&node, &beta, "acme-1").await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.body["response"]["message"][0],
            "This name \"acme-1\" is already in use."
        );

        // fetchInstances lists only the tenant's own, at / and under /v1/.
        for prefix in ["", "/v1"] {
            let r = node
                .call(
                    Method::GET,
                    &format!("{prefix}/instance/fetchInstances"),
                    Some(&acme),
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let names: Vec<&str> = r
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["acme-1"], "{prefix}");
        }
        let r = node
            .call(Method::GET, "/instance/fetchInstances", Some(GLOBAL), None)
            .await;
        assert_eq!(r.body.as_array().unwrap().len(), 3);
        let foreign = node
            .call(
                Method::GET,
                "/instance/fetchInstances?instanceName=beta-1",
                Some(&acme),
                None,
            )
            .await;
        let missing = node
            .call(
                Method::GET,
                "/instance/fetchInstances?instanceName=nobody",
                Some(&acme),
                None,
            )
            .await;
        assert_eq!(foreign.status, 404);
        assert_eq!(foreign.text.replace("beta-1", "nobody"), missing.text);

        // The whole route table, with acme's key and with acme-1's token, against beta-1: never
        // a 2xx, never beta's data, and exactly what a missing instance gets.
        let secrets = [
            beta_instance_id.as_str(),
            beta_token.as_str(),
            beta_id.as_str(),
        ];
        let mut walked = 0;
        for route in zapin_tenancy::routes::all() {
            if !route.path.contains("{instance}") {
                continue;
            }
            let method = Method::from_bytes(route.method.as_bytes()).unwrap();
            for prefix in ["", "/v1"] {
                for key in [acme.as_str(), acme_token.as_str()] {
                    let path = |name: &str| {
                        format!(
                            "{prefix}{}",
                            route.path.replace("{instance}", name).replace("{}", "x")
                        )
                    };
                    let body = Some(json!({}));
                    let r = node
                        .call(method.clone(), &path("beta-1"), Some(key), body.clone())
                        .await;
                    assert!(
                        !(200..300).contains(&r.status),
                        "{} {} → {}",
                        route.method,
                        path("beta-1"),
                        r.status
                    );
                    for secret in secrets {
                        assert!(
                            !r.text.contains(secret),
                            "{} leaks {secret}: {}",
                            path("beta-1"),
                            r.text
                        );
                    }
                    let m = node
                        .call(method.clone(), &path("no-such-1"), Some(key), body)
                        .await;
                    if key == acme {
                        assert_eq!(r.status, m.status, "{} {}", route.method, path("beta-1"));
                        assert_eq!(
                            r.text.replace("beta-1", "no-such-1"),
                            m.text,
                            "{}",
                            path("beta-1")
                        );
                    }
                    walked += 1;
                }
            }
        }
        assert!(walked > 500, "{walked}");

        // Own instance: works with the tenant key, the operator key and its token.
        for key in [acme.as_str(), GLOBAL, acme_token.as_str()] {
            let r = node
                .call(Method::GET, "/webhook/find/acme-1", Some(key), None)
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }

        // Suspension: 403 for the key and for the tenant's instance tokens.
        let r = node
            .call(
                Method::PATCH,
                &format!("/admin/tenants/{acme_id}"),
                Some(GLOBAL),
                Some(json!({"suspended": true})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = node
            .call(Method::GET, "/webhook/find/acme-1", Some(&acme), None)
            .await;
        assert_eq!(r.status, 403);
        assert_eq!(r.body["response"]["message"][0], "Tenant suspended");
        let r = node
            .call(Method::GET, "/webhook/find/acme-1", Some(&acme_token), None)
            .await;
        assert_eq!(r.status, 403);
        node.call(
            Method::PATCH,
            &format!("/admin/tenants/{acme_id}"),
            Some(GLOBAL),
            Some(json!({"suspended": false})),
        )
        .await;

        // total: 2 instances at once; deleting one frees its slot.
        assert_eq!(create_instance(&node, &acme, "acme-2").await.status, 201);
        let r = create_instance(&node, &acme, "acme-3").await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert_eq!(
            r.body["response"]["message"][0],
            "Quota exceeded: instance_create 2/total"
        );
        let r = node
            .call(Method::DELETE, "/instance/delete/acme-2", Some(&acme), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(create_instance(&node, &acme, "acme-3").await.status, 201);
        // A tenant that owns instances cannot be deleted.
        let r = node
            .call(
                Method::DELETE,
                &format!("/admin/tenants/{acme_id}"),
                Some(GLOBAL),
                None,
            )
            .await;
        assert_eq!(r.status, 409);

        // Keys: a second key works, a revoked one does not.
        let r = node
            .call(
                Method::POST,
                &format!("/admin/tenants/{acme_id}/keys"),
                Some(GLOBAL),
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let key2 = r.body["apiKey"].as_str().unwrap().to_owned();
        let key2_id = r.body["id"].as_str().unwrap().to_owned();
        assert_eq!(
            node.call(Method::GET, "/webhook/find/acme-1", Some(&key2), None)
                .await
                .status,
            200
        );
        let r = node
            .call(
                Method::DELETE,
                &format!("/admin/tenants/{acme_id}/keys/{key2_id}"),
                Some(GLOBAL),
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            node.call(Method::GET, "/webhook/find/acme-1", Some(&key2), None)
                .await
                .status,
            401
        );
        let r = node
            .call(
                Method::GET,
                &format!("/admin/tenants/{acme_id}"),
                Some(GLOBAL),
                None,
            )
            .await;
        assert!(
            !r.text.contains(&key2) && !r.text.contains(&acme),
            "keys never shown again"
        );
        assert_eq!(r.body["instances"], json!(["acme-1", "acme-3"]));

        node.stop().await;
        tdb.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_answer_429_with_headers_and_documents_show_usage() {
    let tdb = TestDb::sqlite(Routing::default()).await;
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(&tdb.db, data.path(), None).await;
    let plan = r#"{"name":"tiny","quotas":{"api_call":{"day":5}},"price_cents":100,"overage_cents":{"message_send":3}}"#;
    let (id, key) = tenant(&node, "acme", Some(plan)).await;
    assert_eq!(create_instance(&node, &key, "i1").await.status, 201);
    for remaining in (0..5).rev() {
        let r = node
            .call(Method::GET, "/webhook/find/i1", Some(&key), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some(remaining.to_string().as_str())
        );
    }
    let r = node
        .call(Method::GET, "/v1/webhook/find/i1", Some(&key), None)
        .await;
    assert_eq!(r.status, 429);
    let today = chrono_free_tomorrow();
    assert_eq!(
        r.body,
        json!({"status":429,"error":"Too Many Requests","response":{"message":[format!("Quota exceeded: api_call 5/day, resets {today}")]}})
    );
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry));
    assert!(
        r.header("x-ratelimit-reset")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );

    // Self-service documents are free, even over quota.
    let r = node.call(Method::GET, "/v1/usage", Some(&key), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let line = r.body["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["quota"] == "api_call" && l["window"] == "day")
        .unwrap()
        .clone();
    assert_eq!(
        (
            line["used"].clone(),
            line["limit"].clone(),
            line["remaining"].clone()
        ),
        (json!(5), json!(5), json!(0))
    );
    let month = &today[..7];
    let r = node
        .call(
            Method::GET,
            &format!("/v1/billing?month={month}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total_cents"], 100);
    assert_eq!(
        node.call(Method::GET, "/v1/billing?month=2026-13", Some(&key), None)
            .await
            .status,
        400
    );
    let r = node
        .call(
            Method::GET,
            &format!("/v1/billing?tenant={id}"),
            Some(GLOBAL),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        node.call(Method::GET, "/v1/usage", Some(GLOBAL), None)
            .await
            .status,
        400
    );
    assert_eq!(
        node.call(Method::GET, "/v1/usage", None, None).await.status,
        401
    );
    let r = node
        .call(Method::GET, "/v1/analytics/overview", Some(&key), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["instances"]["total"], 1);
    node.tenancy.usage.flush().await;
    let r = node
        .call(
            Method::GET,
            "/v1/analytics/instances/i1?period=24h",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["series"].as_array().unwrap().len(), 24);
    assert!(r.body["requests"]["total"].as_u64().unwrap() >= 6);
    assert_eq!(r.body["requests"]["rate_limited"], 1);
    assert_eq!(
        node.call(
            Method::GET,
            "/v1/analytics/instances/i1?period=1y",
            Some(&key),
            None
        )
        .await
        .status,
        400
    );
    node.stop().await;
    tdb.cleanup().await;
}

/// Tomorrow 00:00:00Z in RFC 3339, from the system clock.
fn chrono_free_tomorrow() -> String {
    let now = zapin_tenancy::sql::now_ms() / 1000;
    zapin_tenancy::time::rfc3339(now - now.rem_euclid(86_400) + 86_400)
}

/// 200 concurrent requests against 100 left, spread over `nodes`: exactly 100 answered 2xx.
async fn exact(nodes: &[&Node], key: &str) {
    // 10 used first: 100 left of 110.
    for _ in 0..10 {
        assert_eq!(
            nodes[0]
                .call(Method::GET, "/webhook/find/i1", Some(key), None)
                .await
                .status,
            200
        );
    }
    let mut tasks = Vec::new();
    for i in 0..200 {
        let node = nodes[i % nodes.len()];
        let url = format!("{}/webhook/find/i1", node.base);
        let client = node.client.clone();
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .header("apikey", key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, limited), (100, 100));
}

const EXACT_PLAN: &str = r#"{"name":"exact","quotas":{"api_call":{"day":110}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_charging_in_process_and_across_a_restart() {
    let tdb = TestDb::sqlite(Routing::default()).await;
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(&tdb.db, data.path(), None).await;
    let (_, key) = tenant(&node, "acme", Some(EXACT_PLAN)).await;
    assert_eq!(create_instance(&node, &key, "i1").await.status, 201);
    exact(&[&node], &key).await;
    node.stop().await;
    // Restart on the same data: the budget is still spent.
    let node = Node::start(&tdb.db, data.path(), None).await;
    let r = node
        .call(Method::GET, "/webhook/find/i1", Some(&key), None)
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    let r = node.call(Method::GET, "/v1/usage", Some(&key), None).await;
    let line = r.body["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["quota"] == "api_call" && l["window"] == "day")
        .unwrap()
        .clone();
    assert_eq!(line["used"], 110);
    node.stop().await;
    tdb.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_budget_in_redis() {
    let Some(url) = redis_url() else { return };
    let tdb = TestDb::sqlite(Routing::default()).await;
    let prefix = format!("zapin_gw_test_{}", std::process::id());
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Node::start(&tdb.db, d1.path(), Some((&url, &prefix))).await;
    let b = Node::start(&tdb.db, d2.path(), Some((&url, &prefix))).await;
    assert_eq!(a.tenancy.counters, "redis");
    let (_, key) = tenant(&a, "acme", Some(EXACT_PLAN)).await;
    assert_eq!(create_instance(&a, &key, "i1").await.status, 201);
    exact(&[&a, &b], &key).await;
    // Both nodes see the spent budget.
    assert_eq!(
        b.call(Method::GET, "/webhook/find/i1", Some(&key), None)
            .await
            .status,
        429
    );
    assert_eq!(
        a.call(Method::GET, "/webhook/find/i1", Some(&key), None)
            .await
            .status,
        429
    );
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    a.stop().await;
    b.stop().await;
    tdb.cleanup().await;
}

/// Every route the router mounts (read from the route table's source) has a cost entry in
/// `zapin_tenancy::routes`, at `/` and under `/v1/`.
#[test]
fn every_mounted_route_has_a_cost_entry() {
    let sources = [
        include_str!("../src/http/mod.rs"),
        include_str!("../src/http/tenant_api.rs"),
    ];
    let mut mounted = std::collections::BTreeSet::new();
    for source in sources {
        for (i, lit) in source.split('"').enumerate() {
            // Odd pieces are inside quotes; route paths start with '/'.
            if i % 2 == 1 && lit.starts_with('/') && !lit.contains(' ') && lit != "/v1" {
                mounted.insert(lit.to_owned());
            }
        }
    }
    assert!(mounted.len() >= 25, "{mounted:?}");
    let table: std::collections::BTreeSet<String> = zapin_tenancy::routes::all()
        .iter()
        .map(|r| zapin_tenancy::routes::normalize(&r.path))
        .collect();
    for path in &mounted {
        let normalized = zapin_tenancy::routes::normalize(path);
        assert!(
            table.contains(&normalized),
            "{path} is mounted but has no cost entry"
        );
        if !path.starts_with("/v1/") && !path.starts_with("/admin") && path != "/" {
            let methods: Vec<&str> = zapin_tenancy::routes::all()
                .iter()
                .filter(|r| zapin_tenancy::routes::normalize(&r.path) == normalized)
                .map(|r| r.method)
                .collect();
            for m in methods {
                assert!(
                    zapin_tenancy::routes::lookup(m, &format!("/v1{path}")).is_some(),
                    "/v1{path}"
                );
            }
        }
    }
}

/// Input refused at the door (deliberate differences from Evolution), and not charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_urls_are_refused_and_not_charged() {
    let tdb = TestDb::sqlite(Routing::default()).await;
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(&tdb.db, data.path(), None).await;
    let (_, key) = tenant(&node, "acme", Some(STARTER)).await;
    let long = "x".repeat(10_000);
    for name in ["", "../etc", "a/b", "bell\u{7}", long.as_str()] {
        let r = create_instance(&node, &key, name).await;
        assert_eq!(r.status, 400, "{name:?}: {}", r.text);
        // Refunded: the 2-instance total is untouched.
        assert_eq!(r.header("x-ratelimit-remaining"), Some("2"), "{name:?}");
    }
    let r = node
        .call(
            Method::POST,
            "/instance/create",
            Some(&key),
            Some(json!({"instanceName": "ok-1", "integration": "WHATSAPP-BAILEYS", "webhook": {"url": "file:///etc/passwd"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(create_instance(&node, &key, "ok-1").await.status, 201);
    let r = node
        .call(
            Method::POST,
            "/webhook/set/ok-1",
            Some(&key),
            Some(json!({"webhook": {"enabled": true, "url": "gopher://x"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    node.stop().await;
    tdb.cleanup().await;
}
