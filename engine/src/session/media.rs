//! The session's side of media: answer `media_conn` from the cache or one IQ, and lend the media
//! HTTP client. Transfers run in the caller's task (`crate::media::handle`).

use std::time::Instant;

use crate::error::EngineError;
use crate::media::{MediaConn, MediaHttp};
use crate::messaging::{Exchange, MessagingError, check_iq_result};
use crate::socket::Connection;

use super::exchange::ConnExchange;
use super::{Conn, Session};

/// Kept across reconnects: a `media_conn` answer stays valid for its `ttl` whatever the socket.
#[derive(Debug, Default)]
pub(super) struct MediaState {
    conn: Option<MediaConn>,
    /// Built on first use; one connection pool per session.
    http: Option<MediaHttp>,
}

impl Session {
    /// The cached `media_conn` unless it expired or `refresh` (then one `w:m` IQ), and the
    /// media HTTP client.
    pub(super) async fn media_endpoint(
        &mut self,
        conn: &mut Connection,
        cx: &mut Conn,
        refresh: bool,
    ) -> Result<(MediaConn, MediaHttp), EngineError> {
        let http = match &self.media.http {
            Some(h) => h.clone(),
            None => {
                let config = &self.ctx.config;
                let h = MediaHttp::new(
                    &config.tls,
                    config.ws_url.starts_with("ws://"),
                    config.connect_timeout,
                )?;
                self.media.http = Some(h.clone());
                h
            }
        };
        let cached = self
            .media
            .conn
            .as_ref()
            .filter(|c| !refresh && !c.expired(Instant::now()));
        if let Some(c) = cached {
            return Ok((c.clone(), http));
        }
        let mut exchange = ConnExchange::new(
            conn,
            cx,
            &mut self.iq_counter,
            self.iq_prefix,
            self.ctx.config.iq_timeout,
        );
        let answer = exchange
            .query(MediaConn::query())
            .await
            .map_err(MessagingError::from)?;
        check_iq_result(&answer)?;
        let fresh = MediaConn::parse(&answer, Instant::now())?;
        self.media.conn = Some(fresh.clone());
        Ok((fresh, http))
    }
}
