//! Chat platforms. Each owns its wire types, signature check, rendering of the neutral message
//! model and its API client; nothing outside a platform module knows Block Kit or Adaptive Cards.

pub mod slack;
