//! A minimal WhatsApp companion for the simulator's tests, built from zapin-protocol (Noise
//! initiator, frames, binary nodes, protobufs) — a test helper, not the engine.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use prost::Message as _;
use serde_json::json;
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;
use zapin_protocol::binary::{self, Node};
use zapin_protocol::crypto::{KeyPair, PublicKey, xeddsa};
use zapin_protocol::frame::{FrameDecoder, encode_frame};
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::noise::{ClientHandshake, Transport};
use zapin_protocol::proto::wa::ClientPayload;
use zapin_protocol::proto::wa::client_payload::DevicePairingRegistrationData;
use zapin_protocol::proto::wa::{
    AdvDeviceIdentity, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
};
use zapin_sim::RunningSim;

use super::{Api, WA_HEADER, WAIT, Ws};

/// A companion's long-term keys (what Baileys' `initAuthCreds` makes), from a seed byte.
#[derive(Clone)]
pub struct Companion {
    pub noise: KeyPair,
    pub identity: KeyPair,
    pub signed_prekey: KeyPair,
    pub signed_prekey_sig: [u8; 64],
    pub registration_id: u32,
    pub adv_secret: [u8; 32],
}

impl Companion {
    pub fn new(seed: u8) -> Self {
        let identity = KeyPair::from_private([seed; 32]);
        let signed_prekey = KeyPair::from_private([seed.wrapping_add(1); 32]);
        let sig = xeddsa::sign(
            &identity,
            &signed_prekey.public().serialize_djb(),
            &[seed; 64],
        );
        Self {
            noise: KeyPair::from_private([seed.wrapping_add(2); 32]),
            identity,
            signed_prekey,
            signed_prekey_sig: sig,
            registration_id: 1000 + u32::from(seed),
            adv_secret: [seed.wrapping_add(3); 32],
        }
    }

    pub fn registration_payload(&self) -> ClientPayload {
        ClientPayload {
            passive: Some(false),
            pull: Some(false),
            device_pairing_data: Some(DevicePairingRegistrationData {
                e_regid: Some(self.registration_id.to_be_bytes().to_vec()),
                e_keytype: Some(vec![5]),
                e_ident: Some(self.identity.public().0.to_vec()),
                e_skey_id: Some(vec![0, 0, 1]),
                e_skey_val: Some(self.signed_prekey.public().0.to_vec()),
                e_skey_sig: Some(self.signed_prekey_sig.to_vec()),
                build_hash: Some(vec![0; 16]),
                device_props: Some(vec![]),
            }),
            ..Default::default()
        }
    }

    pub fn login_payload(phone: &str, device: u16) -> ClientPayload {
        ClientPayload {
            username: Some(phone.parse().unwrap()),
            device: Some(u32::from(device)),
            passive: Some(true),
            pull: Some(true),
            ..Default::default()
        }
    }

    /// The QR string for `pairing_ref` (§5.2), with the URL prefix as Baileys writes it.
    pub fn qr(&self, pairing_ref: &str) -> String {
        format!(
            "https://wa.me/settings/linked_devices#{},{},{},{},1",
            pairing_ref,
            STANDARD.encode(self.noise.public().0),
            STANDARD.encode(self.identity.public().0),
            STANDARD.encode(self.adv_secret)
        )
    }
}

/// One Noise-encrypted connection to the simulator.
pub struct Client {
    pub ws: Ws,
    transport: Transport,
    frames: FrameDecoder,
    pending: std::collections::VecDeque<Vec<u8>>,
}

/// What `recv` saw.
#[derive(Debug)]
pub enum Event {
    Node(Node),
    /// The server closed (WebSocket close or EOF).
    Closed,
}

pub async fn ws_frame(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("server silent")
        {
            Some(Ok(Message::Binary(b))) => return Some(b.to_vec()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

impl Client {
    pub async fn connect(sim: &RunningSim, noise: &KeyPair, payload: &ClientPayload) -> Client {
        let (mut ws, _) = tokio_tungstenite::connect_async(sim.ws_url())
            .await
            .unwrap();
        let ephemeral = KeyPair::from_private([0x42; 32]);
        let hs = ClientHandshake::new(noise.clone(), ephemeral, sim.root_public_key());
        let (hello, awaiting) = hs.client_hello();
        let mut out = BytesMut::from(&WA_HEADER[..]);
        encode_frame(&hello, &mut out).unwrap();
        ws.send(Message::Binary(out.to_vec().into())).await.unwrap();
        let mut frames = FrameDecoder::new();
        let server_hello = loop {
            if let Some(f) = frames.next_frame().unwrap() {
                break f;
            }
            frames.push(&ws_frame(&mut ws).await.expect("closed during handshake"));
        };
        let now = zapin_sim::state::unix_now().as_secs();
        let ready = awaiting.read_server_hello(&server_hello, now).unwrap();
        let (finish, transport) = ready.client_finish(&payload.encode_to_vec()).unwrap();
        let mut out = BytesMut::new();
        encode_frame(&finish, &mut out).unwrap();
        ws.send(Message::Binary(out.to_vec().into())).await.unwrap();
        Client {
            ws,
            transport,
            frames,
            pending: Default::default(),
        }
    }

    pub async fn send(&mut self, node: &Node) {
        let plain = binary::pack(node).unwrap();
        self.send_plain(&plain).await;
    }

    pub async fn send_plain(&mut self, plain: &[u8]) {
        let ct = self.transport.encrypt(plain).unwrap();
        let mut out = BytesMut::new();
        encode_frame(&ct, &mut out).unwrap();
        self.ws
            .send(Message::Binary(out.to_vec().into()))
            .await
            .unwrap();
    }

    /// Sends raw bytes on the socket (for garbage tests).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    pub async fn recv(&mut self) -> Event {
        loop {
            if let Some(f) = self.frames.next_frame().unwrap() {
                let plain = self.transport.decrypt(&f).unwrap();
                return Event::Node(binary::unpack(&plain).unwrap());
            }
            match ws_frame(&mut self.ws).await {
                Some(b) => self.frames.push(&b),
                None => return Event::Closed,
            }
        }
    }

    pub async fn node(&mut self) -> Node {
        match self.recv().await {
            Event::Node(n) => n,
            Event::Closed => panic!("connection closed, expected a node"),
        }
    }

    /// Skips nodes until one matches.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Node) -> bool) -> Node {
        loop {
            match self.recv().await {
                Event::Node(n) if pred(&n) => return n,
                Event::Node(_) => {}
                Event::Closed => panic!("closed while waiting for {what}"),
            }
        }
    }

    /// Reads until the server closes; returns the last node it sent.
    pub async fn until_closed(&mut self) -> Option<Node> {
        let mut last = None;
        loop {
            match self.recv().await {
                Event::Node(n) => last = Some(n),
                Event::Closed => return last,
            }
        }
    }

    /// Sends an IQ and waits for the answer with the same id.
    pub async fn iq(
        &mut self,
        id: &str,
        xmlns: &'static str,
        kind: &'static str,
        children: Vec<Node>,
    ) -> Node {
        let node = Node::new("iq")
            .attr("id", id.to_string())
            .attr("to", server())
            .attr("xmlns", xmlns)
            .attr("type", kind)
            .children(children);
        self.send(&node).await;
        let id = id.to_string();
        self.expect("iq answer", move |n| {
            n.tag == "iq" && n.attr_str("id") == Some(id.as_str())
        })
        .await
    }
}

pub fn server() -> Jid {
    Jid::server_only(Server::Pn)
}

pub fn bytes_of(n: &Node, tag: &str) -> Vec<u8> {
    n.child(tag)
        .and_then(|c| c.content_bytes())
        .unwrap_or_else(|| panic!("no <{tag}> bytes in {n:?}"))
        .to_vec()
}

pub fn pk(b: &[u8]) -> PublicKey {
    PublicKey(b.try_into().unwrap())
}

/// Registers and reads `pair-device`; returns the client and its refs (already acked).
pub async fn register(sim: &RunningSim, c: &Companion) -> (Client, Vec<String>) {
    let mut client = Client::connect(sim, &c.noise, &c.registration_payload()).await;
    let iq = client.node().await;
    assert_eq!(iq.tag, "iq");
    assert_eq!(iq.attr_str("type"), Some("set"));
    assert_eq!(iq.attr_str("xmlns"), Some("md"));
    assert_eq!(iq.attr_jid("from"), Some(server()));
    let refs: Vec<String> = iq
        .child("pair-device")
        .unwrap()
        .children_by_tag("ref")
        .map(|r| String::from_utf8(r.content_bytes().unwrap().to_vec()).unwrap())
        .collect();
    let ack = Node::new("iq")
        .attr("to", server())
        .attr("type", "result")
        .attr("id", iq.attr_str("id").unwrap().to_string());
    client.send(&ack).await;
    (client, refs)
}

/// Checks `pair-success` as a strict companion does and answers it. `tamper` breaks the device
/// signature. Returns the device JID string from `<device jid>` and the key index.
pub async fn answer_pair_success(
    client: &mut Client,
    c: &Companion,
    adv_secret: &[u8; 32],
    tamper: bool,
) -> (String, String, u32) {
    let iq = client
        .expect("pair-success", |n| n.child("pair-success").is_some())
        .await;
    let ps = iq.child("pair-success").unwrap();
    let container =
        AdvSignedDeviceIdentityHmac::decode(&bytes_of(ps, "device-identity")[..]).unwrap();
    let signed_bytes = container.details.unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(adv_secret).unwrap();
    mac.update(&signed_bytes);
    assert_eq!(
        mac.finalize().into_bytes().to_vec(),
        container.hmac.unwrap(),
        "HMAC"
    );
    let mut signed = AdvSignedDeviceIdentity::decode(&signed_bytes[..]).unwrap();
    let details = signed.details.clone().unwrap();
    let account_key = pk(&signed.account_signature_key.clone().unwrap());
    let mut msg = vec![6, 0];
    msg.extend_from_slice(&details);
    msg.extend_from_slice(c.identity.public().as_bytes());
    assert!(
        xeddsa::verify_slice(
            &account_key,
            &msg,
            signed.account_signature.as_deref().unwrap()
        ),
        "account signature"
    );
    let identity = AdvDeviceIdentity::decode(&details[..]).unwrap();
    let key_index = identity.key_index.unwrap();
    let device = ps.child("device").unwrap();
    let jid = device.attr_jid("jid").unwrap().to_string();
    let lid = device.attr_jid("lid").unwrap().to_string();

    let mut msg = vec![6, 1];
    msg.extend_from_slice(&details);
    msg.extend_from_slice(c.identity.public().as_bytes());
    msg.extend_from_slice(account_key.as_bytes());
    if tamper {
        msg.push(0);
    }
    signed.device_signature = Some(xeddsa::sign(&c.identity, &msg, &[9; 64]).to_vec());
    signed.account_signature_key = None;
    let reply = Node::new("iq")
        .attr("to", server())
        .attr("type", "result")
        .attr("id", iq.attr_str("id").unwrap().to_string())
        .children(vec![Node::new("pair-device-sign").children(vec![
            Node::new("device-identity")
                .attr("key-index", key_index.to_string())
                .bytes(signed.encode_to_vec()),
        ])]);
    client.send(&reply).await;
    (jid, lid, key_index)
}

pub fn is_stream_error(n: &Node, code: Option<&str>) -> bool {
    n.tag == "stream:error" && n.attr_str("code") == code
}

/// QR pairing end to end; returns the device number.
pub async fn pair_by_qr(sim: &RunningSim, api: &Api, c: &Companion, phone: &str) -> u16 {
    let (mut client, refs) = register(sim, c).await;
    assert_eq!(refs.len(), 6);
    let qr = c.qr(&refs[0]);
    let base = sim.http_url();
    let phone_owned = phone.to_string();
    let scan = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(format!("{base}/sim/accounts/{phone_owned}/scan"))
            .json(&json!({"qr": qr}))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json::<serde_json::Value>().await.unwrap(),
        )
    });
    let (jid, lid, _) = answer_pair_success(&mut client, c, &c.adv_secret, false).await;
    let last = client.until_closed().await.expect("515 before close");
    assert!(is_stream_error(&last, Some("515")), "{last:?}");
    let (status, body) = scan.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["device_jid"], jid);
    assert_eq!(body["lid"], lid);
    let _ = api;
    jid.split(':')
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

pub async fn login(sim: &RunningSim, c: &Companion, phone: &str, device: u16) -> (Client, Node) {
    let mut client = Client::connect(sim, &c.noise, &Companion::login_payload(phone, device)).await;
    let success = client.node().await;
    assert_eq!(success.tag, "success", "{success:?}");
    let offline = client
        .expect("<ib><offline>", |n| {
            n.tag == "ib" && n.child("offline").is_some()
        })
        .await;
    assert!(
        offline
            .child("offline")
            .unwrap()
            .attr_str("count")
            .is_some()
    );
    (client, success)
}
