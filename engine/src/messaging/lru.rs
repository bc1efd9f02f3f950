//! A small bounded map evicting the least recently used entry. The caches here hold at most a
//! few thousand entries per session, so eviction scans instead of keeping a linked list.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Clone)]
pub struct Lru<K, V> {
    map: HashMap<K, (V, u64)>,
    tick: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// A map holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Lru {
            map: HashMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    pub fn get(&mut self, key: &K) -> Option<&V> {
        let t = self.next_tick();
        let entry = self.map.get_mut(key)?;
        entry.1 = t;
        Some(&entry.0)
    }

    pub fn insert(&mut self, key: K, value: V) {
        let t = self.next_tick();
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.map.remove(&k);
            }
        }
        self.map.insert(key, (value, t));
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key).map(|(v, _)| v)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut l = Lru::new(2);
        l.insert(1, "a");
        l.insert(2, "b");
        assert_eq!(l.get(&1), Some(&"a"));
        l.insert(3, "c");
        assert_eq!(l.len(), 2);
        assert_eq!(l.get(&2), None);
        assert_eq!(l.get(&1), Some(&"a"));
        assert_eq!(l.get(&3), Some(&"c"));
    }
}
