//! The neutral message model: what nudge says, with no platform's markup: a headline, sections with
//! fields, metric rows and one-click actions, and the forms nudge asks people to fill in. Each
//! platform renders it (Block Kit, Adaptive Cards, markdown); the outbox stores it as JSON.

pub mod build;
pub mod form;

use serde::{Deserialize, Serialize};

use crate::domain::ids::{ExperimentRef, PledgeRef};

/// Who sees a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Only the person who typed the command (Slack's `ephemeral`).
    Private,
    /// Everyone in the channel (Slack's `in_channel`).
    Channel,
}

/// A message: a headline that doubles as the plain-text fallback, then sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub visibility: Visibility,
    /// One or two sentences; shown first and used wherever rich content is unavailable.
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
    /// When the message refuses one answer of a form (a date already past), that field's name
    /// (`form::fields`): a platform shows the refusal next to the field and keeps the form open,
    /// with everything typed in it. A typed command's answer just shows the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A page the message points to (the channel's dashboard), shown as a link after the sections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Boxed: most messages have none, and a message travels in every command's result.
    pub link: Option<Box<Link>>,
}

/// A labelled link to one of nudge's own pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// A block of the message: a heading, some text, label/value fields, a metric row, buttons.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Section {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub label: String,
    pub value: String,
}

/// An experiment's metric at a glance: baseline → now → target, already formatted with its unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub name: String,
    pub baseline: String,
    pub now: Option<String>,
    pub target: String,
    /// Share of the gap closed, 0–100 (may be negative or exceed 100).
    pub progress_percent: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sparkline: String,
}

impl MetricRow {
    /// "activation: 0.31 → 0.34 → 0.36 (60%)"
    pub fn summary(&self) -> String {
        let now = self.now.as_deref().unwrap_or("–");
        let mut line = format!("{}: {} → {} → {}", self.name, self.baseline, now, self.target);
        if let Some(p) = self.progress_percent {
            line.push_str(&format!(" ({p}%)"));
        }
        if !self.sparkline.is_empty() {
            line.push_str(&format!("  {}", self.sparkline));
        }
        line
    }
}

/// A one-click button. The platform encodes `kind` into its action id and value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub label: String,
    pub kind: ActionKind,
    #[serde(default)]
    pub style: ActionStyle,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", content = "id", rename_all = "snake_case")]
pub enum ActionKind {
    StartExperiment(ExperimentRef),
    UpdateMetric(ExperimentRef),
    Vote(ExperimentRef),
    PledgeDone(PledgeRef),
    PledgeExtend(PledgeRef),
    PledgeRelease(PledgeRef),
    /// Records a reading nudge asked about (a likely slip, or a value in another unit), as is.
    RecordReading {
        experiment: ExperimentRef,
        value: f64,
    },
    /// Opens the form that closes an experiment.
    CloseExperiment(ExperimentRef),
    /// Opens the form that moves an experiment's review date.
    ExtendReview(ExperimentRef),
}

/// Where a mention of a member starts, splits the member's platform id from their name, and ends,
/// inside a message's text. Characters from Unicode's private use area: people's own text has
/// them taken out, so only nudge can mention anyone.
pub const MENTION_START: char = '\u{E000}';
pub const MENTION_SPLIT: char = '\u{E001}';
pub const MENTION_END: char = '\u{E002}';

/// A mention of a member in a message's text: the platform notifies them (Slack shows `@Ana`),
/// and plain text shows their name.
pub fn mention(external_id: &str, name: &str) -> String {
    format!("{MENTION_START}{external_id}{MENTION_SPLIT}{name}{MENTION_END}")
}

/// The text with each mention replaced by what `render` makes of (platform id, name).
pub fn render_mentions(text: &str, render: impl Fn(&str, &str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MENTION_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MENTION_START.len_utf8()..];
        let Some(end) = after.find(MENTION_END) else {
            rest = after;
            break;
        };
        let inner = &after[..end];
        let (id, name) = inner.split_once(MENTION_SPLIT).unwrap_or((inner, inner));
        out.push_str(&render(id, name));
        rest = &after[end + MENTION_END.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// People's own text without the marks of a mention, so that nobody can type one.
pub fn without_mention_marks(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([MENTION_START, MENTION_SPLIT, MENTION_END]) {
        text.chars().filter(|c| ![MENTION_START, MENTION_SPLIT, MENTION_END].contains(c)).collect::<String>().into()
    } else {
        text.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStyle {
    #[default]
    Default,
    Primary,
    Danger,
}

impl Message {
    pub fn private(text: impl Into<String>) -> Message {
        Message { visibility: Visibility::Private, text: text.into(), sections: Vec::new(), field: None, link: None }
    }

    pub fn channel(text: impl Into<String>) -> Message {
        Message { visibility: Visibility::Channel, text: text.into(), sections: Vec::new(), field: None, link: None }
    }

    /// Marks the message as the refusal of one form field's answer.
    pub fn about_field(mut self, field: &str) -> Message {
        self.field = Some(field.to_string());
        self
    }

    pub fn with_link(mut self, label: impl Into<String>, url: impl Into<String>) -> Message {
        self.link = Some(Box::new(Link { label: label.into(), url: url.into() }));
        self
    }

    pub fn with_section(mut self, section: Section) -> Message {
        self.sections.push(section);
        self
    }

    /// The whole message as plain text, for platforms or clients with no rich rendering; a
    /// mention shows the name.
    pub fn plain_text(&self) -> String {
        let mut out = self.text.clone();
        for section in &self.sections {
            out.push('\n');
            if let Some(heading) = &section.heading {
                out.push_str(&format!("\n{heading}"));
            }
            if let Some(body) = &section.body {
                out.push_str(&format!("\n{body}"));
            }
            if let Some(metric) = &section.metric {
                out.push_str(&format!("\n{}", metric.summary()));
            }
            for field in &section.fields {
                out.push_str(&format!("\n{}: {}", field.label, field.value));
            }
        }
        render_mentions(&out, |_, name| name.to_string())
    }
}

impl Section {
    pub fn heading(heading: impl Into<String>) -> Section {
        Section { heading: Some(heading.into()), ..Section::default() }
    }

    pub fn body(body: impl Into<String>) -> Section {
        Section { body: Some(body.into()), ..Section::default() }
    }

    pub fn with_body(mut self, body: impl Into<String>) -> Section {
        self.body = Some(body.into());
        self
    }

    pub fn with_field(mut self, label: impl Into<String>, value: impl Into<String>) -> Section {
        self.fields.push(Field { label: label.into(), value: value.into() });
        self
    }

    pub fn with_metric(mut self, metric: MetricRow) -> Section {
        self.metric = Some(metric);
        self
    }

    pub fn with_action(mut self, label: impl Into<String>, kind: ActionKind, style: ActionStyle) -> Section {
        self.actions.push(Action { label: label.into(), kind, style });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_survives_the_round_trip_through_the_outbox_json() {
        let reply = Message::channel("E-3 is running").with_section(
            Section::heading("Shorter onboarding email")
                .with_metric(MetricRow {
                    name: "activation".into(),
                    baseline: "0.31".into(),
                    now: Some("0.34".into()),
                    target: "0.36".into(),
                    progress_percent: Some(60),
                    sparkline: "▁▅█".into(),
                })
                .with_action("Update metric", ActionKind::UpdateMetric(ExperimentRef(3)), ActionStyle::Primary),
        );
        let json = serde_json::to_string(&reply).unwrap();
        assert!(json.contains(r#""action":"update_metric","id":"E-3""#), "{json}");
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), reply);
    }

    #[test]
    fn a_mention_is_rendered_by_the_platform_and_shown_as_a_name_in_plain_text() {
        let text = format!("{}, keep it, move it or release it", mention("U01", "Ana"));
        assert_eq!(render_mentions(&text, |id, _| format!("<@{id}>")), "<@U01>, keep it, move it or release it");
        assert_eq!(Message::channel(text).plain_text(), "Ana, keep it, move it or release it");
        let typed = format!("sneaky {MENTION_START}U09{MENTION_SPLIT}Boss{MENTION_END}");
        assert_eq!(without_mention_marks(&typed), "sneaky U09Boss");
    }

    #[test]
    fn plain_text_carries_every_part_of_the_message() {
        let reply = Message::private("Your pledges").with_section(
            Section::heading("P-4 call five customers").with_field("Due", "Fri 27 Nov").with_body("kept early"),
        );
        let text = reply.plain_text();
        for part in ["Your pledges", "P-4 call five customers", "Due: Fri 27 Nov", "kept early"] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }
}
