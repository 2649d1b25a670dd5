//! Slack's wire formats as serde types: the slash-command form, interaction payloads and Events
//! API envelopes. Only the fields nudge reads; Slack adds fields freely, and they are ignored.

use std::borrow::Cow;

use serde::Deserialize;

/// A slash command, form-encoded (`application/x-www-form-urlencoded`).
#[derive(Debug, Clone, Deserialize)]
pub struct SlashCommand<'a> {
    // Borrowed from the body where nothing needed decoding: a command is read on every request.
    #[serde(borrow)]
    pub command: Cow<'a, str>,
    #[serde(default, borrow)]
    pub text: Cow<'a, str>,
    #[serde(borrow)]
    pub team_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub team_domain: Cow<'a, str>,
    #[serde(borrow)]
    pub channel_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub channel_name: Cow<'a, str>,
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub user_name: Cow<'a, str>,
    #[serde(borrow)]
    pub response_url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub trigger_id: Option<Cow<'a, str>>,
}

/// The interactivity form: one field holding the JSON payload.
#[derive(Debug, Deserialize)]
pub struct InteractionForm {
    pub payload: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Interaction {
    BlockActions(BlockActions),
    ViewSubmission(ViewSubmission),
    ViewClosed(ViewClosed),
    /// message_actions, shortcuts and anything new: acknowledged and ignored.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub id: String,
    #[serde(default)]
    pub domain: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub name: String,
    pub team_id: Option<String>,
}

impl User {
    pub fn display_name(&self) -> &str {
        if self.username.is_empty() { &self.name } else { &self.username }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Channel {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct BlockActions {
    pub team: Option<Team>,
    pub user: User,
    pub channel: Option<Channel>,
    pub trigger_id: String,
    pub response_url: Option<String>,
    #[serde(default)]
    pub actions: Vec<ActionPayload>,
}

#[derive(Debug, Deserialize)]
pub struct ActionPayload {
    pub action_id: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ViewSubmission {
    pub team: Option<Team>,
    pub user: User,
    pub view: View,
}

#[derive(Debug, Deserialize)]
pub struct ViewClosed {
    pub team: Option<Team>,
    pub user: User,
}

#[derive(Debug, Deserialize)]
pub struct View {
    #[serde(default)]
    pub callback_id: String,
    #[serde(default)]
    pub private_metadata: String,
    pub state: ViewState,
}

#[derive(Debug, Deserialize)]
pub struct ViewState {
    #[serde(default)]
    pub values: serde_json::Value,
}

/// What nudge keeps in a modal's `private_metadata`: where the command came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ModalOrigin {
    pub channel_id: String,
    #[serde(default)]
    pub channel_name: String,
}

/// An Events API request body.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventEnvelope {
    UrlVerification {
        challenge: String,
    },
    EventCallback(EventCallback),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct EventCallback {
    pub team_id: String,
    pub event_id: String,
    pub event: Event,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    AppMention {
        user: String,
        channel: String,
        #[serde(default)]
        text: String,
    },
    #[serde(other)]
    Other,
}

/// Whether a Slack conversation is a direct one with the bot (not a team channel): Slack's direct
/// conversations have ids starting with `D` and are named "directmessage" in slash commands.
pub fn is_direct(channel_id: &str, channel_name: &str) -> bool {
    channel_id.starts_with('D') || channel_name == "directmessage"
}

/// The team an interaction belongs to: `team` is absent for org-wide installs, so fall back to the user's.
pub fn team_of(team: Option<&Team>, user: &User) -> Option<String> {
    team.map(|t| t.id.clone()).or_else(|| user.team_id.clone())
}

/// Slack escapes `&`, `<` and `>` in command text as HTML entities; the grammar wants them back.
pub fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_actions_payload_as_slack_sends_it_is_read() {
        let payload = r#"{"type":"block_actions","user":{"id":"U01","username":"ada","name":"ada","team_id":"T01"},
            "api_app_id":"A01","token":"x","container":{"type":"message","message_ts":"1.2","channel_id":"C01","is_ephemeral":false},
            "trigger_id":"123.456.abc","team":{"id":"T01","domain":"acme"},"enterprise":null,"is_enterprise_install":false,
            "channel":{"id":"C01","name":"growth"},"response_url":"https://hooks.slack.com/actions/T01/1/abc",
            "actions":[{"action_id":"nudge.vote.E-3","block_id":"b1","text":{"type":"plain_text","text":"Vote"},"value":"E-3","type":"button","action_ts":"1.3"}],
            "state":{"values":{}}}"#;
        let Interaction::BlockActions(actions) = serde_json::from_str(payload).unwrap() else {
            panic!("block actions")
        };
        assert_eq!(actions.actions[0].value.as_deref(), Some("E-3"));
        assert_eq!(actions.channel.unwrap().name, "growth");
        assert_eq!(team_of(actions.team.as_ref(), &actions.user).as_deref(), Some("T01"));
    }

    #[test]
    fn unknown_payload_and_event_types_are_read_as_other() {
        let other: Interaction = serde_json::from_str(r#"{"type":"shortcut","callback_id":"x"}"#).unwrap();
        assert!(matches!(other, Interaction::Other));
        let envelope: EventEnvelope = serde_json::from_str(
            r#"{"type":"event_callback","team_id":"T01","api_app_id":"A01","event_id":"Ev01","event_time":1,
            "event":{"type":"reaction_added","user":"U01"}}"#,
        )
        .unwrap();
        let EventEnvelope::EventCallback(callback) = envelope else { panic!("callback") };
        assert!(matches!(callback.event, Event::Other));
    }

    #[test]
    fn slack_entities_in_command_text_are_unescaped() {
        assert_eq!(unescape("activation 0.31 -&gt; 0.36 &amp; more &lt;3"), "activation 0.31 -> 0.36 & more <3");
        assert_eq!(unescape("&amp;lt;"), "&lt;");
    }
}
