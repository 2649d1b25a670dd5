//! The one form reader every platform shares: the answers to a [`Form`](crate::message::form::Form)
//! (a Slack modal, a Teams card) → the [`Command`] it stands for, or a problem next to each field.
//! Numbers, metrics and dates are read by the grammar's own sub-parsers, so a form and a typed
//! command accept and refuse the same things and say so in the same words.

use std::collections::BTreeMap;

use super::grammar::{self, MAX_HYPOTHESIS_CHARS, MAX_LEARNING_CHARS, MAX_METRIC_NAME_CHARS, MAX_NOTE_CHARS};
use super::grammar::{MAX_REASON_CHARS, MAX_TITLE_CHARS, Quantity, ValueError, is_blank, trim};
use super::{Command, ExperimentCommand, PledgeCommand, Proposal};
use crate::domain::dates::{DueDate, parse_iso_date, quote};
use crate::domain::experiment::Outcome;
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::message::form::fields::*;
use crate::message::form::{FormKind, MAX_VALUE_CHARS};
use crate::message::without_mention_marks;

/// What was entered, by field name. Missing, empty and blank answers are all "not answered".
pub type Answers = BTreeMap<String, String>;

/// Field name → the problem to show next to it.
pub type FieldErrors = BTreeMap<String, String>;

/// The key of a problem that belongs to no field (a form we no longer know).
pub const GENERAL: &str = "_";

/// Reads the answers to the form `form_id` names ([`FormKind::id`]) into its command. Every field is
/// checked and each problem is reported under its field, so the person sees all of them at once.
pub fn read(form_id: &str, answers: &Answers) -> Result<Command, FieldErrors> {
    let unreadable: FieldErrors = answers
        .iter()
        .filter(|(_, text)| super::grammar::has_control_characters(text))
        .map(|(field, _)| {
            (field.clone(), "this holds a control character (such as a NUL byte); type plain text".into())
        })
        .collect();
    if !unreadable.is_empty() {
        return Err(unreadable);
    }
    let form = Filled(answers);
    match FormKind::parse(form_id) {
        Some(FormKind::Propose) => read_proposal(&form),
        Some(FormKind::Close(id)) => read_close(id, &form),
        Some(FormKind::UpdateMetric(id)) => read_update(id, &form),
        Some(FormKind::ExtendPledge(id)) => read_extend(id, &form),
        Some(FormKind::ReleasePledge(id)) => read_release(id, &form),
        Some(FormKind::ExtendReview(id)) => read_review(id, &form),
        None => Err(one(GENERAL, "This form is out of date; close it and run the command again.")),
    }
}

struct Filled<'a>(&'a Answers);

impl Filled<'_> {
    fn text(&self, field: &str) -> Option<String> {
        let text = self.0.get(field).map(|t| without_mention_marks(t))?;
        (!is_blank(&text)).then(|| trim(&text).to_string())
    }
}

/// Problems found so far, at most one per field: the first is shown, and fixing it may fix the rest.
#[derive(Default)]
struct Problems(FieldErrors);

impl Problems {
    fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0.entry(field.to_string()).or_insert_with(|| problem.into());
    }

    fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// A text field that must be answered and be at most `max` characters.
    fn required(&mut self, form: &Filled, field: &str, what: &str, max: usize, missing: &str) -> Option<String> {
        let Some(text) = form.text(field) else {
            self.add(field, missing);
            return None;
        };
        self.check_length(field, what, &text, max);
        Some(text)
    }

    fn check_length(&mut self, field: &str, what: &str, text: &str, max: usize) {
        let count = text.chars().count();
        if count > max {
            self.add(field, format!("the {what} is {count} characters; keep it to {max}"));
        }
    }

    fn into_result(self, command: Option<Command>) -> Result<Command, FieldErrors> {
        match command {
            Some(command) if self.0.is_empty() => Ok(command),
            _ => Err(self.0),
        }
    }
}

fn one(field: &str, problem: impl Into<String>) -> FieldErrors {
    FieldErrors::from([(field.to_string(), problem.into())])
}

fn read_proposal(form: &Filled) -> Result<Command, FieldErrors> {
    let mut problems = Problems::default();
    let title = problems.required(form, TITLE, "title", MAX_TITLE_CHARS, "give the experiment a short title");
    let hypothesis = problems.required(
        form,
        HYPOTHESIS,
        "hypothesis",
        MAX_HYPOTHESIS_CHARS,
        "say what you expect to happen and why",
    );
    let name = problems.required(
        form,
        METRIC,
        "metric name",
        MAX_METRIC_NAME_CHARS,
        "name the metric that should move, like activation rate",
    );
    let baseline = read_side(form, &mut problems, BASELINE, "give the baseline, where the metric is now", "31%");
    let target = read_side(form, &mut problems, TARGET, "give the target you hope to reach", "40%");
    let review = form.text(REVIEW).and_then(|typed| calendar_date(&typed).map_err(|p| problems.add(REVIEW, p)).ok());
    let mut metric = None;
    if let (Some(name), Some(baseline), Some(target)) = (name, baseline, target)
        && !problems.has(METRIC)
    {
        match grammar::metric(name, baseline, target) {
            Ok(read) => metric = Some(read),
            Err(problem) => problems.add(TARGET, problem),
        }
    }
    let command = match (title, hypothesis, metric) {
        (Some(title), Some(hypothesis), Some(metric)) => {
            Some(Command::Experiment(ExperimentCommand::Propose(Proposal { title, hypothesis, metric, review })))
        }
        _ => None,
    };
    problems.into_result(command)
}

/// A baseline or target field: one number with its unit, nothing more.
fn read_side(form: &Filled, problems: &mut Problems, field: &str, missing: &str, example: &str) -> Option<Quantity> {
    let typed = problems.required(form, field, field, MAX_VALUE_CHARS, missing)?;
    match grammar::read_value(&typed) {
        Ok(quantity) => Some(quantity),
        Err(ValueError::MoreThanANumber) => {
            let problem = if typed.contains('|') || typed.contains("->") || typed.contains('→') {
                format!("write just the number, like {example}")
            } else if field == TARGET && typed.split_whitespace().any(|w| w.eq_ignore_ascii_case("by")) {
                // "40% by fri" is a typed command's habit; the review date has its own field here.
                format!("write just the number, like {example}; the review date goes below")
            } else {
                format!(
                    "{} is more than a number; longer units go in the metric name, like orders per week",
                    quote(&typed)
                )
            };
            problems.add(field, problem);
            None
        }
        Err(ValueError::NotANumber(reason)) => {
            problems.add(field, reason);
            None
        }
    }
}

fn read_close(experiment: ExperimentRef, form: &Filled) -> Result<Command, FieldErrors> {
    let mut problems = Problems::default();
    let outcome = form.text(OUTCOME).and_then(|word| Outcome::parse(&word));
    if outcome.is_none() {
        problems.add(OUTCOME, "pick an outcome: won, lost or inconclusive");
    }
    let learning = problems.required(
        form,
        LEARNING,
        "learning",
        MAX_LEARNING_CHARS,
        "say what you learned; a learning is what makes a closed experiment count, whatever the outcome",
    );
    let command = match (outcome, learning) {
        (Some(outcome), Some(learning)) => {
            Some(Command::Experiment(ExperimentCommand::Close { experiment, outcome, learning }))
        }
        _ => None,
    };
    problems.into_result(command)
}

fn read_update(experiment: ExperimentRef, form: &Filled) -> Result<Command, FieldErrors> {
    let mut problems = Problems::default();
    let value = match form.text(VALUE) {
        None => {
            problems.add(VALUE, "give the metric's value now, like 34%");
            None
        }
        Some(typed) => match grammar::read_value(&typed) {
            Ok(quantity) => Some(quantity),
            Err(ValueError::MoreThanANumber) => {
                problems.add(VALUE, format!("{} is more than a number; put words in the note", quote(&typed)));
                None
            }
            Err(ValueError::NotANumber(reason)) => {
                problems.add(VALUE, reason);
                None
            }
        },
    };
    let note = form.text(NOTE);
    if let Some(note) = &note {
        problems.check_length(NOTE, "note", note, MAX_NOTE_CHARS);
    }
    let command = value.map(|q| {
        Command::Experiment(ExperimentCommand::Update {
            experiment,
            value: q.value,
            unit: q.unit,
            note,
            confirmed: false,
        })
    });
    problems.into_result(command)
}

fn read_extend(pledge: PledgeRef, form: &Filled) -> Result<Command, FieldErrors> {
    let Some(typed) = form.text(DUE) else {
        return Err(one(DUE, "pick the new due date"));
    };
    let due = calendar_date(&typed).map_err(|problem| one(DUE, problem))?;
    Ok(Command::Pledge(PledgeCommand::Extend { pledge, due }))
}

fn read_review(experiment: ExperimentRef, form: &Filled) -> Result<Command, FieldErrors> {
    let Some(typed) = form.text(REVIEW) else {
        return Err(one(REVIEW, "pick the new review date"));
    };
    let due = calendar_date(&typed).map_err(|problem| one(REVIEW, problem))?;
    Ok(Command::Experiment(ExperimentCommand::Edit { experiment, change: super::Change::Review(due) }))
}

fn read_release(pledge: PledgeRef, form: &Filled) -> Result<Command, FieldErrors> {
    let mut problems = Problems::default();
    let reason = problems.required(
        form,
        REASON,
        "reason",
        MAX_REASON_CHARS,
        &format!("say why you are releasing {pledge}; an honest reason is what keeps the team's trust"),
    );
    problems.into_result(reason.map(|reason| Command::Pledge(PledgeCommand::Release { pledge, reason })))
}

/// A date picker's `YYYY-MM-DD` as a due date on that day.
fn calendar_date(typed: &str) -> Result<DueDate, String> {
    match parse_iso_date(typed) {
        Ok(Some(date)) => Ok(DueDate::On(date)),
        Ok(None) => Err(format!("{} is not a date; pick one from the calendar", quote(typed))),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::metric::Metric;
    use crate::message::form;

    const E3: ExperimentRef = ExperimentRef(3);
    const P4: PledgeRef = PledgeRef(4);

    fn answers(pairs: &[(&str, &str)]) -> Answers {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn proposal(title: &str, baseline: &str, target: &str, review: Option<&str>) -> Answers {
        let mut answers = answers(&[
            (TITLE, title),
            (HYPOTHESIS, "Fewer fields | more people through"),
            (METRIC, "activation rate"),
            (BASELINE, baseline),
            (TARGET, target),
        ]);
        if let Some(review) = review {
            answers.insert(REVIEW.into(), review.into());
        }
        answers
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn problems(result: Result<Command, FieldErrors>) -> FieldErrors {
        result.expect_err("expected field errors")
    }

    #[test]
    fn a_good_proposal_gives_the_exact_propose_command() {
        assert_eq!(
            read("propose", &proposal("  Shorter signup | v2 ", "31%", "40%", Some("2026-12-01"))),
            Ok(Command::Experiment(ExperimentCommand::Propose(Proposal {
                title: "Shorter signup | v2".into(),
                hypothesis: "Fewer fields | more people through".into(),
                metric: Metric::new("activation rate".into(), Some("%".into()), 31.0, 40.0).unwrap(),
                review: Some(DueDate::On(date(2026, 12, 1))),
            })))
        );
        let Ok(Command::Experiment(ExperimentCommand::Propose(proposal))) =
            read("propose", &proposal("Faster pages", "800 ms", "400ms", None))
        else {
            panic!("a proposal without a review date is fine");
        };
        assert_eq!(proposal.review, None);
        assert_eq!(proposal.metric, Metric::new("activation rate".into(), Some("ms".into()), 800.0, 400.0).unwrap());
    }

    #[test]
    fn a_metric_name_may_hold_the_marks_a_typed_command_splits_on() {
        let mut answers = proposal("T", "3", "4", None);
        answers.insert(METRIC.into(), "signups -> paid | weekly".into());
        let Ok(Command::Experiment(ExperimentCommand::Propose(proposal))) = read("propose", &answers) else {
            panic!("the name is read as typed");
        };
        assert_eq!(proposal.metric.name, "signups -> paid | weekly");
    }

    #[test]
    fn a_bad_proposal_says_what_is_wrong_next_to_each_field() {
        let errors = problems(read("propose", &proposal(&"t".repeat(143), "abc", "", None)));
        assert_eq!(errors[TITLE], "the title is 143 characters; keep it to 120");
        assert!(errors[BASELINE].starts_with("\"abc\" is not a number"), "{}", errors[BASELINE]);
        assert!(errors[TARGET].contains("target"), "{}", errors[TARGET]);
        assert_eq!(errors.len(), 3);

        let errors = problems(read("propose", &proposal("T", "31%", "31%", Some("2026-02-30"))));
        assert!(errors[TARGET].contains("the target equals the baseline"), "{errors:?}");
        assert!(errors[REVIEW].contains("not a real date"), "{errors:?}");

        let errors = problems(read("propose", &proposal("T", "31%", "40% by fri", None)));
        assert!(errors[TARGET].contains("just the number"), "{errors:?}");
        let errors = problems(read("propose", &proposal("T", "3 -> 4", "40 days", None)));
        assert!(errors[BASELINE].contains("just the number"), "{errors:?}");
        let errors = problems(read("propose", &proposal("T", "31 days", "40 users", None)));
        assert!(errors[TARGET].contains("one unit for both"), "{errors:?}");
        let errors = problems(read("propose", &proposal("T", "10 orders a week", "20", None)));
        assert!(errors[BASELINE].contains("longer units go in the metric name"), "{errors:?}");
    }

    #[test]
    fn a_close_gives_the_close_command_or_asks_for_the_missing_part() {
        let close = answers(&[(OUTCOME, "lost"), (LEARNING, "People skip the tour\nwhatever its length")]);
        assert_eq!(
            read("close:E-3", &close),
            Ok(Command::Experiment(ExperimentCommand::Close {
                experiment: E3,
                outcome: Outcome::Lost,
                learning: "People skip the tour\nwhatever its length".into(),
            }))
        );
        let errors = problems(read("close:E-3", &answers(&[(LEARNING, "   ")])));
        assert_eq!(errors[OUTCOME], "pick an outcome: won, lost or inconclusive");
        assert!(errors[LEARNING].starts_with("say what you learned"));
        let long = answers(&[(OUTCOME, "won"), (LEARNING, &"l".repeat(1001))]);
        assert_eq!(problems(read("close:E-3", &long))[LEARNING], "the learning is 1001 characters; keep it to 1000");
        assert!(problems(read("close:E-3", &answers(&[(OUTCOME, "maybe"), (LEARNING, "x")]))).contains_key(OUTCOME));
    }

    #[test]
    fn an_update_reads_the_value_and_the_optional_note() {
        let update = |value: Option<&str>, note: Option<&str>| {
            let mut filled = Answers::new();
            value.map(|v| filled.insert(VALUE.into(), v.into()));
            note.map(|n| filled.insert(NOTE.into(), n.into()));
            read("update:E-3", &filled)
        };
        assert_eq!(
            update(Some("34%"), Some("% after the email change")),
            Ok(Command::Experiment(ExperimentCommand::Update {
                experiment: E3,
                value: 34.0,
                unit: Some("%".into()),
                note: Some("% after the email change".into()),
                confirmed: false,
            }))
        );
        assert_eq!(
            update(Some(" 1,200 "), None),
            Ok(Command::Experiment(ExperimentCommand::Update {
                experiment: E3,
                value: 1200.0,
                unit: None,
                note: None,
                confirmed: false
            }))
        );
        assert!(matches!(
            update(Some("450 ms"), None),
            Ok(Command::Experiment(ExperimentCommand::Update { value: 450.0, note: None, .. }))
        ));
        assert!(problems(update(Some("abc"), None))[VALUE].starts_with("\"abc\" is not a number"));
        assert!(problems(update(Some("34 after the change"), None))[VALUE].contains("put words in the note"));
        assert!(problems(update(None, None))[VALUE].contains("give the metric's value"));
        let errors = problems(update(Some("34"), Some(&"n".repeat(501))));
        assert_eq!(errors[NOTE], "the note is 501 characters; keep it to 500");
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn an_extend_gives_the_new_due_date_from_the_calendar() {
        assert_eq!(
            read("extend:P-4", &answers(&[(DUE, "2026-12-01")])),
            Ok(Command::Pledge(PledgeCommand::Extend { pledge: P4, due: DueDate::On(date(2026, 12, 1)) }))
        );
        assert!(problems(read("extend:P-4", &Answers::new()))[DUE].contains("pick"));
        assert!(
            problems(read("extend:P-4", &answers(&[(DUE, "next week")])))[DUE].contains("pick one from the calendar")
        );
    }

    #[test]
    fn a_release_needs_an_honest_reason() {
        assert_eq!(
            read("release:P-4", &answers(&[(REASON, "The launch moved to January")])),
            Ok(Command::Pledge(PledgeCommand::Release { pledge: P4, reason: "The launch moved to January".into() }))
        );
        assert!(problems(read("release:P-4", &Answers::new()))[REASON].contains("say why you are releasing P-4"));
        assert_eq!(
            problems(read("release:P-4", &answers(&[(REASON, &"r".repeat(501))])))[REASON],
            "the reason is 501 characters; keep it to 500"
        );
    }

    #[test]
    fn an_unknown_form_gives_one_general_problem() {
        for id in ["", "propose:E-3", "close", "close:P-3", "close:E-0", "vote:E-3", "update:", "🎉:E-3"] {
            assert_eq!(problems(read(id, &Answers::new())).keys().collect::<Vec<_>>(), [GENERAL], "{id}");
        }
    }

    #[test]
    fn blank_or_invisible_answers_never_pass() {
        let blank = answers(&[(TITLE, ""), (VALUE, "\u{200B}"), (OUTCOME, " "), (DUE, "\u{FEFF}"), (REASON, "\n")]);
        for id in ["propose", "close:E-3", "update:E-3", "extend:P-4", "release:P-4"] {
            assert!(!problems(read(id, &blank)).is_empty(), "{id}");
        }
    }

    #[test]
    fn every_form_filled_in_reads_back_into_its_command() {
        let forms = [
            (form::propose(), "Propose"),
            (form::close(E3, "T"), "Close"),
            (form::update_metric(E3, "T", "activation", None), "Update"),
            (form::extend_pledge(P4, "call Ana"), "Extend"),
            (form::release_pledge(P4, "call Ana"), "Release"),
        ];
        for (form, expected) in forms {
            // "12" is a fine title, hypothesis, number, learning, note and reason alike.
            let mut filled: Answers = form
                .fields
                .iter()
                .map(|field| {
                    let answer = match &field.input {
                        form::Input::Date { .. } => "2026-12-01".to_string(),
                        form::Input::Choice(options) => options[0].0.to_string(),
                        form::Input::Text { .. } => "12".to_string(),
                    };
                    (field.name.to_string(), answer)
                })
                .collect();
            if form.kind == FormKind::Propose {
                filled.insert(METRIC.into(), "activation".into());
                filled.insert(TARGET.into(), "15".into());
            }
            let command = read(&form.kind.id(), &filled).unwrap_or_else(|e| panic!("{:?}: {e:?}", form.kind));
            assert!(format!("{command:?}").contains(expected), "{command:?}");
        }
    }
}
