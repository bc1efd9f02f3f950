//! Evolution's instance, webhook, settings and findMessages routes over real HTTP, on SQLite and
//! (when `ZAPIN_TEST_DATABASE_URL` is set) PostgreSQL: the guard chain and its precedence,
//! tenant isolation, Evolution's error shapes, atomicity and webhook delivery.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::Method;
use serde_json::{Value, json};
use zapin_compat_evolution::request::{
    parse_json_body, validate_create_instance, validate_find_messages, validate_group_text,
    validate_mark_message_as_read, validate_send_presence, validate_send_text,
    validate_set_presence, validate_settings_set, validate_update_participants,
    validate_webhook_set, validate_whatsapp_numbers,
};
use zapin_gateway::db::{Db, Message};
use zapin_gateway::webhook::{Dispatcher, DispatcherHandle, Routing};
use zapin_gateway::{AppState, Config, app};

use common::{Receiver, TestDb, backends};

const GLOBAL: &str = "global-test-key";
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// The app on 127.0.0.1:0 over one test database, with the webhook dispatcher running.
struct Gateway {
    base: String,
    client: reqwest::Client,
    db: Db,
    dispatcher: Option<DispatcherHandle>,
}

impl Gateway {
    async fn start(tdb: &TestDb, extra: &[(&str, &str)]) -> Self {
        let mut vars = vec![
            ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
            ("SERVER_URL".to_owned(), "http://zapin.test".to_owned()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::from_env(vars).unwrap();
        let dispatcher = Dispatcher::new(
            tdb.db.clone(),
            zapin_gateway::webhook::dispatcher_config(&config),
        )
        .unwrap()
        .spawn();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(AppState::new(config, tdb.db.clone()));
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            db: tdb.db.clone(),
            dispatcher: Some(dispatcher),
        }
    }

    async fn stop(mut self) {
        if let Some(d) = self.dispatcher.take() {
            d.shutdown().await;
        }
    }

    /// Sends `body` as raw bytes (so malformed JSON can be sent) with an optional key.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.header("apikey", key);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
        (status, value)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, path, key, bytes.as_deref()).await
    }

    /// Creates a Baileys instance with the global key and returns its token.
    async fn create(&self, name: &str, extra: Value) -> String {
        let mut body = json!({"instanceName": name, "integration": "WHATSAPP-BAILEYS"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, res) = self
            .call(Method::POST, "/instance/create", Some(GLOBAL), Some(body))
            .await;
        assert_eq!(status, 201, "{res}");
        res["hash"].as_str().unwrap().to_owned()
    }

    async fn instance_id(&self, name: &str) -> Option<String> {
        let mut tx = self.db.begin().await.unwrap();
        let found = tx.get_instance_by_name(name).await.unwrap();
        tx.rollback().await.unwrap();
        found.map(|i| i.id)
    }

    async fn instance_count(&self) -> usize {
        let mut tx = self.db.begin().await.unwrap();
        let n = tx.list_instances().await.unwrap().len();
        tx.rollback().await.unwrap();
        n
    }
}

/// Runs `f` once per backend, on a fresh database each time.
async fn each_backend<F, Fut>(f: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: std::future::Future<Output = TestDb>,
{
    for tdb in backends(Routing::default()).await {
        let backend = tdb.db.backend_name();
        eprintln!("backend: {backend}");
        let tdb = f(tdb).await;
        tdb.cleanup().await;
    }
}

fn unauthorized() -> Value {
    json!({"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}})
}

fn not_found(name: &str) -> Value {
    json!({"status": 404, "error": "Not Found",
           "response": {"message": [format!("The \"{name}\" instance does not exist")]}})
}

/// Every route with `{instance}`, with a valid body where it takes one.
fn guarded_routes(name: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::DELETE, format!("/instance/delete/{name}"), None),
        (
            Method::POST,
            format!("/webhook/set/{name}"),
            Some(
                json!({"webhook": {"enabled": true, "url": "http://127.0.0.1:9/x", "events": []}}),
            ),
        ),
        (Method::GET, format!("/webhook/find/{name}"), None),
        (
            Method::POST,
            format!("/rabbitmq/set/{name}"),
            Some(json!({"rabbitmq": {"enabled": true, "events": []}})),
        ),
        (Method::GET, format!("/rabbitmq/find/{name}"), None),
        (
            Method::POST,
            format!("/nats/set/{name}"),
            Some(json!({"nats": {"enabled": true, "events": []}})),
        ),
        (Method::GET, format!("/nats/find/{name}"), None),
        (
            Method::POST,
            format!("/settings/set/{name}"),
            Some(
                json!({"rejectCall": true, "groupsIgnore": false, "alwaysOnline": false,
                        "readMessages": false, "readStatus": false, "syncFullHistory": false}),
            ),
        ),
        (Method::GET, format!("/settings/find/{name}"), None),
        (
            Method::POST,
            format!("/chat/findMessages/{name}"),
            Some(json!({})),
        ),
        (Method::GET, format!("/instance/connect/{name}"), None),
        (
            Method::GET,
            format!("/instance/connectionState/{name}"),
            None,
        ),
        (Method::DELETE, format!("/instance/logout/{name}"), None),
        (Method::POST, format!("/instance/restart/{name}"), None),
        (Method::PUT, format!("/instance/restart/{name}"), None),
        (
            Method::POST,
            format!("/instance/setPresence/{name}"),
            Some(json!({"presence": "available"})),
        ),
        (
            Method::POST,
            format!("/message/sendText/{name}"),
            Some(json!({"number": "5511999999999", "text": "hi"})),
        ),
        (
            Method::POST,
            format!("/chat/markMessageAsRead/{name}"),
            Some(json!({"readMessages": [
                {"id": "ABC", "fromMe": false, "remoteJid": "5511999999999@s.whatsapp.net"}
            ]})),
        ),
        (
            Method::POST,
            format!("/chat/whatsappNumbers/{name}"),
            Some(json!({"numbers": ["5511999999999"]})),
        ),
        (
            Method::POST,
            format!("/chat/sendPresence/{name}"),
            Some(json!({"number": "5511999999999", "presence": "composing", "delay": 0})),
        ),
        (
            Method::GET,
            format!("/chat/fetchPrivacySettings/{name}"),
            None,
        ),
        (
            Method::POST,
            format!("/chat/updatePrivacySettings/{name}"),
            Some(
                json!({"readreceipts": "all", "profile": "all", "status": "all",
                        "online": "all", "last": "all", "groupadd": "all"}),
            ),
        ),
        (
            Method::POST,
            format!("/chat/updateBlockStatus/{name}"),
            Some(json!({"number": "5511999999999", "status": "block"})),
        ),
        (
            Method::POST,
            format!("/chat/updateProfileStatus/{name}"),
            Some(json!({"status": "hi"})),
        ),
        (
            Method::POST,
            format!("/chat/updateProfilePicture/{name}"),
            Some(json!({"picture": "/9j/4AAQ"})),
        ),
        (
            Method::DELETE,
            format!("/chat/removeProfilePicture/{name}"),
            None,
        ),
        (
            Method::POST,
            format!("/chat/findContacts/{name}"),
            Some(json!({"where": {}})),
        ),
        (
            Method::POST,
            format!("/chat/findChats/{name}"),
            Some(json!({"where": {}})),
        ),
        (
            Method::POST,
            format!("/chat/fetchProfile/{name}"),
            Some(json!({"number": "5511999999999"})),
        ),
        (
            Method::POST,
            format!("/chat/fetchBusinessProfile/{name}"),
            Some(json!({"number": "5511999999999"})),
        ),
        (
            Method::POST,
            format!("/chat/updateProfileName/{name}"),
            Some(json!({"name": "Shop"})),
        ),
        (
            Method::POST,
            format!("/proxy/set/{name}"),
            Some(json!({"enabled": false, "host": "h", "port": "1", "protocol": "http"})),
        ),
        (Method::GET, format!("/proxy/find/{name}"), None),
        (
            Method::POST,
            format!("/chat/fetchProfilePictureUrl/{name}"),
            Some(json!({"number": "5511999999999"})),
        ),
        (
            Method::DELETE,
            format!("/chat/deleteMessageForEveryone/{name}"),
            Some(json!({"id": "ABC", "fromMe": true, "remoteJid": "5511999999999@s.whatsapp.net"})),
        ),
        (
            Method::POST,
            format!("/chat/getBase64FromMediaMessage/{name}"),
            Some(json!({"message": {"key": {"id": "ABC"}}})),
        ),
        (
            Method::POST,
            format!("/chat/updateMessage/{name}"),
            Some(json!({"number": "5511999999999", "text": "x",
                        "key": {"id": "ABC", "remoteJid": "5511999999999@s.whatsapp.net", "fromMe": true}})),
        ),
        (
            Method::POST,
            format!("/message/sendContact/{name}"),
            Some(json!({"number": "5511999999999",
                        "contact": [{"fullName": "Ana", "phoneNumber": "5511999999998"}]})),
        ),
        (
            Method::POST,
            format!("/message/sendLocation/{name}"),
            Some(
                json!({"number": "5511999999999", "latitude": 1.0, "longitude": 2.0,
                        "name": "n", "address": "a"}),
            ),
        ),
        (
            Method::POST,
            format!("/message/sendMedia/{name}"),
            Some(json!({"number": "5511999999999", "mediatype": "image", "media": "/9j/4AAQ"})),
        ),
        (
            Method::POST,
            format!("/message/sendPoll/{name}"),
            Some(
                json!({"number": "5511999999999", "name": "q", "selectableCount": 1,
                        "values": ["a", "b"]}),
            ),
        ),
        (
            Method::POST,
            format!("/message/sendReaction/{name}"),
            Some(
                json!({"key": {"id": "ABC", "remoteJid": "5511999999999@s.whatsapp.net",
                                "fromMe": true}, "reaction": "👍"}),
            ),
        ),
        (
            Method::POST,
            format!("/message/sendSticker/{name}"),
            Some(json!({"number": "5511999999999", "sticker": "UklGRg=="})),
        ),
        (
            Method::POST,
            format!("/message/sendWhatsAppAudio/{name}"),
            Some(json!({"number": "5511999999999", "audio": "T2dnUw=="})),
        ),
        (
            Method::POST,
            format!("/message/sendPtv/{name}"),
            Some(json!({"number": "5511999999999", "video": "AAAAIGZ0eXA="})),
        ),
        (
            Method::POST,
            format!("/message/sendTemplate/{name}"),
            Some(json!({"number": "5511999999999", "name": "hello", "language": "en_US"})),
        ),
        (
            Method::POST,
            format!("/call/offer/{name}"),
            Some(json!({"number": "5511999999999", "isVideo": false, "callDuration": 3})),
        ),
        (
            Method::POST,
            format!("/group/create/{name}"),
            Some(json!({"subject": "S", "participants": ["5511999999999"]})),
        ),
        (
            Method::POST,
            format!("/group/updateGroupSubject/{name}"),
            Some(json!({"groupJid": GROUP, "subject": "S"})),
        ),
        (
            Method::POST,
            format!("/group/updateGroupPicture/{name}"),
            Some(json!({"groupJid": GROUP, "image": "/9j/4AAQ"})),
        ),
        (
            Method::POST,
            format!("/group/updateGroupDescription/{name}"),
            Some(json!({"groupJid": GROUP, "description": "D"})),
        ),
        (Method::GET, format!("/group/findGroupInfos/{name}"), None),
        (Method::GET, format!("/group/fetchAllGroups/{name}"), None),
        (Method::GET, format!("/group/participants/{name}"), None),
        (Method::GET, format!("/group/inviteCode/{name}"), None),
        (Method::GET, format!("/group/inviteInfo/{name}"), None),
        (Method::GET, format!("/group/acceptInviteCode/{name}"), None),
        (
            Method::POST,
            format!("/group/sendInvite/{name}"),
            Some(json!({"groupJid": GROUP, "description": "D", "numbers": ["5511999999999"]})),
        ),
        (
            Method::POST,
            format!("/group/revokeInviteCode/{name}"),
            Some(json!({"groupJid": GROUP})),
        ),
        (
            Method::POST,
            format!("/group/updateParticipant/{name}"),
            Some(json!({"groupJid": GROUP, "action": "add", "participants": ["5511999999999"]})),
        ),
        (
            Method::POST,
            format!("/group/updateSetting/{name}"),
            Some(json!({"groupJid": GROUP, "action": "locked"})),
        ),
        (
            Method::POST,
            format!("/group/toggleEphemeral/{name}"),
            Some(json!({"groupJid": GROUP, "expiration": 0})),
        ),
        (
            Method::DELETE,
            format!("/group/leaveGroup/{name}"),
            Some(json!({"groupJid": GROUP})),
        ),
    ]
}

const GROUP: &str = "120363000000000001@g.us";

/// Every path the app mounts with `{instance}` (read from the route table's source) is in
/// [`guarded_routes`], so the 401 and 400 tables below cover every route.
#[test]
fn the_route_table_covers_every_mounted_route() {
    let source = include_str!("../src/http/mod.rs");
    let mounted: std::collections::BTreeSet<&str> = source
        .split('"')
        .filter(|lit| lit.starts_with('/') && lit.ends_with("/{instance}"))
        .collect();
    assert!(mounted.len() >= 13, "{mounted:?}");
    let table: std::collections::BTreeSet<String> = guarded_routes("{instance}")
        .into_iter()
        .map(|(_, p, _)| p)
        .collect();
    for path in &mounted {
        assert!(
            table.contains(*path),
            "{path} is mounted but not in guarded_routes"
        );
    }
    // restart answers both verbs.
    let restart: Vec<Method> = guarded_routes("x")
        .into_iter()
        .filter(|(_, p, _)| p == "/instance/restart/x")
        .map(|(m, _, _)| m)
        .collect();
    assert_eq!(restart, [Method::POST, Method::PUT]);
}

/// Per POST route: a body that fails its schema.
fn bad_bodies(name: &str) -> Vec<(String, Value, Value)> {
    let bad_webhook = json!({"url": "http://x"});
    let bad_settings = json!({"rejectCall": "yes"});
    let bad_find = json!({"limit": "ten"});
    let bad_presence = json!({"presence": "sleeping"});
    let bad_send = json!({"number": 5511, "text": 7});
    let bad_read = json!({"readMessages": [{"id": "A", "fromMe": "no"}]});
    let bad_numbers = json!({"numbers": ["1", "1"]});
    let bad_chat_presence = json!({"number": 5511, "presence": "typing", "delay": "1s"});
    let bad_subject = json!({"groupJid": GROUP, "subject": 7});
    let bad_participants = json!({"groupJid": GROUP, "action": "kick", "participants": []});
    vec![
        (
            format!("/group/create/{name}"),
            json!({"participants": ["5511999999999"]}),
            json!({"status": 400, "error": "Bad Request",
                   "response": {"message": [["instance requires property \"subject\""]]}}),
        ),
        (
            format!("/group/updateGroupSubject/{name}"),
            bad_subject.clone(),
            serde_json::to_value(validate_group_text(&bad_subject, "subject").unwrap_err())
                .unwrap(),
        ),
        (
            format!("/group/updateGroupSubject/{name}"),
            json!({"subject": "S"}),
            json!({"status": 400, "error": "Bad Request", "response": {"message": [
                "The group id needs to be informed in the query",
                "ex: \"groupJid=120362@g.us\""
            ]}}),
        ),
        (
            format!("/group/updateParticipant/{name}"),
            bad_participants.clone(),
            serde_json::to_value(validate_update_participants(&bad_participants).unwrap_err())
                .unwrap(),
        ),
        (
            format!("/group/toggleEphemeral/{name}"),
            json!({"groupJid": GROUP, "expiration": 1}),
            json!({"status": 400, "error": "Bad Request", "response": {"message": [
                {"property": "expiration",
                 "message": "expiration is not one of enum values: 0,86400,604800,7776000"}
            ]}}),
        ),
        (
            format!("/chat/sendPresence/{name}"),
            bad_chat_presence.clone(),
            serde_json::to_value(validate_send_presence(&bad_chat_presence).unwrap_err()).unwrap(),
        ),
        (
            format!("/chat/sendPresence/{name}"),
            json!({"number": "5511999999999", "presence": "composing"}),
            json!({"status": 400, "error": "Bad Request",
                   "response": {"message": [["instance requires property \"delay\""]]}}),
        ),
        // whatsappNumbers answers its raw shape, without `response` (§1.4).
        (
            format!("/chat/whatsappNumbers/{name}"),
            bad_numbers.clone(),
            serde_json::to_value(validate_whatsapp_numbers(&bad_numbers).unwrap_err()).unwrap(),
        ),
        (
            format!("/chat/whatsappNumbers/{name}"),
            json!({"numbers": "5511"}),
            serde_json::to_value(
                validate_whatsapp_numbers(&json!({"numbers": "5511"})).unwrap_err(),
            )
            .unwrap(),
        ),
        (
            format!("/chat/whatsappNumbers/{name}"),
            json!({}),
            serde_json::to_value(validate_whatsapp_numbers(&json!({})).unwrap_err()).unwrap(),
        ),
        (
            format!("/instance/setPresence/{name}"),
            bad_presence.clone(),
            serde_json::to_value(validate_set_presence(&bad_presence).unwrap_err()).unwrap(),
        ),
        (
            format!("/instance/setPresence/{name}"),
            json!({}),
            serde_json::to_value(validate_set_presence(&json!({})).unwrap_err()).unwrap(),
        ),
        (
            format!("/message/sendText/{name}"),
            bad_send.clone(),
            serde_json::to_value(validate_send_text(&bad_send).unwrap_err()).unwrap(),
        ),
        (
            format!("/message/sendText/{name}"),
            json!({"number": "5511999999999"}),
            serde_json::to_value(
                validate_send_text(&json!({"number": "5511999999999"})).unwrap_err(),
            )
            .unwrap(),
        ),
        (
            format!("/chat/markMessageAsRead/{name}"),
            bad_read.clone(),
            serde_json::to_value(validate_mark_message_as_read(&bad_read).unwrap_err()).unwrap(),
        ),
        (
            format!("/chat/markMessageAsRead/{name}"),
            json!({}),
            serde_json::to_value(validate_mark_message_as_read(&json!({})).unwrap_err()).unwrap(),
        ),
        (
            format!("/webhook/set/{name}"),
            bad_webhook.clone(),
            serde_json::to_value(validate_webhook_set(&bad_webhook).unwrap_err()).unwrap(),
        ),
        (
            format!("/settings/set/{name}"),
            bad_settings.clone(),
            serde_json::to_value(validate_settings_set(&bad_settings).unwrap_err()).unwrap(),
        ),
        (
            format!("/chat/findMessages/{name}"),
            bad_find.clone(),
            serde_json::to_value(validate_find_messages(&bad_find).unwrap_err()).unwrap(),
        ),
    ]
}

fn seed_message(instance_id: &str, key: &str, ts: i64, from_me: bool) -> Message {
    Message {
        instance_id: instance_id.to_owned(),
        key_id: key.to_owned(),
        remote_jid: "5511987654321@s.whatsapp.net".to_owned(),
        from_me,
        participant: None,
        push_name: (!from_me).then(|| "Maria".to_owned()),
        message: json!({"conversation": format!("text {key}")}),
        message_type: "conversation".to_owned(),
        timestamp: ts,
        status: Some("DELIVERY_ACK".to_owned()),
        source: "unknown".to_owned(),
        context_info: Value::Null,
    }
}

/// The key ids of a findMessages answer, in order.
fn record_ids(found: &Value) -> Vec<String> {
    found["messages"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn find_messages_applies_every_filter() {
    each_backend(|tdb| async move {
        let gw = Gateway::start(&tdb, &[]).await;
        let token = gw.create("finder", json!({})).await;
        let id = gw.instance_id("finder").await.unwrap();
        let a = "5511987654321@s.whatsapp.net";
        let group = "120363025555555555@g.us";
        let member = "5511900000000@s.whatsapp.net";
        let base = 1_700_000_000; // 2023-11-14T22:13:20Z
        let rows = [
            (
                "3EB0AAAAAAAAAAAAAAAAAA",
                a,
                true,
                None,
                base,
                "conversation",
                "web",
            ),
            ("A1", a, false, None, base + 100, "imageMessage", "android"),
            (
                "3A1234567890ABCDEFGH",
                group,
                false,
                Some(member),
                base + 200,
                "conversation",
                "ios",
            ),
            (
                "R1",
                "5511911111111@s.whatsapp.net",
                false,
                None,
                base + 86_400,
                "reactionMessage",
                "unknown",
            ),
        ];
        let mut tx = gw.db.begin().await.unwrap();
        for (key, jid, from_me, participant, ts, kind, source) in rows {
            let mut m = seed_message(&id, key, ts, from_me);
            m.remote_jid = jid.to_owned();
            m.participant = participant.map(str::to_owned);
            m.message_type = kind.to_owned();
            m.source = source.to_owned();
            tx.write_message(&m).await.unwrap();
        }
        tx.commit().await.unwrap();

        let cases = [
            (json!({"where": {"key": {"id": "A1"}}}), vec!["A1"]),
            (
                json!({"where": {"key": {"fromMe": true}}}),
                vec!["3EB0AAAAAAAAAAAAAAAAAA"],
            ),
            (
                json!({"where": {"key": {"remoteJid": a}}}),
                vec!["A1", "3EB0AAAAAAAAAAAAAAAAAA"],
            ),
            // Evolution applies `fromMe` only when truthy: `false` filters nothing (the Python
            // client sends it for "received messages").
            (
                json!({"where": {"key": {"remoteJid": a, "fromMe": false}}}),
                vec!["A1", "3EB0AAAAAAAAAAAAAAAAAA"],
            ),
            (
                json!({"where": {"key": {"participant": member}}}),
                vec!["3A1234567890ABCDEFGH"],
            ),
            (json!({"where": {"id": "R1"}}), vec!["R1"]),
            (json!({"where": {"source": "android"}}), vec!["A1"]),
            (
                json!({"where": {"messageType": "reactionMessage"}}),
                vec!["R1"],
            ),
            (
                json!({"where": {"messageTimestamp": {
                    "gte": "2023-11-14T22:13:20Z", "lte": "2023-11-14T22:15:00.000Z"}}}),
                vec!["A1", "3EB0AAAAAAAAAAAAAAAAAA"],
            ),
            (
                json!({"where": {"messageTimestamp": {"gte": "2023-11-15", "lte": "2023-11-16"}}}),
                vec!["R1"],
            ),
            // One bound alone is ignored, as in Evolution.
            (
                json!({"where": {"messageTimestamp": {"gte": "2023-11-15"}}}),
                vec!["R1", "3A1234567890ABCDEFGH", "A1", "3EB0AAAAAAAAAAAAAAAAAA"],
            ),
            (
                json!({"page": 2, "offset": 2}),
                vec!["A1", "3EB0AAAAAAAAAAAAAAAAAA"],
            ),
            (json!({"page": 3, "offset": 2}), vec![]),
            // `where` keys Evolution does not read (findChats spellings, Evolution 1.x's
            // `key.participants`) must not empty the answer.
            (
                json!({"where": {"remoteJid": a, "pushName": "Ana",
                                 "key": {"participants": member, "id": ""}}}),
                vec!["R1", "3A1234567890ABCDEFGH", "A1", "3EB0AAAAAAAAAAAAAAAAAA"],
            ),
        ];
        for (body, expected) in cases {
            let (status, found) = gw
                .call(
                    Method::POST,
                    "/chat/findMessages/finder",
                    Some(&token),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(status, 200, "{body}: {found}");
            assert_eq!(record_ids(&found), expected, "{body}");
        }
        let (_, found) = gw
            .call(
                Method::POST,
                "/chat/findMessages/finder",
                Some(&token),
                Some(json!({"page": 2, "offset": 3})),
            )
            .await;
        assert_eq!(found["messages"]["total"], 4);
        assert_eq!(found["messages"]["pages"], 2);
        assert_eq!(found["messages"]["currentPage"], 2);
        let (_, found) = gw
            .call(
                Method::POST,
                "/chat/findMessages/finder",
                Some(&token),
                Some(json!({"where": {"source": "ios"}})),
            )
            .await;
        assert_eq!(found["messages"]["records"][0]["source"], "ios");
        assert_eq!(
            found["messages"]["records"][0]["key"]["participant"],
            member
        );

        gw.stop().await;
        tdb
    })
    .await;
}

#[tokio::test]
async fn instance_lifecycle_over_http() {
    each_backend(|tdb| async move {
        let gw = Gateway::start(&tdb, &[]).await;

        // create: generated token, settings echoed, stored status close.
        let (status, created) = gw
            .call(
                Method::POST,
                "/instance/create",
                Some(GLOBAL),
                Some(json!({"instanceName": "acme", "integration": "WHATSAPP-BAILEYS",
                            "rejectCall": true, "msgCall": "no calls", "qrcode": true})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let token = created["hash"].as_str().unwrap().to_owned();
        assert_eq!(token.len(), 36);
        assert_eq!(token, token.to_ascii_uppercase());
        assert_eq!(&token[14..15], "4", "UUID v4");
        let id = created["instance"]["instanceId"].as_str().unwrap().to_owned();
        assert_eq!(
            created["instance"],
            json!({"instanceName": "acme", "instanceId": id, "integration": "WHATSAPP-BAILEYS",
                   "webhookWaBusiness": null, "accessTokenWaBusiness": "", "status": "close"})
        );
        assert_eq!(created["webhook"], json!({}));
        assert_eq!(created["websocket"], json!({}));
        assert_eq!(created["settings"]["rejectCall"], true);
        assert_eq!(created["settings"]["msgCall"], "no calls");
        assert!(created.get("qrcode").is_none(), "no engine: no QR yet");

        // fetchInstances (§13.4 shape).
        let (status, list) = gw
            .call(Method::GET, "/instance/fetchInstances", Some(GLOBAL), None)
            .await;
        assert_eq!(status, 200);
        let row = &list[0];
        let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "id", "name", "connectionStatus", "ownerJid", "profileName", "profilePicUrl",
            "integration", "number", "businessId", "token", "clientName",
            "disconnectionReasonCode", "disconnectionObject", "disconnectionAt", "createdAt",
            "updatedAt", "Chatwoot", "Proxy", "Rabbitmq", "Nats", "Sqs", "Websocket", "Setting",
            "_count",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(row["id"], id.as_str());
        assert_eq!(row["name"], "acme");
        assert_eq!(row["connectionStatus"], "close");
        assert_eq!(row["token"], token.as_str());
        assert_eq!(row["Setting"]["rejectCall"], true);
        assert_eq!(row["Setting"]["instanceId"], id.as_str());
        assert_eq!(row["_count"], json!({"Message": 0, "Contact": 0, "Chat": 0}));
        assert!(row["createdAt"].as_str().unwrap().ends_with('Z'));

        // webhook: none yet, then set (secret accepted, never echoed), then find.
        let (status, found) = gw
            .call(Method::GET, "/webhook/find/acme", Some(&token), None)
            .await;
        assert_eq!((status, found), (200, Value::Null));
        let (status, set) = gw
            .call(
                Method::POST,
                "/webhook/set/acme",
                Some(&token),
                Some(json!({"webhook": {"enabled": true, "url": "https://hooks.acme.test/e",
                    "byEvents": true, "base64": false, "headers": {"x-tenant": "acme"},
                    "events": ["MESSAGES_UPSERT", "QRCODE_UPDATED"], "secret": "sig-secret"}})),
            )
            .await;
        assert_eq!(status, 201, "{set}");
        assert_eq!(set["url"], "https://hooks.acme.test/e");
        assert_eq!(set["headers"], json!({"x-tenant": "acme"}));
        assert_eq!(set["events"], json!(["MESSAGES_UPSERT", "QRCODE_UPDATED"]));
        assert_eq!(set["webhookByEvents"], true);
        assert_eq!(set["instanceId"], id.as_str());
        assert!(!set.to_string().contains("sig-secret"));
        let (status, found) = gw
            .call(Method::GET, "/webhook/find/acme", Some(&token), None)
            .await;
        assert_eq!((status, &found), (200, &set));
        let mut tx = gw.db.begin().await.unwrap();
        let stored = tx.get_webhook(&id).await.unwrap().unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(stored.secret.as_deref(), Some("sig-secret"));

        // A disabled webhook stores and shows no events; the secret survives a set without it.
        let (status, off) = gw
            .call(
                Method::POST,
                "/webhook/set/acme",
                Some(&token),
                Some(json!({"webhook": {"enabled": false, "url": "https://hooks.acme.test/e"}})),
            )
            .await;
        assert_eq!(status, 201, "{off}");
        assert_eq!(off["events"], json!([]));
        assert_eq!(off["enabled"], false);
        let (_, found) = gw
            .call(Method::GET, "/webhook/find/acme", Some(&token), None)
            .await;
        assert_eq!(found["events"], json!([]));
        let mut tx = gw.db.begin().await.unwrap();
        let stored = tx.get_webhook(&id).await.unwrap().unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(stored.secret.as_deref(), Some("sig-secret"));

        // settings: set echoes the body; find returns the 8 fields; msgCall kept when omitted.
        let settings = json!({"rejectCall": false, "groupsIgnore": true, "alwaysOnline": true,
            "readMessages": false, "readStatus": true, "syncFullHistory": false});
        let (status, echoed) = gw
            .call(Method::POST, "/settings/set/acme", Some(&token), Some(settings.clone()))
            .await;
        assert_eq!(status, 201);
        assert_eq!(echoed, json!({"settings": {"instanceName": "acme", "settings": settings}}));
        let (status, found) = gw
            .call(Method::GET, "/settings/find/acme", Some(&token), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            found,
            json!({"rejectCall": false, "msgCall": "no calls", "groupsIgnore": true,
                   "alwaysOnline": true, "readMessages": false, "readStatus": true,
                   "syncFullHistory": false, "wavoipToken": ""})
        );

        // findMessages: seeded through the Db; newest first, paging per §13.9.
        let mut tx = gw.db.begin().await.unwrap();
        for (key, ts, from_me) in [("K1", 100, false), ("K2", 200, true), ("K3", 300, false)] {
            tx.upsert_message(&seed_message(&id, key, ts, from_me), |_| json!({}))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let (status, page) = gw
            .call(
                Method::POST,
                "/chat/findMessages/acme",
                Some(&token),
                Some(json!({"where": {"key": {"remoteJid": "5511987654321@s.whatsapp.net"}},
                            "page": 1, "offset": 2})),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["messages"]["total"], 3);
        assert_eq!(page["messages"]["pages"], 2);
        assert_eq!(page["messages"]["currentPage"], 1);
        let records = page["messages"]["records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["key"]["id"], "K3");
        assert_eq!(records[1]["key"]["id"], "K2");
        assert_eq!(records[1]["pushName"], "Você");
        assert_eq!(records[0]["messageTimestamp"], 300);
        assert_eq!(records[0]["message"], json!({"conversation": "text K3"}));
        assert_eq!(records[0]["MessageUpdate"], json!([{"status": "DELIVERY_ACK"}]));
        let (_, page2) = gw
            .call(Method::POST, "/chat/findMessages/acme", Some(&token),
                  Some(json!({"page": 2, "offset": 2})))
            .await;
        assert_eq!(page2["messages"]["currentPage"], 2);
        assert_eq!(page2["messages"]["records"][0]["key"]["id"], "K1");
        let (_, only) = gw
            .call(Method::POST, "/chat/findMessages/acme", Some(&token),
                  Some(json!({"where": {"key": {"fromMe": true}}})))
            .await;
        assert_eq!(only["messages"]["total"], 1);
        let (_, list) = gw
            .call(Method::GET, "/instance/fetchInstances", Some(&token), None)
            .await;
        assert_eq!(list[0]["_count"]["Message"], 3);

        // delete with the instance's own token: §13.5 body, then everything is gone.
        let (status, deleted) = gw
            .call(Method::DELETE, "/instance/delete/acme", Some(&token), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            deleted,
            json!({"status": "SUCCESS", "error": false, "response": {"message": "Instance deleted"}})
        );
        assert_eq!(gw.instance_count().await, 0);
        let (status, body) = gw
            .call(Method::GET, "/webhook/find/acme", Some(GLOBAL), None)
            .await;
        assert_eq!((status, body), (404, not_found("acme")));
        let (status, list) = gw
            .call(Method::GET, "/instance/fetchInstances", Some(GLOBAL), None)
            .await;
        assert_eq!((status, list), (200, json!([])));

        gw.stop().await;
        tdb
    })
    .await;
}

#[tokio::test]
async fn guard_precedence_is_404_then_403_then_401_then_400() {
    each_backend(|tdb| async move {
        let gw = Gateway::start(&tdb, &[]).await;
        let token = gw.create("taken", json!({})).await;

        for (method, path, body) in guarded_routes("ghost") {
            // Unknown instance: 404 whatever the key and body.
            for key in [None, Some("wrong"), Some(GLOBAL)] {
                let (status, res) = gw.raw(method.clone(), &path, key, Some(b"{bad json")).await;
                assert_eq!((status, res), (404, not_found("ghost")), "{method} {path}");
            }
            let _ = body;
        }
        for (method, path, body) in guarded_routes("taken") {
            // Known instance, bad or missing key: 401 even with a malformed body.
            for key in [None, Some("wrong"), Some("")] {
                let (status, res) = gw.raw(method.clone(), &path, key, Some(b"{bad json")).await;
                assert_eq!((status, res), (401, unauthorized()), "{method} {path}");
            }
            // The key is good: the body decides, on routes that take none too (Express
            // parses every JSON body first).
            let _ = body;
            let (status, res) = gw.raw(method.clone(), &path, Some(&token), Some(b"{bad json")).await;
            assert_eq!(status, 400, "{method} {path}: {res}");
            assert_eq!(
                res,
                serde_json::to_value(parse_json_body(b"{bad json").unwrap_err()).unwrap(),
                "body-parser shape: {method} {path}"
            );
        }
        for (path, body, expected) in bad_bodies("taken") {
            let (status, res) = gw.call(Method::POST, &path, Some("wrong"), Some(body.clone())).await;
            assert_eq!((status, res), (401, unauthorized()), "{path}");
            let (status, res) = gw.call(Method::POST, &path, Some(&token), Some(body)).await;
            assert_eq!(status, 400, "{path}");
            assert_eq!(res, expected, "{path}");
        }
        // The header name is case-insensitive.
        let res = gw
            .client
            .get(format!("{}/settings/find/taken", gw.base))
            .header("APIKEY", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);

        // create: 403 (name taken) before 401 before 400.
        let taken = json!({"instanceName": "taken", "integration": "nope"});
        for key in [None, Some("wrong"), Some(GLOBAL)] {
            let (status, res) = gw.call(Method::POST, "/instance/create", key, Some(taken.clone())).await;
            assert_eq!(status, 403);
            assert_eq!(
                res,
                json!({"status": 403, "error": "Forbidden",
                       "response": {"message": ["This name \"taken\" is already in use."]}})
            );
        }
        let invalid = json!({"instanceName": "fresh", "integration": "nope"});
        for key in [None, Some("wrong"), Some(token.as_str())] {
            let (status, res) = gw.call(Method::POST, "/instance/create", key, Some(invalid.clone())).await;
            assert_eq!((status, res), (401, unauthorized()));
            let (status, res) = gw.raw(Method::POST, "/instance/create", key, Some(b"{")).await;
            assert_eq!((status, res), (401, unauthorized()));
        }
        let (status, res) = gw.call(Method::POST, "/instance/create", Some(GLOBAL), Some(invalid)).await;
        assert_eq!(status, 400);
        assert_eq!(res, json!({"status": 400, "error": "Bad Request", "response": {"message": ["Invalid integration"]}}));
        let (status, res) = gw.call(Method::GET, "/instance/fetchInstances", None, None).await;
        assert_eq!((status, res), (401, unauthorized()));
        assert_eq!(gw.instance_count().await, 1);

        // Without an engine, connect reports Evolution's 200 `{error:true,message}`; the guard
        // still runs first.
        let (status, res) = gw.call(Method::GET, "/instance/connect/taken", Some(GLOBAL), None).await;
        assert_eq!(status, 200);
        assert_eq!(res["error"], true);
        let (status, _) = gw.call(Method::GET, "/instance/connect/nope", Some(GLOBAL), None).await;
        assert_eq!(status, 404);

        gw.stop().await;
        tdb
    })
    .await;
}

#[tokio::test]
async fn a_token_only_unlocks_its_own_instance() {
    each_backend(|tdb| async move {
        let gw = Gateway::start(&tdb, &[]).await;
        let token_a = gw.create("tenant-a", json!({})).await;
        let token_b = gw
            .create("tenant-b", json!({"token": "b-chosen-token"}))
            .await;
        assert_eq!(token_b, "b-chosen-token");

        for (method, path, body) in guarded_routes("tenant-a") {
            let (status, res) = gw.call(method.clone(), &path, Some(&token_b), body).await;
            assert_eq!((status, res), (401, unauthorized()), "{method} {path}");
        }
        assert_eq!(gw.instance_count().await, 2, "B could not delete A");
        let (status, res) = gw
            .call(
                Method::POST,
                "/instance/create",
                Some(&token_a),
                Some(json!({"instanceName": "c", "integration": "WHATSAPP-BAILEYS"})),
            )
            .await;
        assert_eq!((status, res), (401, unauthorized()), "tokens cannot create");

        // fetchInstances with B's token lists B only, and cannot reach A by a filter.
        let (status, list) = gw
            .call(
                Method::GET,
                "/instance/fetchInstances",
                Some(&token_b),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["tenant-b"]);
        assert!(!list.to_string().contains(&token_a));
        let (status, res) = gw
            .call(
                Method::GET,
                "/instance/fetchInstances?instanceName=tenant-a",
                Some(&token_b),
                None,
            )
            .await;
        assert_eq!((status, res), (401, unauthorized()));
        let (status, list) = gw
            .call(
                Method::GET,
                "/instance/fetchInstances?instanceName=tenant-b",
                Some(&token_b),
                None,
            )
            .await;
        assert_eq!((status, list[0]["name"].clone()), (200, json!("tenant-b")));
        let (status, res) = gw
            .call(
                Method::GET,
                "/instance/fetchInstances?instanceName=nobody",
                Some(GLOBAL),
                None,
            )
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            res["response"]["message"],
            json!(["Instance \"nobody\" not found"])
        );
        let id_a = gw.instance_id("tenant-a").await.unwrap();
        let (status, list) = gw
            .call(
                Method::GET,
                &format!("/instance/fetchInstances?instanceId={id_a}"),
                Some(GLOBAL),
                None,
            )
            .await;
        assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
        let (status, _) = gw
            .call(
                Method::GET,
                "/instance/fetchInstances",
                Some("nobody's"),
                None,
            )
            .await;
        assert_eq!(status, 401);

        // `?instanceName=` never redirects a request away from the path's instance.
        let settings = json!({"rejectCall": true, "groupsIgnore": true, "alwaysOnline": true,
            "readMessages": true, "readStatus": true, "syncFullHistory": true});
        let (status, echoed) = gw
            .call(
                Method::POST,
                "/settings/set/tenant-b?instanceName=tenant-a",
                Some(&token_b),
                Some(settings),
            )
            .await;
        assert_eq!(status, 201);
        assert_eq!(echoed["settings"]["instanceName"], "tenant-b");
        let (_, a) = gw
            .call(Method::GET, "/settings/find/tenant-a", Some(&token_a), None)
            .await;
        assert_eq!(a["rejectCall"], false, "A untouched");
        let (_, b) = gw
            .call(
                Method::GET,
                "/settings/find/tenant-b?instanceName=tenant-a",
                Some(&token_b),
                None,
            )
            .await;
        assert_eq!(b["rejectCall"], true);
        let (status, _) = gw
            .call(
                Method::DELETE,
                "/instance/delete/tenant-b?instanceName=tenant-a",
                Some(&token_b),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert!(gw.instance_id("tenant-a").await.is_some());
        assert!(gw.instance_id("tenant-b").await.is_none());

        gw.stop().await;
        tdb
    })
    .await;
}

#[tokio::test]
async fn bad_bodies_get_evolutions_shapes_and_write_nothing() {
    each_backend(|tdb| async move {
        let gw = Gateway::start(&tdb, &[]).await;
        let token = gw.create("clean", json!({})).await;
        let id = gw.instance_id("clean").await.unwrap();
        let (_, settings_before) = gw
            .call(Method::GET, "/settings/find/clean", Some(&token), None)
            .await;

        // create: malformed JSON, missing name, wrong types.
        let malformed: &[&[u8]] = &[b"{\"instanceName\": ", b"{\"a\":1,}", b"nope"];
        for body in malformed {
            let (status, res) = gw
                .raw(Method::POST, "/instance/create", Some(GLOBAL), Some(body))
                .await;
            let expected = serde_json::to_value(parse_json_body(body).unwrap_err()).unwrap();
            assert_eq!((status, res), (400, expected));
        }
        for body in [
            json!({"integration": "WHATSAPP-BAILEYS"}),
            json!({"instanceName": 5, "integration": "WHATSAPP-BAILEYS"}),
            json!({"instanceName": "x", "integration": "WHATSAPP-BAILEYS", "qrcode": "yes"}),
            json!({"instanceName": "x", "integration": "WHATSAPP-BAILEYS",
                   "webhook": {"url": 7, "events": ["NOT_AN_EVENT"]}}),
        ] {
            let (status, res) = gw
                .call(
                    Method::POST,
                    "/instance/create",
                    Some(GLOBAL),
                    Some(body.clone()),
                )
                .await;
            let expected =
                serde_json::to_value(validate_create_instance(&body).unwrap_err()).unwrap();
            assert_eq!((status, &res), (400, &expected), "{body}");
            assert!(
                res["response"]["message"][0].is_array(),
                "nested dataValidate shape"
            );
        }
        let (status, res) = gw
            .call(
                Method::POST,
                "/instance/create",
                Some(GLOBAL),
                Some(json!({"instanceName": "x"})),
            )
            .await;
        assert_eq!(
            (status, res["response"]["message"].clone()),
            (400, json!(["Invalid integration"]))
        );
        assert_eq!(gw.instance_count().await, 1);

        // The guarded routes: malformed JSON, missing fields, wrong types.
        for (path, body, expected) in bad_bodies("clean") {
            let (status, res) = gw.call(Method::POST, &path, Some(&token), Some(body)).await;
            assert_eq!((status, res), (400, expected), "{path}");
            let (status, res) = gw
                .raw(Method::POST, &path, Some(&token), Some(b"[1,"))
                .await;
            assert_eq!(status, 400, "{path}");
            assert_eq!(
                res,
                serde_json::to_value(parse_json_body(b"[1,").unwrap_err()).unwrap()
            );
        }
        let (status, res) = gw
            .call(
                Method::POST,
                "/webhook/set/clean",
                Some(&token),
                Some(json!({"webhook": {"url": "http://x"}})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(
            res["response"]["message"],
            json!([["webhook requires property \"enabled\""]])
        );
        let (status, res) = gw
            .call(
                Method::POST,
                "/webhook/set/clean",
                Some(&token),
                Some(json!({"webhook": {"enabled": true, "url": "http://x", "secret": 5}})),
            )
            .await;
        assert_eq!(
            (status, res["response"]["message"].clone()),
            (400, json!([["webhook.secret is not of a type(s) string"]]))
        );
        let (status, res) = gw
            .call(
                Method::POST,
                "/settings/set/clean",
                Some(&token),
                Some(json!({"rejectCall": true})),
            )
            .await;
        assert_eq!(status, 400);
        assert!(
            res["response"]["message"][0]
                .as_array()
                .unwrap()
                .contains(&json!("instance requires property \"groupsIgnore\""))
        );

        // Too large: Evolution's 413 body-parser shape, and nothing read further.
        let big = vec![b' '; zapin_gateway::http::BODY_LIMIT_BYTES + 1];
        let (status, res) = gw
            .raw(
                Method::POST,
                "/settings/set/clean",
                Some(&token),
                Some(&big),
            )
            .await;
        assert_eq!(status, 413);
        assert_eq!(
            res,
            json!({"status": 413, "error": "Internal Server Error",
                               "response": {"message": "request entity too large"}})
        );

        // Valid, but the instance has no open session: the raw 400 as well.
        let (status, res) = gw
            .call(
                Method::POST,
                "/chat/whatsappNumbers/clean",
                Some(&token),
                Some(json!({"numbers": ["5511999999999"]})),
            )
            .await;
        assert_eq!(
            (status, res),
            (
                400,
                json!({"status": 400, "error": "Bad Request",
                       "message": ["The \"clean\" instance is not connected"]})
            )
        );

        // Nothing was written.
        let mut tx = gw.db.begin().await.unwrap();
        let page = tx.find_messages(&id, None, 1, 50).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(page.total, 0, "no message row from a refused send");
        let (_, webhook) = gw
            .call(Method::GET, "/webhook/find/clean", Some(&token), None)
            .await;
        assert_eq!(webhook, Value::Null);
        let (_, settings_after) = gw
            .call(Method::GET, "/settings/find/clean", Some(&token), None)
            .await;
        assert_eq!(settings_after, settings_before);
        let mut tx = gw.db.begin().await.unwrap();
        assert!(tx.get_instance(&id).await.unwrap().is_some());
        tx.rollback().await.unwrap();

        gw.stop().await;
        tdb
    })
    .await;
}

/// Byte offset of `"key":` in a raw body.
fn key_at(raw: &str, key: &str) -> usize {
    raw.find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {raw}"))
}

#[tokio::test]
async fn create_and_delete_deliver_lifecycle_events_through_the_dispatcher() {
    each_backend(|tdb| async move {
        let receiver = Receiver::start().await;
        let gw = Gateway::start(&tdb, &[]).await;
        let url = format!("{}/hook", receiver.base);
        let token = gw
            .create(
                "hooked",
                json!({"webhook": {"url": url, "events": [], "headers": {"x-tenant": "t"}}}),
            )
            .await;
        let id = gw.instance_id("hooked").await.unwrap();

        let seen = receiver.wait_for(1).await;
        assert_eq!(seen[0].path, "/hook");
        assert_eq!(seen[0].header("x-tenant"), Some("t"));
        let raw = std::str::from_utf8(&seen[0].body).unwrap();
        let order = [
            "event",
            "instance",
            "data",
            "destination",
            "date_time",
            "server_url",
            "apikey",
        ]
        .map(|k| key_at(raw, k));
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key order: {raw}");
        assert!(
            raw.starts_with(&format!(
                "{{\"event\":\"instance.create\",\"instance\":\"hooked\",\
                 \"data\":{{\"instanceName\":\"hooked\",\"instanceId\":\"{id}\"}},\
                 \"destination\":\"{url}\",\"date_time\":\""
            )),
            "{raw}"
        );
        assert!(
            raw.ends_with(",\"server_url\":\"http://zapin.test\",\"apikey\":null}"),
            "{raw}"
        );
        assert!(
            !raw.contains("\"sender\""),
            "no sender before the first open"
        );

        let (status, _) = gw
            .call(
                Method::DELETE,
                "/instance/delete/hooked",
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let seen = receiver.wait_for(2).await;
        let deleted = seen[1].json();
        assert_eq!(deleted["event"], "instance.delete");
        assert_eq!(
            deleted["data"],
            json!({"instanceName": "hooked", "instanceId": id})
        );

        gw.stop().await;
        tdb
    })
    .await;
}

#[tokio::test]
async fn tokens_are_encrypted_at_rest_with_a_master_key() {
    each_backend(|tdb| async move {
        let gw = Gateway::start(&tdb, &[("ZAPIN_MASTER_KEY", MASTER_KEY)]).await;
        let token = gw
            .create("sealed", json!({"token": "my-plain-token"}))
            .await;
        let mut tx = gw.db.begin().await.unwrap();
        let stored = tx
            .get_instance_by_name("sealed")
            .await
            .unwrap()
            .unwrap()
            .token;
        tx.rollback().await.unwrap();
        assert_ne!(stored, token);
        assert!(!stored.contains("my-plain-token"));
        assert!(stored.starts_with("enc1:"));

        let (status, list) = gw
            .call(Method::GET, "/instance/fetchInstances", Some(&token), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(list[0]["token"], "my-plain-token");
        let (status, _) = gw
            .call(Method::GET, "/settings/find/sealed", Some(&token), None)
            .await;
        assert_eq!(status, 200);
        let (status, _) = gw
            .call(Method::GET, "/settings/find/sealed", Some("enc1:x"), None)
            .await;
        assert_eq!(status, 401);
        gw.stop().await;

        // Without the key the stored token opens for nobody (not even its ciphertext).
        let gw = Gateway::start(&tdb, &[]).await;
        let (status, _) = gw
            .call(Method::GET, "/settings/find/sealed", Some(&token), None)
            .await;
        assert_eq!(status, 401);
        let (status, _) = gw
            .call(Method::GET, "/settings/find/sealed", Some(&stored), None)
            .await;
        assert_eq!(status, 401);
        // The global key still lists (token unreadable: empty) and deletes it.
        let (status, list) = gw
            .call(Method::GET, "/instance/fetchInstances", Some(GLOBAL), None)
            .await;
        assert_eq!((status, list[0]["token"].clone()), (200, json!("")));
        let (status, _) = gw
            .call(
                Method::DELETE,
                "/instance/delete/sealed",
                Some(GLOBAL),
                None,
            )
            .await;
        assert_eq!(status, 200);
        gw.stop().await;
        tdb
    })
    .await;
}

/// How real Evolution clients call the routes served over the database, as their request code
/// does it (see `zapin_compat_evolution::client_tolerance`).
#[tokio::test]
async fn evolution_clients_request_habits_are_accepted() {
    each_backend(|tdb| async move {
        let gw = Gateway::start(&tdb, &[]).await;
        let token = gw.create("habits", json!({})).await;
        gw.create("bystander", json!({})).await;

        // The Python client (evolutionapi) sends `Content-Type: application/json` with no body
        // on GET and DELETE.
        let (status, list) = gw
            .raw(
                Method::GET,
                "/instance/fetchInstances",
                Some(GLOBAL),
                Some(b""),
            )
            .await;
        assert_eq!(status, 200, "{list}");
        let (status, body) = gw
            .raw(
                Method::GET,
                "/settings/find/habits",
                Some(&token),
                Some(b""),
            )
            .await;
        assert_eq!(status, 200, "{body}");

        // n8n's settings body: no wavoipToken, everything else as booleans.
        let (status, body) = gw
            .call(
                Method::POST,
                "/settings/set/habits",
                Some(&token),
                Some(
                    json!({"rejectCall": false, "msgCall": "", "groupsIgnore": true,
                            "alwaysOnline": false, "readMessages": false,
                            "syncFullHistory": false, "readStatus": false}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");

        // n8n's set-webhook spelling: byEvents/base64 as `webhookByEvents`/`webhookBase64`
        // inside `webhook`.
        let (status, body) = gw
            .call(
                Method::POST,
                "/webhook/set/habits",
                Some(&token),
                Some(
                    json!({"webhook": {"enabled": true, "url": "http://127.0.0.1:9/n8n",
                                        "webhookByEvents": true, "webhookBase64": true,
                                        "events": ["MESSAGES_UPSERT"]}}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (_, found) = gw
            .call(Method::GET, "/webhook/find/habits", Some(&token), None)
            .await;
        assert_eq!(
            (&found["webhookByEvents"], &found["webhookBase64"]),
            (&json!(true), &json!(true)),
            "{found}"
        );

        // The Manager's findMessages (only `where.key.remoteJid`) on an empty store.
        let (status, found) = gw
            .call(
                Method::POST,
                "/chat/findMessages/habits",
                Some(&token),
                Some(json!({"where": {"key": {"remoteJid": "5511987654321@s.whatsapp.net"}}})),
            )
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["messages"]["total"], 0);

        // A DELETE with a JSON body: the body is ignored, the path names the instance.
        let (status, body) = gw
            .call(
                Method::DELETE,
                "/instance/delete/habits",
                Some(&token),
                Some(json!({"instanceName": "bystander"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(gw.instance_id("habits").await.is_none());
        assert!(gw.instance_id("bystander").await.is_some());
        gw.stop().await;
        tdb
    })
    .await;
}
