//! `run`: binds the port, starts the HTTP/WebSocket server and the snapshot writer, and hands back
//! a `RunningSim` that knows its address and shuts everything down cleanly.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zapin_protocol::crypto::PublicKey;

use crate::api::{AppState, router};
use crate::config::SimConfig;
use crate::sim::Sim;
use crate::state::{PersistError, SimState, persist};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] PersistError),
    #[error("server task failed: {0}")]
    Task(String),
}

/// A simulator serving on `local_addr()`. Dropping it stops the server too, but only `shutdown`
/// waits for the last snapshot to be written.
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    sim: Sim,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    persister: Option<JoinHandle<()>>,
}

/// Starts a simulator.
pub async fn run(config: SimConfig) -> Result<RunningSim, SimError> {
    let state = SimState::open(config.state_config())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.listen,
        source,
    })?;
    let state_dir = config.state_dir.clone();
    let sim = Sim::new(state.clone(), config);
    sim.media().set_bound_addr(addr);
    let (shutdown, shutdown_rx) = watch::channel(false);

    let persister = state_dir.map(|dir| {
        tokio::spawn(persist::run_persister(
            state.clone(),
            dir,
            shutdown_rx.clone(),
        ))
    });

    let app = router(AppState {
        sim: sim.clone(),
        shutdown: shutdown_rx.clone(),
    });
    let mut stop = shutdown_rx;
    // TCP_NODELAY, as a real server's stanza sockets have it: without it Nagle holds a small
    // write (a receipt) behind an unacknowledged one (the ack just before it) until the client's
    // delayed ACK fires, ≈ 40 ms on Linux, which shows up as latency of the client under test.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY on an accepted connection: {err}");
        }
    });
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
    });
    tracing::info!(
        %addr,
        root = %hex::encode(state.root_public().as_bytes()),
        "zapin sim listening (ws://{addr}/ws/chat, control API http://{addr}/sim/)"
    );
    Ok(RunningSim {
        addr,
        sim,
        shutdown,
        server: Some(server),
        persister,
    })
}

impl RunningSim {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base of the control API.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://ADDR/ws/chat`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.addr)
    }

    pub fn root_public_key(&self) -> PublicKey {
        self.sim.state().root_public()
    }

    /// The live simulator, for in-process tests and the protocol layer.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Closes every connection, stops serving, and writes the last snapshot.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        let _ = self.shutdown.send(true);
        // Connection tasks close on the signal; wait (bounded) until the registry is empty so the
        // port and the tasks are really gone when this returns.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.sim.connections().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(server) = self.server.take() {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(SimError::Task(e.to_string())),
                Err(e) => return Err(SimError::Task(e.to_string())),
            }
        }
        if let Some(persister) = self.persister.take() {
            persister.await.map_err(|e| SimError::Task(e.to_string()))?;
        }
        Ok(())
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
