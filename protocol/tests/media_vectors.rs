//! Cross-check of `zapin_protocol::media` against Baileys: tests/interop/media-vectors.mjs encrypts
//! samples with Baileys' `encryptedStream` and records its `getMediaKeys` split. Every blob must
//! decrypt here, re-encrypt to the same bytes, and hash to the same fileSha256/fileEncSha256.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use zapin_protocol::media::{self, MediaDecryptor, MediaEncryptor, MediaKeys, MediaKind};

fn unhex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn arr<const N: usize>(v: &serde_json::Value) -> [u8; N] {
    unhex(v).try_into().unwrap()
}

/// Baileys' `MEDIA_HKDF_KEY_MAPPING` for the types the script uses.
fn kind(baileys_type: &str) -> MediaKind {
    match baileys_type {
        "image" | "sticker" => MediaKind::Image,
        "video" => MediaKind::Video,
        "audio" => MediaKind::Audio,
        "document" => MediaKind::Document,
        "md-msg-hist" => MediaKind::History,
        "md-app-state" => MediaKind::AppState,
        "thumbnail-link" => MediaKind::LinkThumbnail,
        other => panic!("no mapping for {other}"),
    }
}

#[test]
fn baileys_blobs_decrypt_and_reencrypt_identically() {
    let file: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/vectors/media/vectors.json")).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 8);
    for v in vectors {
        let ty = v["type"].as_str().unwrap();
        let k = kind(ty);
        let media_key: [u8; 32] = arr(&v["media_key"]);
        let plain = unhex(&v["plaintext"]);
        let blob = unhex(&v["blob"]);

        let keys = MediaKeys::derive(&media_key, k);
        assert_eq!(keys.iv, arr::<16>(&v["iv"]), "{ty} iv");
        assert_eq!(
            keys.cipher_key,
            arr::<32>(&v["cipher_key"]),
            "{ty} cipherKey"
        );
        assert_eq!(keys.mac_key, arr::<32>(&v["mac_key"]), "{ty} macKey");

        let got = media::decrypt_verified(
            &media_key,
            k,
            &blob,
            &arr(&v["file_enc_sha256"]),
            &arr(&v["file_sha256"]),
        )
        .unwrap_or_else(|e| panic!("{ty}: {e}"));
        assert_eq!(got, plain, "{ty}");

        let ours = media::encrypt(&media_key, k, &plain);
        assert_eq!(ours.blob, blob, "{ty} blob");
        assert_eq!(
            &ours.blob[ours.blob.len() - media::MAC_LEN..],
            &unhex(&v["mac"])[..]
        );
        assert_eq!(ours.file_sha256, arr::<32>(&v["file_sha256"]));
        assert_eq!(ours.file_enc_sha256, arr::<32>(&v["file_enc_sha256"]));
        assert_eq!(ours.file_length, v["file_length"].as_u64().unwrap());
    }
}

/// The same vectors through the streaming encryptor and decryptor, fed a few bytes at a time.
#[test]
fn baileys_blobs_through_the_streaming_api() {
    let file: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/vectors/media/vectors.json")).unwrap();
    for v in file["vectors"].as_array().unwrap() {
        let ty = v["type"].as_str().unwrap();
        let k = kind(ty);
        let media_key: [u8; 32] = arr(&v["media_key"]);
        let plain = unhex(&v["plaintext"]);
        let blob = unhex(&v["blob"]);
        let (enc_sha, file_sha) = (arr(&v["file_enc_sha256"]), arr(&v["file_sha256"]));
        for piece in [1usize, 5, 16, 64] {
            let mut e = MediaEncryptor::new(&media_key, k);
            let mut out = Vec::new();
            for c in plain.chunks(piece) {
                e.update(c, &mut out);
            }
            let digest = e.finish(&mut out);
            assert_eq!(out, blob, "{ty} encrypt in pieces of {piece}");
            assert_eq!(digest.file_sha256, file_sha);
            assert_eq!(digest.file_enc_sha256, enc_sha);
            assert_eq!(digest.file_length, v["file_length"].as_u64().unwrap());

            let mut d = MediaDecryptor::new(&media_key, k);
            let mut back = Vec::new();
            for c in blob.chunks(piece) {
                d.update(c, &mut back);
            }
            d.finish_verified(&mut back, &enc_sha, &file_sha)
                .unwrap_or_else(|e| panic!("{ty}: {e}"));
            assert_eq!(back, plain, "{ty} decrypt in pieces of {piece}");
        }
    }
}
