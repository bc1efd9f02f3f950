//! Shared test parts: a recording [`Outbound`], local bot servers speaking each product's API,
//! bot configuration builders, and condition waits (never fixed sleeps).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use zapin_bots::kind::{EvolutionBot, N8nBot};
use zapin_bots::{
    BotConfig, BotEvent, BotSettings, BoxFuture, Clock, Engine, EngineLimits, Inbound,
    InstanceBots, InstanceContext, KindSetup, Outbound, ReplyPlan, SendError, SessionStore,
    SettingsRow, StaticDirectory, Trigger, TriggerOperator, TriggerType,
};

pub const WAIT: Duration = Duration::from_secs(10);

/// Records sends and events on channels the test awaits.
pub struct Recorder {
    sends: mpsc::UnboundedSender<(String, ReplyPlan)>,
    events: mpsc::UnboundedSender<BotEvent>,
    /// Sends (`send <jid>`) and failures (`failed <bot>`) in the order they happened.
    pub order: Mutex<Vec<String>>,
}

pub struct Received {
    pub sends: mpsc::UnboundedReceiver<(String, ReplyPlan)>,
    pub events: mpsc::UnboundedReceiver<BotEvent>,
}

impl Received {
    /// The next send's texts, to `jid`.
    pub async fn next_texts(&mut self) -> (String, Vec<String>) {
        let (jid, plan) = tokio::time::timeout(WAIT, self.sends.recv())
            .await
            .expect("a reply in time")
            .expect("recorder alive");
        let texts = plan
            .sends
            .iter()
            .map(|s| match &s.reply {
                zapin_bots::Reply::Text { text, .. } => text.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        (jid, texts)
    }

    /// Waits for an event matching `pred`, skipping others.
    pub async fn event(&mut self, pred: impl Fn(&BotEvent) -> bool) -> BotEvent {
        tokio::time::timeout(WAIT, async {
            loop {
                let e = self.events.recv().await.expect("recorder alive");
                if pred(&e) {
                    return e;
                }
            }
        })
        .await
        .expect("the event in time")
    }

    pub fn no_send(&mut self) {
        assert!(self.sends.try_recv().is_err(), "no reply expected");
    }
}

pub fn recorder() -> (Arc<Recorder>, Received) {
    let (s_tx, s_rx) = mpsc::unbounded_channel();
    let (e_tx, e_rx) = mpsc::unbounded_channel();
    (
        Arc::new(Recorder {
            sends: s_tx,
            events: e_tx,
            order: Mutex::default(),
        }),
        Received {
            sends: s_rx,
            events: e_rx,
        },
    )
}

impl Outbound for Recorder {
    fn send<'a>(
        &'a self,
        _instance: &'a str,
        remote_jid: &'a str,
        plan: ReplyPlan,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        self.order
            .lock()
            .unwrap()
            .push(format!("send {remote_jid}"));
        let _ = self.sends.send((remote_jid.to_owned(), plan));
        Box::pin(std::future::ready(Ok(())))
    }

    fn event(&self, event: BotEvent) {
        if let BotEvent::BotFailed { bot_id, .. } = &event {
            self.order.lock().unwrap().push(format!("failed {bot_id}"));
        }
        let _ = self.events.send(event);
    }
}

/// Requests a bot server received.
pub type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// An Evolution Bot server: answers `{"message": "'echo: <query>'"}` (quoted, as some bots do).
/// `/hang` never answers (but records the request); `/garbage` answers non-JSON; `/fail-once` answers 503 first.
pub async fn evolution_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = Arc::clone(&seen);
    let hung = Arc::clone(&seen);
    let fails = Arc::new(Mutex::new(0u32));
    let app = Router::new()
        .route(
            "/bot",
            post(move |headers: HeaderMap, body: axum::Json<Value>| {
                let s = Arc::clone(&s);
                async move {
                    let query = body.0["query"].as_str().unwrap_or_default().to_owned();
                    s.lock().unwrap().push((headers, body.0));
                    axum::Json(json!({"message": format!("'echo: {query}'")}))
                }
            }),
        )
        .route(
            "/hang",
            post(move |headers: HeaderMap, body: axum::Json<Value>| {
                let s = Arc::clone(&hung);
                async move {
                    s.lock().unwrap().push((headers, body.0));
                    std::future::pending::<()>().await;
                    ""
                }
            }),
        )
        .route(
            "/garbage",
            post(|| async { ([("content-type", "application/json")], "{\"message\": ") }),
        )
        .route(
            "/fail-once",
            post(move || {
                let fails = Arc::clone(&fails);
                async move {
                    let mut n = fails.lock().unwrap();
                    *n += 1;
                    if *n == 1 {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy").into_response_parts()
                    } else {
                        (axum::http::StatusCode::OK, "{\"message\":\"recovered\"}")
                            .into_response_parts()
                    }
                }
            }),
        );
    let addr = serve(app).await;
    (format!("http://{addr}"), seen)
}

trait IntoParts {
    fn into_response_parts(self) -> axum::response::Response;
}
impl IntoParts for (axum::http::StatusCode, &'static str) {
    fn into_response_parts(self) -> axum::response::Response {
        use axum::response::IntoResponse as _;
        (self.0, [("content-type", "application/json")], self.1).into_response()
    }
}

/// An n8n "Webhook → Respond to Webhook" server: basic auth `user:pass` required, answers
/// `{"output": "n8n: <chatInput>"}`.
pub async fn n8n_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = Arc::clone(&seen);
    let app = Router::new().route(
        "/webhook/chat",
        post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let s = Arc::clone(&s);
            async move {
                use axum::response::IntoResponse as _;
                // "user:pass" in base64.
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some("Basic dXNlcjpwYXNz")
                {
                    return (
                        axum::http::StatusCode::FORBIDDEN,
                        "Authorization data is wrong!",
                    )
                        .into_response();
                }
                let input = body.0["chatInput"].as_str().unwrap_or_default().to_owned();
                s.lock().unwrap().push((headers, body.0));
                axum::Json(json!([{"output": format!("n8n: {input}")}])).into_response()
            }
        }),
    );
    let addr = serve(app).await;
    (format!("http://{addr}/webhook/chat"), seen)
}

pub fn bot(id: &str, trigger: Trigger, params: Value, settings: BotSettings) -> BotConfig {
    BotConfig {
        id: id.into(),
        enabled: true,
        description: None,
        trigger,
        settings,
        params,
    }
}

pub fn keyword(op: TriggerOperator, value: &str) -> Trigger {
    Trigger {
        kind: TriggerType::Keyword,
        operator: Some(op),
        value: Some(value.into()),
    }
}

/// Settings with no debounce (the default of 1 s would need a clock step per message).
pub fn quick() -> BotSettings {
    BotSettings {
        debounce_time: Some(0),
        ..BotSettings::default()
    }
}

pub fn setup(kind: &str, bots: Vec<BotConfig>, row: Option<SettingsRow>) -> KindSetup {
    KindSetup {
        kind: kind.into(),
        settings: row,
        bots,
    }
}

pub fn instance(kinds: Vec<KindSetup>) -> InstanceBots {
    InstanceBots {
        context: InstanceContext {
            instance_name: "inst".into(),
            server_url: "http://zapin.test".into(),
            api_key: "INSTANCE-TOKEN".into(),
        },
        kinds,
    }
}

pub fn engine(
    store: Arc<dyn SessionStore>,
    directory: Arc<StaticDirectory>,
    out: Arc<Recorder>,
    clock: Arc<dyn Clock>,
    limits: EngineLimits,
) -> Engine {
    Engine::new(store, directory, out, clock, limits)
        .register(Arc::new(EvolutionBot))
        .register(Arc::new(N8nBot))
}

pub fn msg(jid: &str, text: &str) -> Inbound {
    Inbound {
        instance: "inst".into(),
        remote_jid: jid.into(),
        push_name: Some("Ana".into()),
        from_me: false,
        key_id: format!("KEY-{text}"),
        content: Some(text.into()),
        media_url: None,
    }
}

/// Waits until every conversation worker has finished (nothing queued, debouncing or calling).
pub async fn settle(engine: &Engine) {
    tokio::time::timeout(WAIT, async {
        while engine.active_conversations() > 0 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the engine settles");
}

/// Where the test PostgreSQL runs unless `ZAPIN_TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL URL when a server answers there, else `None` (skipped, with the reason
/// printed). Under `CI=true` an unreachable database is a failure.
pub async fn postgres_url() -> Option<String> {
    let url = std::env::var("ZAPIN_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    let reachable = matches!(
        tokio::time::timeout(Duration::from_secs(5), sqlx::PgPool::connect(&url)).await,
        Ok(Ok(_))
    );
    if reachable {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but PostgreSQL at {url} is unreachable (ZAPIN_TEST_DATABASE_URL)");
    }
    eprintln!(
        "skipping the PostgreSQL run: nothing answers at {url} (set ZAPIN_TEST_DATABASE_URL)"
    );
    None
}
