//! fetchInstances rows and the instance routes' answers through an instance's whole life, end to
//! end against the simulator: created (close), connecting (QR shown), open (owner JID, the
//! phone's push name, real message/contact/chat counts) and closed after a logout (the
//! disconnect recorded). Every row carries every field Evolution's Instance row has, with the
//! contract's names and types (§3.1, §13.4).
//!
//! Runs on embedded SQLite and on PostgreSQL (a database of its own per run), so the gateway's
//! migrations are exercised on both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::eventually;
use reqwest::Method;
use serde_json::{Map, Value, json};
use zapin_gateway::db::Db;
use zapin_gateway::runtime::{self, EngineRuntime};
use zapin_gateway::{AppState, Config, app};
use zapin_sim::{RunningSim, SimConfig};

const GLOBAL: &str = "records-global-key";

struct Gateway {
    base: String,
    client: reqwest::Client,
    engine: std::sync::Arc<EngineRuntime>,
    server: tokio::task::JoinHandle<()>,
    db: Db,
}

impl Gateway {
    async fn start(sim: &RunningSim, dir: &std::path::Path, database_url: Option<&str>) -> Self {
        let mut vars = vec![
            ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
            ("ZAPIN_DATA_DIR".to_owned(), dir.display().to_string()),
            ("ZAPIN_WA_WS_URL".to_owned(), sim.ws_url()),
            (
                "ZAPIN_WA_ROOT_PUBKEY".to_owned(),
                hex::encode(sim.root_public_key().0),
            ),
        ];
        if let Some(url) = database_url {
            vars.push(("DATABASE_CONNECTION_URI".to_owned(), url.to_owned()));
        }
        let config = Config::from_env(vars).unwrap();
        let db = Db::open(&config).await.unwrap();
        let state = AppState::new(config, db.clone());
        let store = runtime::open_store(&state.config).await.unwrap();
        let mut engine_config = runtime::engine_config(&state.config);
        engine_config.prekey_initial_batch = 30;
        engine_config.prekey_refill_batch = 10;
        engine_config.connect_timeout = Duration::from_secs(5);
        engine_config.iq_timeout = Duration::from_secs(5);
        let engine = runtime::start_with(
            store,
            engine_config,
            &state.config,
            &db,
            state.tokens.clone(),
        )
        .await
        .unwrap();
        let router = app(state.with_engine(engine.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            engine,
            server,
            db,
        }
    }

    async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        self.engine.shutdown().await;
        self.db.close().await;
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("apikey", GLOBAL);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The fetchInstances row of `name`, checked against the contract's shape.
    async fn row(&self, name: &str) -> Value {
        let (status, rows) = self
            .call(
                Method::GET,
                &format!("/instance/fetchInstances?instanceName={name}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{rows}");
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_row_shape(&rows[0]);
        rows[0].clone()
    }

    async fn state(&self, name: &str) -> Value {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/instance/connectionState/{name}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

async fn sim_post(sim: &RunningSim, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.http_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

/// Every key of Evolution's Instance row (contract §3.1) and nothing else, with its type:
/// `Webhook`, `Kafka` and `Pusher` are not included, `disconnectionObject` is a JSON string.
fn assert_row_shape(row: &Value) {
    let object = row.as_object().unwrap();
    let expected = [
        "id",
        "name",
        "connectionStatus",
        "ownerJid",
        "profileName",
        "profilePicUrl",
        "integration",
        "number",
        "businessId",
        "token",
        "clientName",
        "disconnectionReasonCode",
        "disconnectionObject",
        "disconnectionAt",
        "createdAt",
        "updatedAt",
        "Chatwoot",
        "Proxy",
        "Rabbitmq",
        "Nats",
        "Sqs",
        "Websocket",
        "Setting",
        "_count",
    ];
    // (serde_json's map sorts keys: the wire order is checked by compat-evolution's fixtures.)
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, expected, "row keys: {row}");
    let string = |k: &str| assert!(row[k].is_string(), "{k} is a string: {row}");
    let string_or_null = |k: &str| assert!(row[k].is_string() || row[k].is_null(), "{k}: {row}");
    for k in ["id", "name", "integration", "token", "clientName"] {
        string(k);
    }
    for k in ["createdAt", "updatedAt"] {
        string(k);
        assert!(is_iso(row[k].as_str().unwrap()), "{k}: {row}");
    }
    for k in [
        "ownerJid",
        "profileName",
        "profilePicUrl",
        "number",
        "businessId",
        "disconnectionObject",
        "disconnectionAt",
    ] {
        string_or_null(k);
    }
    assert!(
        ["open", "close", "connecting"].contains(&row["connectionStatus"].as_str().unwrap()),
        "{row}"
    );
    assert!(
        row["disconnectionReasonCode"].is_null() || row["disconnectionReasonCode"].is_u64(),
        "{row}"
    );
    for k in ["Chatwoot", "Proxy", "Rabbitmq", "Nats", "Sqs", "Websocket"] {
        assert!(row[k].is_null() || row[k].is_object(), "{k}: {row}");
    }
    let setting = row["Setting"].as_object().unwrap();
    let setting_keys: Vec<&str> = setting.keys().map(String::as_str).collect();
    let mut expected_setting = [
        "id",
        "rejectCall",
        "msgCall",
        "groupsIgnore",
        "alwaysOnline",
        "readMessages",
        "readStatus",
        "syncFullHistory",
        "wavoipToken",
        "createdAt",
        "updatedAt",
        "instanceId",
    ];
    expected_setting.sort_unstable();
    assert_eq!(setting_keys, expected_setting, "{row}");
    assert_eq!(setting["instanceId"], row["id"]);
    let count = row["_count"].as_object().unwrap();
    assert_eq!(
        count.keys().map(String::as_str).collect::<Vec<_>>(),
        ["Chat", "Contact", "Message"]
    );
    assert!(count.values().all(Value::is_u64), "{row}");
}

/// `2025-10-21T14:00:00.000Z`.
fn is_iso(s: &str) -> bool {
    s.len() == 24 && s.as_bytes()[10] == b'T' && s.ends_with('Z')
}

fn counts(row: &Value) -> (u64, u64, u64) {
    let c = &row["_count"];
    (
        c["Message"].as_u64().unwrap(),
        c["Contact"].as_u64().unwrap(),
        c["Chat"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn instance_records_through_every_state_on_sqlite() {
    records(None).await;
}

#[tokio::test]
async fn instance_records_through_every_state_on_postgres() {
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let database = common::PgDatabase::create(&admin).await;
    records(Some(&database.url)).await;
    database.drop_database().await;
}

async fn records(database_url: Option<&str>) {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(24),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), database_url).await;
    let owner = sim_post(&sim, "/sim/accounts", json!({"push_name": "Maria"})).await["phone"]
        .as_str()
        .unwrap()
        .to_owned();
    let owner_jid = format!("{owner}@s.whatsapp.net");
    let friend = sim_post(&sim, "/sim/accounts", json!({"push_name": "Joao"})).await["phone"]
        .as_str()
        .unwrap()
        .to_owned();
    let friend_jid = format!("{friend}@s.whatsapp.net");

    // ---- created, with a token and settings.
    let (status, created) = gw
        .call(
            Method::POST,
            "/instance/create",
            Some(json!({
                "instanceName": "rec",
                "integration": "WHATSAPP-BAILEYS",
                "token": "REC-TOKEN",
                "rejectCall": true,
                "msgCall": "no calls"
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["instance"]["status"], "close");
    let row = gw.row("rec").await;
    let id = row["id"].as_str().unwrap().to_owned();
    assert_eq!(created["instance"]["instanceId"], id.as_str());
    let expected_created = json!({
        "name": "rec",
        "connectionStatus": "close",
        "ownerJid": null,
        "profileName": null,
        "profilePicUrl": null,
        "integration": "WHATSAPP-BAILEYS",
        "number": null,
        "businessId": null,
        "token": "REC-TOKEN",
        "clientName": "evolution",
        "disconnectionReasonCode": null,
        "disconnectionObject": null,
        "disconnectionAt": null,
        "Chatwoot": null,
        "Proxy": null,
        "Rabbitmq": null,
        "Nats": null,
        "Sqs": null,
        "Websocket": null,
        "_count": {"Message": 0, "Contact": 0, "Chat": 0},
    });
    for (k, v) in expected_created.as_object().unwrap() {
        assert_eq!(&row[k], v, "created: {k} in {row}");
    }
    assert_eq!(row["Setting"]["rejectCall"], true);
    assert_eq!(row["Setting"]["msgCall"], "no calls");
    assert_eq!(row["Setting"]["wavoipToken"], "");
    // The integration fields as given at create.
    let (status, body) = gw
        .call(
            Method::POST,
            "/instance/create",
            Some(json!({
                "instanceName": "biz",
                "integration": "WHATSAPP-BAILEYS",
                "number": "5511912345678",
                "businessId": "waba-1"
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let biz = gw.row("biz").await;
    assert_eq!(
        (&biz["number"], &biz["businessId"], &biz["connectionStatus"]),
        (&json!("5511912345678"), &json!("waba-1"), &json!("close"))
    );
    let state = eventually("rec's session to be registered", || async {
        let body = gw.state("rec").await;
        body["instance"].get("state").is_some().then_some(body)
    })
    .await;
    assert_eq!(
        state,
        json!({"instance": {"instanceName": "rec", "state": "close"}})
    );

    // ---- connecting: a QR is shown.
    let qr = eventually("a QR from connect", || async {
        let (status, body) = gw.call(Method::GET, "/instance/connect/rec", None).await;
        assert_eq!(status, 200, "{body}");
        body["code"].as_str().map(str::to_owned)
    })
    .await;
    let row = eventually("fetchInstances to say connecting", || async {
        let row = gw.row("rec").await;
        (row["connectionStatus"] == "connecting").then_some(row)
    })
    .await;
    assert_eq!(row["ownerJid"], Value::Null);
    assert_eq!(
        gw.state("rec").await,
        json!({"instance": {"instanceName": "rec", "state": "connecting"}})
    );

    // ---- open: the owner is known; the push name once the phone has said it.
    sim_post(
        &sim,
        &format!("/sim/accounts/{owner}/scan"),
        json!({ "qr": qr }),
    )
    .await;
    let row = eventually("fetchInstances to say open", || async {
        let row = gw.row("rec").await;
        (row["connectionStatus"] == "open").then_some(row)
    })
    .await;
    assert_eq!(row["ownerJid"], owner_jid.as_str());
    assert_eq!(row["disconnectionReasonCode"], Value::Null);
    assert_eq!(
        gw.state("rec").await,
        json!({"instance": {"instanceName": "rec", "state": "open"}})
    );
    let (status, body) = gw.call(Method::GET, "/instance/connect/rec", None).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"instance": {"instanceName": "rec", "state": "open"}})
        )
    );
    // The phone writes to the friend: the copy reaching this linked device carries the
    // phone's push name, as on WhatsApp.
    sim_post(
        &sim,
        &format!("/sim/accounts/{owner}/messages"),
        json!({"to": friend_jid, "text": "sent from the phone"}),
    )
    .await;
    // The friend writes to us: a contact (with a push name) and a chat.
    sim_post(
        &sim,
        &format!("/sim/accounts/{friend}/messages"),
        json!({"to": owner_jid, "text": "hello"}),
    )
    .await;
    let (status, sent) = gw
        .call(
            Method::POST,
            "/message/sendText/rec",
            // As Evolution Manager's chat sends it: the chat JID as `number`.
            Some(json!({"number": friend_jid, "text": "sent over the API"})),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    let row = eventually("the push name and the counts", || async {
        let row = gw.row("rec").await;
        (row["profileName"] == "Maria" && counts(&row) == (3, 1, 1)).then_some(row)
    })
    .await;
    assert_eq!(row["connectionStatus"], "open");
    assert_eq!(row["profilePicUrl"], Value::Null, "no picture fetch yet");

    // ---- closed: logout records the disconnect; the owner stays known, as in Evolution.
    let (status, body) = gw.call(Method::DELETE, "/instance/logout/rec", None).await;
    assert_eq!(status, 200, "{body}");
    let row = eventually("fetchInstances to show the disconnect", || async {
        let row = gw.row("rec").await;
        (row["connectionStatus"] == "close" && row["disconnectionReasonCode"] == 401).then_some(row)
    })
    .await;
    assert_eq!(row["ownerJid"], owner_jid.as_str());
    assert_eq!(row["profileName"], "Maria");
    assert_eq!(counts(&row), (3, 1, 1));
    assert!(is_iso(row["disconnectionAt"].as_str().unwrap()), "{row}");
    let last: Map<String, Value> =
        serde_json::from_str(row["disconnectionObject"].as_str().unwrap()).unwrap();
    assert_eq!(last["error"]["output"]["statusCode"], 401, "{last:?}");
    assert_eq!(
        last["error"]["output"]["payload"]["message"],
        "Intentional Logout"
    );
    assert_eq!(last["date"], row["disconnectionAt"]);
    assert_eq!(
        gw.state("rec").await,
        json!({"instance": {"instanceName": "rec", "state": "close"}})
    );
    // The other instance was never touched.
    let biz = gw.row("biz").await;
    assert_eq!(biz["disconnectionReasonCode"], Value::Null);

    gw.stop().await;
}
