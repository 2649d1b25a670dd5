//! `/nudge`: the channel's rules, schedule, quiet days, pause, settings, and the digest on demand.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::execute::{Context, Failure, refuse};
use super::*;
use crate::domain::digest::Digest;
use crate::domain::firings;
use crate::domain::schedule::{QuietDays, weekday_name};
use crate::message::build::{self, day_label};
use crate::message::{Message, Section};
use crate::store::{ChannelRecord, EventKind, Tx};

pub(super) async fn run(tx: &mut Tx, ctx: &Context<'_>, command: NudgeCommand) -> Result<Message, Failure> {
    let channel = &ctx.channel;
    match command {
        NudgeCommand::ShowRules if channel.rules.is_empty() => Ok(Message::private(
            "This channel has no rules yet. Agree the rules of the game early: `/nudge rules set <text>`",
        )),
        NudgeCommand::ShowRules => {
            Ok(Message::private("📜 The rules of the game in this channel").with_section(Section::body(&channel.rules)))
        }
        NudgeCommand::SetRules(rules) => {
            tx.set_rules(ctx.ws, channel.id, &rules).await?;
            ctx.event(tx, EventKind::RulesSet, None, serde_json::json!({})).await?;
            let text = format!("📜 {} set the rules of the game for this channel", ctx.member.display_name);
            Ok(Message::channel(text).with_section(Section::body(rules)))
        }
        NudgeCommand::ShowSchedule => Ok(Message::private(schedule_line(channel, ctx.now))),
        NudgeCommand::SetSchedule { schedule, time_zone } => {
            let limit = ctx.defaults.min_checkin_interval_minutes;
            if let Some(gap) = firings::gap_shorter_than(&schedule, Duration::minutes(limit.into()), ctx.now) {
                return refuse(format!(
                    "{} would post a check-in every {}; this nudge allows at most one every {} \
                     (its operator's setting defaults.min_checkin_interval_minutes). Try `/nudge schedule mon 09:30`.",
                    schedule.describe(),
                    interval_words(gap.num_minutes()),
                    interval_words(limit.into()),
                ));
            }
            let zone = time_zone.unwrap_or(channel.time_zone);
            tx.set_schedule(channel, &schedule, zone, ctx.now).await?;
            let data = serde_json::json!({ "schedule": schedule.expression(), "time_zone": zone.name() });
            ctx.event(tx, EventKind::ScheduleSet, None, data).await?;
            let updated = ChannelRecord { schedule, time_zone: zone, ..channel.clone() };
            // Settings changes are answered privately: the team sees the settings in the check-in,
            // not an echo of every change.
            Ok(Message::private(format!("🗓️ {}{}", schedule_line(&updated, ctx.now), never_posted(&updated, ctx.now))))
        }
        NudgeCommand::Quiet(change) => set_quiet(tx, ctx, change).await,
        NudgeCommand::Pause { weeks } => pause(tx, ctx, weeks).await,
        NudgeCommand::Digest => digest(tx, ctx).await,
        NudgeCommand::Settings => Ok(settings(ctx)),
        NudgeCommand::Dashboard => dashboard(tx, ctx).await,
    }
}

/// The next check-in that is posted: quiet days, holidays and a pause skip firings.
fn next_check_in(channel: &ChannelRecord, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    firings::next_posted(&channel.schedule, channel.time_zone, &channel.quiet, channel.paused_until, now)
}

fn schedule_line(channel: &ChannelRecord, now: DateTime<Utc>) -> String {
    let zone = channel.time_zone;
    let next = next_check_in(channel, now)
        .map(|at| at.with_timezone(&zone).format("%a %-d %b %H:%M").to_string())
        .unwrap_or_else(|| "never".into());
    format!("Check-ins: {} ({}). Next: {next}.", channel.schedule.describe(), zone.name())
}

/// A warning when the schedule and the quiet days together leave no check-in at all.
fn never_posted(channel: &ChannelRecord, now: DateTime<Utc>) -> &'static str {
    if next_check_in(channel, now).is_some() {
        return "";
    }
    "\n⚠️ Every check-in on this schedule falls on a quiet day or a holiday, so none will be posted. \
     Change the schedule (`/nudge schedule tue 09:30`) or the quiet days (`/nudge quiet off`)."
}

/// "1 minute", "8 hours", "1 day": a number of minutes in the largest whole unit.
fn interval_words(minutes: i64) -> String {
    let (count, unit) = match minutes {
        m if m > 0 && m % 1440 == 0 => (m / 1440, "day"),
        m if m > 0 && m % 60 == 0 => (m / 60, "hour"),
        m => (m, "minute"),
    };
    if count == 1 { format!("1 {unit}") } else { format!("{count} {unit}s") }
}

async fn set_quiet(tx: &mut Tx, ctx: &Context<'_>, change: QuietChange) -> Result<Message, Failure> {
    let today = ctx.channel_today();
    let quiet = match change {
        QuietChange::Clear => QuietDays::default(),
        QuietChange::Set { weekdays, holidays } => {
            if let Some(past) = holidays.iter().find(|d| **d < today) {
                return refuse(format!("{past} has already passed; quiet days are for today or later."));
            }
            let mut quiet = ctx.channel.quiet.clone();
            if let Some(weekdays) = weekdays {
                if weekdays.len() == 7 {
                    return refuse(
                        "Every day quiet would silence nudge; to stop it for a while use `/nudge pause <weeks>`.",
                    );
                }
                quiet.weekdays = weekdays;
            }
            // Past holidays no longer matter; dropping them keeps the list short.
            quiet.holidays.retain(|d| *d >= today);
            quiet.holidays.extend(holidays);
            let normalized = QuietDays::from_stored(&quiet.weekdays_to_stored(), &quiet.holidays_to_stored());
            if normalized.holidays.len() > 100 {
                return refuse("That would be more than 100 holidays; clear old ones with `/nudge quiet off` first.");
            }
            normalized
        }
    };
    tx.set_quiet_days(ctx.ws, ctx.channel.id, &quiet.weekdays_to_stored(), &quiet.holidays_to_stored()).await?;
    let data = serde_json::json!({ "weekdays": quiet.weekdays_to_stored(), "holidays": quiet.holidays_to_stored() });
    ctx.event(tx, EventKind::QuietDaysSet, None, data).await?;
    let updated = ChannelRecord { quiet: quiet.clone(), ..ctx.channel.clone() };
    Ok(Message::private(format!("🤫 {}{}", quiet_line(&quiet), never_posted(&updated, ctx.now))))
}

fn quiet_line(quiet: &QuietDays) -> String {
    if quiet.weekdays.is_empty() && quiet.holidays.is_empty() {
        return "No quiet days: nudge posts on any day its schedule says.".into();
    }
    let mut parts = Vec::new();
    if !quiet.weekdays.is_empty() {
        let days: Vec<&str> = quiet.weekdays.iter().map(|d| weekday_name(*d)).collect();
        parts.push(format!("every {}", days.join(", ")));
    }
    if !quiet.holidays.is_empty() {
        let days: Vec<String> = quiet.holidays.iter().map(|d| d.to_string()).collect();
        parts.push(days.join(", "));
    }
    format!("Quiet days (no automated posts): {}.", parts.join("; "))
}

async fn pause(tx: &mut Tx, ctx: &Context<'_>, weeks: u32) -> Result<Message, Failure> {
    let until = (weeks > 0).then(|| ctx.channel_today() + Duration::weeks(weeks.into()));
    tx.set_paused_until(ctx.ws, ctx.channel.id, until).await?;
    let data = serde_json::json!({ "until": until.map(|d| d.to_string()) });
    ctx.event(tx, EventKind::PauseSet, None, data).await?;
    let text = match until {
        Some(day) => format!(
            "⏸️ nudge's automated posts here are paused until {}. `/nudge pause 0` resumes them sooner.",
            day_label(day, ctx.channel_today())
        ),
        None => "▶️ Automated posts are back on in this channel.".into(),
    };
    Ok(Message::private(text))
}

/// A private link to the channel's dashboard, valid for a week and a day.
async fn dashboard(tx: &mut Tx, ctx: &Context<'_>) -> Result<Message, Failure> {
    let key = tx.server_key(crate::web::links::KEY_NAME).await?;
    let Some(key) = key.and_then(|k| hex::decode(k).ok()) else {
        return refuse("The dashboard is not set up on this server yet; restart nudge once and try again.");
    };
    let expires = ctx.now + crate::web::links::LIFETIME;
    let grant = crate::web::links::Grant { workspace: ctx.ws, channel: ctx.channel.id, expires };
    let path = format!("/dashboard/{}", crate::web::links::token(&key, grant));
    let link = match &ctx.defaults.public_url {
        Some(base) => format!("{}{path}", base.as_str().trim_end_matches('/')),
        None => format!("{path} (on this server; set server.public_url so nudge can give the full address)"),
    };
    Ok(Message::private(format!(
        "📊 #{}'s dashboard, for anyone with this link until {}: {link}",
        ctx.channel.name,
        expires.with_timezone(&ctx.channel.time_zone).format("%a %-d %b")
    )))
}

async fn digest(tx: &mut Tx, ctx: &Context<'_>) -> Result<Message, Failure> {
    // A year of events is enough to count the learning streak in weeks.
    let since = ctx.now - Duration::weeks(53);
    let events = tx.events_since(ctx.ws, ctx.channel.id, since).await?;
    let digest = Digest::compute(&events, ctx.now, ctx.channel.time_zone);
    Ok(build::digest(&digest, &ctx.channel.name))
}

fn settings(ctx: &Context<'_>) -> Message {
    let channel = &ctx.channel;
    let paused = match channel.paused_until {
        Some(day) if day > ctx.channel_today() => format!("until {}", day_label(day, ctx.channel_today())),
        _ => "no".into(),
    };
    let rules = if channel.rules.is_empty() { "none yet".to_string() } else { channel.rules.clone() };
    let section = Section::heading(format!("Settings for #{}", channel.name))
        .with_field("Check-ins", format!("{}{}", schedule_line(channel, ctx.now), never_posted(channel, ctx.now)))
        .with_field("Quiet days", quiet_line(&channel.quiet))
        .with_field("Paused", paused)
        .with_field("Open pledges per person", ctx.defaults.max_open_pledges.to_string())
        .with_field(
            "Overdue pledges",
            format!("the owner hears after 1 day, the channel after {} days", channel.escalate_after_days),
        )
        .with_field("Rules", rules);
    Message::private("⚙️ nudge settings for this channel").with_section(section)
}

impl Context<'_> {
    /// Channel-wide dates (quiet days, pauses) follow the channel's zone, not the typist's.
    pub(super) fn channel_today(&self) -> NaiveDate {
        self.now.with_timezone(&self.channel.time_zone).date_naive()
    }
}
