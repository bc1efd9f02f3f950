//! zapin-sim: a protocol-faithful WhatsApp server with mock phones and fault injection.
//!
//! Uses `zapin-protocol` in the server role. It must never depend on `zapin-engine`: the simulator is
//! what keeps the engine honest, and it is itself kept honest by the unmodified Baileys client.
