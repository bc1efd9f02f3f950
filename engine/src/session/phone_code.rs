//! Phone-code (link code) pairing: `companion_hello` with our wrapped ephemeral key, then, once
//! the user typed the code on the phone, `primary_hello` in and `companion_finish` out.
//!
//! Each step derives a key with PBKDF2 (2^17 rounds), which takes milliseconds in a release build
//! and seconds in a debug build or on a loaded machine. It runs on the blocking pool as a
//! [`Derivation`] that the serve loop polls next to the socket, the keepalive and the QR timer:
//! an actor that awaited it in place would read and ping nothing meanwhile, and the keepalive
//! would then take that self-inflicted silence for a dead server.

use bytes::Bytes;
use rand_core::Rng;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};
use zapin_protocol::binary::Node;
use zapin_protocol::crypto::{KeyPair, PublicKey};
use zapin_protocol::jid::{Jid, Server};
use zapin_signal_store::Secret32;

use crate::error::EngineError;
use crate::events::EventKind;
use crate::keys;
use crate::link_code::{self, LinkCodeError};
use crate::socket::Connection;

use super::{Conn, LinkCode, Pending, Session, Step};

/// A link-code key derivation running on the blocking pool, with what its result is for.
pub(super) enum Derivation {
    /// Wrapping our ephemeral key for `companion_hello`; `reply` gets the code once the server
    /// accepted the hello.
    Hello {
        task: JoinHandle<Vec<u8>>,
        reply: oneshot::Sender<Result<String, EngineError>>,
    },
    /// Unwrapping the phone's ephemeral key from `primary_hello`.
    PrimaryHello {
        task: JoinHandle<Result<PublicKey, LinkCodeError>>,
        pairing_ref: Bytes,
        primary_identity: PublicKey,
    },
}

/// The result of a finished [`Derivation`].
pub(super) enum Derived {
    Hello(Result<Vec<u8>, JoinError>),
    PrimaryHello(Result<Result<PublicKey, LinkCodeError>, JoinError>),
}

/// Completes when the derivation in `slot` does, never when there is none. Cancel-safe: dropping
/// it leaves the task running and in `slot`.
pub(super) async fn derived(slot: &mut Option<Derivation>) -> Derived {
    match slot {
        Some(Derivation::Hello { task, .. }) => Derived::Hello(task.await),
        Some(Derivation::PrimaryHello { task, .. }) => Derived::PrimaryHello(task.await),
        None => std::future::pending().await,
    }
}

impl Session {
    /// Starts the phone-code flow for the queued request: a new code and ephemeral key, whose
    /// wrapping is derived in the background ([`Session::on_derived`] sends the hello).
    pub(super) fn start_link_code(&mut self, cx: &mut Conn) -> Step {
        let Some((phone, reply)) = self.pending_code.take() else {
            return Step::Continue;
        };
        if let Some(Derivation::Hello { reply: old, .. }) = cx.derivation.take() {
            // Superseded, like a request still queued (`queue_pairing_code`).
            let _ = old.send(Err(EngineError::SessionGone));
        }
        let mut five = [0u8; 5];
        self.rng.fill_bytes(&mut five);
        let code = link_code::code_from_bytes(five);
        let ephemeral = KeyPair::generate(&mut self.rng);
        let mut salt = [0u8; 32];
        let mut iv = [0u8; 16];
        self.rng.fill_bytes(&mut salt);
        self.rng.fill_bytes(&mut iv);
        let (code_c, public) = (code.clone(), *ephemeral.public());
        let task = tokio::task::spawn_blocking(move || {
            link_code::wrap_ephemeral(&code_c, salt, iv, &public)
        });
        // Set now: the QR rotation keeps the connection for a phone-code flow in progress.
        self.link = Some(LinkCode {
            code,
            phone,
            ephemeral,
        });
        cx.derivation = Some(Derivation::Hello { task, reply });
        Step::Continue
    }

    /// Takes a finished derivation and sends what it was for.
    pub(super) async fn on_derived(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        derived: Derived,
    ) -> Step {
        match (cx.derivation.take(), derived) {
            (Some(Derivation::Hello { reply, .. }), Derived::Hello(wrapped)) => {
                self.send_companion_hello(conn, cx, reply, wrapped).await
            }
            (
                Some(Derivation::PrimaryHello {
                    pairing_ref,
                    primary_identity,
                    ..
                }),
                Derived::PrimaryHello(unwrapped),
            ) => {
                self.send_companion_finish(conn, cx, pairing_ref, primary_identity, unwrapped)
                    .await
            }
            // `derived` only ever answers for the task in the slot.
            _ => Step::Continue,
        }
    }

    async fn send_companion_hello(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        reply: oneshot::Sender<Result<String, EngineError>>,
        wrapped: Result<Vec<u8>, JoinError>,
    ) -> Step {
        let wrapped = match wrapped {
            Ok(w) => w,
            Err(e) => {
                let e = EngineError::from(e);
                tracing::error!(instance = %self.ctx.instance, "wrapping the link code key: {e}");
                self.link = None;
                let _ = reply.send(Err(e));
                return Step::Continue;
            }
        };
        let Some(phone) = self.link.as_ref().map(|l| l.phone.clone()) else {
            let _ = reply.send(Err(EngineError::SessionGone));
            return Step::Continue;
        };
        let id = self.next_iq_id();
        let node = keys::iq(
            &id,
            "set",
            "md",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("jid", Jid::new(phone, Server::Pn))
                    .attr("stage", "companion_hello")
                    .attr("should_show_push_notification", "true")
                    .children(vec![
                        Node::new("link_code_pairing_wrapped_companion_ephemeral_pub")
                            .bytes(wrapped),
                        Node::new("companion_server_auth_key_pub")
                            .bytes(self.creds.noise_key.public.to_vec()),
                        Node::new("companion_platform_id").bytes(
                            self.ctx
                                .config
                                .browser
                                .platform_id()
                                .to_string()
                                .into_bytes(),
                        ),
                        Node::new("companion_platform_display")
                            .bytes(self.ctx.config.browser.display().into_bytes()),
                        Node::new("link_code_pairing_nonce").bytes(vec![0u8]),
                    ]),
            ],
        );
        self.track(cx, id, Pending::LinkHello(reply));
        self.send(conn, &node).await
    }

    /// `primary_hello`: the phone accepted the code; unwrap its ephemeral key in the background.
    pub(super) fn on_primary_hello(&mut self, cx: &mut Conn, reg: &Node) -> Step {
        let Some(link) = self.link.as_ref() else {
            return Step::Continue;
        };
        if matches!(cx.derivation, Some(Derivation::Hello { .. })) {
            tracing::warn!(instance = %self.ctx.instance, "primary_hello before companion_hello");
            return Step::Continue;
        }
        let pairing_ref = reg
            .child("link_code_pairing_ref")
            .and_then(Node::content_bytes)
            .cloned();
        let wrapped = reg
            .child("link_code_pairing_wrapped_primary_ephemeral_pub")
            .and_then(Node::content_bytes)
            .cloned();
        let primary_identity = reg
            .child("primary_identity_pub")
            .and_then(Node::content_bytes)
            .and_then(|b| PublicKey::from_slice(b).ok());
        let (Some(pairing_ref), Some(wrapped), Some(primary_identity)) =
            (pairing_ref, wrapped, primary_identity)
        else {
            tracing::warn!(instance = %self.ctx.instance, "malformed primary_hello");
            return Step::Continue;
        };
        let code = link.code.clone();
        let task =
            tokio::task::spawn_blocking(move || link_code::unwrap_ephemeral(&code, &wrapped));
        cx.derivation = Some(Derivation::PrimaryHello {
            task,
            pairing_ref,
            primary_identity,
        });
        Step::Continue
    }

    async fn send_companion_finish(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        pairing_ref: Bytes,
        primary_identity: PublicKey,
        unwrapped: Result<Result<PublicKey, LinkCodeError>, JoinError>,
    ) -> Step {
        let primary_ephemeral = match unwrapped {
            Ok(Ok(k)) => k,
            Ok(Err(_)) => {
                self.emit(EventKind::PairingFailed {
                    reason: "primary_hello could not be unwrapped".into(),
                });
                return Step::Continue;
            }
            Err(e) => {
                let e = EngineError::from(e);
                tracing::error!(instance = %self.ctx.instance, "unwrapping primary_hello: {e}");
                self.emit(EventKind::PairingFailed {
                    reason: e.to_string(),
                });
                return Step::Continue;
            }
        };
        let mut r = link_code::FinishRandom {
            salt: [0; 32],
            nonce: [0; 12],
            random: [0; 32],
        };
        self.rng.fill_bytes(&mut r.salt);
        self.rng.fill_bytes(&mut r.nonce);
        self.rng.fill_bytes(&mut r.random);
        let identity = keys::key_pair(&self.creds.identity_key);
        let Some(link) = self.link.as_ref() else {
            return Step::Continue;
        };
        let phone = link.phone.clone();
        let Ok((bundle, adv)) = link_code::companion_finish(
            &link.ephemeral,
            &primary_ephemeral,
            &identity,
            &primary_identity,
            &r,
        ) else {
            return Step::Continue;
        };
        // Stored with the rest of the credentials at pair-success.
        self.creds.adv_secret_key = Secret32::new(adv);
        let id = self.next_iq_id();
        let node = keys::iq(
            &id,
            "set",
            "md",
            vec![
                Node::new("link_code_companion_reg")
                    .attr("jid", Jid::new(phone, Server::Pn))
                    .attr("stage", "companion_finish")
                    .children(vec![
                        Node::new("link_code_pairing_wrapped_key_bundle").bytes(bundle),
                        Node::new("companion_identity_public")
                            .bytes(self.creds.identity_key.public.to_vec()),
                        Node::new("link_code_pairing_ref").bytes(pairing_ref),
                    ]),
            ],
        );
        self.track(cx, id, Pending::LinkFinish);
        self.send(conn, &node).await
    }
}
