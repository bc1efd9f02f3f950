//! A lean companion for load: Noise initiator + frames + binary nodes from zapin-protocol, just
//! enough to pair by QR, log in, ping and send opaque `<enc>` messages (not the engine).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use zapin_protocol::binary::{self, Node};
use zapin_protocol::crypto::{KeyPair, PublicKey, xeddsa};
use zapin_protocol::frame::{FrameDecoder, encode_frame};
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::noise::{ClientHandshake, Transport};
use zapin_protocol::proto::wa::client_payload::DevicePairingRegistrationData;
use zapin_protocol::proto::wa::{
    AdvDeviceIdentity, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac, ClientPayload,
};

use crate::Error;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WA_HEADER: [u8; 4] = [0x57, 0x41, 0x06, 0x03];
const CLIENT_READ_BUFFER: usize = 8 * 1024;
/// Every single read waits at most this long.
pub const READ_WAIT: Duration = Duration::from_secs(60);

/// A device's keys, derived from its index so reruns over the same `--state-dir` log in again.
#[derive(Clone)]
pub struct Companion {
    pub index: u32,
    pub noise: KeyPair,
    pub identity: KeyPair,
    pub signed_prekey: KeyPair,
    pub signed_prekey_sig: [u8; 64],
    pub adv_secret: [u8; 32],
}

fn key(index: u32, label: u8) -> [u8; 32] {
    let mut k = [label; 32];
    k[..4].copy_from_slice(&index.to_le_bytes());
    k
}

impl Companion {
    pub fn new(index: u32) -> Self {
        let identity = KeyPair::from_private(key(index, 1));
        let signed_prekey = KeyPair::from_private(key(index, 2));
        let mut random = [7u8; 64];
        random[..4].copy_from_slice(&index.to_le_bytes());
        let sig = xeddsa::sign(&identity, &signed_prekey.public().serialize_djb(), &random);
        Self {
            index,
            noise: KeyPair::from_private(key(index, 3)),
            identity,
            signed_prekey,
            signed_prekey_sig: sig,
            adv_secret: key(index, 4),
        }
    }

    /// The account phone of device `index`: one companion per account.
    pub fn phone(index: u32) -> String {
        format!("1777{index:07}")
    }

    fn registration_payload(&self) -> ClientPayload {
        ClientPayload {
            passive: Some(false),
            pull: Some(false),
            device_pairing_data: Some(DevicePairingRegistrationData {
                e_regid: Some((1000 + self.index).to_be_bytes().to_vec()),
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

    fn login_payload(phone: &str, device: u16) -> Result<ClientPayload, Error> {
        Ok(ClientPayload {
            username: Some(
                phone
                    .parse()
                    .map_err(|_| Error::Protocol(format!("bad phone {phone}")))?,
            ),
            device: Some(u32::from(device)),
            passive: Some(true),
            pull: Some(true),
            ..Default::default()
        })
    }

    fn qr(&self, pairing_ref: &str) -> String {
        format!(
            "{},{},{},{},1",
            pairing_ref,
            STANDARD.encode(self.noise.public().0),
            STANDARD.encode(self.identity.public().0),
            STANDARD.encode(self.adv_secret)
        )
    }
}

/// One Noise-encrypted connection.
pub struct Client {
    pub ws: Ws,
    transport: Transport,
    frames: FrameDecoder,
}

pub fn server_jid() -> Jid {
    Jid::server_only(Server::Pn)
}

fn proto(what: &str) -> impl FnOnce(String) -> Error + '_ {
    move |e| Error::Protocol(format!("{what}: {e}"))
}

impl Client {
    async fn connect(
        ws_url: &str,
        root: &PublicKey,
        c: &Companion,
        payload: &ClientPayload,
    ) -> Result<Client, Error> {
        // tungstenite zero-fills its whole read buffer on every read (128 KiB by default): keep
        // the load generator's side small too.
        let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(ws_url, Some(config), true)
            .await
            .map_err(|e| Error::Protocol(format!("connect: {e}")))?;
        let ephemeral = KeyPair::from_private(key(c.index, 5));
        let hs = ClientHandshake::new(c.noise.clone(), ephemeral, *root);
        let (hello, awaiting) = hs.client_hello();
        let mut out = BytesMut::from(&WA_HEADER[..]);
        encode_frame(&hello, &mut out).map_err(|e| proto("frame")(e.to_string()))?;
        send_ws(&mut ws, out.to_vec()).await?;
        let mut frames = FrameDecoder::new();
        let server_hello = loop {
            if let Some(f) = frames
                .next_frame()
                .map_err(|e| proto("frame")(e.to_string()))?
            {
                break f;
            }
            match ws_frame(&mut ws).await? {
                Some(b) => frames.push(&b),
                None => return Err(Error::Protocol("closed during handshake".into())),
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let ready = awaiting
            .read_server_hello(&server_hello, now)
            .map_err(|e| proto("server hello")(e.to_string()))?;
        let (finish, transport) = ready
            .client_finish(&payload.encode_to_vec())
            .map_err(|e| proto("client finish")(e.to_string()))?;
        let mut out = BytesMut::new();
        encode_frame(&finish, &mut out).map_err(|e| proto("frame")(e.to_string()))?;
        send_ws(&mut ws, out.to_vec()).await?;
        Ok(Client {
            ws,
            transport,
            frames,
        })
    }

    pub async fn send(&mut self, node: &Node) -> Result<(), Error> {
        let plain = binary::pack(node).map_err(|e| proto("pack")(e.to_string()))?;
        let ct = self
            .transport
            .encrypt(&plain)
            .map_err(|e| proto("encrypt")(e.to_string()))?;
        let mut out = BytesMut::new();
        encode_frame(&ct, &mut out).map_err(|e| proto("frame")(e.to_string()))?;
        send_ws(&mut self.ws, out.to_vec()).await
    }

    /// A node already buffered, if any.
    pub fn buffered(&mut self) -> Result<Option<Node>, Error> {
        match self
            .frames
            .next_frame()
            .map_err(|e| proto("frame")(e.to_string()))?
        {
            None => Ok(None),
            Some(f) => {
                let plain = self
                    .transport
                    .decrypt(&f)
                    .map_err(|e| proto("decrypt")(e.to_string()))?;
                binary::unpack(&plain)
                    .map(Some)
                    .map_err(|e| proto("unpack")(e.to_string()))
            }
        }
    }

    /// Feeds bytes read from the socket (for callers that select on `ws` themselves).
    pub fn push(&mut self, bytes: &[u8]) {
        self.frames.push(bytes);
    }

    /// The next node, or `None` when the server closed.
    pub async fn recv(&mut self) -> Result<Option<Node>, Error> {
        loop {
            if let Some(n) = self.buffered()? {
                return Ok(Some(n));
            }
            match ws_frame(&mut self.ws).await? {
                Some(b) => self.frames.push(&b),
                None => return Ok(None),
            }
        }
    }

    async fn node(&mut self, what: &str) -> Result<Node, Error> {
        self.recv()
            .await?
            .ok_or_else(|| Error::Protocol(format!("closed while waiting for {what}")))
    }
}

async fn send_ws(ws: &mut Ws, bytes: Vec<u8>) -> Result<(), Error> {
    ws.send(Message::Binary(bytes.into()))
        .await
        .map_err(|e| Error::Protocol(format!("ws send: {e}")))
}

/// The next binary WebSocket message; `None` on close.
pub async fn ws_frame(ws: &mut Ws) -> Result<Option<Vec<u8>>, Error> {
    loop {
        let next = tokio::time::timeout(READ_WAIT, ws.next())
            .await
            .map_err(|_| Error::Protocol("server silent".into()))?;
        match next {
            Some(Ok(Message::Binary(b))) => return Ok(Some(b.to_vec())),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(None),
            Some(Ok(_)) => {}
        }
    }
}

fn child_bytes(n: &Node, tag: &str) -> Result<Vec<u8>, Error> {
    n.child(tag)
        .and_then(|c| c.content_bytes())
        .map(|b| b.to_vec())
        .ok_or_else(|| Error::Protocol(format!("no <{tag}> bytes")))
}

/// Registers, has the control API scan the first QR and answers `pair-success` as a companion
/// does. Returns the device number.
pub async fn pair(
    http: &reqwest::Client,
    base: &str,
    ws_url: &str,
    root: &PublicKey,
    c: &Companion,
) -> Result<u16, Error> {
    let phone = Companion::phone(c.index);
    let mut client = Client::connect(ws_url, root, c, &c.registration_payload()).await?;
    let iq = client.node("pair-device").await?;
    let refs: Vec<String> = iq
        .child("pair-device")
        .ok_or_else(|| Error::Protocol(format!("expected pair-device, got {}", iq.tag)))?
        .children_by_tag("ref")
        .filter_map(|r| r.content_bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let first = refs
        .first()
        .ok_or_else(|| Error::Protocol("no refs".into()))?;
    let ack = Node::new("iq")
        .attr("to", server_jid())
        .attr("type", "result")
        .attr("id", iq.attr_str("id").unwrap_or_default().to_string());
    client.send(&ack).await?;

    let qr = c.qr(first);
    let scan = http
        .post(format!("{base}/sim/accounts/{phone}/scan"))
        .json(&serde_json::json!({ "qr": qr }))
        .send();
    let scan = tokio::spawn(scan);

    let iq = loop {
        let n = client.node("pair-success").await?;
        if n.child("pair-success").is_some() {
            break n;
        }
    };
    let ps = iq
        .child("pair-success")
        .ok_or_else(|| Error::Protocol("no pair-success".into()))?;
    let container = AdvSignedDeviceIdentityHmac::decode(&child_bytes(ps, "device-identity")?[..])
        .map_err(|e| proto("adv container")(e.to_string()))?;
    let signed_bytes = container.details.unwrap_or_default();
    let mut signed = AdvSignedDeviceIdentity::decode(&signed_bytes[..])
        .map_err(|e| proto("adv signed")(e.to_string()))?;
    let details = signed.details.clone().unwrap_or_default();
    let account_key = signed.account_signature_key.clone().unwrap_or_default();
    let identity =
        AdvDeviceIdentity::decode(&details[..]).map_err(|e| proto("adv")(e.to_string()))?;
    let key_index = identity.key_index.unwrap_or_default();
    let jid = ps
        .child("device")
        .and_then(|d| d.attr_jid("jid"))
        .ok_or_else(|| Error::Protocol("no device jid".into()))?;
    let device = jid.device;

    let mut msg = vec![6, 1];
    msg.extend_from_slice(&details);
    msg.extend_from_slice(c.identity.public().as_bytes());
    msg.extend_from_slice(&account_key);
    signed.device_signature = Some(xeddsa::sign(&c.identity, &msg, &[9; 64]).to_vec());
    signed.account_signature_key = None;
    let reply = Node::new("iq")
        .attr("to", server_jid())
        .attr("type", "result")
        .attr("id", iq.attr_str("id").unwrap_or_default().to_string())
        .children(vec![Node::new("pair-device-sign").children(vec![
            Node::new("device-identity")
                .attr("key-index", key_index.to_string())
                .bytes(signed.encode_to_vec()),
        ])]);
    client.send(&reply).await?;
    // The 515, then the close.
    while client.recv().await?.is_some() {}
    let resp = scan
        .await
        .map_err(|e| Error::Protocol(format!("scan task: {e}")))?
        .map_err(|e| Error::Protocol(format!("scan: {e}")))?;
    if resp.status() != 200 {
        let body = resp.text().await.unwrap_or_default();
        return Err(Error::Protocol(format!("scan refused: {body}")));
    }
    Ok(device)
}

/// Logs in and waits for `<success>`.
pub async fn login(
    ws_url: &str,
    root: &PublicKey,
    c: &Companion,
    device: u16,
) -> Result<Client, Error> {
    let phone = Companion::phone(c.index);
    let payload = Companion::login_payload(&phone, device)?;
    let mut client = Client::connect(ws_url, root, c, &payload).await?;
    let first = client.node("success").await?;
    if first.tag != "success" {
        return Err(Error::Protocol(format!(
            "login of {phone}:{device}: got <{}>",
            first.tag
        )));
    }
    Ok(client)
}
