//! Server nodes: dispatch by tag, IQs addressed to us, messages, receipts and notifications.

use tokio::time::Instant;
use zapin_protocol::binary::Node;

use crate::disconnect::DisconnectReason;
use crate::events::EventKind;
use crate::messaging::{groups, presence, receipts};
use crate::pairing;
use crate::socket::Connection;

use super::exchange::ConnExchange;
use super::{Conn, Outcome, QrRotation, Session, Step, outcome_for};

impl Session {
    pub(super) async fn handle_node(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        node: Node,
    ) -> Step {
        match &*node.tag {
            "iq" => self.handle_iq(conn, cx, node).await,
            "success" => self.on_success(conn, cx, &node).await,
            "failure" => {
                let reason = node
                    .attr_str("reason")
                    .and_then(|r| r.parse::<u16>().ok())
                    .unwrap_or(500);
                Step::End(outcome_for(
                    DisconnectReason::from_failure(reason),
                    "failure",
                ))
            }
            "stream:error" => {
                let code = node.attr_str("code").and_then(|c| c.parse::<u16>().ok());
                let conflict = node.child("conflict").and_then(|c| c.attr_str("type"));
                let reason = DisconnectReason::from_stream_error(code, conflict);
                Step::End(outcome_for(reason, "stream:error"))
            }
            "xmlstreamend" => Step::End(Outcome::Retry {
                status: 428,
                reason: "stream end".into(),
                penalty: 0,
            }),
            "notification" => self.on_notification(conn, cx, &node).await,
            "ib" => {
                if let Some(info) = node
                    .child("edge_routing")
                    .and_then(|e| e.child("routing_info"))
                    .and_then(Node::content_bytes)
                {
                    self.creds.routing_info = Some(info.to_vec());
                    if let Err(e) = self
                        .ctx
                        .store
                        .save_credentials(&self.ctx.device, &self.creds)
                        .await
                    {
                        tracing::warn!(instance = %self.ctx.instance, "saving routing info: {e}");
                    }
                }
                Step::Continue
            }
            "message" => self.on_message(conn, &node).await,
            "receipt" => self.on_receipt(conn, cx, &node).await,
            "ack" => {
                if let Some(ack) = receipts::ServerAck::parse(&node) {
                    if let Some(m) = self.messenger.as_mut() {
                        m.check_ack_phash(&ack);
                    }
                    self.emit(EventKind::MessageUpdate(ack.status_update()));
                }
                Step::Continue
            }
            "presence" => {
                if let Some(p) = presence::parse_presence(&node) {
                    self.emit(EventKind::Presence(p));
                }
                Step::Continue
            }
            "chatstate" => {
                if let Some(p) = presence::parse_chatstate(&node) {
                    self.emit(EventKind::Presence(p));
                }
                Step::Continue
            }
            // call: not surfaced yet.
            _ => Step::Continue,
        }
    }

    pub(super) async fn handle_iq(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        node: Node,
    ) -> Step {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        match node.attr_str("type") {
            Some("result") | Some("error") => {
                if let Some((_, pending)) = cx.pending.remove(&id) {
                    return self.on_iq_response(conn, cx, pending, &node).await;
                }
                Step::Continue
            }
            Some("set") => {
                if let Some(pd) = node.child("pair-device") {
                    let refs = pairing::pair_device_refs(pd);
                    let step = self.send(conn, &pairing::iq_result(&id)).await;
                    if matches!(step, Step::End(_)) {
                        return step;
                    }
                    cx.pair_device_seen = true;
                    cx.qr = Some(QrRotation {
                        refs: refs.into(),
                        first: true,
                        deadline: Instant::now(),
                    });
                    let step = self.show_next_qr(cx);
                    if matches!(step, Step::End(_)) {
                        return step;
                    }
                    if self.pending_code.is_some() {
                        return self.start_link_code(cx);
                    }
                    return Step::Continue;
                }
                if let Some(ps) = node.child("pair-success") {
                    return self.on_pair_success(conn, cx, &id, ps).await;
                }
                Step::Continue
            }
            Some("get") if node.attr_str("xmlns") == Some("urn:xmpp:ping") => {
                self.send(conn, &pairing::iq_result(&id)).await
            }
            _ => Step::Continue,
        }
    }

    pub(super) async fn on_message(&mut self, conn: &mut Connection, node: &Node) -> Step {
        let Some(messenger) = self.messenger.as_mut() else {
            return self.send(conn, &receipts::ack_for(node, None)).await;
        };
        match messenger.receive(node, &mut self.rng).await {
            Ok(received) => {
                for reply in &received.replies {
                    if let Step::End(o) = self.send(conn, reply).await {
                        return Step::End(o);
                    }
                }
                if received.message.is_some() {
                    crate::crashpoint::hit("receive.acked");
                }
                if let Some(message) = received.message {
                    let subject = if message.key.remote_jid.is_group() {
                        self.messenger
                            .as_mut()
                            .and_then(|m| m.cached_group_subject(&message.key.remote_jid))
                    } else {
                        None
                    };
                    let (chat, contact) = self.directory.observe(&message, subject.as_deref());
                    if let Some(chat) = chat {
                        self.emit(EventKind::Chats(vec![chat]));
                    }
                    if let Some(contact) = contact {
                        self.emit(EventKind::Contacts(vec![contact]));
                    }
                    self.emit(EventKind::MessageUpsert(Box::new(message)));
                }
                Step::Continue
            }
            Err(e) => {
                // Nothing acked: the server redelivers.
                tracing::error!(instance = %self.ctx.instance, "receiving a message failed: {e}");
                Step::Continue
            }
        }
    }

    pub(super) async fn on_receipt(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        node: &Node,
    ) -> Step {
        let Some(messenger) = self.messenger.as_mut() else {
            return self.send(conn, &receipts::ack_for(node, None)).await;
        };
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        match messenger
            .handle_receipt(&mut exchange, node, &mut self.rng)
            .await
        {
            Ok(outcome) => {
                for reply in &outcome.replies {
                    if let Step::End(o) = self.send(conn, reply).await {
                        return Step::End(o);
                    }
                }
                if let Some(e) = outcome.retry_error {
                    tracing::warn!(instance = %self.ctx.instance, "retry receipt not answered: {e}");
                }
                for status in outcome.statuses {
                    self.emit(EventKind::MessageUpdate(status));
                }
                Step::Continue
            }
            Err(e) => {
                tracing::error!(instance = %self.ctx.instance, "handling a receipt failed: {e}");
                Step::Continue
            }
        }
    }

    pub(super) async fn on_notification(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        node: &Node,
    ) -> Step {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let kind = node.attr_str("type").unwrap_or_default().to_owned();
        let mut ack = Node::new("ack")
            .attr("class", "notification")
            .attr("id", id)
            .attr("type", kind.clone());
        if let Some(from) = node.get_attr("from") {
            ack = ack.attr("to", from.clone());
        }
        if let Step::End(o) = self.send(conn, &ack).await {
            return Step::End(o);
        }
        match kind.as_str() {
            "link_code_companion_reg" => {
                if let Some(reg) = node.child("link_code_companion_reg")
                    && reg.attr_str("stage") == Some("primary_hello")
                {
                    return self.on_primary_hello(cx, reg);
                }
                Step::Continue
            }
            "devices" => {
                if let (Some(from), Some(m)) = (node.attr_jid("from"), self.messenger.as_mut()) {
                    m.invalidate_devices(&from);
                }
                Step::Continue
            }
            "picture" => {
                // A group's picture changed (a user's picture is not reported yet).
                if let Some(update) = groups::parse_notification(node) {
                    self.emit(EventKind::GroupUpdate(update));
                }
                Step::Continue
            }
            "w:gp2" => {
                if let (Some(from), Some(m)) = (node.attr_jid("from"), self.messenger.as_mut()) {
                    m.forget_group(&from);
                }
                if let Some(update) = groups::parse_notification(node) {
                    self.emit(EventKind::GroupUpdate(update));
                }
                Step::Continue
            }
            "encrypt" => {
                if let Some(count) = node
                    .child("count")
                    .and_then(|c| c.attr_str("value"))
                    .and_then(|v| v.parse::<u64>().ok())
                    && count < self.ctx.config.prekey_min
                {
                    return self
                        .upload_prekeys(conn, cx, self.ctx.config.prekey_refill_batch)
                        .await;
                }
                Step::Continue
            }
            _ => Step::Continue,
        }
    }
}
