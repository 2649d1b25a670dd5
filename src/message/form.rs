//! The forms nudge asks people to fill in, with no platform's markup: what each form is for, its
//! fields with their labels, hints and limits. A platform renders a [`Form`] (a Slack modal, a Teams
//! card) and hands the answers back to `commands::form`, which reads them into a command.

use crate::commands::grammar::{MAX_HYPOTHESIS_CHARS, MAX_LEARNING_CHARS, MAX_METRIC_NAME_CHARS, MAX_NOTE_CHARS};
use crate::commands::grammar::{MAX_REASON_CHARS, MAX_TITLE_CHARS};
use crate::domain::experiment::Outcome;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::domain::metric::format_value;

/// The names of the forms' fields; platforms key inputs and errors by them.
pub mod fields {
    pub const TITLE: &str = "title";
    pub const HYPOTHESIS: &str = "hypothesis";
    pub const METRIC: &str = "metric";
    pub const BASELINE: &str = "baseline";
    pub const TARGET: &str = "target";
    pub const REVIEW: &str = "review";
    pub const OUTCOME: &str = "outcome";
    pub const LEARNING: &str = "learning";
    pub const VALUE: &str = "value";
    pub const NOTE: &str = "note";
    pub const DUE: &str = "due";
    pub const REASON: &str = "reason";
}

use fields::*;

/// Longest number a person types into a value field ("1,200,000.50 ms" fits easily).
pub const MAX_VALUE_CHARS: usize = 40;

/// Which form, and what it acts on. Its [`FormKind::id`] travels with the form (Slack's callback id)
/// so the answers come back to the right command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    Propose,
    Close(ExperimentRef),
    UpdateMetric(ExperimentRef),
    ExtendPledge(PledgeRef),
    ReleasePledge(PledgeRef),
    ExtendReview(ExperimentRef),
}

impl FormKind {
    /// "propose", "close:E-3", "update:E-3", "extend:P-4", "release:P-4".
    pub fn id(&self) -> String {
        match self {
            FormKind::Propose => "propose".to_string(),
            FormKind::Close(id) => format!("close:{id}"),
            FormKind::UpdateMetric(id) => format!("update:{id}"),
            FormKind::ExtendPledge(id) => format!("extend:{id}"),
            FormKind::ReleasePledge(id) => format!("release:{id}"),
            FormKind::ExtendReview(id) => format!("review:{id}"),
        }
    }

    /// The form an id names; `None` for anything we did not hand out.
    pub fn parse(id: &str) -> Option<FormKind> {
        match id.split_once(':') {
            None if id == "propose" => Some(FormKind::Propose),
            Some(("close", e)) => e.parse().ok().map(FormKind::Close),
            Some(("update", e)) => e.parse().ok().map(FormKind::UpdateMetric),
            Some(("extend", p)) => p.parse().ok().map(FormKind::ExtendPledge),
            Some(("release", p)) => p.parse().ok().map(FormKind::ReleasePledge),
            Some(("review", e)) => e.parse().ok().map(FormKind::ExtendReview),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub kind: FormKind,
    pub title: String,
    pub submit: &'static str,
    /// What the form is about, shown first: "E-3 · Shorter signup form".
    pub subject: Option<String>,
    /// A line of advice above the fields.
    pub intro: Option<&'static str>,
    pub fields: Vec<FormField>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FormField {
    pub name: &'static str,
    pub label: String,
    pub input: Input,
    pub optional: bool,
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Text {
        max_chars: usize,
        multiline: bool,
        placeholder: String,
    },
    Date {
        placeholder: &'static str,
    },
    /// One of these (value, label) pairs.
    Choice(Vec<(&'static str, &'static str)>),
}

fn text(name: &'static str, label: &str, max_chars: usize, multiline: bool, placeholder: &str) -> FormField {
    FormField {
        name,
        label: label.to_string(),
        input: Input::Text { max_chars, multiline, placeholder: placeholder.to_string() },
        optional: false,
        hint: None,
    }
}

impl FormField {
    fn hint(mut self, hint: impl Into<String>) -> FormField {
        self.hint = Some(hint.into());
        self
    }

    fn optional(mut self) -> FormField {
        self.optional = true;
        self
    }
}

fn date(name: &'static str, label: &str) -> FormField {
    FormField {
        name,
        label: label.to_string(),
        input: Input::Date { placeholder: "Pick a day" },
        optional: false,
        hint: None,
    }
}

/// "E-3 · Shorter signup form", or just the id when there is no title.
fn subject(id: &str, title: &str) -> String {
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() { id.to_string() } else { format!("{id} · {title}") }
}

/// The form behind `/experiment propose` with nothing after it.
pub fn propose() -> Form {
    Form {
        kind: FormKind::Propose,
        title: "Propose an experiment".into(),
        submit: "Propose",
        subject: None,
        intro: Some(
            "Think big, start small: one change, one metric that should move, and a day to look at the result.",
        ),
        fields: vec![
            text(TITLE, "Title", MAX_TITLE_CHARS, false, "Shorter signup form"),
            text(
                HYPOTHESIS,
                "Hypothesis",
                MAX_HYPOTHESIS_CHARS,
                true,
                "Fewer fields will get more people through signup",
            )
            .hint("What you expect to happen, and why."),
            text(METRIC, "Metric", MAX_METRIC_NAME_CHARS, false, "activation rate")
                .hint("The one number that should move."),
            text(BASELINE, "Baseline", MAX_VALUE_CHARS, false, "31%")
                .hint("Where the metric is now, with its unit if it has one: 31%, $40, 450 ms."),
            text(TARGET, "Target", MAX_VALUE_CHARS, false, "40%").hint("Where you hope it gets to."),
            date(REVIEW, "Review date")
                .optional()
                .hint("When the team looks at the result; a few weeks out keeps it small."),
        ],
    }
}

/// The form behind closing an experiment: an outcome and what was learned.
pub fn close(experiment: ExperimentRef, title: &str) -> Form {
    let outcomes = vec![
        (Outcome::Won.as_str(), "Won: it moved the metric"),
        (Outcome::Lost.as_str(), "Lost: it didn't, and now we know"),
        (Outcome::Inconclusive.as_str(), "Inconclusive: we can't tell"),
    ];
    Form {
        kind: FormKind::Close(experiment),
        title: format!("Close {experiment}"),
        submit: "Close it",
        subject: Some(subject(&experiment.to_string(), title)),
        intro: None,
        fields: vec![
            FormField {
                name: OUTCOME,
                label: "Outcome".into(),
                input: Input::Choice(outcomes),
                optional: false,
                hint: None,
            },
            text(LEARNING, "What we learned", MAX_LEARNING_CHARS, true, "People skip the tour whatever its length")
                .hint("Lost and inconclusive count too: the learning is what makes an experiment worth it."),
        ],
    }
}

/// The form behind an "Update metric" button: where the metric is now, and an optional note.
pub fn update_metric(experiment: ExperimentRef, title: &str, metric_name: &str, unit: Option<&str>) -> Form {
    let unit = unit.map(str::trim).filter(|u| !u.is_empty());
    let name = if metric_name.trim().is_empty() { "The metric" } else { metric_name.trim() };
    let label = match unit {
        Some(unit) => format!("{name} now ({unit})"),
        None => format!("{name} now"),
    };
    let example = format_value(34.0, unit);
    Form {
        kind: FormKind::UpdateMetric(experiment),
        title: format!("Update {experiment}"),
        submit: "Save",
        subject: Some(subject(&experiment.to_string(), title)),
        intro: None,
        fields: vec![
            text(VALUE, &label, MAX_VALUE_CHARS, false, &example).hint(format!("A number, like {example}.")),
            text(NOTE, "Note", MAX_NOTE_CHARS, true, "What changed, or where the number comes from").optional(),
        ],
    }
}

/// The form behind a pledge's "Extend" button: a new due date.
pub fn extend_pledge(pledge: PledgeRef, pledge_text: &str) -> Form {
    Form {
        kind: FormKind::ExtendPledge(pledge),
        title: format!("Extend {pledge}"),
        submit: "Extend",
        subject: Some(subject(&pledge.to_string(), pledge_text)),
        intro: None,
        fields: vec![
            date(DUE, "New due date").hint("Pick a day you can keep; moving a date in time keeps the promise."),
        ],
    }
}

/// The form behind an experiment's "Extend review" button: a later day to look at the result.
pub fn extend_review(experiment: ExperimentRef, title: &str) -> Form {
    Form {
        kind: FormKind::ExtendReview(experiment),
        title: format!("Review {experiment} later"),
        submit: "Move it",
        subject: Some(subject(&experiment.to_string(), title)),
        intro: Some("Small and time-boxed: pick the day the team looks at the result again."),
        fields: vec![date(REVIEW, "New review date")],
    }
}

/// The form behind a pledge's "Release" button: why it is being let go.
pub fn release_pledge(pledge: PledgeRef, pledge_text: &str) -> Form {
    Form {
        kind: FormKind::ReleasePledge(pledge),
        title: format!("Release {pledge}"),
        submit: "Release",
        subject: Some(subject(&pledge.to_string(), pledge_text)),
        intro: Some("Releasing a pledge honestly is not breaking it. A short reason keeps the team's trust."),
        fields: vec![text(REASON, "Why are you releasing it?", MAX_REASON_CHARS, true, "The launch moved to January")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_id_reads_back_into_its_form_and_nothing_else_does() {
        let kinds = [
            FormKind::Propose,
            FormKind::Close(ExperimentRef(3)),
            FormKind::UpdateMetric(ExperimentRef(12)),
            FormKind::ExtendPledge(PledgeRef(4)),
            FormKind::ReleasePledge(PledgeRef(999_999_999_999)),
            FormKind::ExtendReview(ExperimentRef(7)),
        ];
        for kind in kinds {
            assert_eq!(FormKind::parse(&kind.id()), Some(kind));
        }
        for id in ["", "propose:E-3", "close", "close:P-3", "close:E-0", "vote:E-3", "update:", "🎉:E-3"] {
            assert_eq!(FormKind::parse(id), None, "{id}");
        }
    }

    #[test]
    fn each_form_asks_for_what_its_command_needs() {
        let names = |form: &Form| form.fields.iter().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(names(&propose()), [TITLE, HYPOTHESIS, METRIC, BASELINE, TARGET, REVIEW]);
        assert!(propose().fields[5].optional);
        assert_eq!(names(&close(ExperimentRef(3), "T")), [OUTCOME, LEARNING]);
        let update = update_metric(ExperimentRef(3), "T", "activation rate", Some("%"));
        assert_eq!(update.fields[0].label, "activation rate now (%)");
        assert!(update.fields[1].optional);
        assert_eq!(names(&extend_pledge(PledgeRef(4), "call")), [DUE]);
        assert_eq!(names(&release_pledge(PledgeRef(4), "call")), [REASON]);
    }
}
