//! Fetching `media` URLs: http(s) only, streamed into a [`Sink`] under the size cap, with a
//! time limit, and — unless the operator allows it (`ZAPIN_ALLOW_PRIVATE_URLS=true`) — never
//! to loopback, private, link-local or unspecified addresses. The name is resolved here and
//! the connection pinned to the address that was checked, so a DNS answer cannot swap in a
//! private address between the check and the request; redirects are followed by hand (at most
//! [`MAX_REDIRECTS`]) and each hop is checked the same way.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;

use super::{MediaFile, MediaInputError, Sink};
use crate::http::door::is_private_ip;

/// Redirect hops followed.
pub const MAX_REDIRECTS: usize = 5;

/// How a fetch is bounded.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub max_bytes: u64,
    /// The whole fetch, headers and body.
    pub timeout: Duration,
    pub allow_private: bool,
}

/// Downloads `url` into a temporary file.
pub async fn fetch(url: &str, limits: FetchLimits) -> Result<MediaFile, MediaInputError> {
    tokio::time::timeout(limits.timeout, fetch_inner(url, limits))
        .await
        .map_err(|_| MediaInputError::Fetch("timed out".into()))?
}

async fn fetch_inner(url: &str, limits: FetchLimits) -> Result<MediaFile, MediaInputError> {
    let mut url =
        reqwest::Url::parse(url).map_err(|_| MediaInputError::Fetch("not a URL".into()))?;
    for _ in 0..=MAX_REDIRECTS {
        let client = pinned_client(&url, limits.allow_private).await?;
        let resp = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| MediaInputError::Fetch(reason(&e)))?;
        let status = resp.status();
        if status.is_redirection() {
            let next = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or(MediaInputError::Status(status.as_u16()))?;
            url = next;
            continue;
        }
        if !status.is_success() {
            return Err(MediaInputError::Status(status.as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > limits.max_bytes) {
            return Err(MediaInputError::TooLarge {
                max: limits.max_bytes,
            });
        }
        let mut sink = Sink::new(limits.max_bytes).await?;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| MediaInputError::Fetch(reason(&e)))?;
            sink.write(&chunk).await?;
        }
        return sink.finish().await;
    }
    Err(MediaInputError::Fetch("too many redirects".into()))
}

/// A client that connects `url`'s host only to an address that passed the check.
async fn pinned_client(
    url: &reqwest::Url,
    allow_private: bool,
) -> Result<reqwest::Client, MediaInputError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(MediaInputError::Fetch("only http and https URLs".into()));
    }
    let host = url
        .host_str()
        .ok_or_else(|| MediaInputError::Fetch("no host".into()))?
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare.as_str(), port))
        .await
        .map_err(|e| MediaInputError::Fetch(format!("cannot resolve {host}: {e}")))?
        .collect();
    let refused = || {
        MediaInputError::Refused(format!(
            "media URL host {host} is a loopback, private or link-local address (set ZAPIN_ALLOW_PRIVATE_URLS=true to allow)"
        ))
    };
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if !allow_private && (name == "localhost" || name.ends_with(".localhost")) {
        return Err(refused());
    }
    let addr = addrs
        .into_iter()
        .find(|a| allow_private || !is_private_ip(a.ip()))
        .ok_or_else(refused)?;
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .resolve(&bare, addr)
        .build()
        .map_err(|e| MediaInputError::Fetch(e.to_string()))
}

fn reason(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(src) => format!("{kind}: {src}"),
        None => kind.to_owned(),
    }
}
