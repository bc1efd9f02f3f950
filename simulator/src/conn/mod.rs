//! Live WebSocket connections: the registry that lets the control API and the router reach them,
//! the commands they accept, and the seam the protocol layer fills in (`handler`).

pub mod handler;
pub mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot, watch};

use crate::state::PairTicket;

/// Identifies one WebSocket connection for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Commands a connection's task accepts from outside (control API, router, other connections).
#[derive(Debug)]
pub enum ConnCommand {
    /// Send `pair-success` for this ticket (§5.3, or §5.4 stages 2–3 then §5.3 for link codes),
    /// wait for `pair-device-sign`, verify it, and answer on `reply`. Then 515 and close.
    Pair {
        ticket: Box<PairTicket>,
        reply: oneshot::Sender<Result<PairAccepted, PairFailure>>,
    },
    /// Send `<stream:error code=…>` and close (`/sim/faults` `stream_error`).
    StreamError { code: u16 },
    /// Another connection logged in as the same device: `<stream:error><conflict type=replaced/>`
    /// (440) and close.
    Replaced,
    /// The phone unlinked this device: `<stream:error code=401><conflict type=device_removed/>`
    /// and close.
    Unlinked,
    /// Deliver an encoded stanza now (the device is online on this connection).
    Deliver { node: Vec<u8> },
}

/// What the companion answered to `pair-success`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairAccepted {
    /// `ADVSignedDeviceIdentity` from `pair-device-sign`, device signature verified, stored
    /// without `accountSignatureKey`.
    pub adv_signed_identity: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairFailure {
    /// The protocol layer is not there yet (this build).
    #[error("sending pair-success needs the protocol layer (Noise + binary codec), not wired yet")]
    NotWired,
    /// The companion refused `pair-success` (e.g. `401 hmac-mismatch`) or signed it wrongly.
    #[error("the companion rejected pairing: {0}")]
    Rejected(String),
    /// The registration connection closed or stopped answering.
    #[error("the registration connection is gone")]
    ConnectionGone,
}

/// Per-connection command queue depth: commands are rare (pairing, faults, deliveries to one
/// device), and a connection that cannot keep up with this many is dropped by `send`'s caller.
pub const COMMAND_QUEUE: usize = 64;

#[derive(Debug)]
struct Entry {
    commands: mpsc::Sender<ConnCommand>,
    peer: SocketAddr,
    /// `(phone, device)` once the connection logged in as a companion.
    device: Option<(String, u16)>,
}

#[derive(Debug, Default)]
struct Maps {
    conns: HashMap<ConnId, Entry>,
    by_device: HashMap<(String, u16), ConnId>,
}

/// The registry of open connections.
#[derive(Debug)]
pub struct Connections {
    maps: Mutex<Maps>,
    next_id: AtomicU64,
    /// Bumped by `disconnect_all`; every connection task watches it.
    disconnect: watch::Sender<u64>,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            maps: Mutex::default(),
            next_id: AtomicU64::new(1),
            disconnect: watch::Sender::new(0),
        }
    }
}

/// Why `Connections::send` could not hand a command over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no such connection")]
    Gone,
    #[error("connection's command queue is full")]
    Full,
}

impl Connections {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection; its task reads commands from the returned receiver.
    pub fn register(&self, peer: SocketAddr) -> (ConnId, mpsc::Receiver<ConnCommand>) {
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        self.maps().conns.insert(
            id,
            Entry {
                commands: tx,
                peer,
                device: None,
            },
        );
        (id, rx)
    }

    /// Removes a connection; returns the device it was bound to, if any.
    pub fn unregister(&self, id: ConnId) -> Option<(String, u16)> {
        let mut m = self.maps();
        let device = m.conns.remove(&id)?.device?;
        if m.by_device.get(&device) == Some(&id) {
            m.by_device.remove(&device);
            Some(device)
        } else {
            None
        }
    }

    /// The device a connection logged in as, even if a newer connection replaced it since.
    pub fn device_of(&self, id: ConnId) -> Option<(String, u16)> {
        self.maps().conns.get(&id)?.device.clone()
    }

    pub fn len(&self) -> usize {
        self.maps().conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn peer(&self, id: ConnId) -> Option<SocketAddr> {
        self.maps().conns.get(&id).map(|e| e.peer)
    }

    /// Binds a logged-in connection to its device. Returns the connection it replaces, which the
    /// caller sends `ConnCommand::Replaced`.
    pub fn bind_device(&self, id: ConnId, phone: &str, device: u16) -> Option<ConnId> {
        let key = (phone.to_string(), device);
        let mut m = self.maps();
        let entry = m.conns.get_mut(&id)?;
        entry.device = Some(key.clone());
        m.by_device.insert(key, id).filter(|old| *old != id)
    }

    pub fn connection_of(&self, phone: &str, device: u16) -> Option<ConnId> {
        self.maps()
            .by_device
            .get(&(phone.to_string(), device))
            .copied()
    }

    pub fn all(&self) -> Vec<ConnId> {
        self.maps().conns.keys().copied().collect()
    }

    /// Hands a command to a connection without waiting.
    pub fn send(&self, id: ConnId, cmd: ConnCommand) -> Result<(), SendError> {
        let tx = self
            .maps()
            .conns
            .get(&id)
            .map(|e| e.commands.clone())
            .ok_or(SendError::Gone)?;
        tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Gone,
        })
    }

    /// Drops every socket at once (`/sim/faults` `disconnect_all`). State is kept.
    pub fn disconnect_all(&self) {
        self.disconnect.send_modify(|g| *g += 1);
    }

    pub(crate) fn disconnect_signal(&self) -> watch::Receiver<u64> {
        self.disconnect.subscribe()
    }
}
