//! Hex encodings for keys and byte strings in the JSON state snapshot (readable, and far smaller
//! than serde's default array-of-numbers).

use serde::{Deserialize, Deserializer, Serializer, de::Error};
use zapin_protocol::crypto::{KeyPair, PublicKey};

fn decode<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    hex::decode(s).map_err(D::Error::custom)
}

fn fixed<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    let v = decode(d)?;
    v.try_into()
        .map_err(|v: Vec<u8>| D::Error::custom(format!("expected {N} bytes, got {}", v.len())))
}

pub mod array32 {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        fixed::<D, 32>(d)
    }
}

pub mod array64 {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        fixed::<D, 64>(d)
    }
}

pub mod bytes {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        decode(d)
    }
}

/// A key pair is stored as its private half; the public half is recomputed on load.
pub mod key_pair {
    use super::*;
    pub fn serialize<S: Serializer>(v: &KeyPair, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v.private_bytes()))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyPair, D::Error> {
        Ok(KeyPair::from_private(fixed::<D, 32>(d)?))
    }
}

pub mod public_key {
    use super::*;
    pub fn serialize<S: Serializer>(v: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v.as_bytes()))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        Ok(PublicKey(fixed::<D, 32>(d)?))
    }
}
