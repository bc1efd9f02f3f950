//! `Sim`: the handle every part of the simulator shares (state, connections, faults, seams).

use std::sync::Arc;

use crate::config::SimConfig;
use crate::conn::{ConnCommand, ConnId, Connections};
use crate::faults::Faults;
use crate::media::MediaStore;
use crate::router::PresenceSubscriptions;
use crate::state::SimState;

#[derive(Debug)]
struct Inner {
    state: SimState,
    connections: Connections,
    faults: Faults,
    config: SimConfig,
    media: MediaStore,
    presence: PresenceSubscriptions,
    app_state: crate::appstate::AppStateStore,
}

/// Cheap to clone; all clones share one simulator.
#[derive(Debug, Clone)]
pub struct Sim {
    inner: Arc<Inner>,
}

/// What `/sim/stats` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub connections: u64,
    pub devices_online: u64,
    pub accounts: u64,
    pub messages_routed: u64,
    pub receipts_routed: u64,
    pub pairings: u64,
    /// Group sends acked with a `phash` different from the sender's.
    pub phash_mismatches: u64,
}

impl Sim {
    pub fn new(state: SimState, config: SimConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                state,
                connections: Connections::default(),
                faults: Faults::default(),
                media: MediaStore::open(config.media.clone(), config.state_dir.as_deref()),
                presence: PresenceSubscriptions::default(),
                app_state: crate::appstate::AppStateStore::default(),
                config,
            }),
        }
    }

    pub fn state(&self) -> &SimState {
        &self.inner.state
    }

    pub fn connections(&self) -> &Connections {
        &self.inner.connections
    }

    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Who asked to hear whose availability (`<presence type=subscribe>`); not persisted, as on
    /// WhatsApp a client subscribes again after every login.
    pub fn presence(&self) -> &PresenceSubscriptions {
        &self.inner.presence
    }

    /// Uploaded media blobs and `media_conn` auth tokens (`media`).
    /// Every account's app-state collections.
    pub fn app_state(&self) -> &crate::appstate::AppStateStore {
        &self.inner.app_state
    }

    pub fn media(&self) -> &MediaStore {
        &self.inner.media
    }

    /// A connection finished a login as companion `device` of `phone` (the protocol layer calls
    /// this after `<success>`): marks it online, and replaces an older connection of the same
    /// device with a `conflict` (440) stream error, as WhatsApp does.
    pub fn device_logged_in(&self, conn: ConnId, phone: &str, device: u16) {
        if let Some(old) = self.connections().bind_device(conn, phone, device) {
            tracing::info!(%old, new = %conn, "{phone}:{device} logged in again: replacing");
            let _ = self.connections().send(old, ConnCommand::Replaced);
        }
        self.state().set_device_online(phone, device, true);
    }

    /// A connection's task ended (any cause): it leaves the registry, its device goes offline if
    /// this was still its connection, and what it had in flight waits for the device's next
    /// login, or goes at once to a newer connection that already replaced it.
    pub fn connection_closed(&self, conn: ConnId) {
        let device = self.connections().device_of(conn);
        if let Some((phone, device)) = self.connections().unregister(conn) {
            self.state().set_device_online(&phone, device, false);
        }
        self.state().connection_closed(conn);
        if let Some((phone, device)) = device {
            let released = self.state().release(&phone, device, conn);
            if released > 0 {
                tracing::debug!(%conn, "{phone}:{device}: {released} unacknowledged stanzas held for redelivery");
                crate::router::redeliver_held(self, &phone, device);
            }
        }
    }

    pub fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = self.state().counters();
        Stats {
            connections: self.connections().len() as u64,
            devices_online: self.state().devices_online() as u64,
            accounts: self.state().account_count() as u64,
            messages_routed: c.messages_routed.load(Relaxed),
            receipts_routed: c.receipts_routed.load(Relaxed),
            pairings: c.pairings.load(Relaxed),
            phash_mismatches: c.phash_mismatches.load(Relaxed),
        }
    }
}
