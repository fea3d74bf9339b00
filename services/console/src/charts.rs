//! A webhook's delivery statistics (`GET /v1/webhooks/{id}/stats`) and the SVG charts drawn
//! from them on the server. Every chart states its numbers in words too (an `aria-label`, a
//! caption, a table), so nothing is told by colour alone. Fields the API may not send yet
//! (`series`, `retrying`) decode as empty.

use maud::{html, Markup};
use serde::Deserialize;

use crate::views::attempts;

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

#[derive(Debug, Default, Clone, Deserialize)]
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
        let total = self.succeeded + self.failed;
        match self.success_rate {
            Some(rate) => format!("{} of {}", percent(Some(rate)), attempts(total)),
            None => "no attempts".into(),
        }
    }

    /// The intervals to draw: the series, or before the API sends one, the window's totals
    /// as one interval.
    fn drawn(&self) -> Vec<Interval> {
        if !self.series.is_empty() {
            return self.series.clone();
        }
        vec![Interval {
            start: "last 24 h".into(),
            succeeded: self.succeeded,
            retrying: 0,
            failed: self.failed,
        }]
    }
}

/// A small success-rate chart for a list row: one bar per interval of `series` (an empty
/// slot where there were no attempts), red with the succeeded share in green from the bottom,
/// so an interval where nothing succeeded is a full red bar; one bar for the whole window
/// before the API sends a series.
pub fn success_sparkline(stats: &Stats) -> Markup {
    const WIDTH: f64 = 120.0;
    const HEIGHT: f64 = 24.0;
    let intervals = stats.drawn();
    let slot = WIDTH / intervals.len() as f64;
    let bar_width = (slot - 1.0).max(1.0);
    let label = format!("Success rate, last 24 h: {}", stats.summary());
    html! {
        svg.sparkline role="img" aria-label=(label) width="120" height="24" viewBox="0 0 120 24" {
            rect x="0" y="0" width=(WIDTH) height=(HEIGHT) class="chart-ground" {}
            @for (index, interval) in intervals.iter().enumerate() {
                @if let Some(rate) = interval.success_rate() {
                    @let x = index as f64 * slot;
                    rect x=(x) y="0" width=(bar_width) height=(HEIGHT) class="bar-failed" {}
                    @if rate > 0.0 {
                        rect x=(x) y=(HEIGHT * (1.0 - rate)) width=(bar_width) height=(HEIGHT * rate) class="bar-succeeded" {}
                    }
                }
            }
        }
    }
}

/// Attempts per interval as stacked bars (succeeded, retrying, failed from the bottom), with a
/// text legend, the scale, and the same numbers as a table with each interval's success rate;
/// before the API sends a series, the window's totals as one bar.
pub fn delivery_chart(stats: &Stats) -> Markup {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 120.0;
    let series = stats.drawn();
    let tallest = series.iter().map(Interval::total).max().unwrap_or(0).max(1);
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
            let height = HEIGHT * count as f64 / tallest as f64;
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
            svg role="img" aria-label=(label) width="100%" height="120" viewBox="0 0 600 120" preserveAspectRatio="none" {
                rect x="0" y="0" width=(WIDTH) height=(HEIGHT) class="chart-ground" {}
                @for (x, y, height, class) in &bars {
                    rect x=(x) y=(y) width=((slot - 1.0).max(1.0)) height=(height) class=(class) {}
                }
            }
            figcaption {
                p.axis {
                    "Bar height: attempts" (interval) ", from 0 (bottom) to " (attempts(tallest)) " (top)."
                    @if let Some(first) = series.first().filter(|_| !stats.series.is_empty()) {
                        " From " (minute(&first.start)) " (left) to now (right)."
                    }
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
                    thead { tr { th scope="col" { "Interval from" } th scope="col" { "Succeeded" } th scope="col" { "Retrying" } th scope="col" { "Failed" } th scope="col" { "Success rate" } } }
                    tbody {
                        @for interval in &series {
                            tr {
                                td { (minute(&interval.start)) } td { (interval.succeeded) } td { (interval.retrying) } td { (interval.failed) }
                                td { (interval_rate(interval)) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// An interval's success rate in words; one where nothing succeeded says so beside a badge.
fn interval_rate(interval: &Interval) -> Markup {
    let none_succeeded = interval.total() > 0 && interval.succeeded == 0;
    html! {
        @if none_succeeded {
            "0.0 % " span.badge.bad { "none succeeded" }
        } @else {
            (percent(interval.success_rate()))
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

    #[test]
    fn an_interval_where_nothing_succeeded_shows_as_failure() {
        let stats = decode(json!({
            "succeeded": 0, "failed": 2, "success_rate": 0.0, "interval_minutes": 60,
            "series": [
                {"start": "2026-11-23T10:00:00Z", "succeeded": 0, "retrying": 0, "failed": 2},
                {"start": "2026-11-23T11:00:00Z", "succeeded": 0, "retrying": 0, "failed": 0}
            ]
        }));
        let spark = success_sparkline(&stats).into_string();
        assert!(
            spark.contains(r#"height="24" class="bar-failed""#),
            "{spark}"
        );
        assert!(!spark.contains(r#"class="bar-succeeded""#), "{spark}");
        let chart = delivery_chart(&stats).into_string();
        assert!(chart.contains(r#"<td>0.0 % <span class="badge bad">none succeeded</span></td>"#));
        assert!(chart.contains("<td>no attempts</td>"));
    }

    #[test]
    fn the_chart_fills_its_svg_and_states_its_scale() {
        let stats = decode(json!({
            "succeeded": 1, "failed": 0, "success_rate": 1.0, "interval_minutes": 60,
            "series": [{"start": "2026-11-23T10:00:00Z", "succeeded": 1, "retrying": 0, "failed": 0}]
        }));
        let chart = delivery_chart(&stats).into_string();
        assert!(
            chart.contains(r#"height="120" viewBox="0 0 600 120""#),
            "{chart}"
        );
        assert!(
            chart.contains("from 0 (bottom) to 1 attempt (top)"),
            "{chart}"
        );
        assert_eq!(stats.summary(), "100.0 % of 1 attempt");
    }
}
