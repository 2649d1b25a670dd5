//! The Bot Connector client: the bot's token by client credentials (cached, refreshed five minutes
//! before it expires, one refresh at a time), and the calls nudge makes — reply, post, edit a card,
//! start a conversation. The token is sent only to Microsoft's connector hosts (and hosts the
//! operator lists); any other serviceUrl is refused before a request is made.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::config::TeamsConfig;
use crate::clock::SharedClock;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// A token is refreshed this long before it expires, so no request carries one that lapses on the way.
const REFRESH_BEFORE: chrono::Duration = chrono::Duration::minutes(5);
const SCOPE: &str = "https://api.botframework.com/.default";

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{0} is not a Bot Connector host; nudge sends its token only there")]
    HostNotAllowed(String),
    #[error("the token endpoint did not give a token: {0}")]
    Token(String),
    #[error("the Bot Connector answered {status}{}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status { status: u16, code: Option<String>, retry_after: Option<Duration> },
    /// The request went out and no answer came (a timeout, a reset): it may have been carried out.
    #[error("no answer from the Bot Connector: {0}")]
    NoAnswer(String),
    /// The connection was never made: nothing was sent.
    #[error("cannot reach the Bot Connector: {0}")]
    Unreachable(String),
    #[error("unreadable answer from the Bot Connector: {0}")]
    Unreadable(String),
}

/// Why the connector refused a conversation for good: nudge was removed, blocked or disabled.
pub const BLOCKED_CODES: &[&str] = &["BotNotInConversationRoster", "ConversationBlockedByUser", "BotDisabledByAdmin"];

impl ConnectorError {
    /// Teams' documented transient answers: 429, 412, 502, 503, 504, and no connection at all.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectorError::Status { status, .. } => matches!(status, 429 | 412 | 502 | 503 | 504),
            ConnectorError::Unreachable(_) | ConnectorError::NoAnswer(_) | ConnectorError::Token(_) => true,
            ConnectorError::HostNotAllowed(_) | ConnectorError::Unreadable(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectorError::Status { status: 429, retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The conversation will not take posts from nudge again until it is added back.
    pub fn is_blocked(&self) -> bool {
        match self {
            ConnectorError::Status { status: 403, code: Some(code), .. } => BLOCKED_CODES.contains(&code.as_str()),
            ConnectorError::Status { status: 404, .. } => true,
            _ => false,
        }
    }

    /// The request went out and its outcome is unknown.
    pub fn may_have_landed(&self) -> bool {
        matches!(self, ConnectorError::NoAnswer(_))
    }
}

struct CachedToken {
    token: SecretString,
    expires_at: DateTime<Utc>,
}

pub struct Connector {
    http: reqwest::Client,
    app_id: String,
    app_password: SecretString,
    token_url: Url,
    extra_hosts: Vec<String>,
    clock: SharedClock,
    /// The bot's token; the lock is held while it is refreshed, so one refresh runs at a time and
    /// every request waiting for it gets the same new token.
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("app_id", &self.app_id).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Value,
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    error: Option<ErrorBody>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: Option<String>,
}

/// What `POST v3/conversations` answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub id: String,
    #[serde(default)]
    pub activity_id: Option<String>,
}

impl Connector {
    pub fn new(settings: &TeamsConfig, clock: SharedClock) -> Connector {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Connector {
            http,
            app_id: settings.app_id.clone(),
            app_password: settings.app_password.clone(),
            token_url: settings.token_url.clone(),
            extra_hosts: settings.extra_service_hosts.clone(),
            clock,
            token: tokio::sync::Mutex::new(None),
        }
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Whether the bot's token may be sent to this serviceUrl: https on Microsoft's connector
    /// hosts, or a host the operator listed.
    pub fn allowed(&self, service_url: &str) -> Result<Url, ConnectorError> {
        let url = Url::parse(service_url).map_err(|_| ConnectorError::HostNotAllowed(service_url.to_string()))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let microsoft = host == "smba.trafficmanager.net"
            || host.ends_with(".botframework.com")
            || host.ends_with(".teams.microsoft.com");
        let listed = self.extra_hosts.contains(&host) && matches!(url.scheme(), "http" | "https");
        if (microsoft && url.scheme() == "https") || listed {
            Ok(url)
        } else {
            Err(ConnectorError::HostNotAllowed(host))
        }
    }

    /// The bot's token, from the cache while it has more than five minutes to live.
    pub async fn token(&self) -> Result<SecretString, ConnectorError> {
        let mut cached = self.token.lock().await;
        let now = self.clock.now();
        if let Some(token) = cached.as_ref()
            && token.expires_at - REFRESH_BEFORE > now
        {
            return Ok(token.token.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.app_id.as_str()),
            ("client_secret", self.app_password.expose_secret()),
            ("scope", SCOPE),
        ];
        let response = self
            .http
            .post(self.token_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| ConnectorError::Token(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ConnectorError::Token(format!("status {}", status.as_u16())));
        }
        let answer: TokenAnswer = response.json().await.map_err(|_| ConnectorError::Token("unreadable".into()))?;
        let seconds = match &answer.expires_in {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        let token = SecretString::from(answer.access_token);
        *cached = Some(CachedToken { token: token.clone(), expires_at: now + chrono::Duration::seconds(seconds) });
        Ok(token)
    }

    fn url(&self, service_url: &str, segments: &[&str]) -> Result<Url, ConnectorError> {
        let mut url = self.allowed(service_url)?;
        url.path_segments_mut()
            .map_err(|_| ConnectorError::HostNotAllowed(service_url.to_string()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn call(&self, method: reqwest::Method, url: Url, body: &Value) -> Result<Value, ConnectorError> {
        let token = self.token().await?;
        let response =
            self.http.request(method, url).bearer_auth(token.expose_secret()).json(body).send().await.map_err(|e| {
                let connect = e.is_connect();
                let shown = e.without_url().to_string();
                if connect { ConnectorError::Unreachable(shown) } else { ConnectorError::NoAnswer(shown) }
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(|e| ConnectorError::NoAnswer(e.without_url().to_string()))?;
        if !(200..300).contains(&status) {
            let code = serde_json::from_str::<ErrorAnswer>(&text).ok().and_then(|a| a.error?.code);
            return Err(ConnectorError::Status { status, code, retry_after });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ConnectorError::Unreadable(e.to_string()))
    }

    /// Posts into a conversation, as a reply to `reply_to` when given; returns the activity's id.
    pub async fn send(
        &self,
        service_url: &str,
        conversation: &str,
        reply_to: Option<&str>,
        activity: &Value,
    ) -> Result<String, ConnectorError> {
        let mut segments = vec!["v3", "conversations", conversation, "activities"];
        segments.extend(reply_to);
        let url = self.url(service_url, &segments)?;
        let answer = self.call(reqwest::Method::POST, url, activity).await?;
        Ok(answer.get("id").and_then(Value::as_str).unwrap_or_default().to_string())
    }

    /// Replaces a posted activity (a card updated for everyone).
    pub async fn update(
        &self,
        service_url: &str,
        conversation: &str,
        activity_id: &str,
        activity: &Value,
    ) -> Result<(), ConnectorError> {
        let url = self.url(service_url, &["v3", "conversations", conversation, "activities", activity_id])?;
        self.call(reqwest::Method::PUT, url, activity).await.map(|_| ())
    }

    /// Starts a conversation: a new thread in a channel, or a member's personal chat.
    pub async fn create(&self, service_url: &str, parameters: &Value) -> Result<Created, ConnectorError> {
        let url = self.url(service_url, &["v3", "conversations"])?;
        let answer = self.call(reqwest::Method::POST, url, parameters).await?;
        serde_json::from_value(answer).map_err(|e| ConnectorError::Unreadable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(extra: &[&str]) -> Connector {
        let settings = TeamsConfig {
            app_id: "3f6b8c2e-1a4d-4e5f-9a7b-0c1d2e3f4a5b".into(),
            app_password: SecretString::from("pw".to_string()),
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            openid_metadata_url: Url::parse(super::super::config::BOT_FRAMEWORK_METADATA).unwrap(),
            token_url: Url::parse("https://login.microsoftonline.com/t/oauth2/v2.0/token").unwrap(),
            extra_service_hosts: extra.iter().map(|h| h.to_string()).collect(),
            accept_entra_tokens: false,
        };
        Connector::new(&settings, std::sync::Arc::new(crate::clock::SystemClock))
    }

    #[test]
    fn the_token_goes_to_microsofts_connector_hosts_over_https_and_to_listed_hosts_only() {
        let plain = connector(&[]);
        for good in [
            "https://smba.trafficmanager.net/amer/",
            "https://smba.trafficmanager.net/emea/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "https://europe.webchat.botframework.com/",
            "https://canary.teams.microsoft.com/",
        ] {
            assert!(plain.allowed(good).is_ok(), "{good}");
        }
        for bad in [
            "http://smba.trafficmanager.net/amer/",
            "https://evilbotframework.com/",
            "https://botframework.com.evil.example/",
            "https://smba.trafficmanager.net.evil.example/",
            "https://127.0.0.1:8080/",
            "not a url",
        ] {
            assert!(plain.allowed(bad).is_err(), "{bad}");
        }
        assert!(connector(&["127.0.0.1"]).allowed("http://127.0.0.1:8080/amer/").is_ok());
    }

    #[test]
    fn blocked_transient_and_ambiguous_answers_are_told_apart() {
        let status = |status, code: Option<&str>| ConnectorError::Status {
            status,
            code: code.map(str::to_string),
            retry_after: None,
        };
        for code in BLOCKED_CODES {
            assert!(status(403, Some(code)).is_blocked(), "{code}");
        }
        assert!(!status(403, Some("Forbidden")).is_blocked());
        for transient in [429, 412, 502, 503, 504] {
            assert!(status(transient, None).is_retryable(), "{transient}");
        }
        assert!(!status(400, None).is_retryable() && !status(500, None).is_retryable());
        assert!(ConnectorError::NoAnswer("timed out".into()).may_have_landed());
        assert!(!ConnectorError::Unreachable("refused".into()).may_have_landed());
    }
}
