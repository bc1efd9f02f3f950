//! Media blob decryption (wa-protocol.md §8.1): arbitrary blobs under a key taken from the input
//! must give a typed error or plaintext, never a panic. Half the runs encrypt the input first and
//! flip one byte, so the MAC and padding paths past the length checks are reached; the other half
//! also feeds the streaming decryptor in uneven pieces and compares.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zapin_protocol::media::{self, MediaKind};

const KINDS: [MediaKind; 4] = [
    MediaKind::Image,
    MediaKind::Video,
    MediaKind::History,
    MediaKind::AppState,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some((key, body)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let kind = KINDS[usize::from(selector & 3)];
    if selector & 4 == 0 {
        let whole = media::decrypt(key, kind, body);
        // The streaming decryptor fed in uneven pieces must agree with the one-shot call.
        let mut d = media::MediaDecryptor::new(key, kind);
        let mut plain = Vec::new();
        for piece in body.chunks(usize::from(selector >> 3) + 1) {
            d.update(piece, &mut plain);
        }
        match (d.finish(&mut plain), whole) {
            (Ok(_), Ok(w)) => assert_eq!(plain, w),
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("streaming {a:?} vs one-shot {b:?}"),
        }
        return;
    }
    let mut e = media::encrypt(key, kind, body);
    assert_eq!(media::decrypt(key, kind, &e.blob).as_deref(), Ok(body));
    if !e.blob.is_empty() {
        let at = usize::from(selector >> 3) % e.blob.len();
        e.blob[at] ^= 0x80;
        assert!(media::decrypt(key, kind, &e.blob).is_err());
    }
});
