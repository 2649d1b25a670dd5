//! Channel schedules: 5-field cron or "mon 09:30" shorthands, evaluated in an IANA time zone; and quiet days.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc, Weekday};
use chrono_tz::{TZ_VARIANTS, Tz};

const SCHEDULE_HELP: &str = "use a day and time like \"mon 09:30\", \"weekdays 09:00\" or \"daily 08:15\", \
                             or a 5-field cron expression like \"30 9 * * 1\"";
const TIME_HELP: &str = "use 24-hour HH:MM like 09:30";
const WEEKDAY_HELP: &str = "use mon, tue, … sun (or daily, weekdays, weekends)";
const ZONE_HELP: &str = "use an IANA name like Europe/Berlin or America/New_York";
/// Echoed user text is cut to this many characters so one bad paste cannot flood a reply.
const ECHO_LIMIT: usize = 40;
/// Upper bound on local candidates examined per `next_after`; the real need is at most about a day of
/// per-minute candidates (the longest DST-style gap on record), so this only guards against surprises.
const MAX_CANDIDATES: usize = 20_000;

/// Day-of-week masks use bit 0 = Sunday … bit 6 = Saturday, matching standard cron numbering.
const ALL_DAYS: u64 = 0b111_1111;
const WEEKDAYS: u64 = 0b011_1110;
const WEEKEND: u64 = 0b100_0001;

#[derive(Debug, Clone)]
pub struct Schedule {
    /// Normalized standard 5-field expression; this is what gets stored and compared.
    expression: String,
    fields: Fields,
    /// Usually one cron-crate schedule; two when both day fields are restricted, because standard cron
    /// fires when *either* matches while the cron crate requires both.
    runs: Vec<cron::Schedule>,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

fn error(message: impl Into<String>) -> ScheduleError {
    ScheduleError(message.into())
}

/// Quotes user text for an error message: trimmed, control characters blanked, cut to `ECHO_LIMIT` chars.
fn quoted(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let clean = clean.trim();
    if clean.chars().count() > ECHO_LIMIT {
        let cut: String = clean.chars().take(ECHO_LIMIT - 1).collect();
        format!("\"{cut}…\"")
    } else {
        format!("\"{clean}\"")
    }
}

impl Schedule {
    /// Accepts a standard 5-field cron expression ("30 9 * * 1", "0 10 * * mon-fri", "*/15 9-17 * * 1-5")
    /// or a shorthand: "mon 09:30", "monday 9:30", "mon,thu 10:00", "weekdays 09:00", "daily 08:15",
    /// "every day 8:15", "fri 16:00". Case-insensitive, surrounding spaces ignored.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        // Matching is case-insensitive word by word, so errors can echo exactly what the user typed.
        let text = text.trim();
        if text.chars().all(char::is_control) {
            return Err(error(format!("a schedule is needed; {SCHEDULE_HELP}")));
        }
        if text.starts_with('@') {
            return Schedule::from_cron(at_macro(text)?);
        }
        if looks_like_cron(text) {
            return Schedule::from_cron(text);
        }
        // Shorthands are rewritten to cron and parsed like any expression, so both paths normalize alike.
        Schedule::from_cron(&shorthand_to_cron(text)?)
    }

    /// The normalized standard 5-field cron expression that is stored, e.g. "30 9 * * 1" for "mon 09:30".
    /// Parsing expression() again must give an equal Schedule.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Human description for replies, e.g. "Mondays at 09:30", "weekdays at 09:00", "every day at 08:15",
    /// "Mondays and Thursdays at 10:00"; for cron that is not a simple weekly/daily time, "cron `<expr>`".
    pub fn describe(&self) -> String {
        let f = &self.fields;
        let single = |field: Field| (field.mask.count_ones() == 1).then(|| field.mask.trailing_zeros());
        let every_day_of_month = f.day_of_month.star_step.is_some() && f.day_of_month.is_full(Part::DayOfMonth);
        if let (Some(minute), Some(hour)) = (single(f.minute), single(f.hour))
            && every_day_of_month
            && f.month.is_full(Part::Month)
        {
            let at = format!("{hour:02}:{minute:02}");
            return match f.day_of_week.mask {
                ALL_DAYS => format!("every day at {at}"),
                WEEKDAYS => format!("weekdays at {at}"),
                WEEKEND => format!("weekends at {at}"),
                days => format!("{} at {at}", plural_day_list(days)),
            };
        }
        format!("cron `{}`", self.expression)
    }

    /// The first firing strictly after `after`, evaluating the expression in local time of `tz`.
    ///
    /// Matching happens on local wall-clock times. A local time skipped by a spring-forward gap fires
    /// once, shifted forward by the gap (02:30 becomes 03:30); a local time repeated by a fall-back fires
    /// only at its earlier instant. The answer does not depend on call history: it is the earliest such
    /// firing after `after`, so a restarted bot computes the same next post. None past the year 2100.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // A candidate maps back to an instant at most its own UTC offset earlier, so starting at `after`
        // plus the smallest recent offset cannot miss one; the recent past is included because a time in
        // a gap that just happened maps to the pre-gap offset.
        let offset_floor = (0..=48)
            .filter_map(|hours| after.checked_sub_signed(Duration::hours(hours)))
            .map(|instant| tz.offset_from_utc_datetime(&instant.naive_utc()).fix().local_minus_utc())
            .min()?;
        let mut cursor = after.naive_utc().checked_add_signed(Duration::seconds(i64::from(offset_floor)))?;
        // The cron crate only knows the years 1970..=2100 and overflows near chrono's limits.
        if cursor.year() > 2100 {
            return None;
        }
        let epoch_eve = NaiveDate::from_ymd_opt(1969, 12, 31)?.and_hms_opt(23, 59, 59)?;
        cursor = cursor.max(epoch_eve);

        // Earliest firing so far, plus the local time up to which a later candidate could still map earlier.
        let mut best: Option<(DateTime<Utc>, NaiveDateTime)> = None;
        for _ in 0..MAX_CANDIDATES {
            let Some(local) = self.next_local_after(cursor) else { break };
            if let Some((_, horizon)) = best
                && local >= horizon
            {
                break;
            }
            cursor = local;
            let Some(fire) = resolve_local(local, tz) else { continue };
            if fire.instant <= after {
                continue;
            }
            match (best, fire.gap) {
                // Ordinary local times map to instants in order, so the first one past `after` wins.
                (None, None) => return Some(fire.instant),
                // A gap-shifted time lands after real times that follow the gap by less than the gap
                // length, so keep looking that far before deciding.
                (None, Some(gap)) => best = Some((fire.instant, local.checked_add_signed(gap).unwrap_or(local))),
                (Some((instant, horizon)), _) => best = Some((instant.min(fire.instant), horizon)),
            }
        }
        best.map(|(instant, _)| instant)
    }

    /// The next matching local wall-clock time strictly after `local`, treating naive times as UTC so
    /// the cron crate does no zone conversion of its own.
    fn next_local_after(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = local.and_utc();
        self.runs.iter().filter_map(|run| run.after(&start).next()).map(|t| t.naive_utc()).min()
    }

    fn from_cron(text: &str) -> Result<Schedule, ScheduleError> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 5 {
            let extra = if parts.len() > 5 { " (seconds and years are not supported)" } else { "" };
            return Err(error(format!(
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week); {} has {}{extra}",
                quoted(text),
                parts.len()
            )));
        }
        let fields = Fields {
            minute: parse_field(parts[0], Part::Minute)?,
            hour: parse_field(parts[1], Part::Hour)?,
            day_of_month: parse_field(parts[2], Part::DayOfMonth)?,
            month: parse_field(parts[3], Part::Month)?,
            day_of_week: parse_field(parts[4], Part::DayOfWeek)?,
        };
        fields.check_possible()?;
        Ok(Schedule { expression: fields.render(), runs: fields.crate_schedules()?, fields })
    }
}

/// Where a matching local time actually fires.
struct Resolved {
    instant: DateTime<Utc>,
    /// Set when the local time fell into a spring-forward gap: how long that gap is.
    gap: Option<Duration>,
}

fn resolve_local(local: NaiveDateTime, tz: Tz) -> Option<Resolved> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(Resolved { instant: t.with_timezone(&Utc), gap: None }),
        // Repeated hour after a fall-back: post once, at the first pass.
        LocalResult::Ambiguous(earliest, _) => Some(Resolved { instant: earliest.with_timezone(&Utc), gap: None }),
        LocalResult::None => {
            // Interpreting the skipped time with the offset from before the gap yields the same wall-clock
            // time shifted forward by the gap, e.g. 02:30 -> 03:30 on a one-hour spring-forward.
            let before = (1..=4 * 48).find_map(|quarters| {
                let probe = local.checked_sub_signed(Duration::minutes(15 * quarters))?;
                match tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) => Some(t.offset().fix()),
                    LocalResult::Ambiguous(_, latest) => Some(latest.offset().fix()),
                    LocalResult::None => None,
                }
            })?;
            let instant = local.checked_sub_signed(Duration::seconds(i64::from(before.local_minus_utc())))?.and_utc();
            let after_gap = tz.offset_from_utc_datetime(&instant.naive_utc()).fix();
            let gap = Duration::seconds(i64::from(after_gap.local_minus_utc() - before.local_minus_utc()));
            Some(Resolved { instant, gap: Some(gap.max(Duration::zero())) })
        }
    }
}

/// Cron starts with a minute field; "9 mon" also starts with a number but reads as a shorthand, whose error
/// ("add the minutes") helps more than a field count.
fn looks_like_cron(text: &str) -> bool {
    let symbolic = |token: &str| token.chars().all(|c| c.is_ascii_digit() || "*?,-/".contains(c));
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let first = tokens.first().copied().unwrap_or("");
    first.starts_with(|c: char| c.is_ascii_digit() || c == '*' || c == '?')
        && symbolic(first)
        && (tokens.len() >= 5 || tokens.iter().all(|token| symbolic(token)))
}

fn at_macro(text: &str) -> Result<&'static str, ScheduleError> {
    match text.to_lowercase().as_str() {
        "@yearly" | "@annually" => Ok("0 0 1 1 *"),
        "@monthly" => Ok("0 0 1 * *"),
        "@weekly" => Ok("0 0 * * 0"),
        "@daily" | "@midnight" => Ok("0 0 * * *"),
        "@hourly" => Ok("0 * * * *"),
        _ => Err(error(format!(
            "{} is not supported; use @hourly, @daily, @weekly, @monthly or @yearly, or 5 fields like \"30 9 * * 1\"",
            quoted(text)
        ))),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Shorthands
// ---------------------------------------------------------------------------------------------------------

/// Words that read naturally in a shorthand but carry no meaning: "every monday at 9:30".
const FILLER: [&str; 6] = ["at", "on", "every", "each", "and", "&"];

fn shorthand_to_cron(text: &str) -> Result<String, ScheduleError> {
    // "9 am" is one time written apart; glue am/pm to the token before it.
    let mut tokens: Vec<String> = Vec::new();
    for token in text.split_whitespace() {
        match tokens.last_mut() {
            Some(previous) if matches!(token.to_lowercase().as_str(), "am" | "pm" | "a.m." | "p.m.") => {
                previous.push_str(token)
            }
            _ => tokens.push(token.to_owned()),
        }
    }
    let (first, last) = match (tokens.first(), tokens.last()) {
        (Some(first), Some(last)) => (first.as_str(), last.as_str()),
        _ => return Err(error(format!("a schedule is needed; {SCHEDULE_HELP}"))),
    };
    // The time usually comes last ("mon 09:30"); "09:30 mon" is accepted too.
    let (hour, minute, day_tokens) = if let Ok((hour, minute)) = parse_time(last) {
        (hour, minute, &tokens[..tokens.len() - 1])
    } else if tokens.len() > 1
        && let Ok((hour, minute)) = parse_time(first)
    {
        (hour, minute, &tokens[1..])
    } else {
        return Err(explain_missing_time(&tokens, text));
    };
    let days = parse_days(day_tokens, text)?;
    let day_field = if days == ALL_DAYS { "*".to_owned() } else { render_mask(days, 0, 6, false) };
    Ok(format!("{minute} {hour} * * {day_field}"))
}

/// Picks the most helpful complaint when no token is a usable time of day.
fn explain_missing_time(tokens: &[String], text: &str) -> ScheduleError {
    let has_digit = |token: &str| token.chars().any(|c| c.is_ascii_digit());
    let last = tokens.last().map_or("", String::as_str);
    let first = tokens.first().map_or("", String::as_str);
    for candidate in [last, first] {
        if has_digit(candidate)
            && let Err(problem) = parse_time(candidate)
        {
            return problem;
        }
    }
    if parse_days(tokens, text).is_ok() {
        return error(format!("{} needs a time of day too, like \"mon 09:30\"; {TIME_HELP}", quoted(text)));
    }
    error(format!("{} is not a schedule; {SCHEDULE_HELP}", quoted(text)))
}

/// Day words to a day-of-week mask: names, plurals, ranges like mon-fri, and daily/weekdays/weekends.
fn parse_days(tokens: &[String], whole: &str) -> Result<u64, ScheduleError> {
    let mut mask = 0;
    let mut named_any = false;
    for word in tokens.iter().flat_map(|token| token.split(',')).filter(|word| !word.is_empty()) {
        let lower = word.to_lowercase();
        if FILLER.contains(&lower.as_str()) {
            continue;
        }
        named_any = true;
        mask |= match lower.as_str() {
            "day" | "days" | "daily" | "everyday" => ALL_DAYS,
            "weekday" | "weekdays" | "workday" | "workdays" => WEEKDAYS,
            "weekend" | "weekends" => WEEKEND,
            _ if parse_time(word).is_ok() => {
                return Err(error(format!(
                    "{} is a second time of day; a schedule has one time, like \"mon,thu 10:00\"",
                    quoted(word)
                )));
            }
            _ => match word.split_once('-') {
                Some((from, to)) => day_range(day_word(from)?, day_word(to)?, word)?,
                None => day_bit(day_word(word)?),
            },
        };
    }
    if named_any {
        Ok(mask)
    } else {
        Err(error(format!("{} needs a day too, like \"daily 09:30\" or \"mon 09:30\"", quoted(whole))))
    }
}

fn day_word(word: &str) -> Result<Weekday, ScheduleError> {
    // Plurals read naturally: "mondays 9:30".
    parse_weekday(word)
        .or_else(|| word.to_lowercase().strip_suffix('s').and_then(parse_weekday))
        .ok_or_else(|| error(format!("{} is not a weekday; {WEEKDAY_HELP}", quoted(word))))
}

/// Monday-first range, as people say "mon-fri"; a range that wraps past Sunday is refused rather than guessed.
fn day_range(from: Weekday, to: Weekday, word: &str) -> Result<u64, ScheduleError> {
    if from.num_days_from_monday() > to.num_days_from_monday() {
        let mut listed = vec![weekday_name(from)];
        let mut day = from;
        while day != to {
            day = day.succ();
            listed.push(weekday_name(day));
        }
        return Err(error(format!(
            "{} wraps around the week; list the days instead, like {}",
            quoted(word),
            listed.join(",")
        )));
    }
    let mut mask = 0;
    let mut day = from;
    loop {
        mask |= day_bit(day);
        if day == to {
            return Ok(mask);
        }
        day = day.succ();
    }
}

fn day_bit(day: Weekday) -> u64 {
    1 << day.num_days_from_sunday()
}

/// Parses "9:30", "09:30", "9.30", "9am", "9:30pm", "noon", "midnight" into (hour, minute).
fn parse_time(token: &str) -> Result<(u32, u32), ScheduleError> {
    let bad = || error(format!("{} is not a time of day; {TIME_HELP}", quoted(token)));
    let lower = token.to_lowercase();
    match lower.as_str() {
        "noon" | "midday" => return Ok((12, 0)),
        "midnight" => return Ok((0, 0)),
        _ => {}
    }
    let (body, pm) = if let Some(body) = lower.strip_suffix("am").or_else(|| lower.strip_suffix("a.m.")) {
        (body, Some(false))
    } else if let Some(body) = lower.strip_suffix("pm").or_else(|| lower.strip_suffix("p.m.")) {
        (body, Some(true))
    } else {
        (lower.as_str(), None)
    };
    let digits = |text: &str| (1..=2).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    let (hour_text, minute_text) = match body.split_once([':', '.']) {
        Some((hour, minute)) => (hour, Some(minute)),
        None => (body, None),
    };
    if !digits(hour_text) {
        return Err(bad());
    }
    let hour: u32 = hour_text.parse().map_err(|_| bad())?;
    let minute: u32 = match minute_text {
        Some(text) if text.len() == 2 && digits(text) => text.parse().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
        None if pm.is_some() => 0,
        // A bare "9" could mean 09:00 or 21:00, or be a typo; ask rather than guess.
        None => {
            return Err(error(format!(
                "{} is not a time of day; add the minutes, like {hour:02}:00, or write {hour}am / {hour}pm",
                quoted(token)
            )));
        }
    };
    if minute > 59 {
        return Err(bad());
    }
    match pm {
        Some(pm) => {
            if !(1..=12).contains(&hour) {
                return Err(error(format!(
                    "{} is not a time of day; with am/pm the hour goes from 1 to 12, or {TIME_HELP}",
                    quoted(token)
                )));
            }
            Ok((hour % 12 + if pm { 12 } else { 0 }, minute))
        }
        None if hour == 24 && minute == 0 => {
            Err(error(format!("{} is not a time of day; midnight is 00:00 ({TIME_HELP})", quoted(token))))
        }
        None if hour > 23 => Err(bad()),
        None => Ok((hour, minute)),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Cron fields
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Minute => "minute",
            Part::Hour => "hour",
            Part::DayOfMonth => "day-of-month",
            Part::Month => "month",
            Part::DayOfWeek => "day-of-week",
        }
    }

    /// The values `*` stands for (day-of-week as 0 = Sunday … 6 = Saturday).
    fn bounds(self) -> (u32, u32) {
        match self {
            Part::Minute => (0, 59),
            Part::Hour => (0, 23),
            Part::DayOfMonth => (1, 31),
            Part::Month => (1, 12),
            Part::DayOfWeek => (0, 6),
        }
    }

    /// Largest value one may write: standard cron also takes 7 for Sunday.
    fn max_written(self) -> u32 {
        if self == Part::DayOfWeek { 7 } else { self.bounds().1 }
    }

    fn accepted(self) -> &'static str {
        match self {
            Part::Minute => "0–59",
            Part::Hour => "0–23",
            Part::DayOfMonth => "1–31",
            Part::Month => "1–12 or jan … dec",
            Part::DayOfWeek => "0–7 (0 and 7 are Sunday) or sun, mon, … sat",
        }
    }

    fn value_from_name(self, word: &str) -> Option<u32> {
        let word = word.to_lowercase();
        let word = word.as_str();
        match self {
            Part::Month => {
                const MONTHS: [&str; 12] =
                    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
                let short = word.get(..3)?;
                let index = MONTHS.iter().position(|month| *month == short)?;
                let full = chrono::Month::try_from(u8::try_from(index + 1).ok()?).ok()?.name().to_lowercase();
                (word.len() == 3 || word == full || (word == "sept" && index == 8)).then_some(index as u32 + 1)
            }
            Part::DayOfWeek => parse_weekday(word).map(|day| day.num_days_from_sunday()),
            _ => None,
        }
    }
}

/// One parsed cron field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    /// Bit n set when value n matches (day-of-week 7 is folded into 0).
    mask: u64,
    /// Some(step) when the field is "*" or "*/step". Standard cron only ORs the two day fields when
    /// neither starts with "*", so this is kept rather than inferred from the mask.
    star_step: Option<u32>,
}

impl Field {
    fn is_full(self, part: Part) -> bool {
        let (low, high) = part.bounds();
        (low..=high).all(|value| self.mask & (1 << value) != 0)
    }

    fn values(self, part: Part) -> impl Iterator<Item = u32> {
        let (low, high) = part.bounds();
        (low..=high).filter(move |value| self.mask & (1 << value) != 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    minute: Field,
    hour: Field,
    day_of_month: Field,
    month: Field,
    day_of_week: Field,
}

impl Fields {
    /// Canonical text: names become numbers and sets are written one way, so equal schedules compare equal.
    fn render(&self) -> String {
        let plain = |field: Field, part: Part| {
            let (low, high) = part.bounds();
            render_mask(field.mask, low, high, true)
        };
        let day = |field: Field, part: Part| match field.star_step {
            Some(_) if field.is_full(part) => "*".to_owned(),
            Some(step) => format!("*/{step}"),
            None => {
                let (low, high) = part.bounds();
                render_mask(field.mask, low, high, false)
            }
        };
        format!(
            "{} {} {} {} {}",
            plain(self.minute, Part::Minute),
            plain(self.hour, Part::Hour),
            day(self.day_of_month, Part::DayOfMonth),
            plain(self.month, Part::Month),
            day(self.day_of_week, Part::DayOfWeek)
        )
    }

    /// Refuses dates that never exist ("30 2"), which would otherwise silently never post.
    fn check_possible(&self) -> Result<(), ScheduleError> {
        const LONGEST_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let day_of_week_is_free = self.day_of_week.star_step.is_some() && self.day_of_week.is_full(Part::DayOfWeek);
        if !day_of_week_is_free {
            return Ok(());
        }
        let possible = self.month.values(Part::Month).any(|month| {
            self.day_of_month.values(Part::DayOfMonth).any(|day| day <= LONGEST_MONTH[month as usize - 1])
        });
        if possible {
            return Ok(());
        }
        let render = |field: Field, part: Part| {
            let (low, high) = part.bounds();
            render_mask(field.mask, low, high, false)
        };
        Err(error(format!(
            "day-of-month {} never falls in month {}, so this schedule would never fire",
            render(self.day_of_month, Part::DayOfMonth),
            render(self.month, Part::Month)
        )))
    }

    /// The cron crate wants a seconds field first and numbers Sunday as 1, so every field is handed over as
    /// explicit values and days of the week as names, which cannot be misread.
    fn crate_schedules(&self) -> Result<Vec<cron::Schedule>, ScheduleError> {
        let list = |field: Field, part: Part| {
            if field.is_full(part) {
                "*".to_owned()
            } else {
                field.values(part).map(|value| value.to_string()).collect::<Vec<_>>().join(",")
            }
        };
        let minute = list(self.minute, Part::Minute);
        let hour = list(self.hour, Part::Hour);
        let day_of_month = list(self.day_of_month, Part::DayOfMonth);
        let month = list(self.month, Part::Month);
        let day_of_week = if self.day_of_week.is_full(Part::DayOfWeek) {
            "*".to_owned()
        } else {
            const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
            self.day_of_week.values(Part::DayOfWeek).map(|day| NAMES[day as usize]).collect::<Vec<_>>().join(",")
        };
        let day_shapes = if self.day_of_month.star_step.is_none() && self.day_of_week.star_step.is_none() {
            vec![(day_of_month.as_str(), "*"), ("*", day_of_week.as_str())]
        } else {
            vec![(day_of_month.as_str(), day_of_week.as_str())]
        };
        day_shapes
            .into_iter()
            .map(|(days_of_month, days_of_week)| {
                let text = format!("0 {minute} {hour} {days_of_month} {month} {days_of_week}");
                cron::Schedule::from_str(&text)
                    .map_err(|problem| error(format!("could not build a schedule from {}: {problem}", quoted(&text))))
            })
            .collect()
    }
}

fn parse_field(text: &str, part: Part) -> Result<Field, ScheduleError> {
    let star_step = match text.split_once('/') {
        None if text == "*" || text == "?" => Some(1),
        Some(("*" | "?", step)) if !text.contains(',') => Some(parse_step(step, text, part)?),
        _ => None,
    };
    let mut mask = 0;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(error(format!("the {} field {} has an empty list entry", part.name(), quoted(text))));
        }
        mask |= parse_item(item, part)?;
    }
    Ok(Field { mask, star_step })
}

fn not_understood(item: &str, part: Part) -> ScheduleError {
    error(format!(
        "{} in the {} field is not understood; use a single value, a range like 1-5, a list like 1,3 \
         or a step like */2, with values {}",
        quoted(item),
        part.name(),
        part.accepted()
    ))
}

fn parse_step(text: &str, item: &str, part: Part) -> Result<u32, ScheduleError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_understood(item, part));
    }
    match text.parse::<u32>() {
        Ok(0) => Err(error(format!(
            "{} in the {} field has a step of 0; steps start at 1, like */15",
            quoted(item),
            part.name()
        ))),
        Ok(step) => Ok(step),
        Err(_) => Err(error(format!(
            "{} in the {} field has a step that is far too large; use a step like */15",
            quoted(item),
            part.name()
        ))),
    }
}

fn parse_item(item: &str, part: Part) -> Result<u64, ScheduleError> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(parse_step(step, item, part)?)),
        None => (item, None),
    };
    let is_day = matches!(part, Part::DayOfMonth | Part::DayOfWeek);
    let (start, end) = if base == "*" || (base == "?" && is_day) {
        part.bounds()
    } else if let Some((from, to)) = base.split_once('-') {
        let (from, to) = (parse_value(from, item, part)?, parse_value(to, item, part)?);
        if from > to {
            return Err(backwards_range(item, part, from, to));
        }
        (from, to)
    } else {
        let value = parse_value(base, item, part)?;
        if let Some(step) = step {
            // Implementations disagree on what "5/15" means; make the user say it.
            let end = part.bounds().1.max(value);
            return Err(error(format!(
                "{} in the {} field is ambiguous; write a range with the step, like {value}-{end}/{step}",
                quoted(item),
                part.name()
            )));
        }
        (value, value)
    };
    let step = usize::try_from(step.unwrap_or(1)).unwrap_or(usize::MAX);
    Ok((start..=end).step_by(step).fold(0, |mask, value| {
        // Standard cron's 7 is Sunday, the same day as 0.
        let bit = if part == Part::DayOfWeek { value % 7 } else { value };
        mask | 1 << bit
    }))
}

fn parse_value(word: &str, item: &str, part: Part) -> Result<u32, ScheduleError> {
    if word.is_empty() {
        return Err(not_understood(item, part));
    }
    let (low, _) = part.bounds();
    let out_of_range = || error(format!("{} is not a valid {}; use {}", quoted(word), part.name(), part.accepted()));
    if word.bytes().all(|b| b.is_ascii_digit()) {
        return match word.parse::<u32>() {
            Ok(value) if (low..=part.max_written()).contains(&value) => Ok(value),
            _ => Err(out_of_range()),
        };
    }
    part.value_from_name(word).ok_or_else(out_of_range)
}

fn backwards_range(item: &str, part: Part, from: u32, to: u32) -> ScheduleError {
    let (low, high) = part.bounds();
    if part == Part::DayOfWeek {
        let mut days = vec![from % 7];
        while days.last() != Some(&(to % 7)) && days.len() < 7 {
            days.push((days[days.len() - 1] + 1) % 7);
        }
        let listed: Vec<String> = days.iter().map(u32::to_string).collect();
        return error(format!(
            "{} in the day-of-week field wraps around the week; ranges cannot wrap, so list the days instead, \
             like {}",
            quoted(item),
            listed.join(",")
        ));
    }
    error(format!(
        "{} in the {} field runs backwards; ranges cannot wrap, so split it, like {from}-{high},{low}-{to}",
        quoted(item),
        part.name()
    ))
}

/// Writes a set of values compactly: "*", "*/15", "5-55/10", or runs like "1-5,7".
/// `allow_star` is false for the day fields, where "*" changes how standard cron combines them.
fn render_mask(mask: u64, low: u32, high: u32, allow_star: bool) -> String {
    let values: Vec<u32> = (low..=high).filter(|value| mask & (1 << value) != 0).collect();
    let count = values.len();
    if allow_star && count == (high - low + 1) as usize {
        return "*".to_owned();
    }
    if count >= 3 {
        let step = values[1] - values[0];
        if step >= 2 && values.windows(2).all(|pair| pair[1] - pair[0] == step) {
            let (first, last) = (values[0], values[count - 1]);
            return if allow_star && first == low && last + step > high {
                format!("*/{step}")
            } else {
                format!("{first}-{last}/{step}")
            };
        }
    }
    let mut parts = Vec::new();
    let mut index = 0;
    while index < count {
        let mut end = index;
        while end + 1 < count && values[end + 1] == values[end] + 1 {
            end += 1;
        }
        if end - index >= 2 {
            parts.push(format!("{}-{}", values[index], values[end]));
        } else {
            parts.extend(values[index..=end].iter().map(u32::to_string));
        }
        index = end + 1;
    }
    parts.join(",")
}

/// "Mondays", "Mondays and Thursdays", "Mondays, Wednesdays and Fridays" (Monday first, as people read a week).
fn plural_day_list(mask: u64) -> String {
    const MONDAY_FIRST: [(Weekday, &str); 7] = [
        (Weekday::Mon, "Mondays"),
        (Weekday::Tue, "Tuesdays"),
        (Weekday::Wed, "Wednesdays"),
        (Weekday::Thu, "Thursdays"),
        (Weekday::Fri, "Fridays"),
        (Weekday::Sat, "Saturdays"),
        (Weekday::Sun, "Sundays"),
    ];
    let names: Vec<&str> =
        MONDAY_FIRST.iter().filter(|(day, _)| mask & day_bit(*day) != 0).map(|(_, name)| *name).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_owned(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Time zones
// ---------------------------------------------------------------------------------------------------------

/// An IANA zone name like "Europe/Berlin" or "UTC" (case-insensitive match is welcome).
pub fn parse_time_zone(text: &str) -> Result<Tz, ScheduleError> {
    let wanted = text.trim();
    if wanted.is_empty() {
        return Err(error(format!("a time zone is needed; {ZONE_HELP}")));
    }
    if let Ok(tz) = wanted.parse::<Tz>() {
        return Ok(tz);
    }
    // People type spaces where IANA has underscores: "America/New York".
    let wanted_name = wanted.replace(' ', "_");
    if let Some(tz) = TZ_VARIANTS.iter().find(|tz| tz.name().eq_ignore_ascii_case(&wanted_name)) {
        return Ok(*tz);
    }
    let hint = suggest_zone(&wanted_name).map(|name| format!(" (did you mean {name}?)")).unwrap_or_default();
    Err(error(format!("{} is not a time zone; {ZONE_HELP}{hint}", quoted(wanted))))
}

/// A zone whose city matches ("Berlin" -> Europe/Berlin), else the closest name within a few typos.
fn suggest_zone(wanted: &str) -> Option<&'static str> {
    if wanted.chars().count() > 64 {
        return None;
    }
    let wanted = wanted.to_lowercase();
    let names = || TZ_VARIANTS.iter().map(|tz| tz.name());
    if let Some(name) =
        names().find(|name| name.rsplit('/').next().is_some_and(|city| city.eq_ignore_ascii_case(&wanted)))
    {
        return Some(name);
    }
    let allowed = (wanted.chars().count() / 5).clamp(1, 3);
    names()
        .map(|name| (edit_distance(&wanted, &name.to_lowercase()), name))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

// ---------------------------------------------------------------------------------------------------------
// Quiet days
// ---------------------------------------------------------------------------------------------------------

/// Days on which a channel gets no automated posts: quiet weekdays and holiday dates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuietDays {
    pub weekdays: Vec<Weekday>,
    pub holidays: Vec<NaiveDate>,
}

impl QuietDays {
    pub fn is_quiet(&self, day: NaiveDate) -> bool {
        self.weekdays.contains(&day.weekday()) || self.holidays.contains(&day)
    }

    /// Stored as text in one column each: weekdays "sat,sun" (Monday-first order), holidays "2026-12-24,2026-12-25".
    pub fn weekdays_to_stored(&self) -> String {
        // The fields are public, so sort here too rather than trust every writer.
        let mut days = self.weekdays.clone();
        days.sort_by_key(Weekday::num_days_from_monday);
        days.dedup();
        days.into_iter().map(weekday_name).collect::<Vec<_>>().join(",")
    }

    pub fn holidays_to_stored(&self) -> String {
        let mut dates = self.holidays.clone();
        dates.sort();
        dates.dedup();
        dates.iter().map(|date| date.format("%Y-%m-%d").to_string()).collect::<Vec<_>>().join(",")
    }

    /// Lenient on read: unknown parts are dropped (the column is only ever written by us).
    pub fn from_stored(weekdays: &str, holidays: &str) -> QuietDays {
        let mut days: Vec<Weekday> = weekdays.split(',').filter_map(parse_weekday).collect();
        days.sort_by_key(Weekday::num_days_from_monday);
        days.dedup();
        let mut dates: Vec<NaiveDate> =
            holidays.split(',').filter_map(|part| NaiveDate::parse_from_str(part.trim(), "%Y-%m-%d").ok()).collect();
        dates.sort();
        dates.dedup();
        QuietDays { weekdays: days, holidays: dates }
    }
}

/// Parses a weekday word: "mon", "monday", "Mon", "tue", "tues", "wed", "thu", "thur", "thurs", ... "sun". None otherwise.
pub fn parse_weekday(word: &str) -> Option<Weekday> {
    match word.trim().to_lowercase().as_str() {
        "mon" | "monday" => Some(Weekday::Mon),
        "tue" | "tues" | "tuesday" => Some(Weekday::Tue),
        "wed" | "weds" | "wednesday" => Some(Weekday::Wed),
        "thu" | "thur" | "thurs" | "thursday" => Some(Weekday::Thu),
        "fri" | "friday" => Some(Weekday::Fri),
        "sat" | "saturday" => Some(Weekday::Sat),
        "sun" | "sunday" => Some(Weekday::Sun),
        _ => None,
    }
}

/// Short lower-case name used in storage and replies: "mon".."sun".
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, Timelike};

    fn berlin() -> Tz {
        parse_time_zone("Europe/Berlin").unwrap()
    }

    fn new_york() -> Tz {
        parse_time_zone("America/New_York").unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn local(instant: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
        instant.with_timezone(&tz).naive_local()
    }

    fn parse_error(text: &str) -> String {
        match Schedule::parse(text) {
            Ok(schedule) => panic!("{text:?} should be refused but parsed as {:?}", schedule.expression()),
            Err(ScheduleError(message)) => message,
        }
    }

    /// Every firing in (from, until], found by asking next_after repeatedly like the bot does.
    fn walk(schedule: &Schedule, tz: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut firings = Vec::new();
        let mut cursor = from;
        while let Some(next) = schedule.next_after(cursor, tz) {
            assert!(next > cursor, "next_after({cursor}) went backwards to {next}");
            if next > until {
                break;
            }
            firings.push(next);
            cursor = next;
        }
        firings
    }

    fn wall_clock(instant: DateTime<Utc>, tz: Tz) -> String {
        local(instant, tz).format("%Y-%m-%d %a %H:%M").to_string()
    }

    #[test]
    fn monday_shorthand_becomes_standard_cron() {
        let schedule = Schedule::parse("mon 09:30").unwrap();
        assert_eq!(schedule.expression(), "30 9 * * 1");
        assert_eq!(schedule, Schedule::parse("30 9 * * 1").unwrap());
    }

    #[test]
    fn every_example_in_the_brief_parses() {
        let examples = [
            ("30 9 * * 1", "30 9 * * 1"),
            ("0 10 * * mon-fri", "0 10 * * 1-5"),
            ("*/15 9-17 * * 1-5", "*/15 9-17 * * 1-5"),
            ("mon 09:30", "30 9 * * 1"),
            ("monday 9:30", "30 9 * * 1"),
            ("mon,thu 10:00", "0 10 * * 1,4"),
            ("weekdays 09:00", "0 9 * * 1-5"),
            ("daily 08:15", "15 8 * * *"),
            ("every day 8:15", "15 8 * * *"),
            ("fri 16:00", "0 16 * * 5"),
            ("0 10 * * 0", "0 10 * * 0"),
            ("0 10 * * 7", "0 10 * * 0"),
            ("30 2 * * *", "30 2 * * *"),
            ("mon 9:30", "30 9 * * 1"),
            ("mon 9.30", "30 9 * * 1"),
            ("mon 9am", "0 9 * * 1"),
            ("mon 9:30am", "30 9 * * 1"),
            ("mon 5pm", "0 17 * * 1"),
            ("@weekly", "0 0 * * 0"),
        ];
        for (text, expected) in examples {
            let schedule = Schedule::parse(text).unwrap_or_else(|problem| panic!("{text:?}: {problem}"));
            assert_eq!(schedule.expression(), expected, "for {text:?}");
        }
    }

    #[test]
    fn shorthands_ignore_case_spacing_and_filler_words() {
        for text in
            ["  MON 09:30  ", "Monday 9:30", "every monday at 9:30", "Mondays 9:30am", "09:30 mon", "mon 9:30 am"]
        {
            assert_eq!(Schedule::parse(text).unwrap().expression(), "30 9 * * 1", "for {text:?}");
        }
        assert_eq!(Schedule::parse("Mon, Thu 10:00").unwrap().expression(), "0 10 * * 1,4");
        assert_eq!(Schedule::parse("mon and thu at 10:00").unwrap().expression(), "0 10 * * 1,4");
        assert_eq!(Schedule::parse("mon-fri 9:00").unwrap().expression(), "0 9 * * 1-5");
        assert_eq!(Schedule::parse("weekends noon").unwrap().expression(), "0 12 * * 0,6");
        assert_eq!(Schedule::parse("sun,sat,mon,tue,wed,thu,fri 7:05").unwrap().expression(), "5 7 * * *");
    }

    #[test]
    fn twelve_am_is_midnight_and_twelve_pm_is_noon() {
        assert_eq!(Schedule::parse("daily 12am").unwrap().expression(), "0 0 * * *");
        assert_eq!(Schedule::parse("daily 12:30pm").unwrap().expression(), "30 12 * * *");
        assert_eq!(Schedule::parse("daily midnight").unwrap().expression(), "0 0 * * *");
    }

    #[test]
    fn expression_parses_back_to_an_equal_schedule() {
        let inputs = [
            "mon 09:30",
            "mon,wed,fri 18:45",
            "weekends 10:00",
            "*/15 9-17 * * 1-5",
            "5-59/10 */2 1,15 jan-jun *",
            "0 9 1-31/2 * 1",
            "0 9 */2 * *",
            "0 9 * * */2",
            "0 9 * * */4",
            "0 9 ? * ?",
            "0 9 1-31 * 0-7",
            "0,30 8,12,16 * * 5-7",
            "0 0 29 2 *",
            "@yearly",
            "@hourly",
        ];
        for text in inputs {
            let first = Schedule::parse(text).unwrap_or_else(|problem| panic!("{text:?}: {problem}"));
            let again = Schedule::parse(first.expression()).unwrap();
            assert_eq!(first, again, "{text:?} normalized to {:?}", first.expression());
            assert_eq!(first.expression(), again.expression());
        }
    }

    #[test]
    fn names_and_numbers_normalize_to_the_same_expression() {
        assert_eq!(Schedule::parse("0 10 * * MON-FRI").unwrap(), Schedule::parse("0 10 * * 1-5").unwrap());
        assert_eq!(Schedule::parse("0 10 * * sun").unwrap(), Schedule::parse("0 10 * * 7").unwrap());
        assert_eq!(Schedule::parse("0 10 1 Jan,July *").unwrap().expression(), "0 10 1 1,7 *");
        assert_eq!(Schedule::parse("0,15,30,45 * * * *").unwrap().expression(), "*/15 * * * *");
    }

    #[test]
    fn default_schedule_is_described_as_mondays_at_0930() {
        assert_eq!(Schedule::parse("30 9 * * 1").unwrap().describe(), "Mondays at 09:30");
    }

    #[test]
    fn simple_schedules_are_described_in_words() {
        let cases = [
            ("weekdays 09:00", "weekdays at 09:00"),
            ("daily 08:15", "every day at 08:15"),
            ("every day 8:15", "every day at 08:15"),
            ("mon,thu 10:00", "Mondays and Thursdays at 10:00"),
            ("fri,mon,wed 7pm", "Mondays, Wednesdays and Fridays at 19:00"),
            ("sat,sun 10:00", "weekends at 10:00"),
            ("sun 0:05", "Sundays at 00:05"),
            ("@weekly", "Sundays at 00:00"),
        ];
        for (text, expected) in cases {
            assert_eq!(Schedule::parse(text).unwrap().describe(), expected, "for {text:?}");
        }
    }

    #[test]
    fn anything_but_one_weekly_or_daily_time_is_described_as_cron() {
        for text in ["*/15 9-17 * * 1-5", "0 9 1 * *", "0 9 * 6 1", "0 9,17 * * 1", "0 9 1 * 1"] {
            let schedule = Schedule::parse(text).unwrap();
            assert_eq!(schedule.describe(), format!("cron `{}`", schedule.expression()));
        }
    }

    #[test]
    fn monday_cron_fires_on_a_monday() {
        let wednesday = utc("2026-06-03T12:00:00Z");
        let next = Schedule::parse("30 9 * * 1").unwrap().next_after(wednesday, Tz::UTC).unwrap();
        assert_eq!(next, utc("2026-06-08T09:30:00Z"));
        assert_eq!(next.weekday(), Weekday::Mon);
    }

    #[test]
    fn sunday_is_both_zero_and_seven() {
        let wednesday = utc("2026-06-03T12:00:00Z");
        for text in ["0 10 * * 0", "0 10 * * 7", "0 10 * * sun"] {
            let next = Schedule::parse(text).unwrap().next_after(wednesday, Tz::UTC).unwrap();
            assert_eq!(next, utc("2026-06-07T10:00:00Z"), "for {text:?}");
            assert_eq!(next.weekday(), Weekday::Sun);
        }
    }

    #[test]
    fn day_of_week_lists_ranges_and_steps_follow_standard_cron() {
        use Weekday::*;
        let monday = utc("2026-06-01T00:00:00Z");
        let cases: [(&str, &[Weekday]); 7] = [
            ("0 10 * * 1-5", &[Mon, Tue, Wed, Thu, Fri]),
            ("0 10 * * mon-fri", &[Mon, Tue, Wed, Thu, Fri]),
            ("0 10 * * 5-7", &[Fri, Sat, Sun]),
            ("0 10 * * 1,4", &[Mon, Thu]),
            ("0 10 * * */2", &[Tue, Thu, Sat, Sun]),
            ("0 10 * * 1-5/2", &[Mon, Wed, Fri]),
            ("0 10 * * 0-7", &[Mon, Tue, Wed, Thu, Fri, Sat, Sun]),
        ];
        for (text, expected) in cases {
            let week = walk(&Schedule::parse(text).unwrap(), Tz::UTC, monday, monday + Duration::days(7));
            let days: Vec<Weekday> = week.iter().map(|firing| firing.weekday()).collect();
            assert_eq!(days, expected, "for {text:?}");
        }
    }

    #[test]
    fn restricting_both_day_fields_fires_on_either_like_standard_cron() {
        let schedule = Schedule::parse("0 9 1 * 1").unwrap();
        let firings = walk(&schedule, Tz::UTC, utc("2026-05-31T00:00:00Z"), utc("2026-07-07T00:00:00Z"));
        let days: Vec<String> = firings.iter().map(|firing| firing.format("%m-%d").to_string()).collect();
        assert_eq!(days, ["06-01", "06-08", "06-15", "06-22", "06-29", "07-01", "07-06"]);
        // With a star in the day-of-month field only the weekday counts.
        let every_other_day_on_mondays = Schedule::parse("0 9 */2 * 1").unwrap();
        let firings =
            walk(&every_other_day_on_mondays, Tz::UTC, utc("2026-05-31T00:00:00Z"), utc("2026-07-07T00:00:00Z"));
        let days: Vec<String> = firings.iter().map(|firing| firing.format("%m-%d").to_string()).collect();
        assert_eq!(days, ["06-01", "06-15", "06-29"]);
    }

    #[test]
    fn wrapping_day_ranges_are_refused_with_a_list_to_use_instead() {
        assert_eq!(
            parse_error("0 9 * * 5-1"),
            "\"5-1\" in the day-of-week field wraps around the week; ranges cannot wrap, so list the days \
             instead, like 5,6,0,1"
        );
        assert_eq!(
            parse_error("fri-mon 9:00"),
            "\"fri-mon\" wraps around the week; list the days instead, like fri,sat,sun,mon"
        );
        assert_eq!(
            parse_error("0 17-9 * * *"),
            "\"17-9\" in the hour field runs backwards; ranges cannot wrap, so split it, like 17-23,0-9"
        );
    }

    #[test]
    fn wrong_field_count_says_how_many_fields_were_given() {
        assert_eq!(
            parse_error("30 9 * *"),
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week); \"30 9 * *\" has 4"
        );
        assert_eq!(
            parse_error("0 30 9 * * 1"),
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week); \"0 30 9 * * 1\" has 6 \
             (seconds and years are not supported)"
        );
    }

    #[test]
    fn out_of_range_values_name_the_field_and_its_limits() {
        assert_eq!(parse_error("61 9 * * 1"), "\"61\" is not a valid minute; use 0–59");
        assert_eq!(parse_error("0 24 * * 1"), "\"24\" is not a valid hour; use 0–23");
        assert_eq!(parse_error("0 9 0 * *"), "\"0\" is not a valid day-of-month; use 1–31");
        assert_eq!(parse_error("0 9 * 13 *"), "\"13\" is not a valid month; use 1–12 or jan … dec");
        assert_eq!(
            parse_error("30 9 * * 8"),
            "\"8\" is not a valid day-of-week; use 0–7 (0 and 7 are Sunday) or sun, mon, … sat"
        );
        assert_eq!(
            parse_error("*/0 9 * * 1"),
            "\"*/0\" in the minute field has a step of 0; steps start at 1, like */15"
        );
        assert_eq!(
            parse_error("5/15 9 * * 1"),
            "\"5/15\" in the minute field is ambiguous; write a range with the step, like 5-59/15"
        );
        assert_eq!(parse_error("1,,2 9 * * 1"), "the minute field \"1,,2\" has an empty list entry");
        assert!(parse_error("0 9 L * *").starts_with("\"L\" is not a valid day-of-month"));
    }

    #[test]
    fn bad_times_explain_the_24_hour_format() {
        assert_eq!(parse_error("mon 25:00"), "\"25:00\" is not a time of day; use 24-hour HH:MM like 09:30");
        assert_eq!(parse_error("mon 9:60"), "\"9:60\" is not a time of day; use 24-hour HH:MM like 09:30");
        assert_eq!(parse_error("mon -1:00"), "\"-1:00\" is not a time of day; use 24-hour HH:MM like 09:30");
        assert_eq!(parse_error("mon 9:5"), "\"9:5\" is not a time of day; use 24-hour HH:MM like 09:30");
        assert_eq!(
            parse_error("mon 24:00"),
            "\"24:00\" is not a time of day; midnight is 00:00 (use 24-hour HH:MM like 09:30)"
        );
        assert_eq!(
            parse_error("mon 13pm"),
            "\"13pm\" is not a time of day; with am/pm the hour goes from 1 to 12, or use 24-hour HH:MM like 09:30"
        );
        assert_eq!(parse_error("mon 9"), "\"9\" is not a time of day; add the minutes, like 09:00, or write 9am / 9pm");
    }

    #[test]
    fn misspelled_weekday_is_named_in_the_error() {
        assert_eq!(
            parse_error("mnday 09:30"),
            "\"mnday\" is not a weekday; use mon, tue, … sun (or daily, weekdays, weekends)"
        );
        assert_eq!(
            parse_error("月 09:30"),
            "\"月\" is not a weekday; use mon, tue, … sun (or daily, weekdays, weekends)"
        );
    }

    #[test]
    fn a_missing_day_or_time_is_pointed_out() {
        assert_eq!(
            parse_error("mon"),
            "\"mon\" needs a time of day too, like \"mon 09:30\"; use 24-hour HH:MM like 09:30"
        );
        assert_eq!(parse_error("09:30"), "\"09:30\" needs a day too, like \"daily 09:30\" or \"mon 09:30\"");
        assert_eq!(
            parse_error("mon 09:30 thu 10:00"),
            "\"09:30\" is a second time of day; a schedule has one time, like \"mon,thu 10:00\""
        );
        assert!(parse_error("hello there").starts_with("\"hello there\" is not a schedule; use a day and time"));
        assert!(parse_error("").starts_with("a schedule is needed"));
        assert!(parse_error("   ").starts_with("a schedule is needed"));
    }

    #[test]
    fn dates_that_never_happen_are_refused() {
        assert_eq!(
            parse_error("0 9 30 2 *"),
            "day-of-month 30 never falls in month 2, so this schedule would never fire"
        );
        assert_eq!(
            parse_error("0 9 31 apr,jun *"),
            "day-of-month 31 never falls in month 4,6, so this schedule would never fire"
        );
        // February 29 exists, just not every year.
        let leap = Schedule::parse("0 9 29 2 *").unwrap();
        assert_eq!(leap.next_after(utc("2026-01-01T00:00:00Z"), Tz::UTC), Some(utc("2028-02-29T09:00:00Z")));
    }

    #[test]
    fn at_shorthands_become_five_fields_and_unknown_ones_are_explained() {
        assert_eq!(Schedule::parse("@daily").unwrap().expression(), "0 0 * * *");
        assert_eq!(Schedule::parse("@MONTHLY").unwrap().expression(), "0 0 1 * *");
        assert!(parse_error("@reboot").starts_with("\"@reboot\" is not supported; use @hourly, @daily"));
    }

    #[test]
    fn long_input_is_cut_short_in_errors() {
        let long = "x".repeat(10_000);
        let message = parse_error(&long);
        assert!(message.starts_with(&format!("\"{}…\" is not a schedule", "x".repeat(39))), "{message}");
        assert!(message.chars().count() < 250);
        let long_zone = parse_time_zone(&"Europe/".repeat(500)).unwrap_err().0;
        assert!(long_zone.chars().count() < 200, "{long_zone}");
    }

    #[test]
    fn hostile_inputs_never_panic_and_always_explain() {
        let long_digits = "9".repeat(5000);
        let inputs = [
            "",
            " \t\n ",
            "月 09:30",
            "mon 9:60",
            "mon 24:00",
            "mon -1:00",
            "30 9 * * 8",
            "61 9 * * 1",
            "0 30 9 * * 1",
            "@weekly",
            "@",
            "* * * * *",
            "*/99999999999 * * * *",
            "99999999999999999999 * * * *",
            "0 9 * * 7-0",
            "0 9 * * -",
            "0 9 * * /",
            "0 9 * * */",
            "0 9 ? ? ?",
            "0 9 * * mon-",
            "0 9 * * #",
            "- - - - -",
            "mon 99999999999:00",
            "mon 9:30:00",
            "ｍｏｎ 09:30",
            "mon\u{301} 9:30",
            "\u{0}",
            "🦀 🦀",
            "mon,,,thu 9:00",
            ", 9:00",
            "am",
            "pm pm",
            "9 am am",
            "every",
            "at 9:00",
            &long_digits,
        ];
        for text in inputs {
            match Schedule::parse(text) {
                Ok(schedule) => {
                    assert_eq!(Schedule::parse(schedule.expression()).unwrap(), schedule);
                    let _ = schedule.describe();
                    let _ = schedule.next_after(utc("2026-01-01T00:00:00Z"), berlin());
                }
                Err(ScheduleError(message)) => {
                    assert!(!message.is_empty());
                    assert!(message.chars().count() < 300, "{text:?} gave {message}");
                }
            }
        }
    }

    #[test]
    fn random_garbage_never_panics_and_accepted_text_round_trips() {
        const ALPHABET: &[char] =
            &['0', '1', '2', '5', '7', '9', '*', '/', '-', ',', '?', ' ', ' ', ':', '.', 'a', 'm', 'o', 'n', 'p', '@'];
        let mut seed: u64 = 0x5eed;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..20_000 {
            let length = next() % 14;
            let text: String = (0..length).map(|_| ALPHABET[next() % ALPHABET.len()]).collect();
            if let Ok(schedule) = Schedule::parse(&text) {
                let again = Schedule::parse(schedule.expression())
                    .unwrap_or_else(|problem| panic!("{text:?} -> {:?}: {problem}", schedule.expression()));
                assert_eq!(again, schedule, "{text:?}");
                let _ = schedule.describe();
            }
        }
    }

    #[test]
    fn next_after_is_strictly_after_even_exactly_at_a_firing() {
        let schedule = Schedule::parse("30 9 * * 1").unwrap();
        let firing = utc("2026-06-08T09:30:00Z");
        assert_eq!(schedule.next_after(firing, Tz::UTC), Some(utc("2026-06-15T09:30:00Z")));
        let just_before = firing - Duration::milliseconds(1);
        assert_eq!(schedule.next_after(just_before, Tz::UTC), Some(firing));
    }

    #[test]
    fn next_after_uses_the_local_wall_clock_of_the_zone() {
        let schedule = Schedule::parse("mon 09:30").unwrap();
        let after = utc("2026-06-03T00:00:00Z");
        // Summer: Berlin is UTC+2, New York UTC-4.
        assert_eq!(schedule.next_after(after, berlin()), Some(utc("2026-06-08T07:30:00Z")));
        assert_eq!(schedule.next_after(after, new_york()), Some(utc("2026-06-08T13:30:00Z")));
        // Monday 09:30 in Tokyo is still Sunday in UTC.
        let tokyo = parse_time_zone("Asia/Tokyo").unwrap();
        assert_eq!(schedule.next_after(after, tokyo), Some(utc("2026-06-08T00:30:00Z")));
    }

    /// Walks a daily schedule over `days` local dates and checks one firing per date at the expected wall time.
    fn assert_daily(text: &str, tz: Tz, from: &str, expected: &[&str]) {
        let schedule = Schedule::parse(text).unwrap();
        let start = utc(from);
        let firings = walk(&schedule, tz, start, start + Duration::days(expected.len() as i64) - Duration::minutes(1));
        let seen: Vec<String> = firings.iter().map(|firing| wall_clock(*firing, tz)).collect();
        assert_eq!(seen, expected, "{text:?} in {tz}");
    }

    #[test]
    fn berlin_daily_0230_fires_once_a_day_across_both_transitions() {
        // 2026-03-29 02:00 -> 03:00: 02:30 does not exist, so it fires at 03:30 that day.
        assert_daily(
            "30 2 * * *",
            berlin(),
            "2026-03-26T23:00:00Z",
            &["2026-03-27 Fri 02:30", "2026-03-28 Sat 02:30", "2026-03-29 Sun 03:30", "2026-03-30 Mon 02:30"],
        );
        // 2026-10-25 03:00 -> 02:00: 02:30 happens twice and fires only the first time (CEST).
        assert_daily(
            "30 2 * * *",
            berlin(),
            "2026-10-22T22:00:00Z",
            &["2026-10-23 Fri 02:30", "2026-10-24 Sat 02:30", "2026-10-25 Sun 02:30", "2026-10-26 Mon 02:30"],
        );
        let fall_back = Schedule::parse("30 2 * * *").unwrap().next_after(utc("2026-10-24T12:00:00Z"), berlin());
        assert_eq!(fall_back, Some(utc("2026-10-25T00:30:00Z")));
    }

    #[test]
    fn new_york_daily_times_fire_once_a_day_across_both_transitions() {
        // 2026-03-08 02:00 -> 03:00.
        assert_daily(
            "30 2 * * *",
            new_york(),
            "2026-03-06T05:00:00Z",
            &["2026-03-06 Fri 02:30", "2026-03-07 Sat 02:30", "2026-03-08 Sun 03:30", "2026-03-09 Mon 02:30"],
        );
        // 2026-11-01 02:00 -> 01:00: 02:30 is unique, 01:30 repeats.
        assert_daily(
            "30 2 * * *",
            new_york(),
            "2026-10-30T04:00:00Z",
            &["2026-10-30 Fri 02:30", "2026-10-31 Sat 02:30", "2026-11-01 Sun 02:30", "2026-11-02 Mon 02:30"],
        );
        assert_daily(
            "30 1 * * *",
            new_york(),
            "2026-10-30T04:00:00Z",
            &["2026-10-30 Fri 01:30", "2026-10-31 Sat 01:30", "2026-11-01 Sun 01:30", "2026-11-02 Mon 01:30"],
        );
        let first_pass = Schedule::parse("30 1 * * *").unwrap().next_after(utc("2026-10-31T12:00:00Z"), new_york());
        assert_eq!(first_pass, Some(utc("2026-11-01T05:30:00Z")), "01:30 EDT, not 01:30 EST");
    }

    #[test]
    fn weekly_monday_0930_keeps_its_wall_clock_all_year() {
        for tz in [berlin(), new_york()] {
            let schedule = Schedule::parse("30 9 * * 1").unwrap();
            let firings = walk(&schedule, tz, utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"));
            assert_eq!(firings.len(), 52, "2026 has 52 Mondays");
            for firing in &firings {
                let wall = local(*firing, tz);
                assert_eq!((wall.weekday(), wall.time()), (Weekday::Mon, NaiveTime::from_hms_opt(9, 30, 0).unwrap()));
            }
            for pair in firings.windows(2) {
                assert_eq!(local(pair[1], tz).date() - local(pair[0], tz).date(), Duration::days(7), "in {tz}");
            }
        }
    }

    #[test]
    fn half_hourly_schedule_never_repeats_or_doubles_an_instant_across_dst() {
        let schedule = Schedule::parse("*/30 * * * *").unwrap();
        let tz = berlin();
        let per_day = |day: &str| {
            let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
            let start = utc(&format!("{}T00:00:00Z", date - Duration::days(1)));
            let firings = walk(&schedule, tz, start, start + Duration::days(3));
            firings.iter().filter(|firing| local(**firing, tz).date() == date).count()
        };
        // Spring: 02:00 and 02:30 are shifted onto 03:00 and 03:30, which fire once each.
        assert_eq!(per_day("2026-03-29"), 46);
        // Autumn: the repeated 02:00 and 02:30 fire only on the first pass.
        assert_eq!(per_day("2026-10-25"), 48);
        assert_eq!(per_day("2026-06-01"), 48);
    }

    #[test]
    fn next_after_from_any_moment_agrees_with_walking_the_schedule() {
        // A bot that restarts mid-transition must pick the same next post as one that kept running.
        let lord_howe = parse_time_zone("Australia/Lord_Howe").unwrap();
        let cases = [
            (berlin(), "2026-03-28T00:00:00Z", ["30 2 * * *", "*/30 * * * *", "15 2,3 * * *"]),
            (berlin(), "2026-10-24T00:00:00Z", ["30 2 * * *", "*/30 * * * *", "15 2,3 * * *"]),
            (new_york(), "2026-03-07T00:00:00Z", ["30 2 * * *", "*/30 * * * *", "30 1 * * *"]),
            (new_york(), "2026-10-31T00:00:00Z", ["30 2 * * *", "*/30 * * * *", "30 1 * * *"]),
            // 30-minute DST: 02:00 -> 02:30 on 2026-10-04, 02:00 -> 01:30 on 2026-04-05.
            (lord_howe, "2026-10-02T12:00:00Z", ["20,35 2 * * *", "*/10 2 * * *", "45 1 * * *"]),
            (lord_howe, "2026-04-03T12:00:00Z", ["20,35 1 * * *", "*/10 1 * * *", "45 1 * * *"]),
        ];
        for (tz, from, texts) in cases {
            let start = utc(from);
            for text in texts {
                let schedule = Schedule::parse(text).unwrap();
                let firings = walk(&schedule, tz, start, start + Duration::days(4));
                let mut moment = start;
                while moment < start + Duration::days(3) {
                    let expected = firings.iter().find(|firing| **firing > moment).copied();
                    assert_eq!(schedule.next_after(moment, tz), expected, "{text:?} in {tz} after {moment}");
                    moment += Duration::minutes(7);
                }
            }
        }
    }

    #[test]
    fn lord_howe_half_hour_gap_keeps_both_firings_in_time_order() {
        let tz = parse_time_zone("Australia/Lord_Howe").unwrap();
        let schedule = Schedule::parse("20,35 2 * * *").unwrap();
        let start = utc("2026-10-03T12:00:00Z");
        let firings = walk(&schedule, tz, start, start + Duration::days(1));
        let seen: Vec<String> = firings.iter().map(|firing| wall_clock(*firing, tz)).collect();
        // 02:20 is skipped by the clock change and shifted to 02:50, after the real 02:35.
        assert_eq!(seen, ["2026-10-04 Sun 02:35", "2026-10-04 Sun 02:50"]);
    }

    #[test]
    fn schedules_stop_after_2100_instead_of_hanging() {
        let schedule = Schedule::parse("30 9 * * 1").unwrap();
        assert_eq!(schedule.next_after(utc("2101-01-01T00:00:00Z"), berlin()), None);
        assert_eq!(schedule.next_after(DateTime::<Utc>::MAX_UTC, berlin()), None);
        let first = schedule.next_after(DateTime::<Utc>::MIN_UTC, berlin()).unwrap();
        assert_eq!(first.with_timezone(&berlin()).year(), 1970);
        assert_eq!(local(first, berlin()).hour(), 9);
    }

    #[test]
    fn time_zones_are_matched_case_insensitively_and_with_spaces() {
        assert_eq!(parse_time_zone("Europe/Berlin"), Ok(Tz::Europe__Berlin));
        assert_eq!(parse_time_zone("  europe/berlin "), Ok(Tz::Europe__Berlin));
        assert_eq!(parse_time_zone("america/new york"), Ok(Tz::America__New_York));
        assert_eq!(parse_time_zone("UTC"), Ok(Tz::UTC));
        assert_eq!(parse_time_zone("utc"), Ok(Tz::UTC));
    }

    #[test]
    fn misspelled_time_zone_is_explained_with_a_suggestion() {
        assert_eq!(
            parse_time_zone("Europe/Berln").unwrap_err().0,
            "\"Europe/Berln\" is not a time zone; use an IANA name like Europe/Berlin or America/New_York \
             (did you mean Europe/Berlin?)"
        );
        assert_eq!(
            parse_time_zone("Berlin").unwrap_err().0,
            "\"Berlin\" is not a time zone; use an IANA name like Europe/Berlin or America/New_York \
             (did you mean Europe/Berlin?)"
        );
        assert_eq!(
            parse_time_zone("Mars/Olympus").unwrap_err().0,
            "\"Mars/Olympus\" is not a time zone; use an IANA name like Europe/Berlin or America/New_York"
        );
        assert!(parse_time_zone("").unwrap_err().0.starts_with("a time zone is needed"));
        assert!(parse_time_zone("月").is_err());
    }

    #[test]
    fn weekday_words_parse_in_their_usual_spellings() {
        for (words, day) in [
            (&["mon", "monday", "Mon", "MONDAY"][..], Weekday::Mon),
            (&["tue", "tues", "tuesday"][..], Weekday::Tue),
            (&["wed", "wednesday"][..], Weekday::Wed),
            (&["thu", "thur", "thurs", "thursday"][..], Weekday::Thu),
            (&["fri", "friday"][..], Weekday::Fri),
            (&["sat", "saturday"][..], Weekday::Sat),
            (&["sun", "sunday", " Sun "][..], Weekday::Sun),
        ] {
            for word in words {
                assert_eq!(parse_weekday(word), Some(day), "for {word:?}");
            }
            assert_eq!(parse_weekday(weekday_name(day)), Some(day));
        }
        for word in ["", "mo", "mnday", "月", "monday!", "1"] {
            assert_eq!(parse_weekday(word), None, "for {word:?}");
        }
        assert_eq!(weekday_name(Weekday::Sat), "sat");
    }

    #[test]
    fn quiet_days_cover_weekdays_and_holidays() {
        let quiet = QuietDays::from_stored("sat,sun", "2026-12-24,2026-12-25");
        let date = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        assert!(quiet.is_quiet(date("2026-06-06")), "a Saturday");
        assert!(quiet.is_quiet(date("2026-12-24")), "a holiday on a Thursday");
        assert!(!quiet.is_quiet(date("2026-06-08")), "an ordinary Monday");
        assert!(!QuietDays::default().is_quiet(date("2026-06-06")));
    }

    #[test]
    fn quiet_days_are_stored_sorted_and_read_back_leniently() {
        let quiet = QuietDays::from_stored("sun, sat,,bogus,SAT", "2026-12-25,not-a-date,2026-12-24,2026-12-25");
        assert_eq!(quiet.weekdays, [Weekday::Sat, Weekday::Sun]);
        assert_eq!(quiet.weekdays_to_stored(), "sat,sun");
        assert_eq!(quiet.holidays_to_stored(), "2026-12-24,2026-12-25");
        assert_eq!(QuietDays::from_stored(&quiet.weekdays_to_stored(), &quiet.holidays_to_stored()), quiet);
        assert_eq!(QuietDays::from_stored("", ""), QuietDays::default());
        let unsorted = QuietDays { weekdays: vec![Weekday::Sun, Weekday::Mon, Weekday::Sun], holidays: vec![] };
        assert_eq!(unsorted.weekdays_to_stored(), "mon,sun");
        assert_eq!(QuietDays::default().holidays_to_stored(), "");
    }
}
