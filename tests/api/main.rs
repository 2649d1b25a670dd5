//! Integration tests: one binary, one file per area. Storage-facing tests run on both backends,
//! each test on a fresh database (see `helpers`).

mod helpers;

mod binary;
mod browser;
mod commands;
mod crash;
mod dashboard;
mod health;
mod outbox;
mod reliability;
mod scheduler;
mod slack;
mod slack_oauth;
mod store;
mod teams;
mod trust;
mod trust_commands;
mod trust_posts;
