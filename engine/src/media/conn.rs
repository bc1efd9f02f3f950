//! The `media_conn` IQ (§8.2): which hosts take uploads, with which auth token, for how long.

use std::time::{Duration, Instant};

use zapin_protocol::binary::Node;
use zapin_protocol::jid::{Jid, Server};

use super::MediaError;

/// One upload/download host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHost {
    /// `host` or `host:port`, no scheme.
    pub hostname: String,
    /// Largest blob this host takes, when it says.
    pub max_content_length: Option<u64>,
}

/// A `media_conn` answer and when it was fetched.
#[derive(Clone)]
pub struct MediaConn {
    /// Upload auth token (a credential: never logged).
    pub auth: String,
    pub hosts: Vec<MediaHost>,
    /// How long clients may reuse this answer.
    pub ttl: Duration,
    /// How long the server accepts `auth`.
    pub auth_ttl: Duration,
    pub fetched_at: Instant,
}

impl std::fmt::Debug for MediaConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaConn")
            .field("hosts", &self.hosts)
            .field("ttl", &self.ttl)
            .field("auth_ttl", &self.auth_ttl)
            .finish_non_exhaustive()
    }
}

impl MediaConn {
    /// `<iq to=s.whatsapp.net type=set xmlns=w:m><media_conn/></iq>`, without an id (the
    /// exchange assigns it).
    pub fn query() -> Node {
        Node::new("iq")
            .attr("to", Jid::server_only(Server::Pn))
            .attr("type", "set")
            .attr("xmlns", "w:m")
            .children(vec![Node::new("media_conn")])
    }

    /// Reads a `type=result` answer. `auth`, `ttl` and at least one `hostname` are required, as
    /// WhatsApp Web requires them; `auth_ttl` defaults to `ttl` (Baileys does not read it).
    pub fn parse(iq: &Node, now: Instant) -> Result<Self, MediaError> {
        let mc = iq
            .child("media_conn")
            .ok_or(MediaError::BadMediaConn("no media_conn child"))?;
        let auth = mc
            .attr_str("auth")
            .filter(|a| !a.is_empty())
            .ok_or(MediaError::BadMediaConn("no auth"))?
            .to_owned();
        let secs = |name| mc.attr_str(name).and_then(|v| v.parse::<u64>().ok());
        let ttl = Duration::from_secs(secs("ttl").ok_or(MediaError::BadMediaConn("no ttl"))?);
        let auth_ttl = secs("auth_ttl").map_or(ttl, Duration::from_secs);
        let hosts: Vec<MediaHost> = mc
            .child_nodes()
            .iter()
            .filter(|n| &*n.tag == "host")
            .filter_map(|h| {
                let hostname = h.attr_str("hostname").filter(|n| valid_hostname(n))?;
                Some(MediaHost {
                    hostname: hostname.to_owned(),
                    max_content_length: h
                        .attr_str("maxContentLengthBytes")
                        .and_then(|v| v.parse().ok()),
                })
            })
            .collect();
        if hosts.is_empty() {
            return Err(MediaError::BadMediaConn("no usable host"));
        }
        Ok(MediaConn {
            auth,
            hosts,
            ttl,
            auth_ttl,
            fetched_at: now,
        })
    }

    /// Whether this answer must be fetched again: its `ttl` or its auth's lifetime is over.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.fetched_at + self.ttl.min(self.auth_ttl)
    }
}

/// A host name as it goes into a URL: letters, digits, `.`, `-`, `:` (a port), and `[]` (IPv6).
/// Anything else (a `/`, `@`, a space) could redirect the request elsewhere.
fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(attrs: &[(&'static str, &str)], hosts: &[&str]) -> Node {
        let mut mc = Node::new("media_conn");
        for (k, v) in attrs {
            mc = mc.attr(*k, v.to_string());
        }
        let hosts = hosts
            .iter()
            .map(|h| {
                Node::new("host")
                    .attr("hostname", h.to_string())
                    .attr("maxContentLengthBytes", "1000")
            })
            .collect();
        Node::new("iq")
            .attr("type", "result")
            .children(vec![mc.children(hosts)])
    }

    #[test]
    fn parses_hosts_in_order_and_expires_on_the_shorter_ttl() {
        let now = Instant::now();
        let iq = answer(
            &[("auth", "tok"), ("ttl", "300"), ("auth_ttl", "100")],
            &["a.example", "b.example:8443"],
        );
        let mc = MediaConn::parse(&iq, now).unwrap();
        assert_eq!(mc.hosts.len(), 2);
        assert_eq!(mc.hosts[1].hostname, "b.example:8443");
        assert_eq!(mc.hosts[0].max_content_length, Some(1000));
        assert!(!mc.expired(now + Duration::from_secs(99)));
        assert!(mc.expired(now + Duration::from_secs(100)));
        assert!(!format!("{mc:?}").contains("tok"), "auth is not logged");
    }

    #[test]
    fn missing_parts_are_typed_errors() {
        let now = Instant::now();
        for (attrs, hosts) in [
            (&[("ttl", "1")][..], &["h"][..]),
            (&[("auth", "a")][..], &["h"][..]),
            (&[("auth", "a"), ("ttl", "1")][..], &[][..]),
            (&[("auth", "a"), ("ttl", "1")][..], &["evil.example/x?"][..]),
        ] {
            assert!(matches!(
                MediaConn::parse(&answer(attrs, hosts), now),
                Err(MediaError::BadMediaConn(_))
            ));
        }
        assert!(MediaConn::parse(&Node::new("iq"), now).is_err());
    }
}
