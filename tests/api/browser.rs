//! The dashboard in a real browser: headless Chromium driven through chromedriver (Debian's
//! `chromium` and `chromium-driver`), as a person opens the link `/nudge dashboard` gives. Without
//! a browser or driver these tests fail saying what to install; they never skip.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::dashboard::{a_team_at_work, dashboard_link};
use crate::helpers::Backend;
use crate::slack::SlackTest;

const INSTALL: &str = "The browser tests need headless Chromium and chromedriver: install Debian's packages with \
                       `apt-get install -y chromium chromium-driver` (.ci/run does), or name other binaries with \
                       NUDGE_TEST_CHROMIUM and NUDGE_TEST_CHROMEDRIVER.";

/// How long a page may take to show what a test waits for; generous, since two cores are shared.
const PATIENCE: Duration = Duration::from_secs(20);

fn binary(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_string())
}

/// A chromedriver of our own on a port it picks, with one headless Chromium session. Dropping it
/// kills the driver's whole process group, so a failed test leaves no browser behind.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// Desktop size, as in the README's screenshot.
    pub async fn start() -> Browser {
        Browser::start_sized(1280, 900).await
    }

    pub async fn start_sized(width: u32, height: u32) -> Browser {
        let chromium = binary("NUDGE_TEST_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("NUDGE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        assert!(Path::new(&chromium).exists(), "no browser at {chromium}. {INSTALL}");
        let mut command = Command::new(&chromedriver);
        command.arg("--port=0").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        // Its own process group, so the drop can end the driver and the browser it started together.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut driver =
            command.spawn().unwrap_or_else(|e| panic!("chromedriver ({chromedriver}) does not start: {e}. {INSTALL}"));
        let port = driver_port(&mut driver).unwrap_or_else(|why| {
            end(&mut driver);
            panic!("chromedriver ({chromedriver}) did not start: {why}. {INSTALL}")
        });
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                ],
            },
        });
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        match client {
            Ok(client) => Browser { client, driver },
            Err(e) => {
                end(&mut driver);
                panic!("chromedriver started but Chromium ({chromium}) did not: {e}. {INSTALL}")
            }
        }
    }

    /// Opens a page of the app and waits until the element named by `css` is in it.
    pub async fn open(&self, url: &str, css: &str) -> fantoccini::elements::Element {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("the browser opens {url}: {e}"));
        self.wait_for(css).await
    }

    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("the page shows {css}: {e}"))
    }

    /// Everything a person reads on the page.
    pub async fn text(&self) -> String {
        self.client.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
    }

    pub async fn script(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Ends the session (the browser quits), then the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        end(&mut self.driver);
    }
}

/// Ends the driver and the browser it started: the driver leads its own process group (see start).
fn end(driver: &mut Child) {
    // procps' kill takes a group only as `-s SIGNAL -- -PGID`; `-KILL -PGID` quietly does nothing.
    let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", driver.id())]).status();
    let _ = driver.kill();
    let _ = driver.wait();
}

/// Reads chromedriver's "started successfully on port N" line; a thread keeps draining its output.
fn driver_port(driver: &mut Child) -> Result<u16, String> {
    let stdout = driver.stdout.take().ok_or("no output")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(port) = line.rsplit("on port ").next().filter(|_| line.contains("started successfully")) {
                let _ = tx.send(port.trim_end_matches('.').parse::<u16>().map_err(|e| format!("{line}: {e}")));
                break;
            }
        }
        for _ in lines {}
    });
    rx.recv_timeout(PATIENCE).map_err(|_| "it did not say it was listening".to_string())?
}

/// The texts of the cards in one column of the board.
async fn column(browser: &Browser, status: &str) -> String {
    let column = browser.wait_for(&format!("section.column[aria-label={status}]")).await;
    column.text().await.unwrap()
}

#[tokio::test]
async fn the_board_and_the_metric_chart_show_in_a_browser() {
    let t = SlackTest::start(Backend::Sqlite).await;
    a_team_at_work(&t).await;
    let link = dashboard_link(&t, "T01", ("U01", "ada")).await;
    let browser = Browser::start().await;
    browser.open(&t.app.url(&link), "div.board").await;
    assert_eq!(browser.client.title().await.unwrap(), "nudge · #growth");
    let running = column(&browser, "Running").await;
    assert!(running.contains("E-1 · Shorter signup"), "{running}");
    let proposed = column(&browser, "Proposed").await;
    assert!(proposed.contains("E-2 · =HYPERLINK(") && proposed.contains("1 vote"), "{proposed}");
    let closed = column(&browser, "Closed").await;
    assert!(closed.contains("Welcome call") && !closed.contains("Shorter signup"), "{closed}");

    let chart = browser.wait_for("section.column[aria-label=Running] svg.chart").await;
    assert!(chart.find(Locator::Css("polyline.readings")).await.is_ok(), "the readings as a line");
    let celebrated = chart.find(Locator::Css("circle.celebrated")).await.expect("a celebrated reading is marked");
    assert!(celebrated.is_displayed().await.unwrap());
    // Drawn, not just in the markup: the chart and its mark take up room on the screen.
    let sizes = browser
        .script(
            "const c = document.querySelector('section.column[aria-label=Running] svg.chart');
             const m = c.querySelector('circle.celebrated');
             return [c.getBoundingClientRect().width, c.getBoundingClientRect().height, m.getBoundingClientRect().width];",
        )
        .await;
    let sizes: Vec<f64> = sizes.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(sizes[0] > 200.0 && sizes[1] > 50.0 && sizes[2] > 4.0, "chart and mark sizes {sizes:?}");
    browser.close().await;
}

#[tokio::test]
async fn the_learning_log_is_searched_through_the_pages_form() {
    let t = SlackTest::start(Backend::Sqlite).await;
    a_team_at_work(&t).await;
    t.slash("/experiment", "propose Annual plan | A discount sells the year | upgrades 5 -> 8").await;
    t.slash("/experiment", "start E-4").await;
    t.slash("/experiment", "close E-4 won People take the discount when it is shown at checkout").await;
    let link = dashboard_link(&t, "T01", ("U01", "ada")).await;
    let browser = Browser::start().await;
    browser.open(&t.app.url(&link), "form[role=search]").await;
    let log = browser.wait_for("ul.learnings").await.text().await.unwrap();
    assert!(log.contains("Nobody picks up") && log.contains("discount"), "both learnings before a search: {log}");

    for (words, shown, hidden) in [
        ("unknown nobody", Some("Nobody picks up a call from an unknown number"), "discount"),
        ("checkout discount", Some("People take the discount when it is shown at checkout"), "Nobody picks up"),
        ("nobody checkout", None, "Nobody picks up"),
    ] {
        let search = browser.wait_for("input#q").await;
        search.clear().await.unwrap();
        search.send_keys(words).await.unwrap();
        browser.wait_for("form[role=search] button[type=submit]").await.click().await.unwrap();
        // The answer page renders the words into the field's value attribute; the old page's field
        // has them only as typed text, so this waits for the new page.
        browser.wait_for(&format!("input#q[value=\"{words}\"]")).await;
        let log = browser.wait_for("section[aria-labelledby=learnings]").await.text().await.unwrap();
        match shown {
            Some(shown) => assert!(log.contains(shown), "{words:?} finds {shown:?}: {log}"),
            None => assert!(log.contains("No learning has all of those words."), "{words:?}: {log}"),
        }
        assert!(!log.contains(hidden), "{words:?} leaves out {hidden:?}: {log}");
        let url = browser.client.current_url().await.unwrap();
        assert_eq!(url.query_pairs().find(|(k, _)| k == "q").map(|(_, v)| v.to_string()).as_deref(), Some(words));
    }
    browser.close().await;
}

#[tokio::test]
async fn a_tampered_link_opens_a_page_that_says_so_and_shows_no_team_data() {
    let t = SlackTest::start(Backend::Sqlite).await;
    a_team_at_work(&t).await;
    let link = dashboard_link(&t, "T01", ("U01", "ada")).await;
    // The signature's last hex digit changed to another value (not just its case, which decodes
    // the same), as a mistyped or forged link would be.
    let last = link.chars().last().unwrap();
    let tampered = format!("{}{}", &link[..link.len() - 1], if last == '0' { '1' } else { '0' });
    let browser = Browser::start().await;
    let heading = browser.open(&t.app.url(&tampered), "h1").await.text().await.unwrap();
    assert_eq!(heading, "This dashboard link does not open");
    let text = browser.text().await;
    assert!(text.contains("/nudge dashboard"), "it says how to get a link: {text}");
    for secret in ["growth", "Shorter signup", "Welcome call", "Nobody picks up", "call five customers", "ada"] {
        assert!(!text.contains(secret), "no team data ({secret:?}) on {text}");
    }
    assert!(browser.client.find_all(Locator::Css(".board, svg, table, a")).await.unwrap().is_empty());
    browser.close().await;
}

#[tokio::test]
async fn the_export_links_on_the_page_download_files_that_parse() {
    let t = SlackTest::start(Backend::Sqlite).await;
    a_team_at_work(&t).await;
    let link = dashboard_link(&t, "T01", ("U01", "ada")).await;
    let browser = Browser::start().await;
    browser.open(&t.app.url(&link), "nav[aria-label=Exports]").await;
    let csv_link = browser.client.find(Locator::LinkText("experiments (CSV)")).await.expect("an experiments CSV link");
    let json_link = browser
        .client
        .find(Locator::Css("nav[aria-label=Exports] a[href$='/readings.json']"))
        .await
        .expect("a readings JSON link");
    // Headless Chromium's download handling is fiddly (a download directory per session, polling
    // for the file), so the href the browser resolved is fetched as the download would be.
    let csv_href = csv_link.prop("href").await.unwrap().expect("an href");
    let json_href = json_link.prop("href").await.unwrap().expect("an href");
    assert!(csv_href.starts_with(&t.app.url(&format!("{link}/export/"))), "{csv_href} is this link's export");

    let csv = reqwest::get(&csv_href).await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let csv = csv.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("id,title,hypothesis,owner,status"), "{csv}");
    assert_eq!(rows.len(), 4, "a header and three experiments: {csv}");
    for title in ["Shorter signup", "Welcome call"] {
        assert!(rows.iter().any(|r| r.contains(title)), "{title} in {csv}");
    }

    let readings: Value = reqwest::get(&json_href).await.unwrap().json().await.unwrap();
    let values: Vec<f64> = readings.as_array().unwrap().iter().map(|r| r["value"].as_f64().unwrap()).collect();
    assert_eq!(values.len(), 2, "{readings}");
    assert!(values.contains(&33.0) && values.contains(&36.0), "{readings}");
    browser.close().await;
}

/// Where the board's columns are, and whether the page (and what in it) is wider than the screen.
const LAYOUT: &str = "const cols = [...document.querySelectorAll('section.column')].map(c => c.getBoundingClientRect());
    return {
        lefts: cols.map(c => c.left), tops: cols.map(c => c.top), bottoms: cols.map(c => c.bottom),
        viewport: window.innerWidth, room: document.documentElement.clientWidth,
        scroll: document.documentElement.scrollWidth,
        wider: [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
            .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' ' + Math.round(e.getBoundingClientRect().right)),
    };";

#[tokio::test]
async fn at_a_phone_width_the_board_columns_stack_and_nothing_runs_off_the_screen() {
    let t = SlackTest::start(Backend::Sqlite).await;
    a_team_at_work(&t).await;
    let link = dashboard_link(&t, "T01", ("U01", "ada")).await;
    let browser = Browser::start().await;
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.open(&t.app.url(&link), "div.board").await;
    let layout = browser.script(LAYOUT).await;
    let viewport = layout["viewport"].as_f64().unwrap();
    assert!(viewport <= 390.0, "a phone-sized window: {layout}");
    let lefts = layout["lefts"].as_array().unwrap();
    assert_eq!(lefts.len(), 4, "{layout}");
    assert!(lefts.iter().all(|l| l == &lefts[0]), "the columns stack, one under another: {layout}");
    assert!(
        layout["tops"][1].as_f64().unwrap() >= layout["bottoms"][0].as_f64().unwrap(),
        "the second column starts below the first: {layout}"
    );
    // Against the width inside the scrollbar: what runs under it cannot be read either.
    assert!(layout["scroll"].as_f64().unwrap() <= layout["room"].as_f64().unwrap(), "no sideways scrolling: {layout}");
    browser.close().await;
}

/// A team with something at every stage: experiments proposed, running, won, lost, inconclusive
/// and abandoned, with readings; pledges kept, released, open and overdue; learnings.
async fn an_example_team(t: &SlackTest) {
    let ben = ("U02", "ben");
    let cleo = ("U03", "cleo");
    t.slash("/experiment", "propose Shorter signup | Fewer fields convert better | conversion 31% -> 40%").await;
    t.slash("/experiment", "start E-1").await;
    for value in ["32%", "34%", "33%", "37%", "41%"] {
        t.slash("/experiment", &format!("update E-1 {value}")).await;
    }
    t.slash_as(
        "/experiment",
        "propose Onboarding checklist | A checklist gets people to the first report | activation 45% -> 55%",
        "T01",
        ben,
    )
    .await;
    t.slash_as("/experiment", "start E-2", "T01", ben).await;
    for value in ["46%", "49%", "51%"] {
        t.slash_as("/experiment", &format!("update E-2 {value}"), "T01", ben).await;
    }
    t.slash("/experiment", "propose Welcome call | A call keeps people | retention 60% -> 70%").await;
    t.slash("/experiment", "start E-3").await;
    t.slash("/experiment", "update E-3 61%").await;
    t.slash("/experiment", "close E-3 lost Nobody picks up a call from an unknown number").await;
    t.slash_as(
        "/experiment",
        "propose Annual plan discount | A discount sells the year | upgrades 5 -> 8",
        "T01",
        cleo,
    )
    .await;
    t.slash_as("/experiment", "start E-4", "T01", cleo).await;
    for value in ["6", "9"] {
        t.slash_as("/experiment", &format!("update E-4 {value}"), "T01", cleo).await;
    }
    t.slash_as("/experiment", "close E-4 won People take the discount when it is shown at checkout", "T01", cleo).await;
    t.slash("/experiment", "propose Dark mode | Evening users stay longer | session minutes 12 -> 15").await;
    t.slash("/experiment", "start E-5").await;
    t.slash("/experiment", "update E-5 12.5").await;
    t.slash("/experiment", "close E-5 inconclusive Too few evening users to tell in two weeks").await;
    t.slash_as("/experiment", "propose Referral credit | Credit brings friends | referrals 10 -> 20", "T01", ben).await;
    t.slash_as("/experiment", "abandon E-6 Legal needs a month to review credits", "T01", ben).await;
    t.slash_as(
        "/experiment",
        "propose Price page FAQ | Answers remove doubt | checkout starts 200 -> 240",
        "T01",
        cleo,
    )
    .await;
    t.slash("/experiment", "propose Slack reminder at 4pm | A nudge before the day ends | pledges kept 70% -> 85%")
        .await;
    t.slash_as("/experiment", "vote E-7", "T01", ben).await;
    t.slash("/experiment", "vote E-7").await;
    t.slash_as("/experiment", "vote E-8", "T01", cleo).await;

    t.slash("/pledge", "call five customers by tomorrow").await;
    t.slash_as("/pledge", "write up the interview notes by tomorrow", "T01", ben).await;
    t.slash_as("/pledge", "draft the FAQ copy by fri", "T01", cleo).await;
    t.slash("/pledge", "done P-1 four of five answered").await;
    t.slash_as("/pledge", "release P-3 the FAQ waits for legal", "T01", cleo).await;
    t.app.clock.advance(chrono::Duration::days(3));
    t.slash("/pledge", "pair with ben on the checklist by next fri").await;
    t.slash_as("/pledge", "send the survey by fri", "T01", ben).await;
    t.slash_as("/pledge", "done P-5", "T01", ben).await;
    t.slash_as("/pledge", "review the discount numbers by next week", "T01", cleo).await;
    t.app.settle().await;
}

/// The PNG's width and height, from its IHDR chunk (the first, right after the signature).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24, "a PNG of {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "the PNG signature");
    assert_eq!(&png[12..16], b"IHDR", "the header chunk first");
    let number = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}

/// Where screenshots go: always under target/, and into docs/ (the README's) only when
/// NUDGE_UPDATE_SCREENSHOTS=1, so CI never rewrites the committed pictures.
fn screenshot_dirs() -> Vec<PathBuf> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("screenshots");
    let mut dirs = vec![target];
    if std::env::var("NUDGE_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"));
    }
    dirs
}

#[tokio::test]
async fn screenshots_of_an_example_team_at_desktop_and_phone_width() {
    let t = SlackTest::start(Backend::Sqlite).await;
    an_example_team(&t).await;
    let link = dashboard_link(&t, "T01", ("U01", "ada")).await;
    let browser = Browser::start().await;
    for (file, width, height) in [("dashboard.png", 1280, 900), ("dashboard-phone.png", 390, 844)] {
        browser.client.set_window_size(width, height).await.unwrap();
        browser.open(&t.app.url(&link), "svg.chart circle.celebrated").await;
        // The picture is of a full board: every column has cards, the charts and pledges are there.
        for status in ["Proposed", "Running", "Closed", "Abandoned"] {
            let cards = browser
                .client
                .find_all(Locator::Css(&format!("section.column[aria-label={status}] article.card")))
                .await
                .unwrap();
            assert!(!cards.is_empty(), "{status} has cards");
        }
        let text = browser.text().await;
        assert!(text.contains("(overdue)") && text.contains("People take the discount"), "{text}");
        let viewport = browser.script("return [window.innerWidth, window.innerHeight];").await;
        let png = browser.client.screenshot().await.unwrap();
        let (w, h) = png_size(&png);
        assert_eq!(
            (u64::from(w), u64::from(h)),
            (viewport[0].as_u64().unwrap(), viewport[1].as_u64().unwrap()),
            "the picture is the whole window"
        );
        assert_eq!(w, width, "{file} is {width} pixels wide");
        for dir in screenshot_dirs() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(file), &png).unwrap();
        }
    }
    browser.close().await;
}
