//! Rough resident cost of one idle `wss://` transport versus plain TCP, for the numbers in
//! benches/RESULTS.md ("engine wss:// per-connection cost").
//!
//! The parent opens N plain TCP connections, then N TLS connections (rustls, ring, the engine's
//! settings: webpki-roots + one extra CA), each with a task parked in a read as the session actor
//! is, and reports the VmRSS growth per connection of each kind. The server side runs in a child
//! process (this binary re-executed with `--server`) so it does not count. Certificates come from
//! the `openssl` CLI.
//!
//! `cargo run --release -p zapin-engine --example tls_conn_cost -- 1000`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success(), "openssl {args:?}");
}

fn make_pki(dir: &Path) {
    let ec = "ec_paramgen_curve:prime256v1";
    openssl(
        dir,
        &[
            "req", "-x509", "-nodes", "-days", "1", "-newkey", "ec", "-pkeyopt", ec, "-subj",
            "/CN=ca", "-keyout", "ca.key", "-out", "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            ec,
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ],
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
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
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Child: a plain and a TLS listener; prints both ports, holds every connection open.
async fn server(dir: &Path) {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("leaf.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("leaf.key")).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!(
        "{} {}",
        plain.local_addr().unwrap().port(),
        tls.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        while let Ok((s, _)) = plain.accept().await {
            tokio::spawn(async move {
                let mut s = s;
                let _ = s.read(&mut [0u8; 1]).await;
            });
        }
    });
    while let Ok((s, _)) = tls.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(mut s) = acceptor.accept(s).await {
                let _ = s.read(&mut [0u8; 1]).await;
            }
        });
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--server") {
        server(Path::new(&args[2])).await;
        return;
    }
    let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--server")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut ports = line.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    let (plain_port, tls_port) = (ports.next().unwrap(), ports.next().unwrap());

    // The engine's client configuration: ring, webpki-roots plus the extra CA.
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots
        .add(CertificateDer::from_pem_file(dir.path().join("ca.pem")).unwrap())
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("127.0.0.1").unwrap();

    // Warm up lazy statics and the runtime before the baseline.
    let warm = TcpStream::connect(("127.0.0.1", tls_port)).await.unwrap();
    let warm = connector.connect(name.clone(), warm).await.unwrap();
    drop(warm);

    let before = rss_kib();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", plain_port)).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let _ = s.read(&mut [0u8; 1]).await;
        }));
    }
    tokio::task::yield_now().await;
    let plain = rss_kib();
    for _ in 0..n {
        let s = TcpStream::connect(("127.0.0.1", tls_port)).await.unwrap();
        let mut s = connector.connect(name.clone(), s).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let _ = s.read(&mut [0u8; 1]).await;
        }));
    }
    tokio::task::yield_now().await;
    let tls = rss_kib();
    let per = |kib: u64| kib as f64 / n as f64;
    println!(
        "n={n} plain TCP: {:.2} KiB/conn; TLS: {:.2} KiB/conn; TLS overhead: {:.2} KiB/conn",
        per(plain - before),
        per(tls - plain),
        per(tls - plain) - per(plain - before)
    );
    let _ = child.kill();
    let _ = child.wait();
}
