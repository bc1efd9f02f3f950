//! What the mock phone shows of a received message beyond its type and text: media fields and
//! the sha256 of the media it downloaded from the simulator's own store and decrypted, location,
//! contact, reaction and poll contents, edits and revokes (control API `GET …/messages`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zapin_protocol::media::{MediaKind, decrypt_verified};
use zapin_protocol::proto::wa;

use crate::sim::Sim;

/// The details of one received message; every field is optional and omitted when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, rename = "fileName", skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mimetype: Option<String>,
    /// Bytes of the decrypted media (its `fileLength` when it could not be fetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Hex SHA-256 of the media as downloaded and decrypted here; absent when the blob is not in
    /// the store or fails its MAC or hashes (then `media_error` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Audio and video length in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u32>,
    /// Audio: a voice note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptt: Option<bool>,
    /// Whether a JPEG thumbnail came with the media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// Location name, contact display name, poll question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcard: Option<String>,
    /// Every card of a `contactsArrayMessage`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vcards: Vec<String>,
    /// Reaction, edit, revoke: the id of the message they are about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Poll options, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selectable_count: Option<u32>,
}

/// The media fields common to every media message.
struct Media<'a> {
    kind: MediaKind,
    media_key: Option<&'a [u8]>,
    file_sha256: Option<&'a [u8]>,
    file_enc_sha256: Option<&'a [u8]>,
    file_length: Option<u64>,
}

/// Fills in `d` from `m` (already unwrapped to its content) and answers the type name and text
/// for the types [`super::receive`] does not name itself.
pub fn details(sim: &Sim, m: &wa::Message) -> ContentDetails {
    let mut d = ContentDetails::default();
    let media = if let Some(x) = m.image_message.as_deref() {
        d.caption = x.caption.clone();
        d.mimetype = x.mimetype.clone();
        d.width = x.width;
        d.height = x.height;
        d.thumbnail = x.jpeg_thumbnail.as_ref().map(|t| !t.is_empty());
        Some(Media {
            kind: MediaKind::Image,
            media_key: x.media_key.as_deref(),
            file_sha256: x.file_sha256.as_deref(),
            file_enc_sha256: x.file_enc_sha256.as_deref(),
            file_length: x.file_length,
        })
    } else if let Some(x) = m.video_message.as_deref().or(m.ptv_message.as_deref()) {
        d.caption = x.caption.clone();
        d.mimetype = x.mimetype.clone();
        d.width = x.width;
        d.height = x.height;
        d.seconds = x.seconds;
        d.thumbnail = x.jpeg_thumbnail.as_ref().map(|t| !t.is_empty());
        Some(Media {
            kind: MediaKind::Video,
            media_key: x.media_key.as_deref(),
            file_sha256: x.file_sha256.as_deref(),
            file_enc_sha256: x.file_enc_sha256.as_deref(),
            file_length: x.file_length,
        })
    } else if let Some(x) = m.audio_message.as_deref() {
        d.mimetype = x.mimetype.clone();
        d.seconds = x.seconds;
        d.ptt = x.ptt;
        Some(Media {
            kind: MediaKind::Audio,
            media_key: x.media_key.as_deref(),
            file_sha256: x.file_sha256.as_deref(),
            file_enc_sha256: x.file_enc_sha256.as_deref(),
            file_length: x.file_length,
        })
    } else if let Some(x) = m.document_message.as_deref().or_else(|| {
        m.document_with_caption_message
            .as_ref()
            .and_then(|w| w.message.as_deref())
            .and_then(|inner| inner.document_message.as_deref())
    }) {
        d.caption = x.caption.clone();
        d.mimetype = x.mimetype.clone();
        d.file_name = x.file_name.clone();
        d.thumbnail = x.jpeg_thumbnail.as_ref().map(|t| !t.is_empty());
        Some(Media {
            kind: MediaKind::Document,
            media_key: x.media_key.as_deref(),
            file_sha256: x.file_sha256.as_deref(),
            file_enc_sha256: x.file_enc_sha256.as_deref(),
            file_length: x.file_length,
        })
    } else if let Some(x) = m.sticker_message.as_deref() {
        d.mimetype = x.mimetype.clone();
        d.width = x.width;
        d.height = x.height;
        Some(Media {
            kind: MediaKind::Image,
            media_key: x.media_key.as_deref(),
            file_sha256: x.file_sha256.as_deref(),
            file_enc_sha256: x.file_enc_sha256.as_deref(),
            file_length: x.file_length,
        })
    } else {
        None
    };
    if let Some(media) = media {
        d.size = media.file_length;
        match download(sim, &media) {
            Ok(plain) => {
                d.size = Some(plain.len() as u64);
                d.sha256 = Some(hex::encode(Sha256::digest(&plain)));
            }
            Err(e) => d.media_error = Some(e),
        }
        return d;
    }
    if let Some(x) = m.location_message.as_deref() {
        d.latitude = x.degrees_latitude;
        d.longitude = x.degrees_longitude;
        d.name = x.name.clone();
        d.address = x.address.clone();
    } else if let Some(x) = m.contact_message.as_deref() {
        d.name = x.display_name.clone();
        d.vcard = x.vcard.clone();
    } else if let Some(x) = m.contacts_array_message.as_deref() {
        d.name = x.display_name.clone();
        d.vcards = x.contacts.iter().filter_map(|c| c.vcard.clone()).collect();
    } else if let Some(x) = &m.reaction_message {
        d.target_id = x.key.as_ref().and_then(|k| k.id.clone());
    } else if let Some(x) = m
        .poll_creation_message
        .as_deref()
        .or(m.poll_creation_message_v2.as_deref())
        .or(m.poll_creation_message_v3.as_deref())
    {
        d.name = x.name.clone();
        d.options = x
            .options
            .iter()
            .filter_map(|o| o.option_name.clone())
            .collect();
        d.selectable_count = x.selectable_options_count;
    } else if let Some(x) = &m.poll_update_message {
        d.target_id = x
            .poll_creation_message_key
            .as_ref()
            .and_then(|k| k.id.clone());
    } else if let Some(x) = m.protocol_message.as_deref() {
        d.target_id = x.key.as_ref().and_then(|k| k.id.clone());
    }
    d
}

/// Fetches the blob from the simulator's media store (where every upload lands) and decrypts
/// and verifies it as a receiving client does.
fn download(sim: &Sim, media: &Media<'_>) -> Result<Vec<u8>, String> {
    let key: &[u8; 32] = media
        .media_key
        .and_then(|k| k.try_into().ok())
        .ok_or("no 32-byte mediaKey")?;
    let enc: &[u8; 32] = media
        .file_enc_sha256
        .and_then(|k| k.try_into().ok())
        .ok_or("no fileEncSha256")?;
    let plain_hash: &[u8; 32] = media
        .file_sha256
        .and_then(|k| k.try_into().ok())
        .ok_or("no fileSha256")?;
    let blob = sim
        .media()
        .get(&hex::encode(enc))
        .ok_or("blob not in the media store")?;
    decrypt_verified(key, media.kind, &blob.bytes, enc, plain_hash).map_err(|e| e.to_string())
}
