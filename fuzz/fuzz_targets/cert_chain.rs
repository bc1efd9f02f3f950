//! Certificate-chain parsing and verification. Mode 0 feeds arbitrary (decrypted) chain bytes;
//! mode 1 signs arbitrary bytes as the leaf's `Details` with a trusted intermediate, so that the
//! checks after the signatures (details decoding, serial link, validity, key match) are reached.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use zapin_protocol::crypto::{KeyPair, PublicKey, xeddsa};
use zapin_protocol::noise::{
    CertDetails, Validity, WHATSAPP_ROOT_PUBLIC_KEY, issue_certificate, verify_cert_chain,
};
use zapin_protocol::proto::wa::CertChain;
use zapin_protocol::proto::wa::cert_chain::NoiseCertificate;

const NOW: u64 = 1_750_000_000;

struct Keys {
    root: KeyPair,
    intermediate: KeyPair,
    intermediate_cert: NoiseCertificate,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let root = KeyPair::from_private([1; 32]);
        let intermediate = KeyPair::from_private([2; 32]);
        let intermediate_cert = issue_certificate(
            &root,
            &CertDetails {
                serial: 3,
                issuer_serial: 0,
                key: *intermediate.public(),
                validity: Validity {
                    not_before: 0,
                    not_after: u64::MAX,
                },
            },
            &[0; 64],
        );
        Keys {
            root,
            intermediate,
            intermediate_cert,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let server_static = PublicKey([7; 32]);
    if mode & 1 == 0 {
        let _ = verify_cert_chain(rest, &WHATSAPP_ROOT_PUBLIC_KEY, &server_static, NOW);
        return;
    }
    let k = keys();
    let chain = CertChain {
        intermediate: Some(k.intermediate_cert.clone()),
        leaf: Some(NoiseCertificate {
            details: Some(rest.to_vec()),
            signature: Some(xeddsa::sign(&k.intermediate, rest, &[0; 64]).to_vec()),
        }),
    }
    .encode_to_vec();
    let _ = verify_cert_chain(&chain, k.root.public(), &server_static, NOW);
});
