//! zapin-sim: a protocol-faithful WhatsApp server with mock phones and fault injection.
//!
//! Uses `zapin-protocol` in the server role. It must never depend on `zapin-engine`: the simulator is
//! what keeps the engine honest, and it is itself kept honest by the unmodified Baileys client.
//!
//! This crate holds the server's state, the control API (documented in the crate's README), the
//! `/ws/chat` endpoint with its faults and idle timeout, the seam the protocol layer fills in
//! (`conn::handler::HandlerFactory`: one state machine per connection: Noise, codec, login,
//! pairing), the messaging router it calls (`router`) and the mock phones' Signal (`phone`, behind
//! the `PhoneActions` seam). Entry point: `run(SimConfig)`.

pub mod addr;
pub mod api;
pub mod appstate;
pub mod config;
pub mod conn;
pub mod faults;
pub mod intro;
pub mod keys;
pub mod media;
pub mod phone;
pub mod qr;
pub mod router;
mod serde_hex;
pub mod server;
pub mod sim;
pub mod state;
pub mod wire;

pub use config::SimConfig;
pub use server::{RunningSim, SimError, run};
pub use sim::{Sim, Stats};
