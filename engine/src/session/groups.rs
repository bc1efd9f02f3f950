//! Group and account operations on the open connection ([`crate::SessionHandle::group`]): builds the IQ with
//! [`crate::messaging::group_admin`], waits for the answer, and forgets the group's cached
//! metadata after anything that may have changed it, so the next group send asks again.

use zapin_protocol::jid::Jid;

use crate::error::EngineError;
use crate::messaging::account::{self, AccountAnswer, AccountOp};
use crate::messaging::group_admin::{self as admin, GroupAnswer, GroupDetails, GroupOp};
use crate::messaging::{Exchange, MessagingError, ids};
use crate::socket::Connection;

use super::exchange::ConnExchange;
use super::{Conn, Session};

impl Session {
    /// One account IQ ([`crate::SessionHandle::account`]).
    pub(super) async fn account_op(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        op: AccountOp,
    ) -> Result<AccountAnswer, EngineError> {
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        let answer = exchange
            .query(account::request(&op))
            .await
            .map_err(MessagingError::from)?;
        Ok(account::parse(&op, &answer)?)
    }

    pub(super) async fn group_op(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        op: GroupOp,
    ) -> Result<GroupAnswer, EngineError> {
        if self.messenger.is_none() {
            return Err(EngineError::NotConnected);
        }
        let own_user = self
            .creds
            .account
            .as_ref()
            .and_then(|a| a.device_jid.parse::<Jid>().ok())
            .map(|j| j.user)
            .unwrap_or_default();
        let changed = op.group().cloned();
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        let answer = run(&mut exchange, op, &own_user).await;
        if let Some(m) = self.messenger.as_mut() {
            if let Some(group) = &changed {
                m.forget_group(group);
            }
            // What the server told about members feeds the PN → LID map, as group sends do.
            let groups: Vec<&GroupDetails> = match &answer {
                Ok(GroupAnswer::Group(g)) => vec![g.as_ref()],
                Ok(GroupAnswer::Groups(gs)) => gs.iter().collect(),
                _ => Vec::new(),
            };
            for g in groups {
                for p in &g.participants {
                    if let Some(lid) = &p.lid {
                        m.learn_lid(&p.jid, lid);
                    }
                    if let Some(pn) = &p.phone_number {
                        m.learn_lid(pn, &p.jid);
                    }
                }
            }
        }
        Ok(answer?)
    }
}

/// A fresh id for `create`'s `key` and a new description's `id`.
fn fresh_id(own_user: &str) -> String {
    ids::new_message_id(own_user).unwrap_or_else(|| format!("3EB0{:018X}", super::now_unix()))
}

async fn run<E: Exchange>(
    exchange: &mut E,
    op: GroupOp,
    own_user: &str,
) -> Result<GroupAnswer, MessagingError> {
    Ok(match op {
        GroupOp::Create {
            subject,
            participants,
        } => {
            let iq = admin::create_iq(&subject, &participants, &fresh_id(own_user));
            let answer = exchange.query(iq).await?;
            GroupAnswer::Group(Box::new(admin::parse_group_answer(&answer)?))
        }
        GroupOp::Metadata { group } => {
            let answer = exchange
                .query(crate::messaging::groups::metadata_query(&group))
                .await?;
            GroupAnswer::Group(Box::new(admin::parse_group_answer(&answer)?))
        }
        GroupOp::Participating => {
            let answer = exchange.query(admin::participating_iq()).await?;
            GroupAnswer::Groups(admin::parse_participating(&answer)?)
        }
        GroupOp::Participants {
            group,
            action,
            participants,
        } => {
            let answer = exchange
                .query(admin::participants_iq(&group, action, &participants))
                .await?;
            GroupAnswer::Participants(admin::parse_participants(&answer, action)?)
        }
        GroupOp::Subject { group, subject } => {
            done(exchange.query(admin::subject_iq(&group, &subject)).await?)?
        }
        GroupOp::Description { group, description } => {
            // The change names the description it replaces, as WhatsApp clients do.
            let current = exchange
                .query(crate::messaging::groups::metadata_query(&group))
                .await?;
            let prev = admin::parse_group_answer(&current)?.desc_id;
            let iq =
                admin::description_iq(&group, &description, &fresh_id(own_user), prev.as_deref());
            done(exchange.query(iq).await?)?
        }
        GroupOp::Picture { group, jpeg } => {
            done(exchange.query(admin::picture_iq(&group, jpeg)).await?)?
        }
        GroupOp::Setting { group, setting } => {
            done(exchange.query(admin::setting_iq(&group, setting)).await?)?
        }
        GroupOp::Ephemeral { group, expiration } => done(
            exchange
                .query(admin::ephemeral_iq(&group, expiration))
                .await?,
        )?,
        GroupOp::InviteCode { group } => {
            let answer = exchange.query(admin::invite_code_iq(&group, false)).await?;
            GroupAnswer::Code(admin::parse_invite_code(&answer)?)
        }
        GroupOp::RevokeInvite { group } => {
            let answer = exchange.query(admin::invite_code_iq(&group, true)).await?;
            GroupAnswer::Code(admin::parse_invite_code(&answer)?)
        }
        GroupOp::InviteInfo { code } => {
            let answer = exchange.query(admin::invite_iq(&code, false)).await?;
            GroupAnswer::Group(Box::new(admin::parse_group_answer(&answer)?))
        }
        GroupOp::AcceptInvite { code } => {
            let answer = exchange.query(admin::invite_iq(&code, true)).await?;
            GroupAnswer::Joined(admin::parse_joined(&answer)?)
        }
        GroupOp::Leave { group } => done(exchange.query(admin::leave_iq(&group)).await?)?,
    })
}

fn done(answer: zapin_protocol::binary::Node) -> Result<GroupAnswer, MessagingError> {
    crate::messaging::check_iq_result(&answer)?;
    Ok(GroupAnswer::Done)
}
