//! `POST /message/sendMedia/{instance}` (mediaMessageSchema, §3.3) and what every media route
//! shares: where the file comes from (`media` as a URL, bare base64 or a `data:` URI), the
//! MIME type (given, from the file name, or sniffed from the first bytes) and whether it fits
//! the declared `mediatype`.
//!
//! Pure functions over the request: the gateway fetches and decodes; these decide.

use serde_json::Value;

use super::message::{NUMBER, Quoted, check_metadata, quoted};
use super::{get_i64, get_str, get_strings, run_schema};
use crate::error::ErrorEnvelope;
use crate::schema::{Rules, Ty};

/// `mediatype` of sendMedia.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Image,
    Video,
    Audio,
    Document,
}

impl MediaType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "audio" => Some(Self::Audio),
            "document" => Some(Self::Document),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
        }
    }

    /// Whether a file of MIME type `mime` may be sent as this type: images, videos and audio
    /// must be what they say (a client renders them); a document may be anything.
    pub fn accepts(self, mime: &str) -> bool {
        let top = mime.split('/').next().unwrap_or_default();
        match self {
            Self::Image => top.eq_ignore_ascii_case("image"),
            Self::Video => top.eq_ignore_ascii_case("video"),
            Self::Audio => {
                top.eq_ignore_ascii_case("audio") || mime.eq_ignore_ascii_case("application/ogg")
            }
            Self::Document => true,
        }
    }

    /// The file name Evolution gives a file sent without one.
    pub fn default_file_name(self) -> &'static str {
        match self {
            Self::Image => "image.jpg",
            Self::Video => "video.mp4",
            Self::Audio => "audio.mp3",
            Self::Document => "document",
        }
    }
}

/// What the routes' shared metadata asks for (contract §3.3 `Metadata`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendMeta {
    /// Milliseconds of "composing"/"recording" shown before the send.
    pub delay: Option<i64>,
    pub quoted: Option<Quoted>,
    pub mentioned: Vec<String>,
    pub mentions_every_one: bool,
}

impl SendMeta {
    /// Reads the metadata fields of a body the schema already checked.
    pub fn from_body(body: &Value) -> Self {
        SendMeta {
            delay: get_i64(body, "delay"),
            quoted: quoted(body),
            mentioned: get_strings(body, "mentioned").unwrap_or_default(),
            mentions_every_one: crate::client_tolerance::mentions_every_one(body).unwrap_or(false),
        }
    }
}

/// A validated sendMedia body (the file itself is still to be fetched or decoded).
#[derive(Debug, Clone, PartialEq)]
pub struct SendMedia {
    pub number: String,
    pub mediatype: MediaType,
    pub mimetype: Option<String>,
    /// `media`: absent when the file came as a multipart part.
    pub media: Option<MediaSource>,
    pub caption: Option<String>,
    pub file_name: Option<String>,
    pub meta: SendMeta,
}

const MEDIA_TYPES: &[&str] = &["image", "document", "video", "audio"];

/// Evolution's answer when `media` is neither a URL nor base64.
pub const NOT_URL_OR_BASE64: &str = "Owned media must be a url or base64";
/// Evolution's answer for a base64 document without `fileName`.
pub const BASE64_NEEDS_NAME: &str = "For base64 the file name must be informed.";

/// Validates a sendMedia body. `has_file` says a multipart `file` part came with it (then
/// `media` is not needed).
pub fn validate_send_media(body: &Value, has_file: bool) -> Result<SendMedia, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("number", Ty::String, Rules::described(NUMBER));
        c.prop(
            "mediatype",
            Ty::String,
            Rules {
                enum_values: Some(MEDIA_TYPES),
                ..Rules::NONE
            },
        );
        c.prop("mimetype", Ty::String, Rules::NONE);
        c.prop("media", Ty::String, Rules::NONE);
        c.prop("fileName", Ty::String, Rules::NONE);
        c.prop("caption", Ty::String, Rules::NONE);
        check_metadata(c);
        c.required(&["number", "mediatype"]);
    })?;
    let mediatype = get_str(body, "mediatype")
        .as_deref()
        .and_then(MediaType::parse)
        .ok_or_else(|| ErrorEnvelope::bad_request(["mediatype is invalid"]))?;
    let file_name = get_str(body, "fileName").filter(|n| !n.is_empty());
    let media = match get_str(body, "media").filter(|m| !m.trim().is_empty()) {
        None if has_file => None,
        None => return Err(ErrorEnvelope::bad_request([NOT_URL_OR_BASE64])),
        Some(m) => Some(
            parse_media_source(&m)
                .ok_or_else(|| ErrorEnvelope::bad_request([NOT_URL_OR_BASE64]))?,
        ),
    };
    if mediatype == MediaType::Document
        && file_name.is_none()
        && matches!(media, Some(MediaSource::Base64 { .. }))
    {
        return Err(ErrorEnvelope::bad_request([BASE64_NEEDS_NAME]));
    }
    let mimetype = get_str(body, "mimetype").filter(|m| !m.is_empty());
    if let Some(m) = &mimetype
        && (!is_mime_shaped(m) || !mediatype.accepts(m))
    {
        return Err(ErrorEnvelope::bad_request([format!(
            "mimetype {m:?} does not match mediatype {:?}",
            mediatype.as_str()
        )]));
    }
    Ok(SendMedia {
        number: get_str(body, "number").unwrap_or_default(),
        mediatype,
        mimetype,
        media,
        caption: get_str(body, "caption").filter(|c| !c.is_empty()),
        file_name,
        meta: SendMeta::from_body(body),
    })
}

/// `type/subtype` with token characters, optionally followed by `;` parameters.
fn is_mime_shaped(m: &str) -> bool {
    let essence = m.split(';').next().unwrap_or_default().trim();
    let mut parts = essence.split('/');
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if token(a) && token(b))
}

/// Where a file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// An `http(s)` URL, fetched by the gateway.
    Url(String),
    /// Base64 text (standard or URL-safe alphabet, padding optional, whitespace removed), with
    /// the MIME type a `data:` URI declared.
    Base64 {
        data: String,
        mimetype: Option<String>,
    },
}

/// Reads `media`: an `http(s)` URL, a `data:<mime>;base64,<data>` URI, or bare base64.
/// `None` when it is none of them (including base64 with characters outside the alphabet or
/// an impossible length). Base64 is only checked for shape here; decoding (streamed) may still
/// find it corrupt.
pub fn parse_media_source(s: &str) -> Option<MediaSource> {
    let t = s.trim();
    let lower_prefix = t.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    if lower_prefix.starts_with("http://") || lower_prefix.starts_with("https://") {
        let rest = t.split_once("://").map(|(_, r)| r).unwrap_or_default();
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || t.chars().any(char::is_whitespace) {
            return None;
        }
        return Some(MediaSource::Url(t.to_owned()));
    }
    let (data, mimetype) = match t.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("data:") => {
            let (header, data) = t[5..].split_once(',')?;
            let mut params = header.split(';');
            let mime = params.next().unwrap_or_default().trim();
            if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
                return None;
            }
            let mime = (!mime.is_empty() && is_mime_shaped(mime)).then(|| mime.to_owned());
            (data, mime)
        }
        _ => (t, None),
    };
    let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let body = cleaned.trim_end_matches('=');
    if body.is_empty()
        || cleaned.len() - body.len() > 2
        || body.len() % 4 == 1
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
    {
        return None;
    }
    Some(MediaSource::Base64 {
        data: cleaned,
        mimetype,
    })
}

/// The MIME type the first bytes of a file announce, for the formats WhatsApp media come in.
pub fn sniff_mimetype(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| {
        head.get(offset..offset + magic.len())
            .is_some_and(|h| h == magic)
    };
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Some("image/gif");
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return Some("image/webp");
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some("audio/wav");
    }
    if at(0, b"%PDF-") {
        return Some("application/pdf");
    }
    if at(0, b"OggS") {
        let opus = head.windows(8).take(80).any(|w| w == b"OpusHead");
        return Some(if opus {
            "audio/ogg; codecs=opus"
        } else {
            "audio/ogg"
        });
    }
    if at(0, b"fLaC") {
        return Some("audio/flac");
    }
    if at(0, b"#!AMR") {
        return Some("audio/amr");
    }
    if at(0, b"ID3") || (head.len() >= 2 && head[0] == 0xFF && (head[1] & 0xE6) == 0xE2) {
        return Some("audio/mpeg");
    }
    if at(0, &[0xFF, 0xF1]) || at(0, &[0xFF, 0xF9]) {
        return Some("audio/aac");
    }
    if at(4, b"ftyp") {
        return Some(match head.get(8..12) {
            Some(b"M4A ") | Some(b"M4B ") => "audio/mp4",
            Some(b"qt  ") => "video/quicktime",
            Some(b"3gp4") | Some(b"3gp5") | Some(b"3gp6") | Some(b"3g2a") => "video/3gpp",
            _ => "video/mp4",
        });
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some("video/webm");
    }
    if at(0, b"PK\x03\x04") {
        return Some("application/zip");
    }
    None
}

/// The MIME type of a file name's extension (Evolution's `mime-types` lookup, for the types
/// WhatsApp users send). `None` for no or an unknown extension.
pub fn mimetype_for_file_name(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" | "jpe" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "mp4" | "m4v" => "video/mp4",
        "3gp" => "video/3gpp",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "wav" => "audio/wav",
        "amr" => "audio/amr",
        "flac" => "audio/flac",
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "zip" => "application/zip",
        "rar" => "application/vnd.rar",
        "7z" => "application/x-7z-compressed",
        "apk" => "application/vnd.android.package-archive",
        _ => return None,
    })
}

/// The MIME type a file is sent with: the body's `mimetype`, else the `data:` URI's, else the
/// file name's, else the sniffed one, else `application/octet-stream`. Refused when the
/// result, or what the bytes show, does not fit `mediatype` (an image route sending a PDF).
pub fn resolve_mimetype(
    mediatype: MediaType,
    given: Option<&str>,
    file_name: Option<&str>,
    head: &[u8],
) -> Result<String, ErrorEnvelope> {
    let sniffed = sniff_mimetype(head);
    let chosen = given
        .map(str::to_owned)
        .or_else(|| {
            file_name
                .and_then(mimetype_for_file_name)
                .map(str::to_owned)
        })
        .or_else(|| sniffed.map(str::to_owned))
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let mismatch = |m: &str| {
        ErrorEnvelope::bad_request([format!(
            "the file is {m}, which does not match mediatype {:?}",
            mediatype.as_str()
        )])
    };
    if !mediatype.accepts(&chosen) {
        return Err(mismatch(&chosen));
    }
    if let Some(s) = sniffed
        && mediatype != MediaType::Document
        && !mediatype.accepts(s)
    {
        return Err(mismatch(s));
    }
    Ok(chosen)
}

/// Evolution's `sendMedia` also answers for these fields when sent as multipart strings.
pub fn multipart_field(name: &str, value: String) -> Value {
    match name {
        "delay" => value
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(value)),
        "mentionsEveryOne" | "everyOne" | "linkPreview" | "ptt" | "notConvertSticker"
        | "encoding" | "allContacts" => match value.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(value),
        },
        "quoted" | "mentioned" | "statusJidList" => {
            serde_json::from_str(&value).unwrap_or(Value::String(value))
        }
        _ => Value::String(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sources() {
        assert_eq!(
            parse_media_source(" https://cdn.example/a.png "),
            Some(MediaSource::Url("https://cdn.example/a.png".into()))
        );
        assert_eq!(parse_media_source("http://"), None);
        assert_eq!(parse_media_source("ftp://x/y"), None);
        assert_eq!(
            parse_media_source("data:image/png;base64,iVBO\nRw=="),
            Some(MediaSource::Base64 {
                data: "iVBORw==".into(),
                mimetype: Some("image/png".into())
            })
        );
        assert_eq!(
            parse_media_source("aGVsbG8"),
            Some(MediaSource::Base64 {
                data: "aGVsbG8".into(),
                mimetype: None
            })
        );
        for bad in [
            "",
            "not base64!",
            "a",
            "abcde",
            "data:text/plain,hi",
            "aGVsbG8===",
        ] {
            assert_eq!(parse_media_source(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sniffing_and_names() {
        assert_eq!(
            sniff_mimetype(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some("image/jpeg")
        );
        assert_eq!(sniff_mimetype(b"%PDF-1.7"), Some("application/pdf"));
        assert_eq!(sniff_mimetype(b"\0\0\0\x18ftypmp42\0\0"), Some("video/mp4"));
        assert_eq!(sniff_mimetype(b"hello"), None);
        assert_eq!(sniff_mimetype(b""), None);
        assert_eq!(mimetype_for_file_name("a.PDF"), Some("application/pdf"));
        assert_eq!(mimetype_for_file_name("noext"), None);
    }

    #[test]
    fn mimetype_must_fit_mediatype() {
        let png = b"\x89PNG\r\n\x1a\n....";
        assert_eq!(
            resolve_mimetype(MediaType::Image, None, None, png).unwrap(),
            "image/png"
        );
        assert!(resolve_mimetype(MediaType::Image, None, None, b"%PDF-1.4").is_err());
        assert!(resolve_mimetype(MediaType::Video, Some("image/png"), None, b"").is_err());
        assert_eq!(
            resolve_mimetype(MediaType::Document, None, Some("r.pdf"), png).unwrap(),
            "application/pdf"
        );
        assert_eq!(
            resolve_mimetype(MediaType::Document, None, None, b"xx").unwrap(),
            "application/octet-stream"
        );
    }

    #[test]
    fn validation() {
        let ok = validate_send_media(
            &json!({"number": "1", "mediatype": "image", "media": "aGVsbG8=", "caption": "c"}),
            false,
        )
        .unwrap();
        assert_eq!(ok.mediatype, MediaType::Image);
        assert_eq!(ok.caption.as_deref(), Some("c"));
        for bad in [
            json!({"number": "1", "mediatype": "image"}),
            json!({"number": "1", "mediatype": "image", "media": "%%%"}),
            json!({"number": "1", "mediatype": "gif", "media": "aGVsbG8="}),
            json!({"number": "1", "mediatype": "document", "media": "aGVsbG8="}),
            json!({"number": "1", "mediatype": "image", "media": "aGVsbG8=", "mimetype": "application/pdf"}),
            json!({"mediatype": "image", "media": "aGVsbG8="}),
        ] {
            assert!(validate_send_media(&bad, false).is_err(), "{bad}");
        }
        assert!(validate_send_media(&json!({"number": "1", "mediatype": "video"}), true).is_ok());
    }
}
