//! The `ClientPayload` sent in the Noise ClientFinish (wa-protocol.md §3): a registration payload
//! for an unpaired device, a login payload for a paired one.

use md5::{Digest, Md5};
use prost::Message;
use zapin_protocol::proto::wa::{ClientPayload, DeviceProps, client_payload, device_props};
use zapin_signal_store::DeviceCredentials;

use crate::config::EngineConfig;

// Enum values from §3.1 (kept as numbers: the generated enums are only used for decoding).
const PLATFORM_WEB: i32 = 14;
const RELEASE: i32 = 0;
const WIFI_UNKNOWN: i32 = 1;
const USER_ACTIVATED: i32 = 1;
const WEB_BROWSER: i32 = 0;

/// MD5 of the version string, the registration's `buildHash`.
pub fn build_hash(version: &str) -> [u8; 16] {
    Md5::digest(version.as_bytes()).into()
}

fn user_agent(config: &EngineConfig) -> client_payload::UserAgent {
    let [primary, secondary, tertiary] = config.version;
    client_payload::UserAgent {
        platform: Some(PLATFORM_WEB),
        app_version: Some(client_payload::user_agent::AppVersion {
            primary: Some(primary),
            secondary: Some(secondary),
            tertiary: Some(tertiary),
            ..Default::default()
        }),
        mcc: Some("000".into()),
        mnc: Some("000".into()),
        os_version: Some("0.1".into()),
        device: Some("Desktop".into()),
        os_build_number: Some("0.1".into()),
        release_channel: Some(RELEASE),
        locale_language_iso_639_1: Some("en".into()),
        locale_country_iso_3166_1_alpha_2: Some("US".into()),
        ..Default::default()
    }
}

fn base(config: &EngineConfig, push_name: Option<&str>) -> ClientPayload {
    ClientPayload {
        user_agent: Some(user_agent(config)),
        web_info: Some(client_payload::WebInfo {
            web_sub_platform: Some(WEB_BROWSER),
            ..Default::default()
        }),
        push_name: push_name.map(str::to_owned),
        connect_type: Some(WIFI_UNKNOWN),
        connect_reason: Some(USER_ACTIVATED),
        ..Default::default()
    }
}

/// `DeviceProps` shown to the phone: OS name, platform type and a history-sync config.
pub fn device_props(config: &EngineConfig) -> DeviceProps {
    DeviceProps {
        os: Some(config.browser.os.clone()),
        version: Some(device_props::AppVersion {
            primary: Some(10),
            secondary: Some(15),
            tertiary: Some(7),
            ..Default::default()
        }),
        platform_type: Some(config.browser.platform_type()),
        require_full_sync: Some(false),
        history_sync_config: Some(device_props::HistorySyncConfig {
            storage_quota_mb: Some(10240),
            inline_initial_payload_in_e2ee_msg: Some(true),
            ..Default::default()
        }),
    }
}

/// The registration payload (no `username`): the server answers with `pair-device`.
pub fn registration_payload(config: &EngineConfig, creds: &DeviceCredentials) -> ClientPayload {
    let skey_id = creds.signed_prekey.id.to_be_bytes();
    let pairing = client_payload::DevicePairingRegistrationData {
        e_regid: Some(creds.registration_id.to_be_bytes().to_vec()),
        e_keytype: Some(vec![5]),
        e_ident: Some(creds.identity_key.public.to_vec()),
        e_skey_id: Some(skey_id[1..].to_vec()),
        e_skey_val: Some(creds.signed_prekey.key_pair.public.to_vec()),
        e_skey_sig: Some(creds.signed_prekey.signature.to_vec()),
        build_hash: Some(build_hash(&config.version_string()).to_vec()),
        device_props: Some(device_props(config).encode_to_vec()),
    };
    ClientPayload {
        passive: Some(false),
        pull: Some(false),
        device_pairing_data: Some(pairing),
        ..base(config, creds.push_name.as_deref())
    }
}

/// The login payload of a paired device.
pub fn login_payload(
    config: &EngineConfig,
    user: u64,
    device: u32,
    push_name: Option<&str>,
) -> ClientPayload {
    ClientPayload {
        username: Some(user),
        device: Some(device),
        passive: Some(true),
        pull: Some(true),
        lid_db_migrated: Some(false),
        ..base(config, push_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zapin_signal_store::{KeyPairBytes, Secret32, SignedPreKey};

    fn creds() -> DeviceCredentials {
        DeviceCredentials {
            registration_id: 0x0102_0304,
            noise_key: KeyPairBytes::new([1; 32], [2; 32]),
            identity_key: KeyPairBytes::new([3; 32], [4; 32]),
            signed_prekey: SignedPreKey {
                id: 0x00ab_cdef,
                key_pair: KeyPairBytes::new([5; 32], [6; 32]),
                signature: [7; 64],
                created_at: 0,
            },
            adv_secret_key: Secret32::new([8; 32]),
            account: None,
            push_name: None,
            platform: None,
            routing_info: None,
        }
    }

    #[test]
    fn build_hash_is_md5_of_the_version_string() {
        // MD5("2.3000.1045649367"), computed independently (python hashlib).
        assert_eq!(
            hex::encode(build_hash("2.3000.1045649367")),
            "9fa53af9421567b114e33c9bb1ef7db2"
        );
        assert_eq!(
            hex::encode(build_hash("")),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }

    #[test]
    fn registration_payload_has_the_exact_field_widths() {
        let config = EngineConfig::default();
        let p = registration_payload(&config, &creds());
        assert_eq!(p.username, None);
        let d = p.device_pairing_data.unwrap();
        assert_eq!(d.e_regid.unwrap(), [1, 2, 3, 4]);
        assert_eq!(d.e_keytype.unwrap(), [5]);
        assert_eq!(d.e_ident.unwrap(), [3; 32]);
        assert_eq!(d.e_skey_id.unwrap(), [0xab, 0xcd, 0xef]);
        assert_eq!(d.e_skey_val.unwrap(), [5; 32]);
        assert_eq!(d.e_skey_sig.unwrap(), [7; 64]);
        assert_eq!(d.build_hash.unwrap().len(), 16);
        let props = DeviceProps::decode(d.device_props.unwrap().as_slice()).unwrap();
        assert_eq!(props.os.as_deref(), Some("Mac OS"));
        assert_eq!(props.platform_type, Some(1));
        assert_eq!(p.passive, Some(false));
        assert_eq!(p.user_agent.unwrap().platform, Some(PLATFORM_WEB));
    }

    #[test]
    fn login_payload_is_passive_and_pulls() {
        let config = EngineConfig::default();
        let p = login_payload(&config, 15550000001, 7, Some("Bot"));
        assert_eq!(p.username, Some(15550000001));
        assert_eq!(p.device, Some(7));
        assert_eq!(p.passive, Some(true));
        assert_eq!(p.pull, Some(true));
        assert!(p.device_pairing_data.is_none());
        assert_eq!(p.push_name.as_deref(), Some("Bot"));
        let bytes = p.encode_to_vec();
        assert_eq!(ClientPayload::decode(bytes.as_slice()).unwrap(), p);
    }
}
