//! Scan, link code and unlink, through the `ConnectionHandler` seam. A test handler plays the
//! protocol layer: it registers the companion, hands out refs, and answers `Pair` commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use zapin_protocol::crypto::PublicKey;
use zapin_sim::SimConfig;
use zapin_sim::conn::handler::{
    CloseReason, ConnContext, ConnectionHandler, HandlerFactory, Outbox,
};
use zapin_sim::conn::{ConnCommand, PairAccepted, PairFailure};
use zapin_sim::intro::Intro;
use zapin_sim::qr::format_qr;
use zapin_sim::state::{PairSecret, Registration, SignedPreKeyPublic};

const NOISE: PublicKey = PublicKey([1; 32]);
const IDENTITY: PublicKey = PublicKey([2; 32]);
const ADV: [u8; 32] = [3; 32];

/// What the fake companion answers to `pair-success`.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Accept,
    Reject,
}

#[derive(Debug)]
struct FakeProtocol(Answer);

struct FakeConn {
    ctx: ConnContext,
    answer: Answer,
}

impl HandlerFactory for FakeProtocol {
    fn new_handler(&self, ctx: ConnContext) -> Box<dyn ConnectionHandler> {
        Box::new(FakeConn {
            ctx,
            answer: self.0,
        })
    }
}

impl ConnectionHandler for FakeConn {
    fn on_intro(&mut self, _: &Intro, out: &mut Outbox) {
        // As after a registration handshake: record the payload, send pair-device (here: the
        // refs, newline-separated, as the test's "wire format").
        let state = self.ctx.sim.state();
        state.registration_started(
            self.ctx.id,
            Registration {
                noise_static: NOISE,
                identity: IDENTITY,
                registration_id: 42,
                signed_prekey: SignedPreKeyPublic {
                    id: 1,
                    public: PublicKey([4; 32]),
                    signature: [5; 64],
                },
            },
        );
        let refs = state.issue_refs(self.ctx.id).unwrap();
        out.write(refs.join("\n").into_bytes());
    }

    fn on_bytes(&mut self, bytes: &[u8], out: &mut Outbox) {
        // "L<phone>": the companion asks for phone-number pairing.
        if let Some(phone) = bytes.strip_prefix(b"L") {
            let phone = String::from_utf8(phone.to_vec()).unwrap();
            self.ctx
                .sim
                .state()
                .link_code_requested(self.ctx.id, &phone, "Chrome (Linux)".into());
            out.write(b"link-code-requested".to_vec());
        }
        // "D<phone>:<device>": the companion logs in (after `<success>`).
        if let Some(who) = bytes.strip_prefix(b"D") {
            let who = String::from_utf8(who.to_vec()).unwrap();
            let (phone, device) = who.split_once(':').unwrap();
            self.ctx
                .sim
                .device_logged_in(self.ctx.id, phone, device.parse().unwrap());
            out.write(b"logged-in".to_vec());
        }
    }

    fn on_command(&mut self, cmd: ConnCommand, out: &mut Outbox) {
        match cmd {
            ConnCommand::Pair { ticket, reply } => match self.answer {
                Answer::Accept => {
                    let secret = match &ticket.secret {
                        PairSecret::Qr { adv_secret } => hex::encode(adv_secret),
                        PairSecret::LinkCode { code } => code.clone(),
                    };
                    out.write(format!("paired {} {secret}", ticket.device_jid).into_bytes());
                    // As the protocol layer does: commit the device before answering.
                    self.ctx
                        .sim
                        .state()
                        .finish_pairing(&ticket, vec![9, 9, 9])
                        .unwrap();
                    let _ = reply.send(Ok(PairAccepted {
                        adv_signed_identity: vec![9, 9, 9],
                    }));
                }
                Answer::Reject => {
                    let _ = reply.send(Err(PairFailure::Rejected("hmac-mismatch".into())));
                }
            },
            ConnCommand::Replaced => out.close(CloseReason::EndOfStream("replaced".into())),
            ConnCommand::Unlinked => out.close(CloseReason::EndOfStream("device_removed".into())),
            _ => {}
        }
    }
}

fn config(answer: Answer) -> SimConfig {
    SimConfig {
        seed: Some(5),
        handlers: Arc::new(FakeProtocol(answer)),
        ..SimConfig::default()
    }
}

async fn registration(sim: &zapin_sim::RunningSim) -> (Ws, Vec<String>) {
    let mut ws = connect(sim).await;
    send(&mut ws, &WA_HEADER).await;
    let refs = String::from_utf8(next_binary(&mut ws).await).unwrap();
    (ws, refs.lines().map(str::to_string).collect())
}

#[tokio::test]
async fn scan_pairs_through_the_connection_seam() {
    let sim = start(config(Answer::Accept)).await;
    let api = Api::new(&sim);
    api.post("/sim/accounts", json!({})).await;
    let scan = |qr: String| {
        let api = &api;
        async move {
            api.post("/sim/accounts/15550000001/scan", json!({"qr": qr}))
                .await
        }
    };

    let (mut ws, refs) = registration(&sim).await;
    assert_eq!(refs.len(), 6);

    assert_error(&scan("garbage".into()).await, 400);
    assert_error(
        &api.post("/sim/accounts/15550000001/scan", json!({})).await,
        400,
    );
    assert_error(
        &scan(format_qr("2@unknown", &NOISE, &IDENTITY, &ADV, None)).await,
        404,
    );
    // Keys that differ from the registration's are refused.
    assert_error(
        &scan(format_qr(
            &refs[0],
            &PublicKey([7; 32]),
            &IDENTITY,
            &ADV,
            None,
        ))
        .await,
        400,
    );
    assert_error(
        &api.post(
            "/sim/accounts/19999999999/scan",
            json!({"qr": format_qr(&refs[0], &NOISE, &IDENTITY, &ADV, None)}),
        )
        .await,
        404,
    );

    let (s, v) = scan(format_qr(&refs[0], &NOISE, &IDENTITY, &ADV, Some('1'))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["device_jid"], "15550000001:1@s.whatsapp.net");
    let lid = v["lid"].as_str().unwrap();
    assert!(lid.ends_with(":1@lid"), "{lid}");
    // The seam carried the ticket to the registration connection.
    let said = String::from_utf8(next_binary(&mut ws).await).unwrap();
    assert_eq!(
        said,
        format!("paired 15550000001:1@s.whatsapp.net {}", hex::encode(ADV))
    );

    // Every ref of a paired companion is spent.
    assert_error(
        &scan(format_qr(&refs[0], &NOISE, &IDENTITY, &ADV, None)).await,
        409,
    );
    assert_error(
        &scan(format_qr(&refs[3], &NOISE, &IDENTITY, &ADV, None)).await,
        409,
    );

    let (_, acct) = api.get("/sim/accounts/15550000001").await;
    assert_eq!(
        acct["devices"],
        json!([{"id": 0}, {"id": 1, "key_index": 1, "online": false, "platform": "Chrome"}])
    );
    assert_eq!(api.stats().await["pairings"], 1);
    let stored = sim.sim().state().read(|s| {
        let d = &s.accounts["15550000001"].companions[&1];
        (
            d.identity,
            d.noise_static,
            d.registration_id,
            d.adv_signed_identity.clone(),
        )
    });
    assert_eq!(stored, (IDENTITY, NOISE, 42, vec![9, 9, 9]));

    // Refs die with their connection.
    drop(ws);
    wait_for("connection to close", || async {
        (api.stats().await["connections"] == 0).then_some(())
    })
    .await;
    assert_error(
        &scan(format_qr(&refs[5], &NOISE, &IDENTITY, &ADV, None)).await,
        404,
    );

    // Unlink.
    let unlink = |body| {
        let api = &api;
        async move { api.post("/sim/accounts/15550000001/unlink", body).await }
    };
    assert_error(&unlink(json!({"device": 0})).await, 400);
    assert_error(&unlink(json!({"device": "1"})).await, 400);
    assert_error(&unlink(json!({"device": 7})).await, 404);
    let (s, v) = unlink(json!({"device": 1})).await;
    assert_eq!((s, v), (200, json!({})));
    assert_error(&unlink(json!({"device": 1})).await, 404);
    let (_, acct) = api.get("/sim/accounts/15550000001").await;
    assert_eq!(acct["devices"], json!([{"id": 0}]));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn refs_expire() {
    let sim = start(SimConfig {
        qr_first_ttl: Duration::from_millis(200),
        qr_ttl: Duration::from_millis(100),
        refs_per_pair_device: 2,
        ..config(Answer::Accept)
    })
    .await;
    let api = Api::new(&sim);
    api.post("/sim/accounts", json!({})).await;
    let (_ws, refs) = registration(&sim).await;
    assert_eq!(refs.len(), 2);
    let qr = format_qr(&refs[1], &NOISE, &IDENTITY, &ADV, None);
    wait_for("the last ref to expire", || async {
        let got = api
            .post("/sim/accounts/15550000001/scan", json!({"qr": qr}))
            .await;
        (got.0 == 404).then_some(())
    })
    .await;
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn rejected_pairing_releases_the_ref() {
    let sim = start(config(Answer::Reject)).await;
    let api = Api::new(&sim);
    api.post("/sim/accounts", json!({})).await;
    let (_ws, refs) = registration(&sim).await;
    let qr = format_qr(&refs[0], &NOISE, &IDENTITY, &ADV, None);
    for _ in 0..2 {
        let msg = assert_error(
            &api.post("/sim/accounts/15550000001/scan", json!({"qr": qr}))
                .await,
            400,
        );
        assert!(msg.contains("hmac-mismatch"), "{msg}");
    }
    assert_eq!(api.stats().await["pairings"], 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn unwired_build_says_so() {
    // The unwired handlers: the connection is registered but there is no protocol layer.
    let sim = start(SimConfig {
        handlers: Arc::new(zapin_sim::conn::handler::UnwiredHandlers),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    api.post("/sim/accounts", json!({})).await;
    let _ws = connect(&sim).await;
    let conn = wait_for("the connection", || async {
        sim.sim().connections().all().first().copied()
    })
    .await;
    let state = sim.sim().state();
    state.registration_started(
        conn,
        Registration {
            noise_static: NOISE,
            identity: IDENTITY,
            registration_id: 1,
            signed_prekey: SignedPreKeyPublic {
                id: 1,
                public: PublicKey([4; 32]),
                signature: [5; 64],
            },
        },
    );
    let refs = state.issue_refs(conn).unwrap();
    let qr = format_qr(&refs[0], &NOISE, &IDENTITY, &ADV, None);
    for _ in 0..2 {
        let msg = assert_error(
            &api.post("/sim/accounts/15550000001/scan", json!({"qr": qr}))
                .await,
            501,
        );
        assert!(msg.contains("not wired"), "{msg}");
    }
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn link_code_pairs_through_the_connection_seam() {
    let sim = start(config(Answer::Accept)).await;
    let api = Api::new(&sim);
    api.post("/sim/accounts", json!({})).await;
    let link = |code: &'static str| {
        let api = &api;
        async move {
            api.post("/sim/accounts/15550000001/link-code", json!({"code": code}))
                .await
        }
    };
    assert_error(&link("ABCD1234").await, 404);
    assert_error(&link("ABC").await, 400);
    assert_error(&link("ABCD12O4").await, 400);
    assert_error(
        &api.post(
            "/sim/accounts/15550000001/link-code",
            json!({"code": 12345678}),
        )
        .await,
        400,
    );

    let (mut ws, _refs) = registration(&sim).await;
    send(&mut ws, b"L15550000001").await;
    assert_eq!(next_binary(&mut ws).await, b"link-code-requested");

    let (s, v) = link("abcd-1234").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["device_jid"], "15550000001:1@s.whatsapp.net");
    let said = String::from_utf8(next_binary(&mut ws).await).unwrap();
    assert_eq!(said, "paired 15550000001:1@s.whatsapp.net ABCD1234");
    let (_, acct) = api.get("/sim/accounts/15550000001").await;
    assert_eq!(acct["devices"][1]["platform"], "Chrome (Linux)");
    // The request was consumed.
    assert_error(&link("ABCD1234").await, 404);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_second_login_replaces_the_first_connection() {
    let sim = start(config(Answer::Accept)).await;
    let api = Api::new(&sim);
    api.post("/sim/accounts", json!({})).await;
    let (_reg, refs) = registration(&sim).await;
    let qr = format_qr(&refs[0], &NOISE, &IDENTITY, &ADV, None);
    let (s, _) = api
        .post("/sim/accounts/15550000001/scan", json!({"qr": qr}))
        .await;
    assert_eq!(s, 200);

    let (mut first, _) = registration(&sim).await;
    send(&mut first, b"D15550000001:1").await;
    assert_eq!(next_binary(&mut first).await, b"logged-in");
    assert_eq!(api.stats().await["devices_online"], 1);
    let (_, acct) = api.get("/sim/accounts/15550000001").await;
    assert_eq!(acct["devices"][1]["online"], true);

    let (mut second, _) = registration(&sim).await;
    send(&mut second, b"D15550000001:1").await;
    assert_eq!(next_binary(&mut second).await, b"logged-in");
    let (_, end) = read_until_end(&mut first).await;
    assert_eq!(end, End::Closed(1000, "replaced".into()));
    // The replaced connection going away does not take the device offline.
    wait_for("the replaced connection to go", || async {
        (sim.sim().connections().len() == 2).then_some(())
    })
    .await;
    assert_eq!(api.stats().await["devices_online"], 1);

    drop(second);
    wait_for("the device to go offline", || async {
        (api.stats().await["devices_online"] == 0).then_some(())
    })
    .await;
    sim.shutdown().await.unwrap();
}
