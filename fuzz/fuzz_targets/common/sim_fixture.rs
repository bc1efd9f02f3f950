//! A fresh, seeded simulator for one fuzz input: accounts Alice and Bob, a group of both, and
//! one paired companion of Alice (so stanzas from it take the logged-in paths, not the
//! unknown-device ones).

use zapin_protocol::crypto::{KeyPair, xeddsa};
use zapin_sim::conn::ConnId;
use zapin_sim::qr::QrData;
use zapin_sim::state::{Registration, SignedPreKeyPublic, SimState};
use zapin_sim::{Sim, SimConfig};

pub const ALICE: &str = "15550001111";
pub const BOB: &str = "15550002222";

/// The simulator and the device number of Alice's companion.
pub fn sim() -> Option<(Sim, u16)> {
    let config = SimConfig {
        seed: Some(1),
        ..SimConfig::default()
    };
    let sim = Sim::new(SimState::open(config.state_config()).ok()?, config);
    let state = sim.state();
    state.create_account(Some(ALICE.into()), None).ok()?;
    state.create_account(Some(BOB.into()), None).ok()?;
    state.create_group(ALICE, "g", &[BOB.into()]).ok()?;

    let identity = KeyPair::from_private([11; 32]);
    let noise = KeyPair::from_private([12; 32]);
    let skey = KeyPair::from_private([13; 32]);
    let signature = xeddsa::sign(&identity, &skey.public().serialize_djb(), &[14; 64]);
    let conn = ConnId(7);
    state.registration_started(
        conn,
        Registration {
            noise_static: *noise.public(),
            identity: *identity.public(),
            registration_id: 4242,
            signed_prekey: SignedPreKeyPublic {
                id: 1,
                public: *skey.public(),
                signature,
            },
        },
    );
    let pairing_ref = state.issue_refs(conn).ok()?.into_iter().next()?;
    let qr = QrData {
        pairing_ref,
        noise_static: *noise.public(),
        identity: *identity.public(),
        adv_secret: [15; 32],
        platform: None,
    };
    let ticket = state.begin_qr_pairing(ALICE, &qr).ok()?;
    state.finish_pairing(&ticket, Vec::new()).ok()?;
    Some((sim, ticket.device))
}
