//! Curve25519 primitives shared by Noise, Signal and pairing.

pub mod keys;
pub mod xeddsa;

pub use keys::{KeyPair, PublicKey};
