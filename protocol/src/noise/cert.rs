//! The server's certificate chain (wa-protocol.md §2.4): root → intermediate → leaf, where the
//! leaf certifies the server's Noise static key. The responder issues it from a root key pair; the
//! initiator verifies it against a trust root chosen at run time (WhatsApp's real root in
//! production, the simulator's own root in tests).

use prost::Message as _;

use crate::crypto::{KeyPair, PublicKey, xeddsa};
use crate::proto::wa::CertChain;
use crate::proto::wa::cert_chain::NoiseCertificate;
use crate::proto::wa::cert_chain::noise_certificate::Details;

/// WhatsApp's root certificate key ("WhatsAppLongTerm1", serial 0), raw Montgomery form.
pub const WHATSAPP_ROOT_PUBLIC_KEY: PublicKey = PublicKey([
    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37,
    0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
]);

/// The serial of the root, which the intermediate must name as its issuer.
const ROOT_SERIAL: u32 = 0;

/// Which certificate of the chain an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Intermediate,
    Leaf,
}

impl std::fmt::Display for CertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertKind::Intermediate => "intermediate",
            CertKind::Leaf => "leaf",
        })
    }
}

/// Why a certificate chain was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("malformed certificate chain: {0}")]
    Malformed(&'static str),
    #[error("{0} certificate key is not 32 bytes")]
    BadKeyLength(CertKind),
    #[error("{0} certificate signature does not verify")]
    BadSignature(CertKind),
    #[error("{kind} certificate names issuer serial {found}, expected {expected}")]
    WrongIssuerSerial {
        kind: CertKind,
        expected: u32,
        found: u32,
    },
    #[error("{kind} certificate is not valid before {not_before} (now {now})")]
    NotYetValid {
        kind: CertKind,
        not_before: u64,
        now: u64,
    },
    #[error("{kind} certificate expired at {not_after} (now {now})")]
    Expired {
        kind: CertKind,
        not_after: u64,
        now: u64,
    },
    #[error("leaf certificate key does not match the server's static key")]
    KeyMismatch,
}

/// A certificate's validity window, inclusive at both ends, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: u64,
    pub not_after: u64,
}

/// The decoded `NoiseCertificate.Details` of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertDetails {
    pub serial: u32,
    pub issuer_serial: u32,
    pub key: PublicKey,
    pub validity: Validity,
}

impl CertDetails {
    /// Serializes the details. The issuer serial is always written, even when 0, as WhatsApp's
    /// real intermediate certificate does.
    pub fn encode(&self) -> Vec<u8> {
        Details {
            serial: Some(self.serial),
            issuer_serial: Some(self.issuer_serial),
            key: Some(self.key.0.to_vec()),
            not_before: Some(self.validity.not_before),
            not_after: Some(self.validity.not_after),
        }
        .encode_to_vec()
    }

    fn decode(bytes: &[u8], kind: CertKind) -> Result<Self, CertError> {
        let d = Details::decode(bytes).map_err(|_| CertError::Malformed("details protobuf"))?;
        let key = d.key.ok_or(CertError::Malformed("details without key"))?;
        let key =
            <[u8; 32]>::try_from(key.as_slice()).map_err(|_| CertError::BadKeyLength(kind))?;
        let (Some(not_before), Some(not_after)) = (d.not_before, d.not_after) else {
            return Err(CertError::Malformed("details without validity"));
        };
        Ok(Self {
            serial: d.serial.unwrap_or(0),
            issuer_serial: d.issuer_serial.unwrap_or(0),
            key: PublicKey(key),
            validity: Validity {
                not_before,
                not_after,
            },
        })
    }

    fn check_validity(&self, kind: CertKind, now: u64) -> Result<(), CertError> {
        let Validity {
            not_before,
            not_after,
        } = self.validity;
        if now < not_before {
            return Err(CertError::NotYetValid {
                kind,
                not_before,
                now,
            });
        }
        if now > not_after {
            return Err(CertError::Expired {
                kind,
                not_after,
                now,
            });
        }
        Ok(())
    }
}

/// A chain that passed every check in [`verify_cert_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCertChain {
    pub intermediate: CertDetails,
    pub leaf: CertDetails,
}

/// Signs `details` with `issuer`'s key. `random` is the 64 bytes of XEdDSA signing randomness.
/// Exposed so that tests and the simulator can craft deliberately broken chains.
pub fn issue_certificate(
    issuer: &KeyPair,
    details: &CertDetails,
    random: &[u8; 64],
) -> NoiseCertificate {
    let details = details.encode();
    let signature = xeddsa::sign(issuer, &details, random);
    NoiseCertificate {
        details: Some(details),
        signature: Some(signature.to_vec()),
    }
}

/// Builds the chain a responder sends: an intermediate certificate signed by the root (issuer
/// serial 0), and a leaf certificate for the server's static key signed by the intermediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertChainBuilder {
    pub intermediate_serial: u32,
    pub intermediate_validity: Validity,
    pub leaf_serial: u32,
    pub leaf_validity: Validity,
}

impl CertChainBuilder {
    /// Returns the serialized `CertChain`, ready for [`super::ServerHandshake::new`].
    /// `random` holds the signing randomness for the intermediate and the leaf signature.
    pub fn build(
        &self,
        root: &KeyPair,
        intermediate: &KeyPair,
        server_static: &PublicKey,
        random: &[[u8; 64]; 2],
    ) -> Vec<u8> {
        let intermediate_cert = issue_certificate(
            root,
            &CertDetails {
                serial: self.intermediate_serial,
                issuer_serial: ROOT_SERIAL,
                key: *intermediate.public(),
                validity: self.intermediate_validity,
            },
            &random[0],
        );
        let leaf_cert = issue_certificate(
            intermediate,
            &CertDetails {
                serial: self.leaf_serial,
                issuer_serial: self.intermediate_serial,
                key: *server_static,
                validity: self.leaf_validity,
            },
            &random[1],
        );
        CertChain {
            leaf: Some(leaf_cert),
            intermediate: Some(intermediate_cert),
        }
        .encode_to_vec()
    }
}

/// Verifies a serialized `CertChain` as WhatsApp's stricter clients do: both signatures, the
/// issuer-serial links, both validity windows, and that the leaf certifies `server_static` (the
/// key the server proved possession of in the handshake).
pub fn verify_cert_chain(
    chain: &[u8],
    trust_root: &PublicKey,
    server_static: &PublicKey,
    now_unix: u64,
) -> Result<VerifiedCertChain, CertError> {
    let chain = CertChain::decode(chain).map_err(|_| CertError::Malformed("chain protobuf"))?;
    let (inter_details, inter_sig) = parts(chain.intermediate.as_ref(), CertKind::Intermediate)?;
    let (leaf_details, leaf_sig) = parts(chain.leaf.as_ref(), CertKind::Leaf)?;

    let intermediate = CertDetails::decode(inter_details, CertKind::Intermediate)?;
    if !xeddsa::verify_slice(trust_root, inter_details, inter_sig) {
        return Err(CertError::BadSignature(CertKind::Intermediate));
    }
    if intermediate.issuer_serial != ROOT_SERIAL {
        return Err(CertError::WrongIssuerSerial {
            kind: CertKind::Intermediate,
            expected: ROOT_SERIAL,
            found: intermediate.issuer_serial,
        });
    }
    intermediate.check_validity(CertKind::Intermediate, now_unix)?;

    let leaf = CertDetails::decode(leaf_details, CertKind::Leaf)?;
    if !xeddsa::verify_slice(&intermediate.key, leaf_details, leaf_sig) {
        return Err(CertError::BadSignature(CertKind::Leaf));
    }
    if leaf.issuer_serial != intermediate.serial {
        return Err(CertError::WrongIssuerSerial {
            kind: CertKind::Leaf,
            expected: intermediate.serial,
            found: leaf.issuer_serial,
        });
    }
    leaf.check_validity(CertKind::Leaf, now_unix)?;
    if leaf.key != *server_static {
        return Err(CertError::KeyMismatch);
    }
    Ok(VerifiedCertChain { intermediate, leaf })
}

fn parts(cert: Option<&NoiseCertificate>, kind: CertKind) -> Result<(&[u8], &[u8]), CertError> {
    let cert = cert.ok_or(CertError::Malformed(match kind {
        CertKind::Leaf => "no leaf certificate",
        CertKind::Intermediate => "no intermediate certificate",
    }))?;
    match (&cert.details, &cert.signature) {
        (Some(d), Some(s)) if s.len() == 64 => Ok((d, s)),
        (Some(_), Some(_)) => Err(CertError::Malformed("signature is not 64 bytes")),
        _ => Err(CertError::Malformed(
            "certificate without details or signature",
        )),
    }
}
