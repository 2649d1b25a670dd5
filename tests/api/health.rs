//! The HTTP skeleton: health checks, limits, request ids, graceful stop.

use crate::helpers::{Backend, TestApp};

async fn health_and_readiness_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"), "every response carries a request id");
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready\n");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn postgres_app_answers_health_and_readiness() {
    health_and_readiness_answer(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_app_answers_health_and_readiness() {
    health_and_readiness_answer(Backend::Sqlite).await;
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.store.close().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), "database cannot take writes\n");
    // The process itself is still up.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused_with_413() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = vec![b'a'; 1024 * 1024 + 1];
    let response = app.client.post(app.url("/healthz")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn an_unknown_path_is_404() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(app.get("/nope").await.status(), 404);
}

#[tokio::test]
async fn the_server_stops_cleanly_when_the_shared_token_is_cancelled() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let address = app.address;
    app.stop().await.expect("a clean stop");
    assert!(tokio::net::TcpStream::connect(address).await.is_err(), "nothing listens after the stop");
}
