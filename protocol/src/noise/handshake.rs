//! Both roles of WhatsApp's `XX` handshake (wa-protocol.md §2.3), as consuming state types.
//!
//! ```text
//!  -> e
//!  <- e, ee, s, es          (+ encrypted CertChain)
//!  -> s, se                 (+ encrypted ClientPayload)
//! ```

use prost::Message as _;

use super::NoiseError;
use super::cert::{VerifiedCertChain, verify_cert_chain};
use super::symmetric::SymmetricState;
use super::transport::Transport;
use crate::crypto::{KeyPair, PublicKey};
use crate::proto::wa::HandshakeMessage;
use crate::proto::wa::handshake_message::{ClientFinish, ClientHello, ServerHello};

fn public_key(bytes: Option<&Vec<u8>>, field: &'static str) -> Result<PublicKey, NoiseError> {
    let bytes = bytes.ok_or(NoiseError::MissingField(field))?;
    // Noise keys are always the raw 32-byte form; the 33-byte Signal form is not accepted here.
    if bytes.len() != 32 {
        return Err(NoiseError::BadKey {
            field,
            source: crate::crypto::keys::KeyError::BadLength(bytes.len()),
        });
    }
    PublicKey::from_slice(bytes).map_err(|source| NoiseError::BadKey { field, source })
}

// ---------------------------------------------------------------------------------------------
// Initiator (client)

/// The client before anything was sent. `noise_static` is the long-term noise key persisted at
/// registration; `ephemeral` must be fresh per connection.
#[derive(Debug)]
pub struct ClientHandshake {
    noise_static: KeyPair,
    ephemeral: KeyPair,
    trust_root: PublicKey,
}

impl ClientHandshake {
    pub fn new(noise_static: KeyPair, ephemeral: KeyPair, trust_root: PublicKey) -> Self {
        Self {
            noise_static,
            ephemeral,
            trust_root,
        }
    }

    /// Produces the serialized `HandshakeMessage{clientHello}`, the first frame's payload.
    pub fn client_hello(self) -> (Vec<u8>, ClientAwaitingServerHello) {
        let mut sym = SymmetricState::new();
        sym.mix_hash(self.ephemeral.public().as_bytes());
        let msg = HandshakeMessage {
            client_hello: Some(ClientHello {
                ephemeral: Some(self.ephemeral.public().0.to_vec()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let next = ClientAwaitingServerHello {
            sym,
            noise_static: self.noise_static,
            ephemeral: self.ephemeral,
            trust_root: self.trust_root,
        };
        (msg.encode_to_vec(), next)
    }
}

/// The client after sending ClientHello.
pub struct ClientAwaitingServerHello {
    sym: SymmetricState,
    noise_static: KeyPair,
    ephemeral: KeyPair,
    trust_root: PublicKey,
}

impl ClientAwaitingServerHello {
    /// Processes the server's `HandshakeMessage{serverHello}`: decrypts the server's static key
    /// and certificate chain and verifies the chain at time `now_unix`.
    pub fn read_server_hello(
        mut self,
        bytes: &[u8],
        now_unix: u64,
    ) -> Result<ClientReadyToFinish, NoiseError> {
        let hello = HandshakeMessage::decode(bytes)?
            .server_hello
            .ok_or(NoiseError::MissingField("serverHello"))?;
        let server_ephemeral = public_key(hello.ephemeral.as_ref(), "serverHello.ephemeral")?;
        let static_ct = hello
            .r#static
            .as_ref()
            .ok_or(NoiseError::MissingField("serverHello.static"))?;
        let payload_ct = hello
            .payload
            .as_ref()
            .ok_or(NoiseError::MissingField("serverHello.payload"))?;

        self.sym.mix_hash(server_ephemeral.as_bytes());
        self.sym.mix_key(&self.ephemeral.agree(&server_ephemeral));
        let static_pt = self.sym.decrypt_and_hash(static_ct)?;
        let server_static = public_key(Some(&static_pt), "server static")?;
        self.sym.mix_key(&self.ephemeral.agree(&server_static));
        let cert_chain_plaintext = self.sym.decrypt_and_hash(payload_ct)?;
        let cert_chain = verify_cert_chain(
            &cert_chain_plaintext,
            &self.trust_root,
            &server_static,
            now_unix,
        )?;
        Ok(ClientReadyToFinish {
            sym: self.sym,
            noise_static: self.noise_static,
            server_ephemeral,
            server_static,
            cert_chain,
            cert_chain_plaintext,
        })
    }

    /// The handshake hash so far (for known-answer tests).
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.sym.hash()
    }
}

impl std::fmt::Debug for ClientAwaitingServerHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAwaitingServerHello")
            .field("ephemeral", self.ephemeral.public())
            .finish_non_exhaustive()
    }
}

/// The client after a verified ServerHello; it can now send its static key and payload.
pub struct ClientReadyToFinish {
    sym: SymmetricState,
    noise_static: KeyPair,
    server_ephemeral: PublicKey,
    server_static: PublicKey,
    cert_chain: VerifiedCertChain,
    cert_chain_plaintext: Vec<u8>,
}

impl ClientReadyToFinish {
    /// The server's static key, already checked against the leaf certificate.
    pub fn server_static(&self) -> &PublicKey {
        &self.server_static
    }

    pub fn cert_chain(&self) -> &VerifiedCertChain {
        &self.cert_chain
    }

    /// The decrypted `CertChain` bytes exactly as received.
    pub fn cert_chain_bytes(&self) -> &[u8] {
        &self.cert_chain_plaintext
    }

    pub fn handshake_hash(&self) -> [u8; 32] {
        self.sym.hash()
    }

    pub fn chaining_key(&self) -> [u8; 32] {
        self.sym.chaining_key()
    }

    /// Encrypts the client's static key and `payload` (a serialized `ClientPayload`) into the
    /// `HandshakeMessage{clientFinish}` bytes and splits the transport keys.
    pub fn client_finish(mut self, payload: &[u8]) -> Result<(Vec<u8>, Transport), NoiseError> {
        // Counter 1 under the key from the `es` mix: counter 0 went to the certificate chain.
        let static_ct = self
            .sym
            .encrypt_and_hash(self.noise_static.public().as_bytes())?;
        self.sym
            .mix_key(&self.noise_static.agree(&self.server_ephemeral));
        let payload_ct = self.sym.encrypt_and_hash(payload)?;
        let msg = HandshakeMessage {
            client_finish: Some(ClientFinish {
                r#static: Some(static_ct),
                payload: Some(payload_ct),
            }),
            ..Default::default()
        };
        let (client_write, client_read) = self.sym.split();
        Ok((
            msg.encode_to_vec(),
            Transport::new(&client_write, &client_read),
        ))
    }
}

impl std::fmt::Debug for ClientReadyToFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientReadyToFinish")
            .field("server_static", &self.server_static)
            .field("cert_chain", &self.cert_chain)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Responder (server)

/// The server before the ClientHello. `cert_chain` is a serialized `CertChain` whose leaf
/// certifies `noise_static` (see [`super::CertChainBuilder`]); it is sent as is.
#[derive(Debug)]
pub struct ServerHandshake {
    noise_static: KeyPair,
    ephemeral: KeyPair,
    cert_chain: Vec<u8>,
}

impl ServerHandshake {
    pub fn new(noise_static: KeyPair, ephemeral: KeyPair, cert_chain: Vec<u8>) -> Self {
        Self {
            noise_static,
            ephemeral,
            cert_chain,
        }
    }

    /// Reads the client's `HandshakeMessage{clientHello}` and returns the ServerHello bytes.
    pub fn read_client_hello(
        self,
        bytes: &[u8],
    ) -> Result<(Vec<u8>, ServerAwaitingClientFinish), NoiseError> {
        let hello = HandshakeMessage::decode(bytes)?
            .client_hello
            .ok_or(NoiseError::MissingField("clientHello"))?;
        if hello.r#static.is_some() || hello.payload.is_some() {
            return Err(NoiseError::UnsupportedPattern);
        }
        let client_ephemeral = public_key(hello.ephemeral.as_ref(), "clientHello.ephemeral")?;

        let mut sym = SymmetricState::new();
        sym.mix_hash(client_ephemeral.as_bytes());
        sym.mix_hash(self.ephemeral.public().as_bytes());
        sym.mix_key(&self.ephemeral.agree(&client_ephemeral));
        let static_ct = sym.encrypt_and_hash(self.noise_static.public().as_bytes())?;
        sym.mix_key(&self.noise_static.agree(&client_ephemeral));
        let payload_ct = sym.encrypt_and_hash(&self.cert_chain)?;
        let msg = HandshakeMessage {
            server_hello: Some(ServerHello {
                ephemeral: Some(self.ephemeral.public().0.to_vec()),
                r#static: Some(static_ct),
                payload: Some(payload_ct),
            }),
            ..Default::default()
        };
        Ok((
            msg.encode_to_vec(),
            ServerAwaitingClientFinish {
                sym,
                ephemeral: self.ephemeral,
            },
        ))
    }
}

/// The server after sending ServerHello.
pub struct ServerAwaitingClientFinish {
    sym: SymmetricState,
    ephemeral: KeyPair,
}

impl ServerAwaitingClientFinish {
    /// Reads the client's `HandshakeMessage{clientFinish}`: learns the client's static key and its
    /// `ClientPayload` bytes (not decoded here) and splits the transport keys.
    pub fn read_client_finish(
        mut self,
        bytes: &[u8],
    ) -> Result<ServerHandshakeOutcome, NoiseError> {
        let finish = HandshakeMessage::decode(bytes)?
            .client_finish
            .ok_or(NoiseError::MissingField("clientFinish"))?;
        let static_ct = finish
            .r#static
            .as_ref()
            .ok_or(NoiseError::MissingField("clientFinish.static"))?;
        let payload_ct = finish
            .payload
            .as_ref()
            .ok_or(NoiseError::MissingField("clientFinish.payload"))?;
        // Counter 1, mirroring the client (the certificate chain used counter 0).
        let static_pt = self.sym.decrypt_and_hash(static_ct)?;
        let client_static = public_key(Some(&static_pt), "client static")?;
        self.sym.mix_key(&self.ephemeral.agree(&client_static));
        let client_payload = self.sym.decrypt_and_hash(payload_ct)?;
        let (client_write, client_read) = self.sym.split();
        Ok(ServerHandshakeOutcome {
            client_static,
            client_payload,
            handshake_hash: self.sym.hash(),
            transport: Transport::new(&client_read, &client_write),
        })
    }

    pub fn handshake_hash(&self) -> [u8; 32] {
        self.sym.hash()
    }
}

impl std::fmt::Debug for ServerAwaitingClientFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAwaitingClientFinish")
            .field("ephemeral", self.ephemeral.public())
            .finish_non_exhaustive()
    }
}

/// What the server learns from a completed handshake.
#[derive(Debug)]
pub struct ServerHandshakeOutcome {
    /// The client's long-term noise key: identifies the companion (§2.5).
    pub client_static: PublicKey,
    /// The decrypted, still serialized `ClientPayload`.
    pub client_payload: Vec<u8>,
    /// The final handshake hash, equal on both sides.
    pub handshake_hash: [u8; 32],
    pub transport: Transport,
}
