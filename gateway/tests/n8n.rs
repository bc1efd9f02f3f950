//! Real n8n (`tests/n8n`: n8n 1.123 with the community node `n8n-nodes-evolution-api` 1.0.4,
//! unmodified) drives a live `zapin serve` wired to the simulator through every operation of the
//! node that zapin serves: instance create/connect/fetch/settings/presence/restart/logout/delete,
//! proxy find, webhook set/find, RabbitMQ set/find, send text (plain, quoted, with mentions, with
//! a delay), check numbers, mark as read, send presence, block, find messages/contacts/chats,
//! every group operation, the profile and privacy operations, and the Evolution Bot operations.
//! Each workflow is a webhook trigger followed by one Evolution API node, as a user builds it in n8n's editor; the test triggers it over HTTP and checks the effect where it
//! lands: the text decrypted at the simulated phone, the group's state at the simulator, the
//! setting read back over the API.
//!
//! One n8n process serves the whole file (its start-up costs tens of seconds). Needs
//! `scripts/test`'s setup of `tests/n8n`; without it the test is skipped, saying why; under
//! `CI=true` it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::Receiver;
use common::serve::Serve;
use serde_json::{Value, json};
use zapin_sim::SimConfig;
use zapin_test_support::n8n::{
    N8n, N8nConfig, evolution_credential, evolution_node, skip_without_n8n, webhook_workflow,
};

const KEY: &str = "n8n-global-key";
const CREDENTIAL: &str = "zapin";
/// A second credential holding the instance's own token (the node takes either key).
const TOKEN_CREDENTIAL: &str = "zapin-instance-token";
const INSTANCE: &str = "n8n";
const TOKEN: &str = "n8n-instance-token";
/// Bounds every wait for an effect (a debug build under two busy cores).
const WAIT: Duration = Duration::from_secs(60);

/// `={{ $json.body.<field> }}`: the node parameter takes the request's field.
fn body(field: &str) -> String {
    format!("={{{{ $json.body.{field} }}}}")
}

/// `{p: body(p)}` for each name, plus `fixed`.
fn params(from_body: &[&str], fixed: Value) -> Value {
    let mut out = fixed;
    for p in from_body {
        out[*p] = body(p).into();
    }
    out
}

/// The Evolution Bot fields the node reads for create and update.
const BOT_FIELDS: [&str; 14] = [
    "instanceName",
    "apiUrl",
    "apiKeyBot",
    "triggerOperator",
    "triggerValue",
    "expire",
    "keywordFinish",
    "delayMessage",
    "unknownMessage",
    "listeningFromMe",
    "stopBotFromMe",
    "keepOpen",
    "debounceTime",
    "ignoreJids",
];

/// One workflow per (path, resource, operation, parameters): a webhook at `POST
/// /webhook/<path>` feeding one Evolution API node.
fn workflows() -> Vec<Value> {
    let create_options = json!({
        "instanceSettings": {"settings": {
            "rejectCall": body("rejectCall"),
            "msgCall": body("msgCall"),
            "groupsIgnore": body("groupsIgnore"),
            "alwaysOnline": body("alwaysOnline"),
            "readMessages": body("readMessages"),
            "readStatus": body("readStatus"),
            "syncFullHistory": body("syncFullHistory")
        }},
        "webhook": {"webhookSettings": {
            "webhookUrl": body("webhookUrl"),
            "webhookByEvents": false,
            "webhookBase64": false,
            "webhookEvents": body("webhookEvents")
        }},
        "rabbitmq": {"rabbitmqSettings": {
            "rabbitmqEnabled": true,
            "rabbitmqEvents": ["MESSAGES_UPSERT"]
        }}
    });
    let send_options = json!({
        "quoted": {"messageQuoted": {"messageId": body("quotedId")}},
        "mentions": {"mentionsSettings": {"mentionsEveryOne": false, "mentioned": body("mentioned")}}
    });
    let table: Vec<(&str, &str, &str, Value)> = vec![
        (
            "instance-create",
            "instances-api",
            "instance-basic",
            params(
                &["instanceName", "token"],
                json!({"options_Create_instance": create_options}),
            ),
        ),
        (
            "instance-connect",
            "instances-api",
            "instance-connect",
            params(&["instanceName"], json!({})),
        ),
        (
            "instance-fetch",
            "instances-api",
            "fetch-instances",
            params(&["instanceName"], json!({})),
        ),
        (
            "instance-settings",
            "instances-api",
            "instance-settings",
            params(
                &[
                    "instanceName",
                    "rejectCall",
                    "msgCall",
                    "groupsIgnore",
                    "alwaysOnline",
                    "readMessages",
                    "syncFullHistory",
                    "readStatus",
                ],
                json!({}),
            ),
        ),
        (
            "instance-presence",
            "instances-api",
            "set-presence",
            params(&["instanceName", "presence"], json!({})),
        ),
        (
            "instance-restart",
            "instances-api",
            "restart-instance",
            params(&["instanceName"], json!({})),
        ),
        (
            "instance-logout",
            "instances-api",
            "logout-instance",
            params(&["instanceName"], json!({})),
        ),
        (
            "instance-delete",
            "instances-api",
            "delete-instance",
            params(&["instanceName"], json!({})),
        ),
        (
            "webhook-set",
            "events-api",
            "webhook",
            params(
                &[
                    "instanceName",
                    "enabled",
                    "webhookUrl",
                    "webhookByEvents",
                    "webhookBase64",
                    "webhookEvents",
                ],
                json!({"resourceForWebhook": "setWebhook"}),
            ),
        ),
        (
            "webhook-find",
            "events-api",
            "webhook",
            params(
                &["instanceName"],
                json!({"resourceForWebhook": "findWebhook"}),
            ),
        ),
        (
            "rabbitmq-set",
            "events-api",
            "rabbitmq",
            params(
                &["instanceName", "enabled", "rabbitMQEvents"],
                json!({"resourceForRabbitMQ": "setRabbitMQ"}),
            ),
        ),
        (
            "rabbitmq-find",
            "events-api",
            "rabbitmq",
            params(
                &["instanceName"],
                json!({"resourceForRabbitMQ": "findRabbitMQ"}),
            ),
        ),
        (
            "send-text",
            "messages-api",
            "send-text",
            params(
                &["instanceName", "remoteJid", "messageText"],
                json!({"options_message": send_options}),
            ),
        ),
        (
            "send-text-typing",
            "messages-api",
            "send-text",
            params(
                &["instanceName", "remoteJid", "messageText"],
                json!({"options_message": {
                    "delay": body("delay"),
                    "linkPreview": body("linkPreview")
                }}),
            ),
        ),
        (
            "proxy-set",
            "instances-api",
            "set-proxy",
            params(
                &[
                    "instanceName",
                    "enabled",
                    "proxyHost",
                    "proxyPort",
                    "proxyProtocol",
                    "proxyUsername",
                    "proxyPassword",
                ],
                json!({"resourceForProxy": "setProxy"}),
            ),
        ),
        (
            "proxy-find",
            "instances-api",
            "set-proxy",
            params(&["instanceName"], json!({"resourceForProxy": "findProxy"})),
        ),
        (
            "chat-find-contacts",
            "chat-api",
            "find-contacts",
            params(&["instanceName", "remoteJid"], json!({"listAll": false})),
        ),
        (
            "chat-all-contacts",
            "chat-api",
            "find-contacts",
            params(&["instanceName"], json!({"listAll": true})),
        ),
        (
            "chat-find-chats",
            "chat-api",
            "find-chats",
            params(
                &["instanceName", "remoteJid", "messageId", "page", "offset"],
                json!({}),
            ),
        ),
        (
            "profile-fetch",
            "profile-api",
            "fetch-profile",
            params(&["instanceName", "remoteJid"], json!({})),
        ),
        (
            "profile-fetch-business",
            "profile-api",
            "fetch-business-profile",
            params(&["instanceName", "remoteJid"], json!({})),
        ),
        (
            "profile-name",
            "profile-api",
            "update-profile-name",
            params(&["instanceName", "name"], json!({})),
        ),
        (
            "evobot-create",
            "integrations-api",
            "evolution-bot",
            params(
                &BOT_FIELDS,
                json!({"resourceForEvolutionBot": "createEvolutionBot", "triggerType": "keyword"}),
            ),
        ),
        (
            "evobot-update",
            "integrations-api",
            "evolution-bot",
            params(
                &[BOT_FIELDS.as_slice(), &["evolutionBotId"]].concat(),
                json!({"resourceForEvolutionBot": "updateEvolutionBot", "triggerType": "keyword"}),
            ),
        ),
        (
            "evobot-find",
            "integrations-api",
            "evolution-bot",
            params(
                &["instanceName", "evolutionBotId"],
                json!({"resourceForEvolutionBot": "findEvolutionBot"}),
            ),
        ),
        (
            "evobot-sessions",
            "integrations-api",
            "evolution-bot",
            params(
                &["instanceName", "evolutionBotId"],
                json!({"resourceForEvolutionBot": "fetchSessionsEvolutionBot"}),
            ),
        ),
        (
            "evobot-status",
            "integrations-api",
            "evolution-bot",
            params(
                &["instanceName", "remoteJid", "status"],
                json!({"resourceForEvolutionBot": "changeStatusEvolutionBot"}),
            ),
        ),
        (
            "evobot-delete",
            "integrations-api",
            "evolution-bot",
            params(
                &["instanceName", "evolutionBotId"],
                json!({"resourceForEvolutionBot": "deleteEvolutionBot"}),
            ),
        ),
        (
            "chat-check-number",
            "chat-api",
            "check-number",
            params(&["instanceName", "numbers"], json!({})),
        ),
        (
            "chat-read",
            "chat-api",
            "read-messages",
            params(
                &["instanceName", "remoteJid", "fromMe", "messageId"],
                json!({}),
            ),
        ),
        (
            "chat-presence",
            "chat-api",
            "send-presence",
            params(
                &["instanceName", "remoteJid", "presence", "delay"],
                json!({}),
            ),
        ),
        (
            "chat-block",
            "chat-api",
            "block-contact",
            params(&["instanceName", "remoteJid", "status"], json!({})),
        ),
        (
            "chat-find-messages",
            "chat-api",
            "find-messages",
            params(&["instanceName", "remoteJid", "page", "offset"], json!({})),
        ),
        (
            "group-create",
            "groups-api",
            "create-group",
            params(
                &["instanceName", "subject", "description", "participants"],
                json!({}),
            ),
        ),
        (
            "group-name",
            "groups-api",
            "update-group-name",
            params(&["instanceName", "groupJid", "subject"], json!({})),
        ),
        (
            "group-description",
            "groups-api",
            "update-group-description",
            params(&["instanceName", "groupJid", "description"], json!({})),
        ),
        (
            "group-picture",
            "groups-api",
            "update-group-picture",
            params(&["instanceName", "groupJid", "image"], json!({})),
        ),
        (
            "group-invite-code",
            "groups-api",
            "fetch-invite-code",
            params(&["instanceName", "groupJid"], json!({})),
        ),
        (
            "group-revoke-invite",
            "groups-api",
            "revoke-invite-code",
            params(&["instanceName", "groupJid"], json!({})),
        ),
        (
            "group-send-invite",
            "groups-api",
            "send-invite-link",
            params(
                &["instanceName", "groupJid", "description", "numbers"],
                json!({}),
            ),
        ),
        (
            "group-by-invite",
            "groups-api",
            "fetch-groups",
            params(
                &["instanceName", "inviteCode"],
                json!({"searchMethod": "inviteCode"}),
            ),
        ),
        (
            "group-by-jid",
            "groups-api",
            "fetch-groups",
            params(
                &["instanceName", "groupJid"],
                json!({"searchMethod": "groupJid"}),
            ),
        ),
        (
            "group-all",
            "groups-api",
            "fetch-groups",
            params(
                &["instanceName", "getParticipants"],
                json!({"searchMethod": "fetchAll"}),
            ),
        ),
        (
            "group-participants",
            "groups-api",
            "find-participants",
            params(&["instanceName", "groupJid"], json!({})),
        ),
        (
            "group-update-participants",
            "groups-api",
            "update-participants",
            params(
                &["instanceName", "groupJid", "action", "participants"],
                json!({}),
            ),
        ),
        (
            "group-settings",
            "groups-api",
            "update-settings",
            params(&["instanceName", "groupJid", "action"], json!({})),
        ),
        (
            "group-ephemeral",
            "groups-api",
            "toggle-ephemeral",
            params(&["instanceName", "groupJid", "expiration"], json!({})),
        ),
        (
            "group-join",
            "groups-api",
            "join-group",
            params(&["instanceName", "inviteCode"], json!({})),
        ),
        (
            "group-leave",
            "groups-api",
            "leave-group",
            params(&["instanceName", "groupJid"], json!({})),
        ),
        (
            "profile-status",
            "profile-api",
            "update-profile-status",
            params(&["instanceName", "status"], json!({})),
        ),
        (
            "profile-picture",
            "profile-api",
            "update-profile-picture",
            params(&["instanceName", "picture"], json!({})),
        ),
        (
            "profile-picture-remove",
            "profile-api",
            "remove-profile-picture",
            params(&["instanceName"], json!({})),
        ),
        (
            "privacy-fetch",
            "profile-api",
            "fetch-privacy-settings",
            params(&["instanceName"], json!({})),
        ),
        (
            "privacy-update",
            "profile-api",
            "update-privacy-settings",
            params(
                &[
                    "instanceName",
                    "readreceipts",
                    "profile",
                    "status",
                    "online",
                    "last",
                    "groupadd",
                ],
                json!({}),
            ),
        ),
    ];
    let mut all: Vec<Value> = table
        .into_iter()
        .enumerate()
        .map(|(i, (path, resource, operation, params))| {
            webhook_workflow(
                &format!("zapinWorkflow{i:03}"),
                path,
                vec![evolution_node(
                    "Evolution API",
                    resource,
                    operation,
                    params,
                    CREDENTIAL,
                )],
            )
        })
        .collect();
    all.push(webhook_workflow(
        "zapinWorkflowTok",
        "send-text-token",
        vec![evolution_node(
            "Evolution API",
            "messages-api",
            "send-text",
            params(&["instanceName", "remoteJid", "messageText"], json!({})),
            TOKEN_CREDENTIAL,
        )],
    ));
    all
}

/// The running pieces and how to reach them.
struct World {
    n8n: N8n,
    api: String,
    sim: String,
    client: reqwest::Client,
}

impl World {
    /// Triggers workflow `path` with `body` (plus the instance name) and returns the node's
    /// `data` (zapin's answer as the node hands it to the next node); fails unless the node
    /// reports success.
    async fn run(&self, path: &str, body: Value) -> Value {
        let mut body = body;
        if body.get("instanceName").is_none() {
            body["instanceName"] = INSTANCE.into();
        }
        let (status, answer) = self.n8n.call(path, &body).await;
        assert!(
            status == 200 && answer["success"] == true,
            "n8n workflow {path} with {body}: {status} {answer} (an empty object is the node's \
             error item: zapin refused the request)"
        );
        answer["data"].clone()
    }

    async fn api(&self, method: reqwest::Method, path: &str) -> Value {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.api))
            .header("apikey", KEY)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn api_get(&self, path: &str) -> Value {
        self.api(reqwest::Method::GET, path).await
    }

    async fn sim_post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .post(format!("{}{path}", self.sim))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn sim_get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.sim))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls `check` (a read of the simulator or the API) until it holds.
    async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The messages `phone` received and decrypted.
    async fn phone_messages(&self, phone: &str) -> Vec<Value> {
        self.sim_get(&format!("/sim/accounts/{phone}/messages"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `phone` has decrypted message `id` and returns it.
    async fn phone_got(&self, phone: &str, id: &str) -> Value {
        self.until(&format!("message {id} at {phone}"), || async {
            self.phone_messages(phone)
                .await
                .into_iter()
                .find(|m| m["id"] == id)
        })
        .await
    }

    async fn group(&self, jid: &str) -> Value {
        self.sim_get(&format!("/sim/groups/{jid}")).await
    }

    async fn profile(&self, phone: &str) -> Value {
        self.sim_get(&format!("/sim/accounts/{phone}/profile"))
            .await
    }

    async fn state(&self) -> Value {
        self.api_get(&format!("/instance/connectionState/{INSTANCE}"))
            .await["instance"]["state"]
            .clone()
    }
}

/// A tiny JPEG: enough for WhatsApp's (and the simulator's) format check.
fn jpeg() -> Vec<u8> {
    let mut v = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ];
    v.extend_from_slice(&[0u8; 32]);
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

/// Waits until the receiver has a webhook whose JSON body matches, after the first `from`.
async fn webhook(receiver: &Receiver, from: usize, what: &str, f: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut n = from;
    loop {
        let seen = receiver.seen();
        if seen[from.min(seen.len())..]
            .iter()
            .any(|s| serde_json::from_slice::<Value>(&s.body).is_ok_and(|b| f(&b)))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no webhook for {what}"
        );
        n = n.max(seen.len()) + 1;
        let _ = tokio::time::timeout(Duration::from_secs(1), receiver.wait_for(n)).await;
    }
}

#[tokio::test]
async fn the_n8n_evolution_node_drives_every_operation_zapin_serves() {
    if skip_without_n8n("the n8n Evolution node test") {
        return;
    }
    let sim = zapin_sim::run(SimConfig {
        seed: Some(2025),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let sim_url = sim.http_url();
    let receiver = Receiver::start().await;
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let root = hex::encode(sim.root_public_key().0);
    let ws = sim.ws_url();
    let server = Serve::start(&[
        ("ZAPIN_DATA_DIR", data_dir.to_str().unwrap()),
        ("AUTHENTICATION_API_KEY", KEY),
        ("ZAPIN_WA_WS_URL", ws.as_str()),
        ("ZAPIN_WA_ROOT_PUBKEY", root.as_str()),
    ]);
    let n8n = N8n::start(N8nConfig {
        workflows: workflows(),
        credentials: vec![
            evolution_credential(CREDENTIAL, &server.url, KEY),
            evolution_credential(TOKEN_CREDENTIAL, &server.url, TOKEN),
        ],
        ..N8nConfig::default()
    })
    .await;
    let w = World {
        n8n,
        api: server.url.clone(),
        sim: sim_url.clone(),
        client: reqwest::Client::new(),
    };
    let account = |name: &'static str| {
        let w = &w;
        async move {
            w.sim_post("/sim/accounts", json!({"push_name": name}))
                .await["phone"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let owner = account("Owner").await;
    let alice = account("Alice").await;
    let bob = account("Bob").await;
    let owner_jid = format!("{owner}@s.whatsapp.net");
    let alice_jid = format!("{alice}@s.whatsapp.net");
    let bob_jid = format!("{bob}@s.whatsapp.net");
    let hook = format!("{}/hook", receiver.base);
    let b64 = base64::engine::general_purpose::STANDARD;

    // ---- instance: create (flat settings, nested webhook, rabbitmq extras), connect, fetch ----
    let created = w
        .run(
            "instance-create",
            json!({
                "token": TOKEN,
                "rejectCall": true, "msgCall": "no calls", "groupsIgnore": false,
                "alwaysOnline": false, "readMessages": false, "readStatus": false,
                "syncFullHistory": false,
                "webhookUrl": hook,
                "webhookEvents": ["CONNECTION_UPDATE", "MESSAGES_UPSERT"]
            }),
        )
        .await;
    assert_eq!(created["instance"]["instanceName"], INSTANCE, "{created}");
    assert_eq!(created["hash"], TOKEN, "{created}");
    let settings = w.api_get(&format!("/settings/find/{INSTANCE}")).await;
    assert_eq!(settings["rejectCall"], true, "{settings}");
    assert_eq!(settings["msgCall"], "no calls", "{settings}");
    let hooked = w.api_get(&format!("/webhook/find/{INSTANCE}")).await;
    assert_eq!(hooked["url"], hook.as_str(), "{hooked}");

    let qr = w
        .until("a QR from the connect operation", || async {
            let data = w.run("instance-connect", json!({})).await;
            data["code"].as_str().map(|code| {
                assert!(
                    data["base64"]
                        .as_str()
                        .is_some_and(|b| b.starts_with("data:image/png;base64,")),
                    "{data}"
                );
                code.to_owned()
            })
        })
        .await;
    w.sim_post(&format!("/sim/accounts/{owner}/scan"), json!({"qr": qr}))
        .await;
    webhook(&receiver, 0, "connection open", |b| {
        b["event"] == "connection.update" && b["data"]["state"] == "open"
    })
    .await;
    let fetched = w.run("instance-fetch", json!({})).await;
    let record = &fetched[0];
    assert_eq!(record["name"], INSTANCE, "{fetched}");
    assert_eq!(record["connectionStatus"], "open", "{fetched}");
    assert_eq!(record["ownerJid"], owner_jid.as_str(), "{fetched}");
    assert_eq!(record["token"], TOKEN, "{fetched}");
    let all = w.run("instance-fetch", json!({"instanceName": ""})).await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");

    // ---- settings, presence ----
    let set = w
        .run(
            "instance-settings",
            json!({
                "rejectCall": false, "msgCall": "", "groupsIgnore": true, "alwaysOnline": true,
                "readMessages": false, "syncFullHistory": false, "readStatus": true
            }),
        )
        .await;
    assert_eq!(set["settings"]["settings"]["groupsIgnore"], true, "{set}");
    let settings = w.api_get(&format!("/settings/find/{INSTANCE}")).await;
    assert_eq!(
        (
            &settings["rejectCall"],
            &settings["groupsIgnore"],
            &settings["alwaysOnline"],
            &settings["readStatus"]
        ),
        (&json!(false), &json!(true), &json!(true), &json!(true)),
        "{settings}"
    );
    // Back to receiving group messages: the group steps below read them.
    w.run(
        "instance-settings",
        json!({
            "rejectCall": false, "msgCall": "", "groupsIgnore": false, "alwaysOnline": false,
            "readMessages": false, "syncFullHistory": false, "readStatus": false
        }),
    )
    .await;
    let presence = w
        .run("instance-presence", json!({"presence": "available"}))
        .await;
    assert_eq!(presence, json!({"presence": "available"}));

    // ---- webhook set (n8n's webhookByEvents spelling) and find ----
    let by_events = format!("{}/by-events", receiver.base);
    w.run(
        "webhook-set",
        json!({
            "enabled": true, "webhookUrl": by_events, "webhookByEvents": true,
            "webhookBase64": false, "webhookEvents": ["MESSAGES_UPSERT", "CONNECTION_UPDATE"]
        }),
    )
    .await;
    let found = w.run("webhook-find", json!({})).await;
    assert_eq!(found["url"], by_events.as_str(), "{found}");
    assert_eq!(found["webhookByEvents"], true, "{found}");
    assert_eq!(found["enabled"], true, "{found}");

    // RabbitMQ is not enabled on this server: set and find answer an empty body, as Evolution
    // does, and the node passes it on as a success.
    let rabbit = w
        .run(
            "rabbitmq-set",
            json!({"enabled": true, "rabbitMQEvents": ["MESSAGES_UPSERT"]}),
        )
        .await;
    assert!(rabbit.is_null() || rabbit == "", "{rabbit}");
    let rabbit = w.run("rabbitmq-find", json!({})).await;
    assert!(rabbit.is_null() || rabbit == "", "{rabbit}");

    // ---- send text: a number, then a JID with a quote ----
    let sent = w
        .run(
            "send-text",
            json!({"remoteJid": alice, "messageText": "hello from n8n", "quotedId": "", "mentioned": ""}),
        )
        .await;
    let first = sent["key"]["id"].as_str().expect("data.key.id").to_owned();
    assert_eq!(sent["key"]["remoteJid"], alice_jid.as_str(), "{sent}");
    let got = w.phone_got(&alice, &first).await;
    assert_eq!(got["text"], "hello from n8n", "{got}");
    let reply = w
        .run(
            "send-text",
            json!({"remoteJid": alice_jid, "messageText": "quoting", "quotedId": first, "mentioned": ""}),
        )
        .await;
    let reply_id = reply["key"]["id"].as_str().unwrap().to_owned();
    let got = w.phone_got(&alice, &reply_id).await;
    assert_eq!(got["text"], "quoting", "{got}");
    assert_eq!(got["context"]["stanza_id"], first.as_str(), "{got}");

    // The same with the instance's token as the credential's key.
    let tokened = w
        .run(
            "send-text-token",
            json!({"remoteJid": alice, "messageText": "sent with the instance token"}),
        )
        .await;
    let tokened_id = tokened["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        w.phone_got(&alice, &tokened_id).await["text"],
        "sent with the instance token"
    );

    // With the node's delay option: "typing…" for that long first, as Evolution does, so the
    // answer comes after it; linkPreview is passed along.
    let started = std::time::Instant::now();
    let typed = w
        .run(
            "send-text-typing",
            json!({"remoteJid": alice, "messageText": "after typing", "delay": 1500,
                   "linkPreview": false}),
        )
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "answered after {:?}",
        started.elapsed()
    );
    let typed_id = typed["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(w.phone_got(&alice, &typed_id).await["text"], "after typing");

    // ---- check numbers ----
    let checked = w
        .run(
            "chat-check-number",
            json!({"numbers": format!("{alice}, 15559999999")}),
        )
        .await;
    assert_eq!(checked[0]["exists"], true, "{checked}");
    assert_eq!(checked[0]["jid"], alice_jid.as_str(), "{checked}");
    assert_eq!(checked[1]["exists"], false, "{checked}");

    // ---- a message from Alice: it reaches the by-events webhook; mark it read ----
    let at = receiver.seen().len();
    let incoming = w
        .sim_post(
            &format!("/sim/accounts/{alice}/messages"),
            json!({"to": owner_jid, "text": "hi n8n"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    webhook(&receiver, at, "messages.upsert from Alice", |b| {
        b["event"] == "messages.upsert" && b["data"]["key"]["id"] == incoming.as_str()
    })
    .await;
    assert!(
        receiver.seen()[at..]
            .iter()
            .any(|s| s.path == "/by-events/messages-upsert"),
        "webhookByEvents: the event goes to <url>/messages-upsert"
    );
    w.run(
        "chat-read",
        json!({"remoteJid": alice_jid, "fromMe": false, "messageId": incoming}),
    )
    .await;
    w.until("Alice's read receipt", || async {
        let receipts = w
            .sim_get(&format!("/sim/accounts/{alice}/receipts?id={incoming}"))
            .await;
        receipts
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["type"] == "read"))
            .then_some(())
    })
    .await;

    // ---- find messages (page/offset), send presence ----
    let found = w
        .run(
            "chat-find-messages",
            json!({"remoteJid": alice, "page": 1, "offset": 10}),
        )
        .await;
    let ids: Vec<&str> = found["messages"]["records"]
        .as_array()
        .expect("messages.records")
        .iter()
        .filter_map(|m| m["key"]["id"].as_str())
        .collect();
    for id in [first.as_str(), reply_id.as_str(), incoming.as_str()] {
        assert!(ids.contains(&id), "{id} not in {found}");
    }
    let typing = w
        .run(
            "chat-presence",
            json!({"remoteJid": alice, "presence": "composing", "delay": 100}),
        )
        .await;
    assert_eq!(typing, json!({"presence": "composing"}));

    // ---- contacts, chats, profiles of others ----
    let contacts = w
        .run("chat-find-contacts", json!({"remoteJid": alice}))
        .await;
    assert_eq!(contacts[0]["remoteJid"], alice_jid.as_str(), "{contacts}");
    let contacts = w.run("chat-all-contacts", json!({})).await;
    assert!(
        contacts
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["remoteJid"] == alice_jid.as_str())),
        "{contacts}"
    );
    // The node puts a message id in `where.id`, which Evolution's findChats does not read: it
    // must not empty the answer.
    let chats = w
        .run(
            "chat-find-chats",
            json!({"remoteJid": alice, "messageId": incoming, "page": 1, "offset": 10}),
        )
        .await;
    assert!(
        chats
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["remoteJid"] == alice_jid.as_str())),
        "{chats}"
    );
    let profile = w.run("profile-fetch", json!({"remoteJid": alice})).await;
    assert_eq!(profile["wuid"], alice_jid.as_str(), "{profile}");
    assert_eq!(profile["numberExists"], true, "{profile}");
    let business = w
        .run("profile-fetch-business", json!({"remoteJid": alice}))
        .await;
    assert!(business.is_object(), "{business}");
    w.run("profile-name", json!({"name": "n8n owner"})).await;
    w.until("the push name at the server", || async {
        (w.sim_get(&format!("/sim/accounts/{owner}")).await["push_name"] == "n8n owner")
            .then_some(())
    })
    .await;

    // ---- proxy: find answers; the node's "disabled" is `enabled: ""`, which Evolution's
    // schema refuses (a boolean is required), and so does zapin ----
    w.run("proxy-find", json!({})).await;
    let (status, refused) = w
        .n8n
        .call(
            "proxy-set",
            &json!({"instanceName": INSTANCE, "enabled": false, "proxyHost": "127.0.0.1",
                    "proxyPort": "3128", "proxyProtocol": "http", "proxyUsername": "",
                    "proxyPassword": ""}),
        )
        .await;
    assert!(status == 200 && refused["success"] != true, "{refused}");

    // ---- groups ----
    // The node's description defaults to empty: accepted and left out, as Evolution does.
    let plain = w
        .run(
            "group-create",
            json!({"subject": "no description", "description": "", "participants": alice}),
        )
        .await;
    let plain = w.group(plain["id"].as_str().expect("group id")).await;
    assert_eq!(plain["subject"], "no description", "{plain}");
    assert!(
        plain["description"].is_null() || plain["description"] == "",
        "{plain}"
    );
    let group = w
        .run(
            "group-create",
            json!({
                "subject": "n8n group", "description": "made by n8n",
                "participants": format!("{alice}, {bob}")
            }),
        )
        .await;
    let gjid = group["id"].as_str().expect("group id").to_owned();
    let view = w.group(&gjid).await;
    assert_eq!(view["subject"], "n8n group", "{view}");
    assert_eq!(view["description"], "made by n8n", "{view}");
    assert_eq!(view["participants"].as_array().map(Vec::len), Some(3));
    w.run(
        "group-name",
        json!({"groupJid": gjid, "subject": "n8n renamed"}),
    )
    .await;
    assert_eq!(w.group(&gjid).await["subject"], "n8n renamed");
    w.run(
        "group-description",
        json!({"groupJid": gjid, "description": "rules"}),
    )
    .await;
    assert_eq!(w.group(&gjid).await["description"], "rules");
    w.run(
        "group-picture",
        json!({"groupJid": gjid, "image": b64.encode(jpeg())}),
    )
    .await;
    assert_eq!(w.group(&gjid).await["picture_bytes"], jpeg().len());
    // Mentions go with group texts.
    let mention = w
        .run(
            "send-text",
            json!({"remoteJid": gjid, "messageText": "hello @alice", "quotedId": "", "mentioned": alice}),
        )
        .await;
    let mention_id = mention["key"]["id"].as_str().unwrap().to_owned();
    let got = w.phone_got(&alice, &mention_id).await;
    assert_eq!(got["chat"], gjid.as_str(), "{got}");
    assert_eq!(got["context"]["mentioned_jid"], json!([alice_jid]), "{got}");

    let code = w.run("group-invite-code", json!({"groupJid": gjid})).await;
    let first_code = code["inviteCode"].as_str().expect("inviteCode").to_owned();
    assert_eq!(w.group(&gjid).await["invite_code"], first_code.as_str());
    let revoked = w
        .run("group-revoke-invite", json!({"groupJid": gjid}))
        .await;
    let code = revoked["inviteCode"]
        .as_str()
        .expect("inviteCode")
        .to_owned();
    assert_ne!(code, first_code);
    assert_eq!(w.group(&gjid).await["invite_code"], code.as_str());
    let invited = w
        .run(
            "group-send-invite",
            json!({"groupJid": gjid, "description": "join us", "numbers": bob}),
        )
        .await;
    assert_eq!(invited["send"], true, "{invited}");
    let link = format!("join us\n\nhttps://chat.whatsapp.com/{code}");
    w.until("the invite text at Bob's phone", || async {
        w.phone_messages(&bob)
            .await
            .iter()
            .any(|m| m["text"] == link.as_str())
            .then_some(())
    })
    .await;
    let info = w.run("group-by-invite", json!({"inviteCode": code})).await;
    assert_eq!(info["id"], gjid.as_str(), "{info}");
    let info = w.run("group-by-jid", json!({"groupJid": gjid})).await;
    assert_eq!(info["subject"], "n8n renamed", "{info}");
    let all = w.run("group-all", json!({"getParticipants": true})).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == gjid.as_str() && g["participants"].as_array().is_some()),
        "{all}"
    );
    let members = w.run("group-participants", json!({"groupJid": gjid})).await;
    assert_eq!(
        members["participants"].as_array().map(Vec::len),
        Some(3),
        "{members}"
    );
    w.run(
        "group-update-participants",
        json!({"groupJid": gjid, "action": "remove", "participants": bob}),
    )
    .await;
    let view = w.group(&gjid).await;
    assert!(
        !view["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["jid"] == bob_jid.as_str()),
        "{view}"
    );
    w.run(
        "group-update-participants",
        json!({"groupJid": gjid, "action": "promote", "participants": alice}),
    )
    .await;
    let view = w.group(&gjid).await;
    assert!(
        view["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["jid"] == alice_jid.as_str() && p["admin"] == "admin"),
        "{view}"
    );
    w.run(
        "group-settings",
        json!({"groupJid": gjid, "action": "announcement"}),
    )
    .await;
    assert_eq!(w.group(&gjid).await["announce"], true);
    w.run(
        "group-ephemeral",
        json!({"groupJid": gjid, "expiration": 604800}),
    )
    .await;
    assert_eq!(w.group(&gjid).await["ephemeral"], 604800);
    // Bob's own group, joined by its invite code, then left.
    let open = w
        .sim_post(
            "/sim/groups",
            json!({"creator": bob, "subject": "Bob's", "participants": [alice]}),
        )
        .await["jid"]
        .as_str()
        .unwrap()
        .to_owned();
    let bobs_code = w
        .sim_post(&format!("/sim/groups/{open}/invite"), json!({"actor": bob}))
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = w.run("group-join", json!({"inviteCode": bobs_code})).await;
    assert_eq!(joined["groupJid"], open.as_str(), "{joined}");
    let member = |view: &Value| {
        view["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["jid"] == owner_jid.as_str())
    };
    assert!(member(&w.group(&open).await));
    w.run("group-leave", json!({"groupJid": open})).await;
    assert!(!member(&w.group(&open).await));

    // ---- profile, privacy, block list ----
    w.run("profile-status", json!({"status": "via n8n"})).await;
    assert_eq!(w.profile(&owner).await["status"], "via n8n");
    w.run("profile-picture", json!({"picture": b64.encode(jpeg())}))
        .await;
    assert_eq!(w.profile(&owner).await["picture_bytes"], jpeg().len());
    w.run("profile-picture-remove", json!({})).await;
    assert_eq!(w.profile(&owner).await["picture_bytes"], 0);
    let privacy = w.run("privacy-fetch", json!({})).await;
    assert_eq!(privacy["readreceipts"], "all", "{privacy}");
    w.run(
        "privacy-update",
        json!({
            "readreceipts": "none", "profile": "contacts", "status": "contacts",
            "online": "match_last_seen", "last": "none", "groupadd": "contacts"
        }),
    )
    .await;
    let privacy = w.profile(&owner).await["privacy"].clone();
    assert_eq!(privacy["readreceipts"], "none", "{privacy}");
    assert_eq!(privacy["online"], "match_last_seen", "{privacy}");
    assert_eq!(privacy["last"], "none", "{privacy}");
    w.run("chat-block", json!({"remoteJid": bob, "status": "block"}))
        .await;
    assert_eq!(w.profile(&owner).await["blocked"], json!([bob_jid]));
    w.run(
        "chat-block",
        json!({"remoteJid": bob_jid, "status": "unblock"}),
    )
    .await;
    assert_eq!(w.profile(&owner).await["blocked"], json!([]));

    // ---- Evolution Bot: create, fetch, find, update, sessions, status, delete ----
    let bot_body = |trigger: &str| {
        json!({
            "apiUrl": format!("{}/bot", receiver.base), "apiKeyBot": "bot-secret",
            "triggerOperator": "contains", "triggerValue": trigger, "expire": 0,
            "keywordFinish": "#sair", "delayMessage": 1000,
            "unknownMessage": "Mensagem não reconhecida", "listeningFromMe": false,
            "stopBotFromMe": false, "keepOpen": false, "debounceTime": 0, "ignoreJids": []
        })
    };
    let bot = w.run("evobot-create", bot_body("n8n-bot-trigger")).await;
    let bot_id = bot["id"].as_str().expect("bot id").to_owned();
    let stored = w
        .api_get(&format!("/evolutionBot/fetch/{bot_id}/{INSTANCE}"))
        .await;
    assert_eq!(stored["triggerValue"], "n8n-bot-trigger", "{stored}");
    assert_eq!(stored["triggerType"], "keyword", "{stored}");
    let fetched = w
        .run("evobot-find", json!({"evolutionBotId": bot_id}))
        .await;
    assert_eq!(fetched["id"], bot_id.as_str(), "{fetched}");
    let listed = w.run("evobot-find", json!({"evolutionBotId": ""})).await;
    assert!(
        listed
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["id"] == bot_id.as_str())),
        "{listed}"
    );
    let mut update = bot_body("n8n-bot-renamed");
    update["evolutionBotId"] = bot_id.clone().into();
    w.run("evobot-update", update).await;
    let stored = w
        .api_get(&format!("/evolutionBot/fetch/{bot_id}/{INSTANCE}"))
        .await;
    assert_eq!(stored["triggerValue"], "n8n-bot-renamed", "{stored}");
    let sessions = w
        .run("evobot-sessions", json!({"evolutionBotId": bot_id}))
        .await;
    assert!(sessions.is_array(), "{sessions}");
    w.run(
        "evobot-status",
        json!({"remoteJid": alice_jid, "status": "closed"}),
    )
    .await;
    w.run("evobot-delete", json!({"evolutionBotId": bot_id}))
        .await;
    let left = w.api_get(&format!("/evolutionBot/find/{INSTANCE}")).await;
    assert!(
        !left
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["id"] == bot_id.as_str())),
        "{left}"
    );

    // ---- restart, logout, delete ----
    w.run("instance-restart", json!({})).await;
    w.until("open again after the restart", || async {
        (w.state().await == "open").then_some(())
    })
    .await;
    w.run("instance-logout", json!({})).await;
    w.until("closed after the logout", || async {
        (w.state().await == "close").then_some(())
    })
    .await;
    w.run("instance-delete", json!({})).await;
    let left = w.api_get("/instance/fetchInstances").await;
    assert_eq!(left, json!([]), "{left}");

    w.n8n.stop().await;
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    sim.shutdown().await.unwrap();
}
