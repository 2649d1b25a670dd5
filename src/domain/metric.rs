//! Experiment metrics: baseline, target, the direction between them, progress toward the target, and
//! which readings are worth celebrating (DESIGN.md §4).

use serde::{Deserialize, Serialize};

/// Which way the metric has to move to reach its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Increase,
    Decrease,
}

/// What an experiment measures: baseline and target differ, so the direction is never ambiguous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub unit: Option<String>,
    pub baseline: f64,
    pub target: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    #[error("the target equals the baseline, so there is nothing to move; pick a target you hope to reach")]
    NoGap,
    #[error("{0} is not a finite number")]
    NotFinite(&'static str),
}

/// A reading worth a small celebration, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Win {
    /// The reading reached (or passed) the target for the first time.
    TargetHit,
    /// The reading closed this share (≥ 10%) of the baseline→target gap beyond the best so far.
    GapClosed { share: f64 },
    /// Better than every earlier reading and the baseline, by less than that.
    NewBest,
}

/// The share of the baseline→target gap a reading must close to count as a small win.
pub const GAP_SHARE_WORTH_CELEBRATING: f64 = 0.10;

impl Metric {
    pub fn new(name: String, unit: Option<String>, baseline: f64, target: f64) -> Result<Self, MetricError> {
        if !baseline.is_finite() {
            return Err(MetricError::NotFinite("the baseline"));
        }
        if !target.is_finite() {
            return Err(MetricError::NotFinite("the target"));
        }
        if baseline == target {
            return Err(MetricError::NoGap);
        }
        Ok(Self { name, unit, baseline, target })
    }

    pub fn direction(&self) -> Direction {
        if self.target > self.baseline { Direction::Increase } else { Direction::Decrease }
    }

    /// How far `value` has come from the baseline toward the target: 0 at the baseline, 1 at the
    /// target, negative when it moved the wrong way, above 1 past the target.
    pub fn progress(&self, value: f64) -> f64 {
        (value - self.baseline) / (self.target - self.baseline)
    }

    /// Whether `value` is at or beyond the target in the metric's direction.
    pub fn reached(&self, value: f64) -> bool {
        self.progress(value) >= 1.0
    }

    /// Decides whether a new reading is a small win, given the earlier readings in order. Gains
    /// are measured from the best so far (the baseline at first), so a metric that wobbles is not
    /// celebrated on every up-tick. Pure, so the command reply and the celebration job agree.
    pub fn win(&self, earlier: &[f64], value: f64) -> Option<Win> {
        // Readings are typed decimals; a hair of tolerance keeps 0.30 → 0.31 on a 0.1 gap at 10%.
        const EPSILON: f64 = 1e-9;
        let progress = self.progress(value);
        if self.reached(value) && !earlier.iter().any(|v| self.reached(*v)) {
            return Some(Win::TargetHit);
        }
        let best = earlier.iter().map(|v| self.progress(*v)).fold(0.0, f64::max);
        let gain = progress - best;
        // Past the target there is no gap left to close, only records to beat.
        if best < 1.0 && gain >= GAP_SHARE_WORTH_CELEBRATING - EPSILON {
            return Some(Win::GapClosed { share: gain });
        }
        if gain > EPSILON {
            return Some(Win::NewBest);
        }
        None
    }
}

/// A one-line text sparkline of readings (▁▂▃▄▅▆▇█), scaled between their minimum and maximum.
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (min, max) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    finite
        .iter()
        .map(|v| {
            if max > min {
                let index = ((v - min) / (max - min) * 7.0).round() as usize;
                BARS[index.min(7)]
            } else {
                BARS[3]
            }
        })
        .collect()
}

/// Formats a metric value the way people write it: thousands grouped ("1,250"), no trailing zeros,
/// unit attached.
pub fn format_value(value: f64, unit: Option<&str>) -> String {
    let mut number = format!("{:.4}", value);
    if number.contains('.') {
        number = number.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if number == "-0" {
        number = "0".into();
    }
    number = group_thousands(&number);
    match unit {
        Some(u) if u.chars().all(|c| !c.is_alphanumeric()) && u != "%" => format!("{u}{number}"),
        Some("%") => format!("{number}%"),
        Some(u) => format!("{number} {u}"),
        None => number,
    }
}

/// "1234567.5" → "1,234,567.5"; a sign and the decimals are kept as they are.
fn group_thousands(number: &str) -> String {
    let (sign, digits) = number.strip_prefix('-').map_or(("", number), |rest| ("-", rest));
    let (whole, decimals) = digits.split_once('.').map_or((digits, None), |(w, d)| (w, Some(d)));
    if whole.len() <= 3 {
        return number.to_string();
    }
    let mut grouped = String::with_capacity(number.len() + whole.len() / 3);
    for (n, digit) in whole.chars().enumerate() {
        if n > 0 && (whole.len() - n) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match decimals {
        Some(decimals) => format!("{sign}{grouped}.{decimals}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activation() -> Metric {
        Metric::new("activation".into(), None, 0.30, 0.40).unwrap()
    }

    fn latency() -> Metric {
        Metric::new("p95 latency".into(), Some("ms".into()), 800.0, 400.0).unwrap()
    }

    #[test]
    fn direction_follows_baseline_and_target() {
        assert_eq!(activation().direction(), Direction::Increase);
        assert_eq!(latency().direction(), Direction::Decrease);
    }

    #[test]
    fn a_target_equal_to_the_baseline_is_refused() {
        assert_eq!(Metric::new("x".into(), None, 1.0, 1.0), Err(MetricError::NoGap));
        assert!(Metric::new("x".into(), None, f64::NAN, 1.0).is_err());
    }

    #[test]
    fn progress_counts_the_share_of_the_gap_in_either_direction() {
        assert!((activation().progress(0.35) - 0.5).abs() < 1e-9);
        assert!((latency().progress(600.0) - 0.5).abs() < 1e-9);
        assert!(latency().progress(900.0) < 0.0);
        assert!(latency().reached(390.0));
        assert!(!latency().reached(401.0));
    }

    #[test]
    fn a_reading_that_hits_the_target_is_the_strongest_win_once() {
        let m = activation();
        assert_eq!(m.win(&[0.32], 0.41), Some(Win::TargetHit));
        // Once reached, staying above it is at most a new best, not a second target hit.
        assert_eq!(m.win(&[0.32, 0.41], 0.42), Some(Win::NewBest));
    }

    #[test]
    fn closing_a_tenth_of_the_gap_is_a_small_win() {
        let m = latency();
        match m.win(&[760.0], 700.0) {
            Some(Win::GapClosed { share }) => assert!((share - 0.15).abs() < 1e-9),
            other => panic!("expected a gap win, got {other:?}"),
        }
        // Exactly 10% counts (40 ms of a 400 ms gap).
        assert!(matches!(m.win(&[], 760.0), Some(Win::GapClosed { .. })));
    }

    #[test]
    fn a_small_improvement_is_a_new_best_only_when_it_beats_every_earlier_reading() {
        let m = activation();
        assert_eq!(m.win(&[0.31, 0.33], 0.335), Some(Win::NewBest));
        assert_eq!(m.win(&[0.31, 0.36, 0.33], 0.34), None);
        assert_eq!(m.win(&[0.31], 0.29), None);
    }

    #[test]
    fn sparkline_scales_readings_between_their_extremes() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0, 8.0]), "▁▂▃█");
        assert_eq!(sparkline(&[5.0, 5.0]), "▄▄");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn values_are_formatted_as_people_write_them() {
        assert_eq!(format_value(0.3100, None), "0.31");
        assert_eq!(format_value(31.0, Some("%")), "31%");
        assert_eq!(format_value(120.0, Some("$")), "$120");
        assert_eq!(format_value(450.5, Some("ms")), "450.5 ms");
        assert_eq!(format_value(1250.0, None), "1,250");
        assert_eq!(format_value(-1234567.25, Some("$")), "$-1,234,567.25");
        assert_eq!(format_value(999.0, None), "999");
    }
}
