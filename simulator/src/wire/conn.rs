//! `WireConn`: one connection's protocol state machine (sans-IO, driven by the connection task).
//!
//! ```text
//! Hello ─ClientHello→ Finish ─ClientFinish+ClientPayload→ Registering (pair-device, pairing, 515)
//!                                                       └→ LoggedIn (<success>, IQs, router)
//! ```

use bytes::BytesMut;
use prost::Message;
use tokio::sync::oneshot;
use zapin_protocol::binary::{self, Node};
use zapin_protocol::crypto::{KeyPair, PublicKey};
use zapin_protocol::frame::{FrameDecoder, encode_frame};
use zapin_protocol::jid::{Jid, Server};
use zapin_protocol::noise::{ServerAwaitingClientFinish, ServerHandshake, Transport};
use zapin_protocol::proto::wa::ClientPayload;

use super::iq::{self, Asker, IqOutcome};
use super::link_code;
use super::nodes::{
    child_bytes, child_key, iq_error, iq_result, iq_result_with, server_jid, stream_device_removed,
    stream_error, stream_not_well_formed, stream_replaced,
};
use super::pairing::{self, PairSuccessData};
use crate::conn::handler::{CloseReason, ConnContext, ConnectionHandler, Outbox};
use crate::conn::{ConnCommand, PairAccepted, PairFailure};
use crate::intro::Intro;
use crate::router::{self, Origin};
use crate::state::{PairSecret, PairTicket, Registration, unix_now};

type PairReply = oneshot::Sender<Result<PairAccepted, PairFailure>>;

pub struct WireConn {
    ctx: ConnContext,
    cert_chain: std::sync::Arc<Vec<u8>>,
    frames: FrameDecoder,
    transport: Option<Transport>,
    phase: Phase,
    next_id: u64,
}

impl std::fmt::Debug for WireConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireConn")
            .field("id", &self.ctx.id)
            .finish_non_exhaustive()
    }
}

enum Phase {
    Hello,
    Finish(ServerAwaitingClientFinish),
    Registering(Box<Registering>),
    LoggedIn { phone: String, device: u16 },
    Closed,
}

struct Registering {
    registration: Registration,
    /// From `companion_hello` (§5.4 stage 1), waiting for the user to type the code.
    link_hello: Option<LinkHello>,
    /// The phone accepted the code: waiting for `companion_finish`.
    link_wait: Option<LinkWait>,
    /// `pair-success` sent: waiting for `pair-device-sign`.
    pair_wait: Option<PairWait>,
}

struct LinkHello {
    wrapped_ephemeral: Vec<u8>,
    pairing_ref: Vec<u8>,
}

struct LinkWait {
    ticket: Box<PairTicket>,
    reply: PairReply,
    primary_ephemeral: KeyPair,
    companion_ephemeral: PublicKey,
}

struct PairWait {
    iq_id: String,
    ticket: Box<PairTicket>,
    reply: PairReply,
    data: PairSuccessData,
}

impl WireConn {
    pub fn new(ctx: ConnContext, cert_chain: std::sync::Arc<Vec<u8>>) -> Self {
        Self {
            ctx,
            cert_chain,
            frames: FrameDecoder::new(),
            transport: None,
            phase: Phase::Hello,
            next_id: 0,
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}.{}", self.ctx.id.0, self.next_id)
    }

    fn now() -> u64 {
        unix_now().as_secs()
    }

    /// Frames a handshake payload as is.
    fn write_raw(&mut self, payload: &[u8], out: &mut Outbox) {
        let mut buf = BytesMut::new();
        match encode_frame(payload, &mut buf) {
            Ok(()) => out.write(buf.to_vec()),
            Err(e) => self.fail(out, format!("cannot frame: {e}")),
        }
    }

    /// Encrypts frame plaintext (flags byte + node) and frames it.
    fn write_plain(&mut self, plain: &[u8], out: &mut Outbox) {
        let Some(t) = self.transport.as_mut() else {
            return;
        };
        match t.encrypt(plain) {
            Ok(ct) => self.write_raw(&ct, out),
            Err(e) => self.fail(out, format!("cannot encrypt: {e}")),
        }
    }

    fn write_node(&mut self, node: &Node, out: &mut Outbox) {
        tracing::trace!(conn = %self.ctx.id, "→ {node:?}");
        match binary::pack(node) {
            Ok(plain) => self.write_plain(&plain, out),
            Err(e) => tracing::warn!(conn = %self.ctx.id, "cannot encode {}: {e}", node.tag),
        }
    }

    fn fail(&mut self, out: &mut Outbox, why: String) {
        tracing::info!(conn = %self.ctx.id, "closing: {why}");
        self.phase = Phase::Closed;
        out.close(CloseReason::Protocol(why));
    }

    fn end(&mut self, node: &Node, why: &str, out: &mut Outbox) {
        self.write_node(node, out);
        self.phase = Phase::Closed;
        out.close(CloseReason::EndOfStream(why.to_string()));
    }

    fn on_frame(&mut self, frame: &[u8], out: &mut Outbox) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Hello => {
                let ephemeral = self
                    .ctx
                    .sim
                    .state()
                    .key_source()
                    .key_pair(&format!("noise-ephemeral/{}", self.ctx.id.0));
                let keys = self.ctx.sim.state().server_keys();
                let hs = ServerHandshake::new(
                    keys.server_static,
                    ephemeral,
                    self.cert_chain.as_ref().clone(),
                );
                match hs.read_client_hello(frame) {
                    Ok((hello, next)) => {
                        self.write_raw(&hello, out);
                        self.phase = Phase::Finish(next);
                    }
                    Err(e) => self.fail(out, format!("ClientHello: {e}")),
                }
            }
            Phase::Finish(hs) => match hs.read_client_finish(frame) {
                Ok(outcome) => {
                    self.transport = Some(outcome.transport);
                    self.on_payload(outcome.client_static, &outcome.client_payload, out);
                }
                Err(e) => self.fail(out, format!("ClientFinish: {e}")),
            },
            Phase::Closed => {}
            phase => {
                self.phase = phase;
                let plain = match self.transport.as_mut().map(|t| t.decrypt(frame)) {
                    Some(Ok(p)) => p,
                    Some(Err(e)) => return self.fail(out, format!("transport frame: {e}")),
                    None => return self.fail(out, "no transport".to_string()),
                };
                match binary::unpack(&plain) {
                    Ok(node) => {
                        tracing::trace!(conn = %self.ctx.id, "← {node:?}");
                        self.on_node(node, out);
                    }
                    Err(e) => {
                        tracing::info!(conn = %self.ctx.id, "malformed node: {e}");
                        self.end(&stream_not_well_formed(), "xml-not-well-formed", out);
                    }
                }
            }
        }
    }

    fn on_payload(&mut self, client_static: PublicKey, payload: &[u8], out: &mut Outbox) {
        let payload = match ClientPayload::decode(payload) {
            Ok(p) => p,
            Err(e) => return self.fail(out, format!("ClientPayload: {e}")),
        };
        if let Some(data) = &payload.device_pairing_data {
            return match pairing::parse_registration(data, client_static) {
                Ok(reg) => self.start_registration(reg, out),
                Err(e) => self.fail(out, format!("registration: {e}")),
            };
        }
        match (payload.username, payload.device) {
            (Some(user), Some(device)) => self.login(user.to_string(), device, client_static, out),
            _ => self.fail(
                out,
                "ClientPayload is neither registration nor login".to_string(),
            ),
        }
    }

    fn start_registration(&mut self, registration: Registration, out: &mut Outbox) {
        let state = self.ctx.sim.state().clone();
        state.registration_started(self.ctx.id, registration.clone());
        let refs = match state.issue_refs(self.ctx.id) {
            Ok(r) => r,
            Err(e) => return self.fail(out, format!("refs: {e}")),
        };
        self.phase = Phase::Registering(Box::new(Registering {
            registration,
            link_hello: None,
            link_wait: None,
            pair_wait: None,
        }));
        let id = self.id("pd");
        let node = Node::new("iq")
            .attr("from", server_jid())
            .attr("type", "set")
            .attr("id", id)
            .attr("xmlns", "md")
            .children(vec![
                Node::new("pair-device").children(
                    refs.into_iter()
                        .map(|r| Node::new("ref").bytes(r.into_bytes()))
                        .collect(),
                ),
            ]);
        self.write_node(&node, out);
    }

    fn login(&mut self, phone: String, device: u32, client_static: PublicKey, out: &mut Outbox) {
        let device = u16::try_from(device).ok().filter(|d| *d != 0);
        let lid = device.and_then(|device| {
            self.ctx.sim.state().read(|s| {
                let a = s.accounts.get(&phone)?;
                let d = a.companions.get(&device)?;
                (d.noise_static == client_static).then(|| a.lid.clone())
            })
        });
        let (Some(device), Some(lid)) = (device, lid) else {
            tracing::info!(conn = %self.ctx.id, "login of unknown device {phone}:{device:?}: 401");
            return self.end(
                &Node::new("failure").attr("reason", "401"),
                "login refused (401)",
                out,
            );
        };
        let success = Node::new("success")
            .attr("t", Self::now().to_string())
            .attr("lid", Jid::with_device(lid, device, Server::Lid))
            .attr("props", "1")
            .attr("location", "sim");
        self.write_node(&success, out);
        self.ctx.sim.device_logged_in(self.ctx.id, &phone, device);
        // Everything the device has not acknowledged: what waited while it was offline and what
        // an earlier connection (closed, or being replaced right now) had in flight, oldest
        // first. It stays held, now in flight here, until the device confirms it.
        let queued = self.ctx.sim.state().hand_to(&phone, device, self.ctx.id);
        let count = queued.len();
        for stanza in queued {
            match binary::decode(&stanza.node) {
                Ok(node) => {
                    let node = node.attr("offline", "1");
                    self.write_node(&node, out);
                }
                Err(e) => {
                    tracing::warn!(conn = %self.ctx.id, "dropping an undecodable queued stanza: {e}")
                }
            }
        }
        self.write_node(
            &Node::new("ib").children(vec![Node::new("offline").attr("count", count.to_string())]),
            out,
        );
        tracing::info!(conn = %self.ctx.id, "{phone}:{device} logged in ({count} offline stanzas)");
        self.phase = Phase::LoggedIn { phone, device };
    }

    fn on_node(&mut self, node: Node, out: &mut Outbox) {
        let is_request =
            node.tag == "iq" && matches!(node.attr_str("type"), Some("get") | Some("set"));
        // Keepalive is answered in every phase (BL pings while showing QR codes).
        if is_request && node.attr_str("xmlns") == Some("w:p") {
            return self.write_node(&iq_result(&node), out);
        }
        match &self.phase {
            Phase::LoggedIn { phone, device } => {
                let (phone, device) = (phone.clone(), *device);
                self.logged_in_node(&phone, device, node, is_request, out);
            }
            Phase::Registering(_) => self.registering_node(node, is_request, out),
            _ => {}
        }
    }

    fn logged_in_node(
        &mut self,
        phone: &str,
        device: u16,
        node: Node,
        is_request: bool,
        out: &mut Outbox,
    ) {
        match &*node.tag {
            "ib" => return,
            "iq" if !is_request => return,
            "iq" => {
                let asker = Asker { phone, device };
                if let IqOutcome::Answer(nodes) = iq::answer(&self.ctx.sim, &asker, &node) {
                    for n in nodes {
                        self.write_node(&n, out);
                    }
                    return;
                }
            }
            _ => {}
        }
        let origin = Origin {
            conn: self.ctx.id,
            phone: phone.to_string(),
            device: u32::from(device),
        };
        for n in router::handle_stanza(&self.ctx.sim, &origin, node) {
            self.write_node(&n, out);
        }
    }

    fn registering_node(&mut self, node: Node, is_request: bool, out: &mut Outbox) {
        let Phase::Registering(reg) = &mut self.phase else {
            return;
        };
        if node.tag != "iq" {
            // `<ib>`, acks of our notifications: nothing to do before login.
            return;
        }
        let id = node.attr_str("id").unwrap_or_default();
        if !is_request {
            if reg.pair_wait.as_ref().is_some_and(|w| w.iq_id == id) {
                return self.on_pair_answer(node, out);
            }
            return; // the ack of pair-device
        }
        let Some(link) = node.child("link_code_companion_reg") else {
            return self.write_node(&iq_error(&node, 501, "feature-not-implemented"), out);
        };
        match link.attr_str("stage") {
            Some("companion_hello") => self.companion_hello(&node, out),
            Some("companion_finish") => self.companion_finish(&node, out),
            _ => self.write_node(&iq_error(&node, 400, "bad-request"), out),
        }
    }

    /// §5.4 stage 1: remember the wrapped ephemeral and offer the request to the control API.
    fn companion_hello(&mut self, iq: &Node, out: &mut Outbox) {
        let Some(link) = iq.child("link_code_companion_reg") else {
            return;
        };
        let phone = link.attr_jid("jid").map(|j| j.user);
        let wrapped = child_bytes(link, "link_code_pairing_wrapped_companion_ephemeral_pub")
            .filter(|b| b.len() == link_code::WRAPPED_KEY_LEN)
            .map(<[u8]>::to_vec);
        let auth_key = child_key(link, "companion_server_auth_key_pub");
        let display = link
            .child("companion_platform_display")
            .and_then(Node::content_str)
            .unwrap_or("Chrome (Linux)")
            .to_string();
        let Phase::Registering(reg) = &mut self.phase else {
            return;
        };
        let (Some(phone), Some(wrapped)) = (phone, wrapped) else {
            return self.write_node(&iq_error(iq, 400, "bad-request"), out);
        };
        if auth_key.is_some_and(|k| PublicKey(k) != reg.registration.noise_static) {
            return self.write_node(&iq_error(iq, 400, "bad-request"), out);
        }
        if !self.ctx.sim.state().account_exists(&phone) {
            return self.write_node(&iq_error(iq, 404, "item-not-found"), out);
        }
        let pairing_ref = self
            .ctx
            .sim
            .state()
            .key_source()
            .bytes(&format!("link-code-ref/{}/{}", self.ctx.id.0, self.next_id))[..20]
            .to_vec();
        reg.link_hello = Some(LinkHello {
            wrapped_ephemeral: wrapped,
            pairing_ref: pairing_ref.clone(),
        });
        self.ctx
            .sim
            .state()
            .link_code_requested(self.ctx.id, &phone, display);
        let reply = iq_result_with(
            iq,
            vec![
                Node::new("link_code_companion_reg")
                    .children(vec![Node::new("link_code_pairing_ref").bytes(pairing_ref)]),
            ],
        );
        self.write_node(&reply, out);
    }

    /// §5.4 stage 3: open the bundle, derive the adv secret, continue with `pair-success`.
    fn companion_finish(&mut self, iq: &Node, out: &mut Outbox) {
        let Phase::Registering(reg) = &mut self.phase else {
            return;
        };
        let Some(wait) = reg.link_wait.take() else {
            return self.write_node(&iq_error(iq, 400, "bad-request"), out);
        };
        let bundle = iq
            .child("link_code_companion_reg")
            .and_then(|l| child_bytes(l, "link_code_pairing_wrapped_key_bundle"))
            .unwrap_or_default();
        let opened = link_code::open_bundle(
            bundle,
            &wait.primary_ephemeral,
            &wait.companion_ephemeral,
            &wait.ticket.account_identity,
            &reg.registration.identity,
        );
        match opened {
            Ok(adv_secret) => {
                self.write_node(&iq_result(iq), out);
                self.send_pair_success(wait.ticket, wait.reply, &adv_secret, out);
            }
            Err(e) => {
                self.write_node(&iq_error(iq, 401, "not-authorized"), out);
                let _ = wait.reply.send(Err(PairFailure::Rejected(e.to_string())));
            }
        }
    }

    fn on_pair_command(&mut self, ticket: Box<PairTicket>, reply: PairReply, out: &mut Outbox) {
        let Phase::Registering(reg) = &mut self.phase else {
            let _ = reply.send(Err(PairFailure::ConnectionGone));
            return;
        };
        if reg.pair_wait.is_some() || reg.link_wait.is_some() {
            let _ = reply.send(Err(PairFailure::Rejected(
                "a pairing is already in progress".into(),
            )));
            return;
        }
        match ticket.secret.clone() {
            PairSecret::Qr { adv_secret } => {
                self.send_pair_success(ticket, reply, &adv_secret, out)
            }
            PairSecret::LinkCode { code } => {
                let Some(hello) = reg.link_hello.take() else {
                    let _ = reply.send(Err(PairFailure::Rejected(
                        "no companion_hello on this connection".into(),
                    )));
                    return;
                };
                let companion_ephemeral =
                    match link_code::unwrap_key(&code, &hello.wrapped_ephemeral) {
                        Ok(k) => k,
                        Err(e) => {
                            let _ = reply.send(Err(PairFailure::Rejected(e.to_string())));
                            return;
                        }
                    };
                let source = self.ctx.sim.state().key_source();
                let label = format!("link-code/{}/{}", ticket.device_jid, self.ctx.id.0);
                let primary_ephemeral = source.key_pair(&format!("{label}/ephemeral"));
                let salt = source.bytes(&format!("{label}/salt"));
                let mut iv = [0u8; 16];
                iv.copy_from_slice(&source.bytes(&format!("{label}/iv"))[..16]);
                let wrapped = link_code::wrap_key(&code, primary_ephemeral.public(), salt, iv);
                let identity = *ticket.account_identity.public();
                reg.link_wait = Some(LinkWait {
                    ticket,
                    reply,
                    primary_ephemeral,
                    companion_ephemeral,
                });
                let id = self.id("lc");
                let note = Node::new("notification")
                    .attr("from", server_jid())
                    .attr("type", "link_code_companion_reg")
                    .attr("id", id)
                    .attr("t", Self::now().to_string())
                    .children(vec![
                        Node::new("link_code_companion_reg")
                            .attr("stage", "primary_hello")
                            .children(vec![
                                Node::new("link_code_pairing_ref").bytes(hello.pairing_ref),
                                Node::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                                    .bytes(wrapped),
                                Node::new("primary_identity_pub").bytes(identity.0.to_vec()),
                            ]),
                    ]);
                self.write_node(&note, out);
            }
        }
    }

    fn send_pair_success(
        &mut self,
        ticket: Box<PairTicket>,
        reply: PairReply,
        adv_secret: &[u8; 32],
        out: &mut Outbox,
    ) {
        let source = self.ctx.sim.state().key_source();
        let data = pairing::build_pair_success(&ticket, adv_secret, &source, Self::now());
        let (Some(jid), Some(lid)) = (
            ticket.device_jid.parse::<Jid>().ok(),
            ticket.lid_jid.parse::<Jid>().ok(),
        ) else {
            let _ = reply.send(Err(PairFailure::Rejected(
                "bad device JIDs in ticket".into(),
            )));
            return;
        };
        let id = self.id("ps");
        let node = Node::new("iq")
            .attr("from", server_jid())
            .attr("type", "set")
            .attr("id", id.clone())
            .attr("xmlns", "md")
            .attr("t", Self::now().to_string())
            .children(vec![Node::new("pair-success").children(vec![
                Node::new("device-identity").bytes(data.container.clone()),
                Node::new("platform").attr("name", "android"),
                Node::new("device").attr("jid", jid).attr("lid", lid),
            ])]);
        if let Phase::Registering(reg) = &mut self.phase {
            reg.pair_wait = Some(PairWait {
                iq_id: id,
                ticket,
                reply,
                data,
            });
        }
        self.write_node(&node, out);
    }

    /// The companion answered `pair-success`: verify, store, answer the control API, 515.
    fn on_pair_answer(&mut self, node: Node, out: &mut Outbox) {
        let Phase::Registering(reg) = &mut self.phase else {
            return;
        };
        let Some(wait) = reg.pair_wait.take() else {
            return;
        };
        if node.attr_str("type") == Some("error") {
            let why = node
                .child("error")
                .map(|e| {
                    format!(
                        "{} {}",
                        e.attr_str("code").unwrap_or("?"),
                        e.attr_str("text").unwrap_or("")
                    )
                })
                .unwrap_or_else(|| "error".to_string());
            let _ = wait.reply.send(Err(PairFailure::Rejected(why)));
            return;
        }
        let signed = node
            .child("pair-device-sign")
            .and_then(|s| s.child("device-identity"))
            .and_then(|d| d.content_bytes())
            .map(|b| b.to_vec());
        let verified = match signed {
            Some(s) => pairing::verify_device_sign(&s, &wait.data.details, &wait.ticket)
                .map_err(|e| e.to_string()),
            None => Err("pair-device-sign lacks device-identity".to_string()),
        };
        match verified {
            Ok(identity) => {
                // Commit before answering and before the 515, so the reconnect finds the device.
                if let Err(e) = self
                    .ctx
                    .sim
                    .state()
                    .finish_pairing(&wait.ticket, identity.clone())
                {
                    let _ = wait.reply.send(Err(PairFailure::Rejected(e.to_string())));
                    return;
                }
                let _ = wait.reply.send(Ok(PairAccepted {
                    adv_signed_identity: identity,
                }));
                tracing::info!(conn = %self.ctx.id, device = %wait.ticket.device_jid, "paired; 515");
                self.end(
                    &stream_error(515),
                    "restart required after pairing (515)",
                    out,
                );
            }
            Err(why) => {
                tracing::info!(conn = %self.ctx.id, "pair-device-sign rejected: {why}");
                let _ = wait.reply.send(Err(PairFailure::Rejected(why)));
            }
        }
    }
}

impl ConnectionHandler for WireConn {
    fn on_intro(&mut self, _intro: &Intro, _out: &mut Outbox) {}

    fn on_bytes(&mut self, bytes: &[u8], out: &mut Outbox) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        self.frames.push(bytes);
        loop {
            match self.frames.next_frame() {
                Ok(Some(frame)) => self.on_frame(&frame, out),
                Ok(None) => break,
                Err(e) => {
                    self.fail(out, format!("frame: {e}"));
                    break;
                }
            }
            if out.close.is_some() {
                break;
            }
        }
    }

    fn on_command(&mut self, cmd: ConnCommand, out: &mut Outbox) {
        let has_transport = self.transport.is_some() && !matches!(self.phase, Phase::Closed);
        match cmd {
            ConnCommand::Pair { ticket, reply } => self.on_pair_command(ticket, reply, out),
            ConnCommand::StreamError { code } => {
                if has_transport {
                    self.end(&stream_error(code), &format!("stream error {code}"), out);
                } else {
                    out.close(CloseReason::EndOfStream(format!("stream error {code}")));
                }
            }
            ConnCommand::Replaced => {
                if has_transport {
                    self.end(&stream_replaced(), "replaced by a new login", out);
                } else {
                    out.close(CloseReason::EndOfStream("replaced".into()));
                }
            }
            ConnCommand::Unlinked => {
                if has_transport {
                    self.end(&stream_device_removed(), "device removed", out);
                } else {
                    out.close(CloseReason::EndOfStream("device removed".into()));
                }
            }
            ConnCommand::Deliver { node } => {
                if matches!(self.phase, Phase::LoggedIn { .. }) {
                    if tracing::enabled!(tracing::Level::TRACE)
                        && let Ok(n) = binary::decode(&node)
                    {
                        tracing::trace!(conn = %self.ctx.id, "→ (routed) {n:?}");
                    }
                    let mut plain = Vec::with_capacity(node.len() + 1);
                    plain.push(0);
                    plain.extend_from_slice(&node);
                    self.write_plain(&plain, out);
                } else {
                    tracing::warn!(conn = %self.ctx.id, "delivery to a connection that is not logged in dropped");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;
    use crate::conn::ConnId;
    use crate::sim::Sim;
    use crate::state::SimState;
    use zapin_protocol::noise::ClientHandshake;

    fn conn() -> (WireConn, Sim) {
        let config = SimConfig {
            seed: Some(1),
            ..SimConfig::default()
        };
        let sim = Sim::new(SimState::open(config.state_config()).unwrap(), config);
        let chain = std::sync::Arc::new(super::super::build_cert_chain(sim.state()));
        let ctx = ConnContext {
            id: ConnId(1),
            peer: ([127, 0, 0, 1], 1).into(),
            sim: sim.clone(),
        };
        (WireConn::new(ctx, chain), sim)
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_frame(payload, &mut b).unwrap();
        b.to_vec()
    }

    /// A tiny xorshift so the test is deterministic without another dependency.
    fn noise_bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                *seed as u8
            })
            .collect()
    }

    #[test]
    fn garbage_before_and_after_the_handshake_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        // Garbage instead of a ClientHello, split at every offset.
        for len in [0usize, 1, 3, 4, 40, 300] {
            let (mut c, _) = conn();
            let bytes = noise_bytes(&mut seed, len);
            let mut out = Outbox::default();
            for chunk in bytes.chunks(7) {
                c.on_bytes(chunk, &mut out);
            }
            c.on_bytes(&frame(&noise_bytes(&mut seed, 33)), &mut out);
            // Either closed or still waiting for the rest of a frame the garbage announced (the
            // idle timeout ends that); never a ServerHello.
            assert!(out.writes.is_empty(), "len {len}");
        }
        // A real handshake, then random plaintexts through the real transport.
        for round in 0..50 {
            let (mut c, sim) = conn();
            let hs = ClientHandshake::new(
                KeyPair::from_private([7; 32]),
                KeyPair::from_private([8; 32]),
                sim.state().root_public(),
            );
            let (hello, awaiting) = hs.client_hello();
            let mut out = Outbox::default();
            c.on_bytes(&frame(&hello), &mut out);
            let server_hello = out.writes.pop().unwrap();
            let ready = awaiting
                .read_server_hello(&server_hello[3..], unix_now().as_secs())
                .unwrap();
            let payload = ClientPayload {
                username: Some(15550000001),
                device: Some(1),
                ..Default::default()
            };
            let (finish, mut transport) = ready.client_finish(&payload.encode_to_vec()).unwrap();
            let mut out = Outbox::default();
            c.on_bytes(&frame(&finish), &mut out);
            // Unknown device: <failure 401> and close, whatever follows.
            assert!(out.close.is_some());
            let mut plain = noise_bytes(&mut seed, round * 3);
            if let Some(first) = plain.first_mut() {
                *first &= 0x02;
            }
            let ct = transport.encrypt(&plain).unwrap();
            c.on_bytes(&frame(&ct), &mut out);
        }
    }

    #[test]
    fn registration_without_fields_is_refused() {
        let (mut c, sim) = conn();
        let hs = ClientHandshake::new(
            KeyPair::from_private([7; 32]),
            KeyPair::from_private([8; 32]),
            sim.state().root_public(),
        );
        let (hello, awaiting) = hs.client_hello();
        let mut out = Outbox::default();
        c.on_bytes(&frame(&hello), &mut out);
        let server_hello = out.writes.pop().unwrap();
        let ready = awaiting
            .read_server_hello(&server_hello[3..], unix_now().as_secs())
            .unwrap();
        let reg = ClientPayload {
            device_pairing_data: Some(Default::default()),
            ..Default::default()
        };
        let (finish, _) = ready.client_finish(&reg.encode_to_vec()).unwrap();
        let mut out = Outbox::default();
        c.on_bytes(&frame(&finish), &mut out);
        // Registration data without fields is refused.
        assert!(
            matches!(out.close, Some(CloseReason::Protocol(ref s)) if s.contains("registration"))
        );
    }
}
