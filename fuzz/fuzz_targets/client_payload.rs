//! The responder's view of a decrypted ClientFinish payload: ClientPayload and the DeviceProps
//! nested in its pairing data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use zapin_protocol::proto::wa::{ClientPayload, DeviceProps};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ClientPayload::decode(data)
        && let Some(props) = p.device_pairing_data.and_then(|d| d.device_props)
    {
        let _ = DeviceProps::decode(props.as_slice());
    }
});
