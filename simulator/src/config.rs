//! Simulator configuration (the `zapin sim` flags).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::conn::handler::HandlerFactory;
use crate::media::MediaConfig;
use crate::phone::{PhoneActions, SignalPhone};
use crate::state::{StateConfig, StateLimits};
use crate::wire::WiredHandlers;

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `--listen`; port 0 picks a free port (see `RunningSim::local_addr`).
    pub listen: SocketAddr,
    /// `--seed`: derive every key and id from it.
    pub seed: Option<u64>,
    /// `--state-dir`: keep accounts, devices, prekeys and groups across restarts.
    pub state_dir: Option<PathBuf>,
    /// `--qr-first-ttl`: how long the first ref of a `pair-device` lives (WhatsApp: 60 s).
    pub qr_first_ttl: Duration,
    /// `--qr-ttl`: how much longer each next ref lives (WhatsApp: 20 s).
    pub qr_ttl: Duration,
    /// Refs per `pair-device` (WhatsApp: 6).
    pub refs_per_pair_device: usize,
    /// How long a phone-number pairing request waits for its code (WhatsApp Web: 180 s).
    pub link_code_ttl: Duration,
    /// `--idle-timeout`: a connection silent this long is closed (§10.3).
    pub idle_timeout: Duration,
    /// How long the control API waits for a companion to answer `pair-success`.
    pub pair_timeout: Duration,
    pub limits: StateLimits,
    /// The protocol layer's per-connection handlers.
    pub handlers: Arc<dyn HandlerFactory>,
    /// The mock phones' actions (Signal sends); `phone::SignalPhone` by default.
    pub phone: Arc<dyn PhoneActions>,
    /// `media_conn` and the media upload/download endpoints (`--media-host`, size caps).
    pub media: MediaConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: None,
            state_dir: None,
            qr_first_ttl: Duration::from_secs(60),
            qr_ttl: Duration::from_secs(20),
            refs_per_pair_device: 6,
            link_code_ttl: Duration::from_secs(180),
            idle_timeout: Duration::from_secs(60),
            pair_timeout: Duration::from_secs(30),
            limits: StateLimits::default(),
            handlers: Arc::new(WiredHandlers::default()),
            phone: Arc::new(SignalPhone),
            media: MediaConfig::default(),
        }
    }
}

impl SimConfig {
    /// The state-layer settings this config implies (public so harnesses such as the fuzz targets
    /// can open a `SimState` the way `server::run` does).
    pub fn state_config(&self) -> StateConfig {
        StateConfig {
            seed: self.seed,
            state_dir: self.state_dir.clone(),
            qr_first_ttl: self.qr_first_ttl,
            qr_ttl: self.qr_ttl,
            refs_per_pair_device: self.refs_per_pair_device,
            link_code_ttl: self.link_code_ttl,
            limits: self.limits,
        }
    }
}
