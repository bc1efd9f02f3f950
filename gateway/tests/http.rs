//! The HTTP routes over a real socket with a real client.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use serde_json::{Value, json};
use zapin_gateway::db::{Db, DbOptions};
use zapin_gateway::webhook::Routing;
use zapin_gateway::{AppState, Config, app};

/// Starts the app on an ephemeral port and returns its base URL.
async fn start(pairs: &[(&str, &str)]) -> String {
    let config =
        Config::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite_file(
        &dir.path().join("zapin.sqlite3"),
        Routing::default(),
        &DbOptions::default(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _dir = dir;
        axum::serve(listener, app(AppState::new(config, db)))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn welcome_has_evolutions_shape() {
    let base = start(&[]).await;
    let (status, body) = get_json(&format!("{base}/")).await;
    assert_eq!(status, 200);
    // The dashboard is where Evolution's manager is looked for.
    assert_eq!(
        body,
        json!({
            "status": 200,
            "message": "Welcome to zapin, it is working!",
            "version": env!("CARGO_PKG_VERSION"),
            "clientName": "evolution",
            "manager": format!("{base}/manager"),
            "documentation": "https://doc.evolution-api.com",
            "whatsappWebVersion": "2.3000.1045649367",
        })
    );
    // `/manager` leads to the dashboard, which sends a stranger to its sign-in page.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let manager = client.get(format!("{base}/manager")).send().await.unwrap();
    assert_eq!(manager.status(), 308);
    assert_eq!(manager.headers()["location"], "/dashboard");
    let home = client
        .get(format!("{base}/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(home.headers()["location"], "/dashboard/login");
}

#[tokio::test]
async fn welcome_follows_configuration() {
    let base = start(&[
        ("DATABASE_CONNECTION_CLIENT_NAME", "tenant_a"),
        ("SERVER_DISABLE_MANAGER", "true"),
        ("ZAPIN_WA_VERSION", "2.3000.42"),
    ])
    .await;
    let (_, body) = get_json(&format!("{base}/")).await;
    assert_eq!(body["clientName"], "tenant_a");
    assert_eq!(body["whatsappWebVersion"], "2.3000.42");
    assert!(body.get("manager").is_none(), "manager shown: {body}");
    // Not advertised because not served: the dashboard is off, as Evolution's manager is.
    for path in ["/manager", "/dashboard", "/dashboard/login"] {
        let (status, _) = get_json(&format!("{base}{path}")).await;
        assert_eq!(status, 404, "{path} is served");
    }
}

#[tokio::test]
async fn health_reports_ok() {
    let base = start(&[]).await;
    let (status, body) = get_json(&format!("{base}/v1/health")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptimeSeconds"].is_u64(), "{body}");
}

#[tokio::test]
async fn unknown_route_is_evolutions_404() {
    let base = start(&[]).await;
    let (status, body) = get_json(&format!("{base}/instance/nope?x=1&y=2")).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({
            "status": 404,
            "error": "Not Found",
            "response": {"message": ["Cannot GET /instance/nope?x=1&y=2"]},
        })
    );
}

#[tokio::test]
async fn wrong_method_on_a_known_path_is_also_404() {
    let base = start(&[]).await;
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["response"]["message"],
        json!(["Cannot POST /v1/health"])
    );
}

async fn post(base: &str, path: &str, key: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        req = req.header("apikey", key);
    }
    let response = req.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn verify_creds_accepts_the_global_key_only() {
    let base = start(&[("AUTHENTICATION_API_KEY", "the-global-key")]).await;
    // What Evolution Manager sends at login.
    let (status, body) = post(&base, "/verify-creds", Some("the-global-key"), "{}").await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"status": 200, "message": "Credentials are valid"})
        )
    );
    // Any header case, any body (Express ignores it).
    let response = reqwest::Client::new()
        .post(format!("{base}/verify-creds"))
        .header("ApiKey", "the-global-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let unauthorized =
        json!({"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}});
    for key in [None, Some(""), Some("wrong")] {
        let (status, body) = post(&base, "/verify-creds", key, "{}").await;
        assert_eq!((status, &body), (401, &unauthorized), "{key:?}");
    }
    // An instance token opens its instance, not the account.
    let (status, created) = post(
        &base,
        "/instance/create",
        Some("the-global-key"),
        r#"{"instanceName":"one","integration":"WHATSAPP-BAILEYS","token":"INSTANCE-TOKEN"}"#,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, body) = post(&base, "/verify-creds", Some("INSTANCE-TOKEN"), "{}").await;
    assert_eq!((status, &body), (401, &unauthorized));
    // Express parses the body before the route: malformed JSON is a 400 even with a good key.
    let (status, body) = post(&base, "/verify-creds", Some("the-global-key"), "{oops").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "Internal Server Error");
    // Only POST.
    let (status, body) = get_json(&format!("{base}/verify-creds")).await;
    assert_eq!(status, 404, "{body}");
}
