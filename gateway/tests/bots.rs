//! The chatbot configuration routes (`/evolutionBot/*`, `/n8n/*`) over real HTTP, on SQLite
//! and PostgreSQL: Evolution's row shapes, validation texts, trigger rules, settings with
//! fallback, sessions (changeStatus, fetchSessions), ignoreJid, instance scoping, the
//! integration switch, secrets sealed at rest and instance deletion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::Method;
use serde_json::{Value, json};
use zapin_bots::{Session, SessionStatus, SessionStore as _};
use zapin_gateway::db::Db;
use zapin_gateway::webhook::Routing;
use zapin_gateway::{AppState, Config, app};

use common::{TestDb, backends};

const GLOBAL: &str = "global-test-key";
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct Gateway {
    base: String,
    client: reqwest::Client,
    db: Db,
    state: AppState,
}

impl Gateway {
    async fn start(tdb: &TestDb, extra: &[(&str, &str)]) -> Self {
        let mut vars = vec![
            ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
            ("SERVER_URL".to_owned(), "http://zapin.test".to_owned()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::from_env(vars).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(config, tdb.db.clone());
        let router = app(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            db: tdb.db.clone(),
            state,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("apikey", key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")),
        )
    }

    async fn create_instance(&self, name: &str) -> (String, String) {
        let (status, res) = self
            .call(
                Method::POST,
                "/instance/create",
                GLOBAL,
                Some(json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"})),
            )
            .await;
        assert_eq!(status, 201, "{res}");
        (
            res["instance"]["instanceId"].as_str().unwrap().to_owned(),
            res["hash"].as_str().unwrap().to_owned(),
        )
    }
}

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: std::future::Future<Output = TestDb>,
{
    for tdb in backends(Routing::default()).await {
        eprintln!("backend: {}", tdb.db.backend_name());
        let tdb = f(tdb).await;
        tdb.cleanup().await;
    }
}

fn bad(text: &str) -> Value {
    json!({"status": 400, "error": "Bad Request", "response": {"message": [text]}})
}

fn session(instance_id: &str, jid: &str, kind: &str, bot: &str) -> Session {
    Session {
        id: format!("s-{jid}-{kind}"),
        instance: instance_id.to_owned(),
        remote_jid: jid.to_owned(),
        kind: kind.to_owned(),
        bot_id: Some(bot.to_owned()),
        session_id: jid.to_owned(),
        push_name: Some("Ana".into()),
        status: SessionStatus::Opened,
        await_user: true,
        context: json!({}),
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evolution_bot_routes_follow_evolution() {
    each_backend(|tdb| async move {
        let gw = Gateway::start(&tdb, &[("ZAPIN_MASTER_KEY", MASTER_KEY)]).await;
        let (id_a, token_a) = gw.create_instance("bots-a").await;
        let (_id_b, token_b) = gw.create_instance("bots-b").await;

        // The guard chain on one- and two-parameter routes: unknown instance 404 before the
        // key, then 401 for a key that does not open the instance.
        for path in ["/evolutionBot/find/nope", "/evolutionBot/fetch/b1/nope", "/n8n/fetchSessions/b1/nope"] {
            let (s, e) = gw.call(Method::GET, path, "wrong-key", None).await;
            assert_eq!(s, 404, "{path}: {e}");
            assert_eq!(e["response"]["message"], json!(["The \"nope\" instance does not exist"]));
        }
        for path in ["/evolutionBot/find/bots-a", "/evolutionBot/fetch/b1/bots-a"] {
            let (s, e) = gw.call(Method::GET, path, "wrong-key", None).await;
            assert_eq!((s, e["response"]["message"].clone()), (401, json!("Unauthorized")), "{path}");
        }

        // No settings row yet: Evolution's defaults.
        let (s, defaults) = gw
            .call(Method::GET, "/evolutionBot/fetchSettings/bots-a", &token_a, None)
            .await;
        assert_eq!(s, 200);
        assert_eq!(
            defaults,
            json!({"expire": 300, "keywordFinish": "bye", "delayMessage": 1000,
                   "unknownMessage": "Sorry, I dont understand", "listeningFromMe": true,
                   "stopBotFromMe": true, "keepOpen": false, "debounceTime": 1,
                   "ignoreJids": [], "splitMessages": false, "timePerChar": 0,
                   "fallbackId": "", "fallback": null})
        );

        // Schema errors: Evolution's nested-array 400.
        let (s, e) = gw
            .call(Method::POST, "/evolutionBot/create/bots-a", &token_a, Some(json!({"enabled": true})))
            .await;
        assert_eq!(s, 400);
        assert_eq!(
            e["response"]["message"],
            json!([["instance requires property \"apiUrl\"", "instance requires property \"triggerType\""]])
        );

        // Create: the row in Evolution's shape; unset settings take the column defaults and
        // a settings row is created from them.
        let (s, bot) = gw
            .call(
                Method::POST,
                "/evolutionBot/create/bots-a",
                &token_a,
                Some(json!({"enabled": true, "description": "greeter", "apiUrl": "http://127.0.0.1:9/bot",
                            "apiKey": "sk-very-secret", "triggerType": "keyword",
                            "triggerOperator": "equals", "triggerValue": "hi", "keepOpen": true})),
            )
            .await;
        assert_eq!(s, 201, "{bot}");
        let bot_id = bot["id"].as_str().unwrap().to_owned();
        assert_eq!(bot["apiKey"], "sk-very-secret");
        assert_eq!(bot["apiUrl"], "http://127.0.0.1:9/bot");
        assert_eq!(bot["keepOpen"], true);
        assert_eq!(bot["expire"], 0);
        assert_eq!(bot["listeningFromMe"], false);
        assert_eq!(bot["keywordFinish"], Value::Null);
        assert_eq!(bot["triggerValue"], "hi");
        assert_eq!(bot["instanceId"], id_a.as_str());
        let keys: Vec<&str> = bot.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["id", "enabled", "description", "apiUrl", "apiKey", "expire", "keywordFinish",
                  "delayMessage", "unknownMessage", "listeningFromMe", "stopBotFromMe", "keepOpen",
                  "debounceTime", "ignoreJids", "splitMessages", "timePerChar", "triggerType",
                  "triggerOperator", "triggerValue", "createdAt", "updatedAt", "instanceId"] {
            assert!(keys.contains(&k), "{k} missing from {bot}");
        }
        let (_, settings) = gw
            .call(Method::GET, "/evolutionBot/fetchSettings/bots-a", &token_a, None)
            .await;
        assert_eq!(settings["keepOpen"], true);
        assert_eq!(settings["botIdFallback"], Value::Null);

        // The apiKey is sealed at rest.
        let raw: Vec<(String,)> = match (gw.db.sqlite_pool(), gw.db.postgres_pool()) {
            (Some(p), _) => sqlx::query_as("SELECT COALESCE(secret, '') || params FROM bot_configs")
                .fetch_all(p).await.unwrap(),
            (_, Some(p)) => sqlx::query_as("SELECT COALESCE(secret, '') || params FROM bot_configs")
                .fetch_all(p).await.unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(raw.len(), 1);
        assert!(!raw[0].0.contains("sk-very-secret"), "{raw:?}");
        assert!(raw[0].0.starts_with("enc1:"));

        // Trigger rules: duplicate keyword, incomplete keyword, a regex that does not compile,
        // a second "all" bot.
        let body = |extra: Value| {
            let mut b = json!({"enabled": true, "apiUrl": "http://127.0.0.1:9/other"});
            b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            Some(b)
        };
        let (s, e) = gw.call(Method::POST, "/evolutionBot/create/bots-a", &token_a,
            body(json!({"triggerType": "keyword", "triggerOperator": "equals", "triggerValue": "hi"}))).await;
        assert_eq!((s, e), (400, bad("Trigger already exists")));
        let (s, e) = gw.call(Method::POST, "/evolutionBot/create/bots-a", &token_a,
            body(json!({"triggerType": "keyword", "triggerOperator": "equals"}))).await;
        assert_eq!((s, e), (400, bad("Trigger operator and value are required")));
        let (s, e) = gw.call(Method::POST, "/evolutionBot/create/bots-a", &token_a,
            body(json!({"triggerType": "keyword", "triggerOperator": "regex", "triggerValue": "(unclosed"}))).await;
        assert_eq!(s, 400, "{e}");
        assert!(e["response"]["message"][0].as_str().unwrap().starts_with("Trigger regex does not compile"));
        let (s, all) = gw.call(Method::POST, "/evolutionBot/create/bots-a", &token_a,
            body(json!({"triggerType": "all"}))).await;
        assert_eq!(s, 201, "{all}");
        let all_id = all["id"].as_str().unwrap().to_owned();
        let (s, e) = gw.call(Method::POST, "/evolutionBot/create/bots-a", &token_a,
            body(json!({"triggerType": "all"}))).await;
        assert_eq!((s, e), (400, bad("You already have a EvolutionBot with an \"All\" trigger, you cannot have more bots while it is active")));
        // Nothing half-written: still two bots.
        let (_, list) = gw.call(Method::GET, "/evolutionBot/find/bots-a", &token_a, None).await;
        assert_eq!(list.as_array().unwrap().len(), 2);

        // Update keeps omitted fields; fetch reads it back; another instance sees nothing.
        let (s, up) = gw.call(Method::PUT, &format!("/evolutionBot/update/{bot_id}/bots-a"), &token_a,
            Some(json!({"enabled": false, "apiUrl": "http://127.0.0.1:9/v2", "triggerType": "keyword",
                        "triggerOperator": "contains", "triggerValue": "hello"}))).await;
        assert_eq!(s, 200, "{up}");
        assert_eq!(up["enabled"], false);
        assert_eq!(up["apiKey"], "sk-very-secret");
        assert_eq!(up["description"], "greeter");
        assert_eq!(up["keepOpen"], true);
        let (s, got) = gw.call(Method::GET, &format!("/evolutionBot/fetch/{bot_id}/bots-a"), &token_a, None).await;
        assert_eq!((s, got["triggerOperator"].clone()), (200, json!("contains")));
        let (s, got) = gw.call(Method::GET, &format!("/evolutionBot/fetch/{bot_id}/bots-b"), &token_b, None).await;
        assert_eq!((s, got), (200, Value::Null));
        let (s, _) = gw.call(Method::GET, &format!("/evolutionBot/fetch/{bot_id}/bots-a"), &token_b, None).await;
        assert_eq!(s, 401);
        let (s, e) = gw.call(Method::PUT, &format!("/evolutionBot/update/{bot_id}/bots-b"), &token_b,
            Some(json!({"enabled": true, "apiUrl": "x", "triggerType": "none"}))).await;
        assert_eq!((s, e["response"]["message"].clone()), (404, json!(["EvolutionBot not found"])));
        let (_, list_b) = gw.call(Method::GET, "/evolutionBot/find/bots-b", &token_b, None).await;
        assert_eq!(list_b, json!([]));

        // Settings with a fallback; fetchSettings embeds the fallback bot.
        let settings_body = json!({"expire": 20, "keywordFinish": "#sair", "delayMessage": 500,
            "unknownMessage": "?", "listeningFromMe": false, "stopBotFromMe": true, "keepOpen": false,
            "debounceTime": 0, "ignoreJids": [], "splitMessages": false, "timePerChar": 0,
            "fallbackId": all_id});
        let (s, set) = gw.call(Method::POST, "/evolutionBot/settings/bots-a", &token_a, Some(settings_body.clone())).await;
        assert_eq!(s, 200, "{set}");
        assert_eq!(set["fallbackId"], all_id.as_str());
        assert_eq!(set["botIdFallback"], all_id.as_str());
        assert_eq!(set["expire"], 20);
        let (_, fetched) = gw.call(Method::GET, "/evolutionBot/fetchSettings/bots-a", &token_a, None).await;
        assert_eq!(fetched["fallback"]["id"], all_id.as_str());
        assert_eq!(fetched["Fallback"]["id"], all_id.as_str());
        let mut unknown = settings_body.clone();
        unknown["fallbackId"] = json!("nope");
        let (s, e) = gw.call(Method::POST, "/evolutionBot/settings/bots-a", &token_a, Some(unknown)).await;
        assert_eq!((s, e), (400, bad("Fallback bot not found")));

        // ignoreJid: add twice, remove; without a settings row it is refused.
        for _ in 0..2 {
            let (s, r) = gw.call(Method::POST, "/evolutionBot/ignoreJid/bots-a", &token_a,
                Some(json!({"remoteJid": "123@g.us", "action": "add"}))).await;
            assert_eq!((s, r), (200, json!({"ignoreJids": ["123@g.us"]})));
        }
        let (_, r) = gw.call(Method::POST, "/evolutionBot/ignoreJid/bots-a", &token_a,
            Some(json!({"remoteJid": "123@g.us", "action": "remove"}))).await;
        assert_eq!(r, json!({"ignoreJids": []}));
        let (s, e) = gw.call(Method::POST, "/evolutionBot/ignoreJid/bots-b", &token_b,
            Some(json!({"remoteJid": "123@g.us", "action": "add"}))).await;
        assert_eq!((s, e), (400, bad("Settings not found")));

        // Sessions: fetchSessions by bot and kind, changeStatus paused/closed/delete.
        let store = gw.state.bots.store.clone();
        store.save(&session(&id_a, "5511@s.whatsapp.net", "evolution", &bot_id)).await.unwrap();
        store.save(&session(&id_a, "5522@s.whatsapp.net", "n8n", "other")).await.unwrap();
        let (s, sessions) = gw.call(Method::GET, &format!("/evolutionBot/fetchSessions/{bot_id}/bots-a"), &token_a, None).await;
        assert_eq!(s, 200);
        let sessions = sessions.as_array().unwrap().clone();
        assert_eq!(sessions.len(), 1, "{sessions:?}");
        assert_eq!(sessions[0]["remoteJid"], "5511@s.whatsapp.net");
        assert_eq!(sessions[0]["type"], "evolution");
        assert_eq!(sessions[0]["status"], "opened");
        assert_eq!(sessions[0]["botId"], bot_id.as_str());
        let (s, r) = gw.call(Method::POST, "/evolutionBot/changeStatus/bots-a", &token_a,
            Some(json!({"remoteJid": "5511@s.whatsapp.net", "status": "paused"}))).await;
        assert_eq!((s, r), (200, json!({"bot": {"instanceName": "bots-a", "bot":
            {"remoteJid": "5511@s.whatsapp.net", "status": "paused", "session": {"count": 1}}}})));
        assert_eq!(store.latest(&id_a, "5511@s.whatsapp.net").await.unwrap().unwrap().status, SessionStatus::Paused);
        // keepOpen is false in the settings row now: closed deletes.
        let (s, r) = gw.call(Method::POST, "/evolutionBot/changeStatus/bots-a", &token_a,
            Some(json!({"remoteJid": "5511@s.whatsapp.net", "status": "closed"}))).await;
        assert_eq!((s, r), (200, json!({"bot": {"instanceName": "bots-a", "bot":
            {"remoteJid": "5511@s.whatsapp.net", "status": "closed"}}})));
        assert!(store.latest(&id_a, "5511@s.whatsapp.net").await.unwrap().is_none());
        let (s, r) = gw.call(Method::POST, "/evolutionBot/changeStatus/bots-a", &token_a,
            Some(json!({"remoteJid": "5522@s.whatsapp.net", "status": "delete"}))).await;
        assert_eq!((s, r), (200, json!({"bot": {"remoteJid": "5522@s.whatsapp.net", "status": "delete"}})));
        let (s, e) = gw.call(Method::POST, "/evolutionBot/changeStatus/bots-a", &token_a,
            Some(json!({"remoteJid": "x", "status": "gone"}))).await;
        assert_eq!(s, 400, "{e}");

        // Delete: the bot's sessions go with it and it stops being the fallback.
        store.save(&session(&id_a, "5533@s.whatsapp.net", "evolution", &all_id)).await.unwrap();
        let (s, r) = gw.call(Method::DELETE, &format!("/evolutionBot/delete/{all_id}/bots-a"), &token_a, None).await;
        assert_eq!((s, r), (200, json!({"bot": {"id": all_id}})));
        assert!(store.latest(&id_a, "5533@s.whatsapp.net").await.unwrap().is_none());
        let (_, fetched) = gw.call(Method::GET, "/evolutionBot/fetchSettings/bots-a", &token_a, None).await;
        assert_eq!(fetched["fallbackId"], Value::Null);
        let (s, _) = gw.call(Method::DELETE, &format!("/evolutionBot/delete/{all_id}/bots-a"), &token_a, None).await;
        assert_eq!(s, 404);

        // Deleting the instance deletes its bots, settings and sessions.
        store.save(&session(&id_a, "5544@s.whatsapp.net", "evolution", &bot_id)).await.unwrap();
        let (s, _) = gw.call(Method::DELETE, "/instance/delete/bots-a", GLOBAL, None).await;
        assert_eq!(s, 200);
        assert!(store.list(&id_a, None).await.unwrap().is_empty());
        let counts: (i64, i64) = match (gw.db.sqlite_pool(), gw.db.postgres_pool()) {
            (Some(p), _) => sqlx::query_as("SELECT (SELECT COUNT(*) FROM bot_configs), (SELECT COUNT(*) FROM bot_kind_settings)")
                .fetch_one(p).await.unwrap(),
            (_, Some(p)) => sqlx::query_as("SELECT (SELECT COUNT(*) FROM bot_configs), (SELECT COUNT(*) FROM bot_kind_settings)")
                .fetch_one(p).await.unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(counts, (0, 0));
        tdb
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n8n_routes_honour_the_switch_and_its_duplicate_rule() {
    each_backend(|tdb| async move {
        let off = Gateway::start(&tdb, &[]).await;
        let (_, token) = off.create_instance("n8n-a").await;
        let (s, e) = off.call(Method::GET, "/n8n/find/n8n-a", &token, None).await;
        assert_eq!((s, e), (400, bad("N8n is disabled")));
        // The body is validated before the switch, as Evolution's router does.
        let (s, e) = off
            .call(Method::POST, "/n8n/create/n8n-a", &token, Some(json!({})))
            .await;
        assert_eq!(s, 400);
        assert_eq!(
            e["response"]["message"][0][0],
            "instance requires property \"enabled\""
        );

        let gw = Gateway::start(&tdb, &[("N8N_ENABLED", "true")]).await;
        let body = json!({"enabled": true, "webhookUrl": "http://127.0.0.1:9/webhook/x",
            "basicAuthUser": "u", "basicAuthPass": "p", "triggerType": "advanced",
            "triggerValue": "contains:pedido"});
        let (s, bot) = gw
            .call(
                Method::POST,
                "/n8n/create/n8n-a",
                &token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, 201, "{bot}");
        assert_eq!(bot["basicAuthPass"], "p");
        assert_eq!(bot["basicAuthUser"], "u");
        assert!(bot.get("basicAuthPassword").is_none());
        let mut again = body.clone();
        again["triggerValue"] = json!("contains:other");
        let (s, e) = gw
            .call(Method::POST, "/n8n/create/n8n-a", &token, Some(again))
            .await;
        assert_eq!((s, e), (400, bad("N8n already exists")));
        let mut same_trigger = body.clone();
        same_trigger["webhookUrl"] = json!("http://127.0.0.1:9/webhook/y");
        let (s, e) = gw
            .call(
                Method::POST,
                "/n8n/create/n8n-a",
                &token,
                Some(same_trigger),
            )
            .await;
        assert_eq!((s, e), (400, bad("Trigger already exists")));
        let (_, list) = gw.call(Method::GET, "/n8n/find/n8n-a", &token, None).await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        // Evolution Bot rows and n8n rows do not mix.
        let (_, evo) = gw
            .call(Method::GET, "/evolutionBot/find/n8n-a", &token, None)
            .await;
        assert_eq!(evo, json!([]));
        // The routes are also under /v1.
        let (s, list) = gw
            .call(Method::GET, "/v1/n8n/find/n8n-a", &token, None)
            .await;
        assert_eq!((s, list.as_array().unwrap().len()), (200, 1));
        tdb
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_creds_and_bot_rules() {
    each_backend(|tdb| async move {
        let gw = Gateway::start(
            &tdb,
            &[("OPENAI_ENABLED", "true"), ("ZAPIN_MASTER_KEY", MASTER_KEY)],
        )
        .await;
        let (id_a, token) = gw.create_instance("ai-a").await;
        let (_, token_b) = gw.create_instance("ai-b").await;
        let (s, e) = gw
            .call(Method::POST, "/openai/creds/ai-a", &token, Some(json!({"name": "main"})))
            .await;
        assert_eq!(s, 400);
        assert_eq!(e["response"]["message"], json!([["instance requires property \"apiKey\""]]));
        let (s, creds) = gw
            .call(Method::POST, "/openai/creds/ai-a", &token, Some(json!({"name": "main", "apiKey": "sk-1"})))
            .await;
        assert_eq!(s, 201, "{creds}");
        assert_eq!(creds["apiKey"], "sk-1");
        assert_eq!(creds["instanceId"], id_a.as_str());
        let creds_id = creds["id"].as_str().unwrap().to_owned();
        let (s, e) = gw
            .call(Method::POST, "/openai/creds/ai-a", &token, Some(json!({"name": "other", "apiKey": "sk-1"})))
            .await;
        assert_eq!((s, e), (400, bad("This API key is already registered. Please use a different API key.")));
        let (s, e) = gw
            .call(Method::POST, "/openai/creds/ai-a", &token, Some(json!({"name": "main", "apiKey": "sk-2"})))
            .await;
        assert_eq!((s, e), (400, bad("This credential name is already in use. Please choose a different name.")));
        // Sealed at rest.
        let raw: Vec<(String,)> = match (gw.db.sqlite_pool(), gw.db.postgres_pool()) {
            (Some(p), _) => sqlx::query_as("SELECT secret FROM bot_openai_creds").fetch_all(p).await.unwrap(),
            (_, Some(p)) => sqlx::query_as("SELECT secret FROM bot_openai_creds").fetch_all(p).await.unwrap(),
            _ => unreachable!(),
        };
        assert!(raw.iter().all(|(s,)| s.starts_with("enc1:") && !s.contains("sk-1")));
        // Another instance sees none of it and cannot use it.
        let (_, list_b) = gw.call(Method::GET, "/openai/creds/ai-b", &token_b, None).await;
        assert_eq!(list_b, json!([]));

        let base = json!({"enabled": true, "openaiCredsId": creds_id, "triggerType": "all"});
        let with = |extra: Value| {
            let mut b = base.clone();
            b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            Some(b)
        };
        let (s, e) = gw.call(Method::POST, "/openai/create/ai-a", &token, with(json!({"botType": "chatCompletion"}))).await;
        assert_eq!((s, e), (400, bad("Model is required")));
        let (s, e) = gw.call(Method::POST, "/openai/create/ai-a", &token, with(json!({"botType": "chatCompletion", "model": "gpt-4o"}))).await;
        assert_eq!((s, e), (400, bad("Max tokens is required")));
        let (s, e) = gw.call(Method::POST, "/openai/create/ai-a", &token, with(json!({"botType": "assistant"}))).await;
        assert_eq!((s, e), (400, bad("Assistant ID is required")));
        let (s, e) = gw.call(Method::POST, "/openai/create/ai-a", &token, with(json!({"botType": "robot"}))).await;
        assert_eq!(s, 400);
        assert_eq!(e["response"]["message"], json!([["botType is not one of enum values: assistant,chatCompletion"]]));
        let (s, e) = gw.call(Method::POST, "/openai/create/ai-b", &token_b, with(json!({"botType": "assistant", "assistantId": "asst_1"}))).await;
        assert_eq!((s, e), (400, bad("Openai Creds not found")));
        let (s, bot) = gw.call(Method::POST, "/openai/create/ai-a", &token, with(json!({"botType": "chatCompletion", "model": "gpt-4o", "maxTokens": 300, "systemMessages": ["Be brief."]}))).await;
        assert_eq!(s, 201, "{bot}");
        assert_eq!(bot["openaiCredsId"], creds_id.as_str());
        assert_eq!(bot["systemMessages"], json!(["Be brief."]));
        assert_eq!(bot["maxTokens"], 300);
        assert!(bot.get("openaiApiKey").is_none());

        // Settings carry openaiCredsId and speechToText.
        let (s, set) = gw.call(Method::POST, "/openai/settings/ai-a", &token, Some(json!({
            "openaiCredsId": creds_id, "expire": 10, "keywordFinish": "bye", "delayMessage": 100,
            "unknownMessage": "?", "listeningFromMe": false, "stopBotFromMe": true, "keepOpen": false,
            "debounceTime": 0, "ignoreJids": [], "speechToText": true}))).await;
        assert_eq!(s, 200, "{set}");
        assert_eq!(set["openaiCredsId"], creds_id.as_str());
        assert_eq!(set["speechToText"], true);
        assert_eq!(set["openaiIdFallback"], Value::Null);
        let (s, e) = gw.call(Method::POST, "/openai/settings/ai-a", &token, Some(json!({"expire": 1}))).await;
        assert_eq!(s, 400);
        assert_eq!(e["response"]["message"][0][0], "instance requires property \"openaiCredsId\"");
        // getModels without a reachable server: Evolution's message, not a hang.
        let (_, creds_list) = gw.call(Method::GET, "/openai/creds/ai-a", &token, None).await;
        assert_eq!(creds_list[0]["OpenaiAssistant"][0]["id"], bot["id"]);
        let (s, e) = gw.call(Method::GET, "/openai/getModels/ai-a?openaiCredsId=nope", &token, None).await;
        assert_eq!((s, e), (400, bad("OpenAI credentials not found for the provided ID")));

        // Deleting the credentials deletes the bots using them.
        let (s, r) = gw.call(Method::DELETE, &format!("/openai/creds/{creds_id}/ai-a"), &token, None).await;
        assert_eq!((s, r), (200, json!({"openaiCreds": {"id": creds_id}})));
        let (_, bots) = gw.call(Method::GET, "/openai/find/ai-a", &token, None).await;
        assert_eq!(bots, json!([]));
        let (s, _) = gw.call(Method::DELETE, &format!("/openai/creds/{creds_id}/ai-a"), &token, None).await;
        assert_eq!(s, 404);
        tdb
    })
    .await;
}
