use prost::Message as _;

use super::symmetric::SymmetricState;
use super::*;
use crate::crypto::{KeyPair, PublicKey};
use crate::proto::wa::handshake_message::{ClientFinish, ServerHello};
use crate::proto::wa::{CertChain, HandshakeMessage};

fn vectors() -> serde_json::Value {
    serde_json::from_str(include_str!(
        "../../../tests/vectors/noise/whatsapp-xx-client.json"
    ))
    .unwrap()
}

fn hx(v: &serde_json::Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap()).unwrap()
}

fn arr(v: &serde_json::Value, key: &str) -> [u8; 32] {
    hx(v, key).try_into().unwrap()
}

fn kp(seed: u8) -> KeyPair {
    KeyPair::from_private([seed; 32])
}

// Inside both certificates' validity windows of the real chain (2025-06-15).
const REAL_NOW: u64 = 1_750_000_000;

// ---------------------------------------------------------------------------------------------
// Appendix A.1 / A.2 known answers

#[test]
fn a1_symmetric_state_step_by_step() {
    let v = vectors();
    let mut s = SymmetricState::new();
    assert_eq!(s.hash(), arr(&v, "h_after_prologue"));

    let ce = KeyPair::from_private(arr(&v, "client_ephemeral_private"));
    assert_eq!(ce.public().0, arr(&v, "client_ephemeral_public"));
    s.mix_hash(ce.public().as_bytes());
    assert_eq!(s.hash(), arr(&v, "h_after_client_ephemeral"));

    let se = PublicKey(arr(&v, "server_ephemeral_public"));
    s.mix_hash(se.as_bytes());
    assert_eq!(s.hash(), arr(&v, "h_after_server_ephemeral"));
    s.mix_key(&ce.agree(&se));
    assert_eq!(s.chaining_key(), arr(&v, "ck_after_ee"));

    let ss = s
        .decrypt_and_hash(&hx(&v, "server_static_ciphertext"))
        .unwrap();
    assert_eq!(ss, hx(&v, "server_static_public"));
    assert_eq!(s.hash(), arr(&v, "h_after_static_decrypt"));

    s.mix_key(&ce.agree(&PublicKey::from_slice(&ss).unwrap()));
    assert_eq!(s.chaining_key(), arr(&v, "ck_after_es"));
    let chain = s
        .decrypt_and_hash(&hx(&v, "cert_chain_ciphertext"))
        .unwrap();
    assert_eq!(chain.len(), 241);
    assert_eq!(s.hash(), arr(&v, "h_after_cert_decrypt"));
}

fn real_server_hello(v: &serde_json::Value) -> Vec<u8> {
    HandshakeMessage {
        server_hello: Some(ServerHello {
            ephemeral: Some(hx(v, "server_ephemeral_public")),
            r#static: Some(hx(v, "server_static_ciphertext")),
            payload: Some(hx(v, "cert_chain_ciphertext")),
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn a1_client_state_machine_reproduces_the_transcript() {
    let v = vectors();
    let ce = KeyPair::from_private(arr(&v, "client_ephemeral_private"));
    let (hello, client) = ClientHandshake::new(kp(1), ce, WHATSAPP_ROOT_PUBLIC_KEY).client_hello();
    let decoded = HandshakeMessage::decode(hello.as_slice()).unwrap();
    assert_eq!(
        decoded.client_hello.unwrap().ephemeral.unwrap(),
        hx(&v, "client_ephemeral_public")
    );
    assert_eq!(client.handshake_hash(), arr(&v, "h_after_client_ephemeral"));

    let ready = client
        .read_server_hello(&real_server_hello(&v), REAL_NOW)
        .unwrap();
    assert_eq!(ready.server_static().0, arr(&v, "server_static_public"));
    assert_eq!(ready.handshake_hash(), arr(&v, "h_after_cert_decrypt"));
    assert_eq!(ready.chaining_key(), arr(&v, "ck_after_es"));

    // The decrypted chain is exactly the A.2 certificates.
    let chain = CertChain::decode(ready.cert_chain_bytes()).unwrap();
    assert_eq!(ready.cert_chain_bytes().len(), 241);
    let leaf = chain.leaf.unwrap();
    let inter = chain.intermediate.unwrap();
    assert_eq!(leaf.details.unwrap(), hx(&v, "leaf_details"));
    assert_eq!(leaf.signature.unwrap(), hx(&v, "leaf_signature"));
    assert_eq!(inter.details.unwrap(), hx(&v, "intermediate_details"));
    assert_eq!(inter.signature.unwrap(), hx(&v, "intermediate_signature"));

    let verified = ready.cert_chain();
    assert_eq!(verified.leaf.serial, 329);
    assert_eq!(verified.leaf.issuer_serial, 3);
    assert_eq!(
        verified.leaf.validity,
        Validity {
            not_before: 1_742_850_000,
            not_after: 1_753_736_400
        }
    );
    assert_eq!(verified.intermediate.serial, 3);
    assert_eq!(verified.intermediate.issuer_serial, 0);
    assert_eq!(
        verified.intermediate.validity,
        Validity {
            not_before: 1_741_392_000,
            not_after: 1_804_463_999
        }
    );

    let (finish, _transport) = ready.client_finish(b"payload").unwrap();
    let finish = HandshakeMessage::decode(finish.as_slice())
        .unwrap()
        .client_finish
        .unwrap();
    assert_eq!(finish.r#static.unwrap().len(), 32 + TAG_LEN);
    assert_eq!(finish.payload.unwrap().len(), 7 + TAG_LEN);
}

fn real_chain(v: &serde_json::Value) -> Vec<u8> {
    use crate::proto::wa::cert_chain::NoiseCertificate;
    CertChain {
        leaf: Some(NoiseCertificate {
            details: Some(hx(v, "leaf_details")),
            signature: Some(hx(v, "leaf_signature")),
        }),
        intermediate: Some(NoiseCertificate {
            details: Some(hx(v, "intermediate_details")),
            signature: Some(hx(v, "intermediate_signature")),
        }),
    }
    .encode_to_vec()
}

#[test]
fn a2_real_chain_verifies_only_inside_its_validity_window() {
    let v = vectors();
    let chain = real_chain(&v);
    let ss = PublicKey(arr(&v, "server_static_public"));
    let root = WHATSAPP_ROOT_PUBLIC_KEY;
    assert!(verify_cert_chain(&chain, &root, &ss, REAL_NOW).is_ok());
    assert!(verify_cert_chain(&chain, &root, &ss, 1_742_850_000).is_ok());
    assert!(verify_cert_chain(&chain, &root, &ss, 1_753_736_400).is_ok());
    assert_eq!(
        verify_cert_chain(&chain, &root, &ss, 1_742_849_999),
        Err(CertError::NotYetValid {
            kind: CertKind::Leaf,
            not_before: 1_742_850_000,
            now: 1_742_849_999
        })
    );
    assert_eq!(
        verify_cert_chain(&chain, &root, &ss, 1_753_736_401),
        Err(CertError::Expired {
            kind: CertKind::Leaf,
            not_after: 1_753_736_400,
            now: 1_753_736_401
        })
    );
    assert!(matches!(
        verify_cert_chain(&chain, &root, &ss, 1_741_391_999),
        Err(CertError::NotYetValid {
            kind: CertKind::Intermediate,
            ..
        })
    ));
    assert!(matches!(
        verify_cert_chain(&chain, &root, &ss, 1_804_464_000),
        Err(CertError::Expired {
            kind: CertKind::Intermediate,
            ..
        })
    ));
    assert_eq!(
        verify_cert_chain(&chain, kp(9).public(), &ss, REAL_NOW),
        Err(CertError::BadSignature(CertKind::Intermediate))
    );
    assert_eq!(
        verify_cert_chain(&chain, &root, kp(9).public(), REAL_NOW),
        Err(CertError::KeyMismatch)
    );
}

#[test]
fn a1_server_hello_fails_outside_the_real_chain_window() {
    let v = vectors();
    let ce = KeyPair::from_private(arr(&v, "client_ephemeral_private"));
    let (_, client) = ClientHandshake::new(kp(1), ce, WHATSAPP_ROOT_PUBLIC_KEY).client_hello();
    let err = client
        .read_server_hello(&real_server_hello(&v), 1_800_000_000)
        .unwrap_err();
    assert!(matches!(
        err,
        NoiseError::Cert(CertError::Expired {
            kind: CertKind::Leaf,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// In-process initiator <-> responder

const NOW: u64 = 1_000_000;
const VALID: Validity = Validity {
    not_before: NOW - 100,
    not_after: NOW + 100,
};
const BUILDER: CertChainBuilder = CertChainBuilder {
    intermediate_serial: 7,
    intermediate_validity: VALID,
    leaf_serial: 42,
    leaf_validity: VALID,
};

struct Pki {
    root: KeyPair,
    intermediate: KeyPair,
    server_static: KeyPair,
}

fn pki() -> Pki {
    Pki {
        root: kp(0x10),
        intermediate: kp(0x11),
        server_static: kp(0x12),
    }
}

fn chain_for(p: &Pki) -> Vec<u8> {
    BUILDER.build(
        &p.root,
        &p.intermediate,
        p.server_static.public(),
        &[[1; 64], [2; 64]],
    )
}

/// Runs a handshake with the given chain and trust root; returns the client's error if any.
fn handshake(
    chain: Vec<u8>,
    trust_root: PublicKey,
) -> Result<(Transport, ServerHandshakeOutcome), NoiseError> {
    let p = pki();
    let client = ClientHandshake::new(kp(0x20), kp(0x21), trust_root);
    let server = ServerHandshake::new(p.server_static.clone(), kp(0x31), chain);
    let (hello, client) = client.client_hello();
    let (server_hello, server) = server.read_client_hello(&hello)?;
    let ready = client.read_server_hello(&server_hello, NOW)?;
    let (finish, client_transport) = ready.client_finish(b"client payload")?;
    let outcome = server.read_client_finish(&finish)?;
    Ok((client_transport, outcome))
}

#[test]
fn handshake_completes_and_transport_round_trips_both_ways() {
    let p = pki();
    let (mut client, mut outcome) = handshake(chain_for(&p), *p.root.public()).unwrap();
    assert_eq!(outcome.client_static, *kp(0x20).public());
    assert_eq!(outcome.client_payload, b"client payload");

    for i in 0..5u8 {
        let frame = vec![i; 100 * usize::from(i)];
        let ct = client.encrypt(&frame).unwrap();
        assert_eq!(ct.len(), frame.len() + TAG_LEN);
        assert_eq!(outcome.transport.decrypt(&ct).unwrap(), frame);
        let ct = outcome.transport.encrypt(&frame).unwrap();
        assert_eq!(client.decrypt(&ct).unwrap(), frame);
    }
    assert_eq!(client.counters(), (5, 5));
    // Same plaintext under consecutive counters gives different ciphertexts.
    assert_ne!(client.encrypt(b"x").unwrap(), client.encrypt(b"x").unwrap());
}

#[test]
fn handshake_hashes_agree() {
    let p = pki();
    let client = ClientHandshake::new(kp(0x20), kp(0x21), *p.root.public());
    let server = ServerHandshake::new(p.server_static.clone(), kp(0x31), chain_for(&p));
    let (hello, client) = client.client_hello();
    let (server_hello, server) = server.read_client_hello(&hello).unwrap();
    let ready = client.read_server_hello(&server_hello, NOW).unwrap();
    assert_eq!(ready.handshake_hash(), server.handshake_hash());
    let (finish, _) = ready.client_finish(b"").unwrap();
    let outcome = server.read_client_finish(&finish).unwrap();
    assert_eq!(outcome.client_payload, b"");
}

#[test]
fn wrong_trust_root_is_rejected() {
    let p = pki();
    assert_eq!(
        handshake(chain_for(&p), *kp(0x99).public()).unwrap_err(),
        NoiseError::Cert(CertError::BadSignature(CertKind::Intermediate))
    );
}

fn chain_with(
    p: &Pki,
    inter: CertDetails,
    leaf: CertDetails,
    edit: impl FnOnce(&mut CertChain),
) -> Vec<u8> {
    let mut chain = CertChain {
        intermediate: Some(issue_certificate(&p.root, &inter, &[3; 64])),
        leaf: Some(issue_certificate(&p.intermediate, &leaf, &[4; 64])),
    };
    edit(&mut chain);
    chain.encode_to_vec()
}

fn good_details(p: &Pki) -> (CertDetails, CertDetails) {
    (
        CertDetails {
            serial: 7,
            issuer_serial: 0,
            key: *p.intermediate.public(),
            validity: VALID,
        },
        CertDetails {
            serial: 42,
            issuer_serial: 7,
            key: *p.server_static.public(),
            validity: VALID,
        },
    )
}

fn cert_err(chain: Vec<u8>) -> CertError {
    match handshake(chain, *pki().root.public()) {
        Err(NoiseError::Cert(e)) => e,
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[test]
fn hand_built_good_chain_is_accepted() {
    let p = pki();
    let (i, l) = good_details(&p);
    assert!(handshake(chain_with(&p, i, l, |_| {}), *p.root.public()).is_ok());
}

#[test]
fn tampered_certificates_are_rejected() {
    let p = pki();
    let (i, l) = good_details(&p);
    let flip = |c: &mut Option<crate::proto::wa::cert_chain::NoiseCertificate>| {
        let d = c.as_mut().unwrap().details.as_mut().unwrap();
        let last = d.len() - 1;
        d[last] ^= 1;
    };
    assert_eq!(
        cert_err(chain_with(&p, i, l, |c| flip(&mut c.leaf))),
        CertError::BadSignature(CertKind::Leaf)
    );
    assert_eq!(
        cert_err(chain_with(&p, i, l, |c| flip(&mut c.intermediate))),
        CertError::BadSignature(CertKind::Intermediate)
    );
    assert_eq!(
        cert_err(chain_with(&p, i, l, |c| {
            c.leaf.as_mut().unwrap().signature.as_mut().unwrap()[5] ^= 1;
        })),
        CertError::BadSignature(CertKind::Leaf)
    );
    // Leaf signed by the root instead of the intermediate.
    assert_eq!(
        cert_err(chain_with(&p, i, l, |c| {
            c.leaf = Some(issue_certificate(&p.root, &l, &[5; 64]));
        })),
        CertError::BadSignature(CertKind::Leaf)
    );
}

#[test]
fn wrong_issuer_serials_are_rejected() {
    let p = pki();
    let (i, l) = good_details(&p);
    assert_eq!(
        cert_err(chain_with(
            &p,
            CertDetails {
                issuer_serial: 1,
                ..i
            },
            l,
            |_| {}
        )),
        CertError::WrongIssuerSerial {
            kind: CertKind::Intermediate,
            expected: 0,
            found: 1
        }
    );
    assert_eq!(
        cert_err(chain_with(
            &p,
            i,
            CertDetails {
                issuer_serial: 8,
                ..l
            },
            |_| {}
        )),
        CertError::WrongIssuerSerial {
            kind: CertKind::Leaf,
            expected: 7,
            found: 8
        }
    );
}

#[test]
fn expired_and_not_yet_valid_certificates_are_rejected() {
    let p = pki();
    let (i, l) = good_details(&p);
    let past = Validity {
        not_before: NOW - 100,
        not_after: NOW - 1,
    };
    let future = Validity {
        not_before: NOW + 1,
        not_after: NOW + 100,
    };
    assert!(matches!(
        cert_err(chain_with(
            &p,
            i,
            CertDetails {
                validity: past,
                ..l
            },
            |_| {}
        )),
        CertError::Expired {
            kind: CertKind::Leaf,
            ..
        }
    ));
    assert!(matches!(
        cert_err(chain_with(
            &p,
            CertDetails {
                validity: past,
                ..i
            },
            l,
            |_| {}
        )),
        CertError::Expired {
            kind: CertKind::Intermediate,
            ..
        }
    ));
    assert!(matches!(
        cert_err(chain_with(
            &p,
            i,
            CertDetails {
                validity: future,
                ..l
            },
            |_| {}
        )),
        CertError::NotYetValid {
            kind: CertKind::Leaf,
            ..
        }
    ));
}

#[test]
fn leaf_for_another_key_is_rejected() {
    let p = pki();
    let (i, l) = good_details(&p);
    assert_eq!(
        cert_err(chain_with(
            &p,
            i,
            CertDetails {
                key: *kp(0x77).public(),
                ..l
            },
            |_| {}
        )),
        CertError::KeyMismatch
    );
}

#[test]
fn malformed_chains_are_rejected() {
    let p = pki();
    let (i, l) = good_details(&p);
    assert!(matches!(
        cert_err(b"\xff\xff".to_vec()),
        CertError::Malformed(_)
    ));
    assert!(matches!(
        cert_err(chain_with(&p, i, l, |c| c.leaf = None)),
        CertError::Malformed(_)
    ));
    assert!(matches!(
        cert_err(chain_with(&p, i, l, |c| {
            c.intermediate
                .as_mut()
                .unwrap()
                .signature
                .as_mut()
                .unwrap()
                .pop();
        })),
        CertError::Malformed(_)
    ));
    // A 31-byte intermediate key, correctly signed.
    let mut short = CertChain::decode(chain_with(&p, i, l, |_| {}).as_slice()).unwrap();
    let mut d = crate::proto::wa::cert_chain::noise_certificate::Details::decode(
        short
            .intermediate
            .as_ref()
            .unwrap()
            .details
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    d.key.as_mut().unwrap().pop();
    let details = d.encode_to_vec();
    let sig = crate::crypto::xeddsa::sign(&p.root, &details, &[6; 64]);
    short.intermediate = Some(crate::proto::wa::cert_chain::NoiseCertificate {
        details: Some(details),
        signature: Some(sig.to_vec()),
    });
    assert_eq!(
        cert_err(short.encode_to_vec()),
        CertError::BadKeyLength(CertKind::Intermediate)
    );
}

#[test]
fn tampered_handshake_ciphertexts_are_rejected() {
    let p = pki();
    let root = *p.root.public();

    // ServerHello static / payload tampered: the client fails authentication.
    for field in 0..2 {
        let (hello, client) = ClientHandshake::new(kp(0x20), kp(0x21), root).client_hello();
        let server = ServerHandshake::new(p.server_static.clone(), kp(0x31), chain_for(&p));
        let (sh, _) = server.read_client_hello(&hello).unwrap();
        let mut msg = HandshakeMessage::decode(sh.as_slice()).unwrap();
        let h = msg.server_hello.as_mut().unwrap();
        let target = if field == 0 {
            h.r#static.as_mut()
        } else {
            h.payload.as_mut()
        };
        target.unwrap()[3] ^= 0x40;
        assert_eq!(
            client
                .read_server_hello(&msg.encode_to_vec(), NOW)
                .unwrap_err(),
            NoiseError::Decrypt
        );
    }

    // ClientFinish static / payload tampered: the server fails authentication.
    for field in 0..2 {
        let (hello, client) = ClientHandshake::new(kp(0x20), kp(0x21), root).client_hello();
        let server = ServerHandshake::new(p.server_static.clone(), kp(0x31), chain_for(&p));
        let (sh, server) = server.read_client_hello(&hello).unwrap();
        let ready = client.read_server_hello(&sh, NOW).unwrap();
        let (finish, _) = ready.client_finish(b"payload").unwrap();
        let mut msg = HandshakeMessage::decode(finish.as_slice()).unwrap();
        let f = msg.client_finish.as_mut().unwrap();
        let target = if field == 0 {
            f.r#static.as_mut()
        } else {
            f.payload.as_mut()
        };
        target.unwrap()[0] ^= 1;
        assert_eq!(
            server.read_client_finish(&msg.encode_to_vec()).unwrap_err(),
            NoiseError::Decrypt
        );
    }
}

#[test]
fn malformed_handshake_messages_are_typed_errors() {
    let p = pki();
    let server = || ServerHandshake::new(p.server_static.clone(), kp(0x31), chain_for(&p));
    assert!(matches!(
        server().read_client_hello(b"\x12\xff"),
        Err(NoiseError::Protobuf(_))
    ));
    assert!(matches!(
        server().read_client_hello(&[]),
        Err(NoiseError::MissingField("clientHello"))
    ));
    let hello = |eph: Vec<u8>, stat: Option<Vec<u8>>| {
        HandshakeMessage {
            client_hello: Some(crate::proto::wa::handshake_message::ClientHello {
                ephemeral: Some(eph),
                r#static: stat,
                payload: None,
            }),
            ..Default::default()
        }
        .encode_to_vec()
    };
    assert!(matches!(
        server().read_client_hello(&hello(vec![1; 31], None)),
        Err(NoiseError::BadKey { .. })
    ));
    // A 33-byte Signal-form key is not a Noise key.
    assert!(matches!(
        server().read_client_hello(&hello(kp(1).public().serialize_djb().to_vec(), None)),
        Err(NoiseError::BadKey { .. })
    ));
    assert_eq!(
        server()
            .read_client_hello(&hello(vec![1; 32], Some(vec![2; 48])))
            .unwrap_err(),
        NoiseError::UnsupportedPattern
    );

    let (_, client) = ClientHandshake::new(kp(0x20), kp(0x21), *p.root.public()).client_hello();
    let sh = HandshakeMessage {
        server_hello: Some(ServerHello {
            ephemeral: Some(vec![1; 32]),
            r#static: None,
            payload: Some(vec![]),
        }),
        ..Default::default()
    };
    assert_eq!(
        client
            .read_server_hello(&sh.encode_to_vec(), NOW)
            .unwrap_err(),
        NoiseError::MissingField("serverHello.static")
    );

    let (hello, _) = ClientHandshake::new(kp(0x20), kp(0x21), *p.root.public()).client_hello();
    let (_, waiting) = server().read_client_hello(&hello).unwrap();
    let finish = HandshakeMessage {
        client_finish: Some(ClientFinish {
            r#static: Some(vec![0; 48]),
            payload: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        waiting
            .read_client_finish(&finish.encode_to_vec())
            .unwrap_err(),
        NoiseError::MissingField("clientFinish.payload")
    );
}

// ---------------------------------------------------------------------------------------------
// Transport

fn transports() -> (Transport, Transport) {
    let p = pki();
    let (client, outcome) = handshake(chain_for(&p), *p.root.public()).unwrap();
    (client, outcome.transport)
}

#[test]
fn transport_rejects_tampering_and_reordering() {
    let (mut a, mut b) = transports();
    let mut ct = a.encrypt(b"hello").unwrap();
    ct[0] ^= 1;
    assert_eq!(b.decrypt(&ct), Err(NoiseError::Decrypt));

    let (mut a, mut b) = transports();
    let first = a.encrypt(b"one").unwrap();
    let second = a.encrypt(b"two").unwrap();
    assert_eq!(b.decrypt(&second), Err(NoiseError::Decrypt));
    // The failed frame consumed counter 0, so even the right frame no longer lines up.
    assert_eq!(b.decrypt(&first), Err(NoiseError::Decrypt));
    assert_eq!(b.decrypt(&[0; 3]), Err(NoiseError::Decrypt));
}

#[test]
fn transport_uses_big_endian_counter_nonces() {
    // Against an independent AES-GCM computation: counter 0x01020304 as the last IV bytes.
    use aes_gcm::aead::{Aead, KeyInit};
    let key = [7u8; 32];
    let mut t = Transport::new(&key, &key);
    t.set_counters_for_test(0x0102_0304, 0);
    let ct = t.encrypt(b"frame").unwrap();
    let iv = [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let expected = aes_gcm::Aes256Gcm::new(&key.into())
        .encrypt(&iv.into(), b"frame".as_slice())
        .unwrap();
    assert_eq!(ct, expected);
}

#[test]
fn transport_counter_exhaustion_is_an_error_not_a_wrap() {
    let (mut a, mut b) = transports();
    a.set_counters_for_test(u32::MAX - 1, 0);
    b.set_counters_for_test(0, u32::MAX - 1);
    let ct = a.encrypt(b"last").unwrap();
    assert_eq!(b.decrypt(&ct).unwrap(), b"last");
    assert_eq!(a.encrypt(b"more"), Err(NoiseError::CounterExhausted));
    assert_eq!(b.decrypt(&ct), Err(NoiseError::CounterExhausted));
    // And it stays exhausted.
    assert_eq!(a.encrypt(b"more"), Err(NoiseError::CounterExhausted));
}

#[test]
fn builder_output_verifies_with_expected_details() {
    let p = pki();
    let chain = chain_for(&p);
    let v = verify_cert_chain(&chain, p.root.public(), p.server_static.public(), NOW).unwrap();
    assert_eq!(v.intermediate.serial, 7);
    assert_eq!(v.intermediate.issuer_serial, 0);
    assert_eq!(v.intermediate.key, *p.intermediate.public());
    assert_eq!(v.leaf.serial, 42);
    assert_eq!(v.leaf.issuer_serial, 7);
    assert_eq!(v.leaf.key, *p.server_static.public());
}
