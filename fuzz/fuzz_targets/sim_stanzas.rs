//! The simulator as a test peer: a fuzz-built stanza from a logged-in companion goes through the
//! IQ handler (`wire::iq::answer`: prekey upload/fetch, usync, digest, companion removal) and the
//! router (`router::handle_stanza`: messages, receipts, presence, chatstate, group IQs). A panic
//! here is a simulator that dies under Baileys or our engine. Each input gets a fresh simulator
//! (`common/sim_fixture.rs`) so runs are reproducible.
#![no_main]

#[path = "common/node_gen.rs"]
mod node_gen;
#[path = "common/sim_fixture.rs"]
mod sim_fixture;

use libfuzzer_sys::fuzz_target;
use zapin_sim::conn::ConnId;
use zapin_sim::router::{self, Origin};
use zapin_sim::wire::iq::{self, Asker, IqOutcome};

use sim_fixture::ALICE;

fuzz_target!(|data: &[u8]| {
    let Some(node) = node_gen::node_from(data) else {
        return;
    };
    // A fixture that does not build is a harness bug: fail loudly rather than fuzz nothing.
    let (sim, companion) = sim_fixture::sim().expect("simulator fixture builds");
    // Mostly the paired companion; sometimes a device the account does not have.
    let device = match data.last().copied().unwrap_or_default() % 8 {
        7 => 9,
        _ => companion,
    };
    let asker = Asker {
        phone: ALICE,
        device,
    };
    if node.tag == "iq"
        && let IqOutcome::Answer(nodes) = iq::answer(&sim, &asker, &node)
    {
        std::hint::black_box(nodes);
    }
    let origin = Origin {
        conn: ConnId(1),
        phone: ALICE.into(),
        device: u32::from(device),
    };
    std::hint::black_box(router::handle_stanza(&sim, &origin, node));
});
