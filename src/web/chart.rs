//! A metric's readings as a small server-rendered SVG: the readings over time as a line, the
//! baseline and the target as dashed lines, and the celebrated readings marked. No script, so it
//! shows in any browser and in a screenshot.

use maud::{Markup, html};

use crate::domain::metric::{Metric, format_value};
use crate::store::ReadingRecord;

const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 120.0;
const PAD: f64 = 10.0;

/// The chart for one experiment's metric.
pub fn metric_chart(metric: &Metric, readings: &[ReadingRecord]) -> Markup {
    let unit = metric.unit.as_deref();
    let values: Vec<f64> = readings.iter().map(|r| r.value).collect();
    let low = values.iter().copied().chain([metric.baseline, metric.target]).fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().chain([metric.baseline, metric.target]).fold(f64::NEG_INFINITY, f64::max);
    let span = if high > low { high - low } else { 1.0 };
    let y = |v: f64| PAD + (high - v) / span * (HEIGHT - 2.0 * PAD);
    let x = |i: usize| {
        if values.len() <= 1 { WIDTH / 2.0 } else { PAD + i as f64 * (WIDTH - 2.0 * PAD) / (values.len() - 1) as f64 }
    };
    let points: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
    let mut earlier = Vec::new();
    let mut celebrated = Vec::new();
    for (i, value) in values.iter().enumerate() {
        if metric.win(&earlier, *value).is_some() {
            celebrated.push(i);
        }
        earlier.push(*value);
    }
    let label = format!(
        "{}: baseline {}, target {}, {} reading{}{}",
        metric.name,
        format_value(metric.baseline, unit),
        format_value(metric.target, unit),
        values.len(),
        if values.len() == 1 { "" } else { "s" },
        values.last().map(|v| format!(", latest {}", format_value(*v, unit))).unwrap_or_default()
    );
    html! {
        svg class="chart" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            line class="baseline" x1=(PAD) x2=(WIDTH - PAD) y1=(format!("{:.1}", y(metric.baseline))) y2=(format!("{:.1}", y(metric.baseline))) {}
            line class="target" x1=(PAD) x2=(WIDTH - PAD) y1=(format!("{:.1}", y(metric.target))) y2=(format!("{:.1}", y(metric.target))) {}
            @if !points.is_empty() {
                polyline class="readings" points=(points.join(" ")) {}
            }
            @for i in &celebrated {
                circle class="celebrated" cx=(format!("{:.1}", x(*i))) cy=(format!("{:.1}", y(values[*i]))) r="4" {
                    title { "celebrated: " (format_value(values[*i], unit)) }
                }
            }
        }
    }
}
