//! The command core end to end on both backends: typed text in, neutral reply out, with the store
//! showing what changed. A failed command must change nothing.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use nudge::commands::execute::write_batch;
use nudge::commands::{Commands, Invocation, execute, parse};
use nudge::config::{Config, Defaults};
use nudge::domain::ids::ExperimentRef;
use nudge::message::{ActionKind, Message, Visibility};
use nudge::store::{RowCounts, Store, WorkspaceId};

use crate::helpers::{monday_morning, on_both_backends};

fn defaults() -> Defaults {
    let mut env = HashMap::new();
    env.insert("NUDGE_DEFAULT_TIME_ZONE".to_string(), "Europe/Berlin".to_string());
    env.insert("NUDGE_CONFIG".to_string(), crate::helpers::empty_config_file());
    Config::load(&env).expect("valid test defaults").defaults
}

/// A person typing commands in one channel of one workspace.
struct Typist {
    store: Store,
    ws: WorkspaceId,
    member_id: &'static str,
    member_name: &'static str,
    now: DateTime<Utc>,
}

async fn workspace(store: &Store, team: &str) -> WorkspaceId {
    let mut tx = store.begin().await.unwrap();
    let ws = tx.ensure_workspace("slack", team, "Acme", monday_morning()).await.unwrap();
    tx.commit().await.unwrap();
    ws
}

impl Typist {
    async fn ada(store: &Store) -> Typist {
        let ws = workspace(store, "T01").await;
        Typist { store: store.clone(), ws, member_id: "U01", member_name: "Ada", now: monday_morning() }
    }

    fn bob(&self) -> Typist {
        Typist { store: self.store.clone(), ws: self.ws, member_id: "U02", member_name: "Bob", now: self.now }
    }

    fn invocation(&self) -> Invocation {
        Invocation {
            workspace: self.ws,
            direct: false,
            channel_id: "C01".into(),
            channel_name: "growth".into(),
            member_id: self.member_id.into(),
            member_name: self.member_name.into(),
            now: self.now,
        }
    }

    /// Types `/command text` and returns nudge's reply (a usage reply when it does not parse).
    async fn says(&self, command: &str, text: &str) -> Message {
        let invocation = self.invocation();
        match parse(command, text) {
            Ok(parsed) => execute(&self.store, &defaults(), &invocation, parsed).await.expect("no store error"),
            Err(usage) => nudge::commands::execute::usage_reply(&usage, text),
        }
    }

    async fn counts(&self) -> RowCounts {
        let mut tx = self.store.begin().await.unwrap();
        tx.row_counts(self.ws).await.unwrap()
    }
}

const PROPOSAL: &str =
    "propose Shorter onboarding email | A 3-line welcome raises activation | activation 0.31 -> 0.36";

fn all_text(reply: &Message) -> String {
    reply.plain_text()
}

const SECOND_PROPOSAL: &str = "propose Pricing page FAQ | Answering doubts lifts upgrades | upgrades 2% -> 3%";

on_both_backends! {
    async fn commands_sharing_one_commit_each_succeed_or_change_nothing(store: Store) {
        let ada = Typist::ada(&store).await;
        let typed = [
            ("/experiment", PROPOSAL),
            ("/experiment", "update E-99 0.4"),
            ("/pledge", "call five customers by 2026-11-01"),
            ("/experiment", SECOND_PROPOSAL),
            ("/experiment", "start E-2"),
            ("/experiment", "vote E-2"),
        ];
        let jobs: Vec<_> = typed.iter().map(|(command, text)| (ada.invocation(), parse(command, text).unwrap())).collect();
        let answers: Vec<String> = write_batch(&store, &defaults(), &jobs)
            .await
            .expect("the batch is kept")
            .into_iter()
            .map(|answer| answer.expect("no store error").text)
            .collect();
        let expected = [
            "ada proposed E-1",
            "There is no E-99",
            "already passed",
            "proposed E-2",
            "E-2 is running",
            "votes order the backlog",
        ];
        for (answer, words) in answers.iter().zip(expected) {
            assert!(answer.to_lowercase().contains(&words.to_lowercase()), "{words:?} not in {answer:?}");
        }
        // The failed commands left nothing; the others were all committed, numbers without gaps.
        let counts = ada.counts().await;
        assert_eq!((counts.experiments, counts.pledges, counts.votes, counts.events), (2, 0, 0, 3));
        assert!(ada.says("/experiment", "show E-2").await.plain_text().contains("Status: running"));
    }

    async fn concurrent_commands_through_the_writers_get_distinct_ids(store: Store) {
        let ada = Typist::ada(&store).await;
        let queue = Commands::new(store.clone(), defaults());
        let mut asked = Vec::new();
        for _ in 0..30 {
            let (queue, invocation) = (queue.clone(), ada.invocation());
            asked.push(tokio::spawn(async move {
                queue.execute(invocation, parse("/experiment", PROPOSAL).unwrap()).await.unwrap().text
            }));
        }
        let mut numbers = Vec::new();
        for answer in asked {
            let text = answer.await.unwrap();
            let number: i64 = text.split("E-").nth(1).and_then(|rest| rest.split(':').next()).unwrap().parse().unwrap();
            numbers.push(number);
        }
        numbers.sort();
        assert_eq!(numbers, (1..=30).collect::<Vec<i64>>());
        assert_eq!(ada.counts().await.experiments, 30);
        let help = queue.execute(ada.invocation(), parse("/nudge", "help").unwrap()).await.unwrap();
        assert!(help.plain_text().contains("/pledge"));
    }

    async fn a_proposal_is_announced_in_the_channel_with_its_metric_and_buttons(store: Store) {
        let ada = Typist::ada(&store).await;
        let reply = ada.says("/experiment", PROPOSAL).await;
        assert_eq!(reply.visibility, Visibility::Channel);
        assert!(reply.text.contains("Ada proposed E-1: Shorter onboarding email"), "{}", reply.text);
        let metric = reply.sections[0].metric.as_ref().expect("a metric row");
        assert_eq!((metric.baseline.as_str(), metric.target.as_str(), metric.now.as_deref()), ("0.31", "0.36", None));
        let actions: Vec<ActionKind> = reply.sections[0].actions.iter().map(|a| a.kind).collect();
        assert_eq!(actions, vec![ActionKind::StartExperiment(ExperimentRef(1)), ActionKind::Vote(ExperimentRef(1))]);
        assert_eq!(ada.counts().await.experiments, 1);
        assert_eq!(ada.counts().await.events, 1);
    }

    async fn an_experiment_runs_the_whole_loop_from_proposal_to_learning(store: Store) {
        let ada = Typist::ada(&store).await;
        ada.says("/experiment", PROPOSAL).await;
        let started = ada.says("/experiment", "start E-1").await;
        assert_eq!(started.visibility, Visibility::Channel);
        assert!(started.text.contains("E-1 is running"), "{}", started.text);

        let first = ada.says("/experiment", "update E-1 0.33 first week").await;
        assert_eq!(first.visibility, Visibility::Private);
        assert!(first.text.contains("Recorded 0.33 for E-1") && first.text.contains("40% of the gap"), "{}", first.text);
        let hit = ada.says("/experiment", "update E-1 0.37").await;
        assert!(hit.text.contains("hits the target"), "{}", hit.text);

        let shown = ada.says("/experiment", "show e1").await;
        let metric = shown.sections[0].metric.as_ref().unwrap();
        assert_eq!(metric.now.as_deref(), Some("0.37"));
        assert_eq!(metric.progress_percent, Some(120));
        assert_eq!(metric.sparkline.chars().count(), 2);
        assert!(!all_text(&shown).contains("Last note"), "the last reading had no note");

        let closed = ada.says("/experiment", "close E-1 won short emails get read").await;
        assert_eq!(closed.visibility, Visibility::Channel);
        assert!(closed.text.contains("won") && closed.text.contains("short emails get read"), "{}", closed.text);
        let learnings = ada.says("/experiment", "learnings emails").await;
        assert!(all_text(&learnings).contains("short emails get read"), "{}", all_text(&learnings));
        let listed = ada.says("/experiment", "list closed").await;
        assert!(all_text(&listed).contains("E-1 · Shorter onboarding email"));
        assert!(ada.says("/experiment", "list").await.text.contains("No proposed or running experiments"));
    }

    async fn wrong_status_transitions_are_refused_kindly_and_change_nothing(store: Store) {
        let ada = Typist::ada(&store).await;
        ada.says("/experiment", PROPOSAL).await;
        let before = ada.counts().await;
        let reply = ada.says("/experiment", "close E-1 won it worked").await;
        assert_eq!(reply.visibility, Visibility::Private);
        assert!(reply.text.contains("start it first with `/experiment start E-1`"), "{}", reply.text);
        let reply = ada.says("/experiment", "update E-1 0.4").await;
        assert!(reply.text.contains("still proposed"), "{}", reply.text);
        assert_eq!(ada.counts().await, before);
        let shown = ada.says("/experiment", "show E-1").await;
        assert!(all_text(&shown).contains("Status: proposed"));
    }

    async fn an_unknown_id_gets_a_clear_answer_and_writes_nothing(store: Store) {
        let ada = Typist::ada(&store).await;
        let reply = ada.says("/experiment", "update E-99 0.4").await;
        assert_eq!(reply.visibility, Visibility::Private);
        assert!(reply.text.contains("There is no E-99"), "{}", reply.text);
        assert!(ada.says("/pledge", "done P-5").await.text.contains("There is no P-5"));
        let zero = RowCounts { experiments: 0, readings: 0, pledges: 0, votes: 0, events: 0 };
        assert_eq!(ada.counts().await, zero);
        // Not even the channel or member seen for the first time is kept from a failed command.
        let mut tx = store.begin().await.unwrap();
        assert!(tx.channel(ada.ws, "C01").await.unwrap().is_none());
    }

    async fn malformed_commands_get_usage_and_change_nothing(store: Store) {
        let ada = Typist::ada(&store).await;
        for (command, text) in [
            ("/experiment", "propose only a title"),
            ("/experiment", "frobnicate E-1"),
            ("/experiment", "update E-1 lots"),
            ("/pledge", "call five customers by someday"),
            ("/experiment", "show X-1"),
        ] {
            let reply = ada.says(command, text).await;
            assert_eq!(reply.visibility, Visibility::Private, "{text}");
            assert!(reply.text.contains("Usage:") && reply.text.contains("Example:"), "{text}: {}", reply.text);
        }
        let too_long = format!("propose {} | h | m 1 -> 2", "t".repeat(200));
        assert!(ada.says("/experiment", &too_long).await.text.contains("120"));
        assert_eq!(ada.counts().await.events, 0);
    }

    async fn votes_count_once_per_member_and_only_for_the_backlog(store: Store) {
        let ada = Typist::ada(&store).await;
        ada.says("/experiment", PROPOSAL).await;
        assert!(ada.says("/experiment", "vote E-1").await.text.contains("1 vote now"));
        assert!(ada.says("/experiment", "vote E-1").await.text.contains("already voted"));
        assert!(ada.bob().says("/experiment", "vote E-1").await.text.contains("2 votes now"));
        ada.says("/experiment", "start E-1").await;
        assert!(ada.bob().says("/experiment", "vote E-1").await.text.contains("votes order the backlog"));
        assert_eq!(ada.counts().await.votes, 2);
    }

    async fn a_pledge_is_made_with_its_due_date_in_the_channels_time_zone(store: Store) {
        let mut ada = Typist::ada(&store).await;
        // 23:30 UTC on Monday is already Tuesday in Berlin, so "today" is Tuesday there.
        ada.now = monday_morning() + Duration::hours(13) + Duration::minutes(30);
        let reply = ada.says("/pledge", "call five customers by today").await;
        assert_eq!(reply.visibility, Visibility::Channel);
        assert!(reply.text.contains("Ada pledged: call five customers (by Tue 24 Nov, P-1)"), "{}", reply.text);
        let mine = ada.says("/pledge", "list").await;
        assert!(all_text(&mine).contains("P-1 · call five customers"));
        let actions: Vec<ActionKind> = mine.sections[0].actions.iter().map(|a| a.kind).collect();
        assert!(actions.contains(&ActionKind::PledgeDone(nudge::domain::ids::PledgeRef(1))));
    }

    async fn a_fourth_open_pledge_is_refused_with_the_open_ones_listed(store: Store) {
        let ada = Typist::ada(&store).await;
        for what in ["call five customers by fri", "draft the email by tomorrow", "fix the signup bug by in 3 days"] {
            assert_eq!(ada.says("/pledge", what).await.visibility, Visibility::Channel);
        }
        let before = ada.counts().await;
        let reply = ada.says("/pledge", "write the survey by next week").await;
        assert_eq!(reply.visibility, Visibility::Private);
        assert!(reply.text.contains("3 open pledges"), "{}", reply.text);
        assert_eq!(reply.sections.len(), 3, "the three open pledges are listed to keep or release");
        assert_eq!(ada.counts().await, before);
        // Keeping one frees capacity.
        assert!(ada.says("/pledge", "done P-2 sent").await.text.contains("Ada kept P-2"));
        assert_eq!(ada.says("/pledge", "write the survey by next week").await.visibility, Visibility::Channel);
    }

    async fn only_the_owner_keeps_or_releases_a_pledge_and_only_once(store: Store) {
        let ada = Typist::ada(&store).await;
        ada.says("/pledge", "call five customers by fri").await;
        let reply = ada.bob().says("/pledge", "done P-1").await;
        assert!(reply.text.contains("P-1 is Ada's pledge"), "{}", reply.text);
        let released = ada.says("/pledge", "release P-1 the customer list is not ready").await;
        assert_eq!(released.visibility, Visibility::Private);
        assert!(released.text.contains("not a break"), "{}", released.text);
        assert!(ada.says("/pledge", "done P-1").await.text.contains("already released"));
        assert!(ada.says("/pledge", "list").await.text.contains("no open pledges"));
    }

    async fn a_late_pledge_kept_says_how_late(store: Store) {
        let mut ada = Typist::ada(&store).await;
        ada.says("/pledge", "call five customers by tomorrow").await;
        ada.now += Duration::days(3);
        let listed = ada.says("/pledge", "list all").await;
        assert!(all_text(&listed).contains("overdue by 2 days"), "{}", all_text(&listed));
        let kept = ada.says("/pledge", "done P-1").await;
        assert!(kept.text.contains("2 days late, and kept all the same"), "{}", kept.text);
    }

    async fn an_overdue_pledge_can_be_extended_by_its_owner(store: Store) {
        let mut ada = Typist::ada(&store).await;
        ada.says("/pledge", "call five customers by tomorrow").await;
        ada.now += Duration::days(3);
        assert!(ada.bob().says("/pledge", "extend P-1 to fri").await.text.contains("P-1 is Ada's pledge"));
        let extended = ada.says("/pledge", "extend P-1 to fri").await;
        assert_eq!(extended.visibility, Visibility::Private);
        assert!(extended.text.contains("P-1 is now due Fri 27 Nov"), "{}", extended.text);
        let listed = all_text(&ada.says("/pledge", "list").await);
        assert!(listed.contains("Due: Fri 27 Nov") && !listed.contains("overdue"), "{listed}");
        assert!(ada.says("/pledge", "extend P-1 to 2026-11-20").await.text.contains("already passed"));
    }

    async fn a_due_date_in_the_past_is_refused(store: Store) {
        let ada = Typist::ada(&store).await;
        let reply = ada.says("/pledge", "call five customers by 2026-11-01").await;
        assert!(reply.text.contains("already passed"), "{}", reply.text);
        assert_eq!(ada.counts().await.pledges, 0);
    }

    async fn channel_settings_change_and_show(store: Store) {
        let ada = Typist::ada(&store).await;
        let settings = all_text(&ada.says("/nudge", "settings").await);
        assert!(settings.contains("Mondays at 09:30 (Europe/Berlin)"), "{settings}");
        assert!(settings.contains("Open pledges per person: 3"), "{settings}");

        let scheduled = ada.says("/nudge", "schedule thu 10:00 America/New_York").await;
        assert_eq!(scheduled.visibility, Visibility::Private, "settings changes are not echoed in the channel");
        assert!(scheduled.text.contains("America/New_York") && scheduled.text.contains("Next: Thu 26 Nov 10:00"), "{}", scheduled.text);
        assert!(ada.says("/nudge", "rules").await.text.contains("no rules yet"));
        ada.says("/nudge", "rules set Ship small. Say when you can't keep a pledge.").await;
        assert!(all_text(&ada.says("/nudge", "rules").await).contains("Ship small."));
        let quiet = ada.says("/nudge", "quiet fri 2026-12-24").await;
        assert!(quiet.text.contains("every fri") && quiet.text.contains("2026-12-24"), "{}", quiet.text);
        let paused = ada.says("/nudge", "pause 2").await;
        assert!(paused.text.contains("until Mon 7 Dec"), "{}", paused.text);

        let settings = all_text(&ada.says("/nudge", "settings").await);
        for expected in ["Thursdays at 10:00 (America/New_York)", "every fri", "2026-12-24", "until Mon 7 Dec", "Ship small."] {
            assert!(settings.contains(expected), "{expected} missing from {settings}");
        }
        assert!(ada.says("/nudge", "pause 0").await.text.contains("back on"));
        assert!(ada.says("/nudge", "quiet off").await.text.contains("No quiet days"));
        assert!(ada.says("/nudge", "quiet 2026-01-01").await.text.contains("already passed"));
    }

    async fn the_digest_counts_the_weeks_work(store: Store) {
        let ada = Typist::ada(&store).await;
        ada.says("/experiment", PROPOSAL).await;
        ada.says("/experiment", "start E-1").await;
        ada.says("/experiment", "update E-1 0.33").await;
        ada.says("/experiment", "close E-1 lost people skim anyway").await;
        ada.says("/pledge", "call five customers by fri").await;
        ada.says("/pledge", "done P-1").await;
        let digest = ada.says("/nudge", "digest").await;
        assert_eq!(digest.visibility, Visibility::Channel);
        let text = all_text(&digest);
        for expected in [
            "1 learning logged",
            "Experiments proposed: 1",
            "Readings recorded: 1",
            "0 won, 1 lost, 0 inconclusive",
            "1 made, 1 kept, 0 released, 0 broken",
            "1 week with a learning",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
    }

    async fn help_answers_without_touching_the_database(store: Store) {
        let ada = Typist::ada(&store).await;
        let help = ada.says("/nudge", "help").await;
        assert_eq!(help.visibility, Visibility::Private);
        for command in ["/experiment propose", "/pledge", "/nudge schedule"] {
            assert!(help.plain_text().contains(command), "{command} missing from help");
        }
        let mut tx = store.begin().await.unwrap();
        assert!(tx.channel(ada.ws, "C01").await.unwrap().is_none());
    }

    async fn another_workspace_cannot_reach_this_ones_experiments(store: Store) {
        let ada = Typist::ada(&store).await;
        ada.says("/experiment", PROPOSAL).await;
        let other_ws = workspace(&store, "T02").await;
        let eve = Typist { store: store.clone(), ws: other_ws, member_id: "U01", member_name: "Eve", now: ada.now };
        assert!(eve.says("/experiment", "show E-1").await.text.contains("There is no E-1"));
        assert!(eve.says("/experiment", "start E-1").await.text.contains("There is no E-1"));
        let shown = ada.says("/experiment", "show E-1").await;
        assert!(all_text(&shown).contains("Status: proposed"));
    }
}

/// Holds a write lock another process could hold: on Postgres the workspace's row (its short-id
/// counter), on SQLite the database file's write lock. Released when dropped.
enum HeldLock {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl HeldLock {
    async fn on(url: &str, ws: WorkspaceId) -> HeldLock {
        use sqlx::Connection;
        if url.starts_with("postgres") {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN").execute(&mut conn).await.unwrap();
            sqlx::query("SELECT id FROM workspaces WHERE id = $1 FOR UPDATE")
                .bind(ws.0)
                .execute(&mut conn)
                .await
                .unwrap();
            HeldLock::Postgres(conn)
        } else {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
            HeldLock::Sqlite(conn)
        }
    }

    async fn release(self) {
        match self {
            HeldLock::Postgres(mut conn) => sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.map(|_| ()).unwrap(),
            HeldLock::Sqlite(mut conn) => sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.map(|_| ()).unwrap(),
        }
    }
}

/// While a write in one workspace waits for a lock held elsewhere, reads in that workspace and in
/// another are answered: reads never queue behind writes. The write then goes through.
async fn reads_are_answered_while_a_write_waits_on_a_held_lock(backend: crate::helpers::Backend) {
    let db = crate::helpers::TestDb::new(backend).await;
    let store = db.store().await;
    let ada = Typist::ada(&store).await;
    let eve_ws = workspace(&store, "T02").await;
    let eve = Typist { store: store.clone(), ws: eve_ws, member_id: "U09", member_name: "Eve", now: ada.now };
    // Both have typed in their channels before, so their reads need nothing written.
    ada.says("/experiment", PROPOSAL).await;
    eve.says("/experiment", SECOND_PROPOSAL).await;
    let commands = Commands::new(store.clone(), defaults());

    let held = HeldLock::on(&db.url, ada.ws).await;
    let blocked = {
        let (commands, invocation) = (commands.clone(), ada.invocation());
        tokio::spawn(async move { commands.execute(invocation, parse("/experiment", PROPOSAL).unwrap()).await })
    };
    let read = |typist: &Typist, text: &'static str| {
        let (commands, invocation) = (commands.clone(), typist.invocation());
        async move { commands.execute(invocation, parse("/experiment", text).unwrap()).await.unwrap() }
    };
    // A bound only so that a regression fails instead of hanging; nothing here measures time.
    let in_time = std::time::Duration::from_secs(20);
    let listed =
        tokio::time::timeout(in_time, read(&eve, "list")).await.expect("a read in another workspace is answered");
    assert!(all_text(&listed).contains("E-1 · Pricing page FAQ"), "{}", all_text(&listed));
    let shown =
        tokio::time::timeout(in_time, read(&ada, "show E-1")).await.expect("a read in the same workspace is answered");
    assert!(all_text(&shown).contains("Status: proposed"), "{}", all_text(&shown));
    assert!(!blocked.is_finished(), "the write is still waiting for the lock");

    held.release().await;
    let proposed = blocked.await.unwrap().expect("the write goes through once the lock is released");
    assert!(proposed.text.contains("proposed E-2"), "{}", proposed.text);
}

#[tokio::test]
async fn postgres_reads_are_answered_while_a_write_waits_on_a_held_lock() {
    reads_are_answered_while_a_write_waits_on_a_held_lock(crate::helpers::Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_reads_are_answered_while_a_write_waits_on_a_held_lock() {
    reads_are_answered_while_a_write_waits_on_a_held_lock(crate::helpers::Backend::Sqlite).await;
}
