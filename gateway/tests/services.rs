//! The external services CI provides (PostgreSQL, Redis) answer at the URLs tests are given.
//!
//! This also shows the rule every service-backed test follows: the URL comes from
//! `ZAPIN_TEST_DATABASE_URL` / `ZAPIN_TEST_REDIS_URL`; without it the test is skipped with a printed
//! reason, except under `CI=true`, where a missing service is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failure

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The service URL from `var`, or `None` (test skipped) on a developer machine without it.
fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but {var} is not set: .ci/run must provide this service")
        }
        _ => {
            eprintln!("skipped: {var} is not set (set it to run this test against a real service)");
            None
        }
    }
}

/// `host:port` of a `scheme://[userinfo@]host[:port][/…]` URL.
fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    }
}

fn connect(addr: &str) -> TcpStream {
    let stream =
        TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

#[test]
fn redis_answers_ping() {
    let Some(url) = service_url("ZAPIN_TEST_REDIS_URL") else {
        return;
    };
    let mut stream = connect(&host_port(&url, 6379));
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+PONG\r\n");
}

#[test]
fn postgres_answers_the_ssl_probe() {
    let Some(url) = service_url("ZAPIN_TEST_DATABASE_URL") else {
        return;
    };
    let mut stream = connect(&host_port(&url, 5432));
    // SSLRequest: length 8, code 80877103. A PostgreSQL server answers one byte, 'S' or 'N'.
    stream
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .unwrap();
    let mut reply = [0u8; 1];
    stream.read_exact(&mut reply).unwrap();
    assert!(matches!(&reply, b"S" | b"N"), "unexpected reply {reply:?}");
}

#[test]
fn host_port_of_service_urls() {
    assert_eq!(
        host_port("postgres://postgres@127.0.0.1:5432/test", 5432),
        "127.0.0.1:5432"
    );
    assert_eq!(host_port("redis://127.0.0.1:6379", 6379), "127.0.0.1:6379");
    assert_eq!(host_port("redis://:pw@cache", 6379), "cache:6379");
    assert_eq!(
        host_port("postgres://u:p@db/x?sslmode=disable", 5432),
        "db:5432"
    );
}
