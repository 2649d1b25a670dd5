//! The dashboard: a channel's page behind the signed, expiring link `/nudge dashboard` gives, with
//! its board, charts, pledges, learnings and exports; a changed or expired link shows no data.

use serde_json::Value;

use crate::helpers::Backend;
use crate::slack::{SlackTest, button, visible_text};

/// The dashboard link in `/nudge dashboard`'s private answer, as a path on the app.
pub(crate) async fn dashboard_link(t: &SlackTest, team: &str, user: (&str, &str)) -> String {
    let answer = t.slash_as("/nudge", "dashboard", team, user).await;
    assert_eq!(answer["response_type"], "ephemeral", "{answer}");
    let text = visible_text(&answer);
    let start = text.find("https://nudge.example.com/dashboard/").unwrap_or_else(|| panic!("a link: {text}"));
    let link: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    link.trim_start_matches("https://nudge.example.com").to_string()
}

/// A channel with something to show: a running experiment with readings (one celebrated), a
/// proposal with a vote, a closed one with a learning, and pledges kept and open.
pub(crate) async fn a_team_at_work(t: &SlackTest) {
    t.slash("/experiment", "propose Shorter signup | Fewer fields convert better | conversion 31% -> 40%").await;
    t.slash("/experiment", "start E-1").await;
    t.slash("/experiment", "update E-1 33%").await;
    t.slash("/experiment", "update E-1 36%").await;
    t.slash("/experiment", "propose =HYPERLINK(\"http://evil.example\") | A title that is a formula | clicks 1 -> 2")
        .await;
    t.slash_as("/experiment", "vote E-2", "T01", ("U02", "ben")).await;
    t.slash("/experiment", "propose Welcome call | A call keeps people | retention 60% -> 70%").await;
    t.slash("/experiment", "start E-3").await;
    t.slash("/experiment", "close E-3 lost Nobody picks up a call from an unknown number").await;
    let made = t.slash("/pledge", "call five customers by fri").await;
    let (done, value) = button(&made, "Done", "P-1");
    t.interaction(t.click(&done, &value)).await;
    t.slash("/pledge", "write up the interviews by next fri").await;
    t.app.settle().await;
}

async fn the_dashboard_shows_the_channels_board_charts_pledges_and_learnings(backend: Backend) {
    let t = SlackTest::start(backend).await;
    a_team_at_work(&t).await;
    let link = dashboard_link(&t, "T01", ("U01", "ada")).await;
    let page = t.app.get(&link).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "private, no-store");
    let html = page.text().await.unwrap();
    for shown in [
        "#growth",
        "Shorter signup",
        "Welcome call",
        "Nobody picks up a call from an unknown number",
        "<svg",
        "class=\"celebrated\"",
        "write up the interviews",
        "<th scope=\"row\">ada</th>",
        "Weeks in a row with a learning",
        "1 vote",
    ] {
        assert!(html.contains(shown), "the page shows {shown:?}");
    }
    let searched = t.app.get(&format!("{link}?q=unknown+nobody")).await.text().await.unwrap();
    assert!(searched.contains("Nobody picks up"), "every word matches");
    let missed = t.app.get(&format!("{link}?q=nobody+email")).await.text().await.unwrap();
    assert!(missed.contains("No learning has all of those words"));
}

#[tokio::test]
async fn postgres_the_dashboard_shows_the_channels_board_charts_pledges_and_learnings() {
    the_dashboard_shows_the_channels_board_charts_pledges_and_learnings(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_the_dashboard_shows_the_channels_board_charts_pledges_and_learnings() {
    the_dashboard_shows_the_channels_board_charts_pledges_and_learnings(Backend::Sqlite).await;
}

/// A link changed to name another channel or another expiry opens nothing; an expired one says so;
/// another team's link shows only that team's channel.
async fn a_changed_or_expired_link_shows_no_data(backend: Backend) {
    let t = SlackTest::start(backend).await;
    a_team_at_work(&t).await;
    t.slash_as("/experiment", "propose Other team idea | Theirs | clicks 1 -> 2", "T02", ("V01", "zoe")).await;
    let ours = dashboard_link(&t, "T01", ("U01", "ada")).await;
    let theirs = dashboard_link(&t, "T02", ("V01", "zoe")).await;
    let their_page = t.app.get(&theirs).await.text().await.unwrap();
    assert!(their_page.contains("Other team idea") && !their_page.contains("Shorter signup"), "only their channel");

    let token = ours.trim_start_matches("/dashboard/");
    let parts: Vec<&str> = token.split('.').collect();
    let other_channel =
        format!("/dashboard/{}.{}.{}.{}", parts[0], parts[1].parse::<i64>().unwrap() + 1, parts[2], parts[3]);
    let other_team =
        format!("/dashboard/{}.{}.{}.{}", parts[0].parse::<i64>().unwrap() + 1, parts[1], parts[2], parts[3]);
    let longer =
        format!("/dashboard/{}.{}.{}.{}", parts[0], parts[1], parts[2].parse::<i64>().unwrap() + 86_400, parts[3]);
    for changed in [other_channel, other_team, longer, "/dashboard/nonsense".to_string()] {
        let page = t.app.get(&changed).await;
        assert_eq!(page.status(), 404, "{changed}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("does not open") && !html.contains("Shorter signup") && !html.contains("Other team"),
            "{html}"
        );
        let export = t.app.get(&format!("{changed}/export/experiments.csv")).await;
        assert_eq!(export.status(), 404, "no export through a changed link");
    }
    t.app.clock.advance(chrono::Duration::days(9));
    let expired = t.app.get(&ours).await;
    assert_eq!(expired.status(), 410);
    let html = expired.text().await.unwrap();
    assert!(html.contains("expired") && html.contains("/nudge dashboard") && !html.contains("Shorter signup"));
}

#[tokio::test]
async fn postgres_a_changed_or_expired_link_shows_no_data() {
    a_changed_or_expired_link_shows_no_data(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_changed_or_expired_link_shows_no_data() {
    a_changed_or_expired_link_shows_no_data(Backend::Sqlite).await;
}

/// Exports download as CSV (a formula title is defused) and as JSON of the documented shape.
async fn exports_download_and_parse(backend: Backend) {
    let t = SlackTest::start(backend).await;
    a_team_at_work(&t).await;
    let link = dashboard_link(&t, "T01", ("U01", "ada")).await;
    let csv = t.app.get(&format!("{link}/export/experiments.csv")).await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("id,title,hypothesis,owner,status"));
    assert!(csv.contains("\"'=HYPERLINK("), "a formula cell is defused: {csv}");
    assert_eq!(csv.lines().count(), 4, "a header and three experiments");

    let readings: Value = t.app.get(&format!("{link}/export/readings.json")).await.json().await.unwrap();
    let values: Vec<f64> = readings.as_array().unwrap().iter().map(|r| r["value"].as_f64().unwrap()).collect();
    assert_eq!(values.len(), 2);
    assert!(values.contains(&33.0) && values.contains(&36.0));
    let pledges: Value = t.app.get(&format!("{link}/export/pledges.json")).await.json().await.unwrap();
    let statuses: Vec<&str> = pledges.as_array().unwrap().iter().map(|p| p["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"kept") && statuses.contains(&"open"), "{statuses:?}");
    let learnings: Value = t.app.get(&format!("{link}/export/learnings.json")).await.json().await.unwrap();
    assert_eq!(learnings[0]["learning"], "Nobody picks up a call from an unknown number");
    assert_eq!(t.app.get(&format!("{link}/export/secrets.csv")).await.status(), 404);
}

#[tokio::test]
async fn postgres_exports_download_and_parse() {
    exports_download_and_parse(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_exports_download_and_parse() {
    exports_download_and_parse(Backend::Sqlite).await;
}

/// Every check-in carries a "View dashboard" link that opens the channel's page.
async fn a_check_in_links_to_the_dashboard(backend: Backend) {
    let t = SlackTest::start(backend).await;
    a_team_at_work(&t).await;
    let key = nudge::web::link_key(&t.app.store).await.unwrap();
    let links = nudge::scheduler::DashboardLinks {
        key: std::sync::Arc::new(key),
        base_url: "https://nudge.example.com".into(),
    };
    let settings = nudge::scheduler::SchedulerSettings { dashboard: Some(links), ..Default::default() };
    let scheduler = nudge::scheduler::Scheduler::new(t.app.store.clone(), t.app.clock.clone(), settings);
    // Monday 30 November, past the default 09:30 check-in.
    t.app.clock.advance(chrono::Duration::days(7));
    scheduler.tick().await.unwrap();
    let mut tx = t.app.store.read().await.unwrap();
    let ws = tx.workspace("slack", "T01").await.unwrap().unwrap();
    let posts = tx.outbox_messages(ws).await.unwrap();
    drop(tx);
    let checkin = posts.iter().find(|m| m.message.text.contains("Weekly check-in")).expect("a check-in");
    let rendered = nudge::platforms::slack::render::message(&checkin.message).to_string();
    let start = rendered.find("<https://nudge.example.com/dashboard/").expect("a dashboard link in the check-in");
    let link: String = rendered[start + 1..].chars().take_while(|c| *c != '|').collect();
    assert!(rendered[start..].starts_with(&format!("<{link}|View dashboard>")), "{rendered}");
    let page = t.app.get(link.trim_start_matches("https://nudge.example.com")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Shorter signup"));
}

#[tokio::test]
async fn postgres_a_check_in_links_to_the_dashboard() {
    a_check_in_links_to_the_dashboard(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_check_in_links_to_the_dashboard() {
    a_check_in_links_to_the_dashboard(Backend::Sqlite).await;
}
