//! Noise transport frame encrypt/decrypt (typical 1.5 KB and large 64 KB frames) and a complete
//! in-process XX handshake (client + server, including certificate-chain verification).

#![allow(clippy::expect_used)] // a bench aborts on a broken fixture

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::noise::{
    CertChainBuilder, ClientHandshake, ServerHandshake, Transport, Validity,
};

const NOW: u64 = 1_750_000_000;

struct Fixture {
    root: KeyPair,
    server_static: KeyPair,
    chain: Vec<u8>,
}

fn fixture() -> Fixture {
    let root = KeyPair::from_private([1; 32]);
    let server_static = KeyPair::from_private([3; 32]);
    let validity = Validity {
        not_before: NOW - 1000,
        not_after: NOW + 1000,
    };
    let chain = CertChainBuilder {
        intermediate_serial: 3,
        intermediate_validity: validity,
        leaf_serial: 329,
        leaf_validity: validity,
    }
    .build(
        &root,
        &KeyPair::from_private([2; 32]),
        server_static.public(),
        &[[7; 64], [8; 64]],
    );
    Fixture {
        root,
        server_static,
        chain,
    }
}

fn handshake(f: &Fixture) -> (Transport, Transport) {
    let client = ClientHandshake::new(
        KeyPair::from_private([4; 32]),
        KeyPair::from_private([5; 32]),
        *f.root.public(),
    );
    let server = ServerHandshake::new(
        f.server_static.clone(),
        KeyPair::from_private([6; 32]),
        f.chain.clone(),
    );
    let (hello, client) = client.client_hello();
    let (server_hello, server) = server.read_client_hello(&hello).expect("client hello");
    let ready = client
        .read_server_hello(&server_hello, NOW)
        .expect("server hello");
    let (finish, client_transport) = ready.client_finish(&[0u8; 200]).expect("client finish");
    let outcome = server
        .read_client_finish(&finish)
        .expect("client finish read");
    (client_transport, outcome.transport)
}

fn transport(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("noise_transport");
    for (label, size) in [("1.5KB", 1500usize), ("64KB", 64 * 1024)] {
        let plaintext = vec![0x5Au8; size];
        group.throughput(Throughput::Bytes(size as u64));

        let (mut writer, _) = handshake(&f);
        group.bench_function(format!("encrypt/{label}"), |b| {
            b.iter(|| {
                // Keep the counter far from exhaustion however long criterion runs.
                writer.set_counters_for_test(0, 0);
                black_box(writer.encrypt(black_box(&plaintext)).expect("encrypt"))
            })
        });

        let (mut writer, mut reader) = handshake(&f);
        let ciphertext = writer.encrypt(&plaintext).expect("encrypt");
        group.bench_function(format!("decrypt/{label}"), |b| {
            b.iter(|| {
                // Every iteration decrypts the same frame at counter 0.
                reader.set_counters_for_test(0, 0);
                black_box(reader.decrypt(black_box(&ciphertext)).expect("decrypt"))
            })
        });
    }
    group.finish();
}

fn full_handshake(c: &mut Criterion) {
    let f = fixture();
    c.bench_function("noise_handshake/xx_in_process", |b| {
        b.iter(|| black_box(handshake(&f)))
    });
}

criterion_group!(benches, transport, full_handshake);
criterion_main!(benches);
