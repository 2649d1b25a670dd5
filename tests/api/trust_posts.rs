//! The trial's defects on the side of automated posts, each pinned by a test that failed before its
//! fix: each win celebrated once, deleted readings and lost target hits, one line per experiment,
//! quiet weekends, long posts summarised, the settings in the check-in, review dates, and the
//! never-nag budget of a normal week.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use serde_json::Value;

use nudge::clock::{Clock, ManualClock};
use nudge::commands::{Invocation, execute, parse};
use nudge::config::{Config, Defaults};
use nudge::message::ActionKind;
use nudge::scheduler::{Scheduler, SchedulerSettings};
use nudge::store::{OutboundMessage, Store, WorkspaceId};

use crate::helpers::{Backend, TestDb, empty_config_file, monday_morning};
use crate::slack::{SlackTest, button, fill_form, submission, visible_text};

/// The configuration an operator gets without setting anything, in Berlin.
fn defaults() -> Defaults {
    let env: HashMap<String, String> = [
        ("NUDGE_CONFIG".to_string(), empty_config_file()),
        ("NUDGE_DEFAULT_TIME_ZONE".to_string(), "Europe/Berlin".to_string()),
    ]
    .into_iter()
    .collect();
    Config::load(&env).unwrap().defaults
}

fn berlin(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Berlin.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap().with_timezone(&Utc)
}

/// A team in #growth (Slack ids C01, members U01 Ada, U02…), a hand-moved clock and the real
/// scheduler.
struct Team {
    store: Store,
    ws: WorkspaceId,
    clock: Arc<ManualClock>,
    scheduler: Scheduler,
}

impl Team {
    async fn new(store: &Store) -> Team {
        let mut tx = store.begin().await.unwrap();
        let ws = tx.ensure_workspace("slack", "T01", "Acme", monday_morning()).await.unwrap();
        tx.commit().await.unwrap();
        let clock = ManualClock::new(monday_morning());
        let scheduler = Scheduler::new(store.clone(), clock.clone(), SchedulerSettings::default());
        Team { store: store.clone(), ws, clock, scheduler }
    }

    /// Ada types a command in #growth at the clock's time; the answer's plain text.
    async fn says(&self, command: &str, text: &str) -> String {
        self.says_as(("U01", "Ada"), "C01", command, text).await
    }

    async fn says_as(&self, member: (&str, &str), channel: &str, command: &str, text: &str) -> String {
        let invocation = Invocation {
            workspace: self.ws,
            direct: false,
            channel_id: channel.into(),
            channel_name: match channel {
                "C01" => "growth".into(),
                "C02" => "retention".into(),
                other => other.to_lowercase(),
            },
            member_id: member.0.into(),
            member_name: member.1.into(),
            now: self.clock.now(),
        };
        let parsed = parse(command, text).unwrap_or_else(|e| panic!("{command} {text}: {e}"));
        execute(&self.store, &defaults(), &invocation, parsed).await.unwrap().plain_text()
    }

    /// Moves the clock in quarter hours up to `until`, ticking the scheduler at each.
    async fn run_until(&self, until: DateTime<Utc>) {
        while self.clock.now() < until {
            let next = (self.clock.now() + Duration::minutes(15)).min(until);
            self.clock.set(next);
            self.scheduler.tick().await.unwrap();
        }
    }

    /// Every post owed so far, in order.
    async fn posts(&self) -> Vec<OutboundMessage> {
        let mut tx = self.store.read().await.unwrap();
        tx.outbox_messages(self.ws).await.unwrap()
    }

    /// The plain text of each post to a channel (by Slack id) whose headline starts with `start`.
    async fn channel_posts(&self, channel: &str, start: &str) -> Vec<String> {
        self.posts()
            .await
            .into_iter()
            .filter(|m| m.address == channel && m.message.text.starts_with(start))
            .map(|m| m.message.plain_text())
            .collect()
    }

    /// (local time in Berlin, outcome, reason) of #growth's occurrences of jobs starting with `job`.
    async fn occurrences(&self, job: &str) -> Vec<(String, String, Option<String>)> {
        let mut tx = self.store.read().await.unwrap();
        let channel = tx.channel(self.ws, "C01").await.unwrap().unwrap();
        tx.occurrences(self.ws, channel.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|o| o.job.starts_with(job))
            .map(|o| (o.due_at.with_timezone(&Berlin).format("%a %d %b %H:%M").to_string(), o.outcome, o.reason))
            .collect()
    }

    async fn running_experiment(&self, title: &str) {
        self.says(
            "/experiment",
            &format!("propose {title} | A shorter one raises activation | activation 0.31 -> 0.36"),
        )
        .await;
        let number = self.says("/experiment", "list proposed").await;
        let id = number.split_whitespace().find(|w| w.starts_with("E-")).unwrap().to_string();
        self.says("/experiment", &format!("start {id}")).await;
    }
}

macro_rules! on_both {
    ($scenario:ident, $postgres:ident, $sqlite:ident) => {
        #[tokio::test]
        async fn $postgres() {
            $scenario(Backend::Postgres).await;
        }

        #[tokio::test]
        async fn $sqlite() {
            $scenario(Backend::Sqlite).await;
        }
    };
}

// ----- row 4: each win celebrated once -------------------------------------------------------------

/// A batch fired in Berlin, then the channel moved to New York, whose Wednesday 17:00 is six hours
/// later: the reading already celebrated is not celebrated again.
async fn a_win_is_celebrated_once_when_the_channels_zone_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    team.clock.set(berlin(25, 10, 0));
    team.running_experiment("Shorter onboarding email").await;
    team.says("/experiment", "update E-1 0.33").await;
    team.run_until(berlin(25, 17, 30)).await;
    assert_eq!(team.channel_posts("C01", "🎉").await.len(), 1, "Wednesday's batch in Berlin");

    team.says("/nudge", "schedule mon 09:30 America/New_York").await;
    team.run_until(berlin(26, 12, 0)).await;
    let batches = team.channel_posts("C01", "🎉").await;
    assert_eq!(batches.len(), 1, "Wednesday 17:00 in New York celebrates nothing twice: {batches:#?}");

    // A win after the move is celebrated once, in the next post that tells wins (Friday's digest).
    team.says("/experiment", "update E-1 0.34").await;
    team.run_until(berlin(26, 12, 0) + Duration::days(7)).await;
    let texts: Vec<String> = team.posts().await.into_iter().map(|m| m.message.plain_text()).collect();
    for win in ["activation 0.31 → 0.33,", "activation 0.31 → 0.34,"] {
        assert_eq!(texts.iter().filter(|t| t.contains(win)).count(), 1, "{win} told once: {texts:#?}");
    }
}

on_both!(
    a_win_is_celebrated_once_when_the_channels_zone_changes,
    postgres_a_win_is_celebrated_once_when_the_channels_zone_changes,
    sqlite_a_win_is_celebrated_once_when_the_channels_zone_changes
);

/// A mistyped reading that was deleted is never celebrated; the batch tells the reading that stays.
async fn a_deleted_reading_is_never_celebrated(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    team.clock.set(berlin(25, 10, 0));
    team.running_experiment("Shorter onboarding email").await;
    team.says("/experiment", "update E-1 0.33").await;
    team.says("/experiment", "update E-1 0.35").await;
    let listed = team.says("/experiment", "readings E-1").await;
    let mistyped = listed.lines().find(|l| l.contains("0.35")).unwrap().split_whitespace().next().unwrap().to_string();
    let number = mistyped.trim_start_matches('#');
    let deleted = team.says("/experiment", &format!("readings E-1 delete {number}")).await;
    assert!(deleted.contains("Deleted reading"), "{deleted}");

    team.run_until(berlin(25, 17, 30)).await;
    let batches = team.channel_posts("C01", "🎉").await;
    assert_eq!(batches.len(), 1, "{batches:#?}");
    assert!(!batches[0].contains("0.35"), "the deleted reading is not celebrated: {}", batches[0]);
    assert!(batches[0].contains("0.31 → 0.33, 40% of the gap"), "{}", batches[0]);
}

on_both!(
    a_deleted_reading_is_never_celebrated,
    postgres_a_deleted_reading_is_never_celebrated,
    sqlite_a_deleted_reading_is_never_celebrated
);

/// The target-hit announcement died in the outbox (Slack was unreachable for hours): the next batch
/// tells it, once, and mentions the owner; the dead post is not counted as lost any more.
async fn a_target_hit_that_died_in_the_outbox_is_told_in_the_next_batch(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let team = Team::new(&store).await;
    team.running_experiment("Shorter onboarding email").await;
    team.says("/experiment", "update E-1 0.37").await;
    let announcement = team.posts().await.into_iter().find(|m| m.idempotency_key.starts_with("target_hit:")).unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.message_failed(announcement.id, "slack was unreachable", None).await.unwrap();
    tx.commit().await.unwrap();

    team.run_until(berlin(25, 17, 30)).await;
    let batches = team.channel_posts("C01", "🎉").await;
    assert_eq!(batches.len(), 1, "{batches:#?}");
    assert!(
        batches[0].contains("🎯 E-1 Shorter onboarding email: activation 0.31 → 0.37 hit the target"),
        "{}",
        batches[0]
    );
    let batch = team.posts().await.into_iter().find(|m| m.message.text.starts_with("🎉")).unwrap();
    assert!(
        batch.message.sections[0].body.as_deref().unwrap().contains("\u{E000}U01\u{E001}Ada\u{E002}"),
        "Ada is mentioned"
    );
    let mut tx = store.read().await.unwrap();
    assert_eq!(tx.outbound_status(announcement.id).await.unwrap().as_deref(), Some("folded"));
    assert_eq!(tx.outbox_report(10).await.unwrap().dead, 0, "nothing is lost");
    drop(tx);

    // Told once: the next batches and the digest do not tell it again.
    team.run_until(berlin(25, 17, 30) + Duration::days(8)).await;
    let told: Vec<String> = team
        .posts()
        .await
        .into_iter()
        .filter(|m| m.id != announcement.id)
        .map(|m| m.message.plain_text())
        .filter(|t| t.contains("🎯 E-1"))
        .collect();
    assert_eq!(told.len(), 1, "{told:#?}");
}

on_both!(
    a_target_hit_that_died_in_the_outbox_is_told_in_the_next_batch,
    postgres_a_target_hit_that_died_in_the_outbox_is_told_in_the_next_batch,
    sqlite_a_target_hit_that_died_in_the_outbox_is_told_in_the_next_batch
);

/// A channel from before the mark: what its last daily batch celebrated is not celebrated again
/// after the upgrade, and what came since is.
async fn an_upgraded_channel_starts_from_its_last_batch(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let team = Team::new(&store).await;
    team.clock.set(berlin(23, 11, 0));
    team.running_experiment("Shorter onboarding email").await;
    team.says("/experiment", "update E-1 0.33").await;
    // The old daily batch told Monday's reading at 17:00, before the upgrade.
    let mut tx = store.begin().await.unwrap();
    let channel = tx.channel(team.ws, "C01").await.unwrap().unwrap();
    let batch = nudge::store::NewOccurrence {
        channel: channel.id,
        job: "celebrations",
        due_at: berlin(23, 17, 0),
        outcome: "fired",
        reason: None,
    };
    assert!(tx.record_occurrence(team.ws, &batch, berlin(23, 17, 0)).await.unwrap());
    tx.commit().await.unwrap();
    let upgrade = match backend {
        Backend::Postgres => include_str!("../../migrations/postgres/0008_celebrated_once.sql"),
        Backend::Sqlite => include_str!("../../migrations/sqlite/0008_celebrated_once.sql"),
    };
    match backend {
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
            sqlx::raw_sql(upgrade).execute(&mut conn).await.unwrap();
        }
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
            sqlx::raw_sql(upgrade).execute(&mut conn).await.unwrap();
        }
    }

    team.clock.set(berlin(24, 11, 0));
    team.says("/pledge", "call five customers by fri").await;
    team.says("/pledge", "done P-1").await;
    team.run_until(berlin(25, 17, 30)).await;
    let batches = team.channel_posts("C01", "🎉").await;
    assert_eq!(batches.len(), 1, "{batches:#?}");
    assert!(batches[0].contains("✅ Ada kept P-1: call five customers"), "Tuesday's win: {}", batches[0]);
    assert!(!batches[0].contains("E-1"), "Monday's reading was told before the upgrade: {}", batches[0]);
}

on_both!(
    an_upgraded_channel_starts_from_its_last_batch,
    postgres_an_upgraded_channel_starts_from_its_last_batch,
    sqlite_an_upgraded_channel_starts_from_its_last_batch
);

// ----- row 11: noise ---------------------------------------------------------------------------------

/// Three readings of one experiment make one line: where it started, where it got, the gap closed.
async fn a_batch_has_one_line_per_experiment(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    team.clock.set(berlin(25, 10, 0));
    team.running_experiment("Shorter onboarding email").await;
    team.running_experiment("Welcome call").await;
    for value in ["0.33", "0.345", "0.355"] {
        team.says("/experiment", &format!("update E-1 {value}")).await;
    }
    team.says("/experiment", "update E-2 0.32").await;
    team.run_until(berlin(25, 17, 30)).await;
    let batches = team.channel_posts("C01", "🎉").await;
    assert_eq!(batches.len(), 1, "{batches:#?}");
    let lines: Vec<&str> = batches[0].lines().filter(|l| l.contains("E-")).collect();
    assert_eq!(
        lines,
        [
            "📈 E-1 Shorter onboarding email: activation 0.31 → 0.355, 90% of the gap",
            "📈 E-2 Welcome call: activation 0.31 → 0.32, 20% of the gap",
        ],
        "{}",
        batches[0]
    );
}

on_both!(
    a_batch_has_one_line_per_experiment,
    postgres_a_batch_has_one_line_per_experiment,
    sqlite_a_batch_has_one_line_per_experiment
);

/// A channel nudge meets now is quiet at weekends: no reminder on Saturday, and its settings say so.
async fn a_new_channel_is_quiet_at_weekends(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    let settings = team.says("/nudge", "settings").await;
    assert!(settings.contains("every sat, sun"), "{settings}");
    team.says("/pledge", "call five customers by sat").await;
    team.run_until(berlin(30, 12, 0)).await;
    assert_eq!(
        team.occurrences("pledge_due").await,
        vec![("Sat 28 Nov 09:00".to_string(), "suppressed".to_string(), Some("quiet day".to_string()))]
    );
    let weekend: Vec<String> = team
        .posts()
        .await
        .into_iter()
        .map(|m| m.created_at.with_timezone(&Berlin).format("%a").to_string())
        .filter(|day| day == "Sat" || day == "Sun")
        .collect();
    assert!(weekend.is_empty(), "nothing posted at the weekend: {weekend:?}");

    // The default is for new channels only: a channel's own choice stays whatever the default says.
    team.says("/nudge", "quiet off").await;
    team.says("/pledge", "list").await;
    let settings = team.says("/nudge", "settings").await;
    assert!(settings.contains("No quiet days"), "{settings}");
}

on_both!(
    a_new_channel_is_quiet_at_weekends,
    postgres_a_new_channel_is_quiet_at_weekends,
    sqlite_a_new_channel_is_quiet_at_weekends
);

/// Thirty pledges kept in one day: the batch shows whole lines, then says how many more and where
/// to see them; nothing is cut mid-word or dropped unsaid.
async fn a_long_batch_is_summarised_in_whole_lines(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    team.clock.set(berlin(25, 9, 0));
    let mut kept = Vec::new();
    for n in 1..=10 {
        let member = (format!("U{n:02}"), format!("Member {n}"));
        for task in 1..=3 {
            let text = format!("write the long customer interview summary number {task} for the team wiki");
            team.says_as((&member.0, &member.1), "C01", "/pledge", &format!("{text} by fri")).await;
            kept.push(text);
        }
    }
    for number in 1..=30 {
        let owner = format!("U{:02}", (number - 1) / 3 + 1);
        let done = team.says_as((&owner, "someone"), "C01", "/pledge", &format!("done P-{number}")).await;
        assert!(done.contains("kept"), "{done}");
    }
    team.run_until(berlin(25, 17, 30)).await;
    let batches = team.channel_posts("C01", "🎉").await;
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    let shown: Vec<&str> = batch.lines().filter(|l| l.starts_with("✅")).collect();
    assert!(!shown.is_empty() && shown.len() < 30, "{batch}");
    for line in &shown {
        assert!(line.ends_with("for the team wiki"), "a whole line: {line}");
    }
    let more = format!("…and {} more wins", 30 - shown.len());
    assert!(batch.contains(&more) && batch.contains("/nudge digest"), "{batch}");
}

on_both!(
    a_long_batch_is_summarised_in_whole_lines,
    postgres_a_long_batch_is_summarised_in_whole_lines,
    sqlite_a_long_batch_is_summarised_in_whole_lines
);

/// Settings changes answer privately now, so the check-in is where the team sees them.
async fn the_check_in_shows_the_channels_settings_in_one_line(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    team.says("/nudge", "quiet fri,sat,sun").await;
    team.run_until(berlin(30, 10, 0)).await;
    let checkins = team.channel_posts("C01", "☀️").await;
    assert_eq!(checkins.len(), 1);
    assert!(
        checkins[0].contains("⚙️ Check-ins Mondays at 09:30 (Europe/Berlin) · quiet fri, sat, sun"),
        "{}",
        checkins[0]
    );
}

on_both!(
    the_check_in_shows_the_channels_settings_in_one_line,
    postgres_the_check_in_shows_the_channels_settings_in_one_line,
    sqlite_the_check_in_shows_the_channels_settings_in_one_line
);

// ----- row 12: review dates ---------------------------------------------------------------------------

/// On the review date the owner hears privately, in the morning, with Close and Extend review.
async fn on_its_review_date_the_owner_hears_privately(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    team.says_as(
        ("U02", "Ben"),
        "C01",
        "/experiment",
        "propose Shorter email | A 3-line welcome raises activation | activation 0.31 -> 0.36 by wed",
    )
    .await;
    team.says("/experiment", "start E-1").await;
    team.run_until(berlin(26, 12, 0)).await;
    let reviews: Vec<OutboundMessage> =
        team.posts().await.into_iter().filter(|m| m.message.text.starts_with("🔍")).collect();
    assert_eq!(reviews.len(), 1, "once");
    let review = &reviews[0];
    assert_eq!(review.address, "U02", "privately, to the owner");
    assert_eq!(review.created_at.with_timezone(&Berlin).format("%a %H:%M").to_string(), "Wed 09:00");
    assert!(review.message.text.contains("E-1 · Shorter email is due for review today"), "{}", review.message.text);
    let actions: Vec<(String, ActionKind)> =
        review.message.sections.iter().flat_map(|s| &s.actions).map(|a| (a.label.clone(), a.kind)).collect();
    let e1 = "E-1".parse().unwrap();
    assert_eq!(
        actions,
        [
            ("Close".to_string(), ActionKind::CloseExperiment(e1)),
            ("Extend review".into(), ActionKind::ExtendReview(e1))
        ]
    );
    assert_eq!(team.occurrences("review").await, vec![("Wed 25 Nov 09:00".into(), "fired".into(), None)]);
}

on_both!(
    on_its_review_date_the_owner_hears_privately,
    postgres_on_its_review_date_the_owner_hears_privately,
    sqlite_on_its_review_date_the_owner_hears_privately
);

/// A review date on a quiet Saturday is told on Monday morning, the first day nudge may speak.
async fn a_review_date_on_a_quiet_day_is_told_the_next_day_that_is_not(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    team.says(
        "/experiment",
        "propose Shorter email | A 3-line welcome raises activation | activation 0.31 -> 0.36 by sat",
    )
    .await;
    team.run_until(berlin(30, 12, 0)).await;
    assert_eq!(
        team.occurrences("review").await,
        vec![
            ("Sat 28 Nov 09:00".into(), "suppressed".into(), Some("quiet day".into())),
            ("Sun 29 Nov 09:00".into(), "suppressed".into(), Some("quiet day".into())),
            ("Mon 30 Nov 09:00".into(), "fired".into(), None),
        ]
    );
    let review = team.posts().await.into_iter().find(|m| m.message.text.starts_with("🔍")).unwrap();
    assert!(review.message.text.contains("was due for review Sat 28 Nov"), "{}", review.message.text);
    // Still a proposal: it is offered a start, since it cannot be closed before it runs.
    let labels: Vec<&str> = review.message.sections.iter().flat_map(|s| &s.actions).map(|a| a.label.as_str()).collect();
    assert_eq!(labels, ["Start", "Extend review"], "{}", review.message.text);
    assert!(review.message.text.contains("has not started"), "{}", review.message.text);
}

on_both!(
    a_review_date_on_a_quiet_day_is_told_the_next_day_that_is_not,
    postgres_a_review_date_on_a_quiet_day_is_told_the_next_day_that_is_not,
    sqlite_a_review_date_on_a_quiet_day_is_told_the_next_day_that_is_not
);

/// An experiment closed before its review date is not reviewed.
async fn a_closed_experiment_gets_no_review_reminder(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    team.says(
        "/experiment",
        "propose Shorter email | A 3-line welcome raises activation | activation 0.31 -> 0.36 by wed",
    )
    .await;
    team.says("/experiment", "start E-1").await;
    team.says("/experiment", "close E-1 lost people skim anyway").await;
    team.run_until(berlin(26, 12, 0)).await;
    assert!(team.posts().await.iter().all(|m| !m.message.text.starts_with("🔍")));
    assert!(team.occurrences("review").await.is_empty());
}

on_both!(
    a_closed_experiment_gets_no_review_reminder,
    postgres_a_closed_experiment_gets_no_review_reminder,
    sqlite_a_closed_experiment_gets_no_review_reminder
);

/// The check-in marks a running experiment whose review date has passed.
async fn the_check_in_marks_experiments_past_review(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    team.says(
        "/experiment",
        "propose Shorter email | A 3-line welcome raises activation | activation 0.31 -> 0.36 by tue",
    )
    .await;
    team.says("/experiment", "start E-1").await;
    team.running_experiment("Welcome call").await;
    team.run_until(berlin(30, 10, 0)).await;
    let checkin = team.channel_posts("C01", "☀️").await.remove(0);
    assert!(checkin.contains("Review: Tue 24 Nov (⚠️ past review, 6 days ago)"), "{checkin}");
    assert_eq!(checkin.matches("past review").count(), 1, "only E-1 is past review: {checkin}");
}

on_both!(
    the_check_in_marks_experiments_past_review,
    postgres_the_check_in_marks_experiments_past_review,
    sqlite_the_check_in_marks_experiments_past_review
);

/// In Slack: the review post's Close opens the close form, and Extend review opens the form that
/// moves the review date, which it does.
async fn the_review_buttons_close_and_extend_in_slack(backend: Backend) {
    let t = SlackTest::start(backend).await;
    t.slash(
        "/experiment",
        "propose Shorter email | A 3-line welcome raises activation | activation 0.31 -&gt; 0.36 by wed",
    )
    .await;
    t.slash("/experiment", "start E-1").await;
    let scheduler = Scheduler::new(t.app.store.clone(), t.app.clock.clone(), SchedulerSettings::default());
    t.app.clock.set(Utc.with_ymd_and_hms(2026, 11, 25, 9, 5, 0).unwrap());
    scheduler.tick().await.unwrap();
    let ws = {
        let mut tx = t.app.store.read().await.unwrap();
        tx.workspace("slack", "T01").await.unwrap().unwrap()
    };
    let mut tx = t.app.store.read().await.unwrap();
    let review = tx.outbox_messages(ws).await.unwrap().into_iter().find(|m| m.message.text.starts_with("🔍")).unwrap();
    drop(tx);
    assert_eq!(review.address, "U01");
    let rendered: Value = nudge::platforms::slack::render::message(&review.message);

    // Clicked where the reminder is: Ada's direct conversation with nudge.
    let click = |action: &str, value: &str| {
        let mut click = t.click(action, value);
        click["channel"] = serde_json::json!({"id": "D0ADA", "name": "directmessage"});
        click["container"]["channel_id"] = serde_json::json!("D0ADA");
        click
    };
    let (close, value) = button(&rendered, "Close", "E-1");
    assert_eq!(t.interaction(click(&close, &value)).await.status(), 200);
    let opened = t.calls_to("/api/views.open", 1).await;
    let close_form = serde_json::from_slice::<Value>(&opened[0].body).unwrap()["view"].clone();
    assert!(visible_text(&close_form).contains("What we learned"), "{close_form}");

    let (extend, value) = button(&rendered, "Extend review", "E-1");
    assert_eq!(t.interaction(click(&extend, &value)).await.status(), 200);
    let opened = t.calls_to("/api/views.open", 2).await;
    let review_form = serde_json::from_slice::<Value>(&opened[1].body).unwrap()["view"].clone();
    let values = fill_form(&review_form, &[("review", "2026-12-09")]);
    let answer = t.interaction(submission(&review_form, values)).await;
    assert_eq!(answer.status(), 200);
    t.app.settle().await;
    let shown = visible_text(&t.slash("/experiment", "show E-1").await);
    assert!(shown.contains("Wed 9 Dec"), "the review date moved: {shown}");
}

on_both!(
    the_review_buttons_close_and_extend_in_slack,
    postgres_the_review_buttons_close_and_extend_in_slack,
    sqlite_the_review_buttons_close_and_extend_in_slack
);

// ----- the never-nag budget ------------------------------------------------------------------------------

/// A normal week for two teams with the defaults: five running experiments, ten members, pledges
/// made and kept, readings most days. Each channel gets at most three automated posts: Monday's
/// check-in, Wednesday's small wins and Friday's digest (which carries the wins since).
async fn a_normal_week_stays_within_the_never_nag_budget(backend: Backend) {
    let db = TestDb::new(backend).await;
    let team = Team::new(&db.store().await).await;
    let growth: Vec<(String, String)> = (1..=6).map(|n| (format!("U{n:02}"), format!("Member {n}"))).collect();
    let retention: Vec<(String, String)> = (7..=10).map(|n| (format!("U{n:02}"), format!("Member {n}"))).collect();
    let as_member = |m: &(String, String)| (m.0.clone(), m.1.clone());
    let says = |member: (String, String), channel: &'static str, command: &'static str, text: String| {
        let team = &team;
        async move { team.says_as((&member.0, &member.1), channel, command, &text).await }
    };

    // Monday 08:00 in Berlin: the teams set up their week.
    team.clock.set(berlin(23, 8, 0));
    let experiments = [
        ("C01", 1, &growth[0]),
        ("C01", 2, &growth[1]),
        ("C01", 3, &growth[2]),
        ("C02", 4, &retention[0]),
        ("C02", 5, &retention[1]),
    ];
    for (channel, n, owner) in experiments {
        let proposal = format!("propose Idea {n} | Trying {n} moves the metric | activation 0.31 -> 0.36");
        says(as_member(owner), channel, "/experiment", proposal).await;
        says(as_member(owner), channel, "/experiment", format!("start E-{n}")).await;
    }
    let mut pledges = Vec::new();
    for (n, member) in growth.iter().chain(&retention).enumerate() {
        let channel = if n < 6 { "C01" } else { "C02" };
        let due = ["tue", "wed", "thu", "fri"][n % 4];
        says(as_member(member), channel, "/pledge", format!("call three customers about idea {n} by {due}")).await;
        pledges.push((format!("P-{}", n + 1), member.clone(), channel, n % 4));
    }

    // Monday to Friday: readings in the afternoon, pledges kept on their day.
    for (day, weekday) in (23..=27).zip(0u32..) {
        team.run_until(berlin(day, 14, 0)).await;
        if weekday < 4 {
            for (channel, n, owner) in experiments {
                let value = 0.31 + 0.004 * f64::from(weekday + 1) + 0.001 * f64::from(n);
                says(as_member(owner), channel, "/experiment", format!("update E-{n} {value:.3}")).await;
            }
        }
        for (pledge, member, channel, due) in &pledges {
            if *due as u32 + 1 == weekday {
                says(member.clone(), channel, "/pledge", format!("done {pledge}")).await;
            }
        }
    }
    // Through the weekend, up to the next Monday's check-in.
    team.run_until(berlin(30, 9, 0)).await;

    let posts = team.posts().await;
    let mut failures = Vec::new();
    for (channel, name) in [("C01", "#growth"), ("C02", "#retention")] {
        let to_channel: Vec<&OutboundMessage> = posts.iter().filter(|m| m.address == channel).collect();
        println!("{name}: {} automated posts in the week", to_channel.len());
        for post in &to_channel {
            let at = post.created_at.with_timezone(&Berlin).format("%a %d %b %H:%M");
            println!("  {at}  {}", post.message.plain_text().replace('\n', "\n      "));
        }
        if to_channel.len() > 3 {
            failures.push(format!("{name} got {} automated posts", to_channel.len()));
        }
        let kinds: Vec<&str> =
            to_channel.iter().map(|m| m.message.text.split_whitespace().next().unwrap_or("")).collect();
        assert_eq!(kinds, ["☀️", "🎉", "📊"], "{name}: check-in, small wins, digest");
    }
    let private = posts.iter().filter(|m| m.address.starts_with('U')).count();
    println!("private reminders: {private}");
    assert!(failures.is_empty(), "{failures:?}");
}

on_both!(
    a_normal_week_stays_within_the_never_nag_budget,
    postgres_a_normal_week_stays_within_the_never_nag_budget,
    sqlite_a_normal_week_stays_within_the_never_nag_budget
);

/// A review date whose firing an earlier nudge dropped (it deleted review firings without telling
/// anyone) is planned again at start, and the owner hears on the morning.
async fn a_dropped_review_reminder_is_planned_again(backend: Backend) {
    let t = crate::slack::SlackTest::start(backend).await;
    t.slash("/experiment", "propose Shorter signup | Fewer fields | conversion 31% -> 40% by next fri").await;
    t.slash("/experiment", "start E-1").await;
    let mut tx = t.app.store.begin().await.unwrap();
    let ws = tx.workspace("slack", "T01").await.unwrap().unwrap();
    let experiment = tx.experiment(ws, "E-1".parse().unwrap()).await.unwrap().unwrap();
    let review_on = experiment.review_on.expect("a review date");
    tx.set_review_firing(ws, experiment.channel_id, experiment.id, None).await.unwrap();
    tx.commit().await.unwrap();

    let scheduler = nudge::scheduler::Scheduler::new(
        t.app.store.clone(),
        t.app.clock.clone(),
        nudge::scheduler::SchedulerSettings::default(),
    );
    scheduler.plan_unplanned().await.unwrap();
    let morning = review_on.and_hms_opt(10, 0, 0).unwrap().and_utc();
    t.app.clock.set(morning);
    scheduler.tick().await.unwrap();
    let mut tx = t.app.store.read().await.unwrap();
    let told: Vec<_> = tx
        .outbox_messages(ws)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.address == "U01" && m.message.text.contains("due for review"))
        .collect();
    assert_eq!(told.len(), 1, "the owner hears once on the review date");
    drop(tx);
    // Planning again after it was told changes nothing.
    scheduler.plan_unplanned().await.unwrap();
    scheduler.tick().await.unwrap();
    let mut tx = t.app.store.read().await.unwrap();
    let again =
        tx.outbox_messages(ws).await.unwrap().into_iter().filter(|m| m.message.text.contains("due for review")).count();
    assert_eq!(again, 1, "told once");
}

#[tokio::test]
async fn postgres_a_dropped_review_reminder_is_planned_again() {
    a_dropped_review_reminder_is_planned_again(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_dropped_review_reminder_is_planned_again() {
    a_dropped_review_reminder_is_planned_again(Backend::Sqlite).await;
}
