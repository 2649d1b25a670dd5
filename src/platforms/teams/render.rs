//! The neutral message model as Adaptive Cards 1.5 (the most Teams renders): a card with a plain-text
//! fallback, mentions as `<at>…</at>` with their `msteams.entities`, buttons as `Action.Execute`
//! with an `Action.Submit` object as fallback, and forms as cards with labelled inputs. Command
//! names are shown as people type them in Teams (`@nudge experiment …`).

use serde_json::{Value, json};

use crate::commands::form::{Answers, FieldErrors, GENERAL};
use crate::message::form::{Form, Input};
use crate::message::{ActionKind, ActionStyle, Message, Section, render_mentions};

pub const CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// The verb of every button nudge puts on a card; what it does travels in its data.
pub const VERB_ACTION: &str = "nudge.action";
/// The verb of a form's submit button.
pub const VERB_FORM: &str = "nudge.form";
/// Data keys: the button's action, or the form's id.
pub const DATA_ACTION: &str = "nudgeAction";
pub const DATA_FORM: &str = "nudgeForm";
/// Set on a form nudge posted as its own message (not one opened in place of a clicked card): its
/// result replaces it for everyone.
pub const DATA_POSTED: &str = "nudgePosted";
/// Set on the buttons of a card nudge posted as an answer in the conversation: what a click there
/// does for the team replaces that card for everyone.
pub const DATA_REPLACE: &str = "nudgeReplace";
/// Teams refuses activities over about 28 KB; nudge stays under it with room for the envelope.
pub const MAX_ACTIVITY_BYTES: usize = 28 * 1024;

/// How people type nudge's commands in Teams: after an @mention, with no slash.
pub fn teams_form(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    let mut previous: Option<char> = None;
    'scan: while !rest.is_empty() {
        let at_boundary = previous.is_none_or(|c| c.is_whitespace() || "`(\"'“‘[".contains(c));
        if at_boundary {
            for (slash, said) in
                [("/experiment", "@nudge experiment"), ("/pledge", "@nudge pledge"), ("/nudge", "@nudge")]
            {
                if let Some(after) = rest.strip_prefix(slash)
                    && !after.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                {
                    out.push_str(said);
                    previous = slash.chars().last();
                    rest = after;
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        previous = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Text as a TextBlock shows it: Teams' command form, no code marks (cards do not render them),
/// and mentions as `<at>Name</at>`, collected into `mentions`.
fn card_text(text: &str, mentions: &mut Vec<Value>) -> String {
    let text = teams_form(text).replace("```", "\n").replace('`', "");
    let found = std::cell::RefCell::new(std::mem::take(mentions));
    let shown = render_mentions(&text, |id, name| {
        let shown = format!("<at>{}</at>", escape(name));
        let mut found = found.borrow_mut();
        if !found.iter().any(|m| m["text"] == shown.as_str() && m["mentioned"]["id"] == id) {
            found.push(json!({"type": "mention", "text": shown, "mentioned": {"id": id, "name": name}}));
        }
        shown
    });
    *mentions = found.into_inner();
    shown
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn text_block(text: String) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true})
}

/// A button: `Action.Execute` (Universal Actions, answered in the invoke's response) with an
/// `Action.Submit` of the same data for clients that cannot execute.
fn button(title: &str, verb: &str, data: Value, style: ActionStyle) -> Value {
    let style = match style {
        ActionStyle::Default => "default",
        ActionStyle::Primary => "positive",
        ActionStyle::Danger => "destructive",
    };
    json!({
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": data,
        "style": style,
        "fallback": {"type": "Action.Submit", "title": title, "data": data, "style": style},
    })
}

fn action_data(kind: &ActionKind) -> Value {
    json!({ DATA_ACTION: kind })
}

/// The action a clicked button carries, if it is one of nudge's.
pub fn parse_action(data: &Value) -> Option<ActionKind> {
    serde_json::from_value(data.get(DATA_ACTION)?.clone()).ok()
}

/// The form a submitted card was, and its answers (every other string or number in the data).
pub fn parse_form(data: &Value) -> Option<(String, Answers)> {
    let form = data.get(DATA_FORM)?.as_str()?.to_string();
    let answers = data
        .as_object()?
        .iter()
        .filter(|(key, _)| ![DATA_FORM, DATA_ACTION, DATA_POSTED, DATA_REPLACE, "msteams"].contains(&key.as_str()))
        .filter_map(|(key, value)| {
            // Numbers may arrive as numbers or strings, depending on the client.
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((key.clone(), text))
        })
        .collect();
    Some((form, answers))
}

fn card(body: Vec<Value>, fallback: String, mentions: Vec<Value>) -> Value {
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
        "fallbackText": fallback,
        "msteams": {"width": "Full"},
    });
    if !mentions.is_empty() {
        card["msteams"]["entities"] = Value::Array(mentions);
    }
    card
}

fn section_items(section: &Section, mentions: &mut Vec<Value>) -> Vec<Value> {
    let mut items = Vec::new();
    if let Some(heading) = &section.heading {
        let mut block = text_block(card_text(heading, mentions));
        block["weight"] = json!("Bolder");
        block["separator"] = json!(true);
        block["spacing"] = json!("Medium");
        items.push(block);
    }
    if let Some(body) = &section.body {
        items.push(text_block(card_text(body, mentions)));
    }
    if let Some(metric) = &section.metric {
        let mut block = text_block(card_text(&metric.summary(), mentions));
        block["fontType"] = json!("Monospace");
        items.push(block);
    }
    if !section.fields.is_empty() {
        let facts: Vec<Value> = section
            .fields
            .iter()
            .map(|f| json!({"title": card_text(&f.label, mentions), "value": card_text(&f.value, mentions)}))
            .collect();
        items.push(json!({"type": "FactSet", "facts": facts}));
    }
    if !section.actions.is_empty() {
        let actions: Vec<Value> =
            section.actions.iter().map(|a| button(&a.label, VERB_ACTION, action_data(&a.kind), a.style)).collect();
        items.push(json!({"type": "ActionSet", "actions": actions}));
    }
    items
}

/// A message as an Adaptive Card.
pub fn card_of(message: &Message) -> Value {
    let mut mentions = Vec::new();
    let mut headline = text_block(card_text(&message.text, &mut mentions));
    headline["size"] = json!("Medium");
    let mut body = vec![headline];
    for section in &message.sections {
        body.extend(section_items(section, &mut mentions));
    }
    let mut card = card(body, teams_form(&message.plain_text()), mentions);
    if let Some(link) = &message.link {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": link.label, "url": link.url}]);
    }
    card
}

/// A message activity carrying a card, with its plain text for notifications and clients without cards.
pub fn activity_with(card: Value, text: &str) -> Value {
    json!({
        "type": "message",
        "text": teams_form(text).replace('`', ""),
        "textFormat": "plain",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}],
    })
}

/// A message as a message activity; one too big for Teams is cut to whole sections that fit.
pub fn activity(message: &Message) -> Value {
    let headline = render_mentions(&message.text, |_, name| name.to_string());
    let whole = activity_with(card_of(message), &headline);
    if fits(&whole) {
        return whole;
    }
    let mut kept = Message { sections: Vec::new(), ..message.clone() };
    for section in &message.sections {
        let mut trial = kept.clone();
        trial.sections.push(section.clone());
        let more = message.sections.len() - trial.sections.len();
        let mut shown = trial.clone();
        shown.sections.push(Section::body(format!("… and {more} more parts that do not fit in one Teams message.")));
        if !fits(&activity_with(card_of(&shown), &headline)) {
            break;
        }
        kept = trial;
    }
    let more = message.sections.len() - kept.sections.len();
    kept.sections.push(Section::body(format!("… and {more} more parts that do not fit in one Teams message.")));
    let cut = activity_with(card_of(&kept), &headline);
    if fits(&cut) { cut } else { activity_with(card_of(&Message { sections: Vec::new(), ..kept }), "") }
}

/// Marks every button of an activity's cards as [`DATA_REPLACE`].
pub fn replaceable(mut activity: Value) -> Value {
    fn mark(value: &mut Value) {
        match value {
            Value::Object(map) => {
                let button =
                    matches!(map.get("type").and_then(Value::as_str), Some("Action.Execute" | "Action.Submit"));
                if button && let Some(Value::Object(data)) = map.get_mut("data") {
                    data.insert(DATA_REPLACE.to_string(), Value::Bool(true));
                }
                map.values_mut().for_each(mark);
            }
            Value::Array(items) => items.iter_mut().for_each(mark),
            _ => {}
        }
    }
    mark(&mut activity);
    activity
}

pub fn fits(activity: &Value) -> bool {
    activity.to_string().len() < MAX_ACTIVITY_BYTES
}

/// A form as a card with labelled inputs; after a refused submission, `answers` fills them in
/// again and `errors` shows each problem under its field.
pub fn form_card(form: &Form, answers: &Answers, errors: &FieldErrors, posted: bool) -> Value {
    let mut mentions = Vec::new();
    let mut title = text_block(form.title.clone());
    title["size"] = json!("Medium");
    title["weight"] = json!("Bolder");
    let mut body = vec![title];
    if let Some(subject) = &form.subject {
        body.push(text_block(card_text(subject, &mut mentions)));
    }
    if let Some(intro) = form.intro {
        let mut block = text_block(intro.to_string());
        block["isSubtle"] = json!(true);
        body.push(block);
    }
    if let Some(general) = errors.get(GENERAL) {
        let mut block = text_block(general.clone());
        block["color"] = json!("Attention");
        body.push(block);
    }
    for field in &form.fields {
        let label = if field.optional { format!("{} (optional)", field.label) } else { field.label.clone() };
        let mut input = match &field.input {
            Input::Text { max_chars, multiline, placeholder } => json!({
                "type": "Input.Text",
                "maxLength": max_chars,
                "isMultiline": multiline,
                "placeholder": placeholder,
            }),
            Input::Date { .. } => json!({"type": "Input.Date"}),
            Input::Choice(choices) => json!({
                "type": "Input.ChoiceSet",
                "style": "expanded",
                "choices": choices.iter().map(|(value, title)| json!({"title": title, "value": value})).collect::<Vec<_>>(),
            }),
        };
        input["id"] = json!(field.name);
        input["label"] = json!(label);
        input["isRequired"] = json!(!field.optional);
        input["errorMessage"] = json!(format!("{} is needed", field.label));
        if let Some(value) = answers.get(field.name) {
            input["value"] = json!(value);
        }
        body.push(input);
        if let Some(hint) = &field.hint {
            let mut block = text_block(hint.clone());
            block["isSubtle"] = json!(true);
            block["size"] = json!("Small");
            block["spacing"] = json!("None");
            body.push(block);
        }
        if let Some(problem) = errors.get(field.name) {
            let mut block = text_block(problem.clone());
            block["color"] = json!("Attention");
            block["spacing"] = json!("None");
            body.push(block);
        }
    }
    let submit =
        button(form.submit, VERB_FORM, json!({ DATA_FORM: form.kind.id(), DATA_POSTED: posted }), ActionStyle::Primary);
    body.push(json!({"type": "ActionSet", "actions": [submit]}));
    card(body, format!("{}: fill in the card, or type the whole command.", form.title), mentions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::ExperimentRef;
    use crate::message::mention;

    #[test]
    fn slash_commands_are_shown_as_teams_mentions_and_nothing_else_changes() {
        assert_eq!(
            teams_form("Usage: `/experiment show <id>` or /nudge help; see /pledge list."),
            "Usage: `@nudge experiment show <id>` or @nudge help; see @nudge pledge list."
        );
        assert_eq!(
            teams_form("https://x.example/experiment and a/pledge /nudgeling"),
            "https://x.example/experiment and a/pledge /nudgeling"
        );
    }

    #[test]
    fn a_mention_becomes_an_at_tag_with_its_entity_and_buttons_execute_with_a_submit_fallback() {
        let message = Message::channel(format!("{} kept P-4", mention("29:ana", "Ana <QA>"))).with_section(
            Section::heading("E-3").with_action(
                "Start",
                ActionKind::StartExperiment(ExperimentRef(3)),
                ActionStyle::Primary,
            ),
        );
        let card = card_of(&message);
        assert_eq!(card["body"][0]["text"], "<at>Ana &lt;QA&gt;</at> kept P-4");
        assert_eq!(card["msteams"]["entities"][0]["mentioned"]["id"], "29:ana");
        let action = &card["body"][2]["actions"][0];
        assert_eq!(action["type"], "Action.Execute");
        assert_eq!(action["fallback"]["type"], "Action.Submit");
        assert_eq!(parse_action(&action["data"]), Some(ActionKind::StartExperiment(ExperimentRef(3))));
        assert_eq!(card["fallbackText"], "Ana <QA> kept P-4\n\nE-3");
    }
}
