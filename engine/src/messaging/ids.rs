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
    id_from(now_unix, own_user, &random)
}

/// [`message_id`] from the operating system's randomness and clock, for callers that reserve
/// an id before handing the send to a session (`SendOptions::id`). `None` when the operating
/// system has no randomness to give.
pub fn new_message_id(own_user: &str) -> Option<String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Some(id_from(now, own_user, &random))
}

fn id_from(now_unix: u64, own_user: &str, random: &[u8; 16]) -> String {
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

/// Shortest and longest message id a caller may choose.
pub const MESSAGE_ID_LEN: std::ops::RangeInclusive<usize> = 16..=64;

/// Whether `id` may be used as the id of an outgoing message: uppercase hexadecimal, as every
/// WhatsApp client generates them (`3EB0…` from web clients, 32 hex digits from phones), between
/// 16 and 64 characters. Anything else could collide with server-generated ids or break peers
/// that parse ids (Baileys derives the sending platform from the prefix).
pub fn is_valid_message_id(id: &str) -> bool {
    MESSAGE_ID_LEN.contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
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
        assert!(is_valid_message_id(&a));
        let c = new_message_id("5511999999999").unwrap();
        assert!(c.starts_with("3EB0") && is_valid_message_id(&c), "{c}");
    }

    #[test]
    fn chosen_ids_must_look_like_whatsapp_ids() {
        for ok in [
            "3EB0C431C26A1916E07A",
            "3EB0A1B2C3D4E5F60718293A",
            "A1B2C3D4E5F60718293A4B5C6D7E8F90",
        ] {
            assert!(is_valid_message_id(ok), "{ok}");
        }
        for bad in [
            "",
            "3EB0",
            "3eb0c431c26a1916e07a",
            "3EB0C431C26A1916E07G",
            "3EB0 C431C26A1916E07A",
            "3EB0C431C26A1916E07A\n",
            &"A".repeat(65),
        ] {
            assert!(!is_valid_message_id(bad), "{bad:?}");
        }
    }
}
