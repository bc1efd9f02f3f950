//! The connection lent to a messaging call for its IQs.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use zapin_protocol::binary::Node;

use crate::keepalive::Keepalive;
use crate::messaging::{Exchange, ExchangeError};
use crate::socket::Connection;

use super::Conn;

/// The actor's connection lent to a messaging call for the IQs it needs (usync, key fetches).
/// Nodes that arrive meanwhile are queued and handled after the call.
pub(super) struct ConnExchange<'a> {
    conn: &'a mut Connection,
    deferred: &'a mut VecDeque<Node>,
    keepalive: &'a mut Keepalive,
    counter: &'a mut u64,
    prefix: u32,
    timeout: Duration,
}

impl<'a> ConnExchange<'a> {
    /// Lends `conn` and the connection state an exchange needs (the deferred-node queue, the
    /// keepalive it resets); the IQ id counter and prefix stay the session's.
    pub(super) fn new(
        conn: &'a mut Connection,
        cx: &'a mut Conn,
        counter: &'a mut u64,
        prefix: u32,
        timeout: Duration,
    ) -> Self {
        ConnExchange {
            conn,
            deferred: &mut cx.deferred,
            keepalive: &mut cx.keepalive,
            counter,
            prefix,
            timeout,
        }
    }
}

impl Exchange for ConnExchange<'_> {
    async fn query(&mut self, iq: Node) -> Result<Node, ExchangeError> {
        *self.counter += 1;
        let id = format!("{:08x}.{}", self.prefix, self.counter);
        let iq = iq.attr("id", id.clone());
        self.conn
            .send(&iq)
            .await
            .map_err(|e| ExchangeError(e.to_string()))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.conn.next_message())
                .await
                .map_err(|_| ExchangeError(format!("no answer to IQ {id}")))?;
            let nodes = self
                .conn
                .decode(message)
                .map_err(|e| ExchangeError(e.to_string()))?;
            self.keepalive.on_inbound(Instant::now());
            let mut answer = None;
            for node in nodes {
                let is_answer = answer.is_none()
                    && node.tag == "iq"
                    && node.attr_str("id") == Some(id.as_str())
                    && matches!(node.attr_str("type"), Some("result") | Some("error"));
                if is_answer {
                    answer = Some(node);
                } else {
                    self.deferred.push_back(node);
                }
            }
            if let Some(answer) = answer {
                return Ok(answer);
            }
        }
    }
}
