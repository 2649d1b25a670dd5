//! Teams' endpoints: `POST /teams/messages` (the bot's messaging endpoint) and `GET /teams/app.zip`.
//! Every activity's JWT is checked before anything else is done with it (an empty 401, or 403 for
//! an unendorsed key, and no database work or outbound call on failure). A message is
//! acknowledged at once and answered through the Bot Connector; a button's invoke is answered in
//! the HTTP response. The same activity delivered again is acknowledged and has no second effect.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tracing::Instrument;

use super::render::{self, CARD_CONTENT_TYPE, VERB_ACTION, VERB_FORM};
use super::verify::{Claimed, Refusal};
use super::wire::{Activity, ConversationRecord, Place};
use super::{PLATFORM, Teams, records};
use crate::commands::actions::{self, Clicked, FormFor};
use crate::commands::execute::{help_reply, team_channel_only, usage_reply};
use crate::commands::form::{Answers, FieldErrors};
use crate::commands::{Command, Invocation, grammar};
use crate::http::HttpError;
use crate::message::form::{self as forms, Form, FormKind};
use crate::message::{Message, Visibility};
use crate::platforms::Core;
use crate::store::{ChannelDefaults, StoreError, WorkspaceId};

const SOMETHING_WENT_WRONG: &str =
    "Something went wrong on nudge's side and it has been logged. Please try again in a moment.";

/// What every Teams handler reaches.
#[derive(Clone)]
pub struct TeamsApp {
    pub core: Core,
    pub teams: Arc<Teams>,
}

/// Nothing is served for Teams until it is configured: the app package needs the app id.
pub fn setup_routes(_core: &Core) -> Router {
    Router::new()
}

pub fn routes(core: Core, teams: Arc<Teams>) -> Router {
    Router::new()
        .route("/teams/messages", post(messages))
        .route("/teams/app.zip", get(super::package::app_zip))
        .with_state(Arc::new(TeamsApp { core, teams }))
}

async fn messages(State(app): State<Arc<TeamsApp>>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match app.teams.verifier.verify(authorization, &Claimed::of(&body)).await {
        Ok(()) => {}
        Err(refusal) => {
            let now = app.core.clock.now().timestamp();
            if let Some(since_last) = app.teams.rejections.count(now) {
                let total = app.teams.rejections.total();
                tracing::info!(last = ?refusal, refused = since_last, total, "refused Teams activities");
            }
            return match refusal {
                Refusal::NotEndorsed => HttpError::Forbidden.into_response(),
                Refusal::Unauthorized(_) => HttpError::Unauthorized.into_response(),
            };
        }
    }
    let activity: Activity = match serde_json::from_slice(&body) {
        Ok(activity) => activity,
        Err(error) => {
            tracing::info!(%error, "unreadable Teams activity");
            return HttpError::BadRequest("a Bot Framework activity").into_response();
        }
    };
    // A single-tenant bot: another tenant's activity (or another channel's) is acknowledged and ignored.
    if activity.channel_id != "msteams" || activity.tenant() != Some(app.teams.settings.tenant_id.as_str()) {
        tracing::info!(channel = %activity.channel_id, "ignored an activity from another channel or tenant");
        return StatusCode::OK.into_response();
    }
    let now = app.core.clock.now();
    let ws = match app.teams.workspace(&app.core.store, now).await {
        Ok(ws) => ws,
        Err(error) => return internal(error, "cannot resolve the Teams workspace"),
    };
    let span = tracing::info_span!("activity", workspace = ws.0, kind = %activity.kind, conversation = %activity.conversation_key());
    match first_time(&app, ws, &activity).instrument(span.clone()).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!("dropped a redelivered Teams activity");
            return match activity.kind.as_str() {
                "invoke" => invoke_message("That was done already."),
                _ => StatusCode::OK.into_response(),
            };
        }
        // A 500 makes Teams deliver it again, which is what we want when the database hiccups.
        Err(error) => return internal(error, "cannot record a Teams activity"),
    }
    match activity.kind.as_str() {
        "message" => {
            let app = app.clone();
            app.core.tasks.clone().spawn(message(app, ws, activity).instrument(span));
            StatusCode::OK.into_response()
        }
        "invoke" if activity.name.as_deref() == Some("adaptiveCard/action") => {
            invoke(&app, ws, activity).instrument(span).await
        }
        "conversationUpdate" | "installationUpdate" => match lifecycle(&app, ws, &activity).instrument(span).await {
            Ok(()) => StatusCode::OK.into_response(),
            Err(error) => internal(error, "cannot record a Teams install"),
        },
        _ => StatusCode::OK.into_response(),
    }
}

fn internal(error: StoreError, what: &'static str) -> Response {
    HttpError::Internal(anyhow::Error::new(error).context(what)).into_response()
}

/// Records the activity (conversation id, activity id) once, and the latest serviceUrl for its
/// conversation and tenant, in one transaction; false when it was delivered before. The stored
/// record is read each time (not cached), so what another replica learned (a block) is kept.
async fn first_time(app: &TeamsApp, ws: WorkspaceId, activity: &Activity) -> Result<bool, StoreError> {
    let now = app.core.clock.now();
    let key = activity.conversation_key();
    let mut tx = app.core.store.begin().await?;
    if let Some(id) = &activity.id {
        let delivery = format!("{}|{id}", activity.conversation.id);
        if !tx.record_event_delivery(PLATFORM, &app.teams.settings.tenant_id, &delivery, now).await? {
            return Ok(false);
        }
    }
    let stored = tx.platform_record(ws, PLATFORM, records::CONVERSATION, &key).await?;
    let stored: Option<ConversationRecord> = stored.and_then(|s| serde_json::from_str(&s).ok());
    // Someone writing to nudge (or clicking) there has it back: a block or removal is over.
    let spoke = matches!(activity.kind.as_str(), "message" | "invoke");
    let record = ConversationRecord {
        place: activity.place(),
        id: if activity.place() == Place::Channel { key.clone() } else { activity.conversation.id.clone() },
        service_url: activity.service_url.clone(),
        removed: stored.as_ref().and_then(|s| s.removed.clone()).filter(|_| !spoke),
    };
    if stored.as_ref() != Some(&record) {
        let value = serde_json::to_string(&record).unwrap_or_default();
        tx.save_platform_record(ws, PLATFORM, records::CONVERSATION, &key, &value, now).await?;
        let tenant = &app.teams.settings.tenant_id;
        tx.save_platform_record(ws, PLATFORM, records::SERVICE_URL, tenant, &activity.service_url, now).await?;
    }
    tx.commit().await?;
    Ok(true)
}

// ----- messages -----------------------------------------------------------------------------------

fn invocation(app: &TeamsApp, ws: WorkspaceId, activity: &Activity) -> Invocation {
    let from = activity.from.as_ref();
    let channel_name = activity
        .channel()
        .and_then(|c| c.name.clone())
        .or_else(|| activity.channel_data.as_ref()?.team.as_ref()?.name.clone())
        .or_else(|| activity.conversation.name.clone())
        .unwrap_or_else(|| "chat".to_string());
    Invocation {
        workspace: ws,
        channel_id: activity.conversation_key(),
        channel_name,
        member_id: from.map(|f| f.id.clone()).unwrap_or_default(),
        member_name: from.and_then(|f| f.name.clone()).unwrap_or_else(|| "someone".to_string()),
        now: app.core.clock.now(),
        direct: activity.place() == Place::Personal,
    }
}

/// What nudge answers with: a message, or a card of its own (a form, or a form's result).
enum Answer {
    Message(Message),
    Card(Value),
}

/// A message: a typed command, or an `Action.Submit` (a `value` and no text). Runs after the
/// acknowledgement and answers in the conversation, as a reply to the activity.
async fn message(app: Arc<TeamsApp>, ws: WorkspaceId, activity: Activity) {
    let answer = match activity.value.as_ref().filter(|v| v.is_object()) {
        Some(data) => clicked(&app, ws, &activity, data).await,
        None => typed(&app, ws, &activity).await,
    };
    if let Answer::Message(message) = &answer
        && message.visibility == Visibility::Channel
        && replaces(&activity)
        && let Some(card_id) = activity.reply_to_id.as_deref()
    {
        update(&app, &activity, card_id, &render::replaceable(render::activity(message))).await;
        return;
    }
    let body = match &answer {
        Answer::Message(message) => render::replaceable(render::activity(message)),
        Answer::Card(card) => render::activity_with(card.clone(), ""),
    };
    reply(&app, &activity, &body).await;
}

/// Whether the click came from a card nudge posted as an answer (not a check-in or a reminder,
/// whose other items the click does not change): its result takes the card's place for everyone.
fn replaces(activity: &Activity) -> bool {
    let data = match activity.kind.as_str() {
        "invoke" => activity.value.as_ref().and_then(|v| v.get("action")).and_then(|a| a.get("data")),
        _ => activity.value.as_ref(),
    };
    data.and_then(|d| d.get(render::DATA_REPLACE)).and_then(Value::as_bool) == Some(true)
}

async fn update(app: &TeamsApp, activity: &Activity, card_id: &str, body: &Value) {
    let updated = app.teams.connector.update(&activity.service_url, &activity.conversation.id, card_id, body).await;
    if let Err(error) = updated {
        tracing::warn!(%error, "could not update a Teams card for everyone");
    }
}

async fn reply(app: &TeamsApp, activity: &Activity, body: &Value) {
    let sent =
        app.teams.connector.send(&activity.service_url, &activity.conversation.id, activity.id.as_deref(), body).await;
    if let Err(error) = sent {
        tracing::warn!(%error, "could not answer in Teams");
    }
}

async fn typed(app: &TeamsApp, ws: WorkspaceId, activity: &Activity) -> Answer {
    let text = activity.command_text();
    let text = text.strip_prefix('/').unwrap_or(&text).trim().to_string();
    let inv = invocation(app, ws, activity);
    if let Some(request) = form_request(&text) {
        if request != Wanted::Propose || !inv.direct {
            return open_form(app, ws, &inv.member_id, request, true).await;
        }
        return Answer::Message(team_channel_only());
    }
    let command = match grammar::parse_line(&text) {
        Ok(command) => command,
        Err(usage) => return Answer::Message(usage_reply(&usage, &format!("@nudge {text}"))),
    };
    if let Command::Help(topic) = command {
        return Answer::Message(help_reply(topic));
    }
    Answer::Message(run(app, inv, command, "a Teams command").await)
}

/// A form card nudge answers with instead of running a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// The propose form, which needs nothing from the store.
    Propose,
    For(FormFor),
}

/// `experiment` or `experiment propose` with nothing after it, and `experiment close E-3` without an
/// outcome, are answered with a form card.
fn form_request(text: &str) -> Option<Wanted> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [first, rest @ ..] = words.as_slice() else { return None };
    if !first.trim_start_matches('/').eq_ignore_ascii_case("experiment") {
        return None;
    }
    match rest {
        [] => Some(Wanted::Propose),
        [word] if word.eq_ignore_ascii_case("propose") => Some(Wanted::Propose),
        [word, id] if word.eq_ignore_ascii_case("close") => id.parse().ok().map(|id| Wanted::For(FormFor::Close(id))),
        _ => None,
    }
}

async fn form_of(app: &TeamsApp, ws: WorkspaceId, member: &str, what: Wanted) -> Result<Form, Message> {
    let Wanted::For(what) = what else { return Ok(forms::propose()) };
    match actions::form_for(&app.core.store, ws, member, what).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "cannot load what a Teams form is about");
            Err(Message::private(SOMETHING_WENT_WRONG))
        }
    }
}

async fn open_form(app: &TeamsApp, ws: WorkspaceId, member: &str, what: Wanted, posted: bool) -> Answer {
    match form_of(app, ws, member, what).await {
        Ok(form) => Answer::Card(render::form_card(&form, &Answers::new(), &FieldErrors::new(), posted)),
        Err(refusal) => Answer::Message(refusal),
    }
}

fn form_for_kind(kind: FormKind) -> Wanted {
    Wanted::For(match kind {
        FormKind::Propose => return Wanted::Propose,
        FormKind::Close(id) => FormFor::Close(id),
        FormKind::UpdateMetric(id) => FormFor::UpdateMetric(id),
        FormKind::ExtendPledge(id) => FormFor::ExtendPledge(id),
        FormKind::ReleasePledge(id) => FormFor::ReleasePledge(id),
        FormKind::ExtendReview(id) => FormFor::ExtendReview(id),
    })
}

/// A button or a form's submit, from `Action.Execute` or `Action.Submit` alike.
async fn clicked(app: &TeamsApp, ws: WorkspaceId, activity: &Activity, data: &Value) -> Answer {
    let inv = invocation(app, ws, activity);
    if let Some(kind) = render::parse_action(data) {
        return match actions::clicked(kind) {
            Clicked::Run(command) => Answer::Message(run(app, inv, command, "a Teams button").await),
            Clicked::Open(what) => open_form(app, ws, &inv.member_id, Wanted::For(what), false).await,
        };
    }
    let Some((form_id, answers)) = render::parse_form(data) else {
        // Buttons from another app, or an older card: nothing to do, and nothing to say.
        return Answer::Message(Message::private("That card is out of date; run the command again."));
    };
    let posted = data.get(render::DATA_POSTED).and_then(Value::as_bool).unwrap_or(false);
    let command = match crate::commands::form::read(&form_id, &answers) {
        Ok(command) => command,
        Err(errors) => return refused(app, ws, &inv.member_id, &form_id, &answers, &errors, posted).await,
    };
    let member = inv.member_id.clone();
    let reply = run(app, inv, command, "a Teams form").await;
    // A refusal of one answer is shown under its field, with everything typed kept; nothing was written.
    if let Some(field) = reply.field.clone()
        && answers.contains_key(&field)
    {
        let errors = FieldErrors::from([(field, reply.text)]);
        return refused(app, ws, &member, &form_id, &answers, &errors, posted).await;
    }
    Answer::Message(reply)
}

/// The form again, with what was typed and each problem under its field.
async fn refused(
    app: &TeamsApp,
    ws: WorkspaceId,
    member: &str,
    form_id: &str,
    answers: &Answers,
    errors: &FieldErrors,
    posted: bool,
) -> Answer {
    let Some(kind) = FormKind::parse(form_id) else {
        return Answer::Message(Message::private("That form is out of date; run the command again."));
    };
    match form_of(app, ws, member, form_for_kind(kind)).await {
        Ok(form) => Answer::Card(render::form_card(&form, answers, errors, posted)),
        Err(refusal) => Answer::Message(refusal),
    }
}

async fn run(app: &TeamsApp, invocation: Invocation, command: Command, what: &str) -> Message {
    match app.core.commands.execute(invocation, command).await {
        Ok(reply) => reply,
        Err(error) => {
            tracing::error!(%error, "{what} failed");
            Message::private(SOMETHING_WENT_WRONG)
        }
    }
}

// ----- invokes (Action.Execute) -------------------------------------------------------------------

fn invoke_json(value: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn invoke_message(text: &str) -> Response {
    invoke_json(json!({"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": text}))
}

fn invoke_card(card: Value) -> Response {
    invoke_json(json!({"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}))
}

/// `adaptiveCard/action`: answered in the response, within Teams' few seconds. A message the
/// clicker sees; a card (a form, or a form's result) replaces the clicked card for them, and a
/// form nudge posted is replaced for everyone too.
async fn invoke(app: &Arc<TeamsApp>, ws: WorkspaceId, activity: Activity) -> Response {
    let action = activity.value.as_ref().and_then(|v| v.get("action"));
    let verb = action.and_then(|a| a.get("verb")).and_then(Value::as_str).unwrap_or_default();
    let data = action.and_then(|a| a.get("data")).cloned().unwrap_or(Value::Null);
    if verb != VERB_ACTION && verb != VERB_FORM {
        return invoke_message("That card is out of date; run the command again.");
    }
    let posted_form = verb == VERB_FORM && data.get(render::DATA_POSTED).and_then(Value::as_bool) == Some(true);
    match clicked(app, ws, &activity, &data).await {
        Answer::Card(card) => invoke_card(card),
        Answer::Message(message)
            if message.visibility == Visibility::Channel && (posted_form || replaces(&activity)) =>
        {
            // The clicked card was nudge's own answer: everyone sees the result in its place.
            let card = render::replaceable(render::card_of(&message));
            if let Some(card_id) = activity.reply_to_id.clone() {
                let (app, activity) = (app.clone(), activity.clone());
                let body = render::replaceable(render::activity(&message));
                app.core.tasks.clone().spawn(async move { update(&app, &activity, &card_id, &body).await });
            }
            invoke_card(card)
        }
        Answer::Message(message) => {
            if message.visibility == Visibility::Channel {
                // What a click did for the team is said in the thread, for everyone.
                let (app, activity) = (app.clone(), activity.clone());
                let body = render::replaceable(render::activity(&message));
                app.core.tasks.clone().spawn(async move { reply(&app, &activity, &body).await });
            }
            invoke_message(&render::teams_form(&message.plain_text()).replace('`', ""))
        }
    }
}

// ----- install and uninstall ----------------------------------------------------------------------

/// `conversationUpdate` with the bot among `membersAdded` / `membersRemoved`, or `installationUpdate`
/// `add` / `remove`. An install into a team registers its channel with the default schedule; a
/// personal install keeps the member's personal conversation, where private reminders go. An
/// uninstall marks the conversation, and posts to it stop.
async fn lifecycle(app: &TeamsApp, ws: WorkspaceId, activity: &Activity) -> Result<(), StoreError> {
    let added = activity.members_added.iter().any(|m| activity.is_bot(m))
        || (activity.kind == "installationUpdate" && activity.action.as_deref() == Some("add"));
    let removed = activity.members_removed.iter().any(|m| activity.is_bot(m))
        || (activity.kind == "installationUpdate" && activity.action.as_deref() == Some("remove"));
    if !added && !removed {
        return Ok(());
    }
    let now = app.core.clock.now();
    let key = activity.conversation_key();
    let place = activity.place();
    let id = if place == Place::Channel { key.clone() } else { activity.conversation.id.clone() };
    let record = ConversationRecord {
        place,
        id: id.clone(),
        service_url: activity.service_url.clone(),
        removed: removed.then(|| "nudge was removed from this conversation".to_string()),
    };
    let mut tx = app.core.store.begin().await?;
    let value = serde_json::to_string(&record).unwrap_or_default();
    tx.save_platform_record(ws, PLATFORM, records::CONVERSATION, &key, &value, now).await?;
    if added {
        match place {
            Place::Channel | Place::GroupChat => {
                let defaults = &app.core.config.defaults;
                let channel_defaults = ChannelDefaults {
                    schedule: defaults.checkin.expression().to_string(),
                    time_zone: defaults.time_zone.name().to_string(),
                    escalate_after_days: defaults.escalate_after_days,
                    quiet_weekdays: defaults.quiet_days.weekdays_to_stored(),
                };
                let name = invocation(app, ws, activity).channel_name;
                tx.ensure_channel(ws, &key, &name, &channel_defaults, now).await?;
            }
            Place::Personal => {
                if let Some(member) = &activity.from {
                    tx.save_platform_record(ws, PLATFORM, records::PERSONAL, &member.id, &id, now).await?;
                }
            }
        }
    }
    tx.commit().await?;
    tracing::info!(added, "Teams install changed");
    Ok(())
}
