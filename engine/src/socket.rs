//! One WebSocket connection to the server: connection header, Noise XX as initiator, then
//! encrypted frames carrying binary nodes (wa-protocol.md §1, §2).
//!
//! Owned by the session actor, which polls [`Connection::next_message`] inside its `select!`:
//! reading is cancel-safe (a WebSocket message is either taken whole or left in the stream) and
//! frame reassembly plus decryption happen synchronously in [`Connection::decode`]. No extra task
//! per socket, so an idle session costs one task and its buffers.

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use zapin_protocol::binary::{DecodeError, EncodeError, Node, pack, unpack};
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::frame::{FrameDecoder, FrameError, connection_header, encode_frame};
use zapin_protocol::noise::{ClientHandshake, NoiseError, Transport};
use zapin_protocol::proto::wa::ClientPayload;

use crate::config::EngineConfig;
use crate::proxy::ProxyConfig;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const ORIGIN: &str = "https://web.whatsapp.com";

/// tungstenite allocates its read buffer per connection and zero-fills it to full capacity, so
/// the 128 KiB default is resident for every idle session (measured: ≈ 212 KiB per idle session
/// at N = 100 with it, see benches/RESULTS.md "sessions-bench"). Stanzas are small; a larger
/// WebSocket message is still read whole (the buffer only sets the read chunk).
pub const WS_READ_BUFFER: usize = 4 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The TLS handshake of a `wss://` URL failed: an untrusted or mismatched certificate,
    /// a protocol error. The reason is rustls's.
    #[error("tls: {0}")]
    Tls(String),
    #[error("connection closed by the server{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    #[error("noise: {0}")]
    Noise(#[from] NoiseError),
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    #[error("node encode: {0}")]
    Encode(#[from] EncodeError),
    #[error("node decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Proxy(#[from] crate::proxy::ProxyError),
}

impl From<tungstenite::Error> for ConnError {
    fn from(e: tungstenite::Error) -> Self {
        match e {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                ConnError::Closed(None)
            }
            // tokio-rustls reports handshake failures as an io::Error wrapping rustls's error.
            tungstenite::Error::Io(io) => {
                match io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    Some(tls) => ConnError::Tls(tls.to_string()),
                    None => ConnError::WebSocket(tungstenite::Error::Io(io).to_string()),
                }
            }
            tungstenite::Error::Tls(tls) => ConnError::Tls(tls.to_string()),
            e => ConnError::WebSocket(e.to_string()),
        }
    }
}

/// A connection after the handshake: every frame in both directions is a Noise transport message.
pub struct Connection {
    ws: Ws,
    frames: FrameDecoder,
    noise: Transport,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects, runs the handshake and sends `payload`. The caller bounds it with a timeout.
    /// `ephemeral` must be fresh for every connection.
    pub async fn open(
        config: &EngineConfig,
        proxy: Option<&ProxyConfig>,
        noise_static: KeyPair,
        ephemeral: KeyPair,
        routing_info: Option<&[u8]>,
        payload: &ClientPayload,
        now_unix: u64,
    ) -> Result<Self, ConnError> {
        let mut request = config.ws_url.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_static(ORIGIN));
        let ws_config =
            tungstenite::protocol::WebSocketConfig::default().read_buffer_size(WS_READ_BUFFER);
        // Used only for `wss://`; `ws://` stays plain TCP.
        let connector = Connector::Rustls(config.tls.client_config().map_err(|reason| {
            ConnError::Tls(format!("client configuration unusable: {reason}"))
        })?);
        // TCP_NODELAY, as browsers set it: stanzas are small request/response writes, which
        // Nagle may hold back behind an unacknowledged one. (Measured with sessions-bench N=20:
        // no change in send latency on loopback, so it is hygiene here, not a fix.)
        let (mut ws, _response) = match proxy {
            None => {
                tokio_tungstenite::connect_async_tls_with_config(
                    request,
                    Some(ws_config),
                    true,
                    Some(connector),
                )
                .await?
            }
            Some(proxy) => {
                let (host, port) = crate::proxy::server_address(&config.ws_url)
                    .ok_or_else(|| ConnError::WebSocket("the server URL has no host".into()))?;
                let stream = crate::proxy::tunnel(proxy, &host, port).await?;
                let _ = stream.set_nodelay(true);
                tokio_tungstenite::client_async_tls_with_config(
                    request,
                    stream,
                    Some(ws_config),
                    Some(connector),
                )
                .await?
            }
        };

        let (hello, awaiting) =
            ClientHandshake::new(noise_static, ephemeral, config.trust_root).client_hello();
        let mut first = BytesMut::from(connection_header(routing_info)?.as_ref());
        encode_frame(&hello, &mut first)?;
        ws.send(Message::Binary(first.freeze())).await?;

        let mut frames = FrameDecoder::new();
        let server_hello = loop {
            if let Some(frame) = frames.next_frame()? {
                break frame;
            }
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => frames.push(&b),
                Some(Ok(Message::Close(c))) => {
                    return Err(ConnError::Closed(c.map(|c| c.reason.to_string())));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(ConnError::Closed(None)),
            }
        };
        let ready = awaiting.read_server_hello(&server_hello, now_unix)?;
        let (finish, noise) = ready.client_finish(&payload.encode_to_vec())?;
        let mut out = BytesMut::new();
        encode_frame(&finish, &mut out)?;
        ws.send(Message::Binary(out.freeze())).await?;
        Ok(Self { ws, frames, noise })
    }

    pub async fn send(&mut self, node: &Node) -> Result<(), ConnError> {
        tracing::trace!(%node, "send");
        let ciphertext = self.noise.encrypt(&pack(node)?)?;
        let mut out = BytesMut::with_capacity(ciphertext.len() + 3);
        encode_frame(&ciphertext, &mut out)?;
        self.ws.send(Message::Binary(out.freeze())).await?;
        Ok(())
    }

    /// The next WebSocket message. Cancel-safe.
    pub async fn next_message(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        self.ws.next().await
    }

    /// Turns one WebSocket message into the nodes it completes (none, one or several).
    pub fn decode(
        &mut self,
        message: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<Vec<Node>, ConnError> {
        match message {
            Some(Ok(Message::Binary(b))) => {
                self.frames.push(&b);
                let mut nodes = Vec::new();
                while let Some(frame) = self.frames.next_frame()? {
                    let plaintext = self.noise.decrypt(&frame)?;
                    let node = unpack(&plaintext)?;
                    tracing::trace!(%node, "recv");
                    nodes.push(node);
                }
                Ok(nodes)
            }
            Some(Ok(Message::Close(c))) => Err(ConnError::Closed(c.map(|c| c.reason.to_string()))),
            Some(Ok(_)) => Ok(Vec::new()),
            Some(Err(e)) => Err(e.into()),
            None => Err(ConnError::Closed(None)),
        }
    }

    /// Best-effort close frame; errors are irrelevant, the socket is dropped right after.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
