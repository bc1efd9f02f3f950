//! `/ws/chat`: the WebSocket upgrade and the per-connection task.
//!
//! One task per connection and nothing else per connection: it reads the socket, runs the
//! handler, writes what the handler asks (each write delayed by the latency fault), and closes on
//! idle timeout, `disconnect_all`, shutdown or the handler's request.

use std::net::SocketAddr;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio::time::Instant;

use super::handler::{CloseReason, ConnContext, Outbox};
use crate::api::AppState;
use crate::intro::{IntroError, parse_intro};
use crate::sim::Sim;

/// A noise frame is at most 2^24-1 bytes (§1.4); one WebSocket message may carry a little more
/// (several frames, or the intro and a frame).
pub const MAX_WS_MESSAGE: usize = (1 << 24) + (1 << 16);

/// tungstenite's read buffer is allocated per connection and zero-filled to its full capacity
/// on every read, so its size is resident per connection: the 128 KiB default made 133 KiB of
/// the ≈ 134 KiB each idle logged-in connection cost (benches/RESULTS.md, "simulator
/// connections"). Stanzas are small; a larger frame still gets its exact length reserved.
pub const WS_READ_BUFFER: usize = 4 * 1024;

pub async fn upgrade(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    if app.sim.faults().refusing() {
        tracing::info!(%peer, "refusing connection (refuse fault)");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": "refusing connections (fault)"})),
        )
            .into_response();
    }
    let sim = app.sim.clone();
    let shutdown = app.shutdown.clone();
    ws.max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        .read_buffer_size(WS_READ_BUFFER)
        .on_upgrade(move |socket| run_connection(sim, socket, peer, shutdown))
}

async fn run_connection(
    sim: Sim,
    mut socket: WebSocket,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let (id, mut commands) = sim.connections().register(peer);
    let mut disconnect = sim.connections().disconnect_signal();
    disconnect.mark_unchanged();
    let mut handler = sim.config().handlers.new_handler(ConnContext {
        id,
        peer,
        sim: sim.clone(),
    });
    let idle = sim.config().idle_timeout;
    let mut deadline = Instant::now() + idle;
    // Bytes before the intro is complete; empty afterwards.
    let mut intro_buf: Option<Vec<u8>> = Some(Vec::new());
    tracing::debug!(conn = %id, %peer, "connection open");

    loop {
        let mut out = Outbox::default();
        tokio::select! {
            msg = socket.recv() => match msg {
                None => break,
                Some(Err(e)) => {
                    tracing::debug!(conn = %id, "socket error: {e}");
                    break;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    deadline = Instant::now() + idle;
                    match intro_buf.as_mut() {
                        None => handler.on_bytes(&bytes, &mut out),
                        Some(buf) => {
                            buf.extend_from_slice(&bytes);
                            match parse_intro(buf) {
                                Ok(None) => {}
                                Ok(Some(intro)) => {
                                    let rest = buf.split_off(intro.consumed);
                                    intro_buf = None;
                                    handler.on_intro(&intro, &mut out);
                                    if !rest.is_empty() && out.close.is_none() {
                                        handler.on_bytes(&rest, &mut out);
                                    }
                                }
                                Err(e) => {
                                    log_bad_intro(id, peer, &e);
                                    out.close(CloseReason::BadIntro(e.to_string()));
                                }
                            }
                        }
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    deadline = Instant::now() + idle;
                }
                Some(Ok(Message::Text(_))) => {
                    // WhatsApp speaks binary only; text frames are ignored, as whatsmeow does.
                    tracing::debug!(conn = %id, "ignoring a text message");
                }
                Some(Ok(Message::Close(_))) => break,
            },
            Some(cmd) = commands.recv() => handler.on_command(cmd, &mut out),
            _ = tokio::time::sleep_until(deadline) => {
                tracing::info!(conn = %id, %peer, "idle for {idle:?}: closing");
                out.close(CloseReason::Idle);
            }
            _ = disconnect.changed() => {
                tracing::info!(conn = %id, "disconnect_all fault: dropping the socket");
                break;
            }
            _ = shutdown.changed() => {
                out.close(CloseReason::EndOfStream("simulator shutting down".to_string()));
            }
        }
        if !flush(&sim, &mut socket, out).await {
            break;
        }
    }

    handler.on_closed();
    sim.connection_closed(id);
    tracing::debug!(conn = %id, "connection closed");
}

/// Writes the outbox; `false` when the connection is done.
async fn flush(sim: &Sim, socket: &mut WebSocket, out: Outbox) -> bool {
    for payload in out.writes {
        delay(sim).await;
        if socket.send(Message::Binary(payload.into())).await.is_err() {
            return false;
        }
    }
    match out.close {
        None => true,
        Some(reason) => {
            delay(sim).await;
            let frame = CloseFrame {
                code: reason.ws_code(),
                reason: truncate(&reason.text(), 120).into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
            false
        }
    }
}

async fn delay(sim: &Sim) {
    let latency = sim.faults().latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// Close reasons must fit a control frame (125 bytes); cut on a char boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn log_bad_intro(id: super::ConnId, peer: SocketAddr, e: &IntroError) {
    tracing::warn!(conn = %id, %peer, "closing: {e}");
}
