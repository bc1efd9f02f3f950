//! Proxies for an instance's WhatsApp socket: a TCP tunnel to the server opened through an HTTP
//! proxy (`CONNECT`, RFC 9110 §9.3.6, Basic credentials), a SOCKS5 proxy (RFC 1928, username and
//! password per RFC 1929) or a SOCKS4a proxy. TLS and the WebSocket then run inside the tunnel
//! as they would on a direct connection, so the proxy sees only the server's name and port.
//!
//! The proxies are kept per instance by the [`crate::SessionManager`] ([`ProxyTable`]) and read
//! when a session opens a connection: a change applies from the next connection on, as in
//! Evolution. Proxies that speak TLS themselves (`https`) are not supported: connecting through
//! one fails with [`ProxyError::Unsupported`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::InstanceId;

/// How to talk to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    Http,
    Https,
    Socks4,
    Socks5,
}

impl ProxyProtocol {
    /// Evolution's names: `http`, `https`, `socks4`, `socks5` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "http" => Self::Http,
            "https" => Self::Https,
            "socks4" => Self::Socks4,
            "socks5" => Self::Socks5,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Socks4 => "socks4",
            Self::Socks5 => "socks5",
        }
    }
}

/// One proxy. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub protocol: ProxyProtocol,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("protocol", &self.protocol)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy {0} unreachable: {1}")]
    Unreachable(String, std::io::Error),
    #[error("proxy connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the proxy refused the tunnel: {0}")]
    Refused(String),
    #[error("the proxy refused the credentials")]
    Auth,
    #[error("the proxy answered something else than its protocol: {0}")]
    Malformed(&'static str),
    #[error("{0}")]
    Unsupported(&'static str),
}

/// The proxy of each instance that has one. Read once per connection attempt (a cold path), so
/// a plain mutex is enough.
#[derive(Debug, Default)]
pub struct ProxyTable {
    proxies: Mutex<HashMap<InstanceId, ProxyConfig>>,
}

impl ProxyTable {
    pub fn get(&self, instance: &InstanceId) -> Option<ProxyConfig> {
        self.lock().get(instance).cloned()
    }

    pub fn set(&self, instance: InstanceId, proxy: Option<ProxyConfig>) {
        let mut map = self.lock();
        match proxy {
            Some(p) => {
                map.insert(instance, p);
            }
            None => {
                map.remove(&instance);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InstanceId, ProxyConfig>> {
        self.proxies
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The host and port a `ws://` / `wss://` URL connects to (80 / 443 by default).
pub fn server_address(ws_url: &str) -> Option<(String, u16)> {
    let uri: tokio_tungstenite::tungstenite::http::Uri = ws_url.parse().ok()?;
    let host = uri.host()?.trim_matches(['[', ']']).to_owned();
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("wss") | Some("https") => 443,
        _ => 80,
    });
    Some((host, port))
}

/// Whether `proxy` opens a tunnel to the server of `ws_url` (then closed): the check
/// `proxy/set` runs before it stores a proxy. The caller bounds it with a timeout.
pub async fn probe(proxy: &ProxyConfig, ws_url: &str) -> Result<(), ProxyError> {
    let (host, port) = server_address(ws_url).ok_or(ProxyError::Unsupported(
        "the WhatsApp server URL has no host",
    ))?;
    let stream = tunnel(proxy, &host, port).await?;
    drop(stream);
    Ok(())
}

/// The longest proxy answer header read before giving up (an HTTP proxy's status and headers).
const MAX_HTTP_ANSWER: usize = 16 * 1024;

/// Opens a TCP connection to `host:port` through `proxy`. The caller bounds it with a timeout.
pub async fn tunnel(proxy: &ProxyConfig, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
    if proxy.protocol == ProxyProtocol::Https {
        return Err(ProxyError::Unsupported(
            "https proxies (TLS to the proxy) are not supported; use http, socks4 or socks5",
        ));
    }
    let mut stream = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| ProxyError::Unreachable(format!("{}:{}", proxy.host, proxy.port), e))?;
    match proxy.protocol {
        ProxyProtocol::Http | ProxyProtocol::Https => {
            http_connect(&mut stream, proxy, host, port).await?
        }
        ProxyProtocol::Socks5 => socks5(&mut stream, proxy, host, port).await?,
        ProxyProtocol::Socks4 => socks4a(&mut stream, proxy, host, port).await?,
    }
    Ok(stream)
}

/// `host:port` as a request target: IPv6 literals in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn http_connect(
    stream: &mut TcpStream,
    proxy: &ProxyConfig,
    host: &str,
    port: u16,
) -> Result<(), ProxyError> {
    let target = authority(host, port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(user) = &proxy.username {
        let pass = proxy.password.as_deref().unwrap_or_default();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    // Byte by byte up to the blank line: nothing after it may be consumed, it belongs to the
    // tunnel (the server speaks only after our TLS hello, but a proxy may pipeline).
    let mut answer = Vec::with_capacity(256);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_HTTP_ANSWER {
            return Err(ProxyError::Malformed("HTTP answer headers too long"));
        }
        let byte = stream.read_u8().await?;
        answer.push(byte);
    }
    let status_line = answer
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(ProxyError::Malformed("no HTTP status line"));
    }
    match parts.next().and_then(|c| c.parse::<u16>().ok()) {
        Some(200..=299) => Ok(()),
        Some(407) => Err(ProxyError::Auth),
        Some(_) => Err(ProxyError::Refused(status_line)),
        None => Err(ProxyError::Malformed("no HTTP status code")),
    }
}

async fn socks5(
    stream: &mut TcpStream,
    proxy: &ProxyConfig,
    host: &str,
    port: u16,
) -> Result<(), ProxyError> {
    let creds = proxy
        .username
        .as_deref()
        .map(|u| (u, proxy.password.as_deref().unwrap_or_default()));
    // Methods: 0x00 no authentication, 0x02 username/password.
    let greeting: &[u8] = if creds.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    stream.write_all(greeting).await?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await?;
    if choice[0] != 5 {
        return Err(ProxyError::Malformed("not a SOCKS5 answer"));
    }
    match (choice[1], creds) {
        (0, _) => {}
        (2, Some((user, pass))) => {
            let (user, pass) = (user.as_bytes(), pass.as_bytes());
            let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(pass.len())) else {
                return Err(ProxyError::Unsupported(
                    "SOCKS5 usernames and passwords have at most 255 bytes",
                ));
            };
            let mut auth = vec![1, ulen];
            auth.extend_from_slice(user);
            auth.push(plen);
            auth.extend_from_slice(pass);
            stream.write_all(&auth).await?;
            let mut status = [0u8; 2];
            stream.read_exact(&mut status).await?;
            if status[1] != 0 {
                return Err(ProxyError::Auth);
            }
        }
        (0xFF, _) | (2, None) => return Err(ProxyError::Auth),
        _ => return Err(ProxyError::Malformed("SOCKS5 method not offered")),
    }
    let mut request = vec![5, 1, 0];
    match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            let name = host.as_bytes();
            let len = u8::try_from(name.len())
                .map_err(|_| ProxyError::Unsupported("SOCKS5 host names have at most 255 bytes"))?;
            request.push(3);
            request.push(len);
            request.extend_from_slice(name);
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(ProxyError::Malformed("not a SOCKS5 reply"));
    }
    if head[1] != 0 {
        return Err(ProxyError::Refused(format!(
            "SOCKS5 reply code {}",
            head[1]
        )));
    }
    // The bound address, which we do not need, then its port.
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => usize::from(stream.read_u8().await?),
        _ => return Err(ProxyError::Malformed("SOCKS5 address type")),
    };
    let mut rest = vec![0u8; skip + 2];
    stream.read_exact(&mut rest).await?;
    Ok(())
}

async fn socks4a(
    stream: &mut TcpStream,
    proxy: &ProxyConfig,
    host: &str,
    port: u16,
) -> Result<(), ProxyError> {
    let mut request = vec![4, 1];
    request.extend_from_slice(&port.to_be_bytes());
    let ip = host.parse::<std::net::Ipv4Addr>().ok();
    // SOCKS4a: 0.0.0.1 and the name after the user id lets the proxy resolve it.
    request.extend_from_slice(&ip.map_or([0, 0, 0, 1], |ip| ip.octets()));
    request.extend_from_slice(proxy.username.as_deref().unwrap_or_default().as_bytes());
    request.push(0);
    if ip.is_none() {
        request.extend_from_slice(host.as_bytes());
        request.push(0);
    }
    stream.write_all(&request).await?;
    let mut reply = [0u8; 8];
    stream.read_exact(&mut reply).await?;
    match reply[1] {
        0x5A => Ok(()),
        0x5C | 0x5D => Err(ProxyError::Auth),
        code => Err(ProxyError::Refused(format!("SOCKS4 reply code {code:#x}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_and_redaction() {
        assert_eq!(ProxyProtocol::parse("SOCKS5"), Some(ProxyProtocol::Socks5));
        assert_eq!(ProxyProtocol::parse("ftp"), None);
        let p = ProxyConfig {
            protocol: ProxyProtocol::Http,
            host: "h".into(),
            port: 1,
            username: Some("u".into()),
            password: Some("hunter2".into()),
        };
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(authority("::1", 443), "[::1]:443");
        assert_eq!(
            server_address("wss://web.whatsapp.com/ws/chat"),
            Some(("web.whatsapp.com".into(), 443))
        );
        assert_eq!(
            server_address("ws://127.0.0.1:9/ws/chat"),
            Some(("127.0.0.1".into(), 9))
        );
    }
}
