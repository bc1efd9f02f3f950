//! The send routes beyond sendText, end to end: the gateway wired to an in-process simulator, a
//! linked instance and a real webhook receiver. Each send goes over HTTP, and the simulator's
//! phone shows what it decrypted (for media: the bytes it downloaded from the media store and
//! decrypted, by sha256); `send.message` and the status updates reach the webhook. Numbers that
//! are not on WhatsApp get Evolution's 400 with the lookup object, and bad input a 4xx, with
//! nothing sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use base64::Engine as _;
use common::{Receiver, eventually};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zapin_gateway::db::Db;
use zapin_gateway::runtime::{self, EngineRuntime};
use zapin_gateway::webhook::Dispatcher;
use zapin_gateway::{AppState, Config, app};
use zapin_sim::{RunningSim, SimConfig};

const GLOBAL: &str = "sends-global-key";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct Gateway {
    base: String,
    client: reqwest::Client,
    engine: std::sync::Arc<EngineRuntime>,
    server: tokio::task::JoinHandle<()>,
    db: Db,
}

impl Gateway {
    async fn start(sim: &RunningSim, dir: &std::path::Path, extra: &[(&str, &str)]) -> Self {
        let mut vars = vec![
            ("AUTHENTICATION_API_KEY".to_owned(), GLOBAL.to_owned()),
            ("ZAPIN_DATA_DIR".to_owned(), dir.display().to_string()),
            ("ZAPIN_WA_WS_URL".to_owned(), sim.ws_url()),
            (
                "ZAPIN_WA_ROOT_PUBKEY".to_owned(),
                hex::encode(sim.root_public_key().0),
            ),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
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

    async fn answer(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("apikey", GLOBAL);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::answer(req.send().await.unwrap()).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A `multipart/form-data` POST with text `fields` and a `file` part.
    async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
    ) -> (u16, Value) {
        let boundary = "zapin-test-boundary-7d1f";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        let (file_name, content_type, bytes) = file;
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("apikey", GLOBAL)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        Self::answer(resp).await
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

async fn sim_messages(sim: &RunningSim, phone: &str) -> Vec<Value> {
    reqwest::get(format!("{}/sim/accounts/{phone}/messages", sim.http_url()))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The message `id` as `phone` received it.
async fn received(sim: &RunningSim, phone: &str, id: &str) -> Value {
    eventually("the phone to decrypt the message", || async {
        sim_messages(sim, phone)
            .await
            .into_iter()
            .find(|m| m["id"] == id)
    })
    .await
}

async fn account(sim: &RunningSim, name: &str) -> String {
    let (status, body) = sim_post(sim, "/sim/accounts", json!({"push_name": name})).await;
    assert_eq!(status, 201, "{body}");
    body["phone"].as_str().unwrap().to_owned()
}

/// Creates instance `name` with a webhook to `receiver`, links it to a new account and waits
/// for it to open.
async fn linked(gw: &Gateway, sim: &RunningSim, receiver: &Receiver, name: &str) -> String {
    let phone = account(sim, "Owner").await;
    let (status, body) = gw
        .post(
            "/instance/create",
            json!({
                "instanceName": name,
                "integration": "WHATSAPP-BAILEYS",
                "webhook": {"url": format!("{}/hook", receiver.base), "events": [
                    "CONNECTION_UPDATE", "MESSAGES_UPDATE", "SEND_MESSAGE", "MESSAGES_UPSERT",
                    "MESSAGES_EDITED", "MESSAGES_DELETE"
                ]}
            }),
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

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 99]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([y as u8, x as u8, 5]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

fn pdf() -> Vec<u8> {
    let mut v = b"%PDF-1.4\n%zapin test document\n".to_vec();
    v.extend((0..5000u32).map(|i| (i % 97) as u8));
    v
}

fn mp4() -> Vec<u8> {
    let mut v = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
    v.extend((0..3000u32).map(|i| (i % 13) as u8));
    v
}

fn mp3() -> Vec<u8> {
    let mut v = b"ID3\x03\0\0\0\0\0\x0a".to_vec();
    v.extend((0..4000u32).map(|i| (i % 7) as u8));
    v
}

/// A file server on 127.0.0.1 (a private address: reached only with ZAPIN_ALLOW_PRIVATE_URLS).
async fn file_server() -> String {
    let pic = jpeg(40, 30);
    let big = vec![7u8; 3 * 1024 * 1024];
    let app = Router::new()
        .route("/files/pic.jpg", get(move || async move { pic.clone() }))
        .route("/files/big.bin", get(move || async move { big.clone() }))
        .route(
            "/files/moved.jpg",
            get(|| async { (StatusCode::FOUND, [("location", "/files/pic.jpg")]) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn lookup_400(body: &Value, number: &str, jid: &str) {
    assert_eq!(
        body,
        &json!({"status": 400, "error": "Bad Request", "response": {"message": [
            {"jid": jid, "exists": false, "number": number}
        ]}}),
    );
}

fn bad_request_text(body: &Value) -> String {
    assert_eq!(body["status"], 400, "{body}");
    body["response"]["message"].to_string()
}

#[tokio::test]
async fn numbers_not_on_whatsapp_get_evolutions_400_and_nothing_is_sent() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(41),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), &[]).await;
    linked(&gw, &sim, &receiver, "nobody").await;
    let friend = account(&sim, "Friend").await;
    let thirty = "1".repeat(30);
    let cases: Vec<(&str, String)> = vec![
        ("abc", "@s.whatsapp.net".into()),
        ("+", "@s.whatsapp.net".into()),
        ("", "@s.whatsapp.net".into()),
        (&thirty, format!("{thirty}@g.us")),
        ("15559999999", "15559999999@s.whatsapp.net".into()),
        ("123@g.us", "123@g.us".into()),
    ];
    let image = B64.encode(png(8, 8));
    for (number, jid) in &cases {
        let (status, body) = gw
            .post(
                "/message/sendText/nobody",
                json!({"number": number, "text": "hello?"}),
            )
            .await;
        assert_eq!(status, 400, "sendText {number:?}: {body}");
        lookup_400(&body, number, jid);
        let (status, body) = gw
            .post(
                "/message/sendMedia/nobody",
                json!({"number": number, "mediatype": "image", "media": image}),
            )
            .await;
        assert_eq!(status, 400, "sendMedia {number:?}: {body}");
        lookup_400(&body, number, jid);
    }
    // Nothing was recorded for any of them.
    let (status, found) = gw
        .post("/chat/findMessages/nobody", json!({"where": {}}))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["messages"]["total"], 0, "{found}");
    assert_eq!(gw.engine.sends_in_flight(), 0);

    // A media URL on this machine is refused unless the operator allows it.
    let files = file_server().await;
    let (status, body) = gw
        .post(
            "/message/sendMedia/nobody",
            json!({"number": friend, "mediatype": "image", "media": format!("{files}/files/pic.jpg")}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        bad_request_text(&body).contains("ZAPIN_ALLOW_PRIVATE_URLS"),
        "{body}"
    );
    assert!(sim_messages(&sim, &friend).await.is_empty());

    gw.stop().await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn send_media_from_every_source_reaches_the_phone_byte_for_byte() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(42),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        &sim,
        dir.path(),
        &[
            ("ZAPIN_ALLOW_PRIVATE_URLS", "true"),
            ("ZAPIN_MEDIA_MAX_BYTES", "2097152"),
        ],
    )
    .await;
    let owner = linked(&gw, &sim, &receiver, "media").await;
    let friend = account(&sim, "Friend").await;
    let files = file_server().await;
    let mut sent = Vec::new();

    // Image as raw base64, with caption, quote and typing delay.
    let picture = png(64, 48);
    let (status, record) = gw
        .post(
            "/message/sendMedia/media",
            json!({
                "number": friend, "mediatype": "image", "media": B64.encode(&picture),
                "caption": "a picture", "delay": 300,
                "quoted": {"key": {"id": "3EB0QUOTED0000000001", "remoteJid": format!("{friend}@s.whatsapp.net"), "fromMe": false},
                           "message": {"conversation": "the original"}}
            }),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["status"], "PENDING");
    assert_eq!(record["messageType"], "imageMessage");
    assert_eq!(record["message"]["imageMessage"]["caption"], "a picture");
    assert_eq!(record["message"]["imageMessage"]["mimetype"], "image/png");
    assert_eq!(record["contextInfo"]["stanzaId"], "3EB0QUOTED0000000001");
    let id = record["key"]["id"].as_str().unwrap().to_owned();
    let got = received(&sim, &friend, &id).await;
    assert_eq!(got["type"], "image", "{got}");
    assert_eq!(got["caption"], "a picture");
    assert_eq!(got["mimetype"], "image/png");
    assert_eq!(got["sha256"], sha(&picture), "{got}");
    assert_eq!(got["size"], picture.len());
    assert_eq!(
        (got["width"].clone(), got["height"].clone()),
        (json!(64), json!(48))
    );
    assert_eq!(got["thumbnail"], true);
    assert_eq!(got["context"]["stanza_id"], "3EB0QUOTED0000000001");
    assert_eq!(got["context"]["quoted_text"], "the original");
    sent.push(id);

    // Image by URL (followed through a redirect), mimetype from the file name.
    let pic = jpeg(40, 30);
    let (status, record) = gw
        .post(
            "/message/sendMedia/media",
            json!({"number": friend, "mediatype": "image", "media": format!("{files}/files/moved.jpg")}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    let id = record["key"]["id"].as_str().unwrap().to_owned();
    let got = received(&sim, &friend, &id).await;
    assert_eq!(got["type"], "image");
    assert_eq!(got["mimetype"], "image/jpeg");
    assert_eq!(got["sha256"], sha(&pic), "{got}");
    assert_eq!(
        (got["width"].clone(), got["height"].clone()),
        (json!(40), json!(30))
    );
    sent.push(id);

    // Document as a multipart file, fields as strings.
    let doc = pdf();
    let (status, record) = gw
        .post_multipart(
            "/message/sendMedia/media",
            &[
                ("number", &friend),
                ("mediatype", "document"),
                ("caption", "the report"),
                ("fileName", "report.pdf"),
                ("delay", "100"),
            ],
            ("upload.bin", "application/octet-stream", &doc),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["messageType"], "documentMessage");
    let id = record["key"]["id"].as_str().unwrap().to_owned();
    let got = received(&sim, &friend, &id).await;
    assert_eq!(got["type"], "document", "{got}");
    assert_eq!(got["fileName"], "report.pdf");
    assert_eq!(got["caption"], "the report");
    assert_eq!(got["mimetype"], "application/pdf");
    assert_eq!(got["sha256"], sha(&doc));
    assert_eq!(got["size"], doc.len());
    sent.push(id);

    // Video as a data URI; audio as base64 with the type sniffed from its bytes.
    let video = mp4();
    let (status, record) = gw
        .post(
            "/message/sendMedia/media",
            json!({"number": friend, "mediatype": "video", "caption": "clip",
                   "media": format!("data:video/mp4;base64,{}", B64.encode(&video))}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    let id = record["key"]["id"].as_str().unwrap().to_owned();
    let got = received(&sim, &friend, &id).await;
    assert_eq!(got["type"], "video", "{got}");
    assert_eq!(got["caption"], "clip");
    assert_eq!(got["mimetype"], "video/mp4");
    assert_eq!(got["sha256"], sha(&video));
    sent.push(id);
    let audio = mp3();
    let (status, record) = gw
        .post(
            "/message/sendMedia/media",
            json!({"number": friend, "mediatype": "audio", "media": B64.encode(&audio)}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    let id = record["key"]["id"].as_str().unwrap().to_owned();
    let got = received(&sim, &friend, &id).await;
    assert_eq!(got["type"], "audio", "{got}");
    assert_eq!(got["mimetype"], "audio/mpeg");
    assert_eq!(got["sha256"], sha(&audio));
    assert_eq!(got["ptt"], false);
    sent.push(id);

    // Every send is announced and acknowledged.
    for id in &sent {
        let at = webhook_from(&receiver, 0, |b| {
            b["event"] == "send.message" && b["data"]["key"]["id"] == id.as_str()
        })
        .await;
        let announced = receiver.seen()[at].json();
        assert_eq!(announced["data"]["status"], "PENDING");
        webhook_from(&receiver, 0, |b| {
            b["event"] == "messages.update" && b["data"]["keyId"] == id.as_str()
        })
        .await;
        let (status, found) = gw
            .post(
                "/chat/findMessages/media",
                json!({"where": {"key": {"id": id}}}),
            )
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["messages"]["total"], 1, "{found}");
    }

    // Bad input: a 4xx in Evolution's envelope, and nothing reaches the phone.
    let before = sim_messages(&sim, &friend).await.len();
    let cases = [
        (
            json!({"number": friend, "mediatype": "image", "media": "%%% not base64"}),
            "Owned media must be a url or base64",
        ),
        (
            json!({"number": friend, "mediatype": "image", "media": B64.encode(pdf())}),
            "does not match mediatype",
        ),
        (
            json!({"number": friend, "mediatype": "video", "mimetype": "image/png", "media": B64.encode(mp4())}),
            "does not match mediatype",
        ),
        (
            json!({"number": friend, "mediatype": "image", "media": B64.encode(b"\x89PNG\r\n\x1a\nbroken")}),
            "cannot be decoded",
        ),
        (
            json!({"number": friend, "mediatype": "document", "media": B64.encode(pdf())}),
            "For base64 the file name must be informed.",
        ),
        (
            json!({"number": friend, "mediatype": "image", "media": format!("{files}/files/missing.jpg")}),
            "HTTP 404",
        ),
        (
            json!({"number": friend, "mediatype": "document", "fileName": "big.bin", "media": format!("{files}/files/big.bin")}),
            "larger than the 2097152-byte limit",
        ),
        (
            json!({"number": friend, "mediatype": "image", "media": "http://127.0.0.1:1/nothing.jpg"}),
            "could not be fetched",
        ),
        (
            json!({"number": friend, "mediatype": "sticker", "media": B64.encode(png(4, 4))}),
            "mediatype",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = gw.post("/message/sendMedia/media", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let text = bad_request_text(&answer);
        assert!(text.contains(expected), "{body}: {answer}");
    }
    let (status, answer) = gw
        .post_multipart(
            "/message/sendMedia/media",
            &[
                ("number", &friend),
                ("mediatype", "document"),
                ("fileName", "e.txt"),
            ],
            ("e.txt", "text/plain", b""),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(bad_request_text(&answer).contains("empty"), "{answer}");
    assert_eq!(sim_messages(&sim, &friend).await.len(), before);
    assert_eq!(gw.engine.sends_in_flight(), 0);
    let _ = owner;

    gw.stop().await;
    sim.shutdown().await.unwrap();
}

/// An Ogg/Opus file of `seconds` (container only: the phone checks bytes, not sound).
fn ogg_opus(seconds: u64) -> Vec<u8> {
    fn page(granule: u64, payload: &[u8]) -> Vec<u8> {
        let mut p = b"OggS\0\0".to_vec();
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&[0u8; 12]);
        p.push(1);
        p.push(u8::try_from(payload.len()).unwrap());
        p.extend_from_slice(payload);
        p
    }
    let mut head = b"OpusHead\x01\x01".to_vec();
    head.extend_from_slice(&312u16.to_le_bytes());
    head.extend_from_slice(&[0x80, 0xBB, 0, 0, 0, 0, 0]);
    let mut v = page(0, &head);
    v.extend(page(0, b"OpusTags\0\0\0\0\0\0\0\0"));
    v.extend(page(48_000 * seconds + 312, &[0xFC; 200]));
    v
}

fn webp(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8, y as u8, 1, 255]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut out, image::ImageFormat::WebP)
        .unwrap();
    out.into_inner()
}

#[tokio::test]
async fn voice_notes_stickers_locations_contacts_polls_and_reactions_reach_the_phone() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(43),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), &[]).await;
    let owner = linked(&gw, &sim, &receiver, "rich").await;
    let friend = account(&sim, "Friend").await;
    let friend_jid = format!("{friend}@s.whatsapp.net");
    let id_of = |record: &Value| record["key"]["id"].as_str().unwrap().to_owned();

    // Voice note: Ogg/Opus as it is, ptt, with its length.
    let voice = ogg_opus(3);
    let (status, record) = gw
        .post(
            "/message/sendWhatsAppAudio/rich",
            json!({"number": friend, "audio": B64.encode(&voice), "delay": 200}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["messageType"], "audioMessage");
    let got = received(&sim, &friend, &id_of(&record)).await;
    assert_eq!(got["type"], "audio", "{got}");
    assert_eq!(got["ptt"], true);
    assert_eq!(got["seconds"], 3);
    assert_eq!(got["mimetype"], "audio/ogg; codecs=opus");
    assert_eq!(got["sha256"], sha(&voice));
    // Another format cannot be converted here: a 400 that says so.
    let (status, body) = gw
        .post(
            "/message/sendWhatsAppAudio/rich",
            json!({"number": friend, "audio": B64.encode(mp3())}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        bad_request_text(&body).contains("no audio converter"),
        "{body}"
    );

    // Sticker: WebP as it is; PNG converted to a 512×512 WebP.
    let sticker = webp(96, 96);
    let (status, record) = gw
        .post(
            "/message/sendSticker/rich",
            json!({"number": friend, "sticker": B64.encode(&sticker)}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["messageType"], "stickerMessage");
    let got = received(&sim, &friend, &id_of(&record)).await;
    assert_eq!(got["type"], "sticker", "{got}");
    assert_eq!(got["mimetype"], "image/webp");
    assert_eq!(got["sha256"], sha(&sticker));
    assert_eq!(
        (got["width"].clone(), got["height"].clone()),
        (json!(96), json!(96))
    );
    let (status, record) = gw
        .post_multipart(
            "/message/sendSticker/rich",
            &[("number", &friend)],
            ("s.png", "image/png", &png(100, 50)),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    let got = received(&sim, &friend, &id_of(&record)).await;
    assert_eq!(got["type"], "sticker", "{got}");
    assert_eq!(got["mimetype"], "image/webp");
    assert_eq!(
        (got["width"].clone(), got["height"].clone()),
        (json!(512), json!(512))
    );
    assert!(got["sha256"].is_string(), "{got}");
    let (status, body) = gw
        .post(
            "/message/sendSticker/rich",
            json!({"number": friend, "sticker": B64.encode(png(4, 4)), "notConvertSticker": true}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Location.
    let (status, record) = gw
        .post(
            "/message/sendLocation/rich",
            json!({"number": friend, "latitude": -23.5505, "longitude": -46.6333,
                   "name": "Praça da Sé", "address": "São Paulo"}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["messageType"], "locationMessage");
    let got = received(&sim, &friend, &id_of(&record)).await;
    assert_eq!(got["type"], "location", "{got}");
    assert_eq!(got["latitude"], -23.5505);
    assert_eq!(got["longitude"], -46.6333);
    assert_eq!(got["name"], "Praça da Sé");
    assert_eq!(got["address"], "São Paulo");

    // Contacts: one card, then two in one message.
    let (status, record) = gw
        .post(
            "/message/sendContact/rich",
            json!({"number": friend, "contact": [
                {"fullName": "Maria Silva", "phoneNumber": "+55 11 98765-4321", "organization": "ACME", "email": "m@acme.test"}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["messageType"], "contactMessage");
    let got = received(&sim, &friend, &id_of(&record)).await;
    assert_eq!(got["type"], "contact", "{got}");
    assert_eq!(got["name"], "Maria Silva");
    assert_eq!(
        got["vcard"],
        "BEGIN:VCARD\nVERSION:3.0\nN:Maria Silva\nFN:Maria Silva\nORG:ACME;\nEMAIL:m@acme.test\nitem1.TEL;waid=5511987654321:+55 11 98765-4321\nitem1.X-ABLabel:Celular\nEND:VCARD"
    );
    let (status, record) = gw
        .post(
            "/message/sendContact/rich",
            json!({"number": friend, "contact": [
                {"fullName": "A", "phoneNumber": "111"}, {"fullName": "B", "phoneNumber": "222", "wuid": "5522"}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["messageType"], "contactsArrayMessage");
    let got = received(&sim, &friend, &id_of(&record)).await;
    assert_eq!(got["type"], "contact", "{got}");
    let cards = got["vcards"].as_array().unwrap();
    assert_eq!(cards.len(), 2);
    assert!(
        cards[1]
            .as_str()
            .unwrap()
            .contains("item1.TEL;waid=5522:222")
    );

    // Poll.
    let (status, record) = gw
        .post(
            "/message/sendPoll/rich",
            json!({"number": friend, "name": "Lunch?", "selectableCount": 1, "values": ["Pizza", "Sushi", "Salad"]}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["messageType"], "pollCreationMessageV3");
    assert_eq!(
        record["message"]["pollCreationMessageV3"]["options"][1]["optionName"],
        "Sushi"
    );
    let got = received(&sim, &friend, &id_of(&record)).await;
    assert_eq!(got["type"], "poll", "{got}");
    assert_eq!(got["name"], "Lunch?");
    assert_eq!(got["options"], json!(["Pizza", "Sushi", "Salad"]));
    assert_eq!(got["selectable_count"], 1);

    // Reaction to a message the friend sent us.
    let (status, body) = sim_post(
        &sim,
        &format!("/sim/accounts/{friend}/messages"),
        json!({"to": format!("{owner}@s.whatsapp.net"), "text": "react to me", "id": "3EB0FRIEND00000000001"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, record) = gw
        .post(
            "/message/sendReaction/rich",
            json!({"key": {"id": "3EB0FRIEND00000000001", "remoteJid": friend_jid, "fromMe": false}, "reaction": "👍"}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["messageType"], "reactionMessage");
    let got = received(&sim, &friend, &id_of(&record)).await;
    assert_eq!(got["type"], "reaction", "{got}");
    assert_eq!(got["text"], "👍");
    assert_eq!(got["target_id"], "3EB0FRIEND00000000001");

    // Bad input: 400, nothing sent.
    let before = sim_messages(&sim, &friend).await.len();
    let key = json!({"id": "3EB0FRIEND00000000001", "remoteJid": friend_jid, "fromMe": false});
    let eleven: Vec<String> = (0..11).map(|i| format!("option {i}")).collect();
    for (path, body) in [
        (
            "/message/sendReaction/rich",
            json!({"key": key, "reaction": "👍👍"}),
        ),
        (
            "/message/sendReaction/rich",
            json!({"key": key, "reaction": "ok"}),
        ),
        (
            "/message/sendLocation/rich",
            json!({"number": friend, "latitude": 91, "longitude": 0, "name": "n", "address": "a"}),
        ),
        (
            "/message/sendLocation/rich",
            json!({"number": friend, "latitude": 0, "longitude": 0}),
        ),
        (
            "/message/sendPoll/rich",
            json!({"number": friend, "name": "q", "selectableCount": 1, "values": eleven}),
        ),
        (
            "/message/sendPoll/rich",
            json!({"number": friend, "name": "q", "selectableCount": 1, "values": ["a", "a"]}),
        ),
        (
            "/message/sendContact/rich",
            json!({"number": friend, "contact": []}),
        ),
        ("/message/sendWhatsAppAudio/rich", json!({"number": friend})),
        (
            "/message/sendSticker/rich",
            json!({"number": friend, "sticker": "%%%"}),
        ),
    ] {
        let (status, answer) = gw.post(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["error"], "Bad Request", "{answer}");
    }
    // Not on WhatsApp: Evolution's lookup 400 on these routes too.
    for (path, body) in [
        (
            "/message/sendLocation/rich",
            json!({"number": "15559999999", "latitude": 1, "longitude": 1, "name": "n", "address": "a"}),
        ),
        (
            "/message/sendContact/rich",
            json!({"number": "15559999999", "contact": [{"fullName": "A", "phoneNumber": "1"}]}),
        ),
        (
            "/message/sendPoll/rich",
            json!({"number": "15559999999", "name": "q", "selectableCount": 1, "values": ["a", "b"]}),
        ),
        (
            "/message/sendWhatsAppAudio/rich",
            json!({"number": "15559999999", "audio": B64.encode(ogg_opus(1))}),
        ),
        (
            "/message/sendSticker/rich",
            json!({"number": "abc", "sticker": B64.encode(webp(8, 8))}),
        ),
    ] {
        let (status, answer) = gw.post(path, body.clone()).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(
            answer["response"]["message"][0]["exists"], false,
            "{path}: {answer}"
        );
    }
    assert_eq!(sim_messages(&sim, &friend).await.len(), before);
    assert_eq!(gw.engine.sends_in_flight(), 0);

    gw.stop().await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn edits_revokes_and_media_downloads_of_stored_messages() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(44),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), &[]).await;
    linked(&gw, &sim, &receiver, "ops").await;
    let friend = account(&sim, "Friend").await;
    let friend_jid = format!("{friend}@s.whatsapp.net");
    let id_of = |record: &Value| record["key"]["id"].as_str().unwrap().to_owned();

    let (status, text) = gw
        .post(
            "/message/sendText/ops",
            json!({"number": friend, "text": "frist draft"}),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let text_id = id_of(&text);
    received(&sim, &friend, &text_id).await;

    // Edit: the phone gets the new text for that message.
    let (status, edit) = gw
        .post(
            "/chat/updateMessage/ops",
            json!({"number": friend, "text": "first draft",
                   "key": {"id": text_id, "remoteJid": friend_jid, "fromMe": true}}),
        )
        .await;
    assert_eq!(status, 200, "{edit}");
    assert_eq!(edit["messageType"], "protocolMessage");
    let got = received(&sim, &friend, &id_of(&edit)).await;
    assert_eq!(got["type"], "edit", "{got}");
    assert_eq!(got["text"], "first draft");
    assert_eq!(got["target_id"], text_id.as_str());

    // Revoke.
    let (status, revoke) = gw
        .call(
            Method::DELETE,
            "/chat/deleteMessageForEveryone/ops",
            Some(json!({"id": text_id, "remoteJid": friend_jid, "fromMe": true})),
        )
        .await;
    assert_eq!(status, 201, "{revoke}");
    let got = received(&sim, &friend, &id_of(&revoke)).await;
    assert_eq!(got["type"], "revoke", "{got}");
    assert_eq!(got["target_id"], text_id.as_str());

    // The media of a sent message, downloaded back by key id and by the record itself.
    let picture = png(20, 10);
    let (status, image) = gw
        .post(
            "/message/sendMedia/ops",
            json!({"number": friend, "mediatype": "image", "media": B64.encode(&picture), "caption": "back"}),
        )
        .await;
    assert_eq!(status, 201, "{image}");
    let (status, got) = gw
        .post(
            "/chat/getBase64FromMediaMessage/ops",
            json!({"message": {"key": {"id": id_of(&image)}}}),
        )
        .await;
    assert_eq!(status, 201, "{got}");
    assert_eq!(got["mediaType"], "imageMessage");
    assert_eq!(got["mimetype"], "image/png");
    assert_eq!(got["caption"], "back");
    assert_eq!(got["size"]["width"], 20);
    assert_eq!(got["buffer"], Value::Null);
    assert_eq!(
        B64.decode(got["base64"].as_str().unwrap()).unwrap(),
        picture
    );
    let (status, got) = gw
        .post(
            "/chat/getBase64FromMediaMessage/ops",
            json!({"message": {"key": {"id": "UNSTORED"}, "message": image["message"]}}),
        )
        .await;
    assert_eq!(status, 201, "{got}");
    assert_eq!(
        B64.decode(got["base64"].as_str().unwrap()).unwrap(),
        picture
    );

    // Unknown ids, others' messages, messages without media: 400, nothing sent.
    let before = sim_messages(&sim, &friend).await.len();
    let unknown = json!({"id": "3EB0000000000000000000", "remoteJid": friend_jid, "fromMe": true});
    let (status, body) = gw
        .post(
            "/chat/updateMessage/ops",
            json!({"number": friend, "text": "x", "key": unknown}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["response"]["message"], json!(["Message not found"]));
    let (status, body) = gw
        .call(
            Method::DELETE,
            "/chat/deleteMessageForEveryone/ops",
            Some(unknown.clone()),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = gw
        .post(
            "/chat/getBase64FromMediaMessage/ops",
            json!({"message": {"key": {"id": "3EB0000000000000000000"}}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = gw
        .post(
            "/chat/getBase64FromMediaMessage/ops",
            json!({"message": {"key": {"id": text_id}}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["response"]["message"],
        json!(["The message has no media"])
    );
    assert_eq!(sim_messages(&sim, &friend).await.len(), before);

    gw.stop().await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn incoming_reactions_edits_and_revokes_reach_the_webhook_as_evolution_reports_them() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(45),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), &[]).await;
    let owner = linked(&gw, &sim, &receiver, "inbound").await;
    let owner_jid = format!("{owner}@s.whatsapp.net");
    let friend = account(&sim, "Friend").await;
    let friend_jid = format!("{friend}@s.whatsapp.net");
    let phone_sends = |body: Value| {
        let sim = &sim;
        let friend = friend.clone();
        async move {
            let (status, answer) =
                sim_post(sim, &format!("/sim/accounts/{friend}/messages"), body).await;
            assert_eq!(status, 200, "{answer}");
        }
    };

    phone_sends(json!({"to": owner_jid, "text": "typo here", "id": "3EB0IN0000000000000001"}))
        .await;
    let mut at = webhook_from(&receiver, 0, |b| {
        b["event"] == "messages.upsert" && b["data"]["key"]["id"] == "3EB0IN0000000000000001"
    })
    .await;

    // A reaction is a message of its own: messages.upsert with a reactionMessage.
    phone_sends(json!({"to": owner_jid, "text": "❤️", "react": "3EB0IN0000000000000001", "react_from_me": true})).await;
    at = webhook_from(&receiver, at, |b| {
        b["event"] == "messages.upsert" && b["data"]["messageType"] == "reactionMessage"
    })
    .await;
    let reaction = receiver.seen()[at].json();
    assert_eq!(
        reaction["data"]["message"]["reactionMessage"]["text"], "❤️",
        "{reaction}"
    );
    assert_eq!(
        reaction["data"]["message"]["reactionMessage"]["key"]["id"],
        "3EB0IN0000000000000001"
    );

    // An edit: messages.edited with the protocolMessage, no new message.
    phone_sends(json!({"to": owner_jid, "text": "no typo", "edit": "3EB0IN0000000000000001", "id": "3EB0IN0000000000000002"})).await;
    at = webhook_from(&receiver, at, |b| b["event"] == "messages.edited").await;
    let edited = receiver.seen()[at].json();
    assert_eq!(
        edited["data"]["key"]["id"], "3EB0IN0000000000000001",
        "{edited}"
    );
    assert_eq!(edited["data"]["type"], 14);
    assert_eq!(edited["data"]["editedMessage"]["conversation"], "no typo");

    // A revoke: messages.delete with the deleted message's key.
    phone_sends(json!({"to": owner_jid, "revoke": "3EB0IN0000000000000001", "id": "3EB0IN0000000000000003"})).await;
    at = webhook_from(&receiver, at, |b| b["event"] == "messages.delete").await;
    let deleted = receiver.seen()[at].json();
    assert_eq!(
        deleted["data"],
        json!({"remoteJid": friend_jid, "fromMe": false, "id": "3EB0IN0000000000000001"})
    );
    // Neither the edit nor the revoke was stored as a message of its own.
    for id in ["3EB0IN0000000000000002", "3EB0IN0000000000000003"] {
        let (_, found) = gw
            .post(
                "/chat/findMessages/inbound",
                json!({"where": {"key": {"id": id}}}),
            )
            .await;
        assert_eq!(found["messages"]["total"], 0, "{id}: {found}");
    }
    assert!(
        receiver.seen()[..at]
            .iter()
            .all(|s| s.json()["data"]["key"]["id"] != "3EB0IN0000000000000002"),
        "the edit was not reported as a message"
    );

    gw.stop().await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn round_videos_templates_and_call_offers() {
    let sim = zapin_sim::run(SimConfig {
        seed: Some(46),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sim, dir.path(), &[]).await;
    linked(&gw, &sim, &receiver, "misc").await;
    let friend = account(&sim, "Friend").await;

    let video = mp4();
    let (status, record) = gw
        .post_multipart(
            "/message/sendPtv/misc",
            &[("number", &friend)],
            ("note.mp4", "video/mp4", &video),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["messageType"], "ptvMessage");
    let got = received(&sim, &friend, record["key"]["id"].as_str().unwrap()).await;
    assert_eq!(got["type"], "ptv", "{got}");
    assert_eq!(got["mimetype"], "video/mp4");
    assert_eq!(got["sha256"], sha(&video));
    let (status, body) = gw
        .post(
            "/message/sendPtv/misc",
            json!({"number": friend, "video": B64.encode(mp3())}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Templates need Meta's Cloud API: Evolution's 500 for a WhatsApp Web instance.
    let (status, body) = gw
        .post(
            "/message/sendTemplate/misc",
            json!({"number": friend, "name": "hello", "language": "en_US"}),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["response"]["message"],
        "Method not available in the Baileys service"
    );

    // call/offer is Evolution's stub.
    let (status, body) = gw
        .post(
            "/call/offer/misc",
            json!({"number": friend, "isVideo": true, "callDuration": 5}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({"id": "123", "jid": format!("{friend}@s.whatsapp.net"), "isVideo": true, "callDuration": 5})
    );
    let (status, _) = gw
        .post(
            "/call/offer/misc",
            json!({"number": friend, "callDuration": 30}),
        )
        .await;
    assert_eq!(status, 400);

    gw.stop().await;
    sim.shutdown().await.unwrap();
}
