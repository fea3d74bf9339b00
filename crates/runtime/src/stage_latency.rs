//! Histograms of the waits an event meets on its way to an endpoint, with buckets fine enough
//! to tell a millisecond from five: where an idle pipeline spends its time.

use prometheus::{Histogram, HistogramOpts, HistogramVec, Registry};

/// Half a millisecond to ten seconds.
const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 10.0,
];

/// A registered histogram of waits in seconds.
pub fn latency_histogram(
    registry: &Registry,
    name: &str,
    help: &str,
) -> Result<Histogram, prometheus::Error> {
    let histogram = Histogram::with_opts(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()))?;
    registry.register(Box::new(histogram.clone()))?;
    Ok(histogram)
}

/// A registered family of such histograms, one per value of `label`.
pub fn latency_histograms(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
) -> Result<HistogramVec, prometheus::Error> {
    let histograms = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        &[label],
    )?;
    registry.register(Box::new(histograms.clone()))?;
    Ok(histograms)
}
