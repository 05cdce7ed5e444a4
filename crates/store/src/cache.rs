//! In-memory caches of configuration that stay exact across processes.
//!
//! A credential request reads the same configuration every time: the mount table, the role,
//! the mount's root and lease configuration, the token's policies. Each read was a database
//! round trip (and, on SQLite, two thread switches). The `config_generation` counter (migration
//! 0008) moves, by trigger, in every transaction that writes such a row, whoever writes it. A
//! request reads the counter in the same query as its token ([`crate::tokens::get_with_generation`])
//! and runs inside [`scope`]; a [`Cache`] then answers from memory only with an entry loaded at
//! that same generation. So a request never sees configuration older than the moment it began,
//! on any replica, and a write costs the readers one reload each.
//!
//! Outside a scope (background work: expiry, rotation, sweeps) every read goes to the database.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

tokio::task_local! {
    static GENERATION: i64;
}

/// Runs `work` with cached configuration at `generation` (none: every read goes to the
/// database).
pub async fn scope<F: Future>(generation: Option<i64>, work: F) -> F::Output {
    match generation {
        Some(g) => GENERATION.scope(g, work).await,
        None => work.await,
    }
}

/// The generation the current request runs at, if it runs inside [`scope`].
pub fn current() -> Option<i64> {
    GENERATION.try_with(|g| *g).ok()
}

/// A read-through map from keys to values, each tagged with the generation it was loaded at.
/// It holds at most `capacity` entries; when full it starts over, which bounds the memory a
/// stream of distinct keys can take.
pub struct Cache<K, V> {
    entries: Mutex<HashMap<K, (i64, V)>>,
    capacity: usize,
}

/// Shows how full it is, never what it holds (configuration with secrets in it).
impl<K, V> std::fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.lock().map_or(0, |e| e.len());
        f.debug_struct("Cache").field("entries", &len).field("capacity", &self.capacity).finish()
    }
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Cache { entries: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    /// The value of `key`: from memory if it was loaded at the current request's generation,
    /// otherwise from `load` (and kept, if there is a generation to tag it with).
    pub async fn get_or_load<E, F, Fut>(&self, key: K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let Some(generation) = current() else {
            return load().await;
        };
        if let Some((tag, value)) = self.lock().get(&key)
            && *tag == generation
        {
            return Ok(value.clone());
        }
        // Loaded after the generation was read: at least as new as that generation.
        let value = load().await?;
        let mut entries = self.lock();
        // A request that began later may have stored a newer entry meanwhile: keep it.
        if entries.get(&key).is_none_or(|(tag, _)| *tag < generation) {
            if entries.len() >= self.capacity && !entries.contains_key(&key) {
                entries.clear();
            }
            entries.insert(key, (generation, value.clone()));
        }
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (i64, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn read(cache: &Cache<&'static str, usize>, loads: &AtomicUsize, key: &'static str) -> usize {
        cache
            .get_or_load(key, || async { Ok::<_, ()>(loads.fetch_add(1, Ordering::SeqCst) + 1) })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn entries_serve_only_their_own_generation() {
        let cache = Cache::new(16);
        let loads = AtomicUsize::new(0);
        // No scope: always loaded, never kept.
        assert_eq!(read(&cache, &loads, "a").await, 1);
        assert_eq!(read(&cache, &loads, "a").await, 2);
        // Generation 5: loaded once, then served from memory.
        assert_eq!(scope(Some(5), read(&cache, &loads, "a")).await, 3);
        assert_eq!(scope(Some(5), read(&cache, &loads, "a")).await, 3);
        // A write moved the generation: loaded again.
        assert_eq!(scope(Some(6), read(&cache, &loads, "a")).await, 4);
        // A request still at the old generation neither uses nor replaces the newer entry.
        assert_eq!(scope(Some(5), read(&cache, &loads, "a")).await, 5);
        assert_eq!(scope(Some(6), read(&cache, &loads, "a")).await, 4);
        assert_eq!(scope(None, read(&cache, &loads, "a")).await, 6);
    }

    #[tokio::test]
    async fn failed_loads_are_not_kept_and_capacity_bounds_memory() {
        let cache: Cache<usize, usize> = Cache::new(3);
        let failed = scope(Some(1), cache.get_or_load(0, || async { Err::<usize, _>("down") })).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(scope(Some(1), cache.get_or_load(0, || async { Ok::<_, ()>(7) })).await, Ok(7));
        for k in 1..10 {
            scope(Some(1), cache.get_or_load(k, || async { Ok::<_, ()>(k) })).await.unwrap();
        }
        assert!(cache.lock().len() <= 3);
    }
}
