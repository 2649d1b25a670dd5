//! The Slack Web API client: one shared HTTP client that posts, updates and opens views with a
//! workspace's bot token, exchanges OAuth codes, looks up users and answers slash commands through
//! their `response_url`. It turns Slack's answers (HTTP 200 with `ok:false`, 429 with `Retry-After`)
//! into [`SlackApiError`], and never retries on its own: the outbox decides when to try again.
//! Tokens and client secrets never leave this module in an error, a log line or `Debug` output.

use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Used when a 429 carries no usable `Retry-After`; Slack always sends one, proxies may not.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// A longer wait than this is more likely a broken header than a real instruction.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// Slack answers a JSON body without a charset with a `missing_charset` warning.
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The error name this client reports when Slack answered 2xx but the body is not the JSON the
/// method documents (a proxy's HTML page, a missing `ts`). Not retryable: the request may have
/// taken effect.
pub const INVALID_RESPONSE: &str = "invalid_response";
/// The error name for an org-wide Enterprise Grid install: Slack then sends `team: null`, and
/// nudge keys every installation by team.
pub const ORG_WIDE_INSTALL_UNSUPPORTED: &str = "org_wide_install_unsupported";
/// The error name used when a bot token cannot even be sent as a header; it is what Slack itself
/// would answer for such a token.
const INVALID_AUTH: &str = "invalid_auth";

/// Slack's answer when the bot posts to a channel it has not been invited to.
const NOT_IN_CHANNEL: &str = "not_in_channel";

/// Slack errors that describe a passing condition on Slack's side rather than a bad request.
const RETRYABLE_SLACK_ERRORS: &[&str] =
    &["ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"];

/// Where Slack's `response_url`s point.
const SLACK_HOOKS_HOST: &str = "hooks.slack.com";

/// Errors after which Slack may have done part of the work ("it's possible some aspect of the
/// operation succeeded before the error was raised").
const MAYBE_DONE_SLACK_ERRORS: &[&str] = &["internal_error", "fatal_error", "request_timeout"];

#[derive(Debug, thiserror::Error)]
pub enum SlackApiError {
    #[error("Slack {method} failed: {error}")]
    Api { method: &'static str, error: String },
    #[error("Slack {method} is rate limited; retry after {retry_after:?}")]
    RateLimited { method: &'static str, retry_after: Duration },
    #[error("Slack {method} answered HTTP {status}")]
    Http { method: &'static str, status: u16 },
    #[error("Slack {method} could not be reached: {source}")]
    Transport {
        method: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

impl SlackApiError {
    /// The Web API method (or `"response_url"`) that failed.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Api { method, .. }
            | Self::RateLimited { method, .. }
            | Self::Http { method, .. }
            | Self::Transport { method, .. } => method,
        }
    }

    /// Whether trying the same request later may succeed: rate limits, Slack's 5xx and transient
    /// error names, and network failures. A timeout may hide a post that did land, which is why
    /// posts carry the outbox id in their metadata.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { error, .. } => RETRYABLE_SLACK_ERRORS.contains(&error.as_str()),
            Self::RateLimited { .. } => true,
            Self::Http { status, .. } => *status >= 500,
            // A builder error (a malformed URL) fails the same way every time.
            Self::Transport { source, .. } => !source.is_builder(),
        }
    }

    /// Whether the request may have done its work although the answer says otherwise: a timeout
    /// or a connection lost after the request was sent, a 5xx, or an error Slack documents as
    /// possibly partial. A connection that was never made cannot have posted anything.
    pub fn may_have_landed(&self) -> bool {
        match self {
            Self::Api { error, .. } => MAYBE_DONE_SLACK_ERRORS.contains(&error.as_str()),
            Self::RateLimited { .. } => false,
            Self::Http { status, .. } => *status >= 500,
            Self::Transport { source, .. } => !source.is_connect() && !source.is_builder(),
        }
    }

    /// Slack refused because the bot is not a member of the channel: the channel exists, and a
    /// member inviting the bot is what fixes it, not trying again.
    pub fn is_not_in_channel(&self) -> bool {
        matches!(self, Self::Api { error, .. } if error == NOT_IN_CHANNEL)
    }

    /// How long Slack asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A cheap-to-clone handle on Slack's Web API; clones share one connection pool.
#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    /// Without a trailing slash, e.g. `https://slack.com/api`.
    base_url: String,
}

impl fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackClient").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// Slack message metadata: lets a post carry our outbox id so it can be found again.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct MessageMetadata {
    pub event_type: String,
    pub event_payload: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PostedMessage {
    pub channel: String,
    pub ts: String,
}

/// What an install gives us. `Debug` is safe: `SecretString` prints as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct OAuthAccess {
    pub access_token: SecretString,
    pub bot_user_id: Option<String>,
    pub team_id: String,
    pub team_name: String,
    pub enterprise_id: Option<String>,
    pub is_enterprise_install: bool,
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<u64>,
}

/// Which stretch of a channel's history to read: Slack timestamps (`"1764000000.000000"`), both
/// ends included, a page at a time.
pub struct HistoryWindow<'a> {
    pub oldest: &'a str,
    pub latest: &'a str,
    pub limit: u32,
    pub cursor: Option<&'a str>,
}

/// One page of `conversations.history`, and the cursor of the next when there is one.
pub struct HistoryPage {
    pub messages: Vec<HistoryMessage>,
    pub next_cursor: Option<String>,
}

/// One message from `conversations.history`: its timestamp and the metadata it carries, if any.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HistoryMessage {
    pub ts: String,
    #[serde(default)]
    pub metadata: Option<MessageMetadata>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserInfo {
    pub id: String,
    pub display_name: String,
    pub time_zone: Option<String>,
}

impl SlackClient {
    /// `base_url` is the Web API root, `https://slack.com/api` in production.
    pub fn new(base_url: &str) -> SlackClient {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Slack never redirects API calls; following one could re-send a form body holding
            // the client secret to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("nudge/", env!("CARGO_PKG_VERSION")))
            .build()
            // Only fails if the TLS backend cannot initialise, which no request could survive.
            .expect("the HTTP client for Slack can be built");
        SlackClient { http, base_url: base_url.trim_end_matches('/').to_string() }
    }

    /// `chat.postMessage`. `message` is `{"text", "blocks"}`; the channel and metadata are merged
    /// into it.
    pub async fn post_message(
        &self,
        token: &SecretString,
        channel: &str,
        message: &Value,
        metadata: Option<&MessageMetadata>,
    ) -> Result<PostedMessage, SlackApiError> {
        const METHOD: &str = "chat.postMessage";
        let mut body = message_object(message);
        body.insert("channel".into(), Value::from(channel));
        if let Some(metadata) = metadata {
            body.insert("metadata".into(), serde_json::json!(metadata));
        }
        let answer = self.call_json(METHOD, token, &Value::Object(body)).await?;

        #[derive(Deserialize)]
        struct Posted {
            channel: String,
            ts: String,
        }
        let posted: Posted = decode(METHOD, answer)?;
        Ok(PostedMessage { channel: posted.channel, ts: posted.ts })
    }

    /// `chat.update`: replaces the text and blocks of the message at `ts`.
    pub async fn update_message(
        &self,
        token: &SecretString,
        channel: &str,
        ts: &str,
        message: &Value,
    ) -> Result<(), SlackApiError> {
        let mut body = message_object(message);
        body.insert("channel".into(), Value::from(channel));
        body.insert("ts".into(), Value::from(ts));
        self.call_json("chat.update", token, &Value::Object(body)).await.map(drop)
    }

    /// `chat.postEphemeral`: a message only `user` sees, in `channel`.
    pub async fn post_ephemeral(
        &self,
        token: &SecretString,
        channel: &str,
        user: &str,
        message: &Value,
    ) -> Result<(), SlackApiError> {
        let mut body = message_object(message);
        body.insert("channel".into(), Value::from(channel));
        body.insert("user".into(), Value::from(user));
        self.call_json("chat.postEphemeral", token, &Value::Object(body)).await.map(drop)
    }

    /// `views.open`. The trigger id is single-use and short-lived, so a late call fails with
    /// `expired_trigger_id`, which is not worth retrying.
    pub async fn open_view(&self, token: &SecretString, trigger_id: &str, view: &Value) -> Result<(), SlackApiError> {
        let body = serde_json::json!({ "trigger_id": trigger_id, "view": view });
        self.call_json("views.open", token, &body).await.map(drop)
    }

    /// `oauth.v2.access`: exchanges an install's `code` for the workspace's bot token.
    pub async fn oauth_access(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        code: &str,
        redirect_uri: Option<&str>,
    ) -> Result<OAuthAccess, SlackApiError> {
        const METHOD: &str = "oauth.v2.access";
        let mut form = vec![("client_id", client_id), ("client_secret", client_secret.expose_secret()), ("code", code)];
        if let Some(redirect_uri) = redirect_uri {
            form.push(("redirect_uri", redirect_uri));
        }
        // No bearer token: the client credentials are the authentication.
        let request = self.http.post(self.method_url(METHOD)).form(&form);
        let answer = self.send(METHOD, request).await?;

        // Deliberately no `Debug`: these hold the tokens in the clear.
        #[derive(Deserialize)]
        struct Access {
            access_token: Option<String>,
            token_type: Option<String>,
            bot_user_id: Option<String>,
            team: Option<Named>,
            enterprise: Option<Named>,
            #[serde(default)]
            is_enterprise_install: bool,
            refresh_token: Option<String>,
            expires_in: Option<u64>,
        }
        #[derive(Deserialize)]
        struct Named {
            id: String,
            name: Option<String>,
        }

        let access: Access = decode(METHOD, answer)?;
        // Without bot scopes Slack sends only `authed_user`; nudge cannot work with that. Rotated
        // tokens look like `xoxe.xoxb-…`, so the prefix is not checked.
        let Some(access_token) = access.access_token.filter(|t| !t.is_empty()) else {
            return Err(api_error(METHOD, INVALID_RESPONSE));
        };
        if access.token_type.as_deref().is_some_and(|t| t != "bot") {
            return Err(api_error(METHOD, INVALID_RESPONSE));
        }
        let Some(team) = access.team else {
            let error = if access.is_enterprise_install { ORG_WIDE_INSTALL_UNSUPPORTED } else { INVALID_RESPONSE };
            return Err(api_error(METHOD, error));
        };
        Ok(OAuthAccess {
            access_token: SecretString::from(access_token),
            bot_user_id: access.bot_user_id,
            team_name: team.name.unwrap_or_default(),
            team_id: team.id,
            enterprise_id: access.enterprise.map(|e| e.id),
            is_enterprise_install: access.is_enterprise_install,
            refresh_token: access.refresh_token.map(SecretString::from),
            expires_in: access.expires_in,
        })
    }

    /// `users.info`: the name to greet someone by and their time zone.
    pub async fn user_info(&self, token: &SecretString, user: &str) -> Result<UserInfo, SlackApiError> {
        const METHOD: &str = "users.info";
        // A form body: Slack's read methods do not all accept JSON arguments.
        let request = self
            .http
            .post(self.method_url(METHOD))
            .header(AUTHORIZATION, bearer(METHOD, token)?)
            .form(&[("user", user)]);
        let answer = self.send(METHOD, request).await?;

        #[derive(Deserialize)]
        struct Answer {
            user: User,
        }
        #[derive(Deserialize)]
        struct User {
            id: String,
            name: Option<String>,
            real_name: Option<String>,
            tz: Option<String>,
            profile: Option<Profile>,
        }
        #[derive(Deserialize)]
        struct Profile {
            display_name: Option<String>,
            real_name: Option<String>,
        }

        let User { id, name, real_name, tz, profile } = decode::<Answer>(METHOD, answer)?.user;
        let (profile_display, profile_real) = profile.map(|p| (p.display_name, p.real_name)).unwrap_or_default();
        // People choose their display name; many leave it empty, and then Slack shows the real name.
        let display_name = [profile_display, real_name, profile_real, name]
            .into_iter()
            .flatten()
            .map(|n| n.trim().to_string())
            .find(|n| !n.is_empty())
            .unwrap_or_else(|| id.clone());
        Ok(UserInfo { id, display_name, time_zone: tz.filter(|tz| !tz.is_empty()) })
    }

    /// Messages posted to a channel since `oldest` (a Slack `ts`), with their metadata, newest
    /// first: how the outbox finds out whether a post whose outcome was unknown did go out.
    pub async fn channel_history(
        &self,
        token: &SecretString,
        channel: &str,
        window: &HistoryWindow<'_>,
    ) -> Result<HistoryPage, SlackApiError> {
        const METHOD: &str = "conversations.history";
        let limit = window.limit.to_string();
        let mut form = vec![
            ("channel", channel),
            ("oldest", window.oldest),
            ("latest", window.latest),
            ("inclusive", "true"),
            ("limit", limit.as_str()),
            ("include_all_metadata", "true"),
        ];
        if let Some(cursor) = window.cursor {
            form.push(("cursor", cursor));
        }
        let request = self.http.post(self.method_url(METHOD)).header(AUTHORIZATION, bearer(METHOD, token)?).form(&form);
        let answer = self.send(METHOD, request).await?;

        #[derive(Deserialize)]
        struct Metadata {
            #[serde(default)]
            next_cursor: String,
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            messages: Vec<HistoryMessage>,
            #[serde(default)]
            has_more: bool,
            response_metadata: Option<Metadata>,
        }
        let answer = decode::<Answer>(METHOD, answer)?;
        let next_cursor =
            answer.response_metadata.map(|m| m.next_cursor).filter(|cursor| answer.has_more && !cursor.is_empty());
        Ok(HistoryPage { messages: answer.messages, next_cursor })
    }

    /// Answers a slash command later through its `response_url` (up to 5 times in 30 minutes).
    /// The URL is itself a credential, so it is kept out of errors.
    pub async fn post_to_response_url(&self, url: &str, message: &Value) -> Result<(), SlackApiError> {
        const METHOD: &str = "response_url";
        if !self.is_slack_response_url(url) {
            // A signed request could still carry any URL; nudge posts only where Slack listens.
            tracing::warn!("a response_url outside Slack's hooks host was not used");
            return Err(api_error(METHOD, "response_url_not_slack"));
        }
        let request = self.http.post(url).header(CONTENT_TYPE, JSON_UTF8).body(message.to_string());
        // Slack answers a plain-text body here, not the API's JSON envelope; the status is the result.
        let result = match request.send().await {
            Ok(response) => check_status(METHOD, response.status(), response.headers()),
            Err(source) => Err(SlackApiError::Transport { method: METHOD, source: source.without_url() }),
        };
        log_outcome(METHOD, &result);
        result
    }

    /// Slack's response URLs live on `https://hooks.slack.com`; the configured API base is accepted
    /// too, so a stand-in for Slack (in tests) can serve both.
    fn is_slack_response_url(&self, url: &str) -> bool {
        let Ok(url) = url::Url::parse(url) else { return false };
        let slack_hooks = url.scheme() == "https" && url.host_str() == Some(SLACK_HOOKS_HOST) && url.port().is_none();
        let configured = url::Url::parse(&self.base_url).is_ok_and(|base| base.origin() == url.origin());
        slack_hooks || configured
    }

    fn method_url(&self, method: &str) -> String {
        format!("{}/{method}", self.base_url)
    }

    /// A Web API call with a JSON body and the bot token.
    async fn call_json(
        &self,
        method: &'static str,
        token: &SecretString,
        body: &Value,
    ) -> Result<Value, SlackApiError> {
        let request = self
            .http
            .post(self.method_url(method))
            .header(AUTHORIZATION, bearer(method, token)?)
            .header(CONTENT_TYPE, JSON_UTF8)
            .body(body.to_string());
        self.send(method, request).await
    }

    /// Sends a Web API request and returns the `ok:true` envelope.
    async fn send(&self, method: &'static str, request: RequestBuilder) -> Result<Value, SlackApiError> {
        let result = receive(method, request).await;
        log_outcome(method, &result);
        result
    }
}

async fn receive(method: &'static str, request: RequestBuilder) -> Result<Value, SlackApiError> {
    let transport = |source| SlackApiError::Transport { method, source };
    let response = request.send().await.map_err(transport)?;
    check_status(method, response.status(), response.headers())?;
    let bytes = response.bytes().await.map_err(transport)?;
    let envelope: Value = serde_json::from_slice(&bytes).map_err(|_| api_error(method, INVALID_RESPONSE))?;
    if envelope.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(envelope)
    } else {
        let error = envelope.get("error").and_then(Value::as_str).unwrap_or(INVALID_RESPONSE);
        Err(api_error(method, error))
    }
}

fn check_status(method: &'static str, status: StatusCode, headers: &HeaderMap) -> Result<(), SlackApiError> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(SlackApiError::RateLimited { method, retry_after: retry_after(headers) });
    }
    if !status.is_success() {
        return Err(SlackApiError::Http { method, status: status.as_u16() });
    }
    Ok(())
}

/// `Retry-After` in whole seconds, as Slack sends it, kept between 1 s and 15 minutes.
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_RETRY_AFTER)
        .clamp(DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER)
}

/// The `Authorization` header, marked sensitive so that hyper and reqwest never print it.
fn bearer(method: &'static str, token: &SecretString) -> Result<HeaderValue, SlackApiError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| api_error(method, INVALID_AUTH))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The caller's message as a JSON object to add arguments to. Anything else is sent as an empty
/// message, which Slack rejects with its own error (`no_text`) instead of us inventing one.
fn message_object(message: &Value) -> Map<String, Value> {
    match message {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    }
}

/// Reads the fields a method documents; a missing one means Slack's answer is not what we expect.
/// serde's error is dropped because it can quote a token from the body.
fn decode<T: DeserializeOwned>(method: &'static str, answer: Value) -> Result<T, SlackApiError> {
    serde_json::from_value(answer).map_err(|_| api_error(method, INVALID_RESPONSE))
}

fn api_error(method: &'static str, error: &str) -> SlackApiError {
    SlackApiError::Api { method, error: error.to_string() }
}

fn log_outcome<T>(method: &'static str, result: &Result<T, SlackApiError>) {
    match result {
        Ok(_) => tracing::debug!(method, outcome = "ok", "Slack call"),
        Err(SlackApiError::Api { error, .. }) => {
            tracing::debug!(method, outcome = "slack_error", error = %error, "Slack call")
        }
        Err(SlackApiError::RateLimited { retry_after, .. }) => {
            tracing::debug!(method, outcome = "rate_limited", retry_after_secs = retry_after.as_secs(), "Slack call")
        }
        Err(SlackApiError::Http { status, .. }) => {
            tracing::debug!(method, outcome = "http_error", status, "Slack call")
        }
        Err(SlackApiError::Transport { source, .. }) => {
            tracing::debug!(method, outcome = "transport_error", error = %source, "Slack call")
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;

    const TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";
    const CLIENT_SECRET: &str = "f25b5ceaf8a3c2a2c4f52bb4f0b0499d";

    fn token() -> SecretString {
        SecretString::from(TOKEN)
    }

    fn message() -> Value {
        json!({
            "text": "Check-in for Onboarding v2",
            "blocks": [{ "type": "section", "text": { "type": "mrkdwn", "text": "*Check-in* for Onboarding v2" } }]
        })
    }

    async fn slack() -> (MockServer, SlackClient) {
        let server = MockServer::start().await;
        let client = SlackClient::new(&server.uri());
        (server, client)
    }

    /// Mounts `method_path` with a canned answer, for tests that only look at the outcome.
    async fn answer(server: &MockServer, method_path: &str, response: ResponseTemplate) {
        Mock::given(method("POST")).and(path(method_path)).respond_with(response).mount(server).await;
    }

    /// A local port with nothing listening on it.
    fn closed_port_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    fn no_authorization_header(request: &Request) -> bool {
        !request.headers.contains_key("authorization")
    }

    #[tokio::test]
    async fn post_message_sends_channel_blocks_and_metadata_with_the_bot_token_and_returns_the_ts() {
        let (server, client) = slack().await;
        Mock::given(method("POST"))
            .and(path("/chat.postMessage"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(header("content-type", "application/json; charset=utf-8"))
            .and(body_partial_json(json!({
                "channel": "C123",
                "text": "Check-in for Onboarding v2",
                "blocks": [{ "type": "section" }],
                "metadata": { "event_type": "nudge_outbox", "event_payload": { "outbox_id": 42 } }
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true,
                "channel": "C123",
                "ts": "1503435956.000247",
                "message": {
                    "text": "Check-in for Onboarding v2",
                    "username": "nudge",
                    "bot_id": "B123",
                    "type": "message",
                    "subtype": "bot_message",
                    "ts": "1503435956.000247"
                }
            })))
            .expect(1)
            .mount(&server)
            .await;
        let metadata = MessageMetadata { event_type: "nudge_outbox".into(), event_payload: json!({ "outbox_id": 42 }) };

        let posted = client.post_message(&token(), "C123", &message(), Some(&metadata)).await.unwrap();

        assert_eq!(posted, PostedMessage { channel: "C123".into(), ts: "1503435956.000247".into() });
    }

    #[tokio::test]
    async fn post_message_without_metadata_sends_no_metadata_field() {
        let (server, client) = slack().await;
        Mock::given(method("POST"))
            .and(path("/chat.postMessage"))
            .and(|request: &Request| {
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                body.get("metadata").is_none() && body["channel"] == "C123"
            })
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true, "channel": "C123", "ts": "1503435956.000247", "message": { "type": "message" }
            })))
            .expect(1)
            .mount(&server)
            .await;

        client.post_message(&token(), "C123", &message(), None).await.unwrap();
    }

    #[tokio::test]
    async fn update_message_replaces_the_message_at_its_ts() {
        let (server, client) = slack().await;
        Mock::given(method("POST"))
            .and(path("/chat.update"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_partial_json(json!({
                "channel": "C123",
                "ts": "1503435956.000247",
                "blocks": [{ "type": "section" }]
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true,
                "channel": "C123",
                "ts": "1503435956.000247",
                "text": "Check-in for Onboarding v2",
                "message": { "text": "Check-in for Onboarding v2", "user": "U123" }
            })))
            .expect(1)
            .mount(&server)
            .await;

        client.update_message(&token(), "C123", "1503435956.000247", &message()).await.unwrap();
    }

    #[tokio::test]
    async fn post_ephemeral_shows_the_message_to_one_user_in_the_channel() {
        let (server, client) = slack().await;
        Mock::given(method("POST"))
            .and(path("/chat.postEphemeral"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_partial_json(json!({ "channel": "C123", "user": "U456", "text": "Check-in for Onboarding v2" })))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "ok": true, "message_ts": "1502210682.580145" })),
            )
            .expect(1)
            .mount(&server)
            .await;

        client.post_ephemeral(&token(), "C123", "U456", &message()).await.unwrap();
    }

    #[tokio::test]
    async fn open_view_sends_the_trigger_id_and_the_modal() {
        let (server, client) = slack().await;
        let view = json!({
            "type": "modal",
            "callback_id": "propose_experiment",
            "title": { "type": "plain_text", "text": "Propose an experiment" },
            "blocks": []
        });
        Mock::given(method("POST"))
            .and(path("/views.open"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_partial_json(json!({
                "trigger_id": "12345.98765.abcd2358fdea",
                "view": { "type": "modal", "callback_id": "propose_experiment" }
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true,
                "view": { "id": "VMHU10V25", "team_id": "T8N4K1JN", "type": "modal", "callback_id": "propose_experiment" }
            })))
            .expect(1)
            .mount(&server)
            .await;

        client.open_view(&token(), "12345.98765.abcd2358fdea", &view).await.unwrap();
    }

    #[tokio::test]
    async fn oauth_access_exchanges_the_code_with_client_credentials_and_reads_the_bot_install() {
        let (server, client) = slack().await;
        Mock::given(method("POST"))
            .and(path("/oauth.v2.access"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string_contains("client_id=2141029472.691202649728"))
            .and(body_string_contains(format!("client_secret={CLIENT_SECRET}")))
            .and(body_string_contains("code=4724469134.4644010092847.232b4e6d82c333b475fc30f5f5a341d294feb1a94392c2fd791f7ab7731a443d"))
            .and(body_string_contains("redirect_uri=https%3A%2F%2Fnudge.example%2Fslack%2Foauth"))
            .and(no_authorization_header)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true,
                "access_token": TOKEN,
                "token_type": "bot",
                "scope": "commands,chat:write,app_mentions:read,users:read",
                "bot_user_id": "U0KRQLJ9H",
                "app_id": "A0KRD7HC3",
                "team": { "name": "Slack Softball Team", "id": "T9TK3CUKW" },
                "enterprise": null,
                "authed_user": { "id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234", "token_type": "user" },
                "is_enterprise_install": false
            })))
            .expect(1)
            .mount(&server)
            .await;

        let access = client
            .oauth_access(
                "2141029472.691202649728",
                &SecretString::from(CLIENT_SECRET),
                "4724469134.4644010092847.232b4e6d82c333b475fc30f5f5a341d294feb1a94392c2fd791f7ab7731a443d",
                Some("https://nudge.example/slack/oauth"),
            )
            .await
            .unwrap();

        assert_eq!(access.access_token.expose_secret(), TOKEN);
        assert_eq!(access.bot_user_id.as_deref(), Some("U0KRQLJ9H"));
        assert_eq!(access.team_id, "T9TK3CUKW");
        assert_eq!(access.team_name, "Slack Softball Team");
        assert_eq!(access.enterprise_id, None);
        assert!(!access.is_enterprise_install);
        assert!(access.refresh_token.is_none());
        assert_eq!(access.expires_in, None);
    }

    #[tokio::test]
    async fn oauth_access_with_token_rotation_keeps_the_refresh_token_and_expiry() {
        let (server, client) = slack().await;
        answer(
            &server,
            "/oauth.v2.access",
            ResponseTemplate::new(200).set_body_json(json!({
                "ok": true,
                "app_id": "A0KRD7HC3",
                "authed_user": { "id": "U1234" },
                "scope": "commands,chat:write",
                "token_type": "bot",
                "access_token": "xoxe.xoxb-1-MS0yLTIyMTAwMDAwMDAwMDA",
                "bot_user_id": "U0KRQLJ9H",
                "refresh_token": "xoxe-1-My0xLTIyMTAwMDAwMDAwMDA",
                "expires_in": 43200,
                "team": { "id": "T9TK3CUKW", "name": "Slack Softball Team" },
                "enterprise": { "id": "E12345678", "name": "slack-sports" },
                "is_enterprise_install": false
            })),
        )
        .await;

        let access = client
            .oauth_access("2141029472.691202649728", &SecretString::from(CLIENT_SECRET), "code", None)
            .await
            .unwrap();

        assert_eq!(access.access_token.expose_secret(), "xoxe.xoxb-1-MS0yLTIyMTAwMDAwMDAwMDA");
        assert_eq!(access.refresh_token.as_ref().map(|t| t.expose_secret()), Some("xoxe-1-My0xLTIyMTAwMDAwMDAwMDA"));
        assert_eq!(access.expires_in, Some(43200));
        assert_eq!(access.enterprise_id.as_deref(), Some("E12345678"));
    }

    #[tokio::test]
    async fn oauth_access_without_redirect_uri_sends_none() {
        let (server, client) = slack().await;
        Mock::given(method("POST"))
            .and(path("/oauth.v2.access"))
            .and(|request: &Request| !String::from_utf8_lossy(&request.body).contains("redirect_uri"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true, "access_token": TOKEN, "token_type": "bot", "bot_user_id": "U0KRQLJ9H",
                "team": { "id": "T9TK3CUKW", "name": "Slack Softball Team" }, "enterprise": null,
                "is_enterprise_install": false
            })))
            .expect(1)
            .mount(&server)
            .await;

        client.oauth_access("2141029472.691202649728", &SecretString::from(CLIENT_SECRET), "code", None).await.unwrap();
    }

    #[tokio::test]
    async fn oauth_access_for_an_org_wide_install_is_refused_by_name() {
        let (server, client) = slack().await;
        answer(
            &server,
            "/oauth.v2.access",
            ResponseTemplate::new(200).set_body_json(json!({
                "ok": true, "access_token": TOKEN, "token_type": "bot", "bot_user_id": "U0KRQLJ9H",
                "team": null, "enterprise": { "id": "E12345678", "name": "slack-sports" },
                "is_enterprise_install": true
            })),
        )
        .await;

        let error = client.oauth_access("id", &SecretString::from(CLIENT_SECRET), "code", None).await.unwrap_err();

        assert!(
            matches!(&error, SlackApiError::Api { method: "oauth.v2.access", error } if error == ORG_WIDE_INSTALL_UNSUPPORTED)
        );
    }

    #[tokio::test]
    async fn oauth_access_with_a_spent_code_surfaces_invalid_code() {
        let (server, client) = slack().await;
        answer(
            &server,
            "/oauth.v2.access",
            ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": "invalid_code" })),
        )
        .await;

        let error = client.oauth_access("id", &SecretString::from(CLIENT_SECRET), "code", None).await.unwrap_err();

        assert!(matches!(&error, SlackApiError::Api { method: "oauth.v2.access", error } if error == "invalid_code"));
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn user_info_prefers_the_display_name_and_reads_the_time_zone() {
        let (server, client) = slack().await;
        Mock::given(method("POST"))
            .and(path("/users.info"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_string_contains("user=W012A3CDE"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true,
                "user": {
                    "id": "W012A3CDE",
                    "team_id": "T012AB3C4",
                    "name": "spengler",
                    "deleted": false,
                    "real_name": "Egon Spengler",
                    "tz": "America/Los_Angeles",
                    "tz_label": "Pacific Daylight Time",
                    "tz_offset": -25200,
                    "profile": {
                        "real_name": "Egon Spengler",
                        "display_name": "spengler",
                        "real_name_normalized": "Egon Spengler",
                        "display_name_normalized": "spengler",
                        "team": "T012AB3C4"
                    },
                    "is_admin": true,
                    "is_bot": false,
                    "updated": 1502138686
                }
            })))
            .expect(1)
            .mount(&server)
            .await;

        let user = client.user_info(&token(), "W012A3CDE").await.unwrap();

        assert_eq!(
            user,
            UserInfo {
                id: "W012A3CDE".into(),
                display_name: "spengler".into(),
                time_zone: Some("America/Los_Angeles".into())
            }
        );
    }

    #[tokio::test]
    async fn user_info_falls_back_to_the_real_name_then_the_handle() {
        let (server, client) = slack().await;
        Mock::given(method("POST"))
            .and(path("/users.info"))
            .and(body_string_contains("user=U1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true,
                "user": { "id": "U1", "name": "egon", "real_name": "Egon Spengler", "profile": { "display_name": "" } }
            })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/users.info"))
            .and(body_string_contains("user=U2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true,
                "user": { "id": "U2", "name": "ray", "real_name": "", "tz": "", "profile": { "display_name": "", "real_name": "" } }
            })))
            .mount(&server)
            .await;

        let with_real_name = client.user_info(&token(), "U1").await.unwrap();
        let with_handle_only = client.user_info(&token(), "U2").await.unwrap();

        assert_eq!(with_real_name.display_name, "Egon Spengler");
        assert_eq!(with_real_name.time_zone, None);
        assert_eq!(with_handle_only.display_name, "ray");
        assert_eq!(with_handle_only.time_zone, None);
    }

    #[tokio::test]
    async fn response_url_gets_the_json_message_without_a_token_and_any_2xx_is_success() {
        let server = MockServer::start().await;
        let client = SlackClient::new(&format!("{}/api", server.uri()));
        let reply = json!({ "response_type": "ephemeral", "text": "Proposed experiment #7" });
        Mock::given(method("POST"))
            .and(path("/commands/T123/456/abcdef"))
            .and(header("content-type", "application/json; charset=utf-8"))
            .and(body_partial_json(reply.clone()))
            .and(no_authorization_header)
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;

        client.post_to_response_url(&format!("{}/commands/T123/456/abcdef", server.uri()), &reply).await.unwrap();
    }

    #[tokio::test]
    async fn response_url_failure_names_response_url_and_hides_the_url() {
        let server = MockServer::start().await;
        let client = SlackClient::new(&server.uri());
        answer(&server, "/commands/T123/456/secretpath", ResponseTemplate::new(404).set_body_string("expired_url"))
            .await;

        let expired = client
            .post_to_response_url(&format!("{}/commands/T123/456/secretpath", server.uri()), &json!({ "text": "hi" }))
            .await
            .unwrap_err();
        let closed = closed_port_url();
        let unreachable = SlackClient::new(&closed)
            .post_to_response_url(&format!("{closed}/commands/T123/456/secretpath"), &json!({ "text": "hi" }))
            .await
            .unwrap_err();

        assert!(matches!(expired, SlackApiError::Http { method: "response_url", status: 404 }));
        assert!(matches!(unreachable, SlackApiError::Transport { method: "response_url", .. }));
        for shown in [expired.to_string(), unreachable.to_string(), format!("{unreachable:?}")] {
            assert!(!shown.contains("secretpath"), "{shown}");
        }
    }

    #[tokio::test]
    async fn a_response_url_outside_slack_is_never_called() {
        let slack = MockServer::start().await;
        let elsewhere = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&elsewhere).await;
        let client = SlackClient::new(&format!("{}/api", slack.uri()));
        for url in [
            format!("{}/commands/T123/456/abcdef", elsewhere.uri()),
            "http://hooks.slack.com/commands/T1/2/3".to_string(),
            "https://hooks.slack.com.evil.example/commands/T1/2/3".to_string(),
            "https://hooks.slack.com:8443/commands/T1/2/3".to_string(),
            "not a url".to_string(),
        ] {
            let refused = client.post_to_response_url(&url, &json!({ "text": "hi" })).await.unwrap_err();
            assert!(matches!(refused, SlackApiError::Api { method: "response_url", .. }), "{url}: {refused}");
        }
        assert!(client.is_slack_response_url("https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmib"));
        assert!(client.is_slack_response_url("https://hooks.slack.com/actions/T01/1/abc"));
    }

    #[tokio::test]
    async fn slack_refusal_surfaces_the_method_and_error_name_and_is_not_retried() {
        let (server, client) = slack().await;
        answer(
            &server,
            "/chat.postMessage",
            ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": "channel_not_found" })),
        )
        .await;

        let error = client.post_message(&token(), "C404", &message(), None).await.unwrap_err();

        assert!(
            matches!(&error, SlackApiError::Api { method: "chat.postMessage", error } if error == "channel_not_found")
        );
        assert_eq!(error.to_string(), "Slack chat.postMessage failed: channel_not_found");
        assert!(!error.is_retryable());
        assert_eq!(error.retry_after(), None);
    }

    #[tokio::test]
    async fn not_in_channel_is_told_apart_from_a_channel_that_does_not_exist() {
        let (server, client) = slack().await;
        answer(
            &server,
            "/chat.postMessage",
            ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": "not_in_channel" })),
        )
        .await;
        answer(
            &server,
            "/chat.update",
            ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": "channel_not_found" })),
        )
        .await;

        let not_invited = client.post_message(&token(), "C123", &message(), None).await.unwrap_err();
        let missing = client.update_message(&token(), "C404", "1.2", &message()).await.unwrap_err();

        assert!(not_invited.is_not_in_channel());
        assert!(!not_invited.is_retryable(), "trying again does not help; an invitation does");
        assert!(!missing.is_not_in_channel());
    }

    #[tokio::test]
    async fn rate_limited_answer_carries_retry_after_seconds_and_is_retryable() {
        let (server, client) = slack().await;
        answer(
            &server,
            "/chat.postMessage",
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_json(json!({ "ok": false, "error": "ratelimited" })),
        )
        .await;

        let error = client.post_message(&token(), "C123", &message(), None).await.unwrap_err();

        assert!(matches!(
            error,
            SlackApiError::RateLimited { method: "chat.postMessage", retry_after } if retry_after == Duration::from_secs(7)
        ));
        assert!(error.is_retryable());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    }

    #[tokio::test]
    async fn rate_limit_without_a_usable_retry_after_waits_one_second_and_a_huge_one_is_capped() {
        let (server, client) = slack().await;
        answer(&server, "/chat.update", ResponseTemplate::new(429)).await;
        answer(&server, "/chat.postEphemeral", ResponseTemplate::new(429).insert_header("Retry-After", "soon")).await;
        answer(&server, "/views.open", ResponseTemplate::new(429).insert_header("Retry-After", "86400")).await;

        let missing = client.update_message(&token(), "C123", "1.2", &message()).await.unwrap_err();
        let garbled = client.post_ephemeral(&token(), "C123", "U1", &message()).await.unwrap_err();
        let huge = client.open_view(&token(), "trigger", &json!({ "type": "modal" })).await.unwrap_err();

        assert_eq!(missing.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(garbled.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(huge.retry_after(), Some(Duration::from_secs(15 * 60)));
    }

    #[tokio::test]
    async fn server_error_is_an_http_error_worth_retrying() {
        let (server, client) = slack().await;
        answer(&server, "/chat.postMessage", ResponseTemplate::new(500)).await;
        answer(&server, "/chat.update", ResponseTemplate::new(404)).await;

        let server_error = client.post_message(&token(), "C123", &message(), None).await.unwrap_err();
        let not_found = client.update_message(&token(), "C123", "1.2", &message()).await.unwrap_err();

        assert!(matches!(server_error, SlackApiError::Http { method: "chat.postMessage", status: 500 }));
        assert!(server_error.is_retryable());
        assert!(matches!(not_found, SlackApiError::Http { method: "chat.update", status: 404 }));
        assert!(!not_found.is_retryable());
    }

    #[tokio::test]
    async fn invalid_auth_is_not_retryable_but_slack_internal_error_is() {
        let (server, client) = slack().await;
        answer(
            &server,
            "/chat.postMessage",
            ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": "invalid_auth" })),
        )
        .await;
        answer(
            &server,
            "/chat.update",
            ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": "internal_error" })),
        )
        .await;

        let invalid_auth = client.post_message(&token(), "C123", &message(), None).await.unwrap_err();
        let internal = client.update_message(&token(), "C123", "1.2", &message()).await.unwrap_err();

        assert!(matches!(&invalid_auth, SlackApiError::Api { error, .. } if error == "invalid_auth"));
        assert!(!invalid_auth.is_retryable());
        assert!(internal.is_retryable());
    }

    #[tokio::test]
    async fn a_non_json_answer_is_an_invalid_response_and_not_retried() {
        let (server, client) = slack().await;
        answer(&server, "/chat.postMessage", ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
            .await;

        let error = client.post_message(&token(), "C123", &message(), None).await.unwrap_err();

        assert!(
            matches!(&error, SlackApiError::Api { method: "chat.postMessage", error } if error == INVALID_RESPONSE)
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn unreachable_slack_is_a_transport_error_worth_retrying() {
        let client = SlackClient::new(&closed_port_url());

        let error = client.post_message(&token(), "C123", &message(), None).await.unwrap_err();

        assert!(matches!(error, SlackApiError::Transport { method: "chat.postMessage", .. }));
        assert!(error.is_retryable());
        assert_eq!(error.method(), "chat.postMessage");
    }

    #[tokio::test]
    async fn tokens_and_client_secret_never_appear_in_errors_or_debug_output() {
        let (server, client) = slack().await;
        answer(
            &server,
            "/chat.postMessage",
            ResponseTemplate::new(200).set_body_json(json!({ "ok": false, "error": "not_in_channel" })),
        )
        .await;
        answer(&server, "/oauth.v2.access", ResponseTemplate::new(500)).await;
        let unreachable = SlackClient::new(&closed_port_url());
        let refresh = "xoxe-1-refresh-secret";

        let refused = client.post_message(&token(), "C123", &message(), None).await.unwrap_err();
        let transport = unreachable.post_message(&token(), "C123", &message(), None).await.unwrap_err();
        let oauth = client.oauth_access("id", &SecretString::from(CLIENT_SECRET), "code", None).await.unwrap_err();
        let bad_header =
            client.post_message(&SecretString::from("xoxb-bad\ntoken"), "C123", &message(), None).await.unwrap_err();
        let access = OAuthAccess {
            access_token: token(),
            bot_user_id: Some("U0KRQLJ9H".into()),
            team_id: "T9TK3CUKW".into(),
            team_name: "Slack Softball Team".into(),
            enterprise_id: None,
            is_enterprise_install: false,
            refresh_token: Some(SecretString::from(refresh)),
            expires_in: Some(43200),
        };

        let shown = [
            refused.to_string(),
            format!("{refused:?}"),
            transport.to_string(),
            format!("{transport:?}"),
            oauth.to_string(),
            format!("{oauth:?}"),
            bad_header.to_string(),
            format!("{bad_header:?}"),
            format!("{client:?}"),
            format!("{access:?}"),
        ];
        for text in &shown {
            for secret in [TOKEN, CLIENT_SECRET, refresh, "xoxb-bad"] {
                assert!(!text.contains(secret), "{secret} leaked in {text}");
            }
        }
        assert_eq!(format!("{client:?}"), format!("SlackClient {{ base_url: {:?}, .. }}", server.uri()));
        assert!(matches!(&bad_header, SlackApiError::Api { error, .. } if error == "invalid_auth"));
    }

    #[test]
    fn base_url_with_a_trailing_slash_still_names_methods_correctly() {
        let client = SlackClient::new("https://slack.com/api/");

        assert_eq!(client.method_url("chat.postMessage"), "https://slack.com/api/chat.postMessage");
    }
}
