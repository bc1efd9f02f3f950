//! The simulator's control API (`/sim/...`) on arbitrary request bodies and path parameters:
//! every route must answer (4xx for bad input), never panic. Input = route selector byte ‖
//! path-parameter selector byte ‖ body. Each input gets a fresh seeded simulator (`common/sim_fixture.rs`), so runs are reproducible.
#![no_main]

#[path = "common/sim_fixture.rs"]
mod sim_fixture;

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use tower_service::Service;
use zapin_sim::api::{AppState, router};

use sim_fixture::{ALICE, BOB};

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/sim/accounts"),
    ("GET", "/sim/accounts/{p}"),
    ("POST", "/sim/accounts/{p}/scan"),
    ("POST", "/sim/accounts/{p}/link-code"),
    ("POST", "/sim/accounts/{p}/unlink"),
    ("POST", "/sim/accounts/{p}/messages"),
    ("GET", "/sim/accounts/{p}/messages"),
    ("GET", "/sim/accounts/{p}/receipts"),
    ("POST", "/sim/accounts/{p}/read"),
    ("POST", "/sim/groups"),
    ("GET", "/sim/groups/{p}"),
    ("POST", "/sim/faults"),
    ("DELETE", "/sim/faults"),
    ("GET", "/sim/stats"),
    ("PUT", "/sim/accounts/{p}/business"),
    ("DELETE", "/sim/accounts/{p}/business"),
    ("GET", "/sim/accounts/{p}/profile"),
    ("GET", "/sim/accounts/{p}/app-state"),
];

const PARAMS: &[&str] = &[
    ALICE,
    BOB,
    "15550003333",
    "15550001111@s.whatsapp.net",
    "120363000000000001@g.us",
    "x",
    "%FF",
    "0",
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds")
    })
}

fuzz_target!(|data: &[u8]| {
    let [route, param, body @ ..] = data else {
        return;
    };
    let (method, path) = ROUTES[usize::from(*route) % ROUTES.len()];
    let path = path.replace("{p}", PARAMS[usize::from(*param) % PARAMS.len()]);
    let Ok(method) = method.parse::<Method>() else {
        return;
    };
    let Ok(request) = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    // A fixture that does not build is a harness bug: fail loudly rather than fuzz nothing.
    let (sim, _) = sim_fixture::sim().expect("simulator fixture builds");
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let mut app = router(AppState { sim, shutdown });
    let response = runtime().block_on(async move {
        let response = app.call(request).await;
        match response {
            Ok(r) => axum::body::to_bytes(r.into_body(), 1 << 20)
                .await
                .map(|b| b.len())
                .ok(),
            Err(never) => match never {},
        }
    });
    std::hint::black_box(response);
});
