//! prost decoding of every wa.proto message the client parses from the network, on arbitrary
//! bytes; a decoded message is re-encoded and must decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use zapin_protocol::proto::wa;

/// Compares encodings rather than values, since NaN doubles (LocationMessage) are unequal to
/// themselves.
fn check<M: Message + Default>(data: &[u8]) {
    if let Ok(m) = M::decode(data) {
        let bytes = m.encode_to_vec();
        let again = M::decode(bytes.as_slice()).expect("re-encoded message decodes");
        assert_eq!(bytes, again.encode_to_vec());
    }
}

fuzz_target!(|data: &[u8]| {
    check::<wa::Message>(data);
    check::<wa::HistorySync>(data);
    check::<wa::WebMessageInfo>(data);
    check::<wa::AdvSignedDeviceIdentityHmac>(data);
    check::<wa::AdvSignedDeviceIdentity>(data);
    check::<wa::AdvDeviceIdentity>(data);
    check::<wa::AdvSignedKeyIndexList>(data);
    check::<wa::AdvKeyIndexList>(data);
    check::<wa::SyncdPatch>(data);
    check::<wa::SyncdSnapshot>(data);
    check::<wa::SyncdMutations>(data);
    check::<wa::SyncActionData>(data);
    check::<wa::ExternalBlobReference>(data);
    check::<wa::HandshakeMessage>(data);
    check::<wa::CertChain>(data);
});
