//! Slack rendering: neutral [`Message`]s → Block Kit (slash-command answers and posts), the buttons'
//! action ids and values and back, the modals nudge opens (`views.open` payloads), and modal
//! submissions (`view_submission` state) → a [`Command`] or field errors keyed by block id.
//!
//! Everything Slack-shaped about what nudge says lives here, so the limits Slack enforces (50 blocks
//! per message, 100 per modal, 3,000 characters per text) are kept in one place, and every piece of
//! user text placed into mrkdwn is escaped here, so nobody can smuggle `<!channel>` or a link in.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::commands::Command;
use crate::commands::form::{self, Answers};
use crate::commands::grammar::{is_blank, trim};
use crate::domain::ids::{ExperimentRef, PledgeRef};
use crate::message::form::{Form, Input};
use crate::message::{Action, ActionKind, ActionStyle, Message, MetricRow, Section, Visibility, render_mentions};

/// Block id → message, for `{"response_action":"errors","errors":{…}}`; block ids are the neutral
/// forms' field names.
pub use crate::commands::form::FieldErrors;

/// Most blocks Slack accepts in one message.
pub const MAX_MESSAGE_BLOCKS: usize = 50;
/// Most blocks Slack accepts in one modal.
pub const MAX_MODAL_BLOCKS: usize = 100;
/// Longest text object (section text, context text) Slack accepts.
pub const MAX_TEXT: usize = 3000;
/// Longest section field Slack accepts.
pub const MAX_FIELD_TEXT: usize = 2000;
/// Longest button label Slack accepts.
pub const MAX_BUTTON_TEXT: usize = 75;
/// Longest modal title, submit and close text Slack accepts.
pub const MAX_MODAL_TITLE: usize = 24;
const MAX_FIELDS_PER_SECTION: usize = 10;
const MAX_ELEMENTS_PER_ACTIONS: usize = 25;
/// A heading is one line; a cap keeps a runaway one from eating the body's room.
const MAX_HEADING: usize = 300;
const MAX_LABEL: usize = 2000;
const MAX_PLACEHOLDER: usize = 150;
/// The key for an error that belongs to no field (an unknown form).
pub const GENERAL_ERROR_KEY: &str = form::GENERAL;

/// Every action id nudge puts on a button starts with this, so other apps' ids are never mistaken for ours.
const ACTION_PREFIX: &str = "nudge";

// ---------------------------------------------------------------------------------------------
// Messages

/// The Block Kit blocks for a reply: its headline, then each section (text with fields, metric line,
/// buttons), never more than Slack's 50; what does not fit is counted in a closing "…and N more".
pub fn blocks(reply: &Message) -> Vec<Value> {
    let mut ids = ActionIds::default();
    // Sections with nothing to show render to no blocks and are not counted anywhere.
    let rendered: Vec<(&Section, Vec<Value>)> = reply
        .sections
        .iter()
        .map(|section| (section, section_blocks(section, &mut ids)))
        .filter(|(_, blocks)| !blocks.is_empty())
        .collect();
    let total: usize = rendered.iter().map(|(_, blocks)| blocks.len()).sum();
    let dividers = rendered.len().saturating_sub(1);

    let mut out =
        vec![json!({"type": "section", "text": mrkdwn(cut_mrkdwn(&escape(&fallback_text(reply)), MAX_TEXT))})];
    // Dividers help the eye but are the first thing to go when room is short.
    if out.len() + total + dividers <= MAX_MESSAGE_BLOCKS {
        for (i, (_, blocks)) in rendered.into_iter().enumerate() {
            if i > 0 {
                out.push(json!({"type": "divider"}));
            }
            out.extend(blocks);
        }
        return out;
    }
    if out.len() + total <= MAX_MESSAGE_BLOCKS {
        out.extend(rendered.into_iter().flat_map(|(_, blocks)| blocks));
        return out;
    }

    // Too much: whole sections while they fit, keeping one block for the note that counts the rest.
    let room = MAX_MESSAGE_BLOCKS - 1;
    let mut shown = 0;
    for (_, blocks) in &rendered {
        if out.len() + blocks.len() <= room {
            out.extend(blocks.iter().cloned());
            shown += 1;
        } else {
            if shown == 0 {
                // One section too large on its own is shown in part rather than not at all.
                let fits = room - out.len();
                out.extend(blocks.iter().take(fits).cloned());
                shown = 1;
            }
            break;
        }
    }
    let hidden: Vec<&Section> = rendered[shown..].iter().map(|(section, _)| *section).collect();
    out.push(context(&more_note(&hidden)));
    out
}

/// The HTTP answer to a slash command: private replies are ephemeral, channel replies are posted
/// for everyone.
pub fn command_response(reply: &Message) -> Value {
    let response_type = match reply.visibility {
        Visibility::Private => "ephemeral",
        Visibility::Channel => "in_channel",
    };
    json!({"response_type": response_type, "text": plain_fallback(reply), "blocks": blocks(reply)})
}

/// A `chat.postMessage` body (without the channel, which the sender adds).
pub fn message(reply: &Message) -> Value {
    let mut blocks = blocks(reply);
    if let Some(link) = &reply.link
        && blocks.len() < MAX_MESSAGE_BLOCKS
    {
        // nudge's own URLs hold no `|` or `>`, so Slack's link syntax cannot be broken by them.
        let text = format!("<{}|{}>", link.url, escape(&link.label));
        blocks.push(json!({"type": "context", "elements": [mrkdwn(text)]}));
    }
    json!({"text": plain_fallback(reply), "blocks": blocks})
}

/// The notification and fallback text: the headline, escaped and cut, never empty.
fn plain_fallback(reply: &Message) -> String {
    slack_mentions(&cut_mrkdwn(&escape(&fallback_text(reply)), MAX_TEXT))
}

/// The headline, or (if a reply has none) the first thing it says, so Slack always has a text.
fn fallback_text(reply: &Message) -> String {
    if !is_blank(&reply.text) {
        return reply.text.trim().to_string();
    }
    let first = reply.sections.iter().find_map(|s| {
        [s.heading.as_deref(), s.body.as_deref()].into_iter().flatten().find(|t| !is_blank(t)).map(str::to_string)
    });
    first.map(|t| t.trim().to_string()).unwrap_or_else(|| "nudge".to_string())
}

fn section_blocks(section: &Section, ids: &mut ActionIds) -> Vec<Value> {
    let mut out = Vec::new();
    let heading = section.heading.as_deref().filter(|h| !is_blank(h)).map(|h| {
        // Bold stops at a line break, so a heading is kept to one line.
        let line = h.split_whitespace().collect::<Vec<_>>().join(" ");
        format!("*{}*", cut_mrkdwn(&escape(&line), MAX_HEADING))
    });
    let body = section.body.as_deref().filter(|b| !is_blank(b)).map(|b| escape(b.trim()));
    let text = match (heading, body) {
        (Some(h), Some(b)) => Some(format!("{h}\n{b}")),
        (h, b) => h.or(b),
    };
    let fields: Vec<Value> = section.fields.iter().filter_map(|f| field(&f.label, &f.value)).collect();
    let mut chunks = fields.chunks(MAX_FIELDS_PER_SECTION);
    if let Some(text) = text {
        // A long text goes into several blocks of whole lines; the fields sit under the last.
        let pieces = text_pieces(&text);
        let last = pieces.len().saturating_sub(1);
        for (n, piece) in pieces.into_iter().enumerate() {
            let mut block = json!({"type": "section", "text": mrkdwn(piece)});
            if n == last
                && let Some(first) = chunks.next()
            {
                block["fields"] = Value::Array(first.to_vec());
            }
            out.push(block);
        }
    }
    out.extend(chunks.map(|chunk| json!({"type": "section", "fields": chunk})));
    if let Some(metric) = &section.metric {
        out.push(context(&metric_line(metric)));
    }
    let buttons: Vec<Value> = section.actions.iter().map(|action| button(action, ids)).collect();
    out.extend(buttons.chunks(MAX_ELEMENTS_PER_ACTIONS).map(|chunk| json!({"type": "actions", "elements": chunk})));
    out
}

/// A section's text in pieces Slack accepts: as many whole lines as fit in each; only a single line
/// longer than a piece may be is cut, at a word.
fn text_pieces(text: &str) -> Vec<String> {
    let units = |t: &str| t.chars().map(char::len_utf16).sum::<usize>();
    let mut pieces = Vec::new();
    let mut current: Option<String> = None;
    for line in text.split('\n') {
        let line = if units(line) > MAX_TEXT { cut_mrkdwn(line, MAX_TEXT) } else { line.to_string() };
        current = Some(match current.take() {
            Some(piece) if units(&piece) + 1 + units(&line) > MAX_TEXT => {
                pieces.push(piece);
                line
            }
            Some(piece) => format!("{piece}\n{line}"),
            None => line,
        });
    }
    pieces.extend(current);
    pieces
}

/// `*Label*` over its value, as Slack shows section fields in two columns.
fn field(label: &str, value: &str) -> Option<Value> {
    let label = label.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = match (label.is_empty(), is_blank(value)) {
        (true, true) => return None,
        (false, true) => format!("*{}*", escape(&label)),
        (true, false) => escape(value.trim()),
        (false, false) => format!("*{}*\n{}", escape(&label), escape(value.trim())),
    };
    Some(mrkdwn(cut_mrkdwn(&text, MAX_FIELD_TEXT)))
}

/// `activation: 0.31 → *0.34* → 0.36 (60%)  ▁▅█`: the reading that matters now stands out.
fn metric_line(metric: &MetricRow) -> String {
    let now = match metric.now.as_deref().filter(|n| !is_blank(n)) {
        Some(now) => format!("*{}*", escape(now.trim())),
        None => "–".to_string(),
    };
    let mut line = format!(
        "{}: {} → {now} → {}",
        escape(metric.name.trim()),
        escape(metric.baseline.trim()),
        escape(metric.target.trim())
    );
    if let Some(percent) = metric.progress_percent {
        line.push_str(&format!(" ({percent}%)"));
    }
    if !metric.sparkline.is_empty() {
        line.push_str(&format!("  {}", escape(&metric.sparkline)));
    }
    cut_mrkdwn(&line, MAX_TEXT)
}

/// Says how many sections were left out, and where to see them all when we know what they are.
fn more_note(hidden: &[&Section]) -> String {
    let n = hidden.len();
    let starts_with_id = |s: &Section, parse: fn(&str) -> bool| {
        s.heading.as_deref().and_then(|h| h.split_whitespace().next()).is_some_and(parse)
    };
    let all = |parse: fn(&str) -> bool| n > 0 && hidden.iter().all(|s| starts_with_id(s, parse));
    if all(|w| w.parse::<ExperimentRef>().is_ok()) {
        format!("…and {n} more; `/experiment list all` shows everything")
    } else if all(|w| w.parse::<PledgeRef>().is_ok()) {
        format!("…and {n} more; `/pledge list all` shows everything")
    } else {
        format!("…and {n} more")
    }
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [mrkdwn(cut_mrkdwn(text, MAX_TEXT))]})
}

/// A mrkdwn text object; a member nudge mentions becomes Slack's `<@U…>`, which notifies them.
fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": slack_mentions(&text)})
}

fn slack_mentions(text: &str) -> String {
    render_mentions(text, |id, _| format!("<@{id}>"))
}

/// A plain text object (no mentions there: a mention shows the name).
fn plain(text: &str, max: usize) -> Value {
    let text = render_mentions(text.trim(), |_, name| name.to_string());
    json!({"type": "plain_text", "text": cut_plain(&text, max), "emoji": true})
}

// ---------------------------------------------------------------------------------------------
// Buttons

/// The action id of a button for `kind`: `nudge.<kind>.<id>`, e.g. `nudge.update_metric.E-3`, unique per
/// message even when it lists many experiments.
pub fn action_id(kind: ActionKind) -> String {
    let (name, id) = action_parts(kind);
    let id = id.split_once('=').map_or(id.as_str(), |(id, _)| id);
    format!("{ACTION_PREFIX}.{name}.{id}")
}

/// The value of a button for `kind`: the short id it acts on, e.g. `E-3`.
pub fn action_value(kind: ActionKind) -> String {
    action_parts(kind).1
}

fn action_parts(kind: ActionKind) -> (&'static str, String) {
    match kind {
        ActionKind::StartExperiment(e) => ("start_experiment", e.to_string()),
        ActionKind::UpdateMetric(e) => ("update_metric", e.to_string()),
        ActionKind::Vote(e) => ("vote", e.to_string()),
        ActionKind::PledgeDone(p) => ("pledge_done", p.to_string()),
        ActionKind::PledgeExtend(p) => ("pledge_extend", p.to_string()),
        ActionKind::PledgeRelease(p) => ("pledge_release", p.to_string()),
        ActionKind::CloseExperiment(e) => ("close_experiment", e.to_string()),
        ActionKind::ExtendReview(e) => ("extend_review", e.to_string()),
        // The value carries the reading: `E-3=450.5`.
        ActionKind::RecordReading { experiment, value } => ("record_reading", format!("{experiment}={value}")),
    }
}

/// The action a clicked button stands for, from its action id and value; `None` for anything that
/// is not one of ours or whose id and value disagree.
pub fn parse_action(action_id: &str, value: &str) -> Option<ActionKind> {
    let rest = action_id.strip_prefix(ACTION_PREFIX)?.strip_prefix('.')?;
    let (name, id) = rest.split_once('.')?;
    // A repeated button in one message carries a `.2`, `.3` … suffix to keep its action id unique.
    let id = match id.rsplit_once('.') {
        Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => id,
        _ => id,
    };
    let experiment = || -> Option<ExperimentRef> {
        let from_value = value.parse::<ExperimentRef>().ok()?;
        (id.parse::<ExperimentRef>().ok()? == from_value).then_some(from_value)
    };
    let pledge = || -> Option<PledgeRef> {
        let from_value = value.parse::<PledgeRef>().ok()?;
        (id.parse::<PledgeRef>().ok()? == from_value).then_some(from_value)
    };
    match name {
        "start_experiment" => experiment().map(ActionKind::StartExperiment),
        "update_metric" => experiment().map(ActionKind::UpdateMetric),
        "vote" => experiment().map(ActionKind::Vote),
        "pledge_done" => pledge().map(ActionKind::PledgeDone),
        "pledge_extend" => pledge().map(ActionKind::PledgeExtend),
        "pledge_release" => pledge().map(ActionKind::PledgeRelease),
        "close_experiment" => experiment().map(ActionKind::CloseExperiment),
        "extend_review" => experiment().map(ActionKind::ExtendReview),
        "record_reading" => {
            let (from_value, number) = value.split_once('=')?;
            let experiment = from_value.parse::<ExperimentRef>().ok()?;
            let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite())?;
            (id.parse::<ExperimentRef>().ok()? == experiment).then_some(ActionKind::RecordReading { experiment, value })
        }
        _ => None,
    }
}

/// Action ids handed out in one message, so the same button shown twice still gets a unique id.
#[derive(Default)]
struct ActionIds(HashSet<String>);

impl ActionIds {
    fn unique(&mut self, kind: ActionKind) -> String {
        let base = action_id(kind);
        if self.0.insert(base.clone()) {
            return base;
        }
        let mut n = 2;
        loop {
            let candidate = format!("{base}.{n}");
            if self.0.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

fn button(action: &Action, ids: &mut ActionIds) -> Value {
    let label = if is_blank(&action.label) { default_label(action.kind) } else { action.label.as_str() };
    let mut button = json!({
        "type": "button",
        "text": plain(label, MAX_BUTTON_TEXT),
        "action_id": ids.unique(action.kind),
        "value": action_value(action.kind),
    });
    match action.style {
        ActionStyle::Default => {}
        ActionStyle::Primary => button["style"] = json!("primary"),
        ActionStyle::Danger => button["style"] = json!("danger"),
    }
    button
}

fn default_label(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::StartExperiment(_) => "Start",
        ActionKind::UpdateMetric(_) => "Update metric",
        ActionKind::Vote(_) => "Vote",
        ActionKind::PledgeDone(_) => "Done",
        ActionKind::PledgeExtend(_) => "Extend",
        ActionKind::PledgeRelease(_) => "Release",
        ActionKind::CloseExperiment(_) => "Close",
        ActionKind::ExtendReview(_) => "Extend review",
        ActionKind::RecordReading { .. } => "Record it",
    }
}

// ---------------------------------------------------------------------------------------------
// Modals

/// A neutral form as a Slack modal (`views.open` payload): its callback id names the form, each
/// input's block id (and action id) is the field's name, and `private_metadata` rides along.
pub fn modal(form: &Form, private_metadata: &str) -> Value {
    let mut blocks = Vec::new();
    if let Some(subject) = &form.subject {
        blocks
            .push(json!({"type": "section", "text": mrkdwn(cut_mrkdwn(&format!("*{}*", escape(subject)), MAX_TEXT))}));
    }
    if let Some(intro) = form.intro {
        blocks.push(context(intro));
    }
    for field in &form.fields {
        let element = match &field.input {
            Input::Text { max_chars, multiline, placeholder } => json!({
                "type": "plain_text_input",
                "action_id": field.name,
                "max_length": max_chars,
                "multiline": multiline,
                "placeholder": plain(placeholder, MAX_PLACEHOLDER),
            }),
            Input::Date { placeholder } => {
                json!({"type": "datepicker", "action_id": field.name, "placeholder": plain(placeholder, MAX_PLACEHOLDER)})
            }
            Input::Choice(options) => {
                let options: Vec<Value> = options
                    .iter()
                    .map(|(value, label)| json!({"text": plain(label, MAX_BUTTON_TEXT), "value": value}))
                    .collect();
                json!({"type": "radio_buttons", "action_id": field.name, "options": options})
            }
        };
        let mut block = json!({
            "type": "input",
            "block_id": field.name,
            "label": plain(&field.label, MAX_LABEL),
            "element": element,
            "optional": field.optional,
        });
        if let Some(hint) = &field.hint {
            block["hint"] = plain(hint, MAX_LABEL);
        }
        blocks.push(block);
    }
    blocks.truncate(MAX_MODAL_BLOCKS);
    json!({
        "type": "modal",
        "callback_id": form.kind.id(),
        "title": plain(&form.title, MAX_MODAL_TITLE),
        "submit": plain(form.submit, MAX_MODAL_TITLE),
        "close": plain("Cancel", MAX_MODAL_TITLE),
        "private_metadata": private_metadata,
        "blocks": blocks,
    })
}

/// Reads a submitted modal (`view.callback_id` and `view.state.values`) into the command it stands
/// for, through the one form reader every platform shares.
pub fn read_submission(callback_id: &str, values: &Value) -> Result<Command, FieldErrors> {
    form::read(callback_id, &answers(values))
}

/// `view.state.values` — `{block_id: {action_id: {type, value | selected_date | selected_option}}}`
/// — as the answers by field name. Anything odd in it is simply not an answer.
fn answers(values: &Value) -> Answers {
    let Some(blocks) = values.as_object() else { return Answers::new() };
    blocks
        .iter()
        .filter_map(|(block, entries)| {
            // Our action ids equal the block ids; the only entry is taken if an older form used another.
            let state = entries.get(block).or_else(|| entries.as_object().filter(|o| o.len() == 1)?.values().next())?;
            let text = state
                .get("value")
                .and_then(Value::as_str)
                .or_else(|| state.get("selected_date").and_then(Value::as_str))
                .or_else(|| state.get("selected_option")?.get("value")?.as_str())?;
            (!is_blank(text)).then(|| (block.clone(), trim(text).to_string()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Text

/// Escapes the three characters Slack's mrkdwn gives meaning to, so user text can't mention
/// `<!channel>` or hide a link; backticks and other formatting are kept on purpose.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts already-escaped mrkdwn to `max`, ending with "…", without leaving half an `&amp;`.
fn cut_mrkdwn(text: &str, max: usize) -> String {
    cut(text, max, true)
}

fn cut_plain(text: &str, max: usize) -> String {
    cut(text, max, false)
}

/// Lengths are counted in UTF-16 units, which is never fewer than characters: whichever way Slack
/// counts, a cut text fits.
fn cut(text: &str, max: usize, escaped: bool) -> String {
    let units = |t: &str| t.chars().map(char::len_utf16).sum::<usize>();
    if units(text) <= max {
        return text.to_string();
    }
    let mut kept = String::new();
    let mut used = 0;
    for c in text.chars() {
        // Keep room for the "…" (one unit).
        if used + c.len_utf16() > max.saturating_sub(1) {
            break;
        }
        used += c.len_utf16();
        kept.push(c);
    }
    // Never mid-word: back to the last space, unless that would throw most of the text away.
    if text[kept.len()..].starts_with(|c: char| !c.is_whitespace())
        && let Some(at) = kept.rfind(char::is_whitespace)
        && at >= kept.len() / 2
    {
        kept.truncate(at);
    }
    if escaped
        && let Some(at) = kept.rfind('&')
        && !kept[at..].contains(';')
    {
        kept.truncate(at);
    }
    let trimmed = kept.trim_end().len();
    kept.truncate(trimmed);
    kept.push('…');
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Field;
    use crate::message::form as forms;

    const E3: ExperimentRef = ExperimentRef(3);
    const P4: PledgeRef = PledgeRef(4);

    fn every_kind() -> Vec<ActionKind> {
        vec![
            ActionKind::StartExperiment(E3),
            ActionKind::UpdateMetric(ExperimentRef(12)),
            ActionKind::Vote(ExperimentRef(999_999_999_999)),
            ActionKind::PledgeDone(P4),
            ActionKind::PledgeExtend(PledgeRef(70)),
            ActionKind::PledgeRelease(PledgeRef(1)),
            ActionKind::CloseExperiment(E3),
            ActionKind::ExtendReview(E3),
            ActionKind::RecordReading { experiment: E3, value: 450.5 },
            ActionKind::RecordReading { experiment: E3, value: -0.25 },
        ]
    }

    fn metric_row() -> MetricRow {
        MetricRow {
            name: "activation".into(),
            baseline: "0.31".into(),
            now: Some("0.34".into()),
            target: "0.36".into(),
            progress_percent: Some(60),
            sparkline: "▁▅█".into(),
        }
    }

    /// An experiment as `/experiment list` shows it: heading, fields, metric row, a button.
    fn experiment_section(n: i64) -> Section {
        Section::heading(format!("E-{n} · Shorter signup form"))
            .with_field("Status", "running")
            .with_field("Owner", "Ana")
            .with_metric(metric_row())
            .with_action("Update metric", ActionKind::UpdateMetric(ExperimentRef(n)), ActionStyle::Primary)
    }

    fn all_text_objects(value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        match value {
            Value::Object(map) => {
                if let (Some(Value::String(kind)), Some(Value::String(text))) = (map.get("type"), map.get("text"))
                    && (kind == "mrkdwn" || kind == "plain_text")
                {
                    out.push(text.clone());
                }
                map.values().for_each(|v| out.extend(all_text_objects(v)));
            }
            Value::Array(items) => items.iter().for_each(|v| out.extend(all_text_objects(v))),
            _ => {}
        }
        out
    }

    fn buttons(blocks: &[Value]) -> Vec<Value> {
        blocks
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    fn units(text: &str) -> usize {
        text.chars().map(char::len_utf16).sum()
    }

    // --- messages ---------------------------------------------------------------------------------

    #[test]
    fn a_short_reply_shows_its_headline_then_each_sections_text_fields_metric_and_buttons() {
        let reply = Message::channel("E-3 is running").with_section(
            Section::heading("E-3 · Shorter signup form")
                .with_body("Fewer fields get more people through")
                .with_field("Status", "running")
                .with_field("Owner", "Ana")
                .with_metric(metric_row())
                .with_action("Update metric", ActionKind::UpdateMetric(E3), ActionStyle::Primary)
                .with_action("Vote", ActionKind::Vote(E3), ActionStyle::Default),
        );
        let blocks = blocks(&reply);
        assert_eq!(blocks.len(), 4, "{blocks:#?}");
        assert_eq!(blocks[0], json!({"type": "section", "text": {"type": "mrkdwn", "text": "E-3 is running"}}));
        assert_eq!(blocks[1]["text"]["text"], "*E-3 · Shorter signup form*\nFewer fields get more people through");
        assert_eq!(blocks[1]["fields"][0]["text"], "*Status*\nrunning");
        assert_eq!(blocks[1]["fields"][1]["text"], "*Owner*\nAna");
        assert_eq!(blocks[2]["type"], "context");
        assert_eq!(blocks[2]["elements"][0]["text"], "activation: 0.31 → *0.34* → 0.36 (60%)  ▁▅█");
        let buttons = buttons(&blocks);
        assert_eq!(buttons[0]["text"]["text"], "Update metric");
        assert_eq!(buttons[0]["style"], "primary");
        assert!(buttons[1].get("style").is_none(), "a default button carries no style: {}", buttons[1]);
    }

    #[test]
    fn a_metric_without_a_reading_yet_shows_a_dash_for_now() {
        let row = MetricRow { now: None, progress_percent: None, sparkline: String::new(), ..metric_row() };
        assert_eq!(metric_line(&row), "activation: 0.31 → – → 0.36");
    }

    #[test]
    fn sections_are_divided_when_there_is_room() {
        let reply =
            Message::private("2 experiments").with_section(experiment_section(1)).with_section(experiment_section(2));
        let blocks = blocks(&reply);
        assert_eq!(blocks.iter().filter(|b| b["type"] == "divider").count(), 1);
        assert_ne!(blocks.last().unwrap()["type"], "divider");
    }

    #[test]
    fn a_reply_with_many_sections_stays_within_50_blocks_and_says_how_many_more() {
        let mut reply = Message::private("40 experiments in #growth");
        for n in 1..=40 {
            reply = reply.with_section(experiment_section(n));
        }
        let blocks = blocks(&reply);
        assert!(blocks.len() <= MAX_MESSAGE_BLOCKS, "{} blocks", blocks.len());
        let shown = blocks.iter().filter(|b| b["text"]["text"].as_str().is_some_and(|t| t.starts_with("*E-"))).count();
        let note = blocks.last().unwrap();
        assert_eq!(note["type"], "context");
        assert_eq!(
            note["elements"][0]["text"],
            format!("…and {} more; `/experiment list all` shows everything", 40 - shown)
        );
        assert!(shown >= 10, "only {shown} experiments shown");
    }

    #[test]
    fn pledges_and_other_sections_cut_short_get_their_own_note() {
        let mut pledges = Message::private("Your open pledges");
        let mut other = Message::private("Settings");
        for n in 1..=60 {
            pledges = pledges.with_section(Section::heading(format!("P-{n} · call five customers")).with_action(
                "Done",
                ActionKind::PledgeDone(PledgeRef(n)),
                ActionStyle::Primary,
            ));
            other = other.with_section(Section::body(format!("line {n}")));
        }
        let blocks_of_pledges = blocks(&pledges);
        assert!(blocks_of_pledges.len() <= MAX_MESSAGE_BLOCKS);
        let note = blocks_of_pledges.last().unwrap()["elements"][0]["text"].as_str().unwrap().to_string();
        assert!(note.starts_with("…and ") && note.ends_with("more; `/pledge list all` shows everything"), "{note}");
        let blocks_of_other = blocks(&other);
        assert_eq!(blocks_of_other.len(), MAX_MESSAGE_BLOCKS);
        assert_eq!(blocks_of_other.last().unwrap()["elements"][0]["text"], "…and 12 more");
    }

    #[test]
    fn one_enormous_section_is_shown_in_part_rather_than_not_at_all() {
        let mut section = Section::heading("E-1 · everything");
        for n in 0..700 {
            section = section.with_field(format!("F{n}"), "x");
        }
        let blocks = blocks(&Message::private("big").with_section(section));
        assert!(blocks.len() <= MAX_MESSAGE_BLOCKS);
        assert_eq!(blocks[1]["text"]["text"], "*E-1 · everything*");
        assert!(blocks.iter().all(|b| b["fields"].as_array().is_none_or(|f| f.len() <= 10)));
    }

    #[test]
    fn fields_beyond_ten_go_into_further_section_blocks() {
        let mut section = Section::heading("Settings for #growth");
        for n in 0..23 {
            section = section.with_field(format!("Setting {n}"), "on");
        }
        let blocks = blocks(&Message::private("⚙️ nudge settings").with_section(section));
        let counts: Vec<usize> = blocks[1..].iter().map(|b| b["fields"].as_array().map_or(0, Vec::len)).collect();
        assert_eq!(counts, vec![10, 10, 3]);
    }

    #[test]
    fn long_text_is_cut_to_3000_characters_with_an_ellipsis() {
        let long = "🧪 tried ".repeat(2000);
        let reply = Message::channel(long.clone()).with_section(
            Section::heading(long.clone())
                .with_body(long.clone())
                .with_field(long.clone(), long.clone())
                .with_metric(MetricRow { name: long.clone(), ..metric_row() })
                .with_action(long.clone(), ActionKind::Vote(E3), ActionStyle::Default),
        );
        let response = command_response(&reply);
        let texts = all_text_objects(&response["blocks"]);
        assert!(texts.len() >= 5);
        for text in &texts {
            assert!(units(text) <= MAX_TEXT, "{} units", units(text));
        }
        for field in response["blocks"][2]["fields"].as_array().unwrap() {
            assert!(units(field["text"].as_str().unwrap()) <= MAX_FIELD_TEXT);
        }
        let button_text =
            buttons(response["blocks"].as_array().unwrap())[0]["text"]["text"].as_str().unwrap().to_string();
        assert!(button_text.chars().count() <= MAX_BUTTON_TEXT && button_text.ends_with('…'), "{button_text}");
        let text = response["text"].as_str().unwrap();
        // Cut at a word: what is kept is the text up to a space.
        let at_a_word = |cut: &str| {
            let kept = cut.trim_start_matches('*').trim_end_matches('*').trim_end_matches('…');
            cut.trim_end_matches('*').ends_with('…') && long.starts_with(kept) && long[kept.len()..].starts_with(' ')
        };
        assert!(units(text) <= MAX_TEXT && at_a_word(text), "{text}");
        // The heading and the body line are each cut, at a word, into blocks of their own.
        assert!(at_a_word(response["blocks"][1]["text"]["text"].as_str().unwrap()));
        assert!(at_a_word(response["blocks"][2]["text"]["text"].as_str().unwrap()));
    }

    #[test]
    fn a_long_body_goes_into_several_blocks_of_whole_lines() {
        let lines: Vec<String> =
            (1..=80).map(|n| format!("✅ Member {n} kept P-{n}: write the customer interview summary")).collect();
        let reply = Message::channel("🎉 Small wins in #growth").with_section(Section::body(lines.join("\n")));
        let blocks = blocks(&reply);
        let pieces: Vec<&str> = blocks[1..].iter().map(|b| b["text"]["text"].as_str().unwrap()).collect();
        assert!(pieces.len() >= 2, "{pieces:?}");
        for piece in &pieces {
            assert!(units(piece) <= MAX_TEXT);
            assert!(!piece.contains('…'), "nothing is cut");
        }
        let shown: Vec<&str> = pieces.iter().flat_map(|p| p.lines()).collect();
        assert_eq!(shown, lines.iter().map(String::as_str).collect::<Vec<_>>(), "every line, whole, in order");
    }

    #[test]
    fn a_cut_text_ends_at_a_word() {
        assert_eq!(cut_plain("call five customers", 12), "call five…");
        assert_eq!(cut_plain("supercalifragilistic", 6), "super…", "one long word is cut where it must be");
    }

    #[test]
    fn cutting_never_leaves_half_an_escaped_character() {
        for padding in 0..6 {
            let text = format!("{}{}", "a".repeat(padding), "<".repeat(3000));
            let cut = cut_mrkdwn(&escape(&text), MAX_TEXT);
            assert!(units(&cut) <= MAX_TEXT);
            let before_ellipsis = cut.trim_end_matches('…').trim_start_matches('a');
            assert_eq!(before_ellipsis, "&lt;".repeat(before_ellipsis.len() / 4), "{padding}");
        }
        assert_eq!(cut_plain("héllo wörld", 6), "héllo…");
    }

    #[test]
    fn a_member_nudge_mentions_is_notified_and_a_button_shows_their_name() {
        let asked = format!("{}, keep it, move it or release it", crate::message::mention("U0ANA", "Ana"));
        let reply = Message::channel(asked.clone()).with_section(Section::body(asked.clone()).with_action(
            asked,
            ActionKind::PledgeDone(P4),
            ActionStyle::Primary,
        ));
        let response = command_response(&reply);
        assert_eq!(response["text"], "<@U0ANA>, keep it, move it or release it");
        assert_eq!(response["blocks"][1]["text"]["text"], "<@U0ANA>, keep it, move it or release it");
        assert_eq!(
            buttons(response["blocks"].as_array().unwrap())[0]["text"]["text"],
            "Ana, keep it, move it or release it"
        );
    }

    #[test]
    fn a_channel_mention_or_a_link_in_user_text_comes_out_escaped() {
        let sneaky = "<!channel> see <https://evil.example|this> & `/experiment list`";
        let reply = Message::channel(sneaky).with_section(
            Section::heading(sneaky).with_body(sneaky).with_field(sneaky, sneaky).with_metric(MetricRow {
                name: sneaky.into(),
                now: Some(sneaky.into()),
                ..metric_row()
            }),
        );
        for rendered in [command_response(&reply), message(&reply)] {
            let json = rendered.to_string();
            assert!(!json.contains('<') && !json.contains('>'), "{json}");
            assert!(json.contains("&lt;!channel&gt; see &lt;https://evil.example|this&gt; &amp; `/experiment list`"));
        }
        let modal = modal(&forms::close(E3, sneaky), "C1").to_string();
        assert!(!modal.contains("<!channel>") && modal.contains("&lt;!channel&gt;"), "{modal}");
    }

    #[test]
    fn command_response_is_ephemeral_or_in_channel_by_visibility_and_always_has_text() {
        let private = command_response(&Message::private("Only you can see this"));
        assert_eq!(private["response_type"], "ephemeral");
        assert_eq!(private["text"], "Only you can see this");
        let channel = command_response(&Message::channel("E-3 is running"));
        assert_eq!(channel["response_type"], "in_channel");
        assert_eq!(channel["text"], "E-3 is running");
        for reply in [
            Message::private(""),
            Message::channel("  \u{200B} "),
            Message::private("").with_section(Section::default()),
        ] {
            let response = command_response(&reply);
            assert!(!response["text"].as_str().unwrap().trim().is_empty(), "{response}");
            assert!(!response["blocks"].as_array().unwrap().is_empty());
        }
        let headed = command_response(&Message::private("").with_section(Section::heading("P-4 · call Ana")));
        assert_eq!(headed["text"], "P-4 · call Ana");
    }

    #[test]
    fn a_message_for_posting_has_text_and_blocks_but_no_response_type() {
        let reply = Message::channel("Monday check-in").with_section(experiment_section(3));
        let posted = message(&reply);
        assert!(posted.get("response_type").is_none());
        assert_eq!(posted["text"], "Monday check-in");
        assert_eq!(posted["blocks"], json!(blocks(&reply)));
    }

    // --- buttons ----------------------------------------------------------------------------------

    #[test]
    fn every_action_kind_round_trips_through_its_button() {
        let mut section = Section::heading("E-3 · all the buttons");
        for kind in every_kind() {
            section = section.with_action("Go", kind, ActionStyle::Default);
        }
        let blocks = blocks(&Message::private("buttons").with_section(section));
        let buttons = buttons(&blocks);
        assert_eq!(buttons.len(), every_kind().len());
        for (button, kind) in buttons.iter().zip(every_kind()) {
            let (id, value) = (button["action_id"].as_str().unwrap(), button["value"].as_str().unwrap());
            assert_eq!(parse_action(id, value), Some(kind), "{id} {value}");
        }
        assert_eq!(action_id(ActionKind::UpdateMetric(E3)), "nudge.update_metric.E-3");
        assert_eq!(action_value(ActionKind::UpdateMetric(E3)), "E-3");
    }

    #[test]
    fn a_check_in_with_many_experiments_has_a_distinct_action_id_on_every_button() {
        let mut reply = Message::channel("Monday check-in");
        for n in 1..=12 {
            reply = reply.with_section(experiment_section(n));
        }
        // The same button twice (say, a pledge shown in two sections) still gets its own id.
        let twice =
            Section::heading("P-4 · call Ana").with_action("Done", ActionKind::PledgeDone(P4), ActionStyle::Primary);
        reply = reply.with_section(twice.clone()).with_section(twice);
        let buttons = buttons(&blocks(&reply));
        let ids: HashSet<&str> = buttons.iter().map(|b| b["action_id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), buttons.len());
        for button in &buttons {
            assert!(parse_action(button["action_id"].as_str().unwrap(), button["value"].as_str().unwrap()).is_some());
        }
        assert!(ids.contains("nudge.pledge_done.P-4.2"));
    }

    #[test]
    fn buttons_are_grouped_at_most_25_to_an_actions_block() {
        let mut section = Section::heading("Backlog");
        for n in 1..=30 {
            section =
                section.with_action(format!("Vote E-{n}"), ActionKind::Vote(ExperimentRef(n)), ActionStyle::Default);
        }
        let blocks = blocks(&Message::private("vote").with_section(section));
        let sizes: Vec<usize> =
            blocks.iter().filter(|b| b["type"] == "actions").map(|b| b["elements"].as_array().unwrap().len()).collect();
        assert_eq!(sizes, vec![25, 5]);
    }

    #[test]
    fn anything_that_is_not_one_of_our_buttons_is_ignored() {
        for (id, value) in [
            ("", ""),
            ("nudge", "E-3"),
            ("nudge.", "E-3"),
            ("nudge.vote", "E-3"),
            ("nudge.vote.", ""),
            ("nudge.fly.E-3", "E-3"),
            ("nudge.vote.E-3", "E-4"),
            ("nudge.vote.E-3", "P-3"),
            ("nudge.pledge_done.E-3", "E-3"),
            ("nudge.vote.E-3.x", "E-3"),
            ("other.vote.E-3", "E-3"),
            ("nudgevote.E-3", "E-3"),
            ("nudge.vote.E-0", "E-0"),
            ("nudge.vote.E-99999999999999999999", "E-99999999999999999999"),
            ("nudge.vote.🎉", "🎉"),
        ] {
            assert_eq!(parse_action(id, value), None, "{id} {value}");
        }
    }

    // --- modals -----------------------------------------------------------------------------------

    fn every_modal(metadata: &str) -> Vec<Value> {
        let big_e = ExperimentRef(999_999_999_999);
        let big_p = PledgeRef(999_999_999_999);
        let long = "a very long title ".repeat(300);
        [
            forms::propose(),
            forms::close(E3, "Shorter signup form"),
            forms::close(big_e, &long),
            forms::update_metric(E3, "Shorter signup form", "activation rate", Some("%")),
            forms::update_metric(big_e, &long, &long, None),
            forms::extend_pledge(P4, "call five customers"),
            forms::extend_pledge(big_p, &long),
            forms::release_pledge(P4, "call five customers"),
            forms::release_pledge(big_p, ""),
        ]
        .iter()
        .map(|form| modal(form, metadata))
        .collect()
    }

    fn inputs(modal: &Value) -> Vec<Value> {
        modal["blocks"].as_array().unwrap().iter().filter(|b| b["type"] == "input").cloned().collect()
    }

    #[test]
    fn every_modal_fits_slack_limits_and_passes_the_private_metadata_through() {
        let metadata = r#"{"channel":"C0123","note":"<kept as is>"}"#;
        for modal in every_modal(metadata) {
            assert_eq!(modal["type"], "modal");
            assert_eq!(modal["private_metadata"], metadata);
            assert!(modal["blocks"].as_array().unwrap().len() <= MAX_MODAL_BLOCKS);
            for key in ["title", "submit", "close"] {
                let text = modal[key]["text"].as_str().unwrap();
                assert!(!text.is_empty() && text.chars().count() <= MAX_MODAL_TITLE, "{key}: {text}");
            }
            assert!(!modal["callback_id"].as_str().unwrap().is_empty());
            for text in all_text_objects(&modal["blocks"]) {
                assert!(units(&text) <= MAX_TEXT);
            }
            let inputs = inputs(&modal);
            assert!(!inputs.is_empty());
            let ids: HashSet<&str> = inputs.iter().map(|b| b["block_id"].as_str().unwrap()).collect();
            assert_eq!(ids.len(), inputs.len(), "block ids are unique");
            for input in &inputs {
                assert_eq!(input["element"]["action_id"], input["block_id"]);
            }
        }
    }

    #[test]
    fn each_form_becomes_the_modal_slack_shows() {
        let ids = |modal: &Value| -> Vec<String> {
            inputs(modal).iter().map(|b| b["block_id"].as_str().unwrap().to_string()).collect()
        };
        let propose = modal(&forms::propose(), "C1");
        assert_eq!(propose["callback_id"], "propose");
        assert_eq!(ids(&propose), ["title", "hypothesis", "metric", "baseline", "target", "review"]);
        let review = &inputs(&propose)[5];
        assert_eq!(
            (review["element"]["type"].as_str(), review["optional"].as_bool()),
            (Some("datepicker"), Some(true))
        );
        assert_eq!(inputs(&propose)[0]["element"]["max_length"], 120);
        assert_eq!(inputs(&propose)[1]["element"]["multiline"], true);

        let close = modal(&forms::close(E3, "Shorter signup form"), "C1");
        assert_eq!(close["callback_id"], "close:E-3");
        assert!(close.to_string().contains("Shorter signup form"));
        let outcome = &inputs(&close)[0];
        let options: Vec<&str> =
            outcome["element"]["options"].as_array().unwrap().iter().map(|o| o["value"].as_str().unwrap()).collect();
        assert_eq!(options, ["won", "lost", "inconclusive"]);

        let update = modal(&forms::update_metric(E3, "Shorter signup form", "activation rate", Some("%")), "C1");
        assert_eq!(update["callback_id"], "update:E-3");
        assert_eq!(inputs(&update)[0]["label"]["text"], "activation rate now (%)");
        assert_eq!(inputs(&update)[1]["optional"], true);
        let release = modal(&forms::release_pledge(P4, "call five customers"), "C1");
        assert!(release.to_string().contains("not breaking it"));
    }

    // --- submissions ------------------------------------------------------------------------------

    /// `view.state.values` as Slack sends it, from (block id, element type, entered value).
    fn state(entries: &[(&str, &str, Option<&str>)]) -> Value {
        let mut values = serde_json::Map::new();
        for (block, kind, entered) in entries {
            let element = match *kind {
                "datepicker" => json!({"type": kind, "selected_date": entered}),
                "radio_buttons" | "static_select" => json!({
                    "type": kind,
                    "selected_option": entered.map(|v| json!({"text": {"type": "plain_text", "text": v}, "value": v})),
                }),
                _ => json!({"type": kind, "value": entered}),
            };
            values.insert(block.to_string(), json!({ *block: element }));
        }
        Value::Object(values)
    }

    #[test]
    fn a_submission_is_read_from_each_kind_of_slack_input() {
        let values =
            state(&[("outcome", "static_select", Some("won")), ("learning", "plain_text_input", Some("Shorter wins"))]);
        assert!(matches!(
            read_submission("close:E-3", &values),
            Ok(Command::Experiment(crate::commands::ExperimentCommand::Close {
                outcome: crate::domain::experiment::Outcome::Won,
                ..
            }))
        ));
        let picked = state(&[("due", "datepicker", Some("2026-12-01"))]);
        assert!(matches!(read_submission("extend:P-4", &picked), Ok(Command::Pledge(_))));
        let errors = read_submission("propose", &state(&[("title", "plain_text_input", Some(&"t".repeat(143)))]))
            .expect_err("incomplete");
        assert_eq!(errors["title"], "the title is 143 characters; keep it to 120");
        assert_eq!(
            read_submission("vote:E-3", &json!({})).unwrap_err().keys().collect::<Vec<_>>(),
            [GENERAL_ERROR_KEY]
        );
    }

    #[test]
    fn empty_missing_null_or_odd_values_never_panic_and_never_pass() {
        let odd = [
            json!(null),
            json!({}),
            json!([]),
            json!("values"),
            json!(42),
            json!({"title": null, "outcome": [], "due": 3}),
            json!({"title": {"title": null}, "value": {"value": {"value": 5}}, "due": {"due": {"selected_date": 20261201}}}),
            json!({"outcome": {"outcome": {"selected_option": null}}, "reason": {"a": {"value": "x"}, "b": {"value": "y"}}}),
            json!({"outcome": {"outcome": {"selected_option": {"value": "maybe"}}}, "learning": {"learning": {"value": ""}}}),
            state(&[("title", "plain_text_input", Some("")), ("value", "plain_text_input", Some("\u{200B}"))]),
        ];
        for callback_id in ["propose", "close:E-3", "update:E-3", "extend:P-4", "release:P-4"] {
            for values in &odd {
                let errors = read_submission(callback_id, values).expect_err("never passes");
                assert!(!errors.is_empty(), "{callback_id} {values}");
            }
        }
    }

    #[test]
    fn a_modal_filled_in_as_slack_would_reads_back_into_its_command() {
        // Fill every input of each modal by its element type, as Slack would submit it.
        let fill = |modal: &Value, text: &str| -> Value {
            let entries: Vec<(String, String, String)> = inputs(modal)
                .iter()
                .map(|input| {
                    let kind = input["element"]["type"].as_str().unwrap().to_string();
                    let entered = match kind.as_str() {
                        "datepicker" => "2026-12-01".to_string(),
                        "radio_buttons" => input["element"]["options"][0]["value"].as_str().unwrap().to_string(),
                        _ => text.to_string(),
                    };
                    (input["block_id"].as_str().unwrap().to_string(), kind, entered)
                })
                .collect();
            let borrowed: Vec<(&str, &str, Option<&str>)> =
                entries.iter().map(|(b, k, e)| (b.as_str(), k.as_str(), Some(e.as_str()))).collect();
            state(&borrowed)
        };
        let cases = [
            (modal(&forms::propose(), "C1"), "Propose"),
            (modal(&forms::close(E3, "T"), "C1"), "Close"),
            (modal(&forms::update_metric(E3, "T", "activation", None), "C1"), "Update"),
            (modal(&forms::extend_pledge(P4, "call Ana"), "C1"), "Extend"),
            (modal(&forms::release_pledge(P4, "call Ana"), "C1"), "Release"),
        ];
        for (modal, expected) in cases {
            let callback_id = modal["callback_id"].as_str().unwrap();
            let mut values = fill(&modal, "12");
            if callback_id == "propose" {
                values["metric"]["metric"]["value"] = json!("activation");
                values["target"]["target"]["value"] = json!("15");
            }
            let command = read_submission(callback_id, &values).unwrap_or_else(|e| panic!("{callback_id}: {e:?}"));
            assert!(format!("{command:?}").contains(expected), "{callback_id}: {command:?}");
        }
    }

    #[test]
    fn field_text_is_label_over_value_and_blank_fields_are_left_out() {
        assert_eq!(field("Due", "fri"), Some(mrkdwn("*Due*\nfri".into())));
        assert_eq!(field(" ", "fri"), Some(mrkdwn("fri".into())));
        assert_eq!(field("", " "), None);
        let section =
            Section { fields: vec![Field { label: String::new(), value: String::new() }], ..Section::default() };
        assert_eq!(blocks(&Message::private("x").with_section(section)).len(), 1);
    }
}
