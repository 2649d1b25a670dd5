//! Slack's endpoints. Every request is verified before anything reads it (401 and nothing else on
//! failure); answers go back within Slack's three seconds, and anything slow (Web API calls) runs
//! after the acknowledgement.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use serde_json::json;
use tracing::Instrument;

use super::api::SlackApiError;
use super::render::{self, FieldErrors};
use super::verify::verify;
use super::wire::{self, Event, EventEnvelope, Interaction, ModalOrigin, SlashCommand};
use super::{PLATFORM, Slack, SlackApp, Standing, oauth};
use crate::commands::actions::{self, Clicked, FormFor};
use crate::commands::execute::{help_reply, team_channel_only, usage_reply};
use crate::commands::{Command, ExperimentCommand, HelpTopic, Invocation, PledgeCommand, grammar};
use crate::domain::ids::ExperimentRef;
use crate::http::HttpError;
use crate::message::form as forms;
use crate::message::{Message, Visibility};
use crate::platforms::Core;
use crate::store::WorkspaceId;

/// Slack's endpoints once a signing secret is configured (the manifest is served either way).
pub fn routes(core: Core, slack: Arc<Slack>) -> Router {
    Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events))
        .route("/slack/install", get(oauth::install))
        .route("/slack/oauth/callback", get(oauth::callback))
        .with_state(Arc::new(SlackApp { core, slack }))
}

fn slack(app: &SlackApp) -> &Arc<Slack> {
    &app.slack
}

/// Checks the request's Slack signature before anything else reads it. A refusal is 401 and
/// nothing else (counted, and logged at most once per interval); an exact repeat of a request
/// already taken (a replay within Slack's five minutes) is answered with nothing and not run again.
fn refuse_unverified(app: &SlackApp, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let now = app.clock.now().timestamp();
    let slack = slack(app);
    match verify(headers, body, slack.signing_secrets(), now) {
        Ok(()) if slack.first_time(headers, now) => None,
        Ok(()) => {
            tracing::debug!("dropped a repeat of a Slack request already taken");
            Some(StatusCode::OK.into_response())
        }
        Err(error) => {
            if let Some(since_last) = slack.rejections.count(now) {
                tracing::info!(%error, refused = since_last, total = slack.rejections.total(), "refused Slack requests");
            }
            Some(HttpError::Unauthorized.into_response())
        }
    }
}

fn bad_request(what: &'static str) -> Response {
    HttpError::BadRequest(what).into_response()
}

fn json(value: serde_json::Value) -> Response {
    axum::Json(value).into_response()
}

/// Help never changes while the process runs, so each topic is rendered to JSON once.
fn help_response(topic: HelpTopic) -> Response {
    static RENDERED: [OnceLock<Bytes>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match topic {
        HelpTopic::All => &RENDERED[0],
        HelpTopic::Experiment => &RENDERED[1],
        HelpTopic::Pledge => &RENDERED[2],
    };
    let body = slot.get_or_init(|| Bytes::from(render::command_response(&help_reply(topic)).to_string())).clone();
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A private answer to a slash command.
fn private(text: impl Into<String>) -> Response {
    json(render::command_response(&Message::private(text)))
}

const SOMETHING_WENT_WRONG: &str =
    "Something went wrong on nudge's side and it has been logged. Please try again in a moment.";

/// The workspace a verified request's team belongs to, or what to tell the person instead (the
/// install link, or an apology that has been logged).
async fn workspace_for(app: &SlackApp, team_id: &str, team_name: &str) -> Result<WorkspaceId, String> {
    let slack = slack(app);
    match slack.standing(&app.store, team_id, team_name, app.clock.now()).await {
        Ok(Standing::Ready(ws)) => Ok(ws),
        Ok(Standing::NotInstalled) => Err(not_installed(slack)),
        Err(error) => {
            tracing::error!(%error, "cannot resolve the Slack workspace");
            Err(SOMETHING_WENT_WRONG.to_string())
        }
    }
}

fn not_installed(slack: &Slack) -> String {
    format!("nudge is not installed in this workspace yet. Install it here: {}", slack.install_url())
}

// ----- slash commands ---------------------------------------------------------------------------

async fn commands(State(app): State<Arc<SlackApp>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_unverified(&app, &headers, &body) {
        return refused;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<SlashCommand>(&body) else {
        return bad_request("a Slack slash command");
    };
    let text = wire::unescape(&form.text);
    if let Some(request) = modal_request(&form.command, &text) {
        return open_modal_for_command(app, form, request).await;
    }
    let command = match grammar::parse(&form.command, &text) {
        Ok(command) => command,
        Err(usage) => {
            let typed = format!("{} {text}", form.command);
            return json(render::command_response(&usage_reply(&usage, &typed)));
        }
    };
    // Help needs no workspace and no database: the fastest answer nudge gives.
    if let Command::Help(topic) = command {
        return help_response(topic);
    }
    let typed = format!("{} {text}", form.command);
    let response_url = form.response_url.as_deref().map(str::to_string);
    let team_id = form.team_id.to_string();
    let team_domain = form.team_domain.to_string();
    let (channel_id, channel_name) = (form.channel_id.to_string(), form.channel_name.to_string());
    let (user_id, user_name) = (form.user_id.to_string(), form.user_name.to_string());
    // The command runs on its own task, so it finishes (or fails) as one whole even when Slack's
    // three seconds run out first: then the answer given now says so, and the outcome follows
    // through the response URL. A command is never applied without its author hearing of it.
    let run = {
        let app = app.clone();
        async move {
            let ws = workspace_for(&app, &team_id, &team_domain).await?;
            let direct = wire::is_direct(&channel_id, &channel_name);
            let invocation = Invocation {
                workspace: ws,
                channel_id,
                channel_name,
                member_id: user_id.clone(),
                member_name: user_name,
                now: app.clock.now(),
                direct,
            };
            let span = tracing::info_span!("command", workspace = ws.0, channel = %invocation.channel_id, command = %command_name(&command));
            match app.commands.execute(invocation, command).instrument(span).await {
                Ok(reply) => {
                    slack(&app).learn_profile(&app.core, ws, &team_id, &user_id);
                    Ok(reply)
                }
                Err(error) => {
                    tracing::error!(error = %error, "a Slack command failed");
                    Err(SOMETHING_WENT_WRONG.to_string())
                }
            }
        }
    };
    let mut running = app.core.tasks.spawn(run);
    match tokio::time::timeout(ANSWER_WITHIN, &mut running).await {
        Ok(Ok(Ok(reply))) => json(render::command_response(&reply)),
        Ok(Ok(Err(answer))) => private(answer),
        Ok(Err(_)) => private(SOMETHING_WENT_WRONG),
        Err(_) => {
            tracing::warn!("a Slack command is taking longer than Slack waits; its outcome follows by response URL");
            let app = app.clone();
            app.core.tasks.clone().spawn(async move {
                let outcome = match running.await {
                    Ok(Ok(reply)) => reply,
                    _ => Message::private(format!(
                        "`{typed}` was not applied: nudge's database did not answer in time. Please try it again."
                    )),
                };
                let Some(url) = response_url else { return };
                if let Err(error) =
                    slack(&app).client.post_to_response_url(&url, &render::command_response(&outcome)).await
                {
                    tracing::warn!(%error, "cannot tell a late command's outcome");
                }
            });
            private(STILL_WORKING)
        }
    }
}

/// Slack waits three seconds for an answer; past this, nudge answers that the command is still
/// being tried, so the person never sees Slack's own timeout error.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_millis(2_500);

const STILL_WORKING: &str = "nudge's database is slow to answer right now. Your command is still being tried: \
     what became of it follows here in a moment.";

/// Modals nudge opens instead of answering with text.
enum ModalRequest {
    Propose,
    Close(ExperimentRef),
}

/// `/experiment` or `/experiment propose` with nothing after it, and `/experiment close E-3`
/// without an outcome, open forms; recognised before the grammar calls them help or incomplete.
fn modal_request(command_name: &str, text: &str) -> Option<ModalRequest> {
    if !command_name.trim_start_matches('/').eq_ignore_ascii_case("experiment") {
        return None;
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [] => Some(ModalRequest::Propose),
        [word] if word.eq_ignore_ascii_case("propose") => Some(ModalRequest::Propose),
        [word, id] if word.eq_ignore_ascii_case("close") => id.parse().ok().map(ModalRequest::Close),
        _ => None,
    }
}

async fn open_modal_for_command(app: Arc<SlackApp>, form: SlashCommand<'_>, request: ModalRequest) -> Response {
    // A proposal belongs to a team channel: the form is not opened where its submission would be
    // refused after all the typing.
    if matches!(request, ModalRequest::Propose) && wire::is_direct(&form.channel_id, &form.channel_name) {
        return json(render::command_response(&team_channel_only()));
    }
    let Some(trigger_id) = form.trigger_id.as_deref().map(str::to_string) else {
        return private("Slack sent no trigger id, so the form cannot open; type the whole command instead.");
    };
    let ws = match workspace_for(&app, &form.team_id, &form.team_domain).await {
        Ok(ws) => ws,
        Err(answer) => return private(answer),
    };
    let origin = ModalOrigin { channel_id: form.channel_id.to_string(), channel_name: form.channel_name.to_string() };
    let metadata = serde_json::to_string(&origin).unwrap_or_default();
    let view = match request {
        ModalRequest::Propose => render::modal(&forms::propose(), &metadata),
        ModalRequest::Close(id) => match actions::form_for(&app.store, ws, &form.user_id, FormFor::Close(id)).await {
            Ok(Ok(close)) => render::modal(&close, &metadata),
            Ok(Err(refusal)) => return json(render::command_response(&refusal)),
            Err(error) => {
                tracing::error!(%error, "cannot load an experiment for a form");
                return private(SOMETHING_WENT_WRONG);
            }
        },
    };
    let response_url = form.response_url.as_deref().map(str::to_string);
    spawn_open_view(app, form.team_id.to_string(), trigger_id, view, response_url);
    // An empty 200 acknowledges the command without a message; the form is the answer.
    StatusCode::OK.into_response()
}

/// views.open must use the trigger id within about three seconds, so it runs right after the ack.
/// When Slack will not open the form (busy, rate limited), the person hears so through the
/// command's or button's response URL rather than seeing nothing happen.
fn spawn_open_view(
    app: Arc<SlackApp>,
    team_id: String,
    trigger_id: String,
    view: serde_json::Value,
    response_url: Option<String>,
) {
    app.tasks.clone().spawn(async move {
        let slack = slack(&app);
        let opened = match slack.token_for(&app.store, &team_id).await {
            Ok(token) => {
                slack.client.open_view(&token, &trigger_id, &view).await.map_err(|e| (e.retry_after(), e.to_string()))
            }
            Err(error) => Err((None, error.to_string())),
        };
        let Err((retry_after, error)) = opened else { return };
        tracing::warn!(%error, "could not open a Slack form");
        let Some(response_url) = response_url else { return };
        let text = match retry_after {
            Some(wait) => format!(
                "Slack is busy and did not open the form; try again in {} seconds, or type the whole command.",
                wait.as_secs().max(1)
            ),
            None => "Slack did not open the form; try again, or type the whole command.".to_string(),
        };
        let mut message = render::message(&Message::private(text));
        message["response_type"] = json!("ephemeral");
        message["replace_original"] = json!(false);
        if let Err(error) = slack.client.post_to_response_url(&response_url, &message).await {
            tracing::warn!(%error, "could not say that a Slack form did not open");
        }
    });
}

// ----- interactivity ----------------------------------------------------------------------------

async fn interactions(State(app): State<Arc<SlackApp>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_unverified(&app, &headers, &body) {
        return refused;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<wire::InteractionForm>(&body) else {
        return bad_request("a Slack interaction");
    };
    let interaction = match serde_json::from_str::<Interaction>(&form.payload) {
        Ok(interaction) => interaction,
        Err(error) => {
            tracing::info!(%error, "unreadable Slack interaction payload");
            return bad_request("a Slack interaction payload");
        }
    };
    match interaction {
        Interaction::BlockActions(actions) => block_actions(app, actions).await,
        Interaction::ViewSubmission(submission) => view_submission(app, submission).await,
        Interaction::ViewClosed(_) | Interaction::Other => StatusCode::OK.into_response(),
    }
}

async fn block_actions(app: Arc<SlackApp>, payload: wire::BlockActions) -> Response {
    let Some(team_id) = wire::team_of(payload.team.as_ref(), &payload.user) else {
        return StatusCode::OK.into_response();
    };
    let Some(action) = payload.actions.first() else {
        return StatusCode::OK.into_response();
    };
    let Some(kind) = render::parse_action(&action.action_id, action.value.as_deref().unwrap_or_default()) else {
        // Buttons from an older version, or another app's: acknowledged so Slack shows no error.
        tracing::info!(action_id = %action.action_id, "unknown Slack action");
        return StatusCode::OK.into_response();
    };
    let Ok(ws) = workspace_for(&app, &team_id, "").await else {
        return StatusCode::OK.into_response();
    };
    let channel = payload.channel.clone().unwrap_or(wire::Channel { id: String::new(), name: String::new() });
    let origin = ModalOrigin { channel_id: channel.id.clone(), channel_name: channel.name.clone() };
    let metadata = serde_json::to_string(&origin).unwrap_or_default();
    let command = match actions::clicked(kind) {
        Clicked::Run(command) => command,
        Clicked::Open(what) => {
            match actions::form_for(&app.store, ws, &payload.user.id, what).await {
                Ok(Ok(form)) => {
                    let view = render::modal(&form, &metadata);
                    spawn_open_view(app, team_id, payload.trigger_id, view, payload.response_url);
                }
                // A form that cannot succeed is not opened: the person hears why instead.
                Ok(Err(refusal)) => answer_button(&app, payload.response_url, refusal),
                Err(error) => {
                    tracing::error!(%error, "cannot load what a Slack form is about");
                    answer_button(&app, payload.response_url, Message::private(SOMETHING_WENT_WRONG));
                }
            }
            return StatusCode::OK.into_response();
        }
    };
    let invocation = Invocation {
        workspace: ws,
        direct: wire::is_direct(&channel.id, &channel.name),
        channel_id: channel.id,
        channel_name: channel.name,
        member_id: payload.user.id.clone(),
        member_name: payload.user.display_name().to_string(),
        now: app.clock.now(),
    };
    let reply = run(&app, invocation, command, "a Slack button").await;
    answer_button(&app, payload.response_url, reply);
    StatusCode::OK.into_response()
}

/// Answers a button through its response URL, after the acknowledgement.
fn answer_button(app: &SlackApp, response_url: Option<String>, reply: Message) {
    let Some(response_url) = response_url else { return };
    let slack = slack(app).clone();
    app.tasks.clone().spawn(async move {
        let mut message = render::message(&reply);
        message["response_type"] = json!(response_type(reply.visibility));
        message["replace_original"] = json!(false);
        if let Err(error) = slack.client.post_to_response_url(&response_url, &message).await {
            tracing::warn!(%error, "could not answer a Slack button");
        }
    });
}

/// Calls Slack with the team's bot token after the request has been answered; a failure (no
/// token, or Slack's refusal) is logged as "could not {what}".
fn with_token_after_answer<F, Call>(app: &SlackApp, team_id: String, what: &'static str, call: F)
where
    F: FnOnce(Arc<Slack>, SecretString) -> Call + Send + 'static,
    Call: Future<Output = Result<(), SlackApiError>> + Send,
{
    let (slack, store) = (slack(app).clone(), app.store.clone());
    app.tasks.spawn(async move {
        let result = match slack.token_for(&store, &team_id).await {
            Ok(token) => call(slack, token).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "could not {what}");
        }
    });
}

/// Runs a command from a button or a form, in a span naming where it came from; a failure is
/// logged and answered with an apology.
async fn run(app: &SlackApp, invocation: Invocation, command: Command, what: &str) -> Message {
    let span = tracing::info_span!(
        "command",
        workspace = invocation.workspace.0,
        channel = %invocation.channel_id,
        command = command_name(&command),
        from = what,
    );
    match app.commands.execute(invocation, command).instrument(span).await {
        Ok(reply) => reply,
        Err(error) => {
            tracing::error!(%error, "{what} failed");
            Message::private(SOMETHING_WENT_WRONG)
        }
    }
}

/// The command as logs name it: its family and subcommand, never its text.
fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Help(_) => "help",
        Command::Experiment(ExperimentCommand::Propose(_)) => "experiment propose",
        Command::Experiment(ExperimentCommand::Start(_)) => "experiment start",
        Command::Experiment(ExperimentCommand::Update { .. }) => "experiment update",
        Command::Experiment(ExperimentCommand::Close { .. }) => "experiment close",
        Command::Experiment(ExperimentCommand::Vote(_)) => "experiment vote",
        Command::Experiment(_) => "experiment",
        Command::Pledge(PledgeCommand::Done { .. }) => "pledge done",
        Command::Pledge(PledgeCommand::Extend { .. }) => "pledge extend",
        Command::Pledge(PledgeCommand::Release { .. }) => "pledge release",
        Command::Pledge(_) => "pledge",
        Command::Nudge(_) => "nudge",
    }
}

fn response_type(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::Private => "ephemeral",
        Visibility::Channel => "in_channel",
    }
}

async fn view_submission(app: Arc<SlackApp>, payload: wire::ViewSubmission) -> Response {
    let command = match render::read_submission(&payload.view.callback_id, &payload.view.state.values) {
        Ok(command) => command,
        Err(errors) => return submission_errors(errors, &payload.view.state.values),
    };
    let Some(team_id) = wire::team_of(payload.team.as_ref(), &payload.user) else {
        return StatusCode::OK.into_response();
    };
    let Ok(origin) = serde_json::from_str::<ModalOrigin>(&payload.view.private_metadata) else {
        tracing::info!("a Slack form came back without its channel");
        return StatusCode::OK.into_response();
    };
    let Ok(ws) = workspace_for(&app, &team_id, "").await else {
        return StatusCode::OK.into_response();
    };
    let invocation = Invocation {
        workspace: ws,
        direct: wire::is_direct(&origin.channel_id, &origin.channel_name),
        channel_id: origin.channel_id.clone(),
        channel_name: origin.channel_name,
        member_id: payload.user.id.clone(),
        member_name: payload.user.display_name().to_string(),
        now: app.clock.now(),
    };
    let reply = run(&app, invocation, command, "a Slack form").await;
    // A refusal of one answer (a date already past) is shown next to that field, and the form
    // stays open with everything typed in it; nothing was written.
    if let Some(field) = reply.field.as_deref()
        && payload.view.state.values.get(field).is_some()
    {
        return field_errors(FieldErrors::from([(field.to_string(), reply.text)]));
    }
    let user = payload.user.id;
    with_token_after_answer(&app, team_id, "post a form's result to Slack", move |slack, token| async move {
        let message = render::message(&reply);
        match reply.visibility {
            Visibility::Channel => {
                slack.client.post_message(&token, &origin.channel_id, &message, None).await.map(|_| ())
            }
            Visibility::Private => slack.client.post_ephemeral(&token, &origin.channel_id, &user, &message).await,
        }
    });
    // An empty 200 closes the modal.
    StatusCode::OK.into_response()
}

fn field_errors(errors: FieldErrors) -> Response {
    json(json!({ "response_action": "errors", "errors": errors }))
}

/// Errors of a submitted form. Slack accepts errors only under the form's own block ids, so a
/// problem that belongs to no field (a form nudge no longer knows) is shown under the form's first
/// field, or, in a form without fields, as the form's whole content.
fn submission_errors(errors: FieldErrors, values: &serde_json::Value) -> Response {
    let fields: Vec<&String> = values.as_object().map(|v| v.keys().collect()).unwrap_or_default();
    let Some(first) = fields.first() else {
        let text = errors.into_values().collect::<Vec<_>>().join("\n");
        return json(json!({
            "response_action": "update",
            "view": {
                "type": "modal",
                "title": {"type": "plain_text", "text": "nudge"},
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
            }
        }));
    };
    let placed: FieldErrors = errors
        .into_iter()
        .map(|(field, problem)| if fields.contains(&&field) { (field, problem) } else { ((*first).clone(), problem) })
        .collect();
    field_errors(placed)
}

// ----- events -----------------------------------------------------------------------------------

async fn events(State(app): State<Arc<SlackApp>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_unverified(&app, &headers, &body) {
        return refused;
    }
    let envelope = match serde_json::from_slice::<EventEnvelope>(&body) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::info!(%error, "unreadable Slack event");
            return bad_request("a Slack event");
        }
    };
    let callback = match envelope {
        EventEnvelope::UrlVerification { challenge } => return json(json!({ "challenge": challenge })),
        EventEnvelope::EventCallback(callback) => callback,
        EventEnvelope::Other => return StatusCode::OK.into_response(),
    };
    let channel = match &callback.event {
        Event::AppMention { channel, .. } => channel.as_str(),
        _ => "",
    };
    let span = tracing::info_span!("event", team = %callback.team_id, channel, event_id = %callback.event_id);
    // Slack retries (with or without retry headers); the unique event id makes the second one a no-op.
    let first_time = async {
        let mut tx = app.store.begin().await?;
        let new = tx.record_event_delivery(PLATFORM, &callback.team_id, &callback.event_id, app.clock.now()).await?;
        tx.commit().await?;
        Ok::<bool, crate::store::StoreError>(new)
    }
    .instrument(span)
    .await;
    match first_time {
        Ok(true) => {}
        Ok(false) => return StatusCode::OK.into_response(),
        // A 500 makes Slack retry later, which is what we want when the database hiccups.
        Err(error) => {
            return HttpError::Internal(anyhow::Error::new(error).context("cannot record a Slack event"))
                .into_response();
        }
    }
    if let Event::AppMention { user, channel, .. } = callback.event {
        with_token_after_answer(&app, callback.team_id, "answer a Slack mention", move |slack, token| async move {
            let message = render::message(&help_reply(HelpTopic::All));
            slack.client.post_ephemeral(&token, &channel, &user, &message).await
        });
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_experiment_commands_open_forms() {
        assert!(matches!(modal_request("/experiment", ""), Some(ModalRequest::Propose)));
        assert!(matches!(modal_request("/experiment", "  propose "), Some(ModalRequest::Propose)));
        assert!(matches!(modal_request("/experiment", "close E-3"), Some(ModalRequest::Close(ExperimentRef(3)))));
        assert!(modal_request("/experiment", "close E-3 won yes").is_none());
        assert!(modal_request("/experiment", "list").is_none());
        assert!(modal_request("/pledge", "").is_none());
    }
}
