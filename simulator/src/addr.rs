//! The few address forms the control API takes and prints (`155…@s.whatsapp.net`, `…@lid`,
//! `…:N@s.whatsapp.net`, `…@g.us`). This is text for the HTTP side only; wire JIDs are the
//! protocol crate's business.

pub const PN_SERVER: &str = "s.whatsapp.net";
pub const LID_SERVER: &str = "lid";
pub const GROUP_SERVER: &str = "g.us";

/// A chat the control API names: a user (by phone number or LID) or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAddr {
    Phone(String),
    Lid(String),
    Group(String),
}

/// A device the control API names: `user[:device]@server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAddr {
    /// Phone number or LID user, depending on `lid`.
    pub user: String,
    pub lid: bool,
    pub device: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid {1}")]
pub struct AddrError(pub String, pub &'static str);

/// A phone number as the control API takes it: 5 to 15 ASCII digits, no leading zero.
pub fn valid_phone(s: &str) -> bool {
    (5..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0')
}

fn digits(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
}

impl ChatAddr {
    pub fn parse(s: &str) -> Result<Self, AddrError> {
        let err = || {
            AddrError(
                s.to_string(),
                "chat JID (user@s.whatsapp.net, user@lid or id@g.us)",
            )
        };
        let (user, server) = s.split_once('@').ok_or_else(err)?;
        match server {
            PN_SERVER if valid_phone(user) => Ok(Self::Phone(user.to_string())),
            LID_SERVER if digits(user, 20) => Ok(Self::Lid(user.to_string())),
            GROUP_SERVER if valid_group_id(user) => Ok(Self::Group(user.to_string())),
            _ => Err(err()),
        }
    }
}

impl std::fmt::Display for ChatAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Phone(u) => write!(f, "{u}@{PN_SERVER}"),
            Self::Lid(u) => write!(f, "{u}@{LID_SERVER}"),
            Self::Group(g) => write!(f, "{g}@{GROUP_SERVER}"),
        }
    }
}

/// Group ids are digits, optionally the legacy `creator-timestamp` form.
pub fn valid_group_id(s: &str) -> bool {
    match s.split_once('-') {
        Some((a, b)) => digits(a, 20) && digits(b, 20),
        None => digits(s, 30),
    }
}

impl DeviceAddr {
    pub fn parse(s: &str) -> Result<Self, AddrError> {
        let err = || {
            AddrError(
                s.to_string(),
                "device JID (user[:device]@s.whatsapp.net or @lid)",
            )
        };
        let (user_dev, server) = s.split_once('@').ok_or_else(err)?;
        let (user, device) = match user_dev.split_once(':') {
            Some((u, d)) if digits(d, 5) => (u, d.parse::<u16>().map_err(|_| err())?),
            Some(_) => return Err(err()),
            None => (user_dev, 0),
        };
        match server {
            PN_SERVER if valid_phone(user) => Ok(Self {
                user: user.to_string(),
                lid: false,
                device,
            }),
            LID_SERVER if digits(user, 20) => Ok(Self {
                user: user.to_string(),
                lid: true,
                device,
            }),
            _ => Err(err()),
        }
    }
}

pub fn pn_jid(phone: &str) -> String {
    format!("{phone}@{PN_SERVER}")
}

pub fn lid_jid(lid: &str) -> String {
    format!("{lid}@{LID_SERVER}")
}

pub fn pn_device_jid(phone: &str, device: u16) -> String {
    if device == 0 {
        pn_jid(phone)
    } else {
        format!("{phone}:{device}@{PN_SERVER}")
    }
}

pub fn lid_device_jid(lid: &str, device: u16) -> String {
    if device == 0 {
        lid_jid(lid)
    } else {
        format!("{lid}:{device}@{LID_SERVER}")
    }
}

pub fn group_jid(id: &str) -> String {
    format!("{id}@{GROUP_SERVER}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats_and_devices() {
        assert_eq!(
            ChatAddr::parse("15550000001@s.whatsapp.net"),
            Ok(ChatAddr::Phone("15550000001".into()))
        );
        assert_eq!(
            ChatAddr::parse("120363000000000001@g.us"),
            Ok(ChatAddr::Group("120363000000000001".into()))
        );
        assert!(ChatAddr::parse("15550000001").is_err());
        assert!(ChatAddr::parse("abc@s.whatsapp.net").is_err());
        assert!(ChatAddr::parse("1555@example.com").is_err());
        let d = DeviceAddr::parse("15550000001:3@s.whatsapp.net").unwrap();
        assert_eq!(
            (d.user.as_str(), d.lid, d.device),
            ("15550000001", false, 3)
        );
        assert_eq!(DeviceAddr::parse("123:2@lid").unwrap().device, 2);
        assert!(DeviceAddr::parse("15550000001:x@s.whatsapp.net").is_err());
        assert!(DeviceAddr::parse("15550000001:99999999@s.whatsapp.net").is_err());
        assert_eq!(pn_device_jid("1555", 0), "1555@s.whatsapp.net");
        assert_eq!(lid_device_jid("9", 4), "9:4@lid");
    }
}
