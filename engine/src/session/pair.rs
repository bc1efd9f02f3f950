//! Pairing a new device: pairing-code requests, QR rotation and pair-success (the end of both
//! ways to pair; the phone-code steps before it are in `phone_code`).

use std::time::SystemTime;

use rand_core::Rng;
use tokio::sync::oneshot;
use tokio::time::Instant;
use zapin_protocol::binary::Node;
use zapin_signal_store::{Account, Address, IdentityRecord, Trust};

use crate::error::EngineError;
use crate::events::EventKind;
use crate::keys;
use crate::pairing;
use crate::socket::Connection;

use super::{Conn, Outcome, Session, Step, make_messenger};

impl Session {
    /// Validates and queues a pairing-code request (answered here when invalid). Returns whether
    /// it was queued.
    pub(super) fn queue_pairing_code(
        &mut self,
        phone: String,
        reply: oneshot::Sender<Result<String, EngineError>>,
    ) -> bool {
        if self.paired() {
            let _ = reply.send(Err(EngineError::AlreadyPaired));
            return false;
        }
        if !valid_phone(&phone) {
            let _ = reply.send(Err(EngineError::InvalidPhone(phone)));
            return false;
        }
        if let Some((_, old)) = self.pending_code.take() {
            let _ = old.send(Err(EngineError::SessionGone));
        }
        self.pending_code = Some((phone, reply));
        true
    }

    /// Shows the next QR code of the current `pair-device`, or ends the connection when the refs
    /// are used up (reconnect for fresh ones) or the limit is reached (refuse).
    pub(super) fn show_next_qr(&mut self, cx: &mut Conn) -> Step {
        let Some(qr) = cx.qr.as_mut() else {
            return Step::Continue;
        };
        let Some(pairing_ref) = qr.refs.pop_front() else {
            cx.qr = None;
            if self.link.is_some() {
                // The phone-code flow keeps the connection (as WhatsApp Web does).
                return Step::Continue;
            }
            return Step::End(Outcome::ReconnectNow);
        };
        if self.qr_count >= self.ctx.config.qrcode_limit {
            return Step::End(Outcome::Refused);
        }
        let ttl = if qr.first {
            self.ctx.config.qr_first_ttl
        } else {
            self.ctx.config.qr_ttl
        };
        qr.first = false;
        qr.deadline = Instant::now() + ttl;
        self.qr_count += 1;
        let code = pairing::qr_string(
            &pairing_ref,
            &self.creds.noise_key.public,
            &self.creds.identity_key.public,
            self.creds.adv_secret_key.expose(),
            self.ctx.config.browser.platform_id(),
        );
        self.emit(EventKind::QrCode {
            code,
            index: self.qr_count,
            expires_at: SystemTime::now() + ttl,
        });
        Step::Continue
    }

    pub(super) async fn on_pair_success(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        id: &str,
        ps: &Node,
    ) -> Step {
        let identity = keys::key_pair(&self.creds.identity_key);
        let mut random = [0u8; 64];
        self.rng.fill_bytes(&mut random);
        let verified = pairing::verify_pair_success(
            ps,
            &identity,
            self.creds.adv_secret_key.expose(),
            &random,
        );
        let success = match verified {
            Ok(s) => s,
            Err(e) => {
                let (code, text) = e.code_and_text();
                tracing::warn!(instance = %self.ctx.instance, "pairing rejected: {e}");
                self.emit(EventKind::PairingFailed {
                    reason: e.to_string(),
                });
                return self.send(conn, &pairing::iq_error(id, code, text)).await;
            }
        };
        let mut creds = self.creds.clone();
        let device_jid = success.device_jid.to_string();
        let lid = success.lid.as_ref().map(|l| l.to_non_ad().to_string());
        creds.account = Some(Account {
            account_jid: success.device_jid.to_non_ad().to_string(),
            device_jid: device_jid.clone(),
            lid: lid.clone(),
            adv_signed_identity: success.signed_identity.clone(),
            business_name: success.business_name.clone(),
        });
        creds.platform = success.platform.clone();
        let stored = async {
            self.ctx
                .store
                .save_credentials(&self.ctx.device, &creds)
                .await?;
            if let Some(l) = &success.lid {
                self.ctx
                    .store
                    .save_identity(
                        &self.ctx.device,
                        &Address::new(l.user.clone(), 0),
                        &IdentityRecord {
                            key: success.account_identity,
                            trust: Trust::Trusted,
                        },
                    )
                    .await?;
            }
            Ok::<_, zapin_signal_store::StoreError>(())
        }
        .await;
        if let Err(e) = stored {
            tracing::error!(instance = %self.ctx.instance, "storing pairing failed: {e}");
            self.emit(EventKind::PairingFailed {
                reason: format!("store: {e}"),
            });
            return self
                .send(conn, &pairing::iq_error(id, 500, "internal-error"))
                .await;
        }
        self.creds = creds;
        self.messenger = make_messenger(&self.ctx, &self.creds);
        cx.qr = None;
        self.link = None;
        self.ctx
            .status
            .send_modify(|s| s.jid = Some(device_jid.clone()));
        let step = self
            .send(conn, &pairing::pair_device_sign_reply(id, &success))
            .await;
        self.emit(EventKind::Paired {
            jid: device_jid,
            lid,
            push_name: self.creds.push_name.clone(),
            platform: success.platform,
        });
        // The server now ends the stream with 515; the login connection follows.
        step
    }
}

pub(super) fn valid_phone(phone: &str) -> bool {
    (7..=15).contains(&phone.len()) && phone.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_digits_only() {
        assert!(valid_phone("15550000001"));
        assert!(!valid_phone("+15550000001"));
        assert!(!valid_phone("123"));
    }
}
