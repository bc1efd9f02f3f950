//! JIDs: WhatsApp addresses (`user[_agent][:device]@server`), their string form, and the
//! Signal protocol address derived from them.
//!
//! This module owns the typed model only; how a JID is laid out on the wire (JID_PAIR, AD_JID,
//! FB_JID, INTEROP_JID) lives in `binary`. The string form follows Baileys
//! (`user_agent:device@server`, interop as `integrator-user:device@interop`) because it is the
//! form zapin's HTTP surface and logs exchange with Baileys-derived tooling.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The part after `@`. Only servers WhatsApp actually uses are modelled; anything else is
/// rejected by [`Jid::from_str`] and kept as a plain string by the node decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    /// `s.whatsapp.net`: phone-number users (and the server itself, with an empty user).
    Pn,
    /// `lid`: privacy-preserving user ids.
    Lid,
    /// `g.us`: groups.
    Group,
    /// `broadcast`: status and broadcast lists.
    Broadcast,
    /// `newsletter`: channels.
    Newsletter,
    /// `hosted`: Cloud-API hosted phone numbers.
    Hosted,
    /// `hosted.lid`: hosted LIDs.
    HostedLid,
    /// `bot`: Meta AI and other bots.
    Bot,
    /// `c.us`: legacy user server, still seen in a few constants.
    LegacyUser,
    /// `msgr`: Messenger users (FB_JID on the wire).
    Msgr,
    /// `interop`: third-party interop users (INTEROP_JID on the wire).
    Interop,
}

impl Server {
    pub const ALL: [Server; 11] = [
        Server::Pn,
        Server::Lid,
        Server::Group,
        Server::Broadcast,
        Server::Newsletter,
        Server::Hosted,
        Server::HostedLid,
        Server::Bot,
        Server::LegacyUser,
        Server::Msgr,
        Server::Interop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Server::Pn => "s.whatsapp.net",
            Server::Lid => "lid",
            Server::Group => "g.us",
            Server::Broadcast => "broadcast",
            Server::Newsletter => "newsletter",
            Server::Hosted => "hosted",
            Server::HostedLid => "hosted.lid",
            Server::Bot => "bot",
            Server::LegacyUser => "c.us",
            Server::Msgr => "msgr",
            Server::Interop => "interop",
        }
    }

    pub fn from_name(name: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The AD_JID domain byte, for the four servers that have one.
    pub fn ad_domain(self) -> Option<u8> {
        match self {
            Server::Pn => Some(0),
            Server::Lid => Some(1),
            Server::Hosted => Some(128),
            Server::HostedLid => Some(129),
            _ => None,
        }
    }

    /// Whether a JID on this server can carry a device number.
    pub fn has_devices(self) -> bool {
        self.ad_domain().is_some() || matches!(self, Server::Msgr | Server::Interop)
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WhatsApp address.
///
/// `agent` is a raw AD_JID domain byte that is not one of the four known domains (WhatsMeow
/// keeps such values as an "agent" on `s.whatsapp.net`); it is 0 almost always.
/// `integrator` is only meaningful on `interop`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    pub user: String,
    pub agent: u8,
    pub device: u16,
    pub integrator: u16,
    pub server: Server,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JidError {
    #[error("JID has no '@'")]
    MissingAt,
    #[error("unknown JID server {0:?}")]
    UnknownServer(String),
    #[error("invalid device number in JID")]
    InvalidDevice,
    #[error("invalid agent in JID")]
    InvalidAgent,
    #[error("invalid integrator in interop JID")]
    InvalidIntegrator,
    #[error("invalid character in JID user")]
    InvalidUser,
}

impl Jid {
    /// `user@server`, device 0.
    pub fn new(user: impl Into<String>, server: Server) -> Jid {
        Jid {
            user: user.into(),
            agent: 0,
            device: 0,
            integrator: 0,
            server,
        }
    }

    /// `user:device@server`.
    pub fn with_device(user: impl Into<String>, device: u16, server: Server) -> Jid {
        Jid {
            device,
            ..Jid::new(user, server)
        }
    }

    /// A server-only JID such as `@s.whatsapp.net` (written `FA 00 03`).
    pub fn server_only(server: Server) -> Jid {
        Jid::new("", server)
    }

    pub fn pn(user: impl Into<String>) -> Jid {
        Jid::new(user, Server::Pn)
    }

    pub fn lid(user: impl Into<String>) -> Jid {
        Jid::new(user, Server::Lid)
    }

    pub fn group(id: impl Into<String>) -> Jid {
        Jid::new(id, Server::Group)
    }

    /// The same user without device/agent: the "non-AD" JID used as a chat id.
    pub fn to_non_ad(&self) -> Jid {
        Jid {
            user: self.user.clone(),
            agent: 0,
            device: 0,
            integrator: self.integrator,
            server: self.server,
        }
    }

    pub fn is_group(&self) -> bool {
        self.server == Server::Group
    }

    pub fn is_broadcast(&self) -> bool {
        self.server == Server::Broadcast
    }

    pub fn is_status_broadcast(&self) -> bool {
        self.server == Server::Broadcast && self.user == "status"
    }

    pub fn is_newsletter(&self) -> bool {
        self.server == Server::Newsletter
    }

    pub fn is_pn(&self) -> bool {
        self.server == Server::Pn
    }

    pub fn is_lid(&self) -> bool {
        self.server == Server::Lid
    }

    pub fn is_hosted(&self) -> bool {
        matches!(self.server, Server::Hosted | Server::HostedLid)
    }

    pub fn is_bot(&self) -> bool {
        self.server == Server::Bot
    }

    /// A server-only JID (empty user), e.g. the `to` of an IQ addressed to WhatsApp itself.
    pub fn is_server(&self) -> bool {
        self.user.is_empty()
    }

    /// The domain used for Signal addresses: the AD_JID domain, or the raw agent.
    pub fn domain(&self) -> u8 {
        if self.agent != 0 {
            return self.agent;
        }
        self.server.ad_domain().unwrap_or(0)
    }

    /// Signal protocol address name: `user` for PN, `user_<domain>` otherwise (LID → `user_1`).
    pub fn signal_name(&self) -> String {
        match self.domain() {
            0 => self.user.clone(),
            d => format!("{}_{}", self.user, d),
        }
    }

    /// Signal protocol address as `name.device`, e.g. `123456789_1.3` for LID device 3.
    pub fn signal_address(&self) -> String {
        format!("{}.{}", self.signal_name(), self.device)
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.server == Server::Interop {
            write!(f, "{}-", self.integrator)?;
        }
        f.write_str(&self.user)?;
        if self.agent != 0 {
            write!(f, "_{}", self.agent)?;
        }
        if self.device != 0 {
            write!(f, ":{}", self.device)?;
        }
        write!(f, "@{}", self.server)
    }
}

fn parse_number<T: FromStr>(s: &str, err: JidError) -> Result<T, JidError> {
    // `u16::from_str` accepts a leading '+', which would not survive a round trip.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(err);
    }
    s.parse().map_err(|_| err)
}

impl FromStr for Jid {
    type Err = JidError;

    /// Parses `user[_agent][:device]@server` (and `integrator-user:device@interop`).
    /// Every accepted string prints back identically, which the node encoder relies on when it
    /// decides whether a string may be written as a JID.
    fn from_str(s: &str) -> Result<Jid, JidError> {
        let (left, server_name) = s.rsplit_once('@').ok_or(JidError::MissingAt)?;
        let server = Server::from_name(server_name)
            .ok_or_else(|| JidError::UnknownServer(server_name.to_owned()))?;
        if left.contains('@') {
            return Err(JidError::InvalidUser);
        }

        let (rest, device) = match left.split_once(':') {
            Some((rest, dev)) => (rest, parse_number::<u16>(dev, JidError::InvalidDevice)?),
            None => (left, 0),
        };
        if device != 0 && !server.has_devices() {
            return Err(JidError::InvalidDevice);
        }
        if device == 0 && rest.len() != left.len() {
            return Err(JidError::InvalidDevice); // ":0" would not print back
        }
        if device > 0xff && server.ad_domain().is_some() {
            return Err(JidError::InvalidDevice); // AD_JID carries one byte
        }

        let (rest, integrator) = if server == Server::Interop {
            let (integ, user) = rest.split_once('-').ok_or(JidError::InvalidIntegrator)?;
            (
                user,
                parse_number::<u16>(integ, JidError::InvalidIntegrator)?,
            )
        } else {
            (rest, 0)
        };

        let (user, agent) = match rest.split_once('_') {
            Some((user, agent)) => {
                let agent = parse_number::<u8>(agent, JidError::InvalidAgent)?;
                // An agent is only representable as a non-standard AD_JID domain on PN.
                if server != Server::Pn || matches!(agent, 0 | 1 | 128 | 129) {
                    return Err(JidError::InvalidAgent);
                }
                (user, agent)
            }
            None => (rest, 0),
        };
        if user.contains([':', '_']) {
            return Err(JidError::InvalidUser);
        }
        Ok(Jid {
            user: user.to_owned(),
            agent,
            device,
            integrator,
            server,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Jid {
        s.parse().unwrap()
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!(p("5511999999999@s.whatsapp.net"), Jid::pn("5511999999999"));
        assert_eq!(
            p("123456789:3@lid"),
            Jid::with_device("123456789", 3, Server::Lid)
        );
        assert_eq!(
            p("120363000000000000@g.us"),
            Jid::group("120363000000000000")
        );
        assert_eq!(p("@s.whatsapp.net"), Jid::server_only(Server::Pn));
        assert!(p("status@broadcast").is_status_broadcast());
        assert!(p("123@newsletter").is_newsletter());
        assert!(p("5:2@hosted.lid").is_hosted());
        assert!(p("1313555@bot").is_bot());
        let j = p("5511_7:2@s.whatsapp.net");
        assert_eq!((j.agent, j.device), (7, 2));
        let j = p("4-123:2@interop");
        assert_eq!((j.integrator, j.user.as_str(), j.device), (4, "123", 2));
        assert_eq!(p("100:300@msgr").device, 300);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "5511999999999@s.whatsapp.net",
            "123456789:3@lid",
            "1-2@g.us",
            "@s.whatsapp.net",
            "5511_7:2@s.whatsapp.net",
            "4-123:2@interop",
            "0-9@interop",
            "100:300@msgr",
            "7:255@hosted",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_forms() {
        use JidError::*;
        let e = |s: &str| s.parse::<Jid>().unwrap_err();
        assert_eq!(e("5511999999999"), MissingAt);
        assert_eq!(e("1@example.com"), UnknownServer("example.com".into()));
        assert_eq!(e("1:0@s.whatsapp.net"), InvalidDevice);
        assert_eq!(e("1:x@s.whatsapp.net"), InvalidDevice);
        assert_eq!(e("1:+2@s.whatsapp.net"), InvalidDevice);
        assert_eq!(e("1:256@lid"), InvalidDevice);
        assert_eq!(e("1:2@g.us"), InvalidDevice);
        assert_eq!(e("1_1@s.whatsapp.net"), InvalidAgent);
        assert_eq!(e("1_7@lid"), InvalidAgent);
        assert_eq!(e("1@2@s.whatsapp.net"), InvalidUser);
        assert_eq!(e("1:2:3@lid"), InvalidDevice);
        assert_eq!(e("123@interop"), InvalidIntegrator);
    }

    #[test]
    fn non_ad_and_signal_address() {
        let j = p("123456789:3@lid");
        assert_eq!(j.to_non_ad(), Jid::lid("123456789"));
        assert_eq!(j.signal_address(), "123456789_1.3");
        assert_eq!(p("5511:2@s.whatsapp.net").signal_address(), "5511.2");
        assert_eq!(p("5511@hosted").signal_name(), "5511_128");
        assert_eq!(p("5511:4@hosted.lid").signal_address(), "5511_129.4");
    }
}
