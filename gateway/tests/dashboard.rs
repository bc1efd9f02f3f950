//! The dashboard over real HTTP (no browser): users added by the operator's API and by the
//! `zapin admin users add` command, sign-in and its refusals (bad password, missing CSRF token,
//! rate limit), the session cookie's attributes, instance creation charged to the tenant, and
//! tenant isolation on pages and actions. The browser flow is in `dashboard_browser.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use zapin_gateway::db::Db;
use zapin_gateway::tenancy::Tenancy;
use zapin_gateway::{AppState, Config, app};

const GLOBAL: &str = "dashboard-operator-key";
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const PASSWORD: &str = "correct horse battery";

struct Gateway {
    base: String,
    http: reqwest::Client,
    db: Db,
    _dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path, server_url: &str) -> Config {
    Config::from_env([
        ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
        ("ZAPIN_MASTER_KEY".to_owned(), MASTER_KEY.to_owned()),
        ("ZAPIN_DATA_DIR".to_owned(), dir.display().to_string()),
        ("SERVER_URL".to_owned(), server_url.to_owned()),
    ])
    .unwrap()
}

impl Gateway {
    async fn start(server_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), server_url);
        let db = Db::open(&config).await.unwrap();
        let tenancy = Tenancy::start(&config, &db).await.unwrap();
        let state = AppState::new(config, db.clone()).with_tenancy(tenancy);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(state);
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            db,
            _dir: dir,
        }
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("apikey", GLOBAL)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A plan `free` (two instances) and a tenant with one dashboard user; returns the tenant id.
    async fn tenant(&self, name: &str, email: &str) -> String {
        let _ = self
            .api(
                reqwest::Method::POST,
                "/admin/plans",
                json!({"name": "free", "quotas": {"instance_create": {"total": 2}}}),
            )
            .await;
        let (status, tenant) = self
            .api(
                reqwest::Method::POST,
                "/admin/tenants",
                json!({"name": name, "plan": "free"}),
            )
            .await;
        assert_eq!(status, 201, "{tenant}");
        let id = tenant["id"].as_str().unwrap().to_owned();
        let (status, user) = self
            .api(
                reqwest::Method::POST,
                &format!("/admin/tenants/{id}/users"),
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "{user}");
        assert_eq!(user["email"], email);
        assert!(user.get("password").is_none() && user.get("passwordHash").is_none());
        id
    }
}

/// A browser's cookie jar and the page it last saw, over reqwest without redirects.
struct Browser<'a> {
    gw: &'a Gateway,
    cookies: HashMap<String, String>,
    set_cookie_lines: Vec<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Page {
    /// The value of the first `name="csrf" value="…"` (or the `<meta name="csrf">`).
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\"")
            .unwrap_or_else(|| panic!("no csrf in {}", self.body));
        let rest = &self.body[at..];
        let v = rest
            .find("value=\"")
            .or_else(|| rest.find("content=\""))
            .unwrap();
        let rest = &rest[v..];
        let start = rest.find('"').unwrap() + 1;
        let end = rest[start..].find('"').unwrap() + start;
        rest[start..end].to_owned()
    }
}

impl<'a> Browser<'a> {
    fn new(gw: &'a Gateway) -> Self {
        Self {
            gw,
            cookies: HashMap::new(),
            set_cookie_lines: Vec::new(),
        }
    }

    fn absorb(&mut self, r: &reqwest::Response) {
        for line in r.headers().get_all(SET_COOKIE) {
            let line = line.to_str().unwrap().to_owned();
            let pair = line.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
            self.set_cookie_lines.push(line);
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        self.absorb(&r);
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        Page {
            status,
            location,
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self
            .gw
            .http
            .get(format!("{}{path}", self.gw.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .gw
            .http
            .post(format!("{}{path}", self.gw.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let login = self.get("/dashboard/login").await;
        let csrf = login.csrf();
        self.post(
            "/dashboard/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }
}

#[tokio::test]
async fn users_sign_in_and_see_only_their_tenant() {
    let gw = Gateway::start("http://zapin.test").await;
    let acme = gw.tenant("acme", "ana@acme.test").await;
    let _globex = gw.tenant("globex", "gil@globex.test").await;

    // The users route: operator key only; duplicates, short passwords and unknown tenants refused.
    let users = format!("/admin/tenants/{acme}/users");
    let r = gw
        .http
        .post(format!("{}{users}", gw.base))
        .json(&json!({"email": "x@acme.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for (path, body, status) in [
        (
            users.as_str(),
            json!({"email": "ANA@acme.test", "password": PASSWORD}),
            409,
        ),
        (
            users.as_str(),
            json!({"email": "bo@acme.test", "password": "short"}),
            400,
        ),
        (
            users.as_str(),
            json!({"email": "not-an-email", "password": PASSWORD}),
            400,
        ),
        (users.as_str(), json!({"email": "bo@acme.test"}), 400),
        (
            "/admin/tenants/nope/users",
            json!({"email": "bo@acme.test", "password": PASSWORD}),
            404,
        ),
    ] {
        let (got, reply) = gw.api(reqwest::Method::POST, path, body.clone()).await;
        assert_eq!(got, status, "{body} -> {reply}");
        assert_eq!(reply["status"], status, "Evolution's envelope: {reply}");
    }

    // Sign-in: a wrong password and a form without its CSRF token are refused.
    let mut ana = Browser::new(&gw);
    let bad = ana.sign_in("ana@acme.test", "wrong password!").await;
    assert_eq!(bad.status, 401);
    assert!(
        bad.body.contains("Wrong e-mail or password."),
        "{}",
        bad.body
    );
    assert!(!ana.cookies.contains_key("zapin_session"));
    let no_csrf = ana
        .post(
            "/dashboard/login",
            &[("email", "ana@acme.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    assert!(!ana.cookies.contains_key("zapin_session"));

    let ok = ana.sign_in("ana@acme.test", PASSWORD).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/dashboard/instances"));
    let session_line = ana
        .set_cookie_lines
        .iter()
        .rev()
        .find(|l| l.starts_with("zapin_session="))
        .unwrap()
        .clone();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(session_line.contains(attr), "{session_line}");
    }
    assert!(
        !session_line.contains("Secure"),
        "plain http: {session_line}"
    );

    // Create an instance from the dashboard; without the token nothing is created.
    let page = ana.get("/dashboard/instances").await;
    assert_eq!(page.status, 200);
    for words in [
        "Add Instance",
        "Create WhatsApp Instance",
        "Instance Name",
        "my-whatsapp-instance",
        "Create Instance",
    ] {
        assert!(page.body.contains(words), "{words}");
    }
    let csrf = page.csrf();
    let refused = ana
        .post("/dashboard/instances", &[("name", "sneaky")])
        .await;
    assert_eq!(refused.status, 403);
    assert!(gw.db.instance_by_name("sneaky").await.unwrap().is_none());
    let made = ana
        .post(
            "/dashboard/instances",
            &[("csrf", &csrf), ("name", "acme-sales")],
        )
        .await;
    assert_eq!(made.status, 303);
    let instance = gw.db.instance_by_name("acme-sales").await.unwrap().unwrap();
    assert_eq!(instance.connection_status, "close");
    let page = ana.get(made.location.as_deref().unwrap()).await;
    assert!(page.body.contains("data-instance=\"acme-sales\""));
    assert!(page.body.contains("Instance acme-sales created."));
    // The API sees it as the tenant's, charged to its quota.
    let (_, tenant) = gw
        .api(
            reqwest::Method::GET,
            &format!("/admin/tenants/{acme}"),
            Value::Null,
        )
        .await;
    assert_eq!(tenant["instances"], json!(["acme-sales"]), "{tenant}");
    // The overview counts it, with the tenant's quotas and bill.
    for period in ["", "?period=7d", "?period=30d", "?period=nonsense"] {
        let overview = ana.get(&format!("/dashboard/overview{period}")).await;
        assert_eq!(overview.status, 200, "{period}");
        assert!(overview.body.contains("Instances connected"));
        assert!(overview.body.contains("0 of 1"), "{}", overview.body);
        assert!(
            overview.body.contains("Instances at once"),
            "the instance quota gauge"
        );
        assert!(
            overview.body.contains("1 of 2"),
            "one of two instances held"
        );
        assert!(overview.body.contains("Plan free"));
    }
    // A taken name and an invalid one come back as translated errors.
    let taken = ana
        .post(
            "/dashboard/instances",
            &[("csrf", &csrf), ("name", "acme-sales")],
        )
        .await;
    let shown = ana.get(taken.location.as_deref().unwrap()).await;
    assert!(
        shown
            .body
            .contains("An instance with this name already exists.")
    );
    let invalid = ana
        .post("/dashboard/instances", &[("csrf", &csrf), ("name", "a/b")])
        .await;
    let shown = ana.get(invalid.location.as_deref().unwrap()).await;
    assert!(shown.body.contains("Invalid name"), "{}", shown.body);

    // The instance's page: settings saved (with the token only), webhook and deliveries shown.
    let detail = ana.get("/dashboard/instances/acme-sales").await;
    assert_eq!(detail.status, 200);
    for words in [
        "Settings",
        "Reject calls",
        "No webhook is set",
        "Dead-letter queue",
    ] {
        assert!(detail.body.contains(words), "{words}");
    }
    let refused = ana
        .post(
            "/dashboard/instances/acme-sales/settings",
            &[("reject_call", "on")],
        )
        .await;
    assert_eq!(refused.status, 403);
    let saved = ana
        .post(
            "/dashboard/instances/acme-sales/settings",
            &[
                ("csrf", csrf.as_str()),
                ("reject_call", "on"),
                ("groups_ignore", "on"),
                ("msg_call", "Busy, text me"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303);
    let shown = ana.get(saved.location.as_deref().unwrap()).await;
    assert!(shown.body.contains("Settings saved."));
    let instance = gw.db.instance_by_name("acme-sales").await.unwrap().unwrap();
    let mut tx = gw.db.begin().await.unwrap();
    let stored = tx.get_settings(&instance.id).await.unwrap().unwrap();
    tx.rollback().await.unwrap();
    assert!(stored.reject_call && stored.groups_ignore && !stored.always_online);
    assert_eq!(stored.msg_call, "Busy, text me");

    // Another tenant's user sees none of it and can act on none of it.
    let mut gil = Browser::new(&gw);
    assert_eq!(gil.sign_in("gil@globex.test", PASSWORD).await.status, 303);
    let theirs = gil.get("/dashboard/instances").await;
    assert!(!theirs.body.contains("acme-sales"));
    let gil_csrf = theirs.csrf();
    let delete = gil
        .post(
            "/dashboard/instances/acme-sales/delete",
            &[("csrf", &gil_csrf)],
        )
        .await;
    assert_eq!(delete.status, 404);
    assert!(
        gw.db
            .instance_by_name("acme-sales")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(gil.get("/dashboard/instances/acme-sales").await.status, 404);
    let settings = gil
        .post(
            "/dashboard/instances/acme-sales/settings",
            &[("csrf", &gil_csrf), ("reject_call", "on")],
        )
        .await;
    assert_eq!(settings.status, 404);
    // Nor the operator pages.
    assert_eq!(gil.get("/dashboard/admin/tenants").await.status, 403);

    // Ana deletes it (with her token), and the slot comes back.
    let deleted = ana
        .post("/dashboard/instances/acme-sales/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(deleted.status, 303);
    assert!(
        gw.db
            .instance_by_name("acme-sales")
            .await
            .unwrap()
            .is_none()
    );

    // API keys: one made here is shown once, then listed by prefix, and can be revoked.
    let keys = ana.get("/dashboard/keys").await;
    let before = keys.body.matches("/revoke\"").count();
    assert_eq!(before, 1, "the tenant's first key");
    let made = ana.post("/dashboard/keys", &[("csrf", &csrf)]).await;
    assert_eq!(made.status, 200);
    assert!(made.body.contains("it is not shown again"));
    let at = made.body.find("id=\"new-key\">").unwrap() + "id=\"new-key\">".len();
    let key = &made.body[at..at + made.body[at..].find('<').unwrap()];
    assert!(key.starts_with("zpk_"), "{key}");
    // The key works against the API, for this tenant.
    let r = gw
        .http
        .get(format!("{}/instance/fetchInstances", gw.base))
        .header("apikey", key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed = ana.get("/dashboard/keys").await;
    assert!(!listed.body.contains(key), "shown once only");
    assert!(listed.body.contains(&key[..12]), "listed by its prefix");
    assert_eq!(listed.body.matches("/revoke\"").count(), 2);
    let at = listed.body.rfind("/dashboard/keys/").unwrap();
    let action = &listed.body[at..at + listed.body[at..].find('"').unwrap()];
    assert_eq!(
        ana.post(action, &[]).await.status,
        403,
        "revoking needs the token"
    );
    assert_eq!(ana.post(action, &[("csrf", &csrf)]).await.status, 303);
    assert_eq!(
        ana.get("/dashboard/keys")
            .await
            .body
            .matches("/revoke\"")
            .count(),
        1
    );
    // Another tenant cannot revoke it.
    let gil_keys = gil.get("/dashboard/keys").await;
    assert!(!gil_keys.body.contains(&key[..12]));

    // Language: Accept-Language, then the remembered choice.
    let r = gw
        .http
        .get(format!("{}/dashboard/instances", gw.base))
        .header(COOKIE, ana.cookie_header())
        .header("accept-language", "pt-BR,pt;q=0.9")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("Adicionar Instância"), "{body}");
    let switch = ana.get("/dashboard/instances?lang=id").await;
    assert_eq!(switch.status, 303);
    assert!(
        ana.get("/dashboard/instances")
            .await
            .body
            .contains("Tambah Instans")
    );

    // Logout needs the token too, then the session is gone.
    let csrf = ana.get("/dashboard/instances").await.csrf();
    assert_eq!(ana.post("/dashboard/logout", &[]).await.status, 403);
    assert_eq!(
        ana.post("/dashboard/logout", &[("csrf", &csrf)])
            .await
            .status,
        303
    );
    let after = ana.get("/dashboard/instances").await;
    assert_eq!(after.location.as_deref(), Some("/dashboard/login"));
}

#[tokio::test]
async fn the_operator_signs_in_with_the_key_and_suspends_a_tenant() {
    let gw = Gateway::start("https://zapin.example").await;
    let acme = gw.tenant("acme", "ana@acme.test").await;
    let mut op = Browser::new(&gw);
    let login = op.get("/dashboard/login").await;
    let csrf = login.csrf();
    let wrong = op
        .post(
            "/dashboard/login/operator",
            &[("csrf", &csrf), ("key", "nope")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let csrf = Page {
        status: 0,
        location: None,
        body: wrong.body,
    }
    .csrf();
    let ok = op
        .post(
            "/dashboard/login/operator",
            &[("csrf", &csrf), ("key", GLOBAL)],
        )
        .await;
    assert_eq!(ok.status, 303);
    // Behind an https base URL every cookie is Secure.
    assert!(
        op.set_cookie_lines.iter().all(|l| l.contains("; Secure")),
        "{:?}",
        op.set_cookie_lines
    );
    let overview = op.get("/dashboard/overview").await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("see the tenants page"));
    let tenants = op.get("/dashboard/admin/tenants").await;
    assert_eq!(tenants.status, 200);
    assert!(tenants.body.contains(">acme<"));
    assert!(
        tenants.body.contains("Instances at once: 2"),
        "the plans table"
    );
    let csrf = tenants.csrf();
    let suspended = op
        .post(
            &format!("/dashboard/admin/tenants/{acme}/suspend"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(suspended.status, 303);
    let (_, tenant) = gw
        .api(
            reqwest::Method::GET,
            &format!("/admin/tenants/{acme}"),
            Value::Null,
        )
        .await;
    assert_eq!(tenant["suspended"], true);
    // A suspended tenant's users are refused, as its keys are.
    let mut ana = Browser::new(&gw);
    let refused = ana.sign_in("ana@acme.test", PASSWORD).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("This account is suspended."));
    op.post(
        &format!("/dashboard/admin/tenants/{acme}/resume"),
        &[("csrf", &csrf)],
    )
    .await;
    let (_, tenant) = gw
        .api(
            reqwest::Method::GET,
            &format!("/admin/tenants/{acme}"),
            Value::Null,
        )
        .await;
    assert_eq!(tenant["suspended"], false);
    assert_eq!(ana.sign_in("ana@acme.test", PASSWORD).await.status, 303);
    assert_eq!(ana.get("/dashboard/instances").await.status, 200);
    // Suspending again ends the session that is open.
    op.post(
        &format!("/dashboard/admin/tenants/{acme}/suspend"),
        &[("csrf", &csrf)],
    )
    .await;
    let after = ana.get("/dashboard/instances").await;
    assert_eq!(after.location.as_deref(), Some("/dashboard/login"));
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() {
    let gw = Gateway::start("http://zapin.test").await;
    gw.tenant("acme", "ana@acme.test").await;
    let mut b = Browser::new(&gw);
    for _ in 0..10 {
        assert_eq!(
            b.sign_in("ana@acme.test", "not the password").await.status,
            401
        );
    }
    // Now even the right password waits for the window to pass.
    let limited = b.sign_in("ana@acme.test", PASSWORD).await;
    assert_eq!(limited.status, 429);
    assert!(limited.body.contains("Too many attempts"));
}

#[tokio::test]
async fn the_cli_adds_a_user_who_can_sign_in() {
    let gw = Gateway::start("http://zapin.test").await;
    let acme = gw.tenant("acme", "ana@acme.test").await;
    let dir = gw._dir.path().to_str().unwrap().to_owned();
    let env = [
        ("ZAPIN_DATA_DIR", dir.as_str()),
        ("ZAPIN_MASTER_KEY", MASTER_KEY),
        ("NEW_PASSWORD", "another fine password"),
    ];
    let done = common::serve::run_for(
        &[
            "admin",
            "users",
            "add",
            "--tenant",
            &acme,
            "--email",
            "Bo@Acme.test",
            "--password-env",
            "NEW_PASSWORD",
        ],
        &env,
        Duration::from_secs(60),
    );
    assert!(done.status.success(), "{}", done.stderr);
    let user: Value = serde_json::from_str(done.stdout.trim()).unwrap();
    assert_eq!(user["email"], "bo@acme.test");
    assert_eq!(user["tenantId"], acme.as_str());
    // Unknown tenant: an error, nothing added.
    let refused = common::serve::run_for(
        &[
            "admin",
            "users",
            "add",
            "--tenant",
            "nope",
            "--email",
            "cy@acme.test",
            "--password-env",
            "NEW_PASSWORD",
        ],
        &env,
        Duration::from_secs(60),
    );
    assert!(!refused.status.success());
    assert!(refused.stderr.contains("no tenant"), "{}", refused.stderr);

    let mut bo = Browser::new(&gw);
    assert_eq!(
        bo.sign_in("bo@acme.test", "another fine password")
            .await
            .status,
        303
    );
}

/// A tenant with 1,000 instances: the instances page shows 50 per page, stays under 150 KB
/// with its stylesheet and script, and answers quickly (timings printed for benches/RESULTS.md).
#[tokio::test]
async fn a_thousand_instances_are_paginated_and_the_page_stays_small() {
    let gw = Gateway::start("http://zapin.test").await;
    gw.api(
        reqwest::Method::POST,
        "/admin/plans",
        json!({"name": "big", "quotas": {"instance_create": {"total": 2000}}}),
    )
    .await;
    let (_, tenant) = gw
        .api(
            reqwest::Method::POST,
            "/admin/tenants",
            json!({"name": "bigco", "plan": "big"}),
        )
        .await;
    let id = tenant["id"].as_str().unwrap().to_owned();
    let key = tenant["apiKey"].as_str().unwrap().to_owned();
    gw.api(
        reqwest::Method::POST,
        &format!("/admin/tenants/{id}/users"),
        json!({"email": "ops@bigco.test", "password": PASSWORD}),
    )
    .await;
    // The tenant's own key creates them, eight at a time.
    let names: Vec<String> = (0..1000).map(|i| format!("bigco-{i:04}")).collect();
    for chunk in names.chunks(8) {
        let mut calls = Vec::new();
        for name in chunk {
            let req = gw
                .http
                .post(format!("{}/instance/create", gw.base))
                .header("apikey", &key)
                .json(&json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"}))
                .send();
            calls.push(req);
        }
        for call in calls {
            assert_eq!(call.await.unwrap().status(), 201);
        }
    }
    let mut b = Browser::new(&gw);
    assert_eq!(b.sign_in("ops@bigco.test", PASSWORD).await.status, 303);
    let started = std::time::Instant::now();
    let first = b.get("/dashboard/instances").await;
    let first_ms = started.elapsed().as_millis();
    assert_eq!(first.status, 200);
    assert_eq!(first.body.matches("data-instance=").count(), 50);
    assert!(first.body.contains("1,000 instances"));
    assert!(first.body.contains("Page 1 of 20"));
    assert!(first.body.contains("bigco-0000") && !first.body.contains("bigco-0050"));
    let css = b
        .get(&format!(
            "/dashboard/assets/app-{}.css",
            env!("CARGO_PKG_VERSION")
        ))
        .await;
    let js = b
        .get(&format!(
            "/dashboard/assets/app-{}.js",
            env!("CARGO_PKG_VERSION")
        ))
        .await;
    assert_eq!((css.status, js.status), (200, 200));
    let weight = first.body.len() + css.body.len() + js.body.len();
    assert!(weight < 150 * 1024, "{weight} bytes");
    let started = std::time::Instant::now();
    let last = b.get("/dashboard/instances?page=20").await;
    let last_ms = started.elapsed().as_millis();
    assert!(last.body.contains("bigco-0999") && last.body.contains("Page 20 of 20"));
    let beyond = b.get("/dashboard/instances?page=99").await;
    assert!(beyond.body.contains("Page 20 of 20"));
    eprintln!(
        "instances page, 1000 instances: html {} B, css {} B, js {} B, total {weight} B; \
         page 1 in {first_ms} ms, page 20 in {last_ms} ms (debug build)",
        first.body.len(),
        css.body.len(),
        js.body.len()
    );
}

/// Creating and deleting from the dashboard is charged like the API: the plan's instance limit
/// refuses a third instance, and a delete gives the slot back.
#[tokio::test]
async fn the_instance_quota_applies_to_the_dashboard() {
    let gw = Gateway::start("http://zapin.test").await;
    gw.tenant("acme", "ana@acme.test").await;
    let mut ana = Browser::new(&gw);
    assert_eq!(ana.sign_in("ana@acme.test", PASSWORD).await.status, 303);
    let csrf = ana.get("/dashboard/instances").await.csrf();
    for name in ["one", "two"] {
        let made = ana
            .post("/dashboard/instances", &[("csrf", &csrf), ("name", name)])
            .await;
        assert_eq!(made.status, 303, "{name}");
    }
    let refused = ana
        .post(
            "/dashboard/instances",
            &[("csrf", &csrf), ("name", "three")],
        )
        .await;
    assert_eq!(refused.status, 429);
    assert!(
        refused
            .body
            .contains("Your plan&#39;s limit is reached: Instances at once: 2"),
        "{}",
        refused.body
    );
    assert!(gw.db.instance_by_name("three").await.unwrap().is_none());
    let deleted = ana
        .post("/dashboard/instances/one/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(deleted.status, 303);
    let made = ana
        .post(
            "/dashboard/instances",
            &[("csrf", &csrf), ("name", "three")],
        )
        .await;
    assert_eq!(made.status, 303);
    assert!(gw.db.instance_by_name("three").await.unwrap().is_some());
}
