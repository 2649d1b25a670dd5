//! The outbox: every post the bot owes is a row with an idempotency key, holding the neutral
//! message; the sender delivers it through one `Delivery` interface that each platform implements,
//! so nothing here knows a platform.

pub mod sender;

pub use sender::{Deliveries, Delivery, DeliveryError, DeliveryFuture, Round, Sender, SenderSettings};
