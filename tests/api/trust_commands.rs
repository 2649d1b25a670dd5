//! Issue 9, the command side: forms that keep what was typed, a "Next:" that is true, schedules
//! within the operator's limit, counts and lists that tell the whole truth, pledges nobody meant,
//! and settings changes that are not echoed in the channel. Each test failed before its fix.

use serde_json::Value;

use crate::helpers::Backend;
use crate::slack::{SlackTest, TOKEN, button, fill_form, submission, visible_text};

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

/// The modal Slack was last asked to open.
async fn opened_view(t: &SlackTest, count: usize) -> Value {
    let opened = t.calls_to("/api/views.open", count).await;
    serde_json::from_slice::<Value>(&opened[count - 1].body).unwrap()["view"].clone()
}

/// A form's answer the command refuses (a date already past) comes back next to its field, with
/// the form still open and everything typed in it kept; nothing is written.
async fn a_past_date_in_a_form_is_shown_by_its_field_and_the_form_stays_open(backend: Backend) {
    let t = SlackTest::start(backend).await;
    assert_eq!(t.slash("/experiment", "propose").await, Value::Null);
    let view = opened_view(&t, 1).await;
    let answers = [
        ("title", "Shorter email"),
        ("hypothesis", "short gets read"),
        ("metric", "activation"),
        ("baseline", "31%"),
        ("target", "36%"),
        ("review", "2026-11-01"),
    ];
    let response = t.interaction(submission(&view, fill_form(&view, &answers))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("field errors, not an empty 200 that closes the form");
    assert_eq!(body["response_action"], "errors", "{body}");
    let review = body["errors"]["review"].as_str().unwrap_or_default();
    assert!(review.contains("2026-11-01") && review.contains("already passed"), "{body}");
    assert!(visible_text(&t.slash("/experiment", "show E-1").await).contains("There is no E-1"));

    let pledged = t.slash("/pledge", "call five customers by fri").await;
    let (extend, value) = button(&pledged, "Extend", "P-1");
    t.interaction(t.click(&extend, &value)).await;
    let view = opened_view(&t, 2).await;
    let response = t.interaction(submission(&view, fill_form(&view, &[("due", "2026-11-20")]))).await;
    let body: Value = response.json().await.expect("field errors");
    assert!(body["errors"]["due"].as_str().unwrap_or_default().contains("already passed"), "{body}");
    let listed = visible_text(&t.slash("/pledge", "list").await);
    assert!(listed.contains("Fri 27 Nov"), "the due date did not move: {listed}");

    // A value in a unit the metric cannot take is the value field's problem.
    t.slash("/experiment", "propose Faster pages | less waiting | load time 800 ms -&gt; 400 ms").await;
    t.slash("/experiment", "start E-1").await;
    let running = t.slash("/experiment", "list running").await;
    let (update, value) = button(&running, "Update metric", "E-1");
    t.interaction(t.click(&update, &value)).await;
    let view = opened_view(&t, 3).await;
    let response = t.interaction(submission(&view, fill_form(&view, &[("load time", "40%")]))).await;
    let body: Value = response.json().await.expect("field errors");
    assert!(body["errors"]["value"].as_str().unwrap_or_default().contains("not the same quantity"), "{body}");
    assert!(!visible_text(&t.slash("/experiment", "show E-1").await).contains("40%"), "nothing recorded");
    t.app.settle().await;
    assert_eq!(t.calls_now("/api/chat.postEphemeral").await, 0, "the refusals stayed in the forms");
}

#[tokio::test]
async fn postgres_a_past_date_in_a_form_is_shown_by_its_field_and_the_form_stays_open() {
    a_past_date_in_a_form_is_shown_by_its_field_and_the_form_stays_open(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_past_date_in_a_form_is_shown_by_its_field_and_the_form_stays_open() {
    a_past_date_in_a_form_is_shown_by_its_field_and_the_form_stays_open(Backend::Sqlite).await;
}

/// The answer a button gets through its response URL, the `n`th one.
async fn button_answer(t: &SlackTest, n: usize) -> String {
    let answered = t.calls_to("/commands/T01/1/response", n).await;
    visible_text(&serde_json::from_slice::<Value>(&answered[n - 1].body).unwrap())
}

/// A form that cannot succeed is not opened: the person hears why before typing anything.
async fn forms_that_cannot_succeed_are_refused_before_they_open(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let bobs = t.slash_as("/pledge", "draft the survey by fri", "T01", ("U02", "bob")).await;
    let (release, value) = button(&bobs, "Release", "P-1");
    t.interaction(t.click(&release, &value)).await;
    assert!(button_answer(&t, 1).await.contains("bob's pledge; only they can"), "release");
    let (extend, value) = button(&bobs, "Extend", "P-1");
    t.interaction(t.click(&extend, &value)).await;
    assert!(button_answer(&t, 2).await.contains("bob's pledge"), "extend");

    let mine = t.slash("/pledge", "call five customers by fri").await;
    t.slash("/pledge", "done P-2").await;
    let (extend, value) = button(&mine, "Extend", "P-2");
    t.interaction(t.click(&extend, &value)).await;
    assert!(button_answer(&t, 3).await.contains("P-2 is already kept"), "a kept pledge");

    t.slash("/experiment", "propose Shorter email | short gets read | activation 31% -&gt; 36%").await;
    let refused = visible_text(&t.slash("/experiment", "close E-1").await);
    assert!(refused.contains("E-1 is still proposed"), "a proposed experiment cannot be closed: {refused}");

    let direct = t
        .slash_body("/experiment", "", "T01", ("U01", "ada"))
        .replace("channel_id=C01", "channel_id=D0ADA")
        .replace("channel_name=growth", "channel_name=directmessage");
    let answer: Value = t
        .signed("/slack/commands", "application/x-www-form-urlencoded", direct, crate::slack::SECRET)
        .await
        .json()
        .await
        .expect("an answer instead of a form");
    assert!(visible_text(&answer).contains("works in a team channel"), "{answer}");
    t.app.settle().await;
    assert_eq!(t.calls_now("/api/views.open").await, 0, "no form opened");
}

#[tokio::test]
async fn postgres_forms_that_cannot_succeed_are_refused_before_they_open() {
    forms_that_cannot_succeed_are_refused_before_they_open(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_forms_that_cannot_succeed_are_refused_before_they_open() {
    forms_that_cannot_succeed_are_refused_before_they_open(Backend::Sqlite).await;
}

/// A long command that is refused comes back privately, whole, to copy and fix; a short one is
/// just answered.
#[tokio::test]
async fn a_refused_long_command_comes_back_to_copy() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let title = "A much shorter signup form that asks only for an email address and nothing else at all, ever, really";
    let typed = format!("propose {title} {title} | fewer fields | activation 31% -&gt; 36%");
    let answer = t.slash("/experiment", &typed).await;
    assert!(is_private(&answer), "{answer}");
    let text = visible_text(&answer);
    assert!(text.contains("keep it to 120"), "{text}");
    let whole = format!("/experiment propose {title} {title} | fewer fields | activation 31% -&gt; 36%");
    assert!(text.contains(&whole), "the whole command comes back: {text}");

    let short = visible_text(&t.slash("/experiment", "update E-1 lots").await);
    assert!(!short.contains("What you typed"), "{short}");
}

/// `/pledge list all` tells how many pledges are open in the channel, not only how many fit.
async fn the_channels_pledge_list_tells_the_whole_number(backend: Backend) {
    let t = SlackTest::start(backend).await;
    for n in 0..17 {
        let member = (format!("U1{:02}", n / 3), format!("member{}", n / 3));
        let made = t.slash_as("/pledge", &format!("call customer {n} by fri"), "T01", (&member.0, &member.1)).await;
        assert_eq!(made["response_type"], "in_channel", "{made}");
    }
    let listed = visible_text(&t.slash("/pledge", "list all").await);
    assert!(listed.contains("This channel's open pledges (17, showing the 15 due soonest)"), "{listed}");
}

#[tokio::test]
async fn postgres_the_channels_pledge_list_tells_the_whole_number() {
    the_channels_pledge_list_tells_the_whole_number(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_the_channels_pledge_list_tells_the_whole_number() {
    the_channels_pledge_list_tells_the_whole_number(Backend::Sqlite).await;
}

/// A form nudge no longer knows (an old one left open across an upgrade) used to get its error
/// under the key `_`, which Slack refuses; now it is shown under the form's first field, or as the
/// form's content when it has none.
#[tokio::test]
async fn an_out_of_date_form_gets_an_error_slack_can_show() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let old = serde_json::json!({"callback_id": "retired-form", "private_metadata": "{}", "title": {"type": "plain_text", "text": "Old"}, "blocks": []});
    let with_field = serde_json::json!({"title": {"title": {"type": "plain_text_input", "value": "x"}}});
    let answer: serde_json::Value =
        t.interaction(crate::slack::submission(&old, with_field)).await.json().await.unwrap();
    assert_eq!(answer["response_action"], "errors");
    assert!(answer["errors"]["title"].as_str().unwrap().contains("out of date"), "{answer}");

    let answer: serde_json::Value =
        t.interaction(crate::slack::submission(&old, serde_json::json!({}))).await.json().await.unwrap();
    assert_eq!(answer["response_action"], "update");
    assert!(answer.to_string().contains("out of date"), "{answer}");
}
