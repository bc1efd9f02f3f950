//! A minimal WhatsApp companion for the simulator's tests, built from zapin-protocol (Noise
//! initiator, frames, binary nodes, protobufs) — a test helper, not the engine.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;
use zapin_protocol::binary::{self, Node};
use zapin_protocol::crypto::{KeyPair, PublicKey, xeddsa};
use zapin_protocol::frame::{FrameDecoder, encode_frame};
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::noise::{ClientHandshake, Transport};
use zapin_protocol::proto::wa::ClientPayload;
use zapin_protocol::proto::wa::client_payload::DevicePairingRegistrationData;
use zapin_sim::RunningSim;

use super::{WA_HEADER, WAIT, Ws};

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
