//! Media through the session against the simulator's `media_conn` and blob routes over real
//! HTTP: upload then download returns the same bytes, a tampered blob fails the MAC, a blob the
//! CDN lost is `Gone`, and a host that refuses fails over to the next.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zapin_engine::media::{MediaError, MediaKind, MediaRef};
use zapin_engine::{EngineError, SessionHandle, SessionManager};
use zapin_protocol::media;
use zapin_sim::media::{MediaStore, upload_token};
use zapin_sim::{RunningSim, SimConfig};

mod common;
use common::*;

/// Deterministic, incompressible-looking bytes.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn paired(config: SimConfig) -> (RunningSim, SessionManager, SessionHandle) {
    let sim = zapin_sim::run(config).await.unwrap();
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), engine_config(&sim));
    let mut rx = manager.subscribe();
    pair_by_qr(&manager, &mut rx, &api, "m").await;
    let handle = manager.get(&"m".into()).unwrap();
    (sim, manager, handle)
}

#[tokio::test]
async fn upload_then_download_returns_identical_bytes() {
    let (sim, manager, handle) = paired(sim_config()).await;
    let data = sample(3 * 1024 * 1024 + 5, 1);

    let up = handle
        .upload_media(MediaKind::Document, &data[..])
        .await
        .unwrap();
    assert_eq!(up.file_length, data.len() as u64);
    assert_eq!(up.file_sha256, <[u8; 32]>::from(Sha256::digest(&data)));
    assert!(up.direct_path.starts_with("/v/"), "{up:?}");
    assert!(up.url.ends_with(&up.direct_path), "{up:?}");

    // What the simulator stored is `enc ‖ mac` under that hash, and decrypts independently.
    let stored = sim
        .sim()
        .media()
        .get(&hex::encode(up.file_enc_sha256))
        .expect("blob stored under its fileEncSha256");
    assert_eq!(stored.media_type, "document");
    let plain = media::decrypt_verified(
        &up.media_key,
        media::MediaKind::Document,
        &stored.bytes,
        &up.file_enc_sha256,
        &up.file_sha256,
    )
    .unwrap();
    assert!(plain == data);

    let mut back = Vec::new();
    let digest = handle
        .download_media(&MediaRef::from(&up), &mut back)
        .await
        .unwrap();
    assert_eq!(digest.file_length, data.len() as u64);
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));

    // The same blob read with another kind's keys fails the MAC.
    let mut wrong = MediaRef::from(&up);
    wrong.kind = MediaKind::Image;
    let err = handle
        .download_media(&wrong, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Media(MediaError::Crypto(media::MediaError::BadMac))
        ),
        "{err}"
    );

    // A second upload (an image this time, from a file) round-trips too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pic.jpg");
    let pic = sample(70_001, 2);
    tokio::fs::File::create(&path)
        .await
        .unwrap()
        .write_all(&pic)
        .await
        .unwrap();
    let file = tokio::fs::File::open(&path).await.unwrap();
    let up2 = handle.upload_media(MediaKind::Image, file).await.unwrap();
    let out_path = dir.path().join("out.jpg");
    let mut out = tokio::fs::File::create(&out_path).await.unwrap();
    handle
        .download_media(&MediaRef::from(&up2), &mut out)
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::fs::File::open(&out_path)
        .await
        .unwrap()
        .read_to_end(&mut got)
        .await
        .unwrap();
    assert!(got == pic);

    // Offline: no media_conn, a typed error.
    handle.stop().await.unwrap();
    assert!(matches!(
        handle.upload_media(MediaKind::Image, &b"x"[..]).await,
        Err(EngineError::NotConnected)
    ));
    manager.shutdown().await;
}

#[tokio::test]
async fn a_tampered_blob_fails_the_mac_and_a_lost_one_is_gone() {
    let (sim, manager, handle) = paired(sim_config()).await;
    let data = sample(200_000, 3);
    let up = handle
        .upload_media(MediaKind::Video, &data[..])
        .await
        .unwrap();
    let store = sim.sim().media();
    let mut blob = store
        .get(&hex::encode(up.file_enc_sha256))
        .unwrap()
        .bytes
        .to_vec();
    blob[1000] ^= 0x01;
    let tampered_hash: [u8; 32] = Sha256::digest(&blob).into();
    let id = store
        .put("video", &upload_token(&tampered_hash), blob.into())
        .unwrap();
    // The message still names the original hashes; the CDN serves the tampered bytes.
    let tampered = MediaRef {
        direct_path: Some(MediaStore::direct_path(&id)),
        url: None,
        ..MediaRef::from(&up)
    };
    let err = handle
        .download_media(&tampered, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Media(MediaError::Crypto(media::MediaError::BadMac))
        ),
        "{err}"
    );

    // A blob the CDN does not have: 404 from every source is `Gone` (the media-retry case).
    let lost = MediaRef {
        direct_path: Some(MediaStore::direct_path(&"ab".repeat(32))),
        url: None,
        ..MediaRef::from(&up)
    };
    let err = handle
        .download_media(&lost, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Media(MediaError::Gone { status: 404 })),
        "{err}"
    );
    manager.shutdown().await;
}

/// A host that accepts connections and answers every request with 503.
async fn unavailable_host() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn hosts_that_refuse_fail_over_to_the_next() {
    // A port nobody listens on (bound, then released) and a host answering 503 come first.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (busy, hits) = unavailable_host().await;
    let mut config = sim_config();
    config.media.extra_hosts = vec![closed_addr, busy];
    let (_sim, manager, handle) = paired(config).await;

    let data = sample(100_000, 4);
    let up = handle
        .upload_media(MediaKind::Audio, &data[..])
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the 503 host was tried");
    let mut back = Vec::new();
    handle
        .download_media(
            &MediaRef {
                url: None,
                ..MediaRef::from(&up)
            },
            &mut back,
        )
        .await
        .unwrap();
    assert!(back == data);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "and tried again on download"
    );
    manager.shutdown().await;
}
