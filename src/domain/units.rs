//! Units as people type them: which ones measure the same quantity (times: ms, s, min, h, days,
//! weeks), how a reading typed in one fits a metric kept in another, and when a reading is so far
//! from an experiment's range that it is more likely a slip than news.

use super::metric::{Metric, format_value};

/// Milliseconds in one of a time unit, for the spellings people use.
pub fn time_factor(unit: &str) -> Option<f64> {
    let factor = match unit.to_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
        "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        "w" | "wk" | "wks" | "week" | "weeks" => 604_800_000.0,
        _ => return None,
    };
    Some(factor)
}

/// Whether two units are the same one, plural or not, in any case: "day" and "days", "$" and "$".
pub fn same_unit(a: &str, b: &str) -> bool {
    let one = |u: &str| u.strip_suffix(['s', 'S']).unwrap_or(u).to_lowercase();
    a.eq_ignore_ascii_case(b) || (a.len() > 1 && b.len() > 1 && one(a) == one(b))
}

/// A unit typed apart from its number that is a unit and not the start of a note: a time unit, a
/// percent sign or a currency sign.
pub fn is_known_unit(word: &str) -> bool {
    time_factor(word).is_some() || matches!(word, "%" | "$" | "€" | "£")
}

/// How a reading typed with `unit` fits a metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    /// In the metric's own unit (perhaps converted from another unit of the same quantity).
    Value(f64),
    /// Probably meant as `suggested`; the person is asked which, with `why`.
    Ask { suggested: f64, why: String },
    /// A different quantity altogether: refused with what to type instead.
    Refuse(String),
}

/// How a reading of `value`, typed in `unit`, fits the metric.
pub fn fit(metric: &Metric, value: f64, unit: Option<&str>) -> Fit {
    let kept = metric.unit.as_deref();
    let shown = |v: f64| format_value(v, kept);
    match (unit, kept) {
        (None, Some("%")) if value.abs() <= 1.0 && metric.baseline.abs().max(metric.target.abs()) > 1.0 => {
            let suggested = value * 100.0;
            Fit::Ask {
                suggested,
                why: format!("{} is tracked in percent: did you mean {}?", metric.name, shown(suggested)),
            }
        }
        (None, _) => Fit::Value(value),
        (Some(typed), Some(kept)) if same_unit(typed, kept) => Fit::Value(value),
        (Some(typed), Some(kept)) if time_factor(typed).is_some() && time_factor(kept).is_some() => {
            let converted = value * time_factor(typed).unwrap_or(1.0) / time_factor(kept).unwrap_or(1.0);
            Fit::Value(converted)
        }
        (Some("%"), None) if metric.baseline.abs().max(metric.target.abs()) <= 1.0 => {
            let suggested = value / 100.0;
            Fit::Ask {
                suggested,
                why: format!(
                    "{} is tracked as a fraction ({} → {}): did you mean {}?",
                    metric.name,
                    shown(metric.baseline),
                    shown(metric.target),
                    shown(suggested)
                ),
            }
        }
        (Some(typed), kept) => {
            let example = format_value(metric.target, kept);
            let tracked = match kept {
                Some(kept) => format!("in {kept}"),
                None => "without a unit".to_string(),
            };
            Fit::Refuse(format!(
                "{} is tracked {tracked}, and {} is not the same quantity; give the value like {example}",
                metric.name,
                format_value(value, Some(typed))
            ))
        }
    }
}

/// Whether a reading is so far from the experiment's range (baseline, target and recent readings)
/// that it is more likely a slip (a wrong unit, a misplaced point) than news: more than the range's
/// own width beyond it, or for a metric of positive numbers, ten times off.
pub fn is_far_off(metric: &Metric, recent: &[f64], value: f64) -> bool {
    let known: Vec<f64> = [metric.baseline, metric.target].into_iter().chain(recent.iter().copied()).collect();
    let low = known.iter().copied().fold(f64::INFINITY, f64::min);
    let high = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = (high - low).max(high.abs() * 0.1);
    if value < low - width || value > high + width {
        return true;
    }
    low > 0.0 && (value < low / 10.0 || value > high * 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency() -> Metric {
        Metric::new("p95 latency".into(), Some("ms".into()), 800.0, 400.0).unwrap()
    }

    fn conversion() -> Metric {
        Metric::new("conversion".into(), Some("%".into()), 31.0, 40.0).unwrap()
    }

    #[test]
    fn a_time_in_another_unit_is_converted_to_the_metrics() {
        assert_eq!(fit(&latency(), 0.4, Some("s")), Fit::Value(400.0));
        assert_eq!(fit(&latency(), 450.0, Some("ms")), Fit::Value(450.0));
        let days = Metric::new("lead time".into(), Some("days".into()), 10.0, 5.0).unwrap();
        assert_eq!(fit(&days, 1.0, Some("week")), Fit::Value(7.0));
        assert_eq!(fit(&days, 6.0, Some("day")), Fit::Value(6.0));
    }

    #[test]
    fn a_different_quantity_is_refused_with_an_example() {
        let Fit::Refuse(why) = fit(&latency(), 40.0, Some("%")) else { panic!("refused") };
        assert!(why.contains("tracked in ms") && why.contains("400 ms"), "{why}");
        assert!(matches!(fit(&conversion(), 3.0, Some("$")), Fit::Refuse(_)));
    }

    #[test]
    fn a_fraction_on_a_percent_metric_asks_what_was_meant() {
        assert_eq!(
            fit(&conversion(), 0.35, None),
            Fit::Ask { suggested: 35.0, why: "conversion is tracked in percent: did you mean 35%?".into() }
        );
        assert_eq!(fit(&conversion(), 35.0, None), Fit::Value(35.0));
        let activation = Metric::new("activation".into(), None, 0.31, 0.36).unwrap();
        assert!(
            matches!(fit(&activation, 34.0, Some("%")), Fit::Ask { suggested, .. } if (suggested - 0.34).abs() < 1e-12)
        );
    }

    #[test]
    fn a_reading_far_outside_the_range_is_a_likely_slip() {
        assert!(is_far_off(&latency(), &[700.0], 0.4), "ten times off");
        assert!(is_far_off(&latency(), &[700.0], 4_000.0));
        assert!(!is_far_off(&latency(), &[700.0], 390.0), "just past the target is news");
        assert!(!is_far_off(&latency(), &[], 850.0));
        let activation = Metric::new("activation".into(), None, 0.31, 0.36).unwrap();
        assert!(is_far_off(&activation, &[0.33], 34.0));
        assert!(!is_far_off(&activation, &[0.33], 0.37));
    }

    #[test]
    fn units_are_the_same_in_any_case_singular_or_plural() {
        assert!(same_unit("days", "day") && same_unit("MS", "ms") && same_unit("$", "$"));
        assert!(!same_unit("s", "ms") && !same_unit("%", "$"));
        assert!(is_known_unit("sec") && is_known_unit("%") && !is_known_unit("after"));
    }
}
