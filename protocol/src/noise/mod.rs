//! The Noise `XX` handshake WhatsApp runs at the start of every connection, for both roles, and
//! the transport ciphers it yields (wa-protocol.md §2).
//!
//! Sans-IO: each side is a chain of small state types. Every step consumes the previous state and
//! takes or returns the bytes of one frame *payload* (a serialized `HandshakeMessage`); framing,
//! the connection header and the optional `ED` routing pre-intro belong to the frame codec. Keys
//! and signing randomness are passed in, and the clock is a `now_unix` argument.
//!
//! ```text
//! client: ClientHandshake ─client_hello─▶ ClientAwaitingServerHello ─read_server_hello─▶
//!         ClientReadyToFinish ─client_finish─▶ (ClientFinish bytes, Transport)
//! server: ServerHandshake ─read_client_hello─▶ (ServerHello bytes, ServerAwaitingClientFinish)
//!         ─read_client_finish─▶ ServerHandshakeOutcome { client static, ClientPayload, Transport }
//! ```

mod cert;
mod handshake;
mod symmetric;
mod transport;

pub use cert::{
    CertChainBuilder, CertDetails, CertError, CertKind, Validity, VerifiedCertChain,
    WHATSAPP_ROOT_PUBLIC_KEY, issue_certificate, verify_cert_chain,
};
pub use handshake::{
    ClientAwaitingServerHello, ClientHandshake, ClientReadyToFinish, ServerAwaitingClientFinish,
    ServerHandshake, ServerHandshakeOutcome,
};
pub use symmetric::{PATTERN_XX, PROLOGUE, TAG_LEN};
pub use transport::Transport;

/// Why a handshake step or a transport frame failed. Every variant is fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoiseError {
    #[error("handshake message is not a valid protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("handshake message lacks {0}")]
    MissingField(&'static str),
    #[error("{field} is not a Curve25519 public key: {source}")]
    BadKey {
        field: &'static str,
        source: crate::crypto::keys::KeyError,
    },
    #[error("ClientHello carries a static key or payload (IK resume), which is not supported")]
    UnsupportedPattern,
    #[error("AES-GCM authentication failed")]
    Decrypt,
    #[error("AES-GCM refused to encrypt (input too long)")]
    Encrypt,
    #[error("nonce counter exhausted; the connection must be re-established")]
    CounterExhausted,
    #[error("server certificate chain rejected: {0}")]
    Cert(#[from] CertError),
}

#[cfg(test)]
mod tests;
