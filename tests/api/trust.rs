//! What a team lead met in a two-week trial, each defect pinned by a test that failed before its
//! fix: where actions count, units, editing, celebrations, forms, settings, counts, pledges that
//! were not meant, names and mentions, noise, review dates.

use serde_json::{Value, json};

use nudge::clock::Clock;
use nudge::store::{EventKind, Store, WorkspaceId};

use crate::helpers::{Backend, TestDb};
use crate::slack::{SlackTest, button, buttons, visible_text};

async fn workspace(store: &Store) -> WorkspaceId {
    let mut tx = store.read().await.unwrap();
    tx.workspace("slack", "T01").await.unwrap().expect("the team has used nudge")
}

/// Ada's click, as Slack sends it from a message in her direct conversation with nudge.
fn click_in_direct_message(t: &SlackTest, action_id: &str, value: &str) -> Value {
    let mut click = t.click(action_id, value);
    click["channel"] = json!({"id": "D0ADA", "name": "directmessage"});
    click["container"]["channel_id"] = json!("D0ADA");
    click
}

/// A pledge kept from a private reminder counts in the pledge's channel, and the direct
/// conversation never becomes a channel (it would get check-ins of its own).
async fn a_button_pressed_in_a_direct_message_counts_in_the_pledges_channel(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let made = t.slash("/pledge", "call five customers by fri").await;
    let (done, value) = button(&made, "Done", "P-1");
    assert_eq!(t.interaction(click_in_direct_message(&t, &done, &value)).await.status(), 200);
    t.app.settle().await;

    let ws = workspace(&t.app.store).await;
    let mut tx = t.app.store.read().await.unwrap();
    assert!(tx.channel(ws, "D0ADA").await.unwrap().is_none(), "no channel for the direct conversation");
    let growth = tx.channel(ws, "C01").await.unwrap().unwrap();
    let kept: Vec<_> = tx
        .events_since(ws, growth.id, t.app.clock.now() - chrono::Duration::days(1))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::PledgeKept)
        .collect();
    assert_eq!(kept.len(), 1, "the kept pledge is in #growth's log");
    drop(tx);
    let digest = t.slash("/nudge", "digest").await;
    assert!(visible_text(&digest).contains("1 kept"), "{}", visible_text(&digest));
}

#[tokio::test]
async fn postgres_a_button_pressed_in_a_direct_message_counts_in_the_pledges_channel() {
    a_button_pressed_in_a_direct_message_counts_in_the_pledges_channel(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_button_pressed_in_a_direct_message_counts_in_the_pledges_channel() {
    a_button_pressed_in_a_direct_message_counts_in_the_pledges_channel(Backend::Sqlite).await;
}

/// An update typed in another channel counts in the experiment's own channel; a channel command
/// typed in a direct conversation is answered with where to type it, and creates nothing.
async fn commands_count_where_their_experiment_lives(backend: Backend) {
    let t = SlackTest::start(backend).await;
    t.slash("/experiment", "propose Shorter email | A 3-line welcome raises activation | activation 0.31 -> 0.36")
        .await;
    t.slash("/experiment", "start E-1").await;
    let elsewhere = t.slash_body("/experiment", "update E-1 0.33", "T01", ("U01", "ada")).replace("C01", "C02");
    t.signed("/slack/commands", "application/x-www-form-urlencoded", elsewhere, crate::slack::SECRET).await;
    let direct = t
        .slash_body("/nudge", "schedule tue 10:00", "T01", ("U01", "ada"))
        .replace("channel_id=C01", "channel_id=D0ADA")
        .replace("channel_name=growth", "channel_name=directmessage");
    let answer: Value = t
        .signed("/slack/commands", "application/x-www-form-urlencoded", direct, crate::slack::SECRET)
        .await
        .json()
        .await
        .unwrap();
    assert!(visible_text(&answer).contains("works in a team channel"), "{}", visible_text(&answer));

    let ws = workspace(&t.app.store).await;
    let mut tx = t.app.store.read().await.unwrap();
    let growth = tx.channel(ws, "C01").await.unwrap().unwrap();
    assert_eq!(growth.schedule.expression(), "30 9 * * 1", "the direct conversation changed no schedule");
    assert!(tx.channel(ws, "D0ADA").await.unwrap().is_none());
    let since = t.app.clock.now() - chrono::Duration::days(1);
    let readings = tx
        .events_since(ws, growth.id, since)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::ReadingRecorded)
        .count();
    assert_eq!(readings, 1, "the reading typed in #other counts in #growth");
}

#[tokio::test]
async fn postgres_commands_count_where_their_experiment_lives() {
    commands_count_where_their_experiment_lives(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_commands_count_where_their_experiment_lives() {
    commands_count_where_their_experiment_lives(Backend::Sqlite).await;
}

/// The rows a direct conversation left behind before are repaired: its events go back to their
/// pledge's channel, its firings go, and the row itself goes.
async fn the_repair_migration_puts_a_direct_conversations_events_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let now = crate::helpers::monday_morning();
    let mut tx = store.begin().await.unwrap();
    let ws = tx.ensure_workspace("slack", "T01", "Acme", now).await.unwrap();
    let growth = crate::helpers::channel_in(&mut tx, ws, "C01").await;
    let phantom = crate::helpers::channel_in(&mut tx, ws, "D0ADA").await;
    let ada = tx.ensure_member(ws, "U01", "Ada", now).await.unwrap();
    let reminders = nudge::store::Reminders { zone: chrono_tz::UTC, escalate_after_days: 3 };
    let due_on = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let new =
        nudge::store::NewPledge { channel: growth, owner: ada.id, text: "call", due_on, experiment: None, reminders };
    tx.insert_pledge(ws, &new, now).await.unwrap();
    let data = json!({});
    let event = nudge::store::NewEvent {
        channel: Some(phantom),
        actor: Some(ada.id),
        kind: EventKind::PledgeKept,
        subject: Some("P-1".into()),
        data: &data,
    };
    tx.append_event(ws, &event, now).await.unwrap();
    tx.commit().await.unwrap();

    let repair = match backend {
        Backend::Postgres => include_str!("../../migrations/postgres/0007_slack_direct_conversations.sql"),
        Backend::Sqlite => include_str!("../../migrations/sqlite/0007_slack_direct_conversations.sql"),
    };
    let url = db.url.clone();
    match backend {
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::raw_sql(repair).execute(&mut conn).await.unwrap();
        }
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::raw_sql(repair).execute(&mut conn).await.unwrap();
        }
    }
    let mut tx = store.read().await.unwrap();
    assert!(tx.channel(ws, "D0ADA").await.unwrap().is_none(), "the phantom channel is gone");
    let kept = tx.events_since(ws, growth, now - chrono::Duration::days(1)).await.unwrap();
    assert!(kept.iter().any(|e| e.kind == EventKind::PledgeKept), "the kept pledge is back in #growth");
}

#[tokio::test]
async fn postgres_the_repair_migration_puts_a_direct_conversations_events_back() {
    the_repair_migration_puts_a_direct_conversations_events_back(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_the_repair_migration_puts_a_direct_conversations_events_back() {
    the_repair_migration_puts_a_direct_conversations_events_back(Backend::Sqlite).await;
}

/// The experiment's readings as the store keeps them, in the metric's own unit.
async fn readings_of(t: &SlackTest, number: i64) -> Vec<f64> {
    let ws = workspace(&t.app.store).await;
    let mut tx = t.app.store.read().await.unwrap();
    let id: nudge::domain::ids::ExperimentRef = format!("E-{number}").parse().unwrap();
    let experiment = tx.experiment(ws, id).await.unwrap().expect("the experiment exists");
    tx.readings(ws, experiment.id).await.unwrap().into_iter().map(|r| r.value).collect()
}

/// Everything nudge owes the team so far, as Slack would show it: (channel or member, text).
async fn owed_posts(t: &SlackTest) -> Vec<(String, String)> {
    let ws = workspace(&t.app.store).await;
    let mut tx = t.app.store.begin().await.unwrap();
    let rows = tx.outbox_messages(ws).await.unwrap();
    rows.into_iter().map(|m| (m.address, visible_text(&nudge::platforms::slack::render::message(&m.message)))).collect()
}

async fn running_experiment(t: &SlackTest, metric: &str) {
    let proposed =
        t.slash("/experiment", &format!("propose Faster search | Caching makes search quicker | {metric}")).await;
    assert_eq!(proposed["response_type"], "in_channel", "{proposed}");
    t.slash("/experiment", "start E-1").await;
}

/// 0.6 s on a metric kept in ms is 600 ms; a percentage on it is refused with an example, and
/// nothing is recorded for the refused one.
async fn a_reading_in_another_time_unit_is_converted(backend: Backend) {
    let t = SlackTest::start(backend).await;
    running_experiment(&t, "p95 latency 800ms -> 400ms").await;
    let recorded = visible_text(&t.slash("/experiment", "update E-1 0.6 s").await);
    assert!(recorded.contains("Recorded 600 ms for E-1"), "{recorded}");
    assert!(recorded.contains("50% of the gap"), "{recorded}");
    let refused = visible_text(&t.slash("/experiment", "update E-1 45%").await);
    assert!(refused.contains("tracked in ms") && refused.contains("400 ms"), "{refused}");
    assert_eq!(readings_of(&t, 1).await, vec![600.0]);
    assert!(owed_posts(&t).await.is_empty(), "600 ms is not a target hit: nothing goes to the channel");
}

#[tokio::test]
async fn postgres_a_reading_in_another_time_unit_is_converted() {
    a_reading_in_another_time_unit_is_converted(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_reading_in_another_time_unit_is_converted() {
    a_reading_in_another_time_unit_is_converted(Backend::Sqlite).await;
}

/// 0.35 on a metric in percent asks "did you mean 35%?"; nothing is recorded until the person
/// clicks, and the click records what they chose.
async fn a_fraction_on_a_percent_metric_is_asked_about(backend: Backend) {
    let t = SlackTest::start(backend).await;
    running_experiment(&t, "conversion 31% -> 40%").await;
    let asked = t.slash("/experiment", "update E-1 0.35").await;
    assert_eq!(asked["response_type"], "ephemeral", "{asked}");
    assert!(visible_text(&asked).contains("did you mean 35%?"), "{}", visible_text(&asked));
    assert!(readings_of(&t, 1).await.is_empty(), "nothing is recorded until the person chooses");
    let (record, value) = buttons(&asked)
        .into_iter()
        .find(|(_, _, label)| label == "Record 35%")
        .map(|(a, v, _)| (a, v))
        .expect("a Record 35% button");
    assert_eq!(t.interaction(t.click(&record, &value)).await.status(), 200);
    t.app.settle().await;
    assert_eq!(readings_of(&t, 1).await, vec![35.0]);
}

#[tokio::test]
async fn postgres_a_fraction_on_a_percent_metric_is_asked_about() {
    a_fraction_on_a_percent_metric_is_asked_about(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_fraction_on_a_percent_metric_is_asked_about() {
    a_fraction_on_a_percent_metric_is_asked_about(Backend::Sqlite).await;
}

/// `conversion 31% -> 0.4` is not silently a falling metric: the proposal is refused with what was
/// probably meant, and nothing is created.
async fn a_target_without_the_baselines_unit_is_refused(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let refused =
        t.slash("/experiment", "propose Shorter signup | Fewer fields convert better | conversion 31% -> 0.4").await;
    assert_eq!(refused["response_type"], "ephemeral", "{refused}");
    assert!(visible_text(&refused).contains("did you mean 40%?"), "{}", visible_text(&refused));
    let listed = visible_text(&t.slash("/experiment", "list").await);
    assert!(!listed.contains("Shorter signup"), "{listed}");
}

#[tokio::test]
async fn postgres_a_target_without_the_baselines_unit_is_refused() {
    a_target_without_the_baselines_unit_is_refused(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_target_without_the_baselines_unit_is_refused() {
    a_target_without_the_baselines_unit_is_refused(Backend::Sqlite).await;
}

/// "1.250" on a metric of about a thousand is far off: asked about, not recorded and never
/// celebrated; "1,250" is recorded and shown with its separator; a far-off value that would hit the
/// target is announced only after the click that confirms it.
async fn a_far_off_reading_waits_for_a_click_before_any_celebration(backend: Backend) {
    let t = SlackTest::start(backend).await;
    running_experiment(&t, "weekly signups 1,000 -> 1,500").await;
    let asked = visible_text(&t.slash("/experiment", "update E-1 1.250").await);
    assert!(asked.contains("far from E-1's range") && asked.contains("Nothing is recorded"), "{asked}");
    assert!(readings_of(&t, 1).await.is_empty());
    let recorded = visible_text(&t.slash("/experiment", "update E-1 1,250").await);
    assert!(recorded.contains("Recorded 1,250 for E-1"), "{recorded}");

    let far = t.slash("/experiment", "update E-1 25,000").await;
    assert!(visible_text(&far).contains("far from E-1's range"), "{}", visible_text(&far));
    assert!(owed_posts(&t).await.is_empty(), "no target-hit post before the reading is confirmed");
    let (record, value) = buttons(&far)
        .into_iter()
        .find(|(_, _, label)| label == "Record 25,000")
        .map(|(a, v, _)| (a, v))
        .expect("a Record 25,000 button");
    assert_eq!(t.interaction(t.click(&record, &value)).await.status(), 200);
    t.app.settle().await;
    assert_eq!(readings_of(&t, 1).await, vec![1250.0, 25000.0]);
    let posts = owed_posts(&t).await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].0, "C01");
    assert!(posts[0].1.contains("hit its target") && posts[0].1.contains("25,000"), "{posts:?}");
}

#[tokio::test]
async fn postgres_a_far_off_reading_waits_for_a_click_before_any_celebration() {
    a_far_off_reading_waits_for_a_click_before_any_celebration(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_far_off_reading_waits_for_a_click_before_any_celebration() {
    a_far_off_reading_waits_for_a_click_before_any_celebration(Backend::Sqlite).await;
}

/// The numbers `/experiment readings E-1` lists (the "#12" of each line).
fn reading_numbers(listed: &str) -> Vec<i64> {
    listed
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect()
}

/// A mistyped reading can go: listed with its number, deleted by whoever recorded it (not by
/// someone else who does not own the experiment), recorded in the event log, and gone from the
/// experiment.
async fn a_mistyped_reading_is_listed_and_deleted(backend: Backend) {
    let t = SlackTest::start(backend).await;
    running_experiment(&t, "conversion 31% -> 40%").await;
    t.slash("/experiment", "update E-1 33%").await;
    t.slash("/experiment", "update E-1 38% typo, meant 33.8").await;
    let listed = visible_text(&t.slash("/experiment", "readings E-1").await);
    assert!(listed.contains("2 readings of E-1"), "{listed}");
    assert!(listed.contains("38%") && listed.contains("typo, meant 33.8"), "{listed}");
    let numbers = reading_numbers(&listed);
    assert_eq!(numbers.len(), 2, "{listed}");
    let typo = numbers[1];

    let ben = t.slash_as("/experiment", &format!("readings E-1 delete {typo}"), "T01", ("U02", "ben")).await;
    assert!(visible_text(&ben).contains("they or E-1's owner"), "{}", visible_text(&ben));
    assert_eq!(readings_of(&t, 1).await.len(), 2, "Ben could not delete Ada's reading");

    let deleted = visible_text(&t.slash("/experiment", &format!("readings E-1 delete {typo}")).await);
    assert!(deleted.contains(&format!("Deleted reading #{typo} (38%)")), "{deleted}");
    assert_eq!(readings_of(&t, 1).await, vec![33.0]);
    let shown = visible_text(&t.slash("/experiment", "readings E-1").await);
    assert!(shown.contains("1 reading of E-1") && !shown.contains("38%"), "{shown}");

    let ws = workspace(&t.app.store).await;
    let mut tx = t.app.store.read().await.unwrap();
    let growth = tx.channel(ws, "C01").await.unwrap().unwrap();
    let events = tx.events_since(ws, growth.id, t.app.clock.now() - chrono::Duration::days(1)).await.unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::ReadingDeleted), "the deletion is in the log");
}

#[tokio::test]
async fn postgres_a_mistyped_reading_is_listed_and_deleted() {
    a_mistyped_reading_is_listed_and_deleted(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_mistyped_reading_is_listed_and_deleted() {
    a_mistyped_reading_is_listed_and_deleted(Backend::Sqlite).await;
}

/// An experiment can be edited and a junk proposal abandoned; when Ben does it to Ada's
/// experiment, Ada hears privately, and her own changes tell nobody.
async fn experiments_are_edited_and_abandoned_and_their_owner_told(backend: Backend) {
    let t = SlackTest::start(backend).await;
    running_experiment(&t, "conversion 31% -> 40%").await;
    let edited = t.slash("/experiment", "edit E-1 target 45%").await;
    assert_eq!(edited["response_type"], "ephemeral");
    assert!(visible_text(&edited).contains("target is now 45% (was 40%)"), "{}", visible_text(&edited));
    let shown = visible_text(&t.slash("/experiment", "show E-1").await);
    assert!(shown.contains("45%"), "{shown}");
    assert!(owed_posts(&t).await.is_empty(), "Ada's own edit tells nobody");

    let renamed = t.slash_as("/experiment", "edit E-1 title Cached search", "T01", ("U02", "ben")).await;
    assert!(visible_text(&renamed).contains("title is now Cached search"), "{}", visible_text(&renamed));
    let told = owed_posts(&t).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].0, "U01", "privately to Ada");
    assert!(told[0].1.contains("ben changed the title of E-1"), "{told:?}");

    let junk = t.slash_as("/experiment", "propose asdf | asdf | clicks 1 -> 2", "T01", ("U02", "ben")).await;
    assert!(visible_text(&junk).contains("E-2"), "{}", visible_text(&junk));
    let why = t.slash("/experiment", "abandon E-2").await;
    assert!(visible_text(&why).contains("say why E-2 is stopping"), "{}", visible_text(&why));
    let abandoned = visible_text(&t.slash("/experiment", "abandon E-2 a test proposal, not a real idea").await);
    assert!(abandoned.contains("E-2 · asdf is abandoned"), "{abandoned}");
    let listed = visible_text(&t.slash("/experiment", "list").await);
    assert!(!listed.contains("asdf"), "an abandoned proposal leaves the backlog: {listed}");
    let told = owed_posts(&t).await;
    assert!(told.iter().any(|(to, text)| to == "U02" && text.contains("abandoned E-2")), "{told:?}");
}

#[tokio::test]
async fn postgres_experiments_are_edited_and_abandoned_and_their_owner_told() {
    experiments_are_edited_and_abandoned_and_their_owner_told(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_experiments_are_edited_and_abandoned_and_their_owner_told() {
    experiments_are_edited_and_abandoned_and_their_owner_told(Backend::Sqlite).await;
}

/// A target hit mentions its owner so Slack notifies them, with the display name the team knows;
/// the same member keeps one name however their later commands spell it.
async fn a_target_hit_mentions_its_owner(backend: Backend) {
    let t = SlackTest::start(backend).await;
    running_experiment(&t, "conversion 31% -> 40%").await;
    t.slash_as("/experiment", "update E-1 41%", "T01", ("U01", "Ada Lovelace")).await;
    let posts = owed_posts(&t).await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].1.contains("<@U01>, close it with what you learned?"), "{posts:?}");
    let delivered = t.calls_to("/api/chat.postMessage", 1).await;
    let body: Value = serde_json::from_slice(&delivered[0].body).unwrap();
    assert!(body.to_string().contains("<@U01>"), "{body}");

    let shown = visible_text(&t.slash("/experiment", "show E-1").await);
    assert!(shown.contains("ada") && !shown.contains("Ada Lovelace"), "one name for Ada: {shown}");
}

#[tokio::test]
async fn postgres_a_target_hit_mentions_its_owner() {
    a_target_hit_mentions_its_owner(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_target_hit_mentions_its_owner() {
    a_target_hit_mentions_its_owner(Backend::Sqlite).await;
}

/// A broken pledge's post mentions its owner (they are asked to act), through Slack's mention.
async fn a_broken_pledge_mentions_its_owner(backend: Backend) {
    let t = SlackTest::start(backend).await;
    t.slash("/pledge", "call five customers by fri").await;
    let scheduler = nudge::scheduler::Scheduler::new(
        t.app.store.clone(),
        t.app.clock.clone(),
        nudge::scheduler::SchedulerSettings::default(),
    );
    for _ in 0..10 {
        t.app.clock.advance(chrono::Duration::days(1));
        scheduler.tick().await.unwrap();
    }
    let posts = owed_posts(&t).await;
    let broken: Vec<_> = posts.iter().filter(|(to, text)| to == "C01" && text.contains("past its date")).collect();
    assert_eq!(broken.len(), 1, "{posts:?}");
    assert!(broken[0].1.contains("<@U01>, keep it, move it or release it"), "{broken:?}");
}

#[tokio::test]
async fn postgres_a_broken_pledge_mentions_its_owner() {
    a_broken_pledge_mentions_its_owner(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_broken_pledge_mentions_its_owner() {
    a_broken_pledge_mentions_its_owner(Backend::Sqlite).await;
}

/// A target hit that was a slip and got deleted does not silence the real one that comes later.
async fn a_target_hit_after_a_deleted_one_is_announced_too(backend: Backend) {
    let t = SlackTest::start(backend).await;
    running_experiment(&t, "conversion 31% -> 40%").await;
    t.slash("/experiment", "update E-1 41%").await;
    let listed = visible_text(&t.slash("/experiment", "readings E-1").await);
    let slip = reading_numbers(&listed)[0];
    t.slash("/experiment", &format!("readings E-1 delete {slip}")).await;
    t.slash("/experiment", "update E-1 35%").await;
    t.slash("/experiment", "update E-1 42%").await;
    let hits: Vec<_> = owed_posts(&t).await.into_iter().filter(|(_, text)| text.contains("hit its target")).collect();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits[1].1.contains("reached 42%"), "{hits:?}");
}

#[tokio::test]
async fn postgres_a_target_hit_after_a_deleted_one_is_announced_too() {
    a_target_hit_after_a_deleted_one_is_announced_too(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_target_hit_after_a_deleted_one_is_announced_too() {
    a_target_hit_after_a_deleted_one_is_announced_too(Backend::Sqlite).await;
}
