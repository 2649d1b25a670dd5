//! Issue 9, the command side: forms that keep what was typed, a "Next:" that is true, schedules
//! within the operator's limit, counts and lists that tell the whole truth, pledges nobody meant,
//! and settings changes that are not echoed in the channel. Each test failed before its fix.

use serde_json::Value;

use crate::helpers::Backend;
use crate::slack::{SlackTest, TOKEN, visible_text};

fn is_private(answer: &Value) -> bool {
    answer["response_type"] == "ephemeral"
}

/// Settings, schedule, quiet and pause changes are answered to the person who made them only.
async fn settings_changes_answer_privately(backend: Backend) {
    let t = SlackTest::start(backend).await;
    for text in ["schedule tue 10:00 Europe/Berlin", "quiet sat,sun", "pause 2", "pause 0"] {
        let answer = t.slash("/nudge", text).await;
        assert!(is_private(&answer), "/nudge {text} is echoed in the channel: {answer}");
    }
    // The changes were made all the same.
    let settings = visible_text(&t.slash("/nudge", "settings").await);
    assert!(settings.contains("Tuesdays at 10:00") && settings.contains("every sat, sun"), "{settings}");
    t.app.settle().await;
    assert_eq!(t.calls_now("/api/chat.postMessage").await, 0, "nothing was posted to the channel");
}

#[tokio::test]
async fn postgres_settings_changes_answer_privately() {
    settings_changes_answer_privately(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_settings_changes_answer_privately() {
    settings_changes_answer_privately(Backend::Sqlite).await;
}

/// "Next:" names the check-in that will be posted: not one on a quiet day, and not one in a pause;
/// a schedule left with no posted check-in at all is warned about.
async fn next_check_in_skips_quiet_days_and_pauses(backend: Backend) {
    let t = SlackTest::start(backend).await;
    // Monday 23 November, 10:00 UTC; the default check-in is Mondays at 09:30.
    let quiet = visible_text(&t.slash("/nudge", "quiet mon").await);
    assert!(quiet.contains("none will be posted"), "every check-in is now on a quiet day: {quiet}");
    let settings = visible_text(&t.slash("/nudge", "settings").await);
    assert!(!settings.contains("Mon 30 Nov"), "a quiet Monday is not the next check-in: {settings}");
    assert!(settings.contains("Next: never") && settings.contains("none will be posted"), "{settings}");

    let scheduled = visible_text(&t.slash("/nudge", "schedule mon,wed 09:30").await);
    assert!(scheduled.contains("Next: Wed 25 Nov 09:30"), "{scheduled}");
    assert!(!scheduled.contains("none will be posted"), "{scheduled}");

    // Paused until Monday 30 November: Wednesday's check-in is suppressed, Monday's is quiet.
    t.slash("/nudge", "pause 1").await;
    let settings = visible_text(&t.slash("/nudge", "settings").await);
    assert!(settings.contains("Next: Wed 2 Dec 09:30"), "{settings}");
}

#[tokio::test]
async fn postgres_next_check_in_skips_quiet_days_and_pauses() {
    next_check_in_skips_quiet_days_and_pauses(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_next_check_in_skips_quiet_days_and_pauses() {
    next_check_in_skips_quiet_days_and_pauses(Backend::Sqlite).await;
}

/// A schedule that would post more often than the operator allows is refused, naming the limit,
/// and changes nothing; an operator who allows it gets it.
async fn a_schedule_more_often_than_allowed_is_refused_with_the_limit(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let answer = t.slash("/nudge", "schedule * * * * *").await;
    let text = visible_text(&answer);
    assert!(is_private(&answer), "{answer}");
    assert!(text.contains("every 1 minute") && text.contains("at most one every 1 day"), "{text}");
    assert!(text.contains("defaults.min_checkin_interval_minutes"), "the limit is named: {text}");
    let twice = visible_text(&t.slash("/nudge", "schedule 0 9,17 * * *").await);
    assert!(twice.contains("every 8 hours"), "{twice}");
    let settings = visible_text(&t.slash("/nudge", "settings").await);
    assert!(settings.contains("Mondays at 09:30"), "the schedule did not change: {settings}");
    assert!(visible_text(&t.slash("/nudge", "schedule daily 09:00").await).contains("every day at 09:00"));

    let lenient = SlackTest::start_with(
        backend,
        &[("NUDGE_SLACK_BOT_TOKEN", TOKEN), ("NUDGE_MIN_CHECKIN_INTERVAL_MINUTES", "1")],
    )
    .await;
    let accepted = visible_text(&lenient.slash("/nudge", "schedule * * * * *").await);
    assert!(accepted.contains("Check-ins: cron `* * * * *`"), "{accepted}");
}

#[tokio::test]
async fn postgres_a_schedule_more_often_than_allowed_is_refused_with_the_limit() {
    a_schedule_more_often_than_allowed_is_refused_with_the_limit(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_schedule_more_often_than_allowed_is_refused_with_the_limit() {
    a_schedule_more_often_than_allowed_is_refused_with_the_limit(Backend::Sqlite).await;
}

/// `/pledge list team by fri` is asked about privately and pledges nothing; `to` confirms it;
/// `/pledge P-1 done` points at `/pledge done P-1`, not at a due date.
async fn subcommand_words_never_make_a_public_pledge_by_accident(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let asked = t.slash("/pledge", "list team by fri").await;
    assert!(is_private(&asked), "{asked}");
    let text = visible_text(&asked);
    assert!(text.contains("did you mean `/pledge list [mine|all]`?"), "{text}");
    assert!(text.contains("`/pledge to list team by fri`"), "{text}");
    let listed = visible_text(&t.slash("/pledge", "list all").await);
    assert!(listed.contains("No open pledges"), "nothing was pledged: {listed}");

    let made = t.slash("/pledge", "to list team risks by fri").await;
    assert_eq!(made["response_type"], "in_channel", "{made}");
    assert!(visible_text(&made).contains("pledged: list team risks"), "{made}");

    let swapped = t.slash("/pledge", "P-1 done").await;
    let text = visible_text(&swapped);
    assert!(is_private(&swapped) && text.contains("did you mean `/pledge done P-1`?"), "{text}");
    assert!(!text.contains("due date"), "{text}");
    let listed = visible_text(&t.slash("/pledge", "list").await);
    assert!(listed.contains("P-1"), "P-1 is still open: {listed}");
}

#[tokio::test]
async fn postgres_subcommand_words_never_make_a_public_pledge_by_accident() {
    subcommand_words_never_make_a_public_pledge_by_accident(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_subcommand_words_never_make_a_public_pledge_by_accident() {
    subcommand_words_never_make_a_public_pledge_by_accident(Backend::Sqlite).await;
}

/// `/experiment learnings` counts every learning, not only the ones shown, and a search finds a
/// learning with every word in any order, not only the exact phrase.
async fn learnings_are_counted_in_full_and_searched_word_by_word(backend: Backend) {
    let t = SlackTest::start(backend).await;
    for n in 1..=19 {
        let learning = if n % 2 == 0 {
            format!("short emails get read during onboarding {n}")
        } else {
            format!("long tours lose people {n}")
        };
        t.slash("/experiment", &format!("propose Try {n} | It helps | activation 0.31 -&gt; 0.36")).await;
        t.slash("/experiment", &format!("start E-{n}")).await;
        let closed = t.slash("/experiment", &format!("close E-{n} lost {learning}")).await;
        assert!(visible_text(&closed).contains(&learning), "{closed}");
    }
    let all = t.slash("/experiment", "learnings").await;
    let text = visible_text(&all);
    assert!(text.contains("19 learnings, showing the 15 newest; add words to search"), "{text}");

    let found = visible_text(&t.slash("/experiment", "learnings onboarding emails").await);
    assert!(found.contains("9 learnings mention \"onboarding emails\""), "every word, in any order: {found}");
    assert!(!found.contains("long tours"), "{found}");
    let none = visible_text(&t.slash("/experiment", "learnings onboarding tours").await);
    assert!(none.contains("No learnings mention every one of"), "{none}");
}

#[tokio::test]
async fn postgres_learnings_are_counted_in_full_and_searched_word_by_word() {
    learnings_are_counted_in_full_and_searched_word_by_word(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_learnings_are_counted_in_full_and_searched_word_by_word() {
    learnings_are_counted_in_full_and_searched_word_by_word(Backend::Sqlite).await;
}

/// The backlog is listed by votes, the list says how many there are in all, and the rest is one
/// command away.
async fn the_backlog_is_listed_by_votes_and_the_rest_is_one_command_away(backend: Backend) {
    let t = SlackTest::start(backend).await;
    for n in 1..=17 {
        t.slash("/experiment", &format!("propose Idea number {n:02} | It helps | activation 0.31 -&gt; 0.36")).await;
    }
    t.slash("/experiment", "vote E-3").await;
    t.slash_as("/experiment", "vote E-3", "T01", ("U02", "bob")).await;
    t.slash("/experiment", "vote E-5").await;

    let first = visible_text(&t.slash("/experiment", "list proposed").await);
    assert!(first.contains("17 experiments in #growth (proposed), showing 1–15"), "{first}");
    let at = |text: &str, n: u32| text.find(&format!("Idea number {n:02}")).unwrap_or(usize::MAX);
    assert!(at(&first, 3) < at(&first, 5) && at(&first, 5) < at(&first, 1), "most votes first: {first}");
    assert!(at(&first, 1) < at(&first, 15) && at(&first, 16) == usize::MAX, "{first}");
    assert!(first.contains("…and 2 more: `/experiment list proposed 2`"), "{first}");

    let second = visible_text(&t.slash("/experiment", "list proposed 2").await);
    assert!(second.contains("showing 16–17") && at(&second, 16) < at(&second, 17), "{second}");
    assert!(!second.contains("more:"), "{second}");
    let past = visible_text(&t.slash("/experiment", "list proposed 3").await);
    assert!(past.contains("make 2 pages"), "{past}");
}

#[tokio::test]
async fn postgres_the_backlog_is_listed_by_votes_and_the_rest_is_one_command_away() {
    the_backlog_is_listed_by_votes_and_the_rest_is_one_command_away(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_the_backlog_is_listed_by_votes_and_the_rest_is_one_command_away() {
    the_backlog_is_listed_by_votes_and_the_rest_is_one_command_away(Backend::Sqlite).await;
}
