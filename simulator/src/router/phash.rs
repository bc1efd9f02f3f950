//! The server's participant-list hash of a group (wa-protocol.md §7.10), returned in the ack of a
//! group send that carried one so the sender can tell its device lists are stale.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use zapin_protocol::jid::Jid;

use super::{device_jid, devices_of, identity_of};
use crate::sim::Sim;

/// The hash over every device of every member of `group`, in the namespace of the send
/// (`addressing_mode=lid` → LIDs, else PNs). `None` for an unknown group.
pub(super) fn of_group(sim: &Sim, group: &Jid, addressing_mode: Option<&str>) -> Option<String> {
    let group = sim.state().group(&group.user)?;
    let lid_mode = addressing_mode == Some("lid");
    let mut devices = Vec::new();
    for member in &group.participants {
        let Some((lid, _)) = identity_of(sim, &member.phone) else {
            continue;
        };
        for d in devices_of(sim, &member.phone) {
            devices.push(device_jid(&member.phone, &lid, d, lid_mode));
        }
    }
    Some(hash(&devices))
}

/// `"2:" + base64(SHA-256(sorted "user.0:device@server" strings)[..6])`, standard alphabet, no
/// padding.
pub(crate) fn hash(devices: &[Jid]) -> String {
    let mut strings: Vec<String> = devices
        .iter()
        .map(|j| format!("{}.0:{}@{}", j.user, j.device, j.server))
        .collect();
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
    use zapin_protocol::jid::Server;

    use super::*;

    #[test]
    fn known_answers_of_appendix_a4() {
        let d3 = Jid::with_device("5511999999999", 3, Server::Pn);
        let d0 = Jid::with_device("5511999999999", 0, Server::Pn);
        assert_eq!(hash(&[d3]), "2:5s+YxCff");
        assert_eq!(hash(&[d0]), "2:RJWVxcMQ");
    }
}
