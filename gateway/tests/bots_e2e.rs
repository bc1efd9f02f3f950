//! Chatbots end to end: the gateway wired to an in-process simulator; a simulated phone writes
//! to the instance, the stored message reaches the chatbot engine, the engine calls a local
//! server speaking the Evolution Bot API (and one speaking n8n's webhook API, behind Basic
//! auth), and the reply arrives decrypted at the phone, sent through the normal send path
//! (`send.message` in the webhooks). Then keywordFinish ends the session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Receiver, eventually};
use serde_json::{Value, json};
use zapin_gateway::db::Db;
use zapin_gateway::runtime::{self, EngineRuntime};
use zapin_gateway::webhook::Dispatcher;
use zapin_gateway::{AppState, Config, app};
use zapin_sim::{RunningSim, SimConfig};

const GLOBAL: &str = "bots-e2e-global-key";

struct Gateway {
    base: String,
    client: reqwest::Client,
    engine: Arc<EngineRuntime>,
    db: Db,
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
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            engine,
            db,
        }
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

async fn webhook(receiver: &Receiver, f: impl Fn(&Value) -> bool) -> Value {
    let mut n = 1;
    loop {
        let seen = receiver.wait_for(n).await;
        if let Some(body) = seen.iter().map(|s| s.json()).find(|b| f(b)) {
            return body;
        }
        n = seen.len() + 1;
    }
}

fn record(calls: &Calls, path: &str, headers: &HeaderMap, body: Value) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    calls.lock().unwrap().push((path.to_owned(), auth, body));
}

fn openai_auth(headers: &HeaderMap) -> Result<(), StatusCode> {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some("Bearer sk-test") => Ok(()),
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}

// OpenAI's published API, the parts the OpenAI bots use.
async fn models(headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    openai_auth(&headers)?;
    Ok(Json(json!({"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "created": 1_700_000_000, "owned_by": "system"}
    ]})))
}

async fn completions(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    openai_auth(&headers)?;
    record(&calls, "/v1/chat/completions", &headers, body.clone());
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    Ok(Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": format!("ai: {last} ({} messages)", messages.len())}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })))
}

async fn thread(headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    openai_auth(&headers)?;
    if headers.get("openai-beta").and_then(|v| v.to_str().ok()) != Some("assistants=v2") {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(Json(
        json!({"id": "thread_1", "object": "thread", "created_at": 1_700_000_000}),
    ))
}

async fn thread_message(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    openai_auth(&headers)?;
    record(&calls, "/v1/threads/messages", &headers, body);
    Ok(Json(json!({"id": "msg_1", "object": "thread.message"})))
}

async fn run(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    openai_auth(&headers)?;
    record(&calls, "/v1/threads/runs", &headers, body);
    Ok(Json(
        json!({"id": "run_1", "object": "thread.run", "status": "queued"}),
    ))
}

/// `requires_action` with one tool call until the tool output was submitted, then `completed`.
async fn run_status(
    State(calls): State<Calls>,
    headers: HeaderMap,
) -> Result<Json<Value>, StatusCode> {
    openai_auth(&headers)?;
    let submitted = calls
        .lock()
        .unwrap()
        .iter()
        .any(|c| c.0 == "/v1/submit_tool_outputs");
    Ok(Json(if submitted {
        json!({"id": "run_1", "object": "thread.run", "status": "completed"})
    } else {
        json!({"id": "run_1", "object": "thread.run", "status": "requires_action",
               "required_action": {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "get_order", "arguments": "{\"order\":\"42\"}"}}]}}})
    }))
}

async fn tool_outputs(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    openai_auth(&headers)?;
    record(&calls, "/v1/submit_tool_outputs", &headers, body);
    Ok(Json(
        json!({"id": "run_1", "object": "thread.run", "status": "queued"}),
    ))
}

async fn thread_messages(
    State(calls): State<Calls>,
    headers: HeaderMap,
) -> Result<Json<Value>, StatusCode> {
    openai_auth(&headers)?;
    let output = calls
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c.0 == "/v1/submit_tool_outputs")
        .map(|c| {
            c.2["tool_outputs"][0]["output"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    Ok(Json(
        json!({"object": "list", "data": [{"id": "msg_2", "object": "thread.message", "role": "assistant",
        "content": [{"type": "text", "text": {"value": format!("assistant: {output}"), "annotations": []}}]}]}),
    ))
}

/// The assistant's function (`functionUrl`).
async fn function(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    record(&calls, "/fn", &headers, body.clone());
    Json(json!({"order": body["functionArguments"]["order"], "status": "shipped"}))
}

// Dify's API: blocking chat messages (a conversation id to send back) and, for agents,
// server-sent events.
async fn dify(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<axum::response::Response, StatusCode> {
    use axum::response::IntoResponse as _;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer app-dify") {
        return Err(StatusCode::UNAUTHORIZED);
    }
    record(&calls, "/dify/v1/chat-messages", &headers, body.clone());
    let query = body["query"].as_str().unwrap_or_default();
    if body["response_mode"] == "streaming" {
        let events = [
            json!({"event": "agent_message", "conversation_id": "conv-a", "answer": "agent "}),
            json!({"event": "agent_thought", "thought": "thinking"}),
            json!({"event": "agent_message", "conversation_id": "conv-a", "answer": format!("says {query}")}),
            json!({"event": "message_end", "conversation_id": "conv-a"}),
        ];
        let text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        return Ok(([("content-type", "text/event-stream")], text).into_response());
    }
    let known = body["conversation_id"].as_str().is_some();
    Ok(Json(json!({"event": "message", "conversation_id": "conv-1",
        "answer": format!("dify: {query} (known conversation: {known})")}))
    .into_response())
}

async fn flowise(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    record(&calls, "/api/v1/prediction/flow-1", &headers, body.clone());
    Json(
        json!({"text": format!("flowise: {}", body["question"].as_str().unwrap_or_default()),
                "chatId": "c", "sessionId": body["overrideConfig"]["sessionId"]}),
    )
}

async fn evoai(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("evo-key") {
        return Err(StatusCode::UNAUTHORIZED);
    }
    record(&calls, "/evoai/agent", &headers, body.clone());
    let text = body["params"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    Ok(Json(json!({"jsonrpc": "2.0", "id": body["id"], "result": {
        "id": "task-1", "status": {"state": "completed"},
        "artifacts": [{"parts": [{"type": "text", "text": format!("evoai: {text}")}]}]}})))
}

// Typebot's v1 chat API: a greeting with a choice, then the end of the flow.
async fn typebot_start(
    State(calls): State<Calls>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    record(&calls, "/tb/startChat", &headers, body.clone());
    let name = body["prefilledVariables"]["pushName"]
        .as_str()
        .unwrap_or_default();
    Json(json!({
        "sessionId": "tb-1",
        "typebot": {"id": "t1", "theme": {}, "settings": {}},
        "messages": [{"id": "m1", "type": "text", "content": {"type": "richText", "richText": [
            {"type": "p", "children": [{"text": "Hello "}, {"text": name, "bold": true}]}]}}],
        "input": {"id": "i1", "type": "choice input", "items": [
            {"id": "a", "content": "Shoes"}, {"id": "b", "content": "Hats"}]}
    }))
}

async fn typebot_continue(
    State(calls): State<Calls>,
    headers: HeaderMap,
    axum::extract::Path(session): axum::extract::Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    if session != "tb-1" {
        return Err(StatusCode::NOT_FOUND);
    }
    record(&calls, "/tb/continueChat", &headers, body.clone());
    let choice = body["message"].as_str().unwrap_or_default();
    Ok(Json(
        json!({"messages": [{"id": "m2", "type": "text", "content": {"type": "richText",
        "richText": [{"type": "p", "children": [{"text": format!("Great choice: {choice}")}]}]}}]}),
    ))
}

/// What the bot servers received: (path, authorization header, body).
type Calls = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

/// A local server speaking the Evolution Bot API (`POST /evo` → `{message}`) and n8n's
/// webhook API (`POST /webhook/orders` → `[{output}]`, Basic auth `u:p`).
async fn bot_server() -> (String, Calls) {
    async fn evo(
        State(calls): State<Calls>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let query = body["query"].as_str().unwrap_or_default().to_owned();
        calls.lock().unwrap().push(("/evo".into(), auth, body));
        Json(json!({"message": format!("echo: {query}")}))
    }
    async fn n8n(
        State(calls): State<Calls>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Result<Json<Value>, StatusCode> {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        calls
            .lock()
            .unwrap()
            .push(("/webhook/orders".into(), auth.clone(), body.clone()));
        // "u:p" in Basic.
        if auth.as_deref() != Some("Basic dTpw") {
            return Err(StatusCode::UNAUTHORIZED);
        }
        let input = body["chatInput"].as_str().unwrap_or_default();
        Ok(Json(json!([{"output": format!("n8n got {input}")}])))
    }
    let calls: Calls = Arc::default();
    let router = axum::Router::new()
        .route("/evo", post(evo))
        .route("/webhook/orders", post(n8n))
        .route("/v1/models", axum::routing::get(models))
        .route("/v1/chat/completions", post(completions))
        .route("/v1/threads", post(thread))
        .route(
            "/v1/threads/{thread}/messages",
            post(thread_message).get(thread_messages),
        )
        .route("/v1/threads/{thread}/runs", post(run))
        .route(
            "/v1/threads/{thread}/runs/{run}",
            axum::routing::get(run_status),
        )
        .route(
            "/v1/threads/{thread}/runs/{run}/submit_tool_outputs",
            post(tool_outputs),
        )
        .route("/fn", post(function))
        .route("/dify/v1/chat-messages", post(dify))
        .route("/api/v1/prediction/flow-1", post(flowise))
        .route("/evoai/agent", post(evoai))
        .route(
            "/tb/api/v1/typebots/shop-flow/startChat",
            post(typebot_start),
        )
        .route(
            "/tb/api/v1/sessions/{session}/continueChat",
            post(typebot_continue),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn bots_answer_the_phone_on_sqlite() {
    flow(None).await;
}

#[tokio::test]
async fn bots_answer_the_phone_on_postgres() {
    let Some(admin) = common::postgres_url() else {
        return;
    };
    let database = common::PgDatabase::create(&admin).await;
    flow(Some(&database.url)).await;
    database.drop_database().await;
}

async fn flow(database_url: Option<&str>) {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(16),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (bots_base, calls) = bot_server().await;
    let mut vars = vec![
        ("OPENAI_ENABLED".to_owned(), "true".to_owned()),
        ("DIFY_ENABLED".to_owned(), "true".to_owned()),
        ("FLOWISE_ENABLED".to_owned(), "true".to_owned()),
        ("EVOAI_ENABLED".to_owned(), "true".to_owned()),
        ("TYPEBOT_ENABLED".to_owned(), "true".to_owned()),
        ("OPENAI_BASE_URL".to_owned(), format!("{bots_base}/v1")),
        ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
        ("SERVER_URL".to_owned(), "http://zapin.test".to_owned()),
        ("N8N_ENABLED".to_owned(), "true".to_owned()),
        (
            "ZAPIN_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("ZAPIN_WA_WS_URL".to_owned(), sim.ws_url()),
        (
            "ZAPIN_WA_ROOT_PUBKEY".to_owned(),
            hex::encode(sim.root_public_key().0),
        ),
    ];
    if let Some(url) = database_url {
        vars.push(("DATABASE_CONNECTION_URI".to_owned(), url.to_owned()));
    }
    let gw = Gateway::start(Config::from_env(vars).unwrap()).await;

    let (_, body) = sim_post(&sim, "/sim/accounts", json!({"push_name": "Loja"})).await;
    let owner = body["phone"].as_str().unwrap().to_owned();
    let (_, body) = sim_post(&sim, "/sim/accounts", json!({"push_name": "Ana"})).await;
    let phone = body["phone"].as_str().unwrap().to_owned();
    let contact = format!("{phone}@s.whatsapp.net");

    let (status, created) = gw
        .call(
            reqwest::Method::POST,
            "/instance/create",
            Some(json!({
                "instanceName": "shop",
                "integration": "WHATSAPP-BAILEYS",
                "webhook": {"url": format!("{}/hook", receiver.base),
                            "events": ["CONNECTION_UPDATE", "SEND_MESSAGE"]}
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["hash"].as_str().unwrap().to_owned();
    let code = eventually("a QR from connect", || async {
        let (_, body) = gw
            .call(reqwest::Method::GET, "/instance/connect/shop", None)
            .await;
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
    let open = webhook(&receiver, |b| {
        b["event"] == "connection.update" && b["data"]["state"] == "open"
    })
    .await;
    let wuid = open["data"]["wuid"].as_str().unwrap().to_owned();

    // An Evolution Bot on the keyword "hello" and an n8n bot on messages starting "order".
    let (status, evo) = gw
        .call(
            reqwest::Method::POST,
            "/evolutionBot/create/shop",
            Some(json!({"enabled": true, "apiUrl": format!("{bots_base}/evo"), "apiKey": "bot-secret",
                        "triggerType": "keyword", "triggerOperator": "equals", "triggerValue": "hello",
                        "delayMessage": 20, "debounceTime": 0})),
        )
        .await;
    assert_eq!(status, 201, "{evo}");
    let evo_id = evo["id"].as_str().unwrap().to_owned();
    let (status, n8n) = gw
        .call(
            reqwest::Method::POST,
            "/n8n/create/shop",
            Some(json!({"enabled": true, "webhookUrl": format!("{bots_base}/webhook/orders"),
                        "basicAuthUser": "u", "basicAuthPass": "p",
                        "triggerType": "keyword", "triggerOperator": "startsWith", "triggerValue": "order",
                        "delayMessage": 20, "debounceTime": 0, "keywordFinish": "done"})),
        )
        .await;
    assert_eq!(status, 201, "{n8n}");

    let say = |text: &'static str| {
        let sim = &sim;
        let phone = phone.clone();
        let wuid = wuid.clone();
        async move {
            let (status, body) = sim_post(
                sim,
                &format!("/sim/accounts/{phone}/messages"),
                json!({"to": wuid, "text": text}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    let phone_got = |expected: String| {
        let sim = &sim;
        let phone = phone.clone();
        async move {
            eventually(&format!("the phone to receive {expected:?}"), || async {
                let got = sim_get(sim, &format!("/sim/accounts/{phone}/messages")).await;
                got.as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["text"] == expected.as_str())
                    .then_some(())
            })
            .await;
        }
    };

    // The keyword opens a session with the Evolution Bot; its answer reaches the phone.
    say("hello").await;
    phone_got("echo: hello".into()).await;
    let sent = webhook(&receiver, |b| {
        b["event"] == "send.message" && b["data"]["message"]["conversation"] == "echo: hello"
    })
    .await;
    assert_eq!(sent["data"]["key"]["remoteJid"], contact.as_str());
    {
        let calls = calls.lock().unwrap();
        let (path, auth, body) = &calls[0];
        assert_eq!(path, "/evo");
        assert_eq!(auth.as_deref(), Some("Bearer bot-secret"));
        assert_eq!(body["query"], "hello");
        assert_eq!(body["inputs"]["remoteJid"], contact.as_str());
        assert_eq!(body["inputs"]["instanceName"], "shop");
        assert_eq!(body["inputs"]["serverUrl"], "http://zapin.test");
        assert_eq!(body["inputs"]["apiKey"], token.as_str());
        assert_eq!(body["inputs"]["pushName"], "Ana");
        assert_eq!(body["inputs"]["fromMe"], false);
    }
    // The session is stored and listed.
    let (status, sessions) = gw
        .call(
            reqwest::Method::GET,
            &format!("/evolutionBot/fetchSessions/{evo_id}/shop"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(sessions[0]["remoteJid"], contact.as_str());
    assert_eq!(sessions[0]["status"], "opened");

    // Within the session any text goes to the same bot, even one matching no trigger.
    say("what do you sell?").await;
    phone_got("echo: what do you sell?".into()).await;

    // keywordFinish ("bye", Evolution's default) ends it without calling the bot.
    let before = calls.lock().unwrap().len();
    say("bye").await;
    eventually("the session to end", || async {
        let (_, sessions) = gw
            .call(
                reqwest::Method::GET,
                &format!("/evolutionBot/fetchSessions/{evo_id}/shop"),
                None,
            )
            .await;
        (sessions == json!([])).then_some(())
    })
    .await;

    // The n8n bot, behind Basic auth.
    say("order 42").await;
    phone_got("n8n got order 42".into()).await;
    {
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), before + 1, "bye reached no bot: {calls:?}");
        let (path, _, body) = calls.last().unwrap();
        assert_eq!(path, "/webhook/orders");
        assert_eq!(body["sessionId"], contact.as_str());
        assert_eq!(body["remoteJid"], contact.as_str());
        assert_eq!(body["instanceName"], "shop");
        assert_eq!(body["apiKey"], token.as_str());
    }
    say("done").await;

    // OpenAI: credentials, models, a chat completion bot with history, an assistant with a tool.
    let (status, creds) = gw
        .call(
            reqwest::Method::POST,
            "/openai/creds/shop",
            Some(json!({"name": "main", "apiKey": "sk-test"})),
        )
        .await;
    assert_eq!(status, 201, "{creds}");
    let creds_id = creds["id"].as_str().unwrap().to_owned();
    let (status, models) = gw
        .call(
            reqwest::Method::GET,
            &format!("/openai/getModels/shop?openaiCredsId={creds_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{models}");
    assert_eq!(models[0]["id"], "gpt-4o-mini");
    let (status, ai) = gw
        .call(
            reqwest::Method::POST,
            "/openai/create/shop",
            Some(json!({"enabled": true, "openaiCredsId": creds_id, "botType": "chatCompletion",
                        "model": "gpt-4o-mini", "maxTokens": 100, "systemMessages": ["You sell shoes."],
                        "triggerType": "keyword", "triggerOperator": "equals", "triggerValue": "ai",
                        "delayMessage": 20, "debounceTime": 0})),
        )
        .await;
    assert_eq!(status, 201, "{ai}");
    assert!(ai.get("openaiApiKey").is_none());
    say("ai").await;
    phone_got("ai: ai (2 messages)".into()).await;
    // The session keeps the history: system, the first turn, then the new text.
    say("shoes?").await;
    phone_got("ai: shoes? (4 messages)".into()).await;
    {
        let calls = calls.lock().unwrap();
        let (_, auth, body) = calls
            .iter()
            .rev()
            .find(|c| c.0 == "/v1/chat/completions")
            .unwrap();
        assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
        assert_eq!(body["model"], "gpt-4o-mini");
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "You sell shoes."})
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "ai"})
        );
        assert_eq!(
            body["messages"][2],
            json!({"role": "assistant", "content": "ai: ai (2 messages)"})
        );
        assert_eq!(
            body["messages"][3],
            json!({"role": "user", "content": "shoes?"})
        );
    }
    say("bye").await;
    let (status, asst) = gw
        .call(
            reqwest::Method::POST,
            "/openai/create/shop",
            Some(json!({"enabled": true, "openaiCredsId": creds_id, "botType": "assistant",
                        "assistantId": "asst_1", "functionUrl": format!("{bots_base}/fn"),
                        "triggerType": "keyword", "triggerOperator": "equals", "triggerValue": "track",
                        "delayMessage": 20, "debounceTime": 0})),
        )
        .await;
    assert_eq!(status, 201, "{asst}");
    let asst_id = asst["id"].as_str().unwrap().to_owned();
    say("track").await;
    phone_got(r#"assistant: {"order":"42","status":"shipped"}"#.into()).await;
    {
        let calls = calls.lock().unwrap();
        let (_, _, f) = calls.iter().find(|c| c.0 == "/fn").unwrap();
        assert_eq!(f["functionName"], "get_order");
        assert_eq!(f["functionArguments"]["order"], "42");
        assert_eq!(f["functionArguments"]["remoteJid"], contact.as_str());
        let (_, _, run) = calls.iter().find(|c| c.0 == "/v1/threads/runs").unwrap();
        assert_eq!(run["assistant_id"], "asst_1");
    }
    // The thread id is the session id, as in Evolution.
    let (_, sessions) = gw
        .call(
            reqwest::Method::GET,
            &format!("/openai/fetchSessions/{asst_id}/shop"),
            None,
        )
        .await;
    assert_eq!(sessions[0]["sessionId"], "thread_1", "{sessions}");

    say("bye").await;

    // Dify (blocking chat bot: the conversation id comes back on the next message; an agent
    // answering with server-sent events), Flowise and EvoAI.
    let create = |path: &'static str, body: Value| {
        let gw = &gw;
        async move {
            let (status, created) = gw.call(reqwest::Method::POST, path, Some(body)).await;
            assert_eq!(status, 201, "{created}");
            created
        }
    };
    let quick = json!({"delayMessage": 20, "debounceTime": 0, "triggerType": "keyword",
                       "triggerOperator": "equals", "enabled": true});
    let with = |extra: Value| {
        let mut b = quick.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    create(
        "/dify/create/shop",
        with(
            json!({"botType": "chatBot", "apiUrl": format!("{bots_base}/dify/v1"),
        "apiKey": "app-dify", "triggerValue": "dify"}),
        ),
    )
    .await;
    create(
        "/dify/create/shop",
        with(
            json!({"botType": "agent", "apiUrl": format!("{bots_base}/dify/v1"),
        "apiKey": "app-dify", "triggerValue": "agent"}),
        ),
    )
    .await;
    create(
        "/flowise/create/shop",
        with(
            json!({"apiUrl": format!("{bots_base}/api/v1/prediction/flow-1"),
        "triggerValue": "flow"}),
        ),
    )
    .await;
    create(
        "/evoai/create/shop",
        with(json!({"agentUrl": format!("{bots_base}/evoai/agent"),
        "apiKey": "evo-key", "triggerValue": "evo"})),
    )
    .await;
    say("dify").await;
    phone_got("dify: dify (known conversation: false)".into()).await;
    say("again").await;
    phone_got("dify: again (known conversation: true)".into()).await;
    {
        let calls = calls.lock().unwrap();
        let (_, _, last) = calls
            .iter()
            .rev()
            .find(|c| c.0 == "/dify/v1/chat-messages")
            .unwrap();
        assert_eq!(last["conversation_id"], "conv-1");
        assert_eq!(last["inputs"]["remoteJid"], contact.as_str());
        assert_eq!(last["user"], contact.as_str());
    }
    say("bye").await;
    say("agent").await;
    phone_got("agent says agent".into()).await;
    say("bye").await;
    say("flow").await;
    phone_got("flowise: flow".into()).await;
    {
        let calls = calls.lock().unwrap();
        let (_, _, last) = calls
            .iter()
            .rev()
            .find(|c| c.0 == "/api/v1/prediction/flow-1")
            .unwrap();
        assert_eq!(last["overrideConfig"]["sessionId"], contact.as_str());
        assert_eq!(last["overrideConfig"]["vars"]["instanceName"], "shop");
    }
    say("bye").await;
    say("evo").await;
    phone_got("evoai: evo".into()).await;
    {
        let calls = calls.lock().unwrap();
        let (_, _, last) = calls.iter().rev().find(|c| c.0 == "/evoai/agent").unwrap();
        assert_eq!(last["method"], "message/send");
        assert_eq!(last["params"]["contextId"], contact.as_str());
        assert_eq!(last["params"]["metadata"]["apiKey"], token.as_str());
    }

    say("bye").await;

    // Typebot: the start's greeting and choices, then the flow ends and so does the session.
    let tb = create(
        "/typebot/create/shop",
        with(json!({"url": format!("{bots_base}/tb"),
        "typebot": "shop-flow", "triggerValue": "shop"})),
    )
    .await;
    let tb_id = tb["id"].as_str().unwrap().to_owned();
    say("shop").await;
    phone_got("Hello *Ana*".into()).await;
    phone_got("▶️ Shoes\n▶️ Hats".into()).await;
    let (_, sessions) = gw
        .call(
            reqwest::Method::GET,
            &format!("/typebot/fetchSessions/{tb_id}/shop"),
            None,
        )
        .await;
    let sid = sessions[0]["sessionId"].as_str().unwrap().to_owned();
    assert!(
        sid.ends_with("-tb-1") && sid.len() == "0123456789-tb-1".len(),
        "{sid}"
    );
    say("Shoes").await;
    phone_got("Great choice: Shoes".into()).await;
    eventually("the flow's end to end the session", || async {
        let (_, sessions) = gw
            .call(
                reqwest::Method::GET,
                &format!("/typebot/fetchSessions/{tb_id}/shop"),
                None,
            )
            .await;
        (sessions == json!([])).then_some(())
    })
    .await;
    {
        let calls = calls.lock().unwrap();
        let (_, _, start) = calls.iter().find(|c| c.0 == "/tb/startChat").unwrap();
        assert_eq!(start["prefilledVariables"]["remoteJid"], contact.as_str());
        assert_eq!(start["prefilledVariables"]["instanceName"], "shop");
        assert_eq!(start["prefilledVariables"]["apiKey"], token.as_str());
        let (_, _, cont) = calls.iter().find(|c| c.0 == "/tb/continueChat").unwrap();
        assert_eq!(cont["message"], "Shoes");
    }

    // The bot's own sends never came back to the bots, and the engine left nothing running.
    eventually("the conversations to go idle", || async {
        (gw.engine.bots().unwrap().active_conversations() == 0).then_some(())
    })
    .await;
    gw.engine.shutdown().await;
    gw.db.close().await;
}
