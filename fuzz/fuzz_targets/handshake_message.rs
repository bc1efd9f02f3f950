//! Both roles' handshake parsing on arbitrary bytes: the responder's ClientHello and
//! ClientFinish handling, and the initiator's ServerHello handling. The first byte picks the step.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::noise::{CertChainBuilder, ClientHandshake, ServerHandshake, Validity};

const NOW: u64 = 1_000_000;

/// The chain is signed once: XEdDSA signing per input would dominate the run.
fn chain() -> Vec<u8> {
    static CHAIN: OnceLock<Vec<u8>> = OnceLock::new();
    CHAIN.get_or_init(build_chain).clone()
}

fn build_chain() -> Vec<u8> {
    let root = KeyPair::from_private([1; 32]);
    let inter = KeyPair::from_private([2; 32]);
    let server_static = KeyPair::from_private([3; 32]);
    let validity = Validity {
        not_before: 0,
        not_after: u64::MAX,
    };
    CertChainBuilder {
        intermediate_serial: 1,
        intermediate_validity: validity,
        leaf_serial: 2,
        leaf_validity: validity,
    }
    .build(&root, &inter, server_static.public(), &[[0; 64], [0; 64]])
}

fn server() -> ServerHandshake {
    ServerHandshake::new(
        KeyPair::from_private([3; 32]),
        KeyPair::from_private([4; 32]),
        chain(),
    )
}

fn client() -> ClientHandshake {
    ClientHandshake::new(
        KeyPair::from_private([5; 32]),
        KeyPair::from_private([6; 32]),
        *KeyPair::from_private([1; 32]).public(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    match step % 3 {
        0 => {
            let _ = server().read_client_hello(rest);
        }
        1 => {
            let (hello, _) = client().client_hello();
            if let Ok((_, waiting)) = server().read_client_hello(&hello) {
                let _ = waiting.read_client_finish(rest);
            }
        }
        _ => {
            let (_, waiting) = client().client_hello();
            let _ = waiting.read_server_hello(rest, NOW);
        }
    }
});
