//! The send routes' input parsers (compat-evolution `request::media` and `request::content`):
//! raw bytes → Express-style JSON → sendMedia / sendWhatsAppAudio / sendSticker / sendLocation /
//! sendContact (and every card's vCard) / sendReaction / sendPoll validators, plus the `media`
//! source parser, the MIME sniffer, the file-name lookup and the multipart field coercion on the
//! raw input. None may panic; every error envelope must serialize; every accepted base64 source
//! holds only base64 characters; a built vCard keeps its structure (no line break smuggled in
//! from a field).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_compat_evolution::request::{self as req, MediaSource, MediaType, parse_json_body};

fn check<T, E: serde::Serialize>(r: Result<T, E>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            assert!(serde_json::to_vec(&e).is_ok(), "error envelope must serialize");
            None
        }
    }
}

fn source(s: &str) {
    if let Some(MediaSource::Base64 { data, .. }) = req::parse_media_source(s) {
        assert!(
            data.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/-_=".contains(&b)),
            "{data:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    std::hint::black_box(req::sniff_mimetype(data));
    let text = String::from_utf8_lossy(data);
    source(&text);
    std::hint::black_box(req::mimetype_for_file_name(&text));
    std::hint::black_box(req::is_single_emoji(&text));
    for name in ["delay", "quoted", "mentioned", "ptt", "caption"] {
        std::hint::black_box(req::multipart_field(name, text.to_string()));
    }
    for t in [MediaType::Image, MediaType::Video, MediaType::Audio, MediaType::Document] {
        let given = (!text.is_empty()).then_some(text.as_ref());
        check(req::resolve_mimetype(t, given, given, data));
    }
    let Ok(body) = parse_json_body(data) else {
        return;
    };
    for has_file in [false, true] {
        if let Some(m) = check(req::validate_send_media(&body, has_file))
            && let Some(MediaSource::Url(u)) = &m.media
        {
            source(u);
        }
        check(req::validate_send_audio(&body, has_file));
        check(req::validate_send_sticker(&body, has_file));
    }
    check(req::validate_send_location(&body));
    check(req::validate_send_reaction(&body));
    check(req::validate_send_poll(&body));
    if let Some(c) = check(req::validate_send_contact(&body)) {
        for card in &c.contacts {
            let v = card.vcard();
            let lines: Vec<&str> = v.split('\n').collect();
            assert_eq!(lines.first(), Some(&"BEGIN:VCARD"));
            assert_eq!(lines.last(), Some(&"END:VCARD"));
            assert!(!v.contains('\r'));
            assert_eq!(lines.iter().filter(|l| l.starts_with("FN:")).count(), 1, "{v}");
            assert_eq!(lines.iter().filter(|l| l.starts_with("item1.TEL")).count(), 1, "{v}");
        }
    }
});
