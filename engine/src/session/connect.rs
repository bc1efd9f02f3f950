//! One connection: open (WebSocket + Noise handshake, with the handshake slot), serve (nodes,
//! commands, keepalive, QR and IQ timers), login at `<success>` (prekeys, active, digest) and IQ
//! tracking.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{self, Message};
use zapin_protocol::binary::Node;
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::jid::Jid;

use crate::command::Command;
use crate::error::EngineError;
use crate::events::{ConnectionState, EventKind};
use crate::keepalive::{Keepalive, KeepaliveAction};
use crate::keys;
use crate::payload;
use crate::socket::Connection;

use super::phone_code::{Derivation, derived};

use super::{Conn, Outcome, Pending, STATUS_OK, Session, Step, lost, now_unix};

impl Session {
    pub(super) async fn connect_and_serve(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Outcome {
        let config = self.ctx.config.clone();
        let registration = !self.paired();
        let client_payload = match &self.creds.account {
            None => payload::registration_payload(&config, &self.creds),
            Some(account) => {
                let Some((user, device)) = login_identity(&account.device_jid) else {
                    return Outcome::Stop {
                        status: 500,
                        reason: format!("stored device JID {:?} is unusable", account.device_jid),
                    };
                };
                payload::login_payload(&config, user, device, self.creds.push_name.as_deref())
            }
        };
        let noise = keys::key_pair(&self.creds.noise_key);
        let ephemeral = KeyPair::generate(&mut self.rng);
        let routing = self.creds.routing_info.clone();
        let handshakes = self.ctx.handshakes.clone();
        // Read for every attempt: a proxy set or removed meanwhile applies from this one on.
        let proxy = self.ctx.proxies.get(&self.ctx.instance);
        // Handshake concurrency limit: hold a slot for connect + handshake only; the wait for a
        // slot is outside `connect_timeout` so a queue of reconnects does not time out.
        let opening = async {
            let _slot = match &handshakes {
                Some(sem) => sem.acquire().await.ok(),
                None => None,
            };
            timeout(
                config.connect_timeout,
                Connection::open(
                    &config,
                    proxy.as_ref(),
                    noise,
                    ephemeral,
                    routing.as_deref(),
                    &client_payload,
                    now_unix(),
                ),
            )
            .await
        };
        tokio::pin!(opening);
        // Commands still work while the handshake runs (a stop must not wait for it).
        let opened = loop {
            tokio::select! {
                r = &mut opening => break r,
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Outcome::Exit(None) };
                    match self.offline_command(cmd) {
                        None | Some(Outcome::ReconnectNow) => {}
                        Some(outcome) => return outcome,
                    }
                }
            }
        };
        let mut conn = match opened {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Outcome::Retry {
                    status: 408,
                    reason: format!("connect failed: {e}"),
                    penalty: 0,
                };
            }
            Err(_) => {
                return Outcome::Retry {
                    status: 408,
                    reason: "connect timed out".into(),
                    penalty: 0,
                };
            }
        };
        let started = Instant::now();
        let mut cx = Conn {
            keepalive: Keepalive::new(config.keepalive_interval, config.keepalive_timeout, started),
            pending: HashMap::new(),
            qr: None,
            opened_at: None,
            registration,
            pair_device_seen: false,
            active_sent: false,
            digest_reupload_done: false,
            deferred: VecDeque::new(),
            derivation: None,
        };
        let outcome = self.serve(&mut conn, &mut cx, commands).await;
        let uptime = cx.opened_at.map_or(Duration::ZERO, |t| t.elapsed());
        self.backoff.on_connection_closed(&config.backoff, uptime);
        for (_, (_, pending)) in cx.pending.drain() {
            if let Pending::LinkHello(reply) = pending {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
        }
        if let Some(Derivation::Hello { reply, .. }) = cx.derivation.take() {
            let _ = reply.send(Err(EngineError::NotConnected));
        }
        if !matches!(outcome, Outcome::ReconnectNow) {
            // A phone-code flow does not survive its connection (the server forgets the ref).
            self.link = None;
        }
        conn.close().await;
        outcome
    }

    pub(super) async fn serve(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Outcome {
        loop {
            while let Some(node) = cx.deferred.pop_front() {
                if let Step::End(outcome) = self.handle_node(conn, cx, node).await {
                    return outcome;
                }
            }
            let keepalive_at = cx.keepalive.deadline();
            let qr_at = cx.qr.as_ref().map(|q| q.deadline);
            let iq_at = cx.pending.values().map(|(t, _)| *t).min();
            let step = tokio::select! {
                message = conn.next_message() => self.on_inbound(conn, cx, message).await,
                cmd = commands.recv() => {
                    match cmd {
                        None => Step::End(Outcome::Exit(None)),
                        Some(cmd) => self.connected_command(conn, cx, cmd).await,
                    }
                }
                _ = sleep_until(keepalive_at) => {
                    match cx.keepalive.poll(Instant::now()) {
                        KeepaliveAction::Wait => Step::Continue,
                        KeepaliveAction::SendPing => {
                            let id = self.next_iq_id();
                            let node = keys::ping_iq(&id);
                            self.track(cx, id, Pending::Ping);
                            self.send(conn, &node).await
                        }
                        // The deadline can pass while this task was not reading (a long handler,
                        // a starved runtime): a message waiting in the socket means the server
                        // is alive, so look once before giving up.
                        KeepaliveAction::Dead => match conn.next_message().now_or_never() {
                            Some(message) => self.on_inbound(conn, cx, message).await,
                            None => Step::End(Outcome::Retry {
                                status: 408,
                                reason: "keepalive: no data from the server".into(),
                                penalty: 0,
                            }),
                        },
                    }
                }
                _ = sleep_until(qr_at.unwrap_or(keepalive_at)), if qr_at.is_some() => {
                    self.show_next_qr(cx)
                }
                _ = sleep_until(iq_at.unwrap_or(keepalive_at)), if iq_at.is_some() => {
                    self.expire_iqs(cx);
                    Step::Continue
                }
                done = derived(&mut cx.derivation), if cx.derivation.is_some() => {
                    self.on_derived(conn, cx, done).await
                }
            };
            if let Step::End(outcome) = step {
                return outcome;
            }
        }
    }

    /// One WebSocket message in: the nodes it completes, in order.
    async fn on_inbound(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        message: Option<Result<Message, tungstenite::Error>>,
    ) -> Step {
        match conn.decode(message) {
            Ok(nodes) => {
                cx.keepalive.on_inbound(Instant::now());
                for node in nodes {
                    if let Step::End(outcome) = self.handle_node(conn, cx, node).await {
                        return Step::End(outcome);
                    }
                }
                Step::Continue
            }
            Err(e) => Step::End(lost(e)),
        }
    }

    pub(super) fn track(&self, cx: &mut Conn, id: String, pending: Pending) {
        let deadline = Instant::now() + self.ctx.config.iq_timeout;
        cx.pending.insert(id, (deadline, pending));
    }

    pub(super) fn expire_iqs(&self, cx: &mut Conn) {
        let now = Instant::now();
        let expired: Vec<String> = cx
            .pending
            .iter()
            .filter(|(_, (t, _))| *t <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((_, pending)) = cx.pending.remove(&id) {
                tracing::warn!(instance = %self.ctx.instance, %id, ?pending, "IQ timed out");
                if let Pending::LinkHello(reply) = pending {
                    let _ = reply.send(Err(EngineError::Timeout));
                }
            }
        }
    }

    pub(super) async fn send(&self, conn: &mut Connection, node: &Node) -> Step {
        match conn.send(node).await {
            Ok(()) => Step::Continue,
            Err(e) => Step::End(lost(e)),
        }
    }

    pub(super) async fn on_success(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        node: &Node,
    ) -> Step {
        if cx.registration {
            tracing::warn!(instance = %self.ctx.instance, "<success> on a registration connection");
            return Step::Continue;
        }
        cx.opened_at = Some(Instant::now());
        if let (Some(lid), Some(m)) = (node.attr_jid("lid"), self.messenger.as_mut()) {
            m.set_own_lid(lid);
        }
        if let (Some(lid), Some(account)) = (node.attr_jid("lid"), self.creds.account.as_mut())
            && account.lid.is_none()
        {
            account.lid = Some(lid.to_non_ad().to_string());
            let _ = self
                .ctx
                .store
                .save_credentials(&self.ctx.device, &self.creds)
                .await;
        }
        self.ctx.status.send_modify(|s| s.last_error = None);
        self.set_state(ConnectionState::Open, STATUS_OK, None);
        let id = self.next_iq_id();
        self.track(cx, id.clone(), Pending::PreKeyCount);
        self.send(conn, &keys::prekey_count_iq(&id)).await
    }

    pub(super) async fn on_iq_response(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        pending: Pending,
        node: &Node,
    ) -> Step {
        let is_error = node.attr_str("type") == Some("error");
        match pending {
            Pending::Ping | Pending::Logout => Step::Continue,
            Pending::PreKeyCount => {
                let count = node
                    .child("count")
                    .and_then(|c| c.attr_str("value"))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                if count < self.ctx.config.prekey_min {
                    let batch = if count == 0 {
                        self.ctx.config.prekey_initial_batch
                    } else {
                        self.ctx.config.prekey_refill_batch
                    };
                    self.upload_prekeys(conn, cx, batch).await
                } else {
                    self.send_active(conn, cx).await
                }
            }
            Pending::PreKeyUpload => {
                if is_error {
                    tracing::warn!(instance = %self.ctx.instance, %node, "prekey upload refused");
                }
                self.send_active(conn, cx).await
            }
            Pending::Active => {
                if let Some(name) = self.creds.push_name.clone() {
                    let presence = Node::new("presence")
                        .attr("type", "available")
                        .attr("name", name);
                    if let Step::End(o) = self.send(conn, &presence).await {
                        return Step::End(o);
                    }
                }
                let id = self.next_iq_id();
                self.track(cx, id.clone(), Pending::Digest);
                self.send(conn, &keys::digest_iq(&id)).await
            }
            Pending::Digest => {
                let missing = is_error || node.child("digest").is_none();
                if missing && !cx.digest_reupload_done {
                    cx.digest_reupload_done = true;
                    return self
                        .upload_prekeys(conn, cx, self.ctx.config.prekey_refill_batch)
                        .await;
                }
                Step::Continue
            }
            Pending::LinkHello(reply) => {
                if is_error {
                    let (code, text) = iq_error_of(node);
                    self.link = None;
                    let _ = reply.send(Err(EngineError::Refused { code, text }));
                    return Step::Continue;
                }
                if let Some(link) = &self.link {
                    self.emit(EventKind::PairingCode {
                        code: link.code.clone(),
                    });
                    let _ = reply.send(Ok(link.code.clone()));
                }
                Step::Continue
            }
            Pending::LinkFinish => {
                if is_error {
                    let (code, text) = iq_error_of(node);
                    self.emit(EventKind::PairingFailed {
                        reason: format!("companion_finish refused: {code} {text}"),
                    });
                }
                Step::Continue
            }
        }
    }

    pub(super) async fn send_active(&mut self, conn: &mut Connection, cx: &mut Conn) -> Step {
        if cx.active_sent {
            return Step::Continue;
        }
        cx.active_sent = true;
        let id = self.next_iq_id();
        self.track(cx, id.clone(), Pending::Active);
        self.send(conn, &keys::active_iq(&id)).await
    }

    /// Generates `count` prekeys after the store's highest id, stores them, then uploads them.
    pub(super) async fn upload_prekeys(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        count: u32,
    ) -> Step {
        let store = &self.ctx.store;
        let max = match store.max_prekey_id(&self.ctx.device).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(instance = %self.ctx.instance, "prekey max id: {e}");
                return self.send_active(conn, cx).await;
            }
        };
        let prekeys = keys::new_prekeys(&mut self.rng, max, count);
        if let Err(e) = store.insert_prekeys(&self.ctx.device, &prekeys).await {
            tracing::error!(instance = %self.ctx.instance, "storing prekeys: {e}");
            return self.send_active(conn, cx).await;
        }
        let id = self.next_iq_id();
        let node = keys::prekey_upload_iq(&id, &self.creds, &prekeys);
        self.track(cx, id, Pending::PreKeyUpload);
        self.send(conn, &node).await
    }
}

pub(super) fn iq_error_of(node: &Node) -> (u16, String) {
    let err = node.child("error");
    let code = err
        .and_then(|e| e.attr_str("code"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(500);
    let text = err
        .and_then(|e| e.attr_str("text"))
        .unwrap_or_default()
        .to_owned();
    (code, text)
}

/// `(user as integer, device)` of a stored device JID.
pub(super) fn login_identity(device_jid: &str) -> Option<(u64, u32)> {
    let jid: Jid = device_jid.parse().ok()?;
    Some((jid.user.parse().ok()?, u32::from(jid.device)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_identity_parses_device_jids() {
        assert_eq!(
            login_identity("15550000001:3@s.whatsapp.net"),
            Some((15550000001, 3))
        );
        assert_eq!(login_identity("abc:3@s.whatsapp.net"), None);
        assert_eq!(login_identity("garbage"), None);
    }
}
