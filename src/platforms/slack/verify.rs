//! Slack request signing: `v0=` + hex(HMAC-SHA256(secret, "v0:{timestamp}:{raw body}")), with the
//! timestamp within five minutes of now. Checked before anything else reads the request.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// How far a request's timestamp may be from now, in seconds; older requests may be replays.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the X-Slack-Signature or X-Slack-Request-Timestamp header is missing")]
    MissingHeaders,
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    #[error("the request timestamp is more than five minutes from now")]
    Stale,
    #[error("the signature does not match any configured signing secret")]
    Mismatch,
}

/// Verifies a request against every configured secret (more than one while rotating).
pub fn verify(headers: &HeaderMap, body: &[u8], secrets: &[SecretString], now_unix: i64) -> Result<(), VerifyError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) = (header("x-slack-request-timestamp"), header("x-slack-signature")) else {
        return Err(VerifyError::MissingHeaders);
    };
    let sent_at: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now_unix - sent_at).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(VerifyError::Stale);
    }
    let expected = signature.strip_prefix("v0=").and_then(|hex_sig| hex::decode(hex_sig).ok());
    let Some(expected) = expected else {
        return Err(VerifyError::Mismatch);
    };
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key");
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        // verify_slice compares in constant time.
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// The signatures of requests already taken, for as long as their timestamps are fresh: a genuine
/// request sent again (the same body, timestamp and signature) within Slack's five minutes is run
/// once. Per process; bounded, the oldest forgotten first.
#[derive(Default)]
pub struct SeenRequests {
    seen: std::sync::Mutex<SeenSet>,
}

#[derive(Default)]
struct SeenSet {
    keys: std::collections::HashSet<String>,
    /// In the order they were taken, with their request timestamps, to forget them.
    order: std::collections::VecDeque<(i64, String)>,
}

/// More signatures than a replica takes in five minutes by far; memory stays a few megabytes.
const MOST_SEEN: usize = 100_000;

impl SeenRequests {
    /// Whether this is the first time a verified request with these headers arrives.
    pub fn first_time(&self, headers: &HeaderMap, now_unix: i64) -> bool {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let sent_at: i64 = header("x-slack-request-timestamp").trim().parse().unwrap_or(now_unix);
        let key = header("x-slack-signature").to_string();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((at, _)) = seen.order.front() {
            if *at >= now_unix - MAX_CLOCK_SKEW_SECS - 1 && seen.order.len() < MOST_SEEN {
                break;
            }
            if let Some((_, old)) = seen.order.pop_front() {
                seen.keys.remove(&old);
            }
        }
        if !seen.keys.insert(key.clone()) {
            return false;
        }
        seen.order.push_back((sent_at, key));
        true
    }
}

/// Signs a body the way Slack does; used by tests and the benchmark to build genuine requests.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-slack-request-timestamp", timestamp.parse().unwrap());
        headers.insert("x-slack-signature", signature.parse().unwrap());
        headers
    }

    const NOW: i64 = 1_764_000_000;
    const BODY: &[u8] = b"token=x&team_id=T1&command=%2Fnudge&text=help";

    fn secrets(list: &[&str]) -> Vec<SecretString> {
        list.iter().map(|s| SecretString::from(s.to_string())).collect()
    }

    #[test]
    fn slacks_documented_example_verifies() {
        // The example from Slack's "Verifying requests from Slack" guide.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        let h = headers("1531420618", signature);
        assert_eq!(verify(&h, body, &secrets(&["8f742231b10e8888abcd99yyyzzz85a5"]), 1531420618 + 10), Ok(()));
    }

    #[test]
    fn any_configured_secret_verifies_during_rotation() {
        let h = headers(&NOW.to_string(), &sign("new-secret", NOW, BODY));
        assert_eq!(verify(&h, BODY, &secrets(&["old-secret", "new-secret"]), NOW), Ok(()));
        assert_eq!(verify(&h, BODY, &secrets(&["old-secret"]), NOW), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_changed_body_a_stale_timestamp_or_missing_headers_fail() {
        let secret = secrets(&["s"]);
        let h = headers(&NOW.to_string(), &sign("s", NOW, BODY));
        assert_eq!(verify(&h, b"team_id=T2", &secret, NOW), Err(VerifyError::Mismatch));
        assert_eq!(verify(&h, BODY, &secret, NOW + 301), Err(VerifyError::Stale));
        assert_eq!(verify(&h, BODY, &secret, NOW - 301), Err(VerifyError::Stale));
        assert_eq!(verify(&HeaderMap::new(), BODY, &secret, NOW), Err(VerifyError::MissingHeaders));
        assert_eq!(verify(&headers("soon", "v0=00"), BODY, &secret, NOW), Err(VerifyError::BadTimestamp));
        assert_eq!(verify(&headers(&NOW.to_string(), "v1=abc"), BODY, &secret, NOW), Err(VerifyError::Mismatch));
        assert_eq!(verify(&headers(&NOW.to_string(), "v0=zz"), BODY, &secret, NOW), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_request_seen_before_is_not_taken_again_until_its_timestamp_is_stale() {
        let seen = SeenRequests::default();
        let request = |ts: i64, sig: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-slack-request-timestamp", ts.to_string().parse().unwrap());
            headers.insert("x-slack-signature", sig.parse().unwrap());
            headers
        };
        assert!(seen.first_time(&request(1_000, "v0=aa"), 1_000));
        assert!(!seen.first_time(&request(1_000, "v0=aa"), 1_100), "the same request again");
        assert!(seen.first_time(&request(1_200, "v0=bb"), 1_200), "another request");
        // Past the five minutes the signature check refuses it anyway, so it may be forgotten.
        assert!(seen.first_time(&request(1_400, "v0=cc"), 1_400));
        assert_eq!(seen.seen.lock().unwrap().keys.len(), 2, "the stale one was forgotten");
    }
}
