//! A webhook's delivery statistics (`GET /v1/webhooks/{id}/stats`) and the SVG charts drawn
//! from them on the server. Every chart states its numbers in words too (an `aria-label`, a
//! caption, a table), so nothing is told by colour alone. Fields the API may not send yet
//! (`series`, `retrying`) decode as empty.

use maud::{html, Markup};
use serde::Deserialize;

/// What the stats route answers, as far as the pages use it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub succeeded: u64,
    pub failed: u64,
    pub success_rate: Option<f64>,
    pub latency_ms: Latency,
    /// Counts per interval, oldest first.
    pub series: Vec<Interval>,
    pub interval_minutes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Interval {
    pub start: String,
    pub succeeded: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// An RFC 3339 instant to the minute, as people read it; anything else as it came.
fn minute(instant: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(instant).map_or_else(
        |_| instant.to_owned(),
        |at| at.to_utc().format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

impl Interval {
    fn total(&self) -> u64 {
        self.succeeded + self.retrying + self.failed
    }

    /// Succeeded attempts among all, `None` without attempts.
    fn success_rate(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.succeeded as f64 / total as f64)
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map(|rate| format!("{:.1} %", rate * 100.0))
        .unwrap_or_else(|| "no attempts".into())
}

impl Stats {
    /// The whole window's success rate in words, e.g. `97.0 % of 100 attempts`.
    pub fn summary(&self) -> String {
        let attempts = self.succeeded + self.failed;
        match self.success_rate {
            Some(rate) => format!("{} of {attempts} attempts", percent(Some(rate))),
            None => "no attempts".into(),
        }
    }
}

/// A small success-rate chart for a list row: one bar per interval of `series` (an empty
/// slot where there were no attempts), or one bar for the whole window before the API sends
/// a series.
pub fn success_sparkline(stats: &Stats) -> Markup {
    const WIDTH: f64 = 120.0;
    const HEIGHT: f64 = 24.0;
    let rates: Vec<Option<f64>> = if stats.series.is_empty() {
        vec![stats.success_rate]
    } else {
        stats.series.iter().map(Interval::success_rate).collect()
    };
    let slot = WIDTH / rates.len() as f64;
    let label = format!("Success rate, last 24 h: {}", stats.summary());
    html! {
        svg.sparkline role="img" aria-label=(label) width="120" height="24" viewBox="0 0 120 24" {
            rect x="0" y="0" width=(WIDTH) height=(HEIGHT) class="chart-ground" {}
            @for (index, rate) in rates.iter().enumerate() {
                @if let Some(rate) = rate {
                    @let height = (HEIGHT * rate).max(1.0);
                    rect x=(index as f64 * slot) y=(HEIGHT - height) width=((slot - 1.0).max(1.0)) height=(height) class="bar-succeeded" {}
                }
            }
        }
    }
}

/// Attempts per interval as stacked bars (succeeded, retrying, failed from the bottom), with a
/// text legend and the same numbers as a table; before the API sends a series, the window's
/// totals as one bar.
pub fn delivery_chart(stats: &Stats) -> Markup {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 120.0;
    let totals;
    let series: &[Interval] = if stats.series.is_empty() {
        totals = [Interval {
            start: "last 24 h".into(),
            succeeded: stats.succeeded,
            retrying: 0,
            failed: stats.failed,
        }];
        &totals
    } else {
        &stats.series
    };
    let tallest = series.iter().map(Interval::total).max().unwrap_or(0).max(1) as f64;
    let slot = WIDTH / series.len() as f64;
    let interval = stats
        .interval_minutes
        .map(|minutes| format!(" per {minutes} minutes"))
        .unwrap_or_default();
    // Each interval's stack, bottom up: (x, y, height, class) of every non-empty bar.
    let mut bars = Vec::new();
    for (index, interval) in series.iter().enumerate() {
        let mut top = HEIGHT;
        let parts = [
            (interval.succeeded, "bar-succeeded"),
            (interval.retrying, "bar-retrying"),
            (interval.failed, "bar-failed"),
        ];
        for (count, class) in parts.into_iter().filter(|(count, _)| *count > 0) {
            let height = HEIGHT * count as f64 / tallest;
            top -= height;
            bars.push((index as f64 * slot, top, height, class));
        }
    }
    let label = format!(
        "Attempts{interval}, last 24 h: {} succeeded, {} failed; success rate {}",
        stats.succeeded,
        stats.failed,
        percent(stats.success_rate)
    );
    html! {
        figure.chart {
            svg role="img" aria-label=(label) width="100%" height="140" viewBox="0 0 600 140" preserveAspectRatio="none" {
                rect x="0" y="0" width=(WIDTH) height=(HEIGHT) class="chart-ground" {}
                @for (x, y, height, class) in &bars {
                    rect x=(x) y=(y) width=((slot - 1.0).max(1.0)) height=(height) class=(class) {}
                }
            }
            figcaption {
                @if let Some(first) = series.first() {
                    p.axis { "From " (minute(&first.start)) " (left) to now (right)." }
                }
                ul.legend {
                    li { span.swatch.bar-succeeded {} "succeeded (bottom)" }
                    li { span.swatch.bar-retrying {} "retrying (middle)" }
                    li { span.swatch.bar-failed {} "failed (top)" }
                }
                (label) "."
            }
            details {
                summary { "Show the numbers as a table" }
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Interval from" } th scope="col" { "Succeeded" } th scope="col" { "Retrying" } th scope="col" { "Failed" } } }
                    tbody {
                        @for interval in series {
                            tr { td { (minute(&interval.start)) } td { (interval.succeeded) } td { (interval.retrying) } td { (interval.failed) } }
                        }
                    }
                } }
            }
        }
    }
}

/// Latency percentiles as words.
pub fn latency(stats: &Stats) -> Markup {
    let shown = |ms: Option<u64>| {
        ms.map(|ms| format!("{ms} ms"))
            .unwrap_or_else(|| "–".into())
    };
    let latency = &stats.latency_ms;
    html! {
        dl.latency {
            dt { "p50 latency" } dd { (shown(latency.p50)) }
            dt { "p95 latency" } dd { (shown(latency.p95)) }
            dt { "p99 latency" } dd { (shown(latency.p99)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode(value: serde_json::Value) -> Stats {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn stats_without_a_series_chart_their_totals() {
        let stats = decode(json!({
            "webhook_id": "wh_1", "attempts": 4, "succeeded": 3, "failed": 1,
            "success_rate": 0.75, "latency_ms": {"p50": 10, "p95": 40, "p99": null}
        }));
        assert!(stats.series.is_empty());
        let chart = delivery_chart(&stats).into_string();
        assert!(chart.contains("3 succeeded, 1 failed; success rate 75.0 %"));
        assert!(chart.contains("<td>last 24 h</td><td>3</td><td>0</td><td>1</td>"));
        let spark = success_sparkline(&stats).into_string();
        assert!(spark.contains("75.0 % of 4 attempts"), "{spark}");
        let latency = latency(&stats).into_string();
        assert!(latency.contains("40 ms") && latency.contains("–"));
    }

    #[test]
    fn a_series_draws_one_stack_per_interval() {
        let stats = decode(json!({
            "succeeded": 5, "failed": 1, "success_rate": 0.83, "interval_minutes": 60,
            "series": [
                {"start": "2026-11-23T10:00:00Z", "succeeded": 2, "retrying": 1, "failed": 1},
                {"start": "2026-11-23T11:00:00Z", "succeeded": 0, "retrying": 0, "failed": 0},
                {"start": "2026-11-23T12:00:00Z", "succeeded": 3, "retrying": 0, "failed": 0}
            ]
        }));
        let chart = delivery_chart(&stats).into_string();
        assert!(chart.contains("per 60 minutes"));
        assert_eq!(chart.matches("class=\"bar-retrying\"").count(), 1);
        assert_eq!(chart.matches("<tr><td>").count(), 3);
        assert!(chart.contains("From 2026-11-23 10:00 UTC (left)"));
        assert!(chart.contains("<td>2026-11-23 12:00 UTC</td>"));
        let spark = success_sparkline(&stats).into_string();
        // Two intervals with attempts, one without: two bars besides the ground.
        assert_eq!(spark.matches("bar-succeeded").count(), 2);
    }
}
