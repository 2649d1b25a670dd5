//! The store's contract, run against Postgres and SQLite alike: every operation, its workspace
//! scoping, short-id allocation, and what a rolled-back transaction leaves behind (nothing).

use chrono::{Duration, NaiveDate};

use nudge::domain::experiment::{ExperimentStatus, Outcome};
use nudge::domain::ids::{ExperimentRef, PledgeRef};
use nudge::domain::metric::Metric;
use nudge::domain::pledge::PledgeStatus;
use nudge::store::{
    ChannelDefaults, ChannelRecord, EventKind, MemberRecord, NewEvent, NewExperiment, NewPledge, QuickProposal,
    Reminders, Store, WorkspaceId,
};

use crate::helpers::{monday_morning, on_both_backends};

fn defaults() -> ChannelDefaults {
    ChannelDefaults {
        schedule: "30 9 * * 1".into(),
        time_zone: "Europe/Berlin".into(),
        escalate_after_days: 3,
        quiet_weekdays: String::new(),
    }
}

/// A workspace with one channel and one member, committed.
async fn team(store: &Store, team: &str) -> (WorkspaceId, ChannelRecord, MemberRecord) {
    let now = monday_morning();
    let mut tx = store.begin().await.unwrap();
    let ws = tx.ensure_workspace("slack", team, "Acme", now).await.unwrap();
    let channel = tx.ensure_channel(ws, "C01", "growth", &defaults(), now).await.unwrap();
    let member = tx.ensure_member(ws, "U01", "Ada", now).await.unwrap();
    tx.commit().await.unwrap();
    (ws, channel, member)
}

fn activation() -> Metric {
    Metric::new("activation".into(), None, 0.31, 0.36).unwrap()
}

async fn propose(
    store: &Store,
    ws: WorkspaceId,
    channel: &ChannelRecord,
    member: &MemberRecord,
    title: &str,
) -> ExperimentRef {
    let metric = activation();
    let mut tx = store.begin().await.unwrap();
    let new = NewExperiment {
        channel: channel.id,
        owner: member,
        title,
        hypothesis: "a shorter email raises activation",
        metric: &metric,
        review_on: None,
    };
    let experiment = tx.insert_experiment(ws, &new, monday_morning()).await.unwrap();
    tx.commit().await.unwrap();
    experiment.number
}

on_both_backends! {
    async fn workspaces_channels_and_members_are_created_once(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        let (again_ws, again_channel, again_member) = team(&store, "T01").await;
        assert_eq!((ws, channel.id, member.id), (again_ws, again_channel.id, again_member.id));
        assert_eq!(channel.schedule.expression(), "30 9 * * 1");
        assert_eq!(channel.time_zone.name(), "Europe/Berlin");
        assert_eq!(channel.escalate_after_days, 3);
        // The same team id on another platform is another workspace.
        let mut tx = store.begin().await.unwrap();
        let teams_ws = tx.ensure_workspace("teams", "T01", "Acme", monday_morning()).await.unwrap();
        assert_ne!(teams_ws, ws);
    }

    async fn a_renamed_member_keeps_their_id_and_gets_the_new_name(store: Store) {
        let (ws, _, member) = team(&store, "T01").await;
        let mut tx = store.begin().await.unwrap();
        let renamed = tx.ensure_member(ws, "U01", "Ada L.", monday_morning()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(renamed.id, member.id);
        assert_eq!(renamed.display_name, "Ada L.");
    }

    async fn channel_settings_are_stored_and_read_back(store: Store) {
        let (ws, channel, _) = team(&store, "T01").await;
        let pause = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.set_rules(ws, channel.id, "Ship small. Say when you can't.").await.unwrap();
        let thursday = nudge::domain::schedule::Schedule::parse("0 10 * * 4").unwrap();
        tx.set_schedule(&channel, &thursday, chrono_tz::America::New_York, monday_morning()).await.unwrap();
        tx.set_quiet_days(ws, channel.id, "sat,sun", "2026-12-24,2026-12-25").await.unwrap();
        tx.set_paused_until(ws, channel.id, Some(pause)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let read = tx.channel(ws, "C01").await.unwrap().unwrap();
        assert_eq!(read.rules, "Ship small. Say when you can't.");
        assert_eq!(read.schedule.expression(), "0 10 * * 4");
        assert_eq!(read.time_zone.name(), "America/New_York");
        assert_eq!(read.quiet.weekdays_to_stored(), "sat,sun");
        assert!(read.quiet.is_quiet(NaiveDate::from_ymd_opt(2026, 12, 24).unwrap()));
        assert_eq!(read.paused_until, Some(pause));
    }

    async fn experiments_are_numbered_per_workspace_from_one(store: Store) {
        let (ws_a, channel_a, member_a) = team(&store, "T01").await;
        let (ws_b, channel_b, member_b) = team(&store, "T02").await;
        assert_eq!(propose(&store, ws_a, &channel_a, &member_a, "one").await, ExperimentRef(1));
        assert_eq!(propose(&store, ws_a, &channel_a, &member_a, "two").await, ExperimentRef(2));
        assert_eq!(propose(&store, ws_b, &channel_b, &member_b, "other team").await, ExperimentRef(1));
        let mut tx = store.begin().await.unwrap();
        let e2 = tx.experiment(ws_a, ExperimentRef(2)).await.unwrap().unwrap();
        assert_eq!(e2.title, "two");
        assert_eq!(e2.status, ExperimentStatus::Proposed);
        assert_eq!(e2.owner_name, "Ada");
        assert_eq!(e2.metric, activation());
    }

    async fn a_rolled_back_proposal_leaves_nothing_and_a_committed_number_is_never_reused(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        let metric = activation();
        {
            let mut tx = store.begin().await.unwrap();
            let new = NewExperiment { channel: channel.id, owner: &member, title: "dropped", hypothesis: "h", metric: &metric, review_on: None };
            tx.insert_experiment(ws, &new, monday_morning()).await.unwrap();
            // Dropped without commit.
        }
        let mut tx = store.begin().await.unwrap();
        assert!(tx.experiment(ws, ExperimentRef(1)).await.unwrap().is_none());
        assert_eq!(tx.row_counts(ws).await.unwrap().experiments, 0);
        drop(tx);
        assert_eq!(propose(&store, ws, &channel, &member, "kept").await, ExperimentRef(1));
        assert_eq!(propose(&store, ws, &channel, &member, "next").await, ExperimentRef(2));
    }

    async fn concurrent_proposals_in_one_workspace_get_distinct_numbers(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (store, channel, member) = (store.clone(), channel.clone(), member.clone());
            tasks.push(tokio::spawn(async move { propose(&store, ws, &channel, &member, &format!("idea {i}")).await }));
        }
        let mut numbers = Vec::new();
        for task in tasks {
            numbers.push(task.await.unwrap().0);
        }
        numbers.sort();
        assert_eq!(numbers, (1..=12).collect::<Vec<i64>>());
    }

    async fn one_workspace_never_sees_another_workspaces_rows(store: Store) {
        let (ws_a, channel_a, member_a) = team(&store, "T01").await;
        let (ws_b, channel_b, _) = team(&store, "T02").await;
        propose(&store, ws_a, &channel_a, &member_a, "secret plan").await;
        let mut tx = store.begin().await.unwrap();
        assert!(tx.experiment(ws_b, ExperimentRef(1)).await.unwrap().is_none());
        let all = [ExperimentStatus::Proposed, ExperimentStatus::Running];
        // Even with the other workspace's channel id, nothing leaks across.
        assert!(tx.experiments_in_channel(ws_b, channel_a.id, &all, 10).await.unwrap().is_empty());
        assert!(tx.experiments_in_channel(ws_b, channel_b.id, &all, 10).await.unwrap().is_empty());
        assert!(tx.learnings(ws_b, None, 10).await.unwrap().is_empty());
        assert_eq!(tx.row_counts(ws_b).await.unwrap().experiments, 0);
    }

    async fn listing_filters_by_status_newest_first_within_the_limit(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        for title in ["a", "b", "c", "d"] {
            propose(&store, ws, &channel, &member, title).await;
        }
        let mut tx = store.begin().await.unwrap();
        let e2 = tx.experiment(ws, ExperimentRef(2)).await.unwrap().unwrap();
        assert!(tx.transition_experiment(ws, e2.id, ExperimentStatus::Proposed, ExperimentStatus::Running, None, monday_morning()).await.unwrap());
        let running = tx.experiments_in_channel(ws, channel.id, &[ExperimentStatus::Running], 10).await.unwrap();
        assert_eq!(running.iter().map(|e| e.number.0).collect::<Vec<_>>(), vec![2]);
        let proposed = tx.experiments_in_channel(ws, channel.id, &[ExperimentStatus::Proposed], 2).await.unwrap();
        assert_eq!(proposed.iter().map(|e| e.number.0).collect::<Vec<_>>(), vec![4, 3]);
    }

    async fn a_transition_applies_only_from_the_expected_status(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        propose(&store, ws, &channel, &member, "a").await;
        let now = monday_morning();
        let mut tx = store.begin().await.unwrap();
        let e = tx.experiment(ws, ExperimentRef(1)).await.unwrap().unwrap();
        let closed = ExperimentStatus::Closed(Outcome::Won);
        assert!(!tx.transition_experiment(ws, e.id, ExperimentStatus::Running, closed, Some("x"), now).await.unwrap());
        assert!(tx.transition_experiment(ws, e.id, ExperimentStatus::Proposed, ExperimentStatus::Running, None, now).await.unwrap());
        assert!(tx.transition_experiment(ws, e.id, ExperimentStatus::Running, closed, Some("emails work"), now + Duration::days(7)).await.unwrap());
        let e = tx.experiment(ws, ExperimentRef(1)).await.unwrap().unwrap();
        assert_eq!(e.status, closed);
        assert_eq!(e.learning.as_deref(), Some("emails work"));
        assert_eq!(e.started_at, Some(now));
        assert_eq!(e.closed_at, Some(now + Duration::days(7)));
    }

    async fn readings_come_back_in_order_and_the_latest_shows_on_the_experiment(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        propose(&store, ws, &channel, &member, "a").await;
        let now = monday_morning();
        let mut tx = store.begin().await.unwrap();
        let e = tx.experiment(ws, ExperimentRef(1)).await.unwrap().unwrap();
        assert_eq!(e.latest, None);
        tx.insert_reading(ws, e.id, 0.32, Some("first week"), Some(member.id), now).await.unwrap();
        tx.insert_reading(ws, e.id, 0.34, None, None, now + Duration::days(1)).await.unwrap();
        let readings = tx.readings(ws, e.id).await.unwrap();
        assert_eq!(readings.iter().map(|r| r.value).collect::<Vec<_>>(), vec![0.32, 0.34]);
        assert_eq!(readings[0].note.as_deref(), Some("first week"));
        assert_eq!(readings[1].recorded_at, now + Duration::days(1));
        assert_eq!(tx.experiment(ws, ExperimentRef(1)).await.unwrap().unwrap().latest, Some(0.34));
    }

    async fn each_member_votes_once_per_experiment(store: Store) {
        let (ws, channel, ada) = team(&store, "T01").await;
        propose(&store, ws, &channel, &ada, "a").await;
        let now = monday_morning();
        let mut tx = store.begin().await.unwrap();
        let bob = tx.ensure_member(ws, "U02", "Bob", now).await.unwrap();
        let e = tx.experiment(ws, ExperimentRef(1)).await.unwrap().unwrap();
        assert!(tx.add_vote(ws, e.id, ada.id, now).await.unwrap());
        assert!(!tx.add_vote(ws, e.id, ada.id, now).await.unwrap());
        assert!(tx.add_vote(ws, e.id, bob.id, now).await.unwrap());
        assert_eq!(tx.experiment(ws, ExperimentRef(1)).await.unwrap().unwrap().votes, 2);
    }

    async fn learnings_are_searched_case_insensitively_and_literally(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        let now = monday_morning();
        for (title, learning) in [("Email", "Short EMAILS lift activation"), ("Pricing", "100% discount confuses people")] {
            let number = propose(&store, ws, &channel, &member, title).await;
            let mut tx = store.begin().await.unwrap();
            let e = tx.experiment(ws, number).await.unwrap().unwrap();
            tx.transition_experiment(ws, e.id, ExperimentStatus::Proposed, ExperimentStatus::Running, None, now).await.unwrap();
            tx.transition_experiment(ws, e.id, ExperimentStatus::Running, ExperimentStatus::Closed(Outcome::Lost), Some(learning), now).await.unwrap();
            tx.commit().await.unwrap();
        }
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.learnings(ws, None, 10).await.unwrap().len(), 2);
        let found = tx.learnings(ws, Some("emails"), 10).await.unwrap();
        assert_eq!(found.iter().map(|e| e.title.as_str()).collect::<Vec<_>>(), vec!["Email"]);
        // `%` is matched as a character, not as a wildcard.
        assert_eq!(tx.learnings(ws, Some("100%"), 10).await.unwrap().len(), 1);
        assert_eq!(tx.learnings(ws, Some("0%d"), 10).await.unwrap().len(), 0);
    }

    async fn pledges_are_numbered_listed_and_resolved_once(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        let now = monday_morning();
        let due = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let mut tx = store.begin().await.unwrap();
        let reminders = Reminders { zone: chrono_tz::UTC, escalate_after_days: 3 };
        let p1 = tx.insert_pledge(ws, &NewPledge { channel: channel.id, owner: member.id, text: "call five customers", due_on: due, experiment: None, reminders }, now).await.unwrap();
        let p2 = tx.insert_pledge(ws, &NewPledge { channel: channel.id, owner: member.id, text: "draft the email", due_on: due - Duration::days(2), experiment: None, reminders }, now).await.unwrap();
        assert_eq!((p1.number, p2.number), (PledgeRef(1), PledgeRef(2)));
        assert_eq!(p1.status, PledgeStatus::Open);
        let open = tx.open_pledges_of(ws, member.id).await.unwrap();
        assert_eq!(open.iter().map(|p| p.number.0).collect::<Vec<_>>(), vec![2, 1], "soonest due first");
        assert!(tx.resolve_pledge(ws, p1.id, PledgeStatus::Kept, Some("all five"), now).await.unwrap());
        assert!(!tx.resolve_pledge(ws, p1.id, PledgeStatus::Released, None, now).await.unwrap());
        let kept = tx.pledge(ws, PledgeRef(1)).await.unwrap().unwrap();
        assert_eq!((kept.status, kept.note.as_deref(), kept.resolved_at), (PledgeStatus::Kept, Some("all five"), Some(now)));
        assert_eq!(tx.open_pledges_in_channel(ws, channel.id, 10).await.unwrap().len(), 1);
    }

    async fn the_event_log_keeps_every_change_in_order(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        let now = monday_morning();
        let mut tx = store.begin().await.unwrap();
        let data = serde_json::json!({ "outcome": "won" });
        for (kind, at) in [(EventKind::ExperimentProposed, now - Duration::days(30)), (EventKind::ExperimentClosed, now)] {
            let event = NewEvent { channel: Some(channel.id), actor: Some(member.id), kind, subject: Some("E-1".into()), data: &data };
            tx.append_event(ws, &event, at).await.unwrap();
        }
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let recent = tx.events_since(ws, channel.id, now - Duration::days(7)).await.unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].kind, EventKind::ExperimentClosed);
        assert_eq!(recent[0].data["outcome"], "won");
        assert_eq!(recent[0].actor, Some(member.id));
        assert_eq!(tx.events_since(ws, channel.id, now - Duration::days(31)).await.unwrap().len(), 2);
    }

    async fn unicode_text_survives_the_round_trip(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        let title = "Onboarding für Ärzte 🚀 — 新しいメール שלום";
        propose(&store, ws, &channel, &member, title).await;
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.experiment(ws, ExperimentRef(1)).await.unwrap().unwrap().title, title);
    }

    async fn migrations_can_run_again_on_a_migrated_database(store: Store) {
        store.migrate().await.unwrap();
        store.probe_write(chrono::Utc::now()).await.unwrap();
    }

    async fn channel_and_member_come_back_together_or_each_missing(store: Store) {
        let (ws, channel, _member) = team(&store, "T01").await;
        let mut tx = store.begin().await.unwrap();
        let (found_channel, found_member) = tx.channel_and_member(ws, "C01", "U01").await.unwrap();
        assert_eq!(found_channel.map(|c| c.id), Some(channel.id));
        assert_eq!(found_member.map(|m| m.display_name), Some("Ada".to_string()));
        let (no_channel, found_member) = tx.channel_and_member(ws, "C99", "U01").await.unwrap();
        assert!(no_channel.is_none() && found_member.is_some());
        let (found_channel, no_member) = tx.channel_and_member(ws, "C01", "U99").await.unwrap();
        assert!(found_channel.is_some() && no_member.is_none());
        let (_, other_workspace) = tx.channel_and_member(WorkspaceId(ws.0 + 1000), "C01", "U01").await.unwrap();
        assert!(other_workspace.is_none());
    }

    async fn a_proposal_by_platform_ids_writes_nothing_for_a_channel_or_member_not_seen_yet(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        let metric = activation();
        let new = NewExperiment { channel: channel.id, owner: &member, title: "quick", hypothesis: "h", metric: &metric, review_on: None };
        let mut tx = store.begin().await.unwrap();
        assert!(tx.propose_by_platform_ids(ws, "C-NEW", "U01", &new, monday_morning()).await.unwrap().is_none());
        assert!(tx.propose_by_platform_ids(ws, "C01", "U-NEW", &new, monday_morning()).await.unwrap().is_none());
        assert_eq!(tx.row_counts(ws).await.unwrap().experiments, 0);
        let proposed = tx.propose_by_platform_ids(ws, "C01", "U01", &new, monday_morning()).await.unwrap().unwrap();
        assert_eq!((proposed.number, proposed.channel_id, proposed.owner_id), (ExperimentRef(1), channel.id, member.id));
        assert_eq!(proposed.owner_name, "Ada", "one name per member: the one nudge knows");
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let counts = tx.row_counts(ws).await.unwrap();
        assert_eq!((counts.experiments, counts.events), (1, 1), "the row and its event");
    }

    async fn proposals_sharing_one_statement_are_numbered_in_order_and_skip_the_unknown(store: Store) {
        let (ws, channel, member) = team(&store, "T01").await;
        let metric = activation();
        let new = |title| NewExperiment { channel: channel.id, owner: &member, title, hypothesis: "h", metric: &metric, review_on: None };
        let items = [
            QuickProposal { channel: "C01", member: "U01", new: new("first") },
            QuickProposal { channel: "C-NEW", member: "U01", new: new("unknown channel") },
            QuickProposal { channel: "C01", member: "U01", new: new("second") },
        ];
        let mut tx = store.begin().await.unwrap();
        let proposed = tx.propose_many(ws, &items, monday_morning()).await.unwrap();
        tx.commit().await.unwrap();
        let numbers: Vec<Option<(i64, String)>> =
            proposed.iter().map(|p| p.as_ref().map(|e| (e.number.0, e.title.clone()))).collect();
        assert_eq!(numbers, vec![Some((1, "first".into())), None, Some((2, "second".into()))]);
        assert_eq!(proposed[2].as_ref().unwrap().owner_name, "Ada");
        let mut tx = store.read().await.unwrap();
        let counts = tx.row_counts(ws).await.unwrap();
        assert_eq!((counts.experiments, counts.events), (2, 2), "each row with its event, none for the unknown");
    }

    async fn a_platform_keeps_its_own_records_per_workspace(store: Store) {
        let (ws, _, _) = team(&store, "T01").await;
        let (other, _, _) = team(&store, "T02").await;
        let now = monday_morning();
        let mut tx = store.begin().await.unwrap();
        tx.save_platform_record(ws, "teams", "conversation", "C01", r#"{"id":"19:abc"}"#, now).await.unwrap();
        tx.save_platform_record(ws, "teams", "conversation", "C01", r#"{"id":"19:def"}"#, now).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.platform_record(ws, "teams", "conversation", "C01").await.unwrap().as_deref(), Some(r#"{"id":"19:def"}"#));
        assert_eq!(tx.platform_record(other, "teams", "conversation", "C01").await.unwrap(), None, "scoped by workspace");
        assert_eq!(tx.platform_record(ws, "slack", "conversation", "C01").await.unwrap(), None, "and by platform");
    }

    async fn a_new_channel_has_each_job_planned_and_a_new_schedule_moves_its_check_in(store: Store) {
        let (_, channel, _) = team(&store, "T01").await;
        let mut tx = store.read_once().await.unwrap();
        // Made Monday 23 Nov 10:00 UTC, Berlin time: the first firing is Wednesday's small wins, 17:00 there.
        let first = tx.next_firing_at().await.unwrap().unwrap();
        assert_eq!(first.to_rfc3339(), "2026-11-25T16:00:00+00:00");
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        let soon = nudge::domain::schedule::Schedule::parse("mon 12:00").unwrap();
        tx.set_schedule(&channel, &soon, chrono_tz::UTC, monday_morning()).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read_once().await.unwrap();
        assert_eq!(tx.next_firing_at().await.unwrap().unwrap().to_rfc3339(), "2026-11-23T12:00:00+00:00");
    }

    async fn an_installation_keeps_its_sealed_token_by_team(store: Store) {
        let now = monday_morning();
        let mut tx = store.begin().await.unwrap();
        let ws = tx.ensure_workspace("slack", "T01", "Acme", now).await.unwrap();
        assert!(tx.installation("slack", "T01").await.unwrap().is_none(), "seen is not installed");
        tx.save_installation(ws, "v1:abcd:sealed", Some("UBOT"), now).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let installation = tx.installation("slack", "T01").await.unwrap().unwrap();
        assert_eq!((installation.workspace_id, installation.bot_token_sealed.as_str()), (ws, "v1:abcd:sealed"));
        assert!(!format!("{installation:?}").contains("sealed"), "Debug shows no token");
        assert!(tx.installation("teams", "T01").await.unwrap().is_none());
        assert_eq!(tx.workspace("slack", "T01").await.unwrap(), Some(ws));
    }

    async fn an_event_delivery_is_recorded_once(store: Store) {
        let mut tx = store.begin().await.unwrap();
        assert!(tx.record_event_delivery("slack", "T01", "Ev01", monday_morning()).await.unwrap());
        assert!(!tx.record_event_delivery("slack", "T01", "Ev01", monday_morning()).await.unwrap());
        assert!(tx.record_event_delivery("slack", "T01", "Ev02", monday_morning()).await.unwrap());
        // Remembered for days, not forever: a week on, the old deliveries are gone from the table.
        let later = monday_morning() + Duration::days(7);
        assert!(tx.record_event_delivery("slack", "T01", "Ev03", later).await.unwrap());
        assert!(tx.record_event_delivery("slack", "T01", "Ev01", later).await.unwrap(), "purged, so new again");
    }

    async fn an_oauth_state_is_used_once_and_expired_ones_are_purged(store: Store) {
        let now = monday_morning();
        let mut tx = store.begin().await.unwrap();
        assert!(tx.use_oauth_state("slack", "fresh", now + Duration::minutes(10), now).await.unwrap());
        assert!(!tx.use_oauth_state("slack", "fresh", now + Duration::minutes(10), now).await.unwrap(), "single use");
        assert!(tx.use_oauth_state("slack", "short", now + Duration::minutes(1), now).await.unwrap());
        assert_eq!(tx.oauth_state_count().await.unwrap(), 2);
        let later = now + Duration::minutes(5);
        assert!(tx.use_oauth_state("slack", "next", later + Duration::minutes(10), later).await.unwrap());
        assert_eq!(tx.oauth_state_count().await.unwrap(), 2, "the expired one was purged");
    }
}
