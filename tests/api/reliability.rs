//! The faults nudge must survive without losing, doubling or locking up: a full disk, lost answers,
//! slow clients, rate limits, outages. Stand-ins only for what is outside this machine (Slack); the
//! databases and filesystems are real.

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, TestDb};
use crate::slack::{SlackTest, visible_text};

/// A real filesystem of a few hundred KiB (tmpfs), so that a test can fill the disk under SQLite and
/// free it again. Needs the right to mount, which the project's machines and CI have; without it
/// the test fails saying so, it is never skipped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(kib: u32) -> SmallDisk {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("the mount command runs");
        assert!(
            status.success(),
            "this test mounts a {kib} KiB tmpfs to fill a disk under SQLite; run the tests as root (as `.ci/run` \
             does) or in a container allowed to mount"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes a file until the filesystem has no byte left.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.filler()).expect("the filler file");
        let block = vec![0u8; 4096];
        while file.write_all(&block).and_then(|_| file.flush()).is_ok() {}
        while file.write_all(&block[..1]).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("the filler goes");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// A COMMIT that failed on a full disk used to leave SQLite's one write connection inside a
/// transaction sqlx still counted as open, so every later command failed ("begin_with at non-zero
/// transaction depth") until the pool recycled it half an hour later, and `/readyz` said ready
/// throughout. Now `/readyz` says the database cannot take writes while the disk is full, and the
/// first commands after space is freed succeed.
#[tokio::test]
async fn sqlite_recovers_by_itself_once_a_full_disk_has_space_again() {
    let disk = SmallDisk::mount(8 * 1024);
    let t = SlackTest::start_on_db(TestDb::sqlite_in(disk.path())).await;
    let made = visible_text(&t.slash("/pledge", "call five customers by fri").await);
    assert!(made.contains("P-1"), "{made}");
    assert_eq!(t.app.get("/readyz").await.status(), 200);

    disk.fill();
    let mut refused = 0;
    for n in 0..5 {
        let answer =
            visible_text(&t.slash("/experiment", &format!("propose Idea {n} | It helps | clicks 1 -> 2")).await);
        if answer.contains("Something went wrong on nudge's side") {
            refused += 1;
        }
    }
    assert!(refused > 0, "a full disk refuses commands with the apology");
    println!("{refused} of 5 commands refused while the disk was full");
    let ready = t.app.get("/readyz").await;
    assert_eq!(ready.status(), 503, "a database that cannot take writes is not ready");
    assert_eq!(ready.text().await.unwrap(), "database cannot take writes\n");

    disk.free();
    for n in 0..10 {
        let answer =
            visible_text(&t.slash("/experiment", &format!("propose Later idea {n} | It helps | clicks 1 -> 2")).await);
        assert!(answer.contains(&format!("Later idea {n}")), "command {n} after the disk was freed: {answer}");
    }
    assert_eq!(t.app.get("/readyz").await.status(), 200, "ready again");
    let list = visible_text(&t.slash("/experiment", "list proposed").await);
    assert!(list.contains("Later idea 9"), "{list}");
    let pledges = visible_text(&t.slash("/pledge", "list").await);
    assert!(pledges.contains("call five customers"), "what was written before the disk filled is kept: {pledges}");
}

/// A client that sends half a request and waits.
async fn half_sent(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.address).await.expect("the server accepts");
    stream
        .write_all(
            b"POST /slack/commands HTTP/1.1\r\nHost: nudge\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        )
        .await
        .expect("half a request is sent");
    stream
}

/// Reads until the server closes the connection; what it sent first. Bounded, so a server that
/// never closes fails the test instead of hanging it.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(15), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    answer
}

/// `GET /healthz` on a connection of its own; the status line, or nothing when it was shed.
async fn healthz_raw(app: &TestApp) -> String {
    let mut stream = TcpStream::connect(app.address).await.expect("the server accepts");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: nudge\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut stream).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

/// Half-sent requests used to hold their connections (and file descriptors) for as long as the
/// client liked, and kept-alive connections were never closed. Now both are closed after the idle
/// timeout, and `/healthz` answers while two hundred of them wait.
#[tokio::test]
async fn half_sent_requests_and_idle_connections_are_closed_and_healthz_still_answers() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("NUDGE_IDLE_TIMEOUT_SECS", "1")]).await;
    let mut waiting = Vec::new();
    for _ in 0..200 {
        waiting.push(half_sent(&app).await);
    }
    assert_eq!(healthz_raw(&app).await, "HTTP/1.1 200 OK", "/healthz answers while 200 clients hold half a request");

    let mut idle = TcpStream::connect(app.address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: nudge\r\n\r\n").await.unwrap();
    let mut first = [0u8; 15];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK", "a kept-alive request is answered");

    for stream in &mut waiting {
        let answer = until_closed(stream).await;
        assert!(!String::from_utf8_lossy(&answer).contains("200 OK"), "a half request is never served");
    }
    until_closed(&mut idle).await;
}

/// Past `server.max_connections`, the newest connections are closed at once, and the ones already
/// held are kept; once they go, the server answers again.
#[tokio::test]
async fn past_the_connection_cap_the_newest_are_shed() {
    let app =
        TestApp::spawn_with(Backend::Sqlite, &[("NUDGE_MAX_CONNECTIONS", "20"), ("NUDGE_IDLE_TIMEOUT_SECS", "300")])
            .await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(half_sent(&app).await);
    }
    for _ in 0..5 {
        let mut newest = half_sent(&app).await;
        assert!(until_closed(&mut newest).await.is_empty(), "shed unanswered");
    }
    drop(held);
    // The held connections' slots come back as the server sees each client go.
    let answered = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            if healthz_raw(&app).await == "HTTP/1.1 200 OK" {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(answered.is_ok(), "the server answers again once the held connections are gone");
}

/// A genuine request sent again within Slack's five minutes (a replay: the same body, timestamp
/// and signature) used to run again: five sends made E-1…E-5. Now the repeat is answered with
/// nothing and changes nothing; the next genuine command is taken.
#[tokio::test]
async fn a_replayed_request_runs_once() {
    let t = SlackTest::start(Backend::Sqlite).await;
    let body = t.slash_body(
        "/experiment",
        "propose Shorter signup | Fewer fields | activation 31% -> 40%",
        "T01",
        ("U01", "ada"),
    );
    let mut answers = Vec::new();
    for _ in 0..5 {
        let response =
            t.signed("/slack/commands", "application/x-www-form-urlencoded", body.clone(), crate::slack::SECRET).await;
        assert_eq!(response.status(), 200);
        answers.push(response.text().await.unwrap());
    }
    assert!(answers[0].contains("E-1"), "{}", answers[0]);
    assert!(answers[1..].iter().all(String::is_empty), "repeats are answered with nothing: {answers:?}");
    let listed = visible_text(&t.slash("/experiment", "list").await);
    assert!(listed.contains("E-1") && !listed.contains("E-2"), "one experiment: {listed}");
}

/// A NUL in any text used to be an internal error on Postgres (SQLite stored it). Now a command
/// holding a control character gets the usage line on both backends and writes nothing, and a
/// name holding one is stored without it.
async fn control_characters_get_the_usage_line_on_both_backends(backend: Backend) {
    let t = SlackTest::start(backend).await;
    let refused = t.slash("/experiment", "propose Null\u{0}byte | It breaks | clicks 1 -> 2").await;
    assert_eq!(refused["response_type"], "ephemeral", "{refused}");
    let text = visible_text(&refused);
    assert!(text.contains("control character") && text.contains("/experiment propose"), "{text}");
    let made = visible_text(&t.slash_as("/pledge", "call five customers by fri", "T01", ("U02", "b\u{0}en")).await);
    assert!(made.contains("P-1"), "{made}");
    let listed = visible_text(&t.slash("/pledge", "list all").await);
    assert!(listed.contains("ben") && !listed.contains('\u{0}'), "{listed}");
    let experiments = visible_text(&t.slash("/experiment", "list all").await);
    assert!(!experiments.contains("Null"), "{experiments}");
}

#[tokio::test]
async fn postgres_control_characters_get_the_usage_line() {
    control_characters_get_the_usage_line_on_both_backends(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_control_characters_get_the_usage_line() {
    control_characters_get_the_usage_line_on_both_backends(Backend::Sqlite).await;
}

/// A TCP relay between nudge and Postgres that can be paused: while paused, nothing gets through
/// either way (a database that stopped answering), and once resumed, everything held goes on.
struct PausableRelay {
    address: std::net::SocketAddr,
    paused: tokio::sync::watch::Sender<bool>,
}

impl PausableRelay {
    async fn to(upstream: std::net::SocketAddr) -> PausableRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (paused, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else { continue };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(Self::pipe(client_read, server_write, watch.clone()));
                tokio::spawn(Self::pipe(server_read, client_write, watch.clone()));
            }
        });
        PausableRelay { address, paused }
    }

    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut paused: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let Ok(n) = from.read(&mut buffer).await else { return };
            if n == 0 {
                return;
            }
            if paused.wait_for(|p| !*p).await.is_err() {
                return;
            }
            if to.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    }

    fn pause(&self) {
        self.paused.send_replace(true);
    }

    fn resume(&self) {
        self.paused.send_replace(false);
    }
}

/// During a Postgres outage, commands used to get an empty 503 after 10 s (Slack gives up at 3 s),
/// and one was committed after recovery without anyone knowing. Now the answer comes within Slack's
/// three seconds saying the command is still being tried, and what became of it follows through
/// the response URL once the database answers: applied and said so, or not applied and said so.
#[tokio::test]
async fn a_command_during_a_database_outage_is_answered_in_time_and_its_outcome_follows() {
    let db = TestDb::postgres().await;
    let upstream: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let relay = PausableRelay::to(upstream).await;
    let relayed = TestDb::at_url(db.url.replace("127.0.0.1:5432", &relay.address.to_string()));
    let t = SlackTest::start_on_db(relayed).await;
    assert!(visible_text(&t.slash("/pledge", "list").await).contains("pledge"), "nudge works through the relay");

    relay.pause();
    let started = std::time::Instant::now();
    let answer = visible_text(&t.slash("/experiment", "propose Outage idea | It survives | clicks 1 -> 2").await);
    let waited = started.elapsed();
    assert!(answer.contains("still being tried"), "{answer}");
    assert!(waited < std::time::Duration::from_secs(3), "answered within Slack's three seconds: {waited:?}");

    relay.resume();
    t.app.settle().await;
    let told = t.calls_to("/commands/T01/1/response", 1).await;
    let outcome: serde_json::Value = serde_json::from_slice(&told.last().unwrap().body).unwrap();
    let outcome = visible_text(&outcome);
    let listed = visible_text(&t.slash("/experiment", "list").await);
    if outcome.contains("was not applied") {
        assert!(!listed.contains("Outage idea"), "said not applied, and it was not: {listed}");
    } else {
        assert!(outcome.contains("E-1") && outcome.contains("Outage idea"), "{outcome}");
        assert!(listed.contains("Outage idea"), "said applied, and it was: {listed}");
    }
    drop(db);
}
