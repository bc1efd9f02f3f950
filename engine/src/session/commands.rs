//! Commands from the handle, by connection phase: idle (not running), offline (backoff wait,
//! handshake) and connected.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use zapin_protocol::binary::Node;

use crate::backoff::Backoff;
use crate::command::Command;
use crate::error::EngineError;
use crate::events::{EventKind, LogoutReason};
use crate::keys;
use crate::messaging::account::{AccountAnswer, AccountOp};
use crate::messaging::{presence, receipts};
use crate::socket::Connection;

use super::send::parse_jid;
use super::{Conn, Outcome, Pending, Session, Step, now_unix, own_jid, step_result};

impl Session {
    /// A command while not connected. Returns `Some` when the actor must exit.
    pub(super) async fn idle_command(
        &mut self,
        cmd: Command,
    ) -> Option<Option<oneshot::Sender<Result<(), EngineError>>>> {
        match cmd {
            Command::Connect { reply } => {
                self.set_running(true);
                self.backoff = Backoff::default();
                let _ = reply.send(Ok(()));
            }
            Command::Stop { reply } => {
                let _ = reply.send(Ok(()));
            }
            Command::Logout { reply } => {
                let was_paired = self.paired();
                let result = self.clear_credentials().await;
                if result.is_ok() && was_paired {
                    self.emit(EventKind::LoggedOut {
                        reason: LogoutReason::UserInitiated,
                    });
                }
                let _ = reply.send(result);
            }
            Command::RequestPairingCode { phone, reply } => {
                if self.queue_pairing_code(phone, reply) {
                    self.set_running(true);
                }
            }
            Command::Shutdown { reply } => return Some(Some(reply)),
            other => self.messaging_command(other),
        }
        None
    }

    /// Messaging commands while no connection is open.
    pub(super) fn messaging_command(&mut self, cmd: Command) {
        match cmd {
            Command::SendMessage { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::SendPresence { reply, .. } | Command::MarkRead { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::CheckNumbers { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::GroupInfo { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::Group { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::Account { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::SubscribePresence { reply, .. } | Command::SendChatPresence { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::MediaConn { reply, .. } => {
                let _ = reply.send(Err(EngineError::NotConnected));
            }
            Command::InjectPanic => {
                panic!("injected panic (test hook)");
            }
            // Lifecycle commands never reach here.
            Command::Connect { reply }
            | Command::Stop { reply }
            | Command::Logout { reply }
            | Command::Shutdown { reply } => {
                let _ = reply.send(Err(EngineError::Unsupported("internal routing")));
            }
            Command::RequestPairingCode { reply, .. } => {
                let _ = reply.send(Err(EngineError::Unsupported("internal routing")));
            }
        }
    }

    /// A command while no connection is up (backoff wait, handshake). `Some` ends the wait;
    /// `Connect` answers `ReconnectNow`, which the handshake wait ignores.
    pub(super) fn offline_command(&mut self, cmd: Command) -> Option<Outcome> {
        match cmd {
            Command::Connect { reply } => {
                let _ = reply.send(Ok(()));
                Some(Outcome::ReconnectNow)
            }
            Command::Stop { reply } => Some(Outcome::UserStop(reply)),
            Command::Logout { reply } => Some(Outcome::UserLogout(reply)),
            Command::Shutdown { reply } => Some(Outcome::Exit(Some(reply))),
            Command::RequestPairingCode { phone, reply } => {
                self.queue_pairing_code(phone, reply);
                None
            }
            other => {
                self.messaging_command(other);
                None
            }
        }
    }

    /// Waits `delay` before a reconnect while still obeying commands.
    pub(super) async fn wait(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        delay: Duration,
    ) -> Outcome {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = sleep_until(until) => return Outcome::ReconnectNow,
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Outcome::Exit(None) };
                    if let Some(outcome) = self.offline_command(cmd) {
                        return outcome;
                    }
                }
            }
        }
    }

    pub(super) async fn connected_command(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        cmd: Command,
    ) -> Step {
        match cmd {
            Command::Connect { reply } => {
                let _ = reply.send(Ok(()));
                Step::Continue
            }
            Command::Stop { reply } => Step::End(Outcome::UserStop(reply)),
            Command::Shutdown { reply } => Step::End(Outcome::Exit(Some(reply))),
            Command::Logout { reply } => {
                if let Some(jid) = own_jid(&self.creds).filter(|_| cx.opened_at.is_some()) {
                    // Tell the server; the answer does not matter, the credentials go either way.
                    let id = self.next_iq_id();
                    let node = keys::iq(
                        &id,
                        "set",
                        "md",
                        vec![
                            Node::new("remove-companion-device")
                                .attr("jid", jid)
                                .attr("reason", "user_initiated"),
                        ],
                    );
                    self.track(cx, id, Pending::Logout);
                    let _ = conn.send(&node).await;
                }
                Step::End(Outcome::UserLogout(reply))
            }
            Command::RequestPairingCode { phone, reply } => {
                if self.queue_pairing_code(phone, reply) && cx.registration && cx.pair_device_seen {
                    return self.start_link_code(cx);
                }
                Step::Continue
            }
            Command::SendMessage { to, message, reply } => {
                let (result, step) = self.send_message(conn, cx, &to, message).await;
                let _ = reply.send(result);
                step
            }
            Command::SendPresence { available, reply } if cx.opened_at.is_some() => {
                let node = if available {
                    let name = self.creds.push_name.clone().unwrap_or_default();
                    presence::available(&name)
                } else {
                    presence::unavailable()
                };
                let step = self.send(conn, &node).await;
                let _ = reply.send(step_result(&step));
                step
            }
            Command::SubscribePresence { jid, reply } if cx.opened_at.is_some() => {
                let node = match parse_jid(&jid) {
                    Ok(j) if !j.is_group() && !j.is_broadcast() => presence::subscribe(&j),
                    _ => {
                        let _ = reply.send(Err(EngineError::InvalidJid(jid)));
                        return Step::Continue;
                    }
                };
                let step = self.send(conn, &node).await;
                let _ = reply.send(step_result(&step));
                step
            }
            Command::SendChatPresence { to, state, reply } if cx.opened_at.is_some() => {
                let chat = match parse_jid(&to) {
                    Ok(j) if !j.is_broadcast() => j,
                    _ => {
                        let _ = reply.send(Err(EngineError::InvalidJid(to)));
                        return Step::Continue;
                    }
                };
                let step = self.send(conn, &presence::chatstate(&chat, state)).await;
                let _ = reply.send(step_result(&step));
                step
            }
            Command::CheckNumbers { numbers, reply } if cx.opened_at.is_some() => {
                let result = self.check_numbers(conn, cx, &numbers).await;
                let _ = reply.send(result);
                Step::Continue
            }
            Command::GroupInfo { group, reply } if cx.opened_at.is_some() => {
                let result = self.group_info(conn, cx, &group).await;
                let _ = reply.send(result);
                Step::Continue
            }
            Command::Group { op, reply } if cx.opened_at.is_some() => {
                let result = self.group_op(conn, cx, op).await;
                let _ = reply.send(result);
                Step::Continue
            }
            Command::Account {
                op: AccountOp::SetPushName { name },
                reply,
            } if cx.opened_at.is_some() => {
                // Remembered first, so the next login and every reconnect announce it too.
                self.creds.push_name = Some(name.clone());
                if let Err(e) = self
                    .ctx
                    .store
                    .save_credentials(&self.ctx.device, &self.creds)
                    .await
                {
                    let _ = reply.send(Err(e.into()));
                    return Step::Continue;
                }
                let step = self.send(conn, &presence::available(&name)).await;
                let _ = reply.send(step_result(&step).map(|()| AccountAnswer::Done));
                step
            }
            Command::Account { op, reply } if cx.opened_at.is_some() => {
                let result = self.account_op(conn, cx, op).await;
                let _ = reply.send(result);
                Step::Continue
            }
            Command::MarkRead {
                chat,
                participant,
                ids,
                reply,
            } if cx.opened_at.is_some() => {
                let chat = match parse_jid(&chat) {
                    Ok(j) => j,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Step::Continue;
                    }
                };
                let participant = match participant.as_deref().map(parse_jid).transpose() {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Step::Continue;
                    }
                };
                let Some(node) =
                    receipts::read_receipt(&chat, participant.as_ref(), &ids, now_unix(), "read")
                else {
                    let _ = reply.send(Ok(()));
                    return Step::Continue;
                };
                let step = self.send(conn, &node).await;
                let _ = reply.send(step_result(&step));
                step
            }
            Command::MediaConn { refresh, reply } if cx.opened_at.is_some() => {
                let result = self.media_endpoint(conn, cx, refresh).await;
                let _ = reply.send(result);
                Step::Continue
            }
            other => {
                self.messaging_command(other);
                Step::Continue
            }
        }
    }
}
