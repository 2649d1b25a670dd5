//! What a team lead met in a two-week trial, each defect pinned by a test that failed before its
//! fix: where actions count, units, editing, celebrations, forms, settings, counts, pledges that
//! were not meant, names and mentions, noise, review dates.

use serde_json::{Value, json};

use nudge::clock::Clock;
use nudge::store::{EventKind, Store, WorkspaceId};

use crate::helpers::{Backend, TestDb};
use crate::slack::{SlackTest, button, visible_text};

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
