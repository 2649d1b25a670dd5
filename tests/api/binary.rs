//! The real binary, as a newcomer runs it: zero configuration, a clean stop on SIGTERM, the
//! configuration checker, migrations, and the outbox commands, which never create a database.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NUDGE: &str = env!("CARGO_BIN_EXE_nudge");

/// A command with none of the developer's NUDGE_* or DATABASE_URL settings.
pub(crate) fn nudge_in(dir: &std::path::Path) -> Command {
    let mut command = Command::new(NUDGE);
    command.current_dir(dir).env_clear();
    for key in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(key) {
            command.env(key, value);
        }
    }
    command
}

/// With no configuration nudge serves on 127.0.0.1:3000 (the configuration's own test checks that
/// default); here it is given port 0, so the test never collides with whatever else has port 3000.
#[test]
fn with_nothing_but_a_port_nudge_serves_with_an_sqlite_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = nudge_in(dir.path())
        .env("NUDGE_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the nudge binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    if banner.is_empty() {
        let _ = child.wait();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        panic!("nudge did not start: {err}");
    }
    assert!(banner.contains("listening on http://127.0.0.1:") && banner.contains("(SQLite at nudge.db)"), "{banner}");
    let address = banner.split("http://").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap().to_string();
    let mut rest = String::new();
    for _ in 0..4 {
        stdout.read_line(&mut rest).unwrap();
    }
    assert!(rest.contains("Slack") && rest.contains("not configured"), "the banner says what is configured: {rest}");

    let health = std::net::TcpStream::connect(&address).and_then(|mut stream| {
        use std::io::{Read, Write};
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    });
    let health = health.expect("/healthz answers");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(dir.path().join("nudge.db").is_file(), "nudge.db is written in the working directory");

    let started = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "nudge did not stop within 5 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "a SIGTERM stop is a clean exit");
    assert!(started.elapsed() < Duration::from_secs(2), "stopped in {:?}", started.elapsed());
}

#[test]
fn a_bad_setting_stops_the_start_with_the_key_the_problem_and_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let output = nudge_in(dir.path()).env("NUDGE_LISTEN", "localhost").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NUDGE_LISTEN: \"localhost\" is not an address and port"), "{stderr}");
    assert!(stderr.contains("example: NUDGE_LISTEN=0.0.0.0:8080"), "{stderr}");
    assert!(!dir.path().join("nudge.db").exists(), "nothing is created when the start is refused");
}

#[test]
fn check_config_reports_the_same_problems_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let output = nudge_in(dir.path())
        .arg("check-config")
        .env("NUDGE_MAX_OPEN_PLEDGES", "lots")
        .env("NUDGE_ENCRYPTION_KEY", "not-base64!")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NUDGE_MAX_OPEN_PLEDGES: \"lots\" is not a whole number from 1 to 100"), "{stderr}");
    assert!(stderr.contains("NUDGE_ENCRYPTION_KEY: is not base64"), "{stderr}");
    assert!(!stderr.contains("not-base64!"), "a secret's value is never printed: {stderr}");

    let output = nudge_in(dir.path()).arg("check-config").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("configuration is valid"));
}

#[test]
fn migrate_creates_the_database_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let output = nudge_in(dir.path()).arg("migrate").env("DATABASE_URL", "sqlite://data.db").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied to SQLite at data.db"));
    assert!(dir.path().join("data.db").is_file());
}

#[test]
fn every_subcommand_has_help() {
    let output = Command::new(NUDGE).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for subcommand in ["serve", "migrate", "check-config", "outbox"] {
        assert!(help.contains(subcommand), "{subcommand} missing from --help: {help}");
        let output = Command::new(NUDGE).args([subcommand, "--help"]).output().unwrap();
        assert!(output.status.success(), "{subcommand} --help fails");
    }
    let output = Command::new(NUDGE).args(["outbox", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("retry"), "outbox --help names retry");
    let output = Command::new(NUDGE).args(["outbox", "retry", "--help"]).output().unwrap();
    assert!(output.status.success() && String::from_utf8_lossy(&output.stdout).contains("--dead"));
}

#[tokio::test]
async fn nudge_outbox_lists_dead_posts_with_their_reasons() {
    let db = crate::helpers::TestDb::sqlite();
    let store = db.store().await;
    let now = crate::helpers::monday_morning();
    let mut tx = store.begin().await.unwrap();
    let ws = tx.ensure_workspace("slack", "T01", "Acme", now).await.unwrap();
    let reply = nudge::message::Message::channel("Weekly check-in");
    for channel in ["C404", "C01"] {
        let id = crate::helpers::channel_in(&mut tx, ws, channel).await;
        let to = nudge::store::Recipient::Channel(id);
        tx.enqueue_message(ws, id, to, &format!("checkin:{channel}"), &reply, now).await.unwrap();
    }
    let claimed = tx.claim_due_messages(now, chrono::Duration::seconds(1), 10).await.unwrap();
    let dead = claimed.iter().find(|m| m.address == "C404").unwrap();
    tx.message_failed(dead.id, "Slack chat.postMessage failed: channel_not_found", None).await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;

    let dir = tempfile::tempdir().unwrap();
    let output = nudge_in(dir.path()).arg("outbox").env("DATABASE_URL", &db.url).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("database: SQLite at {}", db.url.trim_start_matches("sqlite://"))), "{stdout}");
    assert!(stdout.contains("outbox: 0 pending, 1 sending, 0 sent, 1 dead"), "{stdout}");
    assert!(stdout.contains("slack C404") && stdout.contains("channel_not_found"), "{stdout}");
}

#[tokio::test]
async fn nudge_outbox_retry_requeues_one_dead_post_or_every_dead_one_and_never_a_sent_one() {
    let db = crate::helpers::TestDb::sqlite();
    let store = db.store().await;
    let now = crate::helpers::monday_morning();
    let mut tx = store.begin().await.unwrap();
    let ws = tx.ensure_workspace("slack", "T01", "Acme", now).await.unwrap();
    let reply = nudge::message::Message::channel("Weekly check-in");
    for channel in ["C404", "C410", "C01"] {
        let id = crate::helpers::channel_in(&mut tx, ws, channel).await;
        let to = nudge::store::Recipient::Channel(id);
        tx.enqueue_message(ws, id, to, &format!("checkin:{channel}"), &reply, now).await.unwrap();
    }
    let claimed = tx.claim_due_messages(now, chrono::Duration::seconds(1), 10).await.unwrap();
    let id_of = |address: &str| claimed.iter().find(|m| m.address == address).unwrap().id;
    for address in ["C404", "C410"] {
        tx.message_failed(id_of(address), "Slack chat.postMessage failed: channel_not_found", None).await.unwrap();
    }
    tx.message_delivered(id_of("C01"), "1764000000.000100", now).await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;
    let dir = tempfile::tempdir().unwrap();
    let nudge = |args: &[&str]| nudge_in(dir.path()).args(args).env("DATABASE_URL", &db.url).output().unwrap();
    let database = format!("SQLite at {}", db.url.trim_start_matches("sqlite://"));

    let one = nudge(&["outbox", "retry", &id_of("C404").0.to_string()]);
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    let stdout = String::from_utf8_lossy(&one.stdout);
    assert!(stdout.contains(&format!("database: {database}")) && stdout.contains("requeued 1 dead post"), "{stdout}");

    let sent = nudge(&["outbox", "retry", &id_of("C01").0.to_string()]);
    assert!(!sent.status.success(), "retrying a post that went out is refused");
    let stderr = String::from_utf8_lossy(&sent.stderr);
    assert!(stderr.contains("requeued nothing") && stderr.contains("is sent"), "{stderr}");

    let all = nudge(&["outbox", "retry", "--dead"]);
    assert!(all.status.success(), "{}", String::from_utf8_lossy(&all.stderr));
    assert!(String::from_utf8_lossy(&all.stdout).contains("requeued 1 dead post"), "only C410 was still dead");
    let report = nudge(&["outbox"]);
    let stdout = String::from_utf8_lossy(&report.stdout);
    assert!(stdout.contains("outbox: 2 pending, 0 sending, 1 sent, 0 dead"), "{stdout}");

    // Due now, and tried afresh: each counts its first attempt again.
    let store = db.store().await;
    let mut tx = store.begin().await.unwrap();
    let due = tx.claim_due_messages(chrono::Utc::now(), chrono::Duration::seconds(1), 10).await.unwrap();
    tx.commit().await.unwrap();
    let mut addresses: Vec<(&str, u32)> = due.iter().map(|m| (m.address.as_str(), m.attempts)).collect();
    addresses.sort();
    assert_eq!(addresses, vec![("C404", 1), ("C410", 1)]);
}

#[test]
fn outbox_commands_without_a_database_create_none_and_say_which_they_looked_for() {
    for args in [&["outbox"][..], &["outbox", "retry", "--dead"], &["outbox", "retry", "7"]] {
        let dir = tempfile::tempdir().unwrap();
        let output = nudge_in(dir.path()).args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?} succeeded without a database");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("cannot inspect SQLite at nudge.db: there is no database file nudge.db"), "{stderr}");
        assert!(stderr.contains("DATABASE_URL") && stderr.contains("nudge migrate"), "says what to do: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "{args:?} left {left:?} behind");
    }
}

#[tokio::test]
async fn nudge_outbox_on_a_database_without_migrations_says_so_and_does_not_migrate_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.db"), b"").unwrap();
    let output = nudge_in(dir.path()).arg("outbox").env("DATABASE_URL", "sqlite://other.db").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot inspect SQLite at other.db") && stderr.contains("migration 0001"), "{stderr}");
    let url = format!("sqlite://{}", dir.path().join("other.db").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master").fetch_one(&mut conn).await.unwrap();
    assert_eq!(tables, 0, "nothing was migrated");
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(journal, "delete", "the file is left as it was, not turned to WAL");
}
