//! The scheduler driven by a hand-moved clock: which posts a channel gets, on which local days and
//! at which times, what quiet days and pauses suppress, and that replicas fire each occurrence once.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Europe::Berlin;

use nudge::clock::{Clock, ManualClock};
use nudge::commands::{Invocation, execute, parse};
use nudge::config::{Config, Defaults};
use nudge::scheduler::{Scheduler, SchedulerSettings};
use nudge::store::{ChannelDefaults, Store, WorkspaceId};

use crate::helpers::{Backend, TestDb, empty_config_file, monday_morning};

fn defaults() -> Defaults {
    let env: HashMap<String, String> = [
        ("NUDGE_CONFIG".to_string(), empty_config_file()),
        ("NUDGE_DEFAULT_TIME_ZONE".to_string(), "Europe/Berlin".to_string()),
    ]
    .into_iter()
    .collect();
    Config::load(&env).unwrap().defaults
}

struct Team {
    store: Store,
    ws: WorkspaceId,
    clock: Arc<ManualClock>,
}

impl Team {
    async fn new(store: &Store, start: DateTime<Utc>) -> Team {
        let mut tx = store.begin().await.unwrap();
        let ws = tx.ensure_workspace("slack", "T01", "Acme", start).await.unwrap();
        tx.commit().await.unwrap();
        Team { store: store.clone(), ws, clock: ManualClock::new(start) }
    }

    /// Ada types a command in #growth at the clock's time.
    async fn says(&self, command: &str, text: &str) -> String {
        let invocation = Invocation {
            workspace: self.ws,
            direct: false,
            channel_id: "C01".into(),
            channel_name: "growth".into(),
            member_id: "U01".into(),
            member_name: "Ada".into(),
            now: self.clock.now(),
        };
        let parsed = parse(command, text).unwrap_or_else(|e| panic!("{command} {text}: {e}"));
        execute(&self.store, &defaults(), &invocation, parsed).await.unwrap().text
    }

    fn scheduler(&self, store: &Store) -> Scheduler {
        Scheduler::new(store.clone(), self.clock.clone(), SchedulerSettings::default())
    }

    /// (local time in Berlin, recipient, headline) of every post owed so far.
    async fn posts(&self) -> Vec<(String, String, String)> {
        let mut tx = self.store.begin().await.unwrap();
        tx.outbox_messages(self.ws)
            .await
            .unwrap()
            .into_iter()
            .map(|m| {
                (m.created_at.with_timezone(&Berlin).format("%a %d %b %H:%M").to_string(), m.address, m.message.text)
            })
            .collect()
    }

    async fn occurrences(&self, job: &str) -> Vec<(String, String, Option<String>)> {
        let mut tx = self.store.begin().await.unwrap();
        let channel = tx.channel(self.ws, "C01").await.unwrap().unwrap();
        tx.occurrences(self.ws, channel.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|o| o.job.starts_with(job))
            .map(|o| (o.due_at.with_timezone(&Berlin).format("%a %d %b %H:%M").to_string(), o.outcome, o.reason))
            .collect()
    }
}

fn berlin(day: u32, month: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Berlin.with_ymd_and_hms(2026, month, day, hour, minute, 0).unwrap().with_timezone(&Utc)
}

async fn two_weeks_of_posts_land_on_the_right_local_days_and_none_when_quiet_or_paused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let team = Team::new(&store, monday_morning()).await;
    team.says("/nudge", "quiet sat,sun").await;
    team.says(
        "/experiment",
        "propose Shorter onboarding email | A 3-line welcome raises activation | activation 0.31 -> 0.36",
    )
    .await;
    team.says("/experiment", "start E-1").await;
    team.says("/experiment", "update E-1 0.33").await;
    team.says("/pledge", "call five customers by wed").await;

    let scheduler = team.scheduler(&store);
    let end = monday_morning() + Duration::days(15);
    let pause_at = berlin(1, 12, 11, 0);
    while team.clock.now() < end {
        team.clock.advance(Duration::minutes(15));
        if team.clock.now() == pause_at {
            team.says("/nudge", "pause 1").await;
        }
        scheduler.tick().await.unwrap();
    }

    let posts = team.posts().await;
    let summary: Vec<(&str, &str, &str)> =
        posts.iter().map(|(at, to, text)| (at.as_str(), to.as_str(), text.as_str())).collect();
    // Monday's reading waits for the mid-week batch of small wins (never-nag budget: check-in,
    // small wins, digest).
    let expected = [
        ("Wed 25 Nov 09:00", "U01", "⏰ P-1 is due today: call five customers"),
        ("Wed 25 Nov 17:00", "C01", "🎉 Small wins in #growth"),
        ("Thu 26 Nov 09:00", "U01", "P-1 was due Wed 25 Nov: call five customers."),
        ("Fri 27 Nov 16:00", "C01", "📊 This week in #growth"),
        ("Mon 30 Nov 09:00", "C01", "P-1 (call five customers) is 5 days past its date."),
        ("Mon 30 Nov 09:30", "C01", "☀️ Weekly check-in for #growth"),
    ];
    assert_eq!(summary.len(), expected.len(), "{summary:#?}");
    for ((at, to, text), (want_at, want_to, want_text)) in summary.iter().zip(expected) {
        assert_eq!((*at, *to), (want_at, want_to), "{text}");
        assert!(text.starts_with(want_text), "{text:?} should start with {want_text:?}");
    }

    // The check-in carries the running experiment's metric and the broken pledge with its button.
    let mut tx = store.begin().await.unwrap();
    let messages = tx.outbox_messages(team.ws).await.unwrap();
    let checkin = messages.iter().find(|m| m.message.text.starts_with("☀️")).unwrap().message.plain_text();
    assert!(checkin.contains("E-1 · Shorter onboarding email") && checkin.contains("0.31 → 0.33 → 0.36"), "{checkin}");
    assert!(checkin.contains("P-1 · call five customers") && checkin.contains("overdue by 5 days"), "{checkin}");
    let celebration = messages.iter().find(|m| m.message.text.starts_with("🎉")).unwrap().message.plain_text();
    assert!(
        celebration.contains("E-1 Shorter onboarding email") && celebration.contains("40% of the gap"),
        "{celebration}"
    );
    drop(tx);

    // What did not post, and why.
    let broken = team.occurrences("pledge_broken").await;
    assert_eq!(broken[0], ("Sat 28 Nov 09:00".into(), "suppressed".into(), Some("quiet day".into())));
    assert_eq!(broken[1], ("Sun 29 Nov 09:00".into(), "suppressed".into(), Some("quiet day".into())));
    assert_eq!(broken[2].1, "fired");
    let checkins = team.occurrences("checkin").await;
    assert_eq!(
        checkins,
        vec![
            ("Mon 30 Nov 09:30".into(), "fired".into(), None),
            ("Mon 07 Dec 09:30".into(), "suppressed".into(), Some("paused".into())),
        ]
    );
    let digests = team.occurrences("digest").await;
    assert_eq!(digests[1], ("Fri 04 Dec 16:00".into(), "suppressed".into(), Some("paused".into())));
    let wins = team.occurrences("celebrations").await;
    assert_eq!(
        wins,
        vec![
            ("Wed 25 Nov 17:00".into(), "fired".into(), None),
            ("Wed 02 Dec 17:00".into(), "suppressed".into(), Some("paused".into())),
        ]
    );
}

#[tokio::test]
async fn postgres_two_weeks_of_posts_land_on_the_right_local_days_and_none_when_quiet_or_paused() {
    two_weeks_of_posts_land_on_the_right_local_days_and_none_when_quiet_or_paused(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_two_weeks_of_posts_land_on_the_right_local_days_and_none_when_quiet_or_paused() {
    two_weeks_of_posts_land_on_the_right_local_days_and_none_when_quiet_or_paused(Backend::Sqlite).await;
}

#[tokio::test]
async fn three_schedulers_on_one_postgres_fire_each_occurrence_once() {
    let db = TestDb::postgres().await;
    let stores = [db.store().await, db.store().await, db.store().await];
    let start = monday_morning();
    let team = Team::new(&stores[0], start).await;
    let mut tx = stores[0].begin().await.unwrap();
    let every_minute = ChannelDefaults {
        schedule: "* * * * *".into(),
        time_zone: "UTC".into(),
        escalate_after_days: 3,
        quiet_weekdays: String::new(),
    };
    tx.ensure_channel(team.ws, "C01", "growth", &every_minute, start).await.unwrap();
    tx.commit().await.unwrap();
    let schedulers: Vec<Scheduler> = stores.iter().map(|store| team.scheduler(store)).collect();

    for minute in 1..=8 {
        team.clock.set(start + Duration::minutes(minute) + Duration::seconds(5));
        let (a, b, c) = tokio::join!(schedulers[0].tick(), schedulers[1].tick(), schedulers[2].tick());
        let fired = a.unwrap().fired + b.unwrap().fired + c.unwrap().fired;
        assert_eq!(fired, 1, "minute {minute}: exactly one replica fires the check-in");
    }
    let checkins: Vec<String> =
        team.posts().await.into_iter().map(|(_, _, text)| text).filter(|t| t.contains("check-in")).collect();
    assert_eq!(checkins.len(), 8);
    let occurrences = team.occurrences("checkin").await;
    assert_eq!(occurrences.len(), 8);
    assert!(occurrences.iter().all(|(_, outcome, _)| outcome == "fired"));
}

async fn a_late_check_in_fires_once_and_a_very_late_one_is_recorded_as_skipped(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let sunday = monday_morning() - Duration::days(1);
    let team = Team::new(&store, sunday).await;
    team.says("/nudge", "settings").await; // the channel exists from Sunday on
    let scheduler = team.scheduler(&store);

    // The server was down over Monday 09:30; back at 12:00 it is 2.5 hours late: it fires, once.
    team.clock.set(berlin(23, 11, 12, 0));
    assert_eq!(scheduler.tick().await.unwrap().fired, 1);
    assert_eq!(scheduler.tick().await.unwrap().fired, 0);
    assert_eq!(team.occurrences("checkin").await, vec![("Mon 23 Nov 09:30".into(), "fired".into(), None)]);

    // Down again over the next Monday until 20:00: more than six hours late, so it is skipped.
    team.clock.set(berlin(30, 11, 20, 0));
    let tick = scheduler.tick().await.unwrap();
    assert_eq!(
        (tick.fired, tick.skipped),
        (0, 3),
        "the check-in, Wednesday's small wins and Friday's digest were all missed"
    );
    assert_eq!(
        team.occurrences("digest").await,
        vec![("Fri 27 Nov 16:00".into(), "skipped".into(), Some("more than six hours late".into()))]
    );
    assert_eq!(
        team.occurrences("checkin").await[1],
        ("Mon 30 Nov 09:30".into(), "skipped".into(), Some("more than six hours late".into()))
    );
    let checkins = team.posts().await.into_iter().filter(|(_, _, text)| text.contains("check-in")).count();
    assert_eq!(checkins, 1);
}

#[tokio::test]
async fn postgres_a_late_check_in_fires_once_and_a_very_late_one_is_recorded_as_skipped() {
    a_late_check_in_fires_once_and_a_very_late_one_is_recorded_as_skipped(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_late_check_in_fires_once_and_a_very_late_one_is_recorded_as_skipped() {
    a_late_check_in_fires_once_and_a_very_late_one_is_recorded_as_skipped(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_weekly_check_in_keeps_its_local_time_across_the_autumn_clock_change() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let start = berlin(18, 10, 12, 0);
    let team = Team::new(&store, start).await;
    team.says("/nudge", "schedule mon 09:30 Europe/Berlin").await;
    let scheduler = team.scheduler(&store);
    while team.clock.now() < berlin(10, 11, 0, 0) {
        team.clock.advance(Duration::minutes(30));
        scheduler.tick().await.unwrap();
    }
    let fired: Vec<String> = team.occurrences("checkin").await.into_iter().map(|(at, _, _)| at).collect();
    // Berlin leaves summer time on Sunday 25 October: still 09:30 every Monday, none doubled or lost.
    assert_eq!(fired, vec!["Mon 19 Oct 09:30", "Mon 26 Oct 09:30", "Mon 02 Nov 09:30", "Mon 09 Nov 09:30"]);
}

#[tokio::test]
async fn a_reading_that_hits_the_target_is_celebrated_at_once() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let team = Team::new(&store, monday_morning()).await;
    team.says(
        "/experiment",
        "propose Shorter onboarding email | A 3-line welcome raises activation | activation 0.31 -> 0.36",
    )
    .await;
    team.says("/experiment", "start E-1").await;
    team.says("/experiment", "update E-1 0.37").await;
    team.says("/experiment", "update E-1 0.38").await;
    let posts = team.posts().await;
    assert_eq!(posts.len(), 1, "only the first reading past the target is announced: {posts:?}");
    assert_eq!(posts[0].1, "C01");
    assert!(
        posts[0].2.contains("🎯 E-1 Shorter onboarding email hit its target: activation reached 0.37"),
        "{posts:?}"
    );
}

#[tokio::test]
async fn a_pledge_reminder_comes_in_the_owners_morning_when_their_zone_is_known() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let team = Team::new(&store, monday_morning()).await;
    team.says("/pledge", "call five customers by wed").await;
    let mut tx = store.begin().await.unwrap();
    let zone = Some("America/Los_Angeles");
    assert!(tx.set_member_profile(team.ws, "U01", "Ada", zone, team.clock.now()).await.unwrap());
    tx.commit().await.unwrap();
    let scheduler = team.scheduler(&store);
    while team.clock.now() < monday_morning() + Duration::days(3) {
        team.clock.advance(Duration::minutes(15));
        scheduler.tick().await.unwrap();
    }
    let mut tx = store.begin().await.unwrap();
    let channel = tx.channel(team.ws, "C01").await.unwrap().unwrap();
    let due =
        tx.occurrences(team.ws, channel.id).await.unwrap().into_iter().find(|o| o.job == "pledge_due:P-1").unwrap();
    let local = due.due_at.with_timezone(&chrono_tz::America::Los_Angeles);
    assert_eq!(local.format("%a %d %b %H:%M").to_string(), "Wed 25 Nov 09:00", "09:00 in Los Angeles, not in Berlin");
    assert_eq!(due.outcome, "fired");
}

/// Nothing due: a tick is one lookup and writes nothing, whatever the number of channels.
async fn an_idle_tick_writes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let team = Team::new(&store, monday_morning()).await;
    team.says("/nudge", "schedule mon 09:30").await;
    team.says("/pledge", "call five customers by fri").await;
    let scheduler = team.scheduler(&store);
    let sequence = || async {
        let mut tx = store.read().await.unwrap();
        tx.row_counts(team.ws).await.unwrap()
    };
    let (writes, rows) = (store.writes_begun(), sequence().await);
    // Monday 11:00 to 16:00 in Berlin: the day's small wins come at 17:00, nothing before.
    for _ in 0..15 {
        team.clock.advance(Duration::minutes(20));
        assert_eq!(scheduler.tick().await.unwrap(), Default::default());
    }
    assert_eq!(store.writes_begun(), writes, "no transaction that writes was begun");
    assert_eq!(sequence().await, rows);
    assert!(team.occurrences("").await.is_empty());
    if backend == Backend::Postgres {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
        let burned: i64 =
            sqlx::query_scalar("SELECT COALESCE((SELECT last_value FROM occurrences_id_seq WHERE is_called), 0)")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(burned, 0, "no occurrence id was taken");
    }
}

#[tokio::test]
async fn postgres_an_idle_tick_writes_nothing() {
    an_idle_tick_writes_nothing(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_an_idle_tick_writes_nothing() {
    an_idle_tick_writes_nothing(Backend::Sqlite).await;
}

/// A schedule changed on Monday moves that week's check-in to the new time, and only there.
async fn a_changed_schedule_fires_at_the_new_time(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let team = Team::new(&store, monday_morning()).await;
    team.says("/nudge", "settings").await;
    assert!(team.says("/nudge", "schedule tue 11:00").await.contains("Tuesdays at 11:00"));
    let scheduler = team.scheduler(&store);
    while team.clock.now() < berlin(2, 12, 12, 0) {
        team.clock.advance(Duration::minutes(15));
        scheduler.tick().await.unwrap();
    }
    let checkins: Vec<(String, String)> =
        team.occurrences("checkin").await.into_iter().map(|(at, outcome, _)| (at, outcome)).collect();
    assert_eq!(
        checkins,
        vec![("Tue 24 Nov 11:00".to_string(), "fired".to_string()), ("Tue 01 Dec 11:00".into(), "fired".into())],
        "never at the old Monday 09:30"
    );
}

#[tokio::test]
async fn postgres_a_changed_schedule_fires_at_the_new_time() {
    a_changed_schedule_fires_at_the_new_time(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_changed_schedule_fires_at_the_new_time() {
    a_changed_schedule_fires_at_the_new_time(Backend::Sqlite).await;
}
