//! The seam between the WebSocket plumbing (here) and WhatsApp's protocol (the protocol layer).
//!
//! The connection task owns the socket, checks the intro (§1.2–1.3), applies faults and the idle
//! timeout, and calls a `ConnectionHandler` with bytes and commands. The handler is synchronous
//! and sans-IO: it answers by filling an `Outbox` with whole WebSocket payloads to write and,
//! optionally, a reason to close. The protocol layer implements `HandlerFactory` (frame reassembly,
//! Noise responder, `ClientPayload`, node routing, pairing) and is passed in `SimConfig::handlers`.
//! Until then `UnwiredHandlers` closes every connection once its intro is checked.

use std::net::SocketAddr;

use crate::conn::{ConnCommand, ConnId, PairFailure};
use crate::intro::Intro;
use crate::sim::Sim;

/// What a handler knows about its connection.
#[derive(Debug, Clone)]
pub struct ConnContext {
    pub id: ConnId,
    pub peer: SocketAddr,
    /// The whole simulator: state, registry, faults, config.
    pub sim: Sim,
}

/// Why the server closes a connection. Mapped to a WebSocket close code for the client's logs;
/// WhatsApp-level reasons (`<stream:error>`, `<failure>`) are written by the handler before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The intro bytes were wrong.
    BadIntro(String),
    /// The protocol layer is not wired in this build.
    NotWired,
    /// The client broke the protocol (bad frame, failed handshake, …).
    Protocol(String),
    /// Nothing came from the client for the idle timeout.
    Idle,
    /// The server ends the stream on purpose (after `<stream:error>`, `<failure>`, 515, …).
    EndOfStream(String),
}

impl CloseReason {
    pub fn ws_code(&self) -> u16 {
        match self {
            Self::BadIntro(_) | Self::Protocol(_) => 1002,
            Self::NotWired => 1011,
            Self::Idle | Self::EndOfStream(_) => 1000,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Self::BadIntro(s) => format!("bad connection header: {s}"),
            Self::NotWired => "protocol layer not wired yet".to_string(),
            Self::Protocol(s) => format!("protocol error: {s}"),
            Self::Idle => "idle timeout".to_string(),
            Self::EndOfStream(s) => s.clone(),
        }
    }
}

/// What a handler wants the connection task to do next.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Whole WebSocket binary payloads, written in order (each delayed by the latency fault).
    pub writes: Vec<Vec<u8>>,
    /// Close after the writes.
    pub close: Option<CloseReason>,
}

impl Outbox {
    pub fn write(&mut self, payload: Vec<u8>) {
        self.writes.push(payload);
    }

    pub fn close(&mut self, reason: CloseReason) {
        self.close.get_or_insert(reason);
    }
}

/// One connection's protocol state machine.
pub trait ConnectionHandler: Send + 'static {
    /// The intro was accepted; the bytes after it arrive through `on_bytes`.
    fn on_intro(&mut self, intro: &Intro, out: &mut Outbox);
    /// More of the client's byte stream (frames may be split or merged across calls, §1.1).
    fn on_bytes(&mut self, bytes: &[u8], out: &mut Outbox);
    /// A command from outside (control API, router, another connection).
    fn on_command(&mut self, cmd: ConnCommand, out: &mut Outbox);
    /// The connection is gone (any cause); release what the handler registered.
    fn on_closed(&mut self) {}
}

/// Makes a handler per accepted connection.
pub trait HandlerFactory: Send + Sync + std::fmt::Debug + 'static {
    fn new_handler(&self, ctx: ConnContext) -> Box<dyn ConnectionHandler>;
}

/// The stand-in until the protocol layer lands: checks nothing beyond the intro (done by the
/// connection task), and closes. Commands that would need the codec fail or close honestly.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnwiredHandlers;

impl HandlerFactory for UnwiredHandlers {
    fn new_handler(&self, ctx: ConnContext) -> Box<dyn ConnectionHandler> {
        Box::new(UnwiredHandler { id: ctx.id })
    }
}

#[derive(Debug)]
struct UnwiredHandler {
    id: ConnId,
}

impl ConnectionHandler for UnwiredHandler {
    fn on_intro(&mut self, intro: &Intro, out: &mut Outbox) {
        tracing::info!(
            conn = %self.id,
            routing_info = intro.routing_info.is_some(),
            "connection header OK; the protocol layer (Noise, codec) is not wired yet: closing"
        );
        out.close(CloseReason::NotWired);
    }

    fn on_bytes(&mut self, _bytes: &[u8], out: &mut Outbox) {
        out.close(CloseReason::NotWired);
    }

    fn on_command(&mut self, cmd: ConnCommand, out: &mut Outbox) {
        match cmd {
            ConnCommand::Pair { reply, .. } => {
                let _ = reply.send(Err(PairFailure::NotWired));
            }
            ConnCommand::StreamError { code } => {
                tracing::info!(conn = %self.id, code, "stream error requested; <stream:error> cannot be encoded yet: closing without it");
                out.close(CloseReason::EndOfStream(format!("stream error {code}")));
            }
            ConnCommand::Replaced => {
                out.close(CloseReason::EndOfStream("replaced".to_string()));
            }
            ConnCommand::Unlinked => {
                out.close(CloseReason::EndOfStream("device removed".to_string()));
            }
            ConnCommand::Deliver { .. } => {
                tracing::warn!(conn = %self.id, "delivery to a connection without protocol layer dropped");
            }
        }
    }
}
