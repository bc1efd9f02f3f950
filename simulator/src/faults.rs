//! Fault injection (`/sim/faults`): what the connection layer and the router consult.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Faults {
    refuse_until: Mutex<Option<Instant>>,
    latency_ms: AtomicU64,
    drop_acks: AtomicBool,
    /// Devices (phone, device) whose next delivered `<message>` gets its ciphertexts corrupted.
    corrupt_next: Mutex<Vec<(String, u16)>>,
}

impl Faults {
    /// Refuses new WebSocket connections for `d` (zero: stop refusing).
    pub fn refuse_for(&self, d: Duration) {
        let until = (!d.is_zero()).then(|| Instant::now() + d);
        *self.refuse_until.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }

    pub fn refusing(&self) -> bool {
        let guard = self.refuse_until.lock().unwrap_or_else(|e| e.into_inner());
        guard.is_some_and(|until| Instant::now() < until)
    }

    pub fn set_latency(&self, ms: u64) {
        self.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// Delay before every frame the server writes.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    pub fn set_drop_acks(&self, on: bool) {
        self.drop_acks.store(on, Ordering::Relaxed);
    }

    /// When set, the router must not send `<ack>` for client stanzas.
    pub fn drop_acks(&self) -> bool {
        self.drop_acks.load(Ordering::Relaxed)
    }

    /// Arms a one-shot corruption of the next `<message>` delivered to `phone:device`.
    pub fn corrupt_next_message(&self, phone: String, device: u16) {
        let mut armed = self.corrupt_next.lock().unwrap_or_else(|e| e.into_inner());
        if !armed.contains(&(phone.clone(), device)) {
            armed.push((phone, device));
        }
    }

    /// Whether the message about to go to `phone:device` must be corrupted (disarms it).
    pub fn take_corrupt(&self, phone: &str, device: u16) -> bool {
        let mut armed = self.corrupt_next.lock().unwrap_or_else(|e| e.into_inner());
        match armed.iter().position(|(p, d)| p == phone && *d == device) {
            Some(i) => {
                armed.swap_remove(i);
                true
            }
            None => false,
        }
    }

    pub fn clear(&self) {
        self.corrupt_next
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.refuse_for(Duration::ZERO);
        self.set_latency(0);
        self.set_drop_acks(false);
    }
}
