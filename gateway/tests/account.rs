//! The account's state routes end to end (`/group/*`, and the account's own privacy, block list,
//! about text and picture under `/chat/*`): the gateway wired to an in-process simulator
//! (WhatsApp's server side with real group and account state), a linked instance, and a real
//! webhook receiver. Every route is called over HTTP and its effect checked on the simulator's
//! state (the phone's view); changes the phones make reach the webhook as `groups.upsert`,
//! `groups.update` and `group-participants.update`; bad input gets Evolution's 4xx and changes
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{Receiver, eventually};
use reqwest::Method;
use serde_json::{Value, json};
use zapin_gateway::db::Db;
use zapin_gateway::runtime::{self, EngineRuntime};
use zapin_gateway::webhook::Dispatcher;
use zapin_gateway::{AppState, Config, app};
use zapin_sim::{RunningSim, SimConfig};

const GLOBAL: &str = "account-global-key";

struct Gateway {
    base: String,
    client: reqwest::Client,
    engine: std::sync::Arc<EngineRuntime>,
    server: tokio::task::JoinHandle<()>,
    db: Db,
}

impl Gateway {
    /// On SQLite in `dir`, or on PostgreSQL at `database_url`.
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
        let dispatcher = Dispatcher::new(
            db.clone(),
            zapin_gateway::webhook::dispatcher_config(&config),
        )
        .unwrap()
        .spawn();
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
        engine.attach_dispatcher(dispatcher);
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

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

async fn sim_post(sim: &RunningSim, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.http_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn sim_group(sim: &RunningSim, jid: &str) -> Value {
    reqwest::get(format!("{}/sim/groups/{jid}", sim.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn account(sim: &RunningSim, name: &str) -> String {
    let (status, body) = sim_post(sim, "/sim/accounts", json!({"push_name": name})).await;
    assert_eq!(status, 201, "{body}");
    body["phone"].as_str().unwrap().to_owned()
}

/// The first webhook body from index `from` on that `f` accepts, and its index.
async fn webhook_from(receiver: &Receiver, from: usize, f: impl Fn(&Value) -> bool) -> usize {
    let mut n = from + 1;
    loop {
        let seen = receiver.wait_for(n).await;
        if let Some(i) = (from..seen.len()).find(|i| f(&seen[*i].json())) {
            return i;
        }
        n = seen.len() + 1;
    }
}

fn bad_request_messages(body: &Value) -> Value {
    assert_eq!(body["status"], 400, "{body}");
    assert_eq!(body["error"], "Bad Request", "{body}");
    body["response"]["message"].clone()
}

/// A tiny JPEG header: enough for WhatsApp's (and the simulator's) format check.
fn jpeg() -> Vec<u8> {
    let mut v = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ];
    v.extend_from_slice(&[0u8; 32]);
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

#[tokio::test]
async fn group_routes_over_http_on_sqlite() {
    group_routes(None).await;
}

/// The same on PostgreSQL, in a database of its own (the webhook events go through its outbox).
#[tokio::test]
async fn group_routes_over_http_on_postgres() {
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let database = common::PgDatabase::create(&admin).await;
    group_routes(Some(&database.url)).await;
    database.drop_database().await;
}

async fn group_routes(database_url: Option<&str>) {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(23),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), database_url).await;

    let owner = account(&sim, "Maria").await;
    let alice = account(&sim, "Alice").await;
    let bob = account(&sim, "Bob").await;
    let owner_jid = format!("{owner}@s.whatsapp.net");
    let alice_jid = format!("{alice}@s.whatsapp.net");
    let bob_jid = format!("{bob}@s.whatsapp.net");

    let (status, body) = gw
        .post(
            "/instance/create",
            json!({
                "instanceName": "grp",
                "integration": "WHATSAPP-BAILEYS",
                "webhook": {"url": format!("{}/hook", receiver.base), "events": [
                    "CONNECTION_UPDATE", "GROUPS_UPSERT", "GROUP_UPDATE",
                    "GROUP_PARTICIPANTS_UPDATE"
                ]}
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Routes need a connected session: before that, Evolution's 400.
    let (status, _) = gw
        .get("/group/fetchAllGroups/grp?getParticipants=false")
        .await;
    assert_eq!(status, 400);
    let code = eventually("a QR from connect", || async {
        let (status, body) = gw.get("/instance/connect/grp").await;
        assert_eq!(status, 200, "{body}");
        body["code"].as_str().map(str::to_owned)
    })
    .await;
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{owner}/scan"),
        json!({"qr": code}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut at = webhook_from(&receiver, 0, |b| {
        b["event"] == "connection.update" && b["data"]["state"] == "open"
    })
    .await;

    // ---- create ----
    let (status, body) = gw
        .post("/group/create/grp", json!({"participants": [alice]}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        bad_request_messages(&body),
        json!([["instance requires property \"subject\""]])
    );
    let (status, body) = gw
        .post(
            "/group/create/grp",
            json!({"subject": "Nobody", "participants": ["15559999990"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, created) = gw
        .post(
            "/group/create/grp",
            json!({
                "subject": "VIP customers",
                "description": "Early access",
                "participants": [alice, bob, "15559999991"]
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let gjid = created["id"].as_str().unwrap().to_owned();
    let gid = gjid.strip_suffix("@g.us").unwrap().to_owned();
    assert_eq!(created["subject"], "VIP customers");
    assert_eq!(created["desc"], "Early access");
    assert_eq!(created["owner"], owner_jid.as_str());
    assert_eq!(created["subjectOwner"], owner_jid.as_str());
    assert_eq!(created["size"], 3);
    assert_eq!(created["restrict"], false);
    assert_eq!(created["announce"], false);
    let members: Vec<(String, Value)> = created["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p["admin"].clone()))
        .collect();
    assert_eq!(
        members,
        vec![
            (owner_jid.clone(), json!("superadmin")),
            (alice_jid.clone(), Value::Null),
            (bob_jid.clone(), Value::Null),
        ]
    );
    let view = sim_group(&sim, &gjid).await;
    assert_eq!(view["subject"], "VIP customers");
    assert_eq!(view["description"], "Early access");

    // ---- subject, description, picture ----
    let (status, body) = gw
        .post(
            &format!("/group/updateGroupSubject/grp?groupJid={gid}"),
            json!({"subject": "VIP"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"update": "success"}));
    assert_eq!(sim_group(&sim, &gjid).await["subject"], "VIP");
    let (status, body) = gw
        .post("/group/updateGroupSubject/grp", json!({"subject": "x"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        bad_request_messages(&body),
        json!([
            "The group id needs to be informed in the query",
            "ex: \"groupJid=120362@g.us\""
        ])
    );
    let (status, body) = gw
        .post(
            "/group/updateGroupSubject/grp",
            json!({"groupJid": "120363999999999999@g.us", "subject": "x"}),
        )
        .await;
    assert_eq!(status, 400, "unknown group: {body}");
    assert_eq!(
        bad_request_messages(&body),
        json!(["Error updating group subject", "Error: item-not-found"])
    );
    let (status, body) = gw
        .post(
            "/group/updateGroupDescription/grp",
            json!({"groupJid": gjid, "description": "Rules: be kind"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        sim_group(&sim, &gjid).await["description"],
        "Rules: be kind"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let (status, body) = gw
        .post(
            "/group/updateGroupPicture/grp",
            json!({"groupJid": gjid, "image": b64.encode(b"GIF89a not a jpeg")}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(sim_group(&sim, &gjid).await["picture_bytes"], 0);
    let (status, body) = gw
        .post(
            "/group/updateGroupPicture/grp",
            json!({"groupJid": gjid, "image": b64.encode(jpeg())}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(sim_group(&sim, &gjid).await["picture_bytes"], jpeg().len());

    // ---- findGroupInfos, fetchAllGroups, participants ----
    let (status, info) = gw
        .get(&format!("/group/findGroupInfos/grp?groupJid={gjid}"))
        .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["id"], gjid.as_str());
    assert_eq!(info["subject"], "VIP");
    assert_eq!(info["desc"], "Rules: be kind");
    assert_eq!(info["size"], 3);
    assert_eq!(info["pictureUrl"], Value::Null);
    assert_eq!(info["participants"].as_array().unwrap().len(), 3);
    let (status, body) = gw
        .get("/group/findGroupInfos/grp?groupJid=120363999999999999@g.us")
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["response"]["message"],
        json!(["Error fetching group", "Error: item-not-found"])
    );
    let (status, body) = gw.get("/group/findGroupInfos/grp?groupJid=abc@g.us").await;
    assert_eq!(status, 400);
    assert_eq!(bad_request_messages(&body)[0]["property"], "groupJid");
    let (status, all) = gw
        .get("/group/fetchAllGroups/grp?getParticipants=false")
        .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["id"], gjid.as_str());
    assert!(all[0].get("participants").is_none());
    let (status, all) = gw
        .get("/group/fetchAllGroups/grp?getParticipants=true")
        .await;
    assert_eq!(status, 200);
    assert_eq!(all[0]["participants"].as_array().unwrap().len(), 3);
    let (status, body) = gw.get("/group/fetchAllGroups/grp").await;
    assert_eq!(status, 400);
    assert_eq!(
        bad_request_messages(&body),
        json!([{"property": "instance", "message": "instance requires property \"getParticipants\""}])
    );
    let (status, body) = gw
        .get(&format!("/group/participants/grp?groupJid={gjid}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [&owner_jid, &alice_jid, &bob_jid]);

    // ---- invite codes ----
    let (status, body) = gw
        .get(&format!("/group/inviteCode/grp?groupJid={gjid}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let first = body["inviteCode"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 22);
    assert_eq!(
        body["inviteUrl"],
        format!("https://chat.whatsapp.com/{first}")
    );
    let (status, body) = gw
        .post("/group/revokeInviteCode/grp", json!({"groupJid": gjid}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["revoked"], true);
    let fresh = body["inviteCode"].as_str().unwrap().to_owned();
    assert_ne!(fresh, first);
    assert_eq!(sim_group(&sim, &gjid).await["invite_code"], fresh.as_str());
    let (status, body) = gw
        .get(&format!("/group/inviteInfo/grp?inviteCode={fresh}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], gjid.as_str());
    assert_eq!(body["subject"], "VIP");
    let (status, body) = gw
        .get(&format!("/group/inviteInfo/grp?inviteCode={first}"))
        .await;
    assert_eq!(status, 404, "revoked: {body}");
    assert_eq!(
        body["response"]["message"],
        json!(["No invite info", first])
    );
    let (status, _) = gw.get("/group/inviteInfo/grp?inviteCode=short").await;
    assert_eq!(status, 400);

    // ---- sendInvite: the link reaches the number as a text ----
    let (status, body) = gw
        .post(
            "/group/sendInvite/grp",
            json!({"groupJid": gjid, "description": "Join us", "numbers": [alice]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"send": true, "inviteUrl": format!("https://chat.whatsapp.com/{fresh}")})
    );
    let expected = format!("Join us\n\nhttps://chat.whatsapp.com/{fresh}");
    eventually("the invite text on alice's phone", || async {
        let msgs: Value = reqwest::get(format!("{}/sim/accounts/{alice}/messages", sim.http_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        msgs.as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == expected.as_str())
            .then_some(())
    })
    .await;

    // ---- participants, settings, ephemeral ----
    let (status, body) = gw
        .post(
            "/group/updateParticipant/grp",
            json!({"groupJid": gjid, "action": "kick", "participants": [bob]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(bad_request_messages(&body)[0]["property"], "action");
    let (status, body) = gw
        .post(
            "/group/updateParticipant/grp",
            json!({"groupJid": gjid, "action": "remove", "participants": [bob, "15559999992"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let results = body["updateParticipants"].as_array().unwrap();
    assert_eq!(results[0]["status"], "200");
    assert_eq!(results[0]["jid"], bob_jid.as_str());
    assert_eq!(results[1]["status"], "404");
    assert_eq!(results[1]["content"]["attrs"]["error"], "404");
    let view = sim_group(&sim, &gjid).await;
    assert_eq!(view["participants"].as_array().unwrap().len(), 2);
    let (status, body) = gw
        .post(
            "/group/updateParticipant/grp",
            json!({"groupJid": gjid, "action": "promote", "participants": [alice]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        sim_group(&sim, &gjid).await["participants"][1]["admin"],
        "admin"
    );
    let (status, body) = gw
        .post(
            "/group/updateSetting/grp",
            json!({"groupJid": gjid, "action": "announcement"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({}));
    assert_eq!(sim_group(&sim, &gjid).await["announce"], true);
    let (status, body) = gw
        .post(
            "/group/toggleEphemeral/grp",
            json!({"groupJid": gjid, "expiration": 5}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(sim_group(&sim, &gjid).await["ephemeral"], 0);
    let (status, body) = gw
        .post(
            "/group/toggleEphemeral/grp",
            json!({"groupJid": gjid, "expiration": 604800}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"success": true}));
    assert_eq!(sim_group(&sim, &gjid).await["ephemeral"], 604800);

    // ---- what the phones do reaches the webhook ----
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/groups/{gjid}/subject"),
        json!({"actor": alice, "subject": "Renamed by Alice"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    at = webhook_from(&receiver, at, |b| b["event"] == "groups.update").await;
    let update = receiver.seen()[at].json();
    assert_eq!(
        update["data"],
        json!([{"id": gjid, "subject": "Renamed by Alice", "author": alice_jid}])
    );
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/groups/{gjid}/participants"),
        json!({"actor": alice, "action": "add", "participants": [bob]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    at = webhook_from(&receiver, at, |b| b["event"] == "group-participants.update").await;
    let update = receiver.seen()[at].json();
    assert_eq!(
        update["data"],
        json!({
            "id": gjid,
            "author": alice_jid,
            "participants": [bob_jid],
            "action": "add",
            "participantsData": [{"jid": bob_jid, "phoneNumber": bob}]
        })
    );
    // Bob's phone makes a group with us in it: groups.upsert.
    let (status, body) = sim_post(
        &sim,
        "/sim/groups",
        json!({"creator": bob, "subject": "Bob's", "participants": [owner]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let bobs = body["jid"].as_str().unwrap().to_owned();
    at = webhook_from(&receiver, at, |b| b["event"] == "groups.upsert").await;
    let upsert = receiver.seen()[at].json();
    assert_eq!(upsert["data"][0]["id"], bobs.as_str());
    assert_eq!(upsert["data"][0]["subject"], "Bob's");
    assert_eq!(upsert["data"][0]["owner"], bob_jid.as_str());
    assert_eq!(
        upsert["data"][0]["participants"].as_array().unwrap().len(),
        2
    );

    // Not an admin there: refused with WhatsApp's reason, nothing changes.
    let (status, body) = gw
        .post(
            "/group/updateSetting/grp",
            json!({"groupJid": bobs, "action": "locked"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["response"]["message"],
        json!(["Error updating setting", "Error: not-authorized"])
    );
    assert_eq!(sim_group(&sim, &bobs).await["locked"], false);

    // ---- accept an invite, then leave ----
    let (status, body) = sim_post(
        &sim,
        "/sim/groups",
        json!({"creator": bob, "subject": "Open", "participants": [alice]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let open = body["jid"].as_str().unwrap().to_owned();
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/groups/{open}/invite"),
        json!({"actor": bob}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let code = body["code"].as_str().unwrap().to_owned();
    let (status, body) = gw
        .get(&format!("/group/acceptInviteCode/grp?inviteCode={code}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"accepted": true, "groupJid": open}));
    let members = sim_group(&sim, &open).await["participants"].clone();
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["jid"] == owner_jid.as_str()),
        "{members}"
    );
    let (status, body) = gw
        .call(
            Method::DELETE,
            &format!("/group/leaveGroup/grp?groupJid={open}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"groupJid": open, "leave": true}));
    let members = sim_group(&sim, &open).await["participants"].clone();
    assert!(
        !members
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["jid"] == owner_jid.as_str()),
        "{members}"
    );
    let (status, body) = gw
        .get(&format!("/group/findGroupInfos/grp?groupJid={open}"))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["response"]["message"],
        json!(["Error fetching group", "Error: forbidden"])
    );
    let (status, body) = gw
        .get("/group/acceptInviteCode/grp?inviteCode=AAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(status, 404, "{body}");

    gw.stop().await;
    sim.shutdown().await.unwrap();
}

/// Creates instance `name`, links it to a new account on the simulator and answers the phone.
async fn linked(gw: &Gateway, sim: &RunningSim, name: &str) -> String {
    let phone = account(sim, "Owner").await;
    let (status, body) = gw
        .post(
            "/instance/create",
            json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let code = eventually("a QR from connect", || async {
        let (status, body) = gw.get(&format!("/instance/connect/{name}")).await;
        assert_eq!(status, 200, "{body}");
        body["code"].as_str().map(str::to_owned)
    })
    .await;
    let (status, body) = sim_post(
        sim,
        &format!("/sim/accounts/{phone}/scan"),
        json!({"qr": code}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually("the instance to open", || async {
        let (_, body) = gw.get(&format!("/instance/connectionState/{name}")).await;
        (body["instance"]["state"] == "open").then_some(())
    })
    .await;
    phone
}

async fn sim_profile(sim: &RunningSim, phone: &str) -> Value {
    reqwest::get(format!("{}/sim/accounts/{phone}/profile", sim.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn privacy_block_list_about_and_picture_over_http() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(29),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), None).await;
    let phone = linked(&gw, &sim, "me").await;
    let other = account(&sim, "Other").await;

    // Privacy: WhatsApp's defaults, then all six set (one IQ each).
    let (status, body) = gw.get("/chat/fetchPrivacySettings/me").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"readreceipts": "all", "profile": "contacts", "status": "contacts",
               "online": "all", "last": "contacts", "groupadd": "contacts"})
    );
    let wanted = json!({"readreceipts": "none", "profile": "all", "status": "contact_blacklist",
                        "online": "match_last_seen", "last": "none", "groupadd": "contacts"});
    let (status, body) = gw
        .post("/chat/updatePrivacySettings/me", wanted.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"update": "success", "data": wanted}));
    assert_eq!(sim_profile(&sim, &phone).await["privacy"], wanted);
    let (status, body) = gw.get("/chat/fetchPrivacySettings/me").await;
    assert_eq!((status, body), (200, wanted.clone()));
    let (status, body) = gw
        .post(
            "/chat/updatePrivacySettings/me",
            json!({"readreceipts": "contacts"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        bad_request_messages(&body)[0][0],
        "readreceipts is not one of enum values: all,none"
    );
    assert_eq!(sim_profile(&sim, &phone).await["privacy"], wanted);

    // Block list.
    let (status, body) = gw
        .post(
            "/chat/updateBlockStatus/me",
            json!({"number": other, "status": "block"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"block": "success"}));
    assert_eq!(
        sim_profile(&sim, &phone).await["blocked"],
        json!([format!("{other}@s.whatsapp.net")])
    );
    let (status, _) = gw
        .post(
            "/chat/updateBlockStatus/me",
            json!({"number": other, "status": "mute"}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = gw
        .post(
            "/chat/updateBlockStatus/me",
            json!({"number": other, "status": "unblock"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(sim_profile(&sim, &phone).await["blocked"], json!([]));

    // About text: WhatsApp's length limit is the server's refusal, a 400.
    let (status, body) = gw
        .post(
            "/chat/updateProfileStatus/me",
            json!({"status": "Available"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"update": "success"}));
    assert_eq!(sim_profile(&sim, &phone).await["status"], "Available");
    let (status, body) = gw
        .post(
            "/chat/updateProfileStatus/me",
            json!({"status": "x".repeat(200)}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["response"]["message"],
        json!(["Error updating profile status", "Error: bad-request"])
    );
    assert_eq!(sim_profile(&sim, &phone).await["status"], "Available");

    // Picture: JPEG only, then removed.
    let b64 = base64::engine::general_purpose::STANDARD;
    let (status, _) = gw
        .post(
            "/chat/updateProfilePicture/me",
            json!({"picture": b64.encode(b"not an image")}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(sim_profile(&sim, &phone).await["picture_bytes"], 0);
    let (status, body) = gw
        .post(
            "/chat/updateProfilePicture/me",
            json!({"picture": format!("data:image/jpeg;base64,{}", b64.encode(jpeg()))}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sim_profile(&sim, &phone).await["picture_bytes"],
        jpeg().len()
    );
    let (status, body) = gw
        .call(Method::DELETE, "/chat/removeProfilePicture/me", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"update": "success"}));
    let profile = sim_profile(&sim, &phone).await;
    assert_eq!(profile["picture_bytes"], 0);
    assert_eq!(profile["picture_id"], Value::Null);

    gw.stop().await;
    sim.shutdown().await.unwrap();
}
