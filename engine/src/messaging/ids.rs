//! Message ids (wa-protocol.md §7.9) and the participant-list hash `phash` (§7.10).

use base64::Engine;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zapin_protocol::jid::Jid;

/// A new message id: `3EB0` + uppercase hex of the first 9 bytes of
/// SHA-256(unix seconds as 8 BE bytes ‖ own user + `@c.us` ‖ 16 random bytes), 22 characters,
/// the form all three reference clients generate today.
pub fn message_id<R: CryptoRng + ?Sized>(now_unix: u64, own_user: &str, rng: &mut R) -> String {
    let mut random = [0u8; 16];
    rng.fill_bytes(&mut random);
    let mut h = Sha256::new();
    h.update(now_unix.to_be_bytes());
    h.update(own_user.as_bytes());
    h.update(b"@c.us");
    h.update(random);
    let digest = h.finalize();
    let mut id = String::with_capacity(22);
    id.push_str("3EB0");
    id.push_str(&hex::encode_upper(&digest[..9]));
    id
}

/// The device string hashed by [`phash`]: `user.0:device@server`, or just the server for a
/// server-only JID.
fn phash_device_string(jid: &Jid) -> String {
    if jid.is_server() {
        return jid.server.to_string();
    }
    format!("{}.0:{}@{}", jid.user, jid.device, jid.server)
}

/// `"2:" + base64(SHA-256(sorted device strings concatenated)[..6])`, standard alphabet without
/// padding: the form WhatsApp Web and whatsmeow compare in the server's ack.
pub fn phash(devices: &[Jid]) -> String {
    let mut strings: Vec<String> = devices.iter().map(phash_device_string).collect();
    strings.sort();
    let mut h = Sha256::new();
    for s in &strings {
        h.update(s.as_bytes());
    }
    let digest = h.finalize();
    format!(
        "2:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&digest[..6])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use zapin_protocol::jid::Server;

    #[test]
    fn phash_matches_appendix_a4() {
        let d3 = Jid::with_device("5511999999999", 3, Server::Pn);
        assert_eq!(phash(&[d3]), "2:5s+YxCff");
        let d0 = Jid::with_device("5511999999999", 0, Server::Pn);
        assert_eq!(phash(&[d0]), "2:RJWVxcMQ");
    }

    #[test]
    fn phash_ignores_input_order() {
        let a = Jid::with_device("1", 1, Server::Pn);
        let b = Jid::with_device("2", 0, Server::Lid);
        assert_eq!(phash(&[a.clone(), b.clone()]), phash(&[b, a]));
    }

    #[test]
    fn message_id_has_the_22_char_3eb0_form() {
        use chacha20::ChaCha20Rng;
        use rand_core::SeedableRng;
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = message_id(1_700_000_000, "5511999999999", &mut rng);
        let b = message_id(1_700_000_000, "5511999999999", &mut rng);
        assert_eq!(a.len(), 22);
        assert!(a.starts_with("3EB0"));
        assert!(
            a[4..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_ne!(a, b);
    }
}
