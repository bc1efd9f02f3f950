//! Keepalive timing (wa-protocol.md §10.3), as a pure state machine over `Instant`s.
//!
//! A ping goes out every `interval` regardless of traffic: the server closes a client that has
//! been silent for ~60 s, and our own sends are not guaranteed. The socket is declared dead when
//! nothing at all came in for `interval + timeout` (Baileys' rule), which bounds detection of a
//! silently dropped socket to well under a minute with the defaults (25 s + 20 s).

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Nothing due before the returned deadline.
    Wait,
    SendPing,
    /// No inbound frame for too long: drop the connection and reconnect.
    Dead,
}

#[derive(Debug, Clone)]
pub struct Keepalive {
    interval: Duration,
    timeout: Duration,
    last_inbound: Instant,
    next_ping: Instant,
}

impl Keepalive {
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Self {
        Self {
            interval,
            timeout,
            last_inbound: now,
            next_ping: now + interval,
        }
    }

    pub fn on_inbound(&mut self, now: Instant) {
        self.last_inbound = now;
    }

    fn dead_at(&self) -> Instant {
        self.last_inbound + self.interval + self.timeout
    }

    /// When `poll` should be called next.
    pub fn deadline(&self) -> Instant {
        self.next_ping.min(self.dead_at())
    }

    pub fn poll(&mut self, now: Instant) -> KeepaliveAction {
        if now >= self.dead_at() {
            return KeepaliveAction::Dead;
        }
        if now >= self.next_ping {
            self.next_ping = now + self.interval;
            return KeepaliveAction::SendPing;
        }
        KeepaliveAction::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pings_every_interval_while_answered() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(25 * S, 20 * S, t0);
        assert_eq!(k.deadline(), t0 + 25 * S);
        assert_eq!(k.poll(t0 + 24 * S), KeepaliveAction::Wait);
        assert_eq!(k.poll(t0 + 25 * S), KeepaliveAction::SendPing);
        k.on_inbound(t0 + 26 * S); // the pong
        assert_eq!(k.deadline(), t0 + 50 * S);
        assert_eq!(k.poll(t0 + 49 * S), KeepaliveAction::Wait);
        assert_eq!(k.poll(t0 + 50 * S), KeepaliveAction::SendPing);
    }

    #[test]
    fn silence_for_interval_plus_timeout_is_death() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(25 * S, 20 * S, t0);
        assert_eq!(k.poll(t0 + 25 * S), KeepaliveAction::SendPing);
        assert_eq!(k.deadline(), t0 + 45 * S);
        assert_eq!(k.poll(t0 + 44 * S), KeepaliveAction::Wait);
        assert_eq!(k.poll(t0 + 45 * S), KeepaliveAction::Dead);
    }

    #[test]
    fn inbound_traffic_postpones_death_but_not_pings() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(25 * S, 20 * S, t0);
        k.on_inbound(t0 + 20 * S);
        assert_eq!(k.poll(t0 + 25 * S), KeepaliveAction::SendPing);
        assert_eq!(
            k.poll(t0 + 64 * S),
            KeepaliveAction::SendPing,
            "due at 50 s"
        );
        assert_eq!(k.poll(t0 + 65 * S), KeepaliveAction::Dead, "20 + 25 + 20");
    }
}
