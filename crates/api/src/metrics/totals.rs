//! The values behind `sys/metrics`' JSON answer, read where they are recorded.
//!
//! [`TeeRecorder`] sits in front of the Prometheus recorder: every counter, gauge and histogram
//! the code registers goes to both, the Prometheus side for the text exposition (with its
//! buckets) and [`Totals`] for the JSON shape, which needs only totals, counts and sums. So the
//! JSON never depends on re-reading the text format.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Forwards everything to `inner` and keeps its own totals of what was recorded.
pub(crate) struct TeeRecorder<R> {
    inner: R,
    totals: Arc<Totals>,
}

impl<R: Recorder> TeeRecorder<R> {
    pub(crate) fn new(inner: R) -> (TeeRecorder<R>, Arc<Totals>) {
        let totals = Arc::new(Totals::default());
        (TeeRecorder { inner, totals: totals.clone() }, totals)
    }
}

impl<R: Recorder> Recorder for TeeRecorder<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let inner = self.inner.register_counter(key, metadata);
        let total = series(&self.totals.counters, key);
        Counter::from_arc(Arc::new(Tee { inner, mine: total }))
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let inner = self.inner.register_gauge(key, metadata);
        let value = series(&self.totals.gauges, key);
        Gauge::from_arc(Arc::new(Tee { inner, mine: value }))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let inner = self.inner.register_histogram(key, metadata);
        let summary = series(&self.totals.histograms, key);
        Histogram::from_arc(Arc::new(Tee { inner, mine: summary }))
    }
}

/// The one handle per series, shared by every registration of the same key.
fn series<T: Default>(map: &Mutex<HashMap<Key, Arc<T>>>, key: &Key) -> Arc<T> {
    lock(map).entry(key.clone()).or_default().clone()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps only ever gain entries; one left by a panicking thread is still whole.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every series registered so far, by key.
#[derive(Default)]
pub(crate) struct Totals {
    counters: Mutex<HashMap<Key, Arc<AtomicU64>>>,
    /// f64 bits.
    gauges: Mutex<HashMap<Key, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<Key, Arc<Summary>>>,
}

/// A histogram's count and sum: what Vault's JSON shape reports of a sample.
#[derive(Default)]
struct Summary(Mutex<(u64, f64)>);

/// One series as read: its name, its labels in the order recorded, and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reading<V> {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: V,
}

/// All series at one moment, each kind sorted by name, then labels.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub counters: Vec<Reading<u64>>,
    pub gauges: Vec<Reading<f64>>,
    /// (count, sum) of each histogram.
    pub histograms: Vec<Reading<(u64, f64)>>,
}

impl Totals {
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            counters: read(&self.counters, |c| c.load(Ordering::Relaxed)),
            gauges: read(&self.gauges, |g| f64::from_bits(g.load(Ordering::Relaxed))),
            histograms: read(&self.histograms, |h| *lock(&h.0)),
        }
    }
}

fn read<T, V>(map: &Mutex<HashMap<Key, Arc<T>>>, value: impl Fn(&T) -> V) -> Vec<Reading<V>> {
    let mut out: Vec<Reading<V>> = lock(map)
        .iter()
        .map(|(key, series)| Reading {
            name: key.name().to_owned(),
            labels: key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect(),
            value: value(series),
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    out
}

/// A metric handle of the inner recorder paired with this layer's own value.
struct Tee<I, M> {
    inner: I,
    mine: Arc<M>,
}

impl CounterFn for Tee<Counter, AtomicU64> {
    fn increment(&self, value: u64) {
        self.inner.increment(value);
        self.mine.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.inner.absolute(value);
        self.mine.fetch_max(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Tee<Gauge, AtomicU64> {
    fn increment(&self, value: f64) {
        self.inner.increment(value);
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.inner.decrement(value);
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.inner.set(value);
        self.mine.store(value.to_bits(), Ordering::Relaxed);
    }
}

impl Tee<Gauge, AtomicU64> {
    fn update(&self, f: impl Fn(f64) -> f64) {
        // The closure always returns Some, so fetch_update cannot fail.
        let _ = self.mine.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            Some(f(f64::from_bits(bits)).to_bits())
        });
    }
}

impl HistogramFn for Tee<Histogram, Summary> {
    fn record(&self, value: f64) {
        self.inner.record(value);
        let mut summary = lock(&self.mine.0);
        summary.0 += 1;
        summary.1 += value;
    }
}
