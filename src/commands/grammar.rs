//! The one grammar every platform shares (DESIGN.md §3): text as typed → a typed [`Command`], or a
//! [`UsageError`] saying what was wrong, the usage line and an example. Pure: no store, no clock, no
//! platform, so a command that fails here has changed nothing.

use std::fmt::{self, Write as _};

use chrono::{NaiveDate, Weekday};

use super::{
    Change, Command, ExperimentCommand, ExperimentFilter, HelpTopic, NudgeCommand, PledgeCommand, PledgeFilter,
    Proposal, QuietChange,
};
use crate::domain::dates::{DueDate, parse_iso_date, quote};
use crate::domain::experiment::Outcome;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::metric::{Metric, format_value};
use crate::domain::schedule::{Schedule, parse_time_zone, parse_weekday};
use crate::domain::units::{is_known_unit, time_factor};
use crate::message::without_mention_marks;

/// Why a command was not understood: the problem in words, plus the usage line and an example of the
/// form that was meant, so the person can fix it without looking anything up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub problem: String,
    pub usage: &'static str,
    pub example: &'static str,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\nUsage: `{}`\nExample: `{}`", self.problem, self.usage, self.example)
    }
}

impl std::error::Error for UsageError {}

/// One form of a command: its usage line, an example, and what it is for (listed by `/nudge help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    pub usage: &'static str,
    pub example: &'static str,
    pub summary: &'static str,
}

impl Syntax {
    fn error(&self, problem: impl Into<String>) -> UsageError {
        UsageError { problem: problem.into(), usage: self.usage, example: self.example }
    }

    /// The words of the usage line before its first placeholder, e.g. `/experiment show`.
    fn name(&self) -> String {
        let words: Vec<&str> = self.usage.split(' ').take_while(|w| !w.starts_with(['<', '['])).collect();
        words.join(" ")
    }
}

pub const EXPERIMENT_PROPOSE: Syntax = Syntax {
    usage: "/experiment propose <title> | <hypothesis> | <metric> <baseline> -> <target> [by <date>]",
    example: "/experiment propose Shorter signup | Fewer fields get more people through | activation rate 31% -> 40% by next fri",
    summary: "propose a small experiment and the metric it should move",
};
pub const EXPERIMENT_LIST: Syntax = Syntax {
    usage: "/experiment list [proposed|running|closed|all] [page]",
    example: "/experiment list proposed 2",
    summary: "see what the team is working on (running, then the backlog by votes, unless you say)",
};
pub const EXPERIMENT_SHOW: Syntax = Syntax {
    usage: "/experiment show <id>",
    example: "/experiment show E-3",
    summary: "one experiment with its metric and readings",
};
pub const EXPERIMENT_START: Syntax = Syntax {
    usage: "/experiment start <id>",
    example: "/experiment start E-3",
    summary: "start a proposed experiment",
};
pub const EXPERIMENT_UPDATE: Syntax = Syntax {
    usage: "/experiment update <id> <value> [note]",
    example: "/experiment update E-3 34% after the welcome email change",
    summary: "record where the metric is now",
};
pub const EXPERIMENT_CLOSE: Syntax = Syntax {
    usage: "/experiment close <id> won|lost|inconclusive <what we learned>",
    example: "/experiment close E-3 lost People skip the tour whatever its length",
    summary: "close with an outcome and a learning; lost and inconclusive count too",
};
pub const EXPERIMENT_VOTE: Syntax = Syntax {
    usage: "/experiment vote <id>",
    example: "/experiment vote E-3",
    summary: "vote a proposed experiment up the backlog",
};
pub const EXPERIMENT_LEARNINGS: Syntax = Syntax {
    usage: "/experiment learnings [words]",
    example: "/experiment learnings onboarding",
    summary: "read (or search) what the team has learned",
};
pub const EXPERIMENT_READINGS: Syntax = Syntax {
    usage: "/experiment readings <id> [delete <reading>]",
    example: "/experiment readings E-3 delete 12",
    summary: "see an experiment's readings, or delete a mistyped one",
};
pub const EXPERIMENT_EDIT: Syntax = Syntax {
    usage: "/experiment edit <id> title|hypothesis|metric|unit|target|review <new value>",
    example: "/experiment edit E-3 target 40%",
    summary: "change an experiment that is proposed or running",
};
pub const EXPERIMENT_ABANDON: Syntax = Syntax {
    usage: "/experiment abandon <id> <why>",
    example: "/experiment abandon E-3 the pricing page is being replaced",
    summary: "stop an experiment that will not be finished, and say why",
};
/// For problems with `/experiment` as a whole: an unknown subcommand or an over-long command.
pub const EXPERIMENT: Syntax = Syntax {
    usage: "/experiment propose|list|show|start|update|readings|edit|close|abandon|vote|learnings …",
    example: "/experiment list",
    summary: "experiments",
};

pub const PLEDGE_MAKE: Syntax = Syntax {
    usage: "/pledge <what> by <when>",
    example: "/pledge call five customers by fri",
    summary: "promise something by a day (today, tomorrow, fri, next week, in 3 days, 2026-12-01); \
              start with to when it begins with list, done, extend, release or help",
};
pub const PLEDGE_DONE: Syntax = Syntax {
    usage: "/pledge done <id> [note]",
    example: "/pledge done P-4 all five called",
    summary: "mark a pledge kept",
};
pub const PLEDGE_RELEASE: Syntax = Syntax {
    usage: "/pledge release <id> <why>",
    example: "/pledge release P-4 the launch moved to January",
    summary: "let a pledge go honestly; that is not breaking it",
};
pub const PLEDGE_EXTEND: Syntax = Syntax {
    usage: "/pledge extend <id> to <when>",
    example: "/pledge extend P-4 to next fri",
    summary: "move a pledge's due date, before it is broken",
};
pub const PLEDGE_LIST: Syntax = Syntax {
    usage: "/pledge list [mine|all]",
    example: "/pledge list all",
    summary: "your open pledges, or everyone's",
};

pub const NUDGE_HELP: Syntax = Syntax { usage: "/nudge help", example: "/nudge help", summary: "this list" };
pub const NUDGE_RULES: Syntax = Syntax {
    usage: "/nudge rules [set <text>]",
    example: "/nudge rules set Start small, share results every Monday, release pledges you can't keep",
    summary: "show the team's rules of the game, or set them",
};
pub const NUDGE_SCHEDULE: Syntax = Syntax {
    usage: "/nudge schedule [<cron>|mon 09:30] [time zone]",
    example: "/nudge schedule mon 09:30 Europe/Paris",
    summary: "show or change when the weekly check-in is posted",
};
pub const NUDGE_QUIET: Syntax = Syntax {
    usage: "/nudge quiet <weekdays and dates>|off",
    example: "/nudge quiet sat,sun 2026-12-24 2026-12-25",
    summary: "set quiet weekdays and add holidays (off clears them)",
};
pub const NUDGE_PAUSE: Syntax = Syntax {
    usage: "/nudge pause <weeks>",
    example: "/nudge pause 2",
    summary: "pause automated posts for some weeks (0 resumes them)",
};
pub const NUDGE_DIGEST: Syntax =
    Syntax { usage: "/nudge digest", example: "/nudge digest", summary: "post the digest and scoreboard now" };
pub const NUDGE_SETTINGS: Syntax =
    Syntax { usage: "/nudge settings", example: "/nudge settings", summary: "show this channel's settings" };
pub const NUDGE_DASHBOARD: Syntax = Syntax {
    usage: "/nudge dashboard",
    example: "/nudge dashboard",
    summary: "a link to this channel's dashboard: board, charts, pledges, learnings, exports",
};
/// For problems with `/nudge` as a whole.
pub const NUDGE: Syntax = Syntax {
    usage: "/nudge help|rules|schedule|quiet|pause|digest|settings|dashboard …",
    example: "/nudge help",
    summary: "the channel",
};
/// For a command word we do not know at all.
pub const COMMANDS: Syntax = Syntax {
    usage: "/experiment … | /pledge <what> by <when> | /nudge …",
    example: "/nudge help",
    summary: "every command",
};

pub const EXPERIMENT_SYNTAXES: [Syntax; 11] = [
    EXPERIMENT_PROPOSE,
    EXPERIMENT_LIST,
    EXPERIMENT_SHOW,
    EXPERIMENT_START,
    EXPERIMENT_UPDATE,
    EXPERIMENT_READINGS,
    EXPERIMENT_EDIT,
    EXPERIMENT_CLOSE,
    EXPERIMENT_ABANDON,
    EXPERIMENT_VOTE,
    EXPERIMENT_LEARNINGS,
];
pub const PLEDGE_SYNTAXES: [Syntax; 5] = [PLEDGE_MAKE, PLEDGE_DONE, PLEDGE_EXTEND, PLEDGE_RELEASE, PLEDGE_LIST];
pub const NUDGE_SYNTAXES: [Syntax; 8] =
    [NUDGE_HELP, NUDGE_RULES, NUDGE_SCHEDULE, NUDGE_QUIET, NUDGE_PAUSE, NUDGE_DIGEST, NUDGE_SETTINGS, NUDGE_DASHBOARD];

// Length limits, counted in characters (what people see), not bytes. They keep posts readable and
// bound what one command can store.
pub const MAX_TEXT_CHARS: usize = 4000;
pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_HYPOTHESIS_CHARS: usize = 500;
pub const MAX_METRIC_NAME_CHARS: usize = 60;
pub const MAX_NOTE_CHARS: usize = 500;
pub const MAX_LEARNING_CHARS: usize = 1000;
pub const MAX_PLEDGE_CHARS: usize = 280;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_RULES_CHARS: usize = 1500;
pub const MAX_SEARCH_CHARS: usize = 100;
/// The longest pause: a quarter of silence is already a lot; a year is the outer bound.
pub const MAX_PAUSE_WEEKS: u32 = 52;

const EXPERIMENT_SUBCOMMANDS: &str =
    "propose, list, show, start, update, readings, edit, close, abandon, vote or learnings";
const NUDGE_SUBCOMMANDS: [&str; 8] = ["help", "rules", "schedule", "quiet", "pause", "digest", "settings", "dashboard"];
const NUMBER_FORMS: &str = "write numbers like 31%, 1,200, 0.5 or $40";
const DATE_FORMS: &str = "today, tomorrow, fri, next week, in 3 days or 2026-12-01";

/// Which command a slash command name or first word names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Experiment,
    Pledge,
    Nudge,
}

impl Family {
    fn from_name(name: &str) -> Option<Family> {
        let name = name.trim();
        let name = name.strip_prefix('/').unwrap_or(name);
        match name.to_lowercase().as_str() {
            "experiment" | "experiments" => Some(Family::Experiment),
            "pledge" | "pledges" => Some(Family::Pledge),
            "nudge" => Some(Family::Nudge),
            _ => None,
        }
    }

    fn syntax(self) -> &'static Syntax {
        match self {
            Family::Experiment => &EXPERIMENT,
            Family::Pledge => &PLEDGE_MAKE,
            Family::Nudge => &NUDGE,
        }
    }
}

/// Parses a slash command: `command` is its name with or without the slash (any case), `text` is
/// everything after it.
pub fn parse(command: &str, text: &str) -> Result<Command, UsageError> {
    let Some(family) = Family::from_name(command) else {
        return Err(unknown_command(command));
    };
    // Only nudge mentions people; the marks it uses are taken out of what people type.
    parse_family(family, &without_mention_marks(text))
}

/// Whether text holds a control character other than line breaks and tabs, which people type.
pub fn has_control_characters(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Parses a whole line, as typed in an @mention: the first word names the command ("experiment list",
/// "/pledge call 5 customers by fri"). A bare /nudge subcommand ("help", "rules") is taken as
/// `/nudge …`, since that is what people type at a bot.
pub fn parse_line(line: &str) -> Result<Command, UsageError> {
    let line = without_mention_marks(line);
    let line = line.as_ref();
    let (word, rest) = split_word(line);
    if is_blank(word) {
        return Ok(Command::Help(HelpTopic::All));
    }
    match Family::from_name(word) {
        Some(family) => parse_family(family, rest),
        None if NUDGE_SUBCOMMANDS.contains(&word.to_lowercase().as_str()) => parse_family(Family::Nudge, line),
        None => Err(unknown_command(word)),
    }
}

fn unknown_command(word: &str) -> UsageError {
    let word = word.trim();
    let shown = if word.starts_with('/') { word.to_string() } else { format!("/{word}") };
    COMMANDS.error(format!("{} is not a command I know; try /experiment, /pledge or /nudge help", quote(&shown)))
}

fn parse_family(family: Family, text: &str) -> Result<Command, UsageError> {
    let text = trim(text);
    check_length("command", text, MAX_TEXT_CHARS, family.syntax())?;
    if has_control_characters(text) {
        // Postgres cannot store a NUL and SQLite would: refused here, both backends behave alike.
        return Err(family.syntax().error("the text holds a control character (such as a NUL byte); type plain text"));
    }
    match family {
        Family::Experiment => parse_experiment(text),
        Family::Pledge => parse_pledge(text),
        Family::Nudge => parse_nudge(text),
    }
}

/// The text of help for a topic: every command with a one-line description, short enough to read
/// in a chat window.
pub fn help_text(topic: HelpTopic) -> String {
    let mut out = String::new();
    match topic {
        HelpTopic::All => {
            out.push_str("nudge keeps your team's test-and-learn loop moving: small experiments, kept promises, shared learnings.\n");
            section(&mut out, "Experiments", &EXPERIMENT_SYNTAXES);
            out.push('\n');
            section(&mut out, "Pledges", &PLEDGE_SYNTAXES);
            out.push('\n');
            section(&mut out, "This channel", &NUDGE_SYNTAXES);
        }
        HelpTopic::Experiment => {
            section(&mut out, "Experiments", &EXPERIMENT_SYNTAXES);
            out.push_str("\nIds look like E-3. Every command: `/nudge help`\n");
        }
        HelpTopic::Pledge => {
            section(&mut out, "Pledges", &PLEDGE_SYNTAXES);
            let _ = writeln!(out, "\nWhen: {DATE_FORMS}. Every command: `/nudge help`");
        }
    }
    out
}

fn section(out: &mut String, title: &str, syntaxes: &[Syntax]) {
    let _ = writeln!(out, "{title}");
    for syntax in syntaxes {
        let _ = writeln!(out, "• `{}` — {}", syntax.usage, syntax.summary);
    }
}

// ---------------------------------------------------------------------------------------------
// /experiment

fn parse_experiment(text: &str) -> Result<Command, UsageError> {
    let (word, rest) = split_word(text);
    let command = match word.to_lowercase().as_str() {
        "" | "help" => return Ok(Command::Help(HelpTopic::Experiment)),
        "propose" => ExperimentCommand::Propose(parse_proposal(rest)?),
        "list" => parse_experiment_list(rest)?,
        "show" => ExperimentCommand::Show(only_experiment_id(rest, &EXPERIMENT_SHOW)?),
        "start" => ExperimentCommand::Start(only_experiment_id(rest, &EXPERIMENT_START)?),
        "vote" => ExperimentCommand::Vote(only_experiment_id(rest, &EXPERIMENT_VOTE)?),
        "update" => parse_update(rest)?,
        "close" => parse_close(rest)?,
        "readings" => parse_readings(rest)?,
        "edit" => parse_edit(rest)?,
        "abandon" => parse_abandon(rest)?,
        "learnings" => {
            check_length("search", rest, MAX_SEARCH_CHARS, &EXPERIMENT_LEARNINGS)?;
            ExperimentCommand::Learnings { words: non_blank(rest) }
        }
        _ => {
            let mut problem = format!("{} is not an /experiment subcommand; try {EXPERIMENT_SUBCOMMANDS}", quote(word));
            // Typing just an id is a natural slip; point at the command that was probably meant.
            if let Ok(id) = word.parse::<ExperimentRef>() {
                let _ = write!(problem, " (to see {id}: `/experiment show {id}`)");
            }
            return Err(EXPERIMENT.error(problem));
        }
    };
    Ok(Command::Experiment(command))
}

fn parse_proposal(text: &str) -> Result<Proposal, UsageError> {
    let syntax = &EXPERIMENT_PROPOSE;
    if is_blank(text) {
        return Err(syntax.error("a proposal needs a title, a hypothesis and a metric, separated by |"));
    }
    let parts: Vec<&str> = text.split('|').map(trim).collect();
    let [title, hypothesis, metric] = parts.as_slice() else {
        let problem = match parts.len() {
            1 => "the proposal has no |; separate its three parts: title | hypothesis | metric".to_string(),
            n => format!(
                "the proposal has {n} parts; it needs exactly three separated by |: title | hypothesis | metric"
            ),
        };
        return Err(syntax.error(problem));
    };
    if is_blank(title) {
        return Err(syntax.error("the title is empty; say in a few words what you will try"));
    }
    if is_blank(hypothesis) {
        return Err(syntax.error("the hypothesis is empty; say what you expect to happen and why"));
    }
    if is_blank(metric) {
        return Err(
            syntax.error("the metric is empty; name it with its baseline and target, like activation rate 31% -> 40%")
        );
    }
    check_length("title", title, MAX_TITLE_CHARS, syntax)?;
    check_length("hypothesis", hypothesis, MAX_HYPOTHESIS_CHARS, syntax)?;
    let (metric, review) = parse_metric(metric)?;
    Ok(Proposal { title: title.to_string(), hypothesis: hypothesis.to_string(), metric, review })
}

/// `<metric name words> <baseline> -> <target> [by <date>]`
fn parse_metric(text: &str) -> Result<(Metric, Option<DueDate>), UsageError> {
    let syntax = &EXPERIMENT_PROPOSE;
    let like = "like activation rate 31% -> 40%";
    let text = text.replace('→', "->");
    let sides: Vec<&str> = text.split("->").collect();
    let [left, right] = sides.as_slice() else {
        return Err(syntax.error(if sides.len() < 2 {
            format!("the metric {} needs an arrow from baseline to target, {like}", quote(&text))
        } else {
            format!("the metric {} has more than one ->; write baseline -> target once", quote(&text))
        }));
    };

    let left: Vec<&str> = left.split_whitespace().collect();
    if left.is_empty() {
        return Err(syntax.error(format!("the metric needs a name and a baseline before ->, {like}")));
    }
    if let [word] = left.as_slice()
        && word.chars().all(char::is_alphabetic)
    {
        return Err(syntax.error(format!("the metric needs a baseline before ->, {like}")));
    }
    let (baseline, used) = quantity_at_end(&left).map_err(|reason| {
        // "orders 10 per week -> …": a unit of several words can only live in the name.
        let hint = if left.last().is_some_and(|w| w.chars().all(char::is_alphabetic)) {
            "; put the baseline right before -> and longer units in the name, like orders per week 10 -> 20"
        } else {
            ""
        };
        syntax.error(format!("the baseline {reason}{hint}"))
    })?;
    let name = left[..left.len() - used].join(" ");
    if name.is_empty() {
        return Err(syntax.error(format!("the metric needs a name before its baseline, {like}")));
    }
    check_length("metric name", &name, MAX_METRIC_NAME_CHARS, syntax)?;

    let right: Vec<&str> = right.split_whitespace().collect();
    if right.is_empty() {
        return Err(syntax.error(format!("the metric needs a target after ->, {like}")));
    }
    let (target, used) = quantity_at_start(&right).map_err(|reason| syntax.error(format!("the target {reason}")))?;
    let review = match &right[used..] {
        [] => None,
        [by, date @ ..] if by.eq_ignore_ascii_case("by") => {
            if date.is_empty() {
                return Err(syntax.error(format!("say the review date after by: {DATE_FORMS}")));
            }
            Some(DueDate::parse(&date.join(" ")).map_err(|e| syntax.error(e.to_string()))?)
        }
        rest => {
            return Err(syntax
                .error(format!("after the target I expected by <date> or nothing, not {}", quote(&rest.join(" ")))));
        }
    };

    let metric = metric(name, baseline, target).map_err(|problem| syntax.error(problem))?;
    Ok((metric, review))
}

/// A metric from its name, baseline and target, in one unit: the grammar's and the forms' one rule.
/// The problem is about the target (its unit or its value), which is where a form shows it.
pub fn metric(name: String, baseline: Quantity, target: Quantity) -> Result<Metric, String> {
    let shown = |q: &Quantity| format_value(q.value, q.unit.as_deref());
    let (unit, target_value) = match (&baseline.unit, &target.unit) {
        (Some(b), Some(t)) if b != t && time_factor(b).is_some() && time_factor(t).is_some() => {
            // One quantity in two units: the target is kept in the baseline's.
            let factor = time_factor(t).unwrap_or(1.0) / time_factor(b).unwrap_or(1.0);
            (Some(b.clone()), target.value * factor)
        }
        (Some(b), Some(t)) => (Some(agreed_unit(b.clone(), t.clone())?), target.value),
        (Some(b), None) if b == "%" && target.value.abs() <= 1.0 && baseline.value.abs() > 1.0 => {
            let meant = Quantity { value: target.value * 100.0, unit: Some("%".into()) };
            return Err(format!(
                "the target {} has no unit while the baseline is {}; did you mean {}?",
                shown(&target),
                shown(&baseline),
                shown(&meant)
            ));
        }
        (None, Some(t)) if t == "%" && baseline.value.abs() <= 1.0 && target.value.abs() > 1.0 => {
            let meant = Quantity { value: baseline.value * 100.0, unit: Some("%".into()) };
            return Err(format!(
                "the baseline {} has no unit while the target is {}; did you mean {}?",
                shown(&baseline),
                shown(&target),
                shown(&meant)
            ));
        }
        (b, t) => (b.clone().or_else(|| t.clone()), target.value),
    };
    Metric::new(name, unit, baseline.value, target_value).map_err(|e| e.to_string())
}

/// Baseline and target in the same unit; "day" and "days" are the same unit (the plural is kept).
fn agreed_unit(baseline: String, target: String) -> Result<String, String> {
    let plural_of = |one: &str, many: &str| many.strip_suffix(['s', 'S']).is_some_and(|m| m.eq_ignore_ascii_case(one));
    if baseline.eq_ignore_ascii_case(&target) || plural_of(&target, &baseline) {
        Ok(baseline)
    } else if plural_of(&baseline, &target) {
        Ok(target)
    } else {
        Err(format!("the baseline is in {baseline} but the target is in {target}; use one unit for both"))
    }
}

/// The longest list anyone pages through: far more experiments than a channel will ever have.
const MAX_LIST_PAGE: u32 = 1000;

/// `[filter] [page]`: a page number may follow the filter ("proposed 2") or stand alone ("2").
fn parse_experiment_list(text: &str) -> Result<ExperimentCommand, UsageError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (filter_words, page) = match words.split_last() {
        Some((last, before)) if last.bytes().all(|b| b.is_ascii_digit()) => {
            let page = last.parse::<u32>().ok().filter(|p| (1..=MAX_LIST_PAGE).contains(p)).ok_or_else(|| {
                EXPERIMENT_LIST.error(format!("{} is not a page; pages start at 1, like list proposed 2", quote(last)))
            })?;
            (before.join(" "), page)
        }
        _ => (trim(text).to_string(), 1),
    };
    Ok(ExperimentCommand::List { filter: parse_experiment_filter(&filter_words)?, page })
}

fn parse_experiment_filter(text: &str) -> Result<ExperimentFilter, UsageError> {
    match text.to_lowercase().as_str() {
        "" | "active" => Ok(ExperimentFilter::Active),
        "proposed" => Ok(ExperimentFilter::Proposed),
        "running" => Ok(ExperimentFilter::Running),
        "closed" => Ok(ExperimentFilter::Closed),
        "all" => Ok(ExperimentFilter::All),
        _ => Err(EXPERIMENT_LIST
            .error(format!("{} is not a list I know; try proposed, running, closed or all", quote(text)))),
    }
}

fn experiment_id(word: &str, syntax: &Syntax) -> Result<ExperimentRef, UsageError> {
    if word.is_empty() {
        return Err(syntax.error("which experiment? give its id, like E-3"));
    }
    word.parse::<ExperimentRef>().map_err(|e| syntax.error(e.to_string()))
}

/// `show`, `start` and `vote` take one id and nothing else; anything after it is probably a slip
/// (two ids, a typo), which is better asked about than ignored.
fn only_experiment_id(text: &str, syntax: &Syntax) -> Result<ExperimentRef, UsageError> {
    let (word, rest) = split_word(text);
    let id = experiment_id(word, syntax)?;
    nothing_after(rest, syntax)?;
    Ok(id)
}

fn parse_update(text: &str) -> Result<ExperimentCommand, UsageError> {
    let syntax = &EXPERIMENT_UPDATE;
    let (word, rest) = split_word(text);
    let experiment = experiment_id(word, syntax)?;
    let (value_word, mut note) = split_word(rest);
    if value_word.is_empty() {
        return Err(syntax.error(format!("what is {experiment}'s metric now? put the value after the id, like 34%")));
    }
    let mut quantity = parse_quantity(value_word)
        .map_err(|reason| syntax.error(format!("the value {} {reason}", quote(value_word))))?;
    // "0.4 s", "34 %": a unit standing apart belongs to the value, not to the note. Other words
    // are the note, which the executor checks against the metric's own unit.
    let (next, after) = split_word(note);
    if quantity.unit.is_none() && is_known_unit(next) {
        quantity.unit = Some(next.to_string());
        note = after;
    }
    check_length("note", note, MAX_NOTE_CHARS, syntax)?;
    Ok(ExperimentCommand::Update {
        experiment,
        value: quantity.value,
        unit: quantity.unit,
        note: non_blank(note),
        confirmed: false,
    })
}

fn parse_readings(text: &str) -> Result<ExperimentCommand, UsageError> {
    let syntax = &EXPERIMENT_READINGS;
    let (word, rest) = split_word(text);
    let experiment = experiment_id(word, syntax)?;
    let (verb, reading) = split_word(rest);
    let delete = match verb.to_lowercase().as_str() {
        "" => None,
        "delete" | "remove" => {
            let (number, more) = split_word(reading);
            let digits = number.trim_start_matches('#');
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax.error(format!(
                    "which reading? give its number from `/experiment readings {experiment}`, like 12"
                )));
            }
            nothing_after(more, syntax)?;
            Some(digits.parse::<i64>().map_err(|_| syntax.error("that reading number is too long"))?)
        }
        _ => {
            return Err(syntax.error(format!("{} is not something to do with readings; try delete", quote(verb))));
        }
    };
    Ok(ExperimentCommand::Readings { experiment, delete })
}

fn parse_edit(text: &str) -> Result<ExperimentCommand, UsageError> {
    let syntax = &EXPERIMENT_EDIT;
    let (word, rest) = split_word(text);
    let experiment = experiment_id(word, syntax)?;
    let (field, value) = split_word(rest);
    let field = field.to_lowercase();
    if field.is_empty() {
        return Err(syntax
            .error(format!("what should change in {experiment}? title, hypothesis, metric, unit, target or review")));
    }
    if is_blank(value) && field != "unit" {
        return Err(syntax.error(format!("say the new {field} after it")));
    }
    let change = match field.as_str() {
        "title" => {
            check_length("title", value, MAX_TITLE_CHARS, syntax)?;
            Change::Title(value.to_string())
        }
        "hypothesis" => {
            check_length("hypothesis", value, MAX_HYPOTHESIS_CHARS, syntax)?;
            Change::Hypothesis(value.to_string())
        }
        "metric" | "name" => {
            check_length("metric name", value, MAX_METRIC_NAME_CHARS, syntax)?;
            Change::MetricName(value.to_string())
        }
        "unit" => match value.to_lowercase().as_str() {
            "" | "none" | "-" => Change::Unit(None),
            _ if value.split_whitespace().count() > 1 => {
                return Err(syntax.error("a unit is one word, like ms, %, $ or orders"));
            }
            _ => Change::Unit(Some(value.to_string())),
        },
        "target" => {
            let quantity = read_value(value).map_err(|error| match error {
                ValueError::MoreThanANumber => syntax.error(format!("{} is more than a number", quote(value))),
                ValueError::NotANumber(reason) => syntax.error(format!("the target {reason}")),
            })?;
            Change::Target { value: quantity.value, unit: quantity.unit }
        }
        "review" => Change::Review(DueDate::parse(value).map_err(|e| syntax.error(e.to_string()))?),
        _ => {
            return Err(syntax.error(format!(
                "{} is not something an experiment has to edit; try title, hypothesis, metric, unit, target or review",
                quote(&field)
            )));
        }
    };
    Ok(ExperimentCommand::Edit { experiment, change })
}

fn parse_abandon(text: &str) -> Result<ExperimentCommand, UsageError> {
    let syntax = &EXPERIMENT_ABANDON;
    let (word, reason) = split_word(text);
    let experiment = experiment_id(word, syntax)?;
    if is_blank(reason) {
        return Err(syntax.error(format!("say why {experiment} is stopping; that is what the team learns from it")));
    }
    check_length("reason", reason, MAX_REASON_CHARS, syntax)?;
    Ok(ExperimentCommand::Abandon { experiment, reason: reason.to_string() })
}

fn parse_close(text: &str) -> Result<ExperimentCommand, UsageError> {
    let syntax = &EXPERIMENT_CLOSE;
    let (word, rest) = split_word(text);
    let experiment = experiment_id(word, syntax)?;
    let (outcome_word, learning) = split_word(rest);
    if outcome_word.is_empty() {
        return Err(
            syntax.error(format!("how did {experiment} end? say won, lost or inconclusive, then what you learned"))
        );
    }
    let Some(outcome) = Outcome::parse(outcome_word) else {
        return Err(syntax.error(format!("{} is not an outcome; say won, lost or inconclusive", quote(outcome_word))));
    };
    if is_blank(learning) {
        return Err(syntax.error(format!(
            "say what you learned after {}: a learning is what makes a closed experiment count, whatever the outcome",
            outcome.as_str()
        )));
    }
    check_length("learning", learning, MAX_LEARNING_CHARS, syntax)?;
    Ok(ExperimentCommand::Close { experiment, outcome, learning: learning.to_string() })
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// A number as typed, with its unit if it had one: "31%", "1,200", "$40", "450ms", "-0.5".
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    pub value: f64,
    pub unit: Option<String>,
}

/// Why a typed value is not one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// A number followed by more than a unit ("34 after the change").
    MoreThanANumber,
    /// Not a number at all; the reason starts with the quoted text: `"abc" is not a number; …`.
    NotANumber(String),
}

/// One value as typed into a form field: a number with an optional unit, standing apart or not
/// ("31%", "1,200", "$ 40", "450 ms"), read the way the grammar reads a baseline or a target.
pub fn read_value(typed: &str) -> Result<Quantity, ValueError> {
    let words: Vec<&str> = typed.split_whitespace().collect();
    match quantity_at_start(&words) {
        Ok((quantity, used)) if used == words.len() => Ok(quantity),
        Ok(_) => Err(ValueError::MoreThanANumber),
        Err(reason) => Err(ValueError::NotANumber(reason)),
    }
}

/// Reads a number. Deliberately narrow (no exponents, no hex, ASCII digits only): what people type
/// for a metric is plain, and anything else is more likely a slip than a wish. The error is the
/// reason, to be put after the quoted text.
fn parse_quantity(text: &str) -> Result<Quantity, &'static str> {
    const NOT_A_NUMBER: &str = "is not a number; write numbers like 31%, 1,200, 0.5 or $40";
    let mut rest = text;
    let mut negative = false;
    let mut signed = false;
    let mut currency = None;
    // Sign and currency in either order: "-$5" and "$-5" both mean minus five dollars.
    loop {
        let mut chars = rest.chars();
        match chars.next() {
            Some(sign @ ('+' | '-' | '−')) if !signed => {
                signed = true;
                negative = sign != '+';
            }
            Some(symbol @ ('$' | '€' | '£')) if currency.is_none() => currency = Some(symbol),
            _ => break,
        }
        rest = chars.as_str();
    }
    let int_len = rest.find(|c: char| !(c.is_ascii_digit() || c == ',')).unwrap_or(rest.len());
    let (int_part, mut rest) = rest.split_at(int_len);
    let mut fraction = "";
    if let Some(after_point) = rest.strip_prefix('.') {
        let len = after_point.find(|c: char| !c.is_ascii_digit()).unwrap_or(after_point.len());
        (fraction, rest) = after_point.split_at(len);
        if fraction.is_empty() {
            return Err(NOT_A_NUMBER);
        }
    }
    if int_part.is_empty() && fraction.is_empty() {
        return Err(NOT_A_NUMBER);
    }
    if int_part.contains(',') && !grouped_in_thousands(int_part) {
        return Err("is not a number; commas go between groups of three digits, like 1,200");
    }
    let suffix = match rest {
        "" => None,
        "%" => Some("%"),
        letters if letters.chars().all(char::is_alphabetic) => Some(letters),
        _ => return Err(NOT_A_NUMBER),
    };
    // "1.2k" and "3M" are thousands and millions, not units.
    let (suffix, scale) = match suffix {
        Some("k" | "K") => (None, 1_000.0),
        Some("M") => (None, 1_000_000.0),
        other => (other, 1.0),
    };
    let unit = match (currency, suffix) {
        (Some(symbol), None) => Some(symbol.to_string()),
        (None, suffix) => suffix.map(str::to_string),
        (Some(_), Some(_)) => return Err("has two units; keep one, like $40 or 40 ms"),
    };
    let digits: String = int_part.chars().filter(|c| *c != ',').collect();
    let digits = if digits.is_empty() { "0" } else { &digits };
    let fraction = if fraction.is_empty() { "0" } else { fraction };
    let value: f64 = format!("{digits}.{fraction}").parse::<f64>().map_err(|_| NOT_A_NUMBER)? * scale;
    if !value.is_finite() {
        return Err("is too large a number");
    }
    Ok(Quantity { value: if negative { -value } else { value }, unit })
}

fn grouped_in_thousands(int_part: &str) -> bool {
    let mut groups = int_part.split(',');
    let first_ok = groups.next().is_some_and(|g| (1..=3).contains(&g.len()));
    first_ok && groups.all(|g| g.len() == 3)
}

/// A unit written apart from its number ("3 days", "40 %"). Words that start a date are never units,
/// so "40 fri" (a forgotten "by") is refused instead of becoming a metric measured in "fri".
fn is_unit_word(word: &str) -> bool {
    let starts_a_date =
        matches!(word.to_lowercase().as_str(), "by" | "in" | "next" | "today" | "tomorrow" | "tmrw" | "eod")
            || parse_weekday(word).is_some();
    !starts_a_date && (word == "%" || word.chars().all(char::is_alphabetic))
}

fn is_currency_word(word: &str) -> bool {
    matches!(word, "$" | "€" | "£")
}

/// The quantity that ends `words`, and how many words it took (two when the unit stands apart).
fn quantity_at_end(words: &[&str]) -> Result<(Quantity, usize), String> {
    let Some((last, before)) = words.split_last() else {
        return Err(format!("is missing; {NUMBER_FORMS}"));
    };
    let error = |reason: &str| format!("{} {reason}", quote(last));
    match (parse_quantity(last), before.last()) {
        (Ok(Quantity { value, unit: None }), Some(symbol)) if is_currency_word(symbol) => {
            Ok((Quantity { value, unit: Some(symbol.to_string()) }, 2))
        }
        (Ok(quantity), _) => Ok((quantity, 1)),
        (Err(reason), Some(number)) if is_unit_word(last) => match parse_quantity(number) {
            Ok(Quantity { value, unit: None }) => Ok((Quantity { value, unit: Some(last.to_string()) }, 2)),
            _ => Err(error(reason)),
        },
        (Err(reason), _) => Err(error(reason)),
    }
}

/// The quantity that starts `words`, and how many words it took.
fn quantity_at_start(words: &[&str]) -> Result<(Quantity, usize), String> {
    let Some((first, after)) = words.split_first() else {
        return Err(format!("is missing; {NUMBER_FORMS}"));
    };
    match (parse_quantity(first), after.first()) {
        (Ok(Quantity { value, unit: None }), Some(unit)) if is_unit_word(unit) => {
            Ok((Quantity { value, unit: Some(unit.to_string()) }, 2))
        }
        (Ok(quantity), _) => Ok((quantity, 1)),
        (Err(reason), Some(number)) if is_currency_word(first) => match parse_quantity(number) {
            Ok(Quantity { value, unit: None }) => Ok((Quantity { value, unit: Some(first.to_string()) }, 2)),
            _ => Err(format!("{} {reason}", quote(first))),
        },
        (Err(reason), _) => Err(format!("{} {reason}", quote(first))),
    }
}

// ---------------------------------------------------------------------------------------------
// /pledge

fn parse_pledge(text: &str) -> Result<Command, UsageError> {
    let lowered: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    let lowered: Vec<&str> = lowered.iter().map(String::as_str).collect();
    match lowered.as_slice() {
        [] | ["help"] => return Ok(Command::Help(HelpTopic::Pledge)),
        ["list"] | ["list", "mine"] => return Ok(Command::Pledge(PledgeCommand::List(PledgeFilter::Mine))),
        ["list", "all"] => return Ok(Command::Pledge(PledgeCommand::List(PledgeFilter::All))),
        _ => {}
    }
    let (first, rest) = split_word(text);
    // "I pledge to …": a leading "to" says the rest is the promise, even when it starts with a
    // subcommand word ("/pledge to list the team's risks by fri").
    if first.eq_ignore_ascii_case("to") && !is_blank(rest) {
        return parse_make(rest).map(Command::Pledge);
    }
    let (second, after) = split_word(rest);
    let first = first.to_lowercase();
    if let ("done" | "extend" | "release", Ok(pledge)) = (first.as_str(), second.parse::<PledgeRef>()) {
        return match first.as_str() {
            "done" => parse_done(pledge, after),
            "extend" => parse_extend(pledge, after),
            _ => parse_release(pledge, after),
        }
        .map(Command::Pledge);
    }
    // "/pledge P-10 done": the id and the subcommand swapped.
    if let Ok(pledge) = first.parse::<PledgeRef>() {
        return Err(swapped_id(pledge, &second.to_lowercase(), after));
    }
    // A subcommand word never starts a public pledge by accident ("/pledge list team by fri"
    // once pledged "list team"): it is asked about, and "to" confirms the pledge.
    if matches!(first.as_str(), "list" | "done" | "extend" | "release" | "help") {
        return Err(subcommand_not_pledge(&first, second, text));
    }
    parse_make(text).map(Command::Pledge)
}

/// The syntax of a pledge subcommand word.
fn pledge_syntax(word: &str) -> &'static Syntax {
    match word {
        "done" => &PLEDGE_DONE,
        "extend" => &PLEDGE_EXTEND,
        "release" => &PLEDGE_RELEASE,
        "list" => &PLEDGE_LIST,
        _ => &PLEDGE_MAKE,
    }
}

/// Typed text shown inside a suggestion to copy: whole, unless it is far longer than any pledge.
fn echo(text: &str) -> String {
    let text = trim(text);
    if text.chars().count() > 300 { format!("{}…", text.chars().take(299).collect::<String>()) } else { text.into() }
}

fn swapped_id(pledge: PledgeRef, verb: &str, after: &str) -> UsageError {
    let with_rest = |command: String| if is_blank(after) { command } else { format!("{command} {}", echo(after)) };
    let problem = match verb {
        "done" | "kept" => format!("did you mean `{}`?", with_rest(format!("/pledge done {pledge}"))),
        "extend" => format!("did you mean `{}`?", with_rest(format!("/pledge extend {pledge}"))),
        "release" => format!("did you mean `{}`?", with_rest(format!("/pledge release {pledge}"))),
        _ => format!(
            "{pledge} is a pledge; did you mean `/pledge done {pledge}`, `/pledge extend {pledge} to <when>` \
             or `/pledge release {pledge} <why>`?"
        ),
    };
    let syntax = match verb {
        "extend" => &PLEDGE_EXTEND,
        "release" => &PLEDGE_RELEASE,
        _ => &PLEDGE_DONE,
    };
    syntax.error(problem)
}

fn subcommand_not_pledge(word: &str, second: &str, text: &str) -> UsageError {
    let syntax = pledge_syntax(word);
    let Some(by) = last_by(text) else {
        // Without "by" it cannot be a pledge at all; a missing or mistyped id is the likelier slip.
        return match (word, second.parse::<PledgeRef>()) {
            ("list" | "help", _) => syntax.error(format!("did you mean `{}`?", meant(word, syntax))),
            (_, Err(e)) if !second.is_empty() => syntax.error(e.to_string()),
            _ => syntax.error("which pledge? give its id, like P-4"),
        };
    };
    syntax.error(format!(
        "did you mean `{}`? To pledge {}, start with to: `/pledge to {}`",
        meant(word, syntax),
        quote(trim(&text[..by])),
        echo(text)
    ))
}

/// The command a subcommand word most likely meant, as a usage line.
fn meant(word: &str, syntax: &Syntax) -> &'static str {
    if word == "help" { "/pledge help" } else { syntax.usage }
}

fn parse_make(text: &str) -> Result<PledgeCommand, UsageError> {
    let syntax = &PLEDGE_MAKE;
    // The last "by" splits, because the promise itself may contain one ("write the docs by hand by fri").
    let Some(at) = last_by(text) else {
        return Err(syntax.error(
            "a pledge needs a due date, so the team knows when to expect it; end it with by and a day, like by fri",
        ));
    };
    let (what, when) = (trim(&text[..at]), trim(&text[at + 2..]));
    if is_blank(what) {
        return Err(syntax.error("say what you pledge before by, like call five customers by fri"));
    }
    if is_blank(when) {
        return Err(syntax.error(format!("say when after by: {DATE_FORMS}")));
    }
    check_length("pledge", what, MAX_PLEDGE_CHARS, syntax)?;
    let due = DueDate::parse(when).map_err(|e| syntax.error(e.to_string()))?;
    Ok(PledgeCommand::Make { text: what.to_string(), due })
}

/// The byte offset of the last whole word "by" (any case).
fn last_by(text: &str) -> Option<usize> {
    words_with_offsets(text).filter(|(_, word)| word.eq_ignore_ascii_case("by")).map(|(at, _)| at).last()
}

fn parse_done(pledge: PledgeRef, note: &str) -> Result<PledgeCommand, UsageError> {
    check_length("note", note, MAX_NOTE_CHARS, &PLEDGE_DONE)?;
    Ok(PledgeCommand::Done { pledge, note: non_blank(note) })
}

/// `extend P-4 to fri`; "to" or "by" may be left out.
fn parse_extend(pledge: PledgeRef, rest: &str) -> Result<PledgeCommand, UsageError> {
    let syntax = &PLEDGE_EXTEND;
    let (word, after) = split_word(rest);
    let when = if word.eq_ignore_ascii_case("to") || word.eq_ignore_ascii_case("by") { after } else { rest };
    if is_blank(when) {
        return Err(syntax.error(format!("say the new due date for {pledge}: {DATE_FORMS}")));
    }
    let due = DueDate::parse(trim(when)).map_err(|e| syntax.error(e.to_string()))?;
    Ok(PledgeCommand::Extend { pledge, due })
}

fn parse_release(pledge: PledgeRef, reason: &str) -> Result<PledgeCommand, UsageError> {
    let syntax = &PLEDGE_RELEASE;
    if is_blank(reason) {
        return Err(syntax
            .error(format!("say why you are releasing {pledge}; an honest reason is what keeps the team's trust")));
    }
    check_length("reason", reason, MAX_REASON_CHARS, syntax)?;
    Ok(PledgeCommand::Release { pledge, reason: reason.to_string() })
}

// ---------------------------------------------------------------------------------------------
// /nudge

fn parse_nudge(text: &str) -> Result<Command, UsageError> {
    let (word, rest) = split_word(text);
    let command = match word.to_lowercase().as_str() {
        "" | "help" => return Ok(Command::Help(help_topic(rest))),
        "rules" => parse_rules(rest)?,
        "schedule" => parse_schedule(rest)?,
        "quiet" => NudgeCommand::Quiet(parse_quiet(rest)?),
        "pause" => NudgeCommand::Pause { weeks: parse_pause(rest)? },
        "digest" => nothing_after(rest, &NUDGE_DIGEST).map(|()| NudgeCommand::Digest)?,
        "settings" => nothing_after(rest, &NUDGE_SETTINGS).map(|()| NudgeCommand::Settings)?,
        "dashboard" => nothing_after(rest, &NUDGE_DASHBOARD).map(|()| NudgeCommand::Dashboard)?,
        _ => {
            return Err(NUDGE.error(format!(
                "{} is not a /nudge subcommand; try help, rules, schedule, quiet, pause, digest or settings",
                quote(word)
            )));
        }
    };
    Ok(Command::Nudge(command))
}

/// `/nudge help pledge` narrows the help; anything else gets all of it, because help never fails.
fn help_topic(text: &str) -> HelpTopic {
    match text.trim_start_matches('/').to_lowercase().as_str() {
        "experiment" | "experiments" => HelpTopic::Experiment,
        "pledge" | "pledges" => HelpTopic::Pledge,
        _ => HelpTopic::All,
    }
}

fn parse_rules(text: &str) -> Result<NudgeCommand, UsageError> {
    let syntax = &NUDGE_RULES;
    if is_blank(text) {
        return Ok(NudgeCommand::ShowRules);
    }
    let (word, rules) = split_word(text);
    if !word.eq_ignore_ascii_case("set") {
        return Err(syntax.error("to change the rules, start with set: /nudge rules set <text>"));
    }
    if is_blank(rules) {
        return Err(syntax.error("say the rules after set; a few short lines the team agreed on"));
    }
    check_length("rules text", rules, MAX_RULES_CHARS, syntax)?;
    Ok(NudgeCommand::SetRules(rules.to_string()))
}

fn parse_schedule(text: &str) -> Result<NudgeCommand, UsageError> {
    let syntax = &NUDGE_SCHEDULE;
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some(last) = words.last() else {
        return Ok(NudgeCommand::ShowSchedule);
    };
    // The zone is the last word, or runs from a named zone to the end: people type "America/New York".
    let zone_start = match words.iter().rposition(|w| is_zone_name(w)) {
        Some(at) => Some(at),
        None if last.eq_ignore_ascii_case("utc") || last.eq_ignore_ascii_case("gmt") => Some(words.len() - 1),
        None => None,
    };
    let (spec, time_zone) = match zone_start {
        Some(at) => {
            let zone = parse_time_zone(&words[at..].join(" ")).map_err(|e| syntax.error(e.to_string()))?;
            (words[..at].join(" "), Some(zone))
        }
        None => (words.join(" "), None),
    };
    if spec.is_empty() {
        return Err(syntax.error("say when as well as the time zone, like mon 09:30 Europe/Paris"));
    }
    let schedule = Schedule::parse(&spec).map_err(|e| syntax.error(e.to_string()))?;
    Ok(NudgeCommand::SetSchedule { schedule, time_zone })
}

/// IANA names have a slash and start with a letter ("Europe/Paris"); cron steps such as "*/2" also
/// have a slash but never start with a letter.
fn is_zone_name(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_alphabetic()) && word.contains('/')
}

fn parse_quiet(text: &str) -> Result<QuietChange, UsageError> {
    let syntax = &NUDGE_QUIET;
    if matches!(text.to_lowercase().as_str(), "off" | "none" | "clear") {
        return Ok(QuietChange::Clear);
    }
    let words: Vec<&str> = text.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Err(syntax
            .error("say which weekdays or dates should be quiet, like sat,sun or 2026-12-24, or off to clear them"));
    }
    let mut weekdays: Vec<Weekday> = Vec::new();
    let mut holidays: Vec<NaiveDate> = Vec::new();
    for word in words {
        if matches!(word.to_lowercase().as_str(), "weekend" | "weekends") {
            weekdays.extend([Weekday::Sat, Weekday::Sun]);
        } else if let Some(day) = parse_weekday(word) {
            weekdays.push(day);
        } else {
            match parse_iso_date(word) {
                Ok(Some(date)) => holidays.push(date),
                Ok(None) => {
                    return Err(syntax.error(format!(
                        "{} is not a weekday or a date; write days like sat,sun and dates like 2026-12-24",
                        quote(word)
                    )));
                }
                Err(e) => return Err(syntax.error(e.to_string())),
            }
        }
    }
    // Sorted and without repeats, so the same days typed in any order are the same change.
    weekdays.sort_by_key(|d| d.num_days_from_monday());
    weekdays.dedup();
    holidays.sort();
    holidays.dedup();
    Ok(QuietChange::Set { weekdays: (!weekdays.is_empty()).then_some(weekdays), holidays })
}

fn parse_pause(text: &str) -> Result<u32, UsageError> {
    let syntax = &NUDGE_PAUSE;
    let words: Vec<&str> = text.split_whitespace().collect();
    let number = match words.as_slice() {
        [] => return Err(syntax.error(format!("for how many weeks? give 0 to {MAX_PAUSE_WEEKS} (0 resumes posts)"))),
        [number] => *number,
        [number, unit] if matches!(unit.to_lowercase().as_str(), "week" | "weeks") => *number,
        _ => {
            return Err(syntax.error(format!(
                "{} is not a number of weeks; give 0 to {MAX_PAUSE_WEEKS} (0 resumes posts)",
                quote(text)
            )));
        }
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax.error(format!(
            "{} is not a number of weeks; give 0 to {MAX_PAUSE_WEEKS} (0 resumes posts)",
            quote(number)
        )));
    }
    // Saturate a long run of digits so that it reads as "too long" rather than as not a number.
    let weeks = number.parse::<u32>().unwrap_or(u32::MAX);
    if weeks > MAX_PAUSE_WEEKS {
        return Err(syntax.error(format!("{} weeks is too long; pause for 0 to {MAX_PAUSE_WEEKS}", quote(number))));
    }
    Ok(weeks)
}

// ---------------------------------------------------------------------------------------------
// Text helpers

/// Splits off the first word; the rest keeps its inner spacing and line breaks.
fn split_word(text: &str) -> (&str, &str) {
    let text = trim(text);
    match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    }
}

/// Whitespace-separated words with their byte offsets in `text`.
fn words_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let start = text.as_ptr() as usize;
    text.split_whitespace().map(move |word| (word.as_ptr() as usize - start, word))
}

/// Whitespace, or an invisible character (zero-width spaces and joiners, a byte-order mark) that chat
/// clients sometimes leave behind and that would otherwise make an invisible title or a word of nothing.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

pub(crate) fn trim(text: &str) -> &str {
    text.trim_matches(is_space)
}

pub(crate) fn is_blank(text: &str) -> bool {
    text.chars().all(is_space)
}

fn non_blank(text: &str) -> Option<String> {
    (!is_blank(text)).then(|| trim(text).to_string())
}

fn nothing_after(rest: &str, syntax: &Syntax) -> Result<(), UsageError> {
    if is_blank(rest) {
        Ok(())
    } else {
        Err(syntax.error(format!("{} takes nothing more; I don't know what to do with {}", syntax.name(), quote(rest))))
    }
}

fn check_length(what: &str, text: &str, max: usize, syntax: &Syntax) -> Result<(), UsageError> {
    let count = text.chars().count();
    if count > max {
        return Err(syntax.error(format!("the {what} is {count} characters; keep it to {max}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono_tz::Tz;

    use super::*;

    fn ok(command: &str, text: &str) -> Command {
        parse(command, text).unwrap_or_else(|e| panic!("{command} {text:?}: {e}"))
    }

    fn err(command: &str, text: &str) -> UsageError {
        match parse(command, text) {
            Ok(parsed) => panic!("{command} {text:?} should fail, parsed {parsed:?}"),
            Err(e) => e,
        }
    }

    fn experiment(text: &str) -> ExperimentCommand {
        match ok("/experiment", text) {
            Command::Experiment(command) => command,
            other => panic!("{text:?}: expected an experiment command, got {other:?}"),
        }
    }

    fn pledge(text: &str) -> PledgeCommand {
        match ok("/pledge", text) {
            Command::Pledge(command) => command,
            other => panic!("{text:?}: expected a pledge command, got {other:?}"),
        }
    }

    fn nudge(text: &str) -> NudgeCommand {
        match ok("/nudge", text) {
            Command::Nudge(command) => command,
            other => panic!("{text:?}: expected a nudge command, got {other:?}"),
        }
    }

    /// The error names every needle and carries the usage line and example of `syntax`.
    #[track_caller]
    fn assert_error(error: &UsageError, needles: &[&str], syntax: &Syntax) {
        for needle in needles {
            assert!(error.problem.contains(needle), "{:?} should mention {needle:?}", error.problem);
        }
        assert_eq!((error.usage, error.example), (syntax.usage, syntax.example), "{}", error.problem);
    }

    fn metric(name: &str, unit: Option<&str>, baseline: f64, target: f64) -> Metric {
        Metric::new(name.into(), unit.map(str::to_string), baseline, target).unwrap()
    }

    fn proposed_metric(metric_part: &str) -> (Metric, Option<DueDate>) {
        match experiment(&format!("propose Title | Hypothesis | {metric_part}")) {
            ExperimentCommand::Propose(p) => (p.metric, p.review),
            other => panic!("{other:?}"),
        }
    }

    fn propose_error(text: &str) -> UsageError {
        err("/experiment", &format!("propose {text}"))
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn e(n: i64) -> ExperimentRef {
        ExperimentRef(n)
    }

    fn p(n: i64) -> PledgeRef {
        PledgeRef(n)
    }

    // --- commands, help and errors ---------------------------------------------------------------

    #[test]
    fn empty_text_asks_for_the_help_of_that_command() {
        assert_eq!(ok("/experiment", ""), Command::Help(HelpTopic::Experiment));
        assert_eq!(ok("/experiment", "  \n "), Command::Help(HelpTopic::Experiment));
        assert_eq!(ok("/pledge", ""), Command::Help(HelpTopic::Pledge));
        assert_eq!(ok("/nudge", " "), Command::Help(HelpTopic::All));
        assert_eq!(ok("/nudge", "help"), Command::Help(HelpTopic::All));
        assert_eq!(ok("/experiment", "HELP"), Command::Help(HelpTopic::Experiment));
        assert_eq!(ok("/pledge", "help"), Command::Help(HelpTopic::Pledge));
    }

    #[test]
    fn nudge_help_can_narrow_to_one_topic_and_never_fails() {
        assert_eq!(ok("/nudge", "help pledges"), Command::Help(HelpTopic::Pledge));
        assert_eq!(ok("/nudge", "help /experiment"), Command::Help(HelpTopic::Experiment));
        assert_eq!(ok("/nudge", "help me please"), Command::Help(HelpTopic::All));
    }

    #[test]
    fn command_names_work_with_or_without_the_slash_in_any_case() {
        for name in ["/experiment", "experiment", "/EXPERIMENT", " /Experiment ", "experiments"] {
            assert_eq!(
                ok(name, "list"),
                Command::Experiment(ExperimentCommand::List { filter: ExperimentFilter::Active, page: 1 })
            );
        }
        assert_eq!(ok("PLEDGE", "list"), Command::Pledge(PledgeCommand::List(PledgeFilter::Mine)));
        assert_eq!(ok("Nudge", "digest"), Command::Nudge(NudgeCommand::Digest));
    }

    #[test]
    fn an_unknown_command_name_is_refused_with_the_commands_we_know() {
        let error = err("/exp", "list");
        assert_error(&error, &["\"/exp\"", "/experiment, /pledge or /nudge help"], &COMMANDS);
        assert_error(&err("", "list"), &["\"/\""], &COMMANDS);
    }

    #[test]
    fn a_line_names_its_command_with_the_first_word() {
        assert_eq!(
            parse_line("experiment list"),
            Ok(Command::Experiment(ExperimentCommand::List { filter: ExperimentFilter::Active, page: 1 }))
        );
        assert_eq!(
            parse_line("/pledge call 5 customers by fri"),
            Ok(Command::Pledge(PledgeCommand::Make {
                text: "call 5 customers".into(),
                due: DueDate::Weekday(Weekday::Fri)
            }))
        );
        assert_eq!(parse_line("  Experiment   show E-3 "), Ok(Command::Experiment(ExperimentCommand::Show(e(3)))));
        assert_eq!(parse_line("pledge"), Ok(Command::Help(HelpTopic::Pledge)));
        assert_eq!(parse_line("nudge pause 2"), Ok(Command::Nudge(NudgeCommand::Pause { weeks: 2 })));
    }

    #[test]
    fn a_line_with_only_a_nudge_subcommand_is_taken_as_nudge() {
        assert_eq!(parse_line(""), Ok(Command::Help(HelpTopic::All)));
        assert_eq!(parse_line("help"), Ok(Command::Help(HelpTopic::All)));
        assert_eq!(parse_line("Help pledge"), Ok(Command::Help(HelpTopic::Pledge)));
        assert_eq!(parse_line("rules"), Ok(Command::Nudge(NudgeCommand::ShowRules)));
        assert_eq!(parse_line("digest"), Ok(Command::Nudge(NudgeCommand::Digest)));
        assert_eq!(parse_line("\u{FEFF}\u{200B} digest"), Ok(Command::Nudge(NudgeCommand::Digest)));
    }

    #[test]
    fn a_line_with_an_unknown_first_word_is_refused() {
        let error = parse_line("hello there").unwrap_err();
        assert_error(&error, &["\"/hello\" is not a command I know"], &COMMANDS);
        let error = parse_line("🚀 launch").unwrap_err();
        assert_error(&error, &["\"/🚀\""], &COMMANDS);
    }

    #[test]
    fn a_usage_error_shows_the_problem_the_usage_and_an_example() {
        let error = err("/experiment", "lst");
        assert_eq!(
            error.to_string(),
            "\"lst\" is not an /experiment subcommand; try propose, list, show, start, update, readings, edit, close, abandon, vote or learnings\n\
             Usage: `/experiment propose|list|show|start|update|readings|edit|close|abandon|vote|learnings …`\n\
             Example: `/experiment list`"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(error);
        assert!(boxed.to_string().starts_with("\"lst\""));
    }

    #[test]
    fn help_lists_every_command_with_a_short_description() {
        let all = help_text(HelpTopic::All);
        for syntax in EXPERIMENT_SYNTAXES.iter().chain(&PLEDGE_SYNTAXES).chain(&NUDGE_SYNTAXES) {
            assert!(all.contains(syntax.usage), "{}", syntax.usage);
            assert!(all.contains(syntax.summary), "{}", syntax.summary);
        }
        assert!(all.lines().count() <= 30, "help should fit a chat window:\n{all}");

        let experiments = help_text(HelpTopic::Experiment);
        assert!(experiments.contains(EXPERIMENT_CLOSE.usage));
        assert!(!experiments.contains(PLEDGE_DONE.usage));
        let pledges = help_text(HelpTopic::Pledge);
        assert!(pledges.contains(PLEDGE_RELEASE.usage) && pledges.contains("in 3 days"));
        assert!(!pledges.contains(EXPERIMENT_PROPOSE.usage));
    }

    #[test]
    fn every_example_parses_to_a_command() {
        // Schedule examples depend on the schedule module; every other example must parse as shown.
        let all =
            EXPERIMENT_SYNTAXES.iter().chain(&PLEDGE_SYNTAXES).chain(&NUDGE_SYNTAXES).chain([&EXPERIMENT, &NUDGE]);
        for syntax in all {
            assert!(parse_line(syntax.example).is_ok(), "{}: {:?}", syntax.example, parse_line(syntax.example));
        }
    }

    #[test]
    fn an_over_long_command_is_refused_with_its_length_before_anything_else() {
        let long = format!("propose {}", "x".repeat(4000));
        assert_error(&err("/experiment", &long), &["the command is 4008 characters; keep it to 4000"], &EXPERIMENT);
        assert_error(&err("/pledge", &"y".repeat(4001)), &["4001 characters"], &PLEDGE_MAKE);
        assert_error(&err("/nudge", &format!("rules set {}", "z".repeat(3991))), &["4001 characters"], &NUDGE);
        // Characters, not bytes: 1000 four-byte emoji are 1000 characters.
        assert!(parse("/experiment", &format!("learnings {}", "🎉".repeat(100))).is_ok());
    }

    // --- /experiment propose ----------------------------------------------------------------------

    #[test]
    fn a_proposal_becomes_a_typed_proposal_with_metric_and_review_date() {
        let command = experiment(
            "propose Shorter signup | Fewer fields get more people through | activation rate 31% -> 40% by 2026-12-01",
        );
        assert_eq!(
            command,
            ExperimentCommand::Propose(Proposal {
                title: "Shorter signup".into(),
                hypothesis: "Fewer fields get more people through".into(),
                metric: metric("activation rate", Some("%"), 31.0, 40.0),
                review: Some(DueDate::On(date(2026, 12, 1))),
            })
        );
    }

    #[test]
    fn a_proposal_without_by_has_no_review_date_and_any_case_of_propose_works() {
        let command = experiment("PROPOSE  Ask for NPS |  Asking later gets more answers  | nps 30 -> 45 ");
        assert_eq!(
            command,
            ExperimentCommand::Propose(Proposal {
                title: "Ask for NPS".into(),
                hypothesis: "Asking later gets more answers".into(),
                metric: metric("nps", None, 30.0, 45.0),
                review: None,
            })
        );
    }

    #[test]
    fn metric_numbers_take_signs_commas_decimals_and_units() {
        let cases: [(&str, &str, Option<&str>, f64, f64); 14] = [
            ("weekly orders 1,200 -> 1,500", "weekly orders", None, 1200.0, 1500.0),
            ("big 1,234,567.5 -> 2,000,000", "big", None, 1_234_567.5, 2_000_000.0),
            ("p95 latency 800ms -> 400ms", "p95 latency", Some("ms"), 800.0, 400.0),
            ("p95 latency 800 ms -> 400 ms", "p95 latency", Some("ms"), 800.0, 400.0),
            ("time to value 3 days → 1 day", "time to value", Some("days"), 3.0, 1.0),
            ("revenue per user $40 -> $55.50", "revenue per user", Some("$"), 40.0, 55.5),
            ("cost £ 30 -> £ 20", "cost", Some("£"), 30.0, 20.0),
            ("margin €-5 -> -€2", "margin", Some("€"), -5.0, -2.0),
            ("churn -0.5 -> −1.5", "churn", None, -0.5, -1.5),
            ("conversion 31 % -> 40 %", "conversion", Some("%"), 31.0, 40.0),
            ("signups 10->20", "signups", None, 10.0, 20.0),
            ("activation .5 -> .75", "activation", None, 0.5, 0.75),
            ("activation 31% -> 40", "activation", Some("%"), 31.0, 40.0),
            ("deploys per week +3 -> 10", "deploys per week", None, 3.0, 10.0),
        ];
        for (text, name, unit, baseline, target) in cases {
            let (parsed, review) = proposed_metric(text);
            assert_eq!(parsed, metric(name, unit, baseline, target), "{text}");
            assert_eq!(review, None, "{text}");
        }
    }

    #[test]
    fn a_metric_name_may_hold_by_and_numbers_and_the_review_date_comes_last() {
        let (parsed, review) = proposed_metric("signups by referral 10 -> 20 by next fri");
        assert_eq!(parsed, metric("signups by referral", None, 10.0, 20.0));
        assert_eq!(review, Some(DueDate::NextWeekday(Weekday::Fri)));
        let (parsed, review) = proposed_metric("errors in v2 12 -> 3 BY in 2 weeks");
        assert_eq!(parsed, metric("errors in v2", None, 12.0, 3.0));
        assert_eq!(review, Some(DueDate::InWeeks(2)));
        let (parsed, _) = proposed_metric("time to value 3 -> 1 days by fri");
        assert_eq!(parsed, metric("time to value", Some("days"), 3.0, 1.0));
    }

    #[test]
    fn a_proposal_keeps_emoji_cjk_and_right_to_left_text_as_typed() {
        let command = experiment("propose 🚀 更短的注册 | فرضية: حقول أقل تعني تسجيلًا أكثر | 活跃率 31% -> 40%");
        let ExperimentCommand::Propose(proposal) = command else { panic!("{command:?}") };
        assert_eq!(proposal.title, "🚀 更短的注册");
        assert_eq!(proposal.hypothesis, "فرضية: حقول أقل تعني تسجيلًا أكثر");
        assert_eq!(proposal.metric, metric("活跃率", Some("%"), 31.0, 40.0));
    }

    #[test]
    fn a_proposal_needs_three_non_empty_parts() {
        let cases = [
            ("", "needs a title, a hypothesis and a metric"),
            ("just a title", "has no |"),
            ("|", "has 2 parts"),
            ("a | b", "has 2 parts"),
            ("a | b | c 1 -> 2 | d", "has 4 parts"),
            ("||", "the title is empty"),
            ("\u{200B} | b | c 1 -> 2", "the title is empty"),
            ("a | | c 1 -> 2", "the hypothesis is empty"),
            ("a | b |  ", "the metric is empty"),
        ];
        for (text, needle) in cases {
            assert_error(&propose_error(text), &[needle], &EXPERIMENT_PROPOSE);
        }
    }

    #[test]
    fn a_malformed_metric_is_explained_with_the_part_quoted() {
        let cases = [
            ("activation 31% 40%", "the metric \"activation 31% 40%\" needs an arrow"),
            ("activation 31% -> 40% -> 50%", "more than one ->"),
            ("activation abc -> 40%", "the baseline \"abc\" is not a number"),
            ("activation 31% -> lots", "the target \"lots\" is not a number"),
            ("31% -> 40%", "needs a name before its baseline"),
            ("-> 40%", "needs a name and a baseline before ->"),
            ("activation ->", "the metric needs a baseline before ->"),
            (
                "orders 10 per week -> 20",
                "the baseline \"week\" is not a number; write numbers like 31%, 1,200, 0.5 or $40; put the baseline right before ->",
            ),
            ("activation 31% ->", "needs a target after ->"),
            ("activation 31% -> 31%", "the target equals the baseline"),
            ("activation 0.31 -> 0.310", "the target equals the baseline"),
            ("latency 800ms -> 40%", "the baseline is in ms but the target is in %"),
            ("activation 31% -> 40% soon", "not \"soon\""),
            ("activation 31 -> 40 fri", "after the target I expected by <date> or nothing, not \"fri\""),
            ("activation 31 -> 40 in 2 weeks", "not \"in 2 weeks\""),
            ("activation 31% -> 40% by fryday", "\"fryday\" is not a date I know"),
            ("activation 31% -> 40% by 2026-02-30", "\"2026-02-30\" is not a real date"),
            ("activation 31% -> 40% by in 0 days", "\"in 0 days\""),
            ("activation 31% -> 40% by", "say the review date after by"),
        ];
        for (text, needle) in cases {
            assert_error(&propose_error(&format!("T | H | {text}")), &[needle], &EXPERIMENT_PROPOSE);
        }
    }

    #[test]
    fn odd_numbers_are_refused_with_the_number_quoted() {
        let huge = "9".repeat(400);
        let cases = [
            ("1e400", "is not a number"),
            ("--5", "is not a number"),
            ("0x10", "is not a number"),
            ("٣", "is not a number"),
            ("NaN", "is not a number"),
            ("inf", "is not a number"),
            ("-inf", "is not a number"),
            ("1,20", "is not a number; commas go between groups of three"),
            ("12,00,000", "is not a number; commas go between groups of three"),
            (",500", "is not a number; commas go between groups of three"),
            ("1.", "is not a number"),
            ("1.2.3", "is not a number"),
            ("5%%", "is not a number"),
            ("$5ms", "has two units"),
            ("½", "is not a number"),
            (huge.as_str(), "is too large a number"),
        ];
        for (number, needle) in cases {
            let quoted = quote(number);
            let error = propose_error(&format!("T | H | m {number} -> 5"));
            assert_error(&error, &[&format!("the baseline {quoted} {needle}")], &EXPERIMENT_PROPOSE);
            let error = propose_error(&format!("T | H | m 5 -> {number}"));
            assert_error(&error, &[&format!("the target {quoted} {needle}")], &EXPERIMENT_PROPOSE);
            let error = err("/experiment", &format!("update E-3 {number}"));
            assert_error(&error, &[&format!("the value {quoted} {needle}")], &EXPERIMENT_UPDATE);
        }
    }

    #[test]
    fn proposal_parts_have_length_limits_counted_in_characters() {
        let long_title = "t".repeat(121);
        let error = propose_error(&format!("{long_title} | H | m 1 -> 2"));
        assert_error(&error, &["the title is 121 characters; keep it to 120"], &EXPERIMENT_PROPOSE);
        let error = propose_error(&format!("T | {} | m 1 -> 2", "h".repeat(501)));
        assert_error(&error, &["the hypothesis is 501 characters; keep it to 500"], &EXPERIMENT_PROPOSE);
        let error = propose_error(&format!("T | H | {} 1 -> 2", "m".repeat(61)));
        assert_error(&error, &["the metric name is 61 characters; keep it to 60"], &EXPERIMENT_PROPOSE);
        // Exactly at the limit, in multi-byte characters, is fine.
        let title = "测".repeat(120);
        let ExperimentCommand::Propose(proposal) =
            experiment(&format!("propose {title} | {} | {} 1 -> 2", "🙂".repeat(500), "率".repeat(60)))
        else {
            panic!()
        };
        assert_eq!(proposal.title, title);
    }

    // --- the other /experiment subcommands --------------------------------------------------------

    #[test]
    fn list_takes_an_optional_filter_in_any_case() {
        let cases = [
            ("list", ExperimentFilter::Active),
            ("list active", ExperimentFilter::Active),
            ("list proposed", ExperimentFilter::Proposed),
            ("list Running", ExperimentFilter::Running),
            ("LIST closed", ExperimentFilter::Closed),
            ("list ALL", ExperimentFilter::All),
        ];
        for (text, filter) in cases {
            assert_eq!(experiment(text), ExperimentCommand::List { filter, page: 1 }, "{text}");
        }
    }

    #[test]
    fn list_takes_a_page_after_the_filter_or_alone() {
        assert_eq!(
            experiment("list proposed 2"),
            ExperimentCommand::List { filter: ExperimentFilter::Proposed, page: 2 }
        );
        assert_eq!(experiment("list 3"), ExperimentCommand::List { filter: ExperimentFilter::Active, page: 3 });
        assert_error(&err("/experiment", "list proposed 0"), &["\"0\" is not a page"], &EXPERIMENT_LIST);
        assert_error(&err("/experiment", "list 99999999999"), &["is not a page"], &EXPERIMENT_LIST);
    }

    #[test]
    fn an_unknown_list_filter_is_quoted_with_the_ones_we_know() {
        let error = err("/experiment", "list open");
        assert_error(&error, &["\"open\"", "proposed, running, closed or all"], &EXPERIMENT_LIST);
        assert_error(&err("/experiment", "list running all"), &["\"running all\""], &EXPERIMENT_LIST);
        assert_error(&err("/experiment", "list 進行中"), &["\"進行中\""], &EXPERIMENT_LIST);
    }

    #[test]
    fn show_start_and_vote_take_one_experiment_id() {
        assert_eq!(experiment("show E-3"), ExperimentCommand::Show(e(3)));
        assert_eq!(experiment("Start e12"), ExperimentCommand::Start(e(12)));
        assert_eq!(experiment("vote #E-7"), ExperimentCommand::Vote(e(7)));
    }

    #[test]
    fn show_start_and_vote_refuse_a_missing_bad_or_extra_id() {
        for (word, syntax) in [("show", &EXPERIMENT_SHOW), ("start", &EXPERIMENT_START), ("vote", &EXPERIMENT_VOTE)] {
            assert_error(&err("/experiment", word), &["which experiment? give its id, like E-3"], syntax);
            assert_error(
                &err("/experiment", &format!("{word} P-3")),
                &["`P-3` is not an experiment id", "E-12"],
                syntax,
            );
            assert_error(&err("/experiment", &format!("{word} E-٣")), &["`E-٣`"], syntax);
            let error = err("/experiment", &format!("{word} E-3 E-4"));
            assert_error(&error, &[&format!("/experiment {word} takes nothing more"), "\"E-4\""], syntax);
        }
    }

    #[test]
    fn update_records_a_value_with_its_unit_and_an_optional_note() {
        let update = |value: f64, unit: Option<&str>, note: Option<&str>| ExperimentCommand::Update {
            experiment: e(3),
            value,
            unit: unit.map(str::to_string),
            note: note.map(str::to_string),
            confirmed: false,
        };
        assert_eq!(
            experiment("update E-3 34% after the welcome email change"),
            update(34.0, Some("%"), Some("after the welcome email change"))
        );
        assert_eq!(experiment("UPDATE e-3 1,250"), update(1250.0, None, None));
        assert_eq!(experiment("update E-3 34 % better 🎉"), update(34.0, Some("%"), Some("better 🎉")));
        assert_eq!(experiment("update E-3 -$2.5 رسوم أقل"), update(-2.5, Some("$"), Some("رسوم أقل")));
        // A unit standing apart is the unit; other words are the note.
        assert_eq!(experiment("update E-3 0.4 s"), update(0.4, Some("s"), None));
        assert_eq!(experiment("update E-3 34 after lunch"), update(34.0, None, Some("after lunch")));
        // Thousands and millions are numbers, not units.
        assert_eq!(experiment("update E-3 1.2k"), update(1200.0, None, None));
        assert_eq!(experiment("update E-3 3M"), update(3_000_000.0, None, None));
    }

    #[test]
    fn a_proposal_in_two_units_of_one_quantity_keeps_the_baselines_and_a_bare_fraction_asks() {
        let Command::Experiment(ExperimentCommand::Propose(proposal)) =
            parse("/experiment", "propose Faster | h | p95 latency 800 ms -> 0.5 s").unwrap()
        else {
            panic!("a proposal")
        };
        assert_eq!((proposal.metric.unit.as_deref(), proposal.metric.target), (Some("ms"), 500.0));
        let error = err("/experiment", "propose Signup | h | conversion 31% -> 0.4");
        assert_error(
            &error,
            &["the target 0.4 has no unit while the baseline is 31%; did you mean 40%?"],
            &EXPERIMENT_PROPOSE,
        );
    }

    #[test]
    fn update_refuses_a_missing_id_or_value_and_an_over_long_note() {
        assert_error(&err("/experiment", "update"), &["which experiment?"], &EXPERIMENT_UPDATE);
        assert_error(&err("/experiment", "update 34%"), &["`34%` is not an experiment id"], &EXPERIMENT_UPDATE);
        assert_error(&err("/experiment", "update E-3"), &["what is E-3's metric now?"], &EXPERIMENT_UPDATE);
        assert_error(
            &err("/experiment", "update E-3 lots"),
            &["the value \"lots\" is not a number"],
            &EXPERIMENT_UPDATE,
        );
        let error = err("/experiment", &format!("update E-3 34 {}", "n".repeat(501)));
        assert_error(&error, &["the note is 501 characters; keep it to 500"], &EXPERIMENT_UPDATE);
    }

    #[test]
    fn close_takes_an_outcome_and_a_learning() {
        assert_eq!(
            experiment("close E-3 lost People skip the tour whatever its length"),
            ExperimentCommand::Close {
                experiment: e(3),
                outcome: Outcome::Lost,
                learning: "People skip the tour whatever its length".into()
            }
        );
        assert_eq!(
            experiment("close e3 WON 更短更好 ✅\nsecond line"),
            ExperimentCommand::Close {
                experiment: e(3),
                outcome: Outcome::Won,
                learning: "更短更好 ✅\nsecond line".into()
            }
        );
        assert_eq!(
            experiment("close E-4 inconclusive too few visitors"),
            ExperimentCommand::Close {
                experiment: e(4),
                outcome: Outcome::Inconclusive,
                learning: "too few visitors".into()
            }
        );
    }

    #[test]
    fn close_refuses_a_missing_outcome_an_unknown_one_and_a_missing_learning() {
        assert_error(&err("/experiment", "close"), &["which experiment?"], &EXPERIMENT_CLOSE);
        assert_error(&err("/experiment", "close E-x won x"), &["`E-x`"], &EXPERIMENT_CLOSE);
        assert_error(&err("/experiment", "close E-3"), &["how did E-3 end?"], &EXPERIMENT_CLOSE);
        assert_error(
            &err("/experiment", "close E-3 maybe it worked"),
            &["\"maybe\" is not an outcome"],
            &EXPERIMENT_CLOSE,
        );
        let error = err("/experiment", "close E-3 lost");
        assert_error(&error, &["a learning is what makes a closed experiment count"], &EXPERIMENT_CLOSE);
        let error = err("/experiment", &format!("close E-3 won {}", "l".repeat(1001)));
        assert_error(&error, &["the learning is 1001 characters; keep it to 1000"], &EXPERIMENT_CLOSE);
    }

    #[test]
    fn learnings_take_optional_search_words() {
        assert_eq!(experiment("learnings"), ExperimentCommand::Learnings { words: None });
        assert_eq!(
            experiment("Learnings  onboarding emails "),
            ExperimentCommand::Learnings { words: Some("onboarding emails".into()) }
        );
        assert_eq!(experiment("learnings 注册"), ExperimentCommand::Learnings { words: Some("注册".into()) });
        let error = err("/experiment", &format!("learnings {}", "w".repeat(101)));
        assert_error(&error, &["the search is 101 characters; keep it to 100"], &EXPERIMENT_LEARNINGS);
    }

    #[test]
    fn an_unknown_experiment_subcommand_is_named_with_the_valid_ones() {
        let error = err("/experiment", "lst running");
        assert_eq!(
            error.problem,
            "\"lst\" is not an /experiment subcommand; try propose, list, show, start, update, readings, edit, close, abandon, vote or learnings"
        );
        assert_error(&error, &[], &EXPERIMENT);
        assert_error(&err("/experiment", "E-3"), &["`/experiment show E-3`"], &EXPERIMENT);
        assert_error(&err("/experiment", "🧪 test"), &["\"🧪\""], &EXPERIMENT);
        assert_error(&err("/experiment", "|"), &["\"|\""], &EXPERIMENT);
    }

    // --- /pledge ----------------------------------------------------------------------------------

    #[test]
    fn a_pledge_is_what_before_the_last_by_and_when_after_it() {
        assert_eq!(
            pledge("call five customers by fri"),
            PledgeCommand::Make { text: "call five customers".into(), due: DueDate::Weekday(Weekday::Fri) }
        );
        assert_eq!(
            pledge("write the docs by hand BY next week"),
            PledgeCommand::Make { text: "write the docs by hand".into(), due: DueDate::NextWeek }
        );
        assert_eq!(
            pledge("ship the survey by 2026-12-01"),
            PledgeCommand::Make { text: "ship the survey".into(), due: DueDate::On(date(2026, 12, 1)) }
        );
        assert_eq!(
            pledge("  review   E-3 by  in 3 days "),
            PledgeCommand::Make { text: "review   E-3".into(), due: DueDate::InDays(3) }
        );
    }

    #[test]
    fn a_pledge_keeps_emoji_cjk_and_right_to_left_text() {
        assert_eq!(
            pledge("给五位客户打电话 📞 by tomorrow"),
            PledgeCommand::Make { text: "给五位客户打电话 📞".into(), due: DueDate::Tomorrow }
        );
        assert_eq!(
            pledge("الاتصال بخمسة عملاء by fri"),
            PledgeCommand::Make {
                text: "الاتصال بخمسة عملاء".into(), due: DueDate::Weekday(Weekday::Fri)
            }
        );
        let text = "👍".repeat(280);
        assert_eq!(pledge(&format!("{text} by today")), PledgeCommand::Make { text, due: DueDate::Today });
    }

    #[test]
    fn subcommand_words_never_start_a_pledge_unless_it_starts_with_to() {
        let make = |text: &str| PledgeCommand::Make { text: text.into(), due: DueDate::Weekday(Weekday::Fri) };
        let error = err("/pledge", "list team by fri");
        assert_error(
            &error,
            &["did you mean `/pledge list [mine|all]`?", "`/pledge to list team by fri`"],
            &PLEDGE_LIST,
        );
        assert_error(
            &err("/pledge", "release the notes by fri"),
            &["/pledge release <id> <why>", "\"release the notes\""],
            &PLEDGE_RELEASE,
        );
        assert_error(
            &err("/pledge", "done with onboarding docs by fri"),
            &["did you mean `/pledge done <id> [note]`?"],
            &PLEDGE_DONE,
        );
        assert_error(
            &err("/pledge", "Extend the trial by fri"),
            &["/pledge to Extend the trial by fri"],
            &PLEDGE_EXTEND,
        );
        assert_error(&err("/pledge", "help Ana with the deck by fri"), &["did you mean `/pledge help`?"], &PLEDGE_MAKE);
        assert_error(&err("/pledge", "list team"), &["did you mean `/pledge list [mine|all]`?"], &PLEDGE_LIST);
        // "to" confirms the pledge, whatever its first word; a pledge that needs no "to" may have one.
        assert_eq!(pledge("to list team by fri"), make("list team"));
        assert_eq!(pledge("TO release the notes by fri"), make("release the notes"));
        assert_eq!(pledge("to call five customers by fri"), make("call five customers"));
        assert_eq!(pledge("to list all customers by fri"), make("list all customers"));
    }

    #[test]
    fn a_pledge_id_before_its_subcommand_asks_did_you_mean() {
        let error = err("/pledge", "P-10 done");
        assert_error(&error, &["did you mean `/pledge done P-10`?"], &PLEDGE_DONE);
        assert!(!error.problem.contains("due date"), "{}", error.problem);
        assert_error(
            &err("/pledge", "p10 done all five called"),
            &["`/pledge done P-10 all five called`"],
            &PLEDGE_DONE,
        );
        assert_error(&err("/pledge", "P-3 extend to fri"), &["`/pledge extend P-3 to fri`"], &PLEDGE_EXTEND);
        assert_error(&err("/pledge", "P-3 release no time"), &["`/pledge release P-3 no time`"], &PLEDGE_RELEASE);
        assert_error(&err("/pledge", "P-3"), &["P-3 is a pledge; did you mean `/pledge done P-3`"], &PLEDGE_DONE);
    }

    #[test]
    fn a_pledge_without_by_explains_that_pledges_need_a_due_date() {
        let error = err("/pledge", "call five customers");
        assert_error(&error, &["a pledge needs a due date"], &PLEDGE_MAKE);
        assert_eq!(error.example, "/pledge call five customers by fri");
        assert_error(&err("/pledge", "call bystanders"), &["needs a due date"], &PLEDGE_MAKE);
        assert_error(&err("/pledge", "📞"), &["needs a due date"], &PLEDGE_MAKE);
    }

    #[test]
    fn a_pledge_with_a_bad_or_missing_part_says_which() {
        assert_error(&err("/pledge", "call Ana by fryday"), &["\"fryday\" is not a date I know"], &PLEDGE_MAKE);
        assert_error(&err("/pledge", "call Ana by 2026-02-30"), &["\"2026-02-30\" is not a real date"], &PLEDGE_MAKE);
        assert_error(&err("/pledge", "call Ana by in 0 days"), &["\"in 0 days\""], &PLEDGE_MAKE);
        assert_error(&err("/pledge", "call Ana by fri by the way"), &["\"the way\""], &PLEDGE_MAKE);
        assert_error(&err("/pledge", "by fri"), &["say what you pledge"], &PLEDGE_MAKE);
        assert_error(&err("/pledge", "call Ana by"), &["say when after by"], &PLEDGE_MAKE);
        let error = err("/pledge", &format!("{} by fri", "x".repeat(281)));
        assert_error(&error, &["the pledge is 281 characters; keep it to 280"], &PLEDGE_MAKE);
    }

    #[test]
    fn done_marks_a_pledge_kept_with_an_optional_note() {
        assert_eq!(pledge("done P-4"), PledgeCommand::Done { pledge: p(4), note: None });
        assert_eq!(
            pledge("DONE p4 all five called 🎉"),
            PledgeCommand::Done { pledge: p(4), note: Some("all five called 🎉".into()) }
        );
        // An id makes it a subcommand even when a "by" follows.
        assert_eq!(
            pledge("done #P-4 by the skin of my teeth"),
            PledgeCommand::Done { pledge: p(4), note: Some("by the skin of my teeth".into()) }
        );
        let error = err("/pledge", &format!("done P-4 {}", "n".repeat(501)));
        assert_error(&error, &["the note is 501 characters; keep it to 500"], &PLEDGE_DONE);
    }

    #[test]
    fn release_needs_a_reason_because_a_reason_keeps_trust() {
        assert_eq!(
            pledge("release P-4 the launch moved to January"),
            PledgeCommand::Release { pledge: p(4), reason: "the launch moved to January".into() }
        );
        assert_error(&err("/pledge", "release P-4"), &["say why you are releasing P-4", "trust"], &PLEDGE_RELEASE);
        assert_error(&err("/pledge", "release P-4 \u{200B}"), &["say why"], &PLEDGE_RELEASE);
        let error = err("/pledge", &format!("release P-4 {}", "r".repeat(501)));
        assert_error(&error, &["the reason is 501 characters; keep it to 500"], &PLEDGE_RELEASE);
    }

    #[test]
    fn done_or_release_without_a_pledge_id_asks_for_one() {
        assert_error(&err("/pledge", "done"), &["which pledge? give its id, like P-4"], &PLEDGE_DONE);
        assert_error(&err("/pledge", "release"), &["which pledge?"], &PLEDGE_RELEASE);
        assert_error(&err("/pledge", "done E-4"), &["`E-4` is not a pledge id", "P-7"], &PLEDGE_DONE);
        assert_error(&err("/pledge", "release P-x no time"), &["`P-x`"], &PLEDGE_RELEASE);
    }

    #[test]
    fn pledge_list_is_mine_unless_all() {
        assert_eq!(pledge("list"), PledgeCommand::List(PledgeFilter::Mine));
        assert_eq!(pledge("list mine"), PledgeCommand::List(PledgeFilter::Mine));
        assert_eq!(pledge("LIST  All"), PledgeCommand::List(PledgeFilter::All));
    }

    // --- /nudge -----------------------------------------------------------------------------------

    #[test]
    fn rules_are_shown_or_set() {
        assert_eq!(nudge("rules"), NudgeCommand::ShowRules);
        assert_eq!(
            nudge("rules set Ship small 🚢\nRelease pledges you can't keep"),
            NudgeCommand::SetRules("Ship small 🚢\nRelease pledges you can't keep".into())
        );
        assert_eq!(nudge("RULES SET 小步快跑"), NudgeCommand::SetRules("小步快跑".into()));
    }

    #[test]
    fn rules_refuse_text_without_set_empty_rules_and_long_rules() {
        assert_error(&err("/nudge", "rules be kind"), &["start with set"], &NUDGE_RULES);
        assert_error(&err("/nudge", "rules set"), &["say the rules after set"], &NUDGE_RULES);
        let error = err("/nudge", &format!("rules set {}", "r".repeat(1501)));
        assert_error(&error, &["the rules text is 1501 characters; keep it to 1500"], &NUDGE_RULES);
    }

    #[test]
    fn schedule_is_shown_or_set_with_an_optional_time_zone() {
        assert_eq!(nudge("schedule"), NudgeCommand::ShowSchedule);
        assert_eq!(
            nudge("schedule mon 09:30"),
            NudgeCommand::SetSchedule { schedule: Schedule::parse("mon 09:30").unwrap(), time_zone: None }
        );
        assert_eq!(
            nudge("Schedule  mon 09:30  Europe/Paris"),
            NudgeCommand::SetSchedule {
                schedule: Schedule::parse("mon 09:30").unwrap(),
                time_zone: Some(Tz::Europe__Paris)
            }
        );
        assert_eq!(
            nudge("schedule 30 9 * * 1-5 UTC"),
            NudgeCommand::SetSchedule { schedule: Schedule::parse("30 9 * * 1-5").unwrap(), time_zone: Some(Tz::UTC) }
        );
        assert_eq!(
            nudge("schedule mon 09:30 America/New York"),
            NudgeCommand::SetSchedule {
                schedule: Schedule::parse("mon 09:30").unwrap(),
                time_zone: Some(Tz::America__New_York)
            }
        );
        // A cron step has a slash too, but it is not a time zone.
        assert_eq!(
            nudge("schedule */30 9 * * 1"),
            NudgeCommand::SetSchedule { schedule: Schedule::parse("*/30 9 * * 1").unwrap(), time_zone: None }
        );
    }

    #[test]
    fn schedule_refuses_a_bad_time_zone_a_zone_alone_and_a_bad_schedule() {
        assert_error(&err("/nudge", "schedule mon 09:30 Mars/Olympus_Mons"), &["Mars/Olympus_Mons"], &NUDGE_SCHEDULE);
        assert_error(&err("/nudge", "schedule Europe/Paris"), &["say when as well"], &NUDGE_SCHEDULE);
        let error = err("/nudge", "schedule whenever");
        assert!(!error.problem.is_empty());
        assert_error(&error, &[], &NUDGE_SCHEDULE);
        assert_error(&err("/nudge", "schedule 🕘"), &[], &NUDGE_SCHEDULE);
    }

    #[test]
    fn quiet_sets_weekdays_and_adds_holidays() {
        let set = |weekdays: Option<Vec<Weekday>>, holidays: Vec<NaiveDate>| {
            NudgeCommand::Quiet(QuietChange::Set { weekdays, holidays })
        };
        assert_eq!(nudge("quiet sat,sun"), set(Some(vec![Weekday::Sat, Weekday::Sun]), vec![]));
        assert_eq!(nudge("quiet 2026-12-24 2026-12-25"), set(None, vec![date(2026, 12, 24), date(2026, 12, 25)]));
        assert_eq!(
            nudge("quiet sat sun 2026-12-24"),
            set(Some(vec![Weekday::Sat, Weekday::Sun]), vec![date(2026, 12, 24)])
        );
        // Order and repeats do not matter.
        assert_eq!(
            nudge("quiet Sunday, SAT, sat , 2026-12-25,2026-12-24"),
            set(Some(vec![Weekday::Sat, Weekday::Sun]), vec![date(2026, 12, 24), date(2026, 12, 25)])
        );
        assert_eq!(nudge("quiet weekend fri"), set(Some(vec![Weekday::Fri, Weekday::Sat, Weekday::Sun]), vec![]));
    }

    #[test]
    fn control_characters_are_refused_with_the_usage() {
        for text in ["propose A\u{0}B | h | m 1 -> 2", "update E-1 3\u{7}", "list\u{1b}[2J"] {
            let error = parse("/experiment", text).unwrap_err();
            assert!(error.problem.contains("control character"), "{text:?}: {error}");
        }
        assert!(parse("/pledge", "call\u{0} five customers by fri").is_err());
        assert!(
            parse("/experiment", "close E-1 won line one\nline two\tand a tab").is_ok(),
            "line breaks and tabs are text"
        );
    }

    #[test]
    fn quiet_off_clears_quiet_days_and_holidays() {
        for word in ["off", "OFF", "none", "clear"] {
            assert_eq!(nudge(&format!("quiet {word}")), NudgeCommand::Quiet(QuietChange::Clear), "{word}");
        }
    }

    #[test]
    fn quiet_refuses_nothing_and_words_that_are_not_days_or_dates() {
        assert_error(&err("/nudge", "quiet"), &["say which weekdays or dates"], &NUDGE_QUIET);
        assert_error(&err("/nudge", "quiet , ,"), &["say which weekdays or dates"], &NUDGE_QUIET);
        assert_error(&err("/nudge", "quiet sat,saturdy"), &["\"saturdy\" is not a weekday or a date"], &NUDGE_QUIET);
        assert_error(&err("/nudge", "quiet 2026-02-30"), &["\"2026-02-30\" is not a real date"], &NUDGE_QUIET);
        assert_error(&err("/nudge", "quiet off sat"), &["\"off\""], &NUDGE_QUIET);
        assert_error(&err("/nudge", "quiet 土曜日"), &["\"土曜日\""], &NUDGE_QUIET);
    }

    #[test]
    fn pause_takes_whole_weeks_from_0_to_52() {
        assert_eq!(nudge("pause 2"), NudgeCommand::Pause { weeks: 2 });
        assert_eq!(nudge("pause 0"), NudgeCommand::Pause { weeks: 0 });
        assert_eq!(nudge("PAUSE 52 weeks"), NudgeCommand::Pause { weeks: 52 });
        assert_eq!(nudge("pause 1 week"), NudgeCommand::Pause { weeks: 1 });
    }

    #[test]
    fn pause_refuses_missing_negative_fractional_and_too_many_weeks() {
        assert_error(&err("/nudge", "pause"), &["for how many weeks?"], &NUDGE_PAUSE);
        assert_error(&err("/nudge", "pause 53"), &["\"53\" weeks is too long; pause for 0 to 52"], &NUDGE_PAUSE);
        assert_error(&err("/nudge", "pause 99999999999999999999"), &["is too long"], &NUDGE_PAUSE);
        for text in ["two", "-1", "1.5", "٣", "2 days", "2 weeks please"] {
            assert_error(&err("/nudge", &format!("pause {text}")), &["is not a number of weeks"], &NUDGE_PAUSE);
        }
    }

    #[test]
    fn digest_and_settings_take_nothing_else() {
        assert_eq!(nudge("digest"), NudgeCommand::Digest);
        assert_eq!(nudge("SETTINGS"), NudgeCommand::Settings);
        assert_eq!(nudge("dashboard"), NudgeCommand::Dashboard);
        assert_error(&err("/nudge", "dashboard now"), &["\"now\""], &NUDGE_DASHBOARD);
        assert_error(&err("/nudge", "digest now"), &["/nudge digest takes nothing more", "\"now\""], &NUDGE_DIGEST);
        assert_error(&err("/nudge", "settings 🔧"), &["\"🔧\""], &NUDGE_SETTINGS);
    }

    #[test]
    fn an_unknown_nudge_subcommand_is_named_with_the_valid_ones() {
        let error = err("/nudge", "snooze 2");
        assert_error(&error, &["\"snooze\" is not a /nudge subcommand", "help, rules, schedule, quiet, pause"], &NUDGE);
    }

    // --- robustness -------------------------------------------------------------------------------

    #[test]
    fn no_input_makes_the_parser_panic() {
        let long = "ab ".repeat(3000);
        let odd: Vec<String> = [
            "",
            " ",
            "|",
            "||",
            "|||",
            "->",
            "→",
            "by",
            "by by",
            "\0",
            "\u{200B}",
            "\u{FEFF}by fri",
            "🎉🎉🎉",
            "מה | למה | מדד 1 -> 2",
            "E-",
            "P-",
            "#",
            "-",
            ",",
            "1e400",
            "--5",
            "0x10",
            "٣",
            "$",
            "%",
            "€€1",
            "−",
            "\u{202E}reversed by fri",
            "a\r\nb by fri",
            &long,
        ]
        .into_iter()
        .map(str::to_string)
        .collect();
        let words = [
            "",
            "propose",
            "propose T | H |",
            "propose T | H | m",
            "propose T | H | m 1 ->",
            "list",
            "show",
            "start",
            "update E-1",
            "close E-1",
            "close E-1 won",
            "vote",
            "learnings",
            "done",
            "done P-1",
            "release",
            "release P-1",
            "rules",
            "rules set",
            "schedule",
            "quiet",
            "pause",
            "digest",
            "settings",
            "help",
        ];
        for command in ["/experiment", "/pledge", "/nudge", "/other"] {
            for word in words {
                for tail in &odd {
                    let text = format!("{word} {tail}");
                    let _ = parse(command, &text);
                    let _ = parse_line(&format!("{command} {text}"));
                    let _ = parse_line(&text);
                }
            }
        }
    }

    #[test]
    fn extend_moves_a_pledge_to_a_new_day_with_or_without_to() {
        for text in ["extend P-4 to next fri", "extend p4 by next fri", "EXTEND P-4 next fri"] {
            assert_eq!(
                parse("/pledge", text),
                Ok(Command::Pledge(PledgeCommand::Extend {
                    pledge: PledgeRef(4),
                    due: DueDate::NextWeekday(chrono::Weekday::Fri)
                })),
                "{text}"
            );
        }
    }

    #[test]
    fn extend_without_a_date_or_with_a_bad_one_shows_its_usage() {
        let err = parse("/pledge", "extend P-4").unwrap_err();
        assert!(err.problem.contains("new due date for P-4"), "{}", err.problem);
        assert_eq!(err.usage, PLEDGE_EXTEND.usage);
        let err = parse("/pledge", "extend P-4 to someday").unwrap_err();
        assert!(err.problem.contains("someday"), "{}", err.problem);
        let err = parse("/pledge", "extend the deadline").unwrap_err();
        assert_eq!(err.usage, PLEDGE_EXTEND.usage);
        // With a "by" and no id it is asked about, like done and release; "to" makes it a pledge.
        assert!(parse("/pledge", "extend the trial by fri").unwrap_err().problem.contains("/pledge to extend"));
        assert!(matches!(
            parse("/pledge", "to extend the trial by fri"),
            Ok(Command::Pledge(PledgeCommand::Make { .. }))
        ));
    }
}
