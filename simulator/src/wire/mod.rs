//! The protocol layer of the simulator: one `WireConn` per WebSocket connection runs frames,
//! the Noise responder, `ClientPayload`, registration and pairing (QR and link code), login, and
//! the IQs a companion sends; stanzas of logged-in devices that are not answered here go to
//! `crate::router`. `WiredHandlers` is the default `HandlerFactory` of `SimConfig`.

pub mod account_iq;
pub mod conn;
pub mod iq;
pub mod link_code;
pub mod nodes;
pub mod pairing;

use std::sync::{Arc, OnceLock};

use zapin_protocol::noise::{CertChainBuilder, Validity};

use crate::conn::handler::{ConnContext, ConnectionHandler, HandlerFactory};
use crate::state::{SimState, unix_now};

/// Makes a `WireConn` per connection. The certificate chain is signed once, on the first
/// connection (the keys live in the state, which exists only once the simulator runs).
#[derive(Debug, Default)]
pub struct WiredHandlers {
    cert_chain: OnceLock<Arc<Vec<u8>>>,
}

/// How long the certificates are valid around the start time: clients with skewed clocks or long
/// test runs must never see them expire.
const CERT_BACKDATE_SECS: u64 = 24 * 3600;
const CERT_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

/// Signs root → intermediate → leaf (the server static key) with deterministic randomness.
pub fn build_cert_chain(state: &SimState) -> Vec<u8> {
    let keys = state.server_keys();
    let source = state.key_source();
    let now = unix_now().as_secs();
    let validity = Validity {
        not_before: now.saturating_sub(CERT_BACKDATE_SECS),
        not_after: now.saturating_add(CERT_LIFETIME_SECS),
    };
    let random = |label: &str| {
        let mut r = [0u8; 64];
        r[..32].copy_from_slice(&source.bytes(&format!("{label}/0")));
        r[32..].copy_from_slice(&source.bytes(&format!("{label}/1")));
        r
    };
    CertChainBuilder {
        intermediate_serial: 1,
        intermediate_validity: validity,
        leaf_serial: 2,
        leaf_validity: validity,
    }
    .build(
        &keys.root,
        &keys.intermediate,
        keys.server_static.public(),
        &[random("cert/intermediate"), random("cert/leaf")],
    )
}

impl HandlerFactory for WiredHandlers {
    fn new_handler(&self, ctx: ConnContext) -> Box<dyn ConnectionHandler> {
        let chain = self
            .cert_chain
            .get_or_init(|| Arc::new(build_cert_chain(ctx.sim.state())))
            .clone();
        Box::new(conn::WireConn::new(ctx, chain))
    }
}
