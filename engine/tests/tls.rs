//! `wss://`: a TLS terminator (tokio-rustls, certificates made by the `openssl` CLI at test time)
//! in front of the in-process simulator. A session trusting the test CA through
//! `EngineConfig::tls` pairs and opens end to end over TLS; one that does not trust it fails with
//! a typed TLS error naming the certificate problem, and its session retries with backoff instead
//! of spinning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zapin_engine::backoff::BackoffPolicy;
use zapin_engine::socket::{ConnError, Connection};
use zapin_engine::{
    ConnectionState, CreateOptions, EngineConfig, InstanceId, SessionManager, TlsTrust,
};
use zapin_protocol::crypto::KeyPair;
use zapin_protocol::proto::wa::ClientPayload;

mod common;
use common::*;

/// A CA and a leaf for `IP:127.0.0.1` signed by it, as PEM files in a temporary directory.
struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("the openssl CLI is needed for the TLS tests");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        run(&[
            &["req", "-x509", "-nodes", "-days", "2"][..],
            &ec,
            &[
                "-subj",
                "/CN=zapin test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat());
        run(&[
            &["req", "-nodes"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat());
        std::fs::write(
            dir.path().join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ]);
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Accepts TLS on a local port and pipes each connection to `backend` (the simulator). Every
/// handshake outcome is reported on the returned channel.
async fn tls_terminator(
    pki: &TestPki,
    backend: SocketAddr,
) -> (SocketAddr, mpsc::UnboundedReceiver<Result<(), String>>) {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pki.path("leaf.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.path("leaf.key")).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                    Ok(mut tls) => {
                        let _ = tx.send(Ok(()));
                        if let Ok(mut plain) = TcpStream::connect(backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn wss_config(sim: &zapin_sim::RunningSim, terminator: SocketAddr) -> EngineConfig {
    EngineConfig {
        ws_url: format!("wss://{terminator}/ws/chat"),
        ..engine_config(sim)
    }
}

#[tokio::test]
async fn pairs_and_opens_over_wss_with_an_extra_ca() {
    let pki = TestPki::generate();
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let (terminator, mut handshakes) = tls_terminator(&pki, sim.local_addr()).await;
    let config = EngineConfig {
        tls: TlsTrust::with_ca_file(&pki.path("ca.pem")).unwrap(),
        ..wss_config(&sim, terminator)
    };
    assert_eq!(config.tls.extra_roots().len(), 1);
    let api = Api::new(&sim);
    let manager = SessionManager::new(memory_store(), config);
    let mut rx = manager.subscribe();

    let (phone, _) = pair_by_qr(&manager, &mut rx, &api, "tls").await;
    assert_eq!(
        manager.state(&InstanceId::new("tls")),
        Some(ConnectionState::Open)
    );
    // The session really went through the terminator: its handshakes succeeded.
    let first = tokio::time::timeout(WAIT, handshakes.recv()).await.unwrap();
    assert_eq!(first, Some(Ok(())));
    let view = api.get(&format!("/sim/accounts/{phone}")).await;
    let online = view["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["online"] == true);
    assert!(online, "{view}");
    manager.shutdown().await;
}

#[tokio::test]
async fn a_session_facing_an_untrusted_certificate_retries_with_backoff() {
    let pki = TestPki::generate();
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let (terminator, mut handshakes) = tls_terminator(&pki, sim.local_addr()).await;
    // Default trust: webpki-roots only, so the test CA is unknown. Every retry waits a uniform
    // delay in [0, 200 ms].
    let delay = Duration::from_millis(200);
    let config = EngineConfig {
        backoff: BackoffPolicy {
            base: delay,
            cap: delay,
            stable_after: Duration::from_secs(30),
        },
        ..wss_config(&sim, terminator)
    };
    let manager = SessionManager::new(memory_store(), config);
    manager
        .create(
            "untrusted",
            CreateOptions {
                start: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // Eight failed handshakes are seven backoff waits apart. Seven uniform waits in [0, 200 ms]
    // sum to less than 100 ms with probability 0.5^7/7! ≈ 0.0002 %; a session reconnecting in a
    // loop does eight attempts in a few milliseconds.
    let started = Instant::now();
    let mut failures = 0;
    while failures < 8 {
        match tokio::time::timeout(WAIT, handshakes.recv()).await {
            Ok(Some(Err(_))) => failures += 1,
            Ok(Some(Ok(()))) => panic!("an untrusted handshake succeeded"),
            Ok(None) | Err(_) => panic!("the session stopped retrying"),
        }
    }
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "8 TLS attempts in {:?}: the session does not back off",
        started.elapsed()
    );
    // Still retrying, not stopped: a proxy certificate fixed later is picked up.
    assert_eq!(
        manager.state(&InstanceId::new("untrusted")),
        Some(ConnectionState::Connecting)
    );
    // The cause is readable while it retries (the state alone says only "connecting"). The
    // status is set right after a failed attempt, so wait for it rather than read it once.
    let handle = manager.get(&InstanceId::new("untrusted")).unwrap();
    tokio::time::timeout(
        WAIT,
        handle.wait_for(|s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("UnknownIssuer"))
        }),
    )
    .await
    .expect("last_error never named the certificate problem")
    .unwrap();
    manager.shutdown().await;
}

/// The reason the session logs and retries on: a typed TLS error naming the certificate problem.
#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error_naming_the_reason() {
    let pki = TestPki::generate();
    let sim = zapin_sim::run(sim_config()).await.unwrap();
    let (terminator, _handshakes) = tls_terminator(&pki, sim.local_addr()).await;
    let config = wss_config(&sim, terminator);
    let err = Connection::open(
        &config,
        None,
        KeyPair::from_private([1; 32]),
        KeyPair::from_private([2; 32]),
        None,
        &ClientPayload::default(),
        0,
    )
    .await
    .unwrap_err();
    match err {
        ConnError::Tls(reason) => assert!(reason.contains("UnknownIssuer"), "{reason}"),
        other => panic!("expected a TLS error, got {other}"),
    }
}

#[test]
fn a_bad_ca_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(
        &path,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = TlsTrust::with_ca_file(Path::new(&path)).unwrap_err();
    assert!(
        matches!(err, zapin_engine::TlsConfigError::BadCertificate { .. }),
        "{err}"
    );
}
