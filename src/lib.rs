//! nudge: a chat bot that keeps teams moving through test-and-learn cycles. See DESIGN.md for the map.

pub mod clock;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod message;
pub mod outbox;
pub mod platforms;
pub mod scheduler;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
