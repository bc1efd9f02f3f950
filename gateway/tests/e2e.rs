//! End to end over HTTP: the gateway wired to an in-process simulator, with a real webhook
//! receiver. create → connect (QR) → scan on the sim → `connection.update` open → sendText →
//! the sim phone decrypts it → the phone replies → `messages.upsert` reaches the webhook.
//! Then a restart of the gateway: the linked instance comes back open without a QR.
//!
//! The whole flow runs once per backend: embedded SQLite, and PostgreSQL in a database of its
//! own (created for the run and dropped after it) so parallel runs and CI's reused server never
//! share tables; both exercise the migrations on start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Receiver, eventually};
use serde_json::{Value, json};
use zapin_gateway::db::Db;
use zapin_gateway::runtime::{self, EngineRuntime};
use zapin_gateway::webhook::Dispatcher;
use zapin_gateway::{AppState, Config, app};
use zapin_sim::{RunningSim, SimConfig};

const GLOBAL: &str = "e2e-global-key";

struct Gateway {
    base: String,
    client: reqwest::Client,
    engine: std::sync::Arc<EngineRuntime>,
    server: tokio::task::JoinHandle<()>,
    db: Db,
}

/// `global` receives the global webhook, by event, with only `contacts.upsert` switched on.
fn config(
    sim: &RunningSim,
    dir: &std::path::Path,
    database_url: Option<&str>,
    global: &str,
) -> Config {
    let mut vars = vec![
        ("WEBHOOK_GLOBAL_ENABLED".to_owned(), "true".to_owned()),
        ("WEBHOOK_GLOBAL_URL".to_owned(), global.to_owned()),
        (
            "WEBHOOK_GLOBAL_WEBHOOK_BY_EVENTS".to_owned(),
            "true".to_owned(),
        ),
        (
            "WEBHOOK_EVENTS_CONTACTS_UPSERT".to_owned(),
            "true".to_owned(),
        ),
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
    Config::from_env(vars).unwrap()
}

impl Gateway {
    async fn start(config: Config) -> Self {
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

    /// Stops like `zapin serve` does, then checks that nothing the runtime started is left: the
    /// bridge holds the runtime, so a leaked bridge task would keep it alive.
    async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
        drop(self.client);
        self.engine.shutdown().await;
        let weak = std::sync::Arc::downgrade(&self.engine);
        drop(self.engine);
        // HTTP connection tasks still holding the router end once their sockets close.
        eventually("every holder of the engine runtime to end", || async {
            weak.upgrade().is_none().then_some(())
        })
        .await;
        self.db.close().await;
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
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

async fn sim_get(sim: &RunningSim, path: &str) -> Value {
    reqwest::get(format!("{}{path}", sim.http_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The first webhook body that `f` accepts, waiting for new deliveries.
async fn webhook(receiver: &Receiver, f: impl Fn(&Value) -> bool) -> Value {
    webhook_from(receiver, 0, f).await
}

/// [`webhook`] among the deliveries from index `from` on.
async fn webhook_from(receiver: &Receiver, from: usize, f: impl Fn(&Value) -> bool) -> Value {
    let mut n = from + 1;
    loop {
        let seen = receiver.wait_for(n).await;
        if let Some(body) = seen
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(|s| s.json())
            .find(|b| f(b))
        {
            return body;
        }
        n = seen.len() + 1;
    }
}

#[tokio::test]
async fn pair_send_receive_and_restart_over_http_on_sqlite() {
    flow(None).await;
}

#[tokio::test]
async fn pair_send_receive_and_restart_over_http_on_postgres() {
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let database = common::PgDatabase::create(&admin).await;
    flow(Some(&database.url)).await;
    database.drop_database().await;
}

async fn flow(database_url: Option<&str>) {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(11),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let global = format!("{}/global", receiver.base);
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(config(&sim, dir.path(), database_url, &global)).await;

    let (status, body) = sim_post(&sim, "/sim/accounts", json!({"push_name": "Maria"})).await;
    assert_eq!(status, 201, "{body}");
    let owner = body["phone"].as_str().unwrap().to_owned();
    // The contact the instance chats with: another account on the sim.
    let (status, body) = sim_post(&sim, "/sim/accounts", json!({"push_name": "Joao"})).await;
    assert_eq!(status, 201, "{body}");
    let phone = body["phone"].as_str().unwrap().to_owned();
    let contact = format!("{phone}@s.whatsapp.net");

    let (status, created) = gw
        .call(
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({
                "instanceName": "e2e",
                "integration": "WHATSAPP-BAILEYS",
                "webhook": {"url": format!("{}/hook", receiver.base), "events": [
                    "QRCODE_UPDATED", "CONNECTION_UPDATE", "MESSAGES_UPSERT",
                    "MESSAGES_UPDATE", "SEND_MESSAGE", "CHATS_UPSERT"
                ]}
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let instance_id = created["instance"]["instanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, state) = gw
        .call(reqwest::Method::GET, "/instance/connectionState/e2e", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(state["instance"]["instanceName"], "e2e");

    // connect waits (bounded) for the first QR; poll again if the sim was slower than that.
    let qr = eventually("a QR from connect", || async {
        let (status, body) = gw
            .call(reqwest::Method::GET, "/instance/connect/e2e", None)
            .await;
        assert_eq!(status, 200, "{body}");
        body.get("code").is_some().then_some(body)
    })
    .await;
    let code = qr["code"].as_str().unwrap().to_owned();
    assert!(
        qr["base64"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert!(qr["count"].as_u64().unwrap() >= 1);
    assert_eq!(qr["pairingCode"], Value::Null);
    let qr_event = webhook(&receiver, |b| b["event"] == "qrcode.updated").await;
    assert_eq!(qr_event["instance"], "e2e");
    assert!(
        qr_event.get("sender").is_none(),
        "no sender before the own JID is known: {qr_event}"
    );
    assert!(qr_event["data"]["qrcode"]["code"].is_string());

    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{owner}/scan"),
        json!({"qr": code}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let open = webhook(&receiver, |b| {
        b["event"] == "connection.update" && b["data"]["state"] == "open"
    })
    .await;
    let wuid = open["data"]["wuid"].as_str().unwrap().to_owned();
    assert_eq!(wuid, format!("{owner}@s.whatsapp.net"));
    assert_eq!(open["data"]["statusReason"], 200);
    assert_eq!(open["sender"], wuid.as_str());

    // whatsappNumbers: one usync query; broadcasts first, then users in request order.
    let (status, numbers) = gw
        .call(
            reqwest::Method::POST,
            "/chat/whatsappNumbers/e2e",
            Some(json!({"numbers": [format!("+{phone}"), "15559999999", "status@broadcast"]})),
        )
        .await;
    assert_eq!(status, 200, "{numbers}");
    assert_eq!(
        numbers[0],
        json!({"jid": "status@broadcast", "exists": false, "number": "status@broadcast"})
    );
    assert_eq!(numbers[1]["jid"], contact.as_str());
    assert_eq!(numbers[1]["exists"], true);
    assert_eq!(numbers[1]["number"], format!("+{phone}"));
    assert_eq!(
        numbers[2],
        json!({"jid": "15559999999@s.whatsapp.net", "exists": false, "number": "15559999999"})
    );
    assert_eq!(numbers.as_array().unwrap().len(), 3);
    // More numbers than one usync query takes: answered in batches.
    let many: Vec<String> = (0..60).map(|n| format!("1556{n:07}")).collect();
    let (status, numbers) = gw
        .call(
            reqwest::Method::POST,
            "/chat/whatsappNumbers/e2e",
            Some(json!({ "numbers": many })),
        )
        .await;
    assert_eq!(status, 200, "{numbers}");
    let answered: Vec<&str> = numbers
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap())
        .collect();
    assert_eq!(answered, many);

    // setPresence reaches the network: a second instance, linked to the contact's account,
    // subscribes to our presence and sees each change as presence.update.
    let (status, body) = gw
        .call(
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({
                "instanceName": "watch",
                "integration": "WHATSAPP-BAILEYS",
                "webhook": {"url": format!("{}/watch", receiver.base),
                            "events": ["CONNECTION_UPDATE", "PRESENCE_UPDATE"]}
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let watch_qr = eventually("a QR for the watcher", || async {
        let (_, body) = gw
            .call(reqwest::Method::GET, "/instance/connect/watch", None)
            .await;
        body["code"].as_str().map(str::to_owned)
    })
    .await;
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{phone}/scan"),
        json!({"qr": watch_qr}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    webhook(&receiver, |b| {
        b["instance"] == "watch"
            && b["event"] == "connection.update"
            && b["data"]["state"] == "open"
    })
    .await;
    let (_, rows) = gw
        .call(
            reqwest::Method::GET,
            "/instance/fetchInstances?instanceName=watch",
            None,
        )
        .await;
    let watch_id = rows[0]["id"].as_str().unwrap().to_owned();
    gw.engine
        .session(&watch_id)
        .unwrap()
        .subscribe_presence(&wuid)
        .await
        .unwrap();
    // The subscription is answered with our current availability first.
    webhook(&receiver, |b| {
        b["instance"] == "watch" && b["event"] == "presence.update"
    })
    .await;
    for presence in ["unavailable", "available"] {
        let from = receiver.seen().len();
        let (status, body) = gw
            .call(
                reqwest::Method::POST,
                "/instance/setPresence/e2e",
                Some(json!({ "presence": presence })),
            )
            .await;
        assert_eq!((status, body), (201, json!({ "presence": presence })));
        let seen = webhook_from(&receiver, from, |b| {
            b["instance"] == "watch"
                && b["event"] == "presence.update"
                && b["data"]["presences"][wuid.as_str()]["lastKnownPresence"] == presence
        })
        .await;
        assert_eq!(seen["data"]["id"], wuid.as_str(), "{seen}");
    }
    // Chat states need a chat: answered, not sent (Evolution's setPresence is global).
    let (status, body) = gw
        .call(
            reqwest::Method::POST,
            "/instance/setPresence/e2e",
            Some(json!({ "presence": "composing" })),
        )
        .await;
    assert_eq!((status, body), (201, json!({ "presence": "composing" })));
    // chat/sendPresence shows the chat state in that chat for `delay` ms, then `paused`; the
    // contact's linked device sees both, in order, and the answer comes after the `paused`.
    let from = receiver.seen().len();
    let (status, body) = gw
        .call(
            reqwest::Method::POST,
            "/chat/sendPresence/e2e",
            Some(json!({ "number": phone, "presence": "composing", "delay": 300 })),
        )
        .await;
    assert_eq!((status, body), (201, json!({ "presence": "composing" })));
    let chat_state = |state: &'static str| {
        let wuid = wuid.clone();
        move |b: &Value| {
            b["instance"] == "watch"
                && b["event"] == "presence.update"
                && b["data"]["presences"][wuid.as_str()]["lastKnownPresence"] == state
        }
    };
    let composing = webhook_from(&receiver, from, chat_state("composing")).await;
    assert_eq!(composing["data"]["id"], wuid.as_str(), "{composing}");
    let at = from
        + receiver.seen()[from..]
            .iter()
            .position(|s| chat_state("composing")(&s.json()))
            .unwrap();
    webhook_from(&receiver, at, chat_state("paused")).await;
    let (status, _) = gw
        .call(reqwest::Method::DELETE, "/instance/delete/watch", None)
        .await;
    assert_eq!(status, 200);
    let (_, state) = gw
        .call(reqwest::Method::GET, "/instance/connectionState/e2e", None)
        .await;
    assert_eq!(state["instance"]["state"], "open");
    let (_, rows) = gw
        .call(
            reqwest::Method::GET,
            "/instance/fetchInstances?instanceName=e2e",
            None,
        )
        .await;
    assert_eq!(rows[0]["connectionStatus"], "open");
    assert_eq!(rows[0]["ownerJid"], wuid.as_str());

    // Send to the phone; the phone decrypts it.
    let (status, sent) = gw
        .call(
            reqwest::Method::POST,
            "/message/sendText/e2e",
            Some(json!({"number": phone, "text": "hello from zapin"})),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["status"], "PENDING");
    assert_eq!(sent["key"]["fromMe"], true);
    assert_eq!(sent["key"]["remoteJid"], contact.as_str());
    assert_eq!(sent["message"]["conversation"], "hello from zapin");
    let sent_id = sent["key"]["id"].as_str().unwrap().to_owned();
    let send_event = webhook(&receiver, |b| b["event"] == "send.message").await;
    assert_eq!(send_event["data"]["key"]["id"], sent_id.as_str());
    // The first send opens the chat: chats.upsert, without a name (we wrote first).
    let chat = webhook(&receiver, |b| {
        b["event"] == "chats.upsert" && b["data"][0]["remoteJid"] == contact.as_str()
    })
    .await;
    assert_eq!(
        chat["data"],
        json!([{"remoteJid": contact, "instanceId": instance_id, "unreadMessages": 0}])
    );
    assert_eq!(send_event["sender"], wuid.as_str());
    eventually("the phone to decrypt the text", || async {
        let got = sim_get(&sim, &format!("/sim/accounts/{phone}/messages")).await;
        got.as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "hello from zapin" && m["id"] == sent_id.as_str())
            .then_some(())
    })
    .await;

    // Server acks race the send's commit: each send's row is stored before its ack is
    // reported (the update finds it: `messageId`), and none stays PENDING.
    let mut ids = vec![sent_id.clone()];
    for n in 0..4 {
        let (status, sent) = gw
            .call(
                reqwest::Method::POST,
                "/message/sendText/e2e",
                Some(json!({"number": phone, "text": format!("burst {n}")})),
            )
            .await;
        assert_eq!(status, 201, "{sent}");
        ids.push(sent["key"]["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let update = webhook(&receiver, |b| {
            b["event"] == "messages.update" && b["data"]["keyId"] == id.as_str()
        })
        .await;
        assert_eq!(update["data"]["messageId"], id.as_str(), "{update}");
        assert_eq!(update["data"]["fromMe"], true);
        assert_eq!(update["sender"], wuid.as_str());
        let (status, found) = gw
            .call(
                reqwest::Method::POST,
                "/chat/findMessages/e2e",
                Some(json!({"where": {"key": {"id": id}}})),
            )
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["messages"]["total"], 1);
        let record = &found["messages"]["records"][0];
        assert_eq!(record["source"], "web");
        assert_ne!(record["MessageUpdate"][0]["status"], "PENDING", "{record}");
    }

    // Nothing stays claimed once the sends are answered: the in-flight set is bounded by the
    // sends running at once, not by the sends or chats ever seen.
    assert_eq!(gw.engine.sends_in_flight(), 0);

    // A send refused before the wire (no such account) is withdrawn: 400, no row, no event.
    let (status, refused) = gw
        .call(
            reqwest::Method::POST,
            "/message/sendText/e2e",
            Some(json!({"number": "15559999999", "text": "nobody there"})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    let (status, found) = gw
        .call(
            reqwest::Method::POST,
            "/chat/findMessages/e2e",
            Some(json!({"where": {"key": {"remoteJid": "15559999999@s.whatsapp.net"}}})),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["messages"]["total"], 0, "{found}");
    assert_eq!(gw.engine.sends_in_flight(), 0);

    // The phone replies; messages.upsert reaches the webhook and the row is stored.
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{phone}/messages"),
        json!({"to": wuid, "text": "hi back"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let upsert = webhook(&receiver, |b| {
        b["event"] == "messages.upsert" && b["data"]["message"]["conversation"] == "hi back"
    })
    .await;
    assert_eq!(upsert["data"]["key"]["fromMe"], false);
    assert_eq!(upsert["data"]["status"], "DELIVERY_ACK");
    assert_eq!(upsert["data"]["key"]["remoteJid"], contact.as_str());
    assert_eq!(upsert["data"]["pushName"], "Joao");
    // Its push name is new: contacts.upsert, one object (Evolution's message path).
    let contact_event = webhook(&receiver, |b| b["event"] == "contacts.upsert").await;
    assert_eq!(
        contact_event["data"],
        json!({"remoteJid": contact, "pushName": "Joao", "profilePicUrl": null,
               "instanceId": instance_id})
    );
    assert_eq!(contact_event["sender"], wuid.as_str());
    // The instance webhook does not list CONTACTS_UPSERT: it came through the global webhook
    // (WEBHOOK_EVENTS_CONTACTS_UPSERT on, by event: `/contacts-upsert`).
    let global_contact = receiver
        .seen()
        .into_iter()
        .find(|s| s.json()["event"] == "contacts.upsert")
        .unwrap();
    assert_eq!(global_contact.path, "/global/contacts-upsert");

    // Someone new writes first: the chat is reported with their push name, and the contact.
    let (status, body) = sim_post(&sim, "/sim/accounts", json!({"push_name": "Ana"})).await;
    assert_eq!(status, 201, "{body}");
    let ana = format!("{}@s.whatsapp.net", body["phone"].as_str().unwrap());
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{}/messages", body["phone"].as_str().unwrap()),
        json!({"to": wuid, "text": "hi, it's Ana"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chat = webhook(&receiver, |b| {
        b["event"] == "chats.upsert" && b["data"][0]["remoteJid"] == ana.as_str()
    })
    .await;
    assert_eq!(
        chat["data"],
        json!([{"remoteJid": ana, "instanceId": instance_id, "name": "Ana",
                "unreadMessages": 0}])
    );
    let contact_event = webhook(&receiver, |b| {
        b["event"] == "contacts.upsert" && b["data"]["remoteJid"] == ana.as_str()
    })
    .await;
    assert_eq!(contact_event["data"]["pushName"], "Ana");
    // Both chats and both contacts were stored with their events.
    let (_, rows) = gw
        .call(
            reqwest::Method::GET,
            "/instance/fetchInstances?instanceName=e2e",
            None,
        )
        .await;
    assert_eq!(rows[0]["_count"]["Chat"], 2, "{rows}");
    assert_eq!(rows[0]["_count"]["Contact"], 2, "{rows}");
    // Each event went only where it is selected: contacts to the global webhook (the instance
    // does not list it), chats to the instance's (WEBHOOK_EVENTS_CHATS_UPSERT is off).
    for seen in receiver.seen() {
        let event = seen.json()["event"].clone();
        if event == "contacts.upsert" {
            assert_eq!(seen.path, "/global/contacts-upsert");
        } else if event == "chats.upsert" {
            assert_eq!(seen.path, "/hook");
        } else {
            assert!(!seen.path.starts_with("/global"), "{}: {event}", seen.path);
        }
    }
    webhook(&receiver, |b| {
        b["event"] == "messages.upsert" && b["data"]["key"]["remoteJid"] == ana.as_str()
    })
    .await;
    // Two received messages: everything minus what we sent. (`fromMe: false` filters nothing,
    // as in Evolution, which applies `fromMe` only when true.)
    let mut totals = Vec::new();
    for filter in [json!({}), json!({"fromMe": false}), json!({"fromMe": true})] {
        let (status, found) = gw
            .call(
                reqwest::Method::POST,
                "/chat/findMessages/e2e",
                Some(json!({"where": {"key": filter}})),
            )
            .await;
        assert_eq!(status, 200, "{found}");
        totals.push(found["messages"]["total"].as_u64().unwrap());
    }
    assert_eq!(totals[0], totals[1], "{totals:?}");
    assert_eq!(totals[0] - totals[2], 2, "{totals:?}");
    // The sender's push name was stored with its message: whatsappNumbers names it.
    let (status, numbers) = gw
        .call(
            reqwest::Method::POST,
            "/chat/whatsappNumbers/e2e",
            Some(json!({"numbers": [phone]})),
        )
        .await;
    assert_eq!(status, 200, "{numbers}");
    assert_eq!(numbers[0]["name"], "Joao", "{numbers}");

    // Reply to it: the quote is loaded from the database by key id and reaches the phone as
    // contextInfo; the record reports that contextInfo.
    let reply_to = upsert["data"]["key"]["id"].as_str().unwrap().to_owned();
    let (status, reply) = gw
        .call(
            reqwest::Method::POST,
            "/message/sendText/e2e",
            Some(
                json!({"number": phone, "text": "re: hi", "quoted": {"key": {"id": reply_to}},
                        "mentioned": [phone]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["messageType"], "conversation");
    assert_eq!(reply["contextInfo"]["stanzaId"], reply_to.as_str());
    assert_eq!(reply["contextInfo"]["participant"], contact.as_str());
    assert_eq!(
        reply["contextInfo"]["quotedMessage"],
        json!({"conversation": "hi back"})
    );
    assert!(
        reply["contextInfo"].get("mentionedJid").is_none(),
        "mentions only apply to groups: {reply}"
    );
    let reply_id = reply["key"]["id"].as_str().unwrap().to_owned();
    let got = eventually("the phone to decrypt the reply", || async {
        let got = sim_get(&sim, &format!("/sim/accounts/{phone}/messages")).await;
        got.as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == reply_id.as_str())
            .cloned()
    })
    .await;
    assert_eq!(got["text"], "re: hi", "{got}");
    assert_eq!(got["context"]["stanza_id"], reply_to.as_str(), "{got}");
    assert_eq!(got["context"]["quoted_text"], "hi back", "{got}");

    // In a group, `mentioned` applies.
    let (status, group) = sim_post(
        &sim,
        "/sim/groups",
        json!({"creator": phone, "subject": "Team", "participants": [owner]}),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let group_jid = group["jid"].as_str().unwrap().to_owned();
    let (status, sent) = gw
        .call(
            reqwest::Method::POST,
            "/message/sendText/e2e",
            Some(json!({"number": group_jid, "text": "hey @joao", "mentioned": [phone]})),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["contextInfo"]["mentionedJid"], json!([contact]));
    let group_id = sent["key"]["id"].as_str().unwrap().to_owned();
    let got = eventually("the phone to decrypt the group text", || async {
        let got = sim_get(&sim, &format!("/sim/accounts/{phone}/messages")).await;
        got.as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == group_id.as_str())
            .cloned()
    })
    .await;
    assert_eq!(got["context"]["mentioned_jid"], json!([contact]), "{got}");

    // whatsappNumbers on groups: ours answers with its subject, an unknown one does not exist.
    let unknown_group = "120363000000000001@g.us";
    let (status, numbers) = gw
        .call(
            reqwest::Method::POST,
            "/chat/whatsappNumbers/e2e",
            Some(json!({"numbers": [group_jid, unknown_group]})),
        )
        .await;
    assert_eq!(status, 200, "{numbers}");
    assert_eq!(
        numbers,
        json!([
            {"jid": group_jid, "exists": true, "number": group_jid, "name": "Team"},
            {"jid": unknown_group, "exists": false, "number": unknown_group},
        ])
    );

    // groupsIgnore: a group message from the phone is neither stored nor reported, while a DM
    // sent after it is (the bridge handles events in order, so the DM's row is the barrier).
    let settings = |groups_ignore: bool| {
        json!({"rejectCall": false, "groupsIgnore": groups_ignore, "alwaysOnline": false,
               "readMessages": false, "readStatus": false, "syncFullHistory": false})
    };
    let (status, body) = gw
        .call(
            reqwest::Method::POST,
            "/settings/set/e2e",
            Some(settings(true)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{phone}/messages"),
        json!({"to": group_jid, "text": "ignored group text"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ignored_id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{phone}/messages"),
        json!({"to": wuid, "text": "after the group"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let barrier_id = body["id"].as_str().unwrap().to_owned();
    let find = |id: String| {
        let gw = &gw;
        async move {
            let (status, found) = gw
                .call(
                    reqwest::Method::POST,
                    "/chat/findMessages/e2e",
                    Some(json!({"where": {"key": {"id": id}}})),
                )
                .await;
            assert_eq!(status, 200, "{found}");
            found["messages"]["total"].as_u64().unwrap_or_default()
        }
    };
    eventually("the DM after the group message to be stored", || async {
        (find(barrier_id.clone()).await == 1).then_some(())
    })
    .await;
    assert_eq!(
        find(ignored_id.clone()).await,
        0,
        "groupsIgnore stores nothing"
    );
    assert!(
        !receiver
            .seen()
            .iter()
            .any(|s| s.json()["data"]["key"]["id"] == ignored_id.as_str()),
        "groupsIgnore reports nothing"
    );
    let (status, body) = gw
        .call(
            reqwest::Method::POST,
            "/settings/set/e2e",
            Some(settings(false)),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Every delivery is a full envelope; the send is reported as send.message only.
    for body in receiver.seen().iter().map(|s| s.json()) {
        assert!(body["event"].is_string(), "{body}");
        assert!(
            !(body["event"] == "messages.upsert" && body["data"]["key"]["fromMe"] == true),
            "{body}"
        );
        // The refused send was never reported.
        assert_ne!(body["data"]["message"]["conversation"], "nobody there");
    }

    // Restart: the linked instance comes back open without a QR.
    gw.stop().await;
    let before = receiver.seen().len();
    let gw = Gateway::start(config(&sim, dir.path(), database_url, &global)).await;
    eventually("the instance to reopen after restart", || async {
        let (_, state) = gw
            .call(reqwest::Method::GET, "/instance/connectionState/e2e", None)
            .await;
        (state["instance"]["state"] == "open").then_some(())
    })
    .await;
    let (_, body) = gw
        .call(reqwest::Method::GET, "/instance/connect/e2e", None)
        .await;
    assert_eq!(
        body,
        json!({"instance": {"instanceName": "e2e", "state": "open"}})
    );
    let reopened = webhook_from(&receiver, before, |b| {
        b["event"] == "connection.update" && b["data"]["state"] == "open"
    })
    .await;
    let after: Vec<Value> = receiver.seen()[before..].iter().map(|s| s.json()).collect();
    assert!(
        after.iter().all(|b| b["event"] != "qrcode.updated"),
        "no QR after a restart of a linked instance"
    );
    // The stored JID is known from the start of the new process.
    assert_eq!(reopened["sender"], wuid.as_str());
    assert!(
        after.iter().all(|b| b["sender"] == wuid.as_str()),
        "every event after the restart names the sender: {after:?}"
    );

    // Logout unlinks; a second logout is refused as not connected.
    let (status, body) = gw
        .call(reqwest::Method::DELETE, "/instance/logout/e2e", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"]["message"], "Instance logged out");
    let (status, _) = gw
        .call(reqwest::Method::DELETE, "/instance/logout/e2e", None)
        .await;
    assert_eq!(status, 400);
    gw.stop().await;
    sim.shutdown().await.unwrap();
}
