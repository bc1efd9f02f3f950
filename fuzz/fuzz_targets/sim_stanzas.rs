//! The simulator as a test peer: a fuzz-built stanza from a logged-in companion goes through the
//! IQ handler (`wire::iq::answer`: prekey upload/fetch, usync, digest, companion removal) and the
//! router (`router::handle_stanza`: messages, receipts, presence, chatstate, group IQs). A panic
//! here is a simulator that dies under Baileys or our engine. Each input gets a fresh simulator
//! (fixed seed, two accounts, one group) so runs are reproducible.
#![no_main]

#[path = "common/node_gen.rs"]
mod node_gen;

use libfuzzer_sys::fuzz_target;
use zapin_sim::conn::ConnId;
use zapin_sim::router::{self, Origin};
use zapin_sim::state::SimState;
use zapin_sim::wire::iq::{self, Asker, IqOutcome};
use zapin_sim::{Sim, SimConfig};

const ALICE: &str = "15550001111";
const BOB: &str = "15550002222";

fn sim() -> Option<Sim> {
    let config = SimConfig {
        seed: Some(1),
        ..SimConfig::default()
    };
    let sim = Sim::new(SimState::open(config.state_config()).ok()?, config);
    let state = sim.state();
    state.create_account(Some(ALICE.into()), None).ok()?;
    state.create_account(Some(BOB.into()), None).ok()?;
    state.create_group(ALICE, "g", &[BOB.into()]).ok()?;
    Some(sim)
}

fuzz_target!(|data: &[u8]| {
    let Some(node) = node_gen::node_from(data) else {
        return;
    };
    let Some(sim) = sim() else {
        return;
    };
    let device = u16::from(data.last().copied().unwrap_or(1) % 4);
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
