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
        let mut config = Config::from_env(vars).unwrap();
        // As `zapin serve` does: a key file in the data dir, so secrets are sealed at rest.
        config.resolve_master_key().unwrap();
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
    // A picture URL aimed at this machine is refused before any request (the media fetch's
    // guard; ZAPIN_ALLOW_PRIVATE_URLS is off here).
    for url in [
        "http://127.0.0.1:9/me.jpg",
        "http://[::1]:9/me.jpg",
        "http://10.0.0.1/me.jpg",
    ] {
        let (status, body) = gw
            .post("/chat/updateProfilePicture/me", json!({"picture": url}))
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(body.to_string().contains("private"), "{url}: {body}");
    }
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

async fn sim_account(sim: &RunningSim, phone: &str) -> Value {
    reqwest::get(format!("{}/sim/accounts/{phone}", sim.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The chats findChats lists, as `(remoteJid, lastMessage text, unreadCount)`.
fn chat_rows(chats: &Value) -> Vec<(String, String, i64)> {
    chats
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["remoteJid"].as_str().unwrap().to_owned(),
                c["lastMessage"]["message"]["conversation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["unreadCount"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn contacts_chats_and_profiles_over_http_on_sqlite() {
    contacts_chats_and_profiles(None).await;
}

#[tokio::test]
async fn contacts_chats_and_profiles_over_http_on_postgres() {
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let database = common::PgDatabase::create(&admin).await;
    contacts_chats_and_profiles(Some(&database.url)).await;
    database.drop_database().await;
}

/// findContacts and findChats from what the instance saw (a message in, a reply out, a group
/// message), fetchProfile / fetchBusinessProfile from what another account set over its own
/// instance and the simulator's business profile, and updateProfileName reaching the server.
async fn contacts_chats_and_profiles(database_url: Option<&str>) {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(31),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), database_url).await;
    let me = linked(&gw, &sim, "me").await;
    let other = linked(&gw, &sim, "other").await;
    let carol = account(&sim, "Carol").await;
    let me_jid = format!("{me}@s.whatsapp.net");
    let carol_jid = format!("{carol}@s.whatsapp.net");
    let other_jid = format!("{other}@s.whatsapp.net");

    // Nothing seen yet.
    let (status, body) = gw.post("/chat/findChats/me", json!({})).await;
    assert_eq!((status, body), (200, json!([])));

    // Carol writes; we answer; Carol's group writes.
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{carol}/messages"),
        json!({"to": me_jid, "text": "hello?"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = sim_post(
        &sim,
        "/sim/groups",
        json!({"creator": carol, "subject": "Bakery", "participants": [me]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let group_jid = body["jid"].as_str().unwrap().to_owned();
    eventually("Carol's message in findChats", || async {
        let (_, chats) = gw.post("/chat/findChats/me", json!({})).await;
        (chat_rows(&chats) == vec![(carol_jid.clone(), "hello?".to_owned(), 1)]).then_some(())
    })
    .await;
    let (status, body) = gw
        .post(
            "/message/sendText/me",
            json!({"number": carol, "text": "hi Carol"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{carol}/messages"),
        json!({"to": group_jid, "text": "fresh bread"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chats = eventually("both chats in findChats", || async {
        let (_, chats) = gw.post("/chat/findChats/me", json!({})).await;
        (chats.as_array().unwrap().len() == 2 && chats[1]["lastMessage"]["key"]["fromMe"] == true)
            .then_some(chats)
    })
    .await;
    assert_eq!(
        chat_rows(&chats),
        vec![
            (group_jid.clone(), "fresh bread".to_owned(), 1),
            (carol_jid.clone(), "hi Carol".to_owned(), 1),
        ]
    );
    let carol_chat = &chats[1];
    assert_eq!(carol_chat["pushName"], "Carol");
    assert_eq!(carol_chat["isSaved"], true);
    assert_eq!(carol_chat["lastMessage"]["pushName"], "Você");
    assert_eq!(carol_chat["windowActive"], true);
    assert!(carol_chat["id"].as_str().unwrap().starts_with('c'));
    assert_eq!(
        chats[0]["lastMessage"]["key"]["participant"],
        carol_jid.as_str()
    );

    // where.remoteJid (a bare number), take/skip, and a time window that excludes everything.
    let (_, one) = gw
        .post("/chat/findChats/me", json!({"where": {"remoteJid": carol}}))
        .await;
    assert_eq!(
        chat_rows(&one),
        vec![(carol_jid.clone(), "hi Carol".to_owned(), 1)]
    );
    let (_, page) = gw
        .post("/chat/findChats/me", json!({"take": 1, "skip": 1}))
        .await;
    assert_eq!(chat_rows(&page)[0].0, carol_jid);
    let (_, none) = gw
        .post(
            "/chat/findChats/me",
            json!({"where": {"messageTimestamp": {"gte": "2001-01-01", "lte": "2001-01-02"}}}),
        )
        .await;
    assert_eq!(none, json!([]));

    // Reading Carol's message clears her chat's unread count.
    let inbound = eventually("Carol's message id", || async {
        let (_, found) = gw
            .post(
                "/chat/findMessages/me",
                json!({"where": {"key": {"remoteJid": carol_jid}}}),
            )
            .await;
        // (Evolution ignores a false `fromMe` filter: pick the inbound record.)
        found["messages"]["records"]
            .as_array()?
            .iter()
            .find(|r| r["key"]["fromMe"] == false)?["key"]["id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let (status, body) = gw
        .post(
            "/chat/markMessageAsRead/me",
            json!({"readMessages": [{"id": inbound, "fromMe": false, "remoteJid": carol_jid}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, one) = gw
        .post(
            "/chat/findChats/me",
            json!({"where": {"remoteJid": carol_jid}}),
        )
        .await;
    assert_eq!(one[0]["unreadCount"], 0);

    // findContacts: Carol (named by her message), the group, and paging.
    let (status, contacts) = gw.post("/chat/findContacts/me", json!({})).await;
    assert_eq!(status, 200, "{contacts}");
    let mut kinds: Vec<(String, String, String)> = contacts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["remoteJid"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
                c["pushName"].to_string(),
            )
        })
        .collect();
    kinds.sort();
    let mut expected = vec![
        (
            carol_jid.clone(),
            "contact".to_owned(),
            "\"Carol\"".to_owned(),
        ),
        (group_jid.clone(), "group".to_owned(), "null".to_owned()),
    ];
    expected.sort();
    assert_eq!(kinds, expected);
    let carol_contact = contacts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["remoteJid"] == carol_jid.as_str())
        .unwrap();
    assert_eq!(carol_contact["isSaved"], true);
    assert_eq!(carol_contact["isGroup"], false);
    assert_eq!(carol_contact["id"], carol_chat["id"]);
    let (_, found) = gw
        .post(
            "/chat/findContacts/me",
            json!({"where": {"remoteJid": carol}}),
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["remoteJid"], carol_jid.as_str());
    let (_, first) = gw
        .post("/chat/findContacts/me", json!({"offset": 1, "page": 1}))
        .await;
    let (_, second) = gw
        .post("/chat/findContacts/me", json!({"offset": 1, "page": 2}))
        .await;
    assert_eq!(first.as_array().unwrap().len(), 1);
    assert_eq!(second.as_array().unwrap().len(), 1);
    assert_ne!(first[0]["remoteJid"], second[0]["remoteJid"]);
    let (status, body) = gw
        .post("/chat/findContacts/me", json!({"where": {"pushName": ""}}))
        .await;
    assert_eq!(status, 400, "{body}");

    // The other account sets its about text and picture over its own instance.
    let (status, _) = gw
        .post(
            "/chat/updateProfileStatus/other",
            json!({"status": "At the oven"}),
        )
        .await;
    assert_eq!(status, 200);
    let b64 = base64::engine::general_purpose::STANDARD;
    let (status, _) = gw
        .post(
            "/chat/updateProfilePicture/other",
            json!({"picture": b64.encode(jpeg())}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, profile) = gw
        .post("/chat/fetchProfile/me", json!({"number": other}))
        .await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["wuid"], other_jid.as_str());
    assert_eq!(profile["numberExists"], true);
    assert_eq!(profile["status"]["status"], "At the oven");
    assert_eq!(profile["isBusiness"], false);
    let url = profile["picture"].as_str().unwrap();
    let picture = reqwest::get(url).await.unwrap();
    assert_eq!(picture.status(), 200);
    assert_eq!(picture.bytes().await.unwrap().to_vec(), jpeg());
    let (status, body) = gw
        .post("/chat/fetchProfilePictureUrl/me", json!({"number": other}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"wuid": other_jid, "profilePictureUrl": url}));
    let (status, body) = gw
        .post("/chat/fetchProfilePictureUrl/me", json!({"number": carol}))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"wuid": carol_jid, "profilePictureUrl": null}))
    );
    let (status, _) = gw.post("/chat/fetchProfilePictureUrl/me", json!({})).await;
    assert_eq!(status, 400);
    // Carol has neither: no picture, a null about text, her push name.
    let (_, profile) = gw
        .post("/chat/fetchProfile/me", json!({"number": carol}))
        .await;
    assert_eq!(profile["picture"], Value::Null);
    assert_eq!(profile["status"]["status"], Value::Null);
    assert_eq!(profile["name"], "Carol");
    // A number that is not on WhatsApp.
    let (status, body) = gw
        .post("/chat/fetchProfile/me", json!({"number": "15559999990"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["response"]["message"],
        json!([{"jid": "15559999990@s.whatsapp.net", "exists": false, "number": "15559999990"}])
    );
    let (status, _) = gw
        .post("/chat/fetchProfile/me", json!({"number": ""}))
        .await;
    assert_eq!(status, 400);

    // Business profiles: the simulator makes the other account a business.
    let (status, body) = gw
        .post("/chat/fetchBusinessProfile/me", json!({"number": carol}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"isBusiness": false, "message": "Not is business profile", "jid": carol_jid,
               "exists": true, "number": carol, "name": "Carol"})
    );
    let resp = reqwest::Client::new()
        .put(format!("{}/sim/accounts/{other}/business", sim.http_url()))
        .json(
            &json!({"description": "Sourdough daily", "email": "shop@bread.example",
                      "website": "https://bread.example", "category": "Bakery"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = gw
        .post("/chat/fetchBusinessProfile/me", json!({"number": other}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["isBusiness"], true);
    assert_eq!(body["wid"], other_jid.as_str());
    assert_eq!(body["description"], "Sourdough daily");
    assert_eq!(body["website"], json!(["https://bread.example"]));
    assert_eq!(body["email"], "shop@bread.example");
    assert_eq!(body["category"], "Bakery");
    let (_, profile) = gw
        .post("/chat/fetchProfile/me", json!({"number": other}))
        .await;
    assert_eq!(profile["isBusiness"], true);
    assert_eq!(profile["website"], "https://bread.example");
    assert_eq!(profile["description"], "Sourdough daily");
    // Its own instance asks about itself (no number).
    let (_, body) = gw.post("/chat/fetchBusinessProfile/other", json!({})).await;
    assert_eq!(body["isBusiness"], true);

    // Push name: sent to the server, remembered, shown as the instance's profile name.
    let (status, body) = gw
        .post("/chat/updateProfileName/me", json!({"name": "Maria Shop"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"update": "success"}));
    eventually("the server to store the push name", || async {
        (sim_account(&sim, &me).await["push_name"] == "Maria Shop").then_some(())
    })
    .await;
    let (_, own) = gw.post("/chat/fetchProfile/me", json!({})).await;
    assert_eq!(own["wuid"], me_jid.as_str());
    assert_eq!(own["name"], "Maria Shop");
    assert_eq!(own["status"], "open");
    assert_eq!(own["numberExists"], true);
    let (_, instances) = gw.get("/instance/fetchInstances?instanceName=me").await;
    assert_eq!(instances[0]["profileName"], "Maria Shop");
    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x".repeat(26)}),
    ] {
        let (status, body) = gw.post("/chat/updateProfileName/me", bad).await;
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(sim_account(&sim, &me).await["push_name"], "Maria Shop");

    gw.stop().await;
    sim.shutdown().await.unwrap();
}

/// A proxy written for the tests, listening on 127.0.0.1: HTTP `CONNECT` with Basic
/// credentials, or SOCKS5 with username/password (RFC 1929). It counts the tunnels it opened and
/// copies bytes both ways.
struct TestProxy {
    port: u16,
    tunnels: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestProxy {
    async fn start(socks: bool, user: &'static str, pass: &'static str) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tunnels = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = tunnels.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let count = count.clone();
                tokio::spawn(async move {
                    let target = if socks {
                        socks5_accept(&mut client, user, pass).await
                    } else {
                        http_accept(&mut client, user, pass).await
                    };
                    let Some(target) = target else {
                        return;
                    };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let ok: &[u8] = if socks {
                        &[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]
                    } else {
                        b"HTTP/1.1 200 Connection established\r\n\r\n"
                    };
                    if client.write_all(ok).await.is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });

        async fn http_accept(
            client: &mut tokio::net::TcpStream,
            user: &str,
            pass: &str,
        ) -> Option<String> {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(client.read_u8().await.ok()?);
            }
            let text = String::from_utf8(head).ok()?;
            let target = text.strip_prefix("CONNECT ")?.split(' ').next()?.to_owned();
            let b64 = base64::engine::general_purpose::STANDARD;
            let expected = format!(
                "proxy-authorization: basic {}",
                b64.encode(format!("{user}:{pass}")).to_lowercase()
            );
            if !text.to_lowercase().contains(&expected) {
                let _ = client
                    .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                    .await;
                return None;
            }
            Some(target)
        }

        async fn socks5_accept(
            client: &mut tokio::net::TcpStream,
            user: &str,
            pass: &str,
        ) -> Option<String> {
            let mut head = [0u8; 2];
            client.read_exact(&mut head).await.ok()?;
            let mut methods = vec![0u8; usize::from(head[1])];
            client.read_exact(&mut methods).await.ok()?;
            if !methods.contains(&2) {
                client.write_all(&[5, 0xFF]).await.ok()?;
                return None;
            }
            client.write_all(&[5, 2]).await.ok()?;
            let ver = client.read_u8().await.ok()?;
            let ulen = client.read_u8().await.ok()?;
            let mut u = vec![0u8; usize::from(ulen)];
            client.read_exact(&mut u).await.ok()?;
            let plen = client.read_u8().await.ok()?;
            let mut p = vec![0u8; usize::from(plen)];
            client.read_exact(&mut p).await.ok()?;
            if ver != 1 || u != user.as_bytes() || p != pass.as_bytes() {
                client.write_all(&[1, 1]).await.ok()?;
                return None;
            }
            client.write_all(&[1, 0]).await.ok()?;
            let mut req = [0u8; 4];
            client.read_exact(&mut req).await.ok()?;
            let host = match req[3] {
                1 => {
                    let mut ip = [0u8; 4];
                    client.read_exact(&mut ip).await.ok()?;
                    std::net::Ipv4Addr::from(ip).to_string()
                }
                3 => {
                    let len = client.read_u8().await.ok()?;
                    let mut name = vec![0u8; usize::from(len)];
                    client.read_exact(&mut name).await.ok()?;
                    String::from_utf8(name).ok()?
                }
                _ => return None,
            };
            let port = client.read_u16().await.ok()?;
            Some(format!("{host}:{port}"))
        }

        Self {
            port,
            tunnels,
            task,
        }
    }

    fn tunnels(&self) -> usize {
        self.tunnels.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Restarts the instance's connection and waits until it is open again.
async fn reconnect(gw: &Gateway, name: &str) {
    let (status, body) = gw
        .call(Method::POST, &format!("/instance/restart/{name}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("the instance to open again", || async {
        let (_, body) = gw.get(&format!("/instance/connectionState/{name}")).await;
        (body["instance"]["state"] == "open").then_some(())
    })
    .await;
}

/// proxy/set and proxy/find: a proxy that does not work is refused (nothing stored), a working
/// one (HTTP CONNECT, then SOCKS5, both with credentials) carries the instance's WhatsApp socket
/// from its next connection on, its credentials are sealed at rest, and a disabled proxy is
/// bypassed again.
#[tokio::test]
async fn proxy_set_find_and_the_socket_through_it() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(37),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), None).await;
    linked(&gw, &sim, "px").await;
    let friend = account(&sim, "Friend").await;

    let (status, body) = gw.get("/proxy/find/px").await;
    assert_eq!((status, body), (200, Value::Null));

    // Refused: schema, a closed port, wrong credentials, an https proxy.
    let (status, body) = gw
        .post(
            "/proxy/set/px",
            json!({"enabled": true, "host": "127.0.0.1", "port": 8080, "protocol": "ftp"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let http = TestProxy::start(false, "ana", "s3cret-pass").await;
    let socks = TestProxy::start(true, "bea", "other-s3cret").await;
    for bad in [
        json!({"enabled": true, "host": "127.0.0.1", "port": closed.to_string(), "protocol": "http"}),
        json!({"enabled": true, "host": "127.0.0.1", "port": http.port.to_string(),
               "protocol": "http", "username": "ana", "password": "wrong"}),
        json!({"enabled": true, "host": "127.0.0.1", "port": socks.port.to_string(),
               "protocol": "socks5", "username": "bea", "password": "wrong"}),
        json!({"enabled": true, "host": "127.0.0.1", "port": http.port.to_string(),
               "protocol": "https", "username": "ana", "password": "s3cret-pass"}),
        json!({"enabled": true, "host": "127.0.0.1", "port": "70000", "protocol": "http"}),
    ] {
        let (status, body) = gw.post("/proxy/set/px", bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_eq!(bad_request_messages(&body), json!(["Invalid proxy"]));
    }
    let (_, body) = gw.get("/proxy/find/px").await;
    assert_eq!(body, Value::Null);
    assert_eq!((http.tunnels(), socks.tunnels()), (0, 0));

    // HTTP CONNECT with credentials: checked (one tunnel), stored sealed, used by the next
    // connection.
    let set = json!({"enabled": true, "host": "127.0.0.1", "port": http.port.to_string(),
                     "protocol": "http", "username": "ana", "password": "s3cret-pass"});
    let (status, body) = gw.post("/proxy/set/px", set.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"proxy": {"instanceName": "px", "proxy": set}}));
    assert_eq!(http.tunnels(), 1);
    let (status, row) = gw.get("/proxy/find/px").await;
    assert_eq!(status, 200);
    assert_eq!(row["enabled"], true);
    assert_eq!(row["host"], "127.0.0.1");
    assert_eq!(row["port"], http.port.to_string());
    assert_eq!(row["protocol"], "http");
    assert_eq!(row["username"], "ana");
    assert_eq!(row["password"], "s3cret-pass");
    let stored: Vec<(String,)> = {
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.path().join("zapin.sqlite3").display()
        ))
        .await
        .unwrap();
        let rows = sqlx::query_as("SELECT secret FROM proxies")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    };
    assert!(stored[0].0.starts_with("enc1:"), "{}", stored[0].0);
    assert!(!stored[0].0.contains("s3cret") && !stored[0].0.contains("ana"));
    reconnect(&gw, "px").await;
    assert_eq!(http.tunnels(), 2, "the socket went through the HTTP proxy");
    let (status, body) = gw
        .post(
            "/message/sendText/px",
            json!({"number": friend, "text": "through the proxy"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    eventually("the friend to get it", || async {
        let got: Value = reqwest::get(format!("{}/sim/accounts/{friend}/messages", sim.http_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        got.as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "through the proxy")
            .then_some(())
    })
    .await;

    // SOCKS5 with credentials.
    let (status, body) = gw
        .post(
            "/proxy/set/px",
            json!({"enabled": true, "host": "127.0.0.1", "port": socks.port.to_string(),
                   "protocol": "socks5", "username": "bea", "password": "other-s3cret"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(socks.tunnels(), 1);
    reconnect(&gw, "px").await;
    assert_eq!(
        socks.tunnels(),
        2,
        "the socket went through the SOCKS5 proxy"
    );
    assert_eq!(http.tunnels(), 2);

    // Disabled: fields blanked, the next connection is direct.
    let (status, body) = gw
        .post(
            "/proxy/set/px",
            json!({"enabled": false, "host": "127.0.0.1", "port": "1", "protocol": "http"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["proxy"]["proxy"],
        json!({"enabled": false, "host": "", "port": "", "protocol": "", "username": "",
               "password": ""})
    );
    let (_, row) = gw.get("/proxy/find/px").await;
    assert_eq!(
        (row["enabled"].clone(), row["host"].clone()),
        (json!(false), json!(""))
    );
    reconnect(&gw, "px").await;
    assert_eq!((http.tunnels(), socks.tunnels()), (2, 2));

    http.task.abort();
    socks.task.abort();
    gw.stop().await;
    sim.shutdown().await.unwrap();
}
