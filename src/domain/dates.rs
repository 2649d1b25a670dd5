//! Due dates as people type them ("fri", "in 3 days", "2026-12-01"), resolved in a time zone.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::schedule::{parse_weekday, weekday_name};

/// A due date as typed; resolved against "today" in the channel's or owner's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueDate {
    Today,
    Tomorrow,
    /// "fri", "friday": the next such day, today included.
    Weekday(Weekday),
    /// "next fri": that day in the following week (Monday-based weeks).
    NextWeekday(Weekday),
    /// "next week": seven days from today.
    NextWeek,
    InDays(u32),
    InWeeks(u32),
    On(NaiveDate),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DateError(pub String);

/// The furthest "in N days" we accept: a pledge or review further out than a year is not small.
pub const MAX_DAYS_AHEAD: u32 = 365;
/// The furthest "in N weeks" we accept, for the same reason.
pub const MAX_WEEKS_AHEAD: u32 = 52;

/// The forms listed in every "not a date" error, so people learn them from the error itself.
const FORMS: &str = "try today, tomorrow, fri, next week, in 3 days or 2026-12-01";

impl DueDate {
    /// Reads a due date as typed: case-insensitive, extra spaces tolerated. Past dates are not refused
    /// here, because only the executor knows the channel's "today".
    pub fn parse(text: &str) -> Result<DueDate, DateError> {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let unknown = || DateError(format!("{} is not a date I know; {FORMS}", quote(text)));
        match words.as_slice() {
            [] => Err(DateError(format!("the date is missing; {FORMS}"))),
            ["today" | "eod"] => Ok(DueDate::Today),
            ["tomorrow" | "tmrw"] => Ok(DueDate::Tomorrow),
            ["next", "week"] => Ok(DueDate::NextWeek),
            ["next", day] => parse_weekday(day).map(DueDate::NextWeekday).ok_or_else(unknown),
            ["in", count, unit] => {
                let count = match *count {
                    "a" | "an" | "one" => 1,
                    digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                        // Saturate so that a long run of digits reads as "too far ahead", not as unknown.
                        digits.parse::<u32>().unwrap_or(u32::MAX)
                    }
                    _ => return Err(unknown()),
                };
                match *unit {
                    "day" | "days" => in_range(text, count, MAX_DAYS_AHEAD, "days").map(DueDate::InDays),
                    "week" | "weeks" => in_range(text, count, MAX_WEEKS_AHEAD, "weeks").map(DueDate::InWeeks),
                    _ => Err(unknown()),
                }
            }
            [word] => {
                if let Some(day) = parse_weekday(word) {
                    return Ok(DueDate::Weekday(day));
                }
                match parse_iso_date(word)? {
                    Some(date) => Ok(DueDate::On(date)),
                    None => Err(unknown()),
                }
            }
            _ => Err(unknown()),
        }
    }

    /// The calendar day this due date falls on, given today's date where the person is.
    /// Saturates at the end of the calendar instead of panicking.
    pub fn resolve(&self, today: NaiveDate) -> NaiveDate {
        let ahead = |days: u64| today.checked_add_days(Days::new(days)).unwrap_or(NaiveDate::MAX);
        match *self {
            DueDate::Today => today,
            DueDate::Tomorrow => ahead(1),
            DueDate::Weekday(day) => {
                let from_monday = |d: Weekday| d.num_days_from_monday();
                ahead(u64::from((from_monday(day) + 7 - from_monday(today.weekday())) % 7))
            }
            DueDate::NextWeekday(day) => {
                // The Monday after this week's Monday, then forward to the day.
                let to_next_monday = 7 - today.weekday().num_days_from_monday();
                ahead(u64::from(to_next_monday + day.num_days_from_monday()))
            }
            DueDate::NextWeek => ahead(7),
            DueDate::InDays(days) => ahead(u64::from(days)),
            DueDate::InWeeks(weeks) => ahead(u64::from(weeks) * 7),
            DueDate::On(date) => date,
        }
    }
}

/// The normalized phrase, which [`DueDate::parse`] reads back to the same value.
impl fmt::Display for DueDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u32| if n == 1 { "" } else { "s" };
        match self {
            DueDate::Today => f.write_str("today"),
            DueDate::Tomorrow => f.write_str("tomorrow"),
            DueDate::Weekday(day) => f.write_str(weekday_name(*day)),
            DueDate::NextWeekday(day) => write!(f, "next {}", weekday_name(*day)),
            DueDate::NextWeek => f.write_str("next week"),
            DueDate::InDays(n) => write!(f, "in {n} day{}", plural(*n)),
            DueDate::InWeeks(n) => write!(f, "in {n} week{}", plural(*n)),
            DueDate::On(date) => write!(f, "{}", date.format("%Y-%m-%d")),
        }
    }
}

/// An ISO date `YYYY-MM-DD` (one-digit month and day allowed). `Ok(None)` when the text does not
/// have that shape at all, so callers can try other readings; an error when it has the shape but
/// names no real day ("2026-02-30"), because then we know what was meant and can say what is wrong.
pub fn parse_iso_date(text: &str) -> Result<Option<NaiveDate>, DateError> {
    let parts: Vec<&str> = text.trim().split('-').collect();
    let digits = |s: &str, lengths: std::ops::RangeInclusive<usize>| {
        lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    let [year, month, day] = parts.as_slice() else { return Ok(None) };
    if !(digits(year, 4..=4) && digits(month, 1..=2) && digits(day, 1..=2)) {
        return Ok(None);
    }
    // All parts are short runs of ASCII digits, so these parses cannot fail.
    let (year, month, day) = (year.parse().unwrap_or(0), month.parse().unwrap_or(0), day.parse().unwrap_or(0));
    NaiveDate::from_ymd_opt(year, month, day)
        .map(Some)
        .ok_or_else(|| DateError(format!("{} is not a real date", quote(text.trim()))))
}

fn in_range(text: &str, count: u32, max: u32, unit: &str) -> Result<u32, DateError> {
    if count == 0 {
        Err(DateError(format!("{} is no time at all; pick 1 to {max} {unit}, or say today", quote(text))))
    } else if count > max {
        Err(DateError(format!("{} is too far ahead; pick 1 to {max} {unit}, or a date like 2026-12-01", quote(text))))
    } else {
        Ok(count)
    }
}

/// Quotes what was typed, whitespace normalized and cut short, so an error never echoes a wall of text.
pub(crate) fn quote(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = text.chars();
    let short: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() { format!("\"{short}…\"") } else { format!("\"{short}\"") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Friday 2026-11-27: the end of a Monday-based week, where "this" and "next" are easiest to get wrong.
    fn friday() -> NaiveDate {
        date(2026, 11, 27)
    }

    fn resolve(text: &str, today: NaiveDate) -> NaiveDate {
        DueDate::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).resolve(today)
    }

    fn error(text: &str) -> String {
        DueDate::parse(text).expect_err(text).to_string()
    }

    #[test]
    fn today_and_eod_are_today() {
        assert_eq!(DueDate::parse("today"), Ok(DueDate::Today));
        assert_eq!(DueDate::parse("EOD"), Ok(DueDate::Today));
        assert_eq!(resolve("today", friday()), friday());
        assert_eq!(resolve("eod", friday()), friday());
    }

    #[test]
    fn tomorrow_is_the_next_day_even_across_a_month_and_a_year() {
        assert_eq!(DueDate::parse("Tomorrow"), Ok(DueDate::Tomorrow));
        assert_eq!(DueDate::parse("tmrw"), Ok(DueDate::Tomorrow));
        assert_eq!(resolve("tomorrow", date(2026, 11, 30)), date(2026, 12, 1));
        assert_eq!(resolve("tomorrow", date(2026, 12, 31)), date(2027, 1, 1));
    }

    #[test]
    fn every_weekday_spelling_is_understood() {
        let spellings = [
            (Weekday::Mon, &["mon", "monday"][..]),
            (Weekday::Tue, &["tue", "tues", "tuesday"]),
            (Weekday::Wed, &["wed", "weds", "wednesday"]),
            (Weekday::Thu, &["thu", "thur", "thurs", "thursday"]),
            (Weekday::Fri, &["fri", "friday", "FRI", "Friday"]),
            (Weekday::Sat, &["sat", "saturday"]),
            (Weekday::Sun, &["sun", "sunday"]),
        ];
        for (day, words) in spellings {
            for word in words {
                assert_eq!(DueDate::parse(word), Ok(DueDate::Weekday(day)), "{word}");
                assert_eq!(DueDate::parse(&format!("next {word}")), Ok(DueDate::NextWeekday(day)), "{word}");
            }
        }
    }

    #[test]
    fn a_weekday_is_the_nearest_such_day_today_included() {
        assert_eq!(resolve("fri", friday()), friday());
        assert_eq!(resolve("sat", friday()), date(2026, 11, 28));
        assert_eq!(resolve("sun", friday()), date(2026, 11, 29));
        assert_eq!(resolve("mon", friday()), date(2026, 11, 30));
        assert_eq!(resolve("thu", friday()), date(2026, 12, 3));
    }

    #[test]
    fn next_weekday_is_that_day_in_the_following_monday_based_week() {
        assert_eq!(resolve("next fri", friday()), date(2026, 12, 4));
        assert_eq!(resolve("next mon", friday()), date(2026, 11, 30));
        assert_eq!(resolve("next sun", friday()), date(2026, 12, 6));
        // On a Sunday, the following week starts tomorrow.
        let sunday = date(2026, 11, 29);
        assert_eq!(resolve("next mon", sunday), date(2026, 11, 30));
        assert_eq!(resolve("next sun", sunday), date(2026, 12, 6));
        // On a Monday, "next mon" is a week away and "mon" is today.
        let monday = date(2026, 11, 30);
        assert_eq!(resolve("next mon", monday), date(2026, 12, 7));
        assert_eq!(resolve("mon", monday), monday);
    }

    #[test]
    fn next_week_is_seven_days_from_today() {
        assert_eq!(DueDate::parse("next week"), Ok(DueDate::NextWeek));
        assert_eq!(resolve("next week", friday()), date(2026, 12, 4));
    }

    #[test]
    fn in_days_and_in_weeks_count_from_today() {
        assert_eq!(DueDate::parse("in 3 days"), Ok(DueDate::InDays(3)));
        assert_eq!(DueDate::parse("in 1 day"), Ok(DueDate::InDays(1)));
        assert_eq!(DueDate::parse("in a week"), Ok(DueDate::InWeeks(1)));
        assert_eq!(DueDate::parse("in 2 weeks"), Ok(DueDate::InWeeks(2)));
        assert_eq!(resolve("in 3 days", friday()), date(2026, 11, 30));
        assert_eq!(resolve("in 2 weeks", friday()), date(2026, 12, 11));
        assert_eq!(resolve("in 365 days", friday()), date(2027, 11, 27));
        assert_eq!(resolve("in 52 weeks", friday()), date(2027, 11, 26));
    }

    #[test]
    fn case_and_extra_spaces_do_not_matter() {
        assert_eq!(DueDate::parse("  In   3   DAYS "), Ok(DueDate::InDays(3)));
        assert_eq!(DueDate::parse("NEXT\tFri"), Ok(DueDate::NextWeekday(Weekday::Fri)));
    }

    #[test]
    fn an_iso_date_is_that_day_even_in_the_past() {
        assert_eq!(DueDate::parse("2026-12-01"), Ok(DueDate::On(date(2026, 12, 1))));
        assert_eq!(DueDate::parse("2026-1-5"), Ok(DueDate::On(date(2026, 1, 5))));
        assert_eq!(resolve("2026-12-01", friday()), date(2026, 12, 1));
        assert_eq!(resolve("2020-02-29", friday()), date(2020, 2, 29));
    }

    #[test]
    fn display_gives_a_normalized_phrase_that_parses_back() {
        let cases = [
            (DueDate::Today, "today"),
            (DueDate::Tomorrow, "tomorrow"),
            (DueDate::Weekday(Weekday::Fri), "fri"),
            (DueDate::NextWeekday(Weekday::Tue), "next tue"),
            (DueDate::NextWeek, "next week"),
            (DueDate::InDays(1), "in 1 day"),
            (DueDate::InDays(3), "in 3 days"),
            (DueDate::InWeeks(1), "in 1 week"),
            (DueDate::InWeeks(2), "in 2 weeks"),
            (DueDate::On(date(2026, 12, 1)), "2026-12-01"),
        ];
        for (due, phrase) in cases {
            assert_eq!(due.to_string(), phrase);
            assert_eq!(DueDate::parse(phrase), Ok(due));
        }
    }

    #[test]
    fn an_unknown_word_is_quoted_with_the_forms_we_know() {
        assert_eq!(
            error("fryday"),
            "\"fryday\" is not a date I know; try today, tomorrow, fri, next week, in 3 days or 2026-12-01"
        );
        for text in ["next", "next month", "in 3", "in three days", "in 3 months", "in -3 days", "12/01", "dec 1"] {
            assert!(error(text).contains("is not a date I know"), "{text}");
        }
    }

    #[test]
    fn an_empty_date_says_it_is_missing() {
        assert!(error("").starts_with("the date is missing; try today"));
        assert!(error("   ").starts_with("the date is missing"));
    }

    #[test]
    fn an_impossible_calendar_day_is_not_a_real_date() {
        assert_eq!(error("2026-02-30"), "\"2026-02-30\" is not a real date");
        assert_eq!(error("2026-13-01"), "\"2026-13-01\" is not a real date");
        assert_eq!(error("2027-02-29"), "\"2027-02-29\" is not a real date");
    }

    #[test]
    fn zero_or_too_many_days_and_weeks_are_refused_with_the_range() {
        assert!(error("in 0 days").starts_with("\"in 0 days\" is no time at all; pick 1 to 365 days"));
        assert!(error("in 366 days").starts_with("\"in 366 days\" is too far ahead; pick 1 to 365 days"));
        assert!(error("in 0 weeks").contains("pick 1 to 52 weeks"));
        assert!(error("in 53 weeks").contains("too far ahead"));
        assert!(error("in 99999999999999999999 days").contains("too far ahead"));
    }

    #[test]
    fn odd_input_is_refused_without_panicking_and_quoted_briefly() {
        for text in ["٣", "in ٣ days", "🎉", "next 🎉", "2026-12-01-01", "-2026-12-01", "2026-12-", "--", "in"] {
            assert!(DueDate::parse(text).is_err(), "{text}");
        }
        let long = "x".repeat(5000);
        assert!(error(&long).len() < 200);
    }

    #[test]
    fn resolving_near_the_end_of_the_calendar_saturates() {
        assert_eq!(DueDate::InWeeks(52).resolve(NaiveDate::MAX), NaiveDate::MAX);
        assert_eq!(DueDate::NextWeekday(Weekday::Sun).resolve(NaiveDate::MAX), NaiveDate::MAX);
        assert_eq!(DueDate::InDays(u32::MAX).resolve(friday()), NaiveDate::MAX);
    }
}
