//! Browser access (contract §1.1): `CORS_ORIGIN`, `CORS_METHODS`, `CORS_CREDENTIALS` over a real
//! socket. Preflights are answered on every path; an origin outside the list is refused with a
//! 403 in Evolution's envelope and gets no CORS headers; requests without `Origin` (non-browser
//! clients) are never affected.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use zapin_gateway::db::{Db, DbOptions};
use zapin_gateway::webhook::Routing;
use zapin_gateway::{AppState, Config, app};

const GLOBAL: &str = "cors-test-key";
const MANAGER: &str = "http://manager.test:3000";

/// Starts the app (SQLite in a temp dir) with `pairs` on an ephemeral port.
async fn start(pairs: &[(&str, &str)]) -> String {
    let mut vars = vec![("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned())];
    vars.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_env(vars).unwrap();
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

/// A preflight as a browser sends it before a cross-origin request with `apikey` and JSON.
async fn preflight(base: &str, path: &str, origin: &str, method: &str) -> (u16, HeaderMap, String) {
    let res = reqwest::Client::new()
        .request(Method::OPTIONS, format!("{base}{path}"))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "apikey,content-type")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

async fn request(
    base: &str,
    method: Method,
    path: &str,
    origin: Option<&str>,
    body: Option<Value>,
) -> (u16, HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("apikey", GLOBAL);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn lower_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn has_no_cors_headers(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .all(|k| !k.as_str().starts_with("access-control-"))
}

#[tokio::test]
async fn preflights_are_answered_on_every_route_with_the_defaults() {
    let base = start(&[]).await;
    // Routes with and without `{instance}`, an unknown instance and an unknown path: a
    // preflight never reaches routing or the guard.
    for (path, method) in [
        ("/verify-creds", "POST"),
        ("/instance/fetchInstances", "GET"),
        ("/instance/create", "POST"),
        ("/instance/connect/nobody", "GET"),
        ("/instance/delete/nobody", "DELETE"),
        ("/message/sendText/nobody", "POST"),
        ("/no/such/route", "PUT"),
    ] {
        let (status, headers, body) = preflight(&base, path, MANAGER, method).await;
        assert_eq!(status, 204, "{path}: {body}");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(MANAGER),
            "{path}"
        );
        let methods = lower_list(header(&headers, "access-control-allow-methods"));
        assert_eq!(methods, ["post", "get", "put", "delete"], "{path}");
        let allowed = lower_list(header(&headers, "access-control-allow-headers"));
        assert!(
            allowed.contains(&"apikey".to_owned()) && allowed.contains(&"content-type".to_owned()),
            "{path}: {allowed:?}"
        );
        assert_eq!(
            header(&headers, "access-control-allow-credentials"),
            None,
            "{path}"
        );
    }
    // The actual request carries the allowed origin too.
    let (status, headers, body) = request(
        &base,
        Method::GET,
        "/instance/fetchInstances",
        Some(MANAGER),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(MANAGER)
    );
    assert!(
        lower_list(header(&headers, "vary")).contains(&"origin".to_owned()),
        "{headers:?}"
    );
}

#[tokio::test]
async fn a_listed_origin_gets_cors_and_an_unlisted_one_a_403() {
    let base = start(&[
        ("CORS_ORIGIN", &format!("https://other.test, {MANAGER}")),
        ("CORS_METHODS", "get,post"),
        ("CORS_CREDENTIALS", "true"),
    ])
    .await;
    let (status, headers, _) = preflight(&base, "/instance/fetchInstances", MANAGER, "GET").await;
    assert_eq!(status, 204);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(MANAGER)
    );
    assert_eq!(
        lower_list(header(&headers, "access-control-allow-methods")),
        ["get", "post"]
    );
    assert_eq!(
        header(&headers, "access-control-allow-credentials"),
        Some("true")
    );
    let (status, headers, body) = request(
        &base,
        Method::POST,
        "/instance/create",
        Some(MANAGER),
        Some(json!({"instanceName": "from-manager", "integration": "WHATSAPP-BAILEYS"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(MANAGER)
    );

    let evil = "https://evil.test";
    let refused = json!({
        "status": 403,
        "error": "Forbidden",
        "response": {"message": [format!("Not allowed by CORS: origin {evil} is not in CORS_ORIGIN")]}
    });
    let res = reqwest::Client::new()
        .request(Method::OPTIONS, format!("{base}/instance/fetchInstances"))
        .header("origin", evil)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert!(has_no_cors_headers(res.headers()), "{:?}", res.headers());
    assert_eq!(res.json::<Value>().await.unwrap(), refused);
    // The actual request is refused before it does anything.
    let (status, headers, body) = request(
        &base,
        Method::POST,
        "/instance/create",
        Some(evil),
        Some(json!({"instanceName": "from-evil", "integration": "WHATSAPP-BAILEYS"})),
    )
    .await;
    assert_eq!((status, &body), (403, &refused));
    assert!(has_no_cors_headers(&headers), "{headers:?}");
    let (_, _, list) = request(&base, Method::GET, "/instance/fetchInstances", None, None).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["from-manager"]);
}

#[tokio::test]
async fn requests_without_origin_and_same_origin_requests_are_never_refused() {
    let base = start(&[("CORS_ORIGIN", MANAGER)]).await;
    // Not a browser: no Origin, no CORS, no refusal (Evolution answers 500 here).
    let (status, headers, body) =
        request(&base, Method::GET, "/instance/fetchInstances", None, None).await;
    assert_eq!((status, body), (200, json!([])));
    assert!(has_no_cors_headers(&headers), "{headers:?}");
    // A page served by zapin itself posting back to it: same origin, not CORS.
    let own = base.clone();
    let (status, _, body) = request(
        &base,
        Method::POST,
        "/instance/create",
        Some(&own),
        Some(json!({"instanceName": "same-origin", "integration": "WHATSAPP-BAILEYS"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[test]
fn bad_cors_settings_stop_startup_with_the_variable_named() {
    for (var, value) in [
        ("CORS_ORIGIN", "https://manager.test/"),
        ("CORS_ORIGIN", "manager.test"),
        ("CORS_ORIGIN", "https://manager.test/path"),
        ("CORS_ORIGIN", ","),
        ("CORS_METHODS", "GET,NOT A METHOD"),
        ("CORS_METHODS", ","),
        ("CORS_CREDENTIALS", "yes"),
    ] {
        let err = Config::from_env([(var, value)]).unwrap_err();
        assert!(err.to_string().contains(var), "{var}={value}: {err}");
    }
    let config = Config::from_env([("CORS_ORIGIN", "https://a.test,*")]).unwrap();
    assert_eq!(config.cors.origins, None, "* anywhere means any origin");
    let config = Config::from_env([("CORS_ORIGIN", " HTTPS://A.test , null ")]).unwrap();
    assert_eq!(
        config.cors.origins,
        Some(vec!["https://a.test".to_owned(), "null".to_owned()])
    );
    let config = Config::from_env(Vec::<(String, String)>::new()).unwrap();
    assert_eq!(
        (
            config.cors.origins,
            config.cors.methods,
            config.cors.credentials
        ),
        (
            None,
            vec!["POST".into(), "GET".into(), "PUT".into(), "DELETE".into()],
            false
        )
    );
}
