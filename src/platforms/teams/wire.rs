//! The Bot Framework's JSON as Teams sends it (activities) and as nudge keeps it about
//! conversations. Only the fields nudge reads; everything else is ignored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub channel_id: String,
    pub service_url: String,
    #[serde(default)]
    pub from: Option<Account>,
    #[serde(default)]
    pub recipient: Option<Account>,
    pub conversation: Conversation,
    #[serde(default)]
    pub channel_data: Option<ChannelData>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default)]
    pub members_added: Vec<Account>,
    #[serde(default)]
    pub members_removed: Vec<Account>,
    /// `installationUpdate`: "add" or "remove" (with "-upgrade" variants).
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub reply_to_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub aad_object_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    #[serde(default)]
    pub conversation_type: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChannelData {
    #[serde(default)]
    pub tenant: Option<IdName>,
    #[serde(default)]
    pub team: Option<IdName>,
    #[serde(default)]
    pub channel: Option<IdName>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdName {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entity {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub mentioned: Option<Account>,
}

/// Where an activity was said, as nudge sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Place {
    /// A team channel: proactive posts start a new thread (`POST v3/conversations`).
    Channel,
    /// A group chat: posts go into the conversation.
    GroupChat,
    /// A personal chat with one member.
    Personal,
}

impl Activity {
    pub fn place(&self) -> Place {
        match self.conversation.conversation_type.as_deref() {
            Some("channel") => Place::Channel,
            Some("personal") => Place::Personal,
            _ if self.channel().is_some() => Place::Channel,
            Some("groupChat") => Place::GroupChat,
            _ => Place::Personal,
        }
    }

    /// The team channel's id, without the thread (`;messageid=…`) a channel conversation id has.
    pub fn channel(&self) -> Option<&IdName> {
        self.channel_data.as_ref()?.channel.as_ref()
    }

    /// The conversation nudge keeps as a channel or chat: the team channel, else the conversation.
    pub fn conversation_key(&self) -> String {
        match self.channel() {
            Some(channel) => channel.id.clone(),
            None => self.conversation.id.split(';').next().unwrap_or(&self.conversation.id).to_string(),
        }
    }

    /// The tenant the activity comes from: `conversation.tenantId`, else `channelData.tenant.id`.
    pub fn tenant(&self) -> Option<&str> {
        self.conversation
            .tenant_id
            .as_deref()
            .or_else(|| self.channel_data.as_ref()?.tenant.as_ref().map(|t| t.id.as_str()))
    }

    /// Whether `account` is this bot (the activity's recipient).
    pub fn is_bot(&self, account: &Account) -> bool {
        self.recipient.as_ref().is_some_and(|bot| bot.id == account.id)
    }

    /// The text typed to nudge: every mention of the bot (by its entity) removed, the markup of
    /// rich-text clients (`<p>`, another member's `<at>`) taken out, HTML entities decoded, trimmed.
    pub fn command_text(&self) -> String {
        let mut text = self.text.clone().unwrap_or_default();
        for entity in &self.entities {
            let (Some(mentioned), Some(shown)) = (&entity.mentioned, &entity.text) else { continue };
            if entity.kind == "mention" && self.is_bot(mentioned) && !shown.is_empty() {
                text = text.replace(shown.as_str(), " ");
            }
        }
        decode_entities(&without_tags(&text)).trim().to_string()
    }
}

/// What nudge keeps about a conversation it may post to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRecord {
    pub place: Place,
    /// The conversation to post into (for a channel, the channel's own id: posts start threads).
    pub id: String,
    /// The latest serviceUrl seen for it.
    pub service_url: String,
    /// Set when nudge was removed or blocked there: why. Posts stop until it is added again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<String>,
}

/// Text without its markup. Teams escapes a `<` people type (`&lt;`), so every `<` left is a tag:
/// line-breaking ones become line breaks, the rest go.
fn without_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let tag = rest[start + 1..start + end].trim_start_matches('/').to_ascii_lowercase();
        if ["p", "br", "br/", "div"].iter().any(|t| tag == *t || tag.starts_with(&format!("{t} "))) {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// HTML's entities as Teams escapes typed text: the five named ones, `&nbsp;`, and numeric ones.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let decoded = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &after[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    let number = name.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)
                }
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rich_text_markup_is_taken_out_and_typed_angle_brackets_kept() {
        assert_eq!(without_tags("<p>experiment list</p>"), "\nexperiment list\n");
        assert_eq!(decode_entities(&without_tags("<div>31% -&gt; 40% &lt;b&gt;</div>")), "\n31% -> 40% <b>\n");
        assert_eq!(without_tags("a <span style=\"x\">b</span> c"), "a b c");
    }

    #[test]
    fn entities_are_decoded_and_unknown_ones_left_alone() {
        assert_eq!(decode_entities("31% -&gt; 40%"), "31% -> 40%");
        assert_eq!(decode_entities("a &amp;&lt;b&gt; &quot;c&quot; &#39;d&#x27; &nbsp;e"), "a &<b> \"c\" 'd'  e");
        assert_eq!(decode_entities("R&D & more &bogus; &"), "R&D & more &bogus; &");
    }

    #[test]
    fn the_bot_mention_is_removed_by_its_entity_everywhere_and_others_kept() {
        let activity: Activity = serde_json::from_value(serde_json::json!({
            "type": "message", "channelId": "msteams", "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "conversation": {"id": "19:abc@thread.tacv2;messageid=1", "conversationType": "channel"},
            "recipient": {"id": "28:bot", "name": "nudge"},
            "text": "<at>nudge</at> pledge ask <at>Ana</at> by fri <at>nudge</at>",
            "entities": [
                {"type": "mention", "text": "<at>nudge</at>", "mentioned": {"id": "28:bot", "name": "nudge"}},
                {"type": "mention", "text": "<at>Ana</at>", "mentioned": {"id": "29:ana", "name": "Ana"}}
            ]
        }))
        .unwrap();
        assert_eq!(activity.command_text(), "pledge ask Ana by fri");
        assert_eq!(activity.conversation_key(), "19:abc@thread.tacv2");
        assert_eq!(activity.place(), Place::Channel);
    }
}
