//! Uploads and downloads over HTTP(S) (§8.3).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use zapin_protocol::media::{MEDIA_KEY_LEN, MediaDecryptor, MediaDigest, MediaEncryptor};

use super::MediaError;
use super::conn::MediaConn;
use super::spool::{CHUNK, Spooled};
use crate::tls::TlsTrust;

/// Where an uploaded blob now lives: what the message proto needs besides the key and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedBlob {
    pub url: String,
    pub direct_path: String,
}

/// Why one host's upload did not succeed.
enum Attempt {
    /// The host rejected our auth: a fresh `media_conn` may help.
    Unauthorized(String),
    Failed(String),
}

/// The HTTP client of media transfers: one connection pool, our rustls configuration.
#[derive(Debug, Clone)]
pub struct MediaHttp {
    client: reqwest::Client,
    scheme: &'static str,
}

impl MediaHttp {
    /// A client trusting `tls`, using `http://` hosts when `plain_http` (a `ws://` simulator),
    /// else `https://`.
    pub fn new(
        tls: &TlsTrust,
        plain_http: bool,
        connect_timeout: Duration,
    ) -> Result<Self, MediaError> {
        let rustls = tls
            .client_config()
            .map_err(|e| MediaError::Client(e.to_string()))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*rustls).clone())
            .connect_timeout(connect_timeout)
            // Between two reads of a body, not the whole transfer: large files take long.
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| MediaError::Client(e.to_string()))?;
        Ok(MediaHttp {
            client,
            scheme: if plain_http { "http" } else { "https" },
        })
    }

    /// Uploads `blob` to the first host of `conn` that takes it. A host that cannot be reached,
    /// answers 5xx or anything but 200 with a usable JSON is skipped for the next.
    /// `Err(Ok(reasons))` when every failure was an auth refusal (the caller refreshes
    /// `media_conn` and tries once more).
    pub(crate) async fn upload_once(
        &self,
        conn: &MediaConn,
        blob: &Spooled,
    ) -> Result<UploadedBlob, Result<Vec<String>, MediaError>> {
        let token = URL_SAFE_NO_PAD.encode(blob.digest.file_enc_sha256);
        let mms_type = blob.kind.mms_type();
        let mut reasons = Vec::new();
        let mut all_unauthorized = true;
        let hosts = conn
            .hosts
            .iter()
            .filter(|h| h.max_content_length.is_none_or(|max| blob.blob_len <= max));
        let mut tried = false;
        for host in hosts {
            tried = true;
            let url = format!(
                "{}://{}/mms/{mms_type}/{token}?auth={}&token={token}",
                self.scheme,
                host.hostname,
                urlencode(&conn.auth)
            );
            match self.post(&url, blob).await {
                Ok(done) => return Ok(done),
                Err(Attempt::Unauthorized(r)) => {
                    tracing::debug!(host = %host.hostname, "media upload refused: {r}");
                    reasons.push(format!("{}: {r}", host.hostname));
                }
                Err(Attempt::Failed(r)) => {
                    tracing::debug!(host = %host.hostname, "media upload failed: {r}");
                    all_unauthorized = false;
                    reasons.push(format!("{}: {r}", host.hostname));
                }
            }
        }
        if !tried {
            return Err(Err(MediaError::NoHost {
                size: blob.blob_len,
            }));
        }
        if all_unauthorized {
            Err(Ok(reasons))
        } else {
            Err(Err(MediaError::UploadFailed(reasons)))
        }
    }

    async fn post(&self, url: &str, blob: &Spooled) -> Result<UploadedBlob, Attempt> {
        let body = blob
            .reader()
            .await
            .map_err(|e| Attempt::Failed(e.to_string()))?;
        let resp = self
            .client
            .post(url)
            .header("Origin", "https://web.whatsapp.com")
            .header("Referer", "https://web.whatsapp.com/")
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", blob.blob_len.to_string())
            .body(reqwest::Body::from(body))
            .send()
            .await
            .map_err(|e| Attempt::Failed(transport_reason(&e)))?;
        let status = resp.status().as_u16();
        if matches!(status, 401 | 403) {
            return Err(Attempt::Unauthorized(format!("HTTP {status}")));
        }
        if status != 200 {
            return Err(Attempt::Failed(format!("HTTP {status}")));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| Attempt::Failed(transport_reason(&e)))?;
        parse_upload_answer(&body).map_err(Attempt::Failed)
    }

    /// Downloads `media` from its sources in turn (each `host` of `hosts` with the direct path,
    /// then the message's URL), checks MAC and hashes, and writes the plaintext to `out`.
    ///
    /// ⚠ Plaintext is written as it is decrypted; on `Err` whatever reached `out` is
    /// unauthenticated and must be discarded. A source that fails after writing has begun is
    /// not retried on the next (the writer already holds part of it).
    pub(crate) async fn download(
        &self,
        hosts: &[String],
        media: &super::MediaRef,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<MediaDigest, MediaError> {
        let mut sources = Vec::new();
        if let Some(path) = &media.direct_path {
            let sep = if path.contains('?') { '&' } else { '?' };
            let query = format!(
                "{sep}hash={}&mms-type={}&__wa-mms=",
                URL_SAFE_NO_PAD.encode(media.file_enc_sha256),
                media.kind.mms_type()
            );
            for host in hosts {
                sources.push(format!("{}://{host}{path}{query}", self.scheme));
            }
        }
        if let Some(url) = &media.url {
            sources.push(url.clone());
        }
        if sources.is_empty() {
            return Err(MediaError::NoSource);
        }
        let mut reasons = Vec::new();
        let mut gone = None;
        for url in &sources {
            let resp = match self.client.get(url).send().await {
                Ok(r) => r,
                Err(e) => {
                    reasons.push(transport_reason(&e));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if matches!(status, 404 | 410) {
                gone = Some(status);
                reasons.push(format!("HTTP {status}"));
                continue;
            }
            if status != 200 {
                reasons.push(format!("HTTP {status}"));
                continue;
            }
            return decrypt_stream(resp, media, out).await;
        }
        // Only "gone" everywhere is the media-retry case; any other failure may be transient.
        match gone {
            Some(status)
                if reasons
                    .iter()
                    .all(|r| r.starts_with("HTTP 404") || r.starts_with("HTTP 410")) =>
            {
                Err(MediaError::Gone { status })
            }
            _ => Err(MediaError::DownloadFailed(reasons)),
        }
    }
}

async fn decrypt_stream(
    resp: reqwest::Response,
    media: &super::MediaRef,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<MediaDigest, MediaError> {
    let max_blob = media.file_length.map(MediaEncryptor::blob_len);
    let mut dec = MediaDecryptor::new(&media.media_key, media.kind);
    let mut plain = Vec::with_capacity(CHUNK + 32);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| MediaError::DownloadFailed(vec![transport_reason(&e)]))?;
        if max_blob.is_some_and(|max| dec.blob_len() + chunk.len() as u64 > max) {
            return Err(MediaError::Oversized);
        }
        plain.clear();
        dec.update(&chunk, &mut plain);
        out.write_all(&plain).await?;
    }
    plain.clear();
    let digest = dec.finish_verified(&mut plain, &media.file_enc_sha256, &media.file_sha256)?;
    out.write_all(&plain).await?;
    out.flush().await?;
    if media
        .file_length
        .is_some_and(|len| len != digest.file_length)
    {
        return Err(MediaError::Crypto(
            zapin_protocol::media::MediaError::PlainHashMismatch,
        ));
    }
    Ok(digest)
}

/// `{url, direct_path}` from the upload answer (other fields are ignored).
fn parse_upload_answer(body: &[u8]) -> Result<UploadedBlob, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    let field = |name: &str| {
        v.get(name)
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("answer has no {name}"))
    };
    let direct_path = field("direct_path")?;
    if !direct_path.starts_with('/') {
        return Err("direct_path is not a path".into());
    }
    Ok(UploadedBlob {
        url: field("url")?,
        direct_path,
    })
}

/// The reason of a transport error without the URL (it carries the auth token).
fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "broken body"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(src) => format!("{kind}: {src}"),
        None => kind.to_owned(),
    }
}

/// Percent-encodes everything but the unreserved characters (auth tokens are base64, whose `+`,
/// `/` and `=` must not reach the query raw).
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Draws a fresh random media key.
pub(crate) fn random_media_key() -> Result<[u8; MEDIA_KEY_LEN], crate::EngineError> {
    let mut key = [0u8; MEDIA_KEY_LEN];
    getrandom::fill(&mut key).map_err(|_| crate::EngineError::Random)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_answer_needs_url_and_a_path() {
        let ok = parse_upload_answer(
            br#"{"url":"https://h/v/x?a=1","direct_path":"/v/x?a=1","handle":"h"}"#,
        )
        .unwrap();
        assert_eq!(ok.direct_path, "/v/x?a=1");
        assert!(parse_upload_answer(b"not json").is_err());
        assert!(parse_upload_answer(br#"{"url":"u"}"#).is_err());
        assert!(parse_upload_answer(br#"{"url":"u","direct_path":"v/x"}"#).is_err());
    }

    #[test]
    fn auth_is_percent_encoded() {
        assert_eq!(urlencode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
        assert_eq!(urlencode("Az09-_.~"), "Az09-_.~");
    }
}
