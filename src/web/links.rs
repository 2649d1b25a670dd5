//! Dashboard links: `/dashboard/{workspace}.{channel}.{expires}.{signature}`, the signature an
//! HMAC-SHA256 over the workspace, the channel and the expiry with this installation's key. The
//! link itself is the permission: it names one channel of one workspace, cannot be changed to name
//! another, and stops working when it expires.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};

use crate::store::{ChannelId, WorkspaceId};

/// The name of the key dashboard links are signed with (see `server_keys`).
pub const KEY_NAME: &str = "dashboard-links";

/// How long a link works: a week and a day, so the link in a weekly check-in lasts until the next.
pub const LIFETIME: Duration = Duration::days(8);

/// The channel a valid link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub workspace: WorkspaceId,
    pub channel: ChannelId,
    pub expires: DateTime<Utc>,
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not a link nudge made, or one that was changed.
    Invalid,
    Expired,
}

fn mac(key: &[u8], workspace: i64, channel: i64, expires: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(format!("dashboard:{workspace}:{channel}:{expires}").as_bytes());
    mac
}

use sha2::Sha256;

/// The link's token (the last path segment) for a channel, valid until `expires`.
pub fn token(key: &[u8], grant: Grant) -> String {
    let (ws, channel, expires) = (grant.workspace.0, grant.channel.0, grant.expires.timestamp());
    let signature = hex::encode(mac(key, ws, channel, expires).finalize().into_bytes());
    format!("{ws}.{channel}.{expires}.{signature}")
}

/// The grant a token carries, when its signature is this installation's and it has not expired.
pub fn verify(key: &[u8], token: &str, now: DateTime<Utc>) -> Result<Grant, LinkError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [ws, channel, expires, signature] = parts.as_slice() else { return Err(LinkError::Invalid) };
    let (Ok(ws), Ok(channel), Ok(expires)) = (ws.parse::<i64>(), channel.parse::<i64>(), expires.parse::<i64>()) else {
        return Err(LinkError::Invalid);
    };
    let signature = hex::decode(signature).map_err(|_| LinkError::Invalid)?;
    // Compared in constant time.
    mac(key, ws, channel, expires).verify_slice(&signature).map_err(|_| LinkError::Invalid)?;
    let expires = DateTime::from_timestamp(expires, 0).ok_or(LinkError::Invalid)?;
    if expires <= now {
        return Err(LinkError::Expired);
    }
    Ok(Grant { workspace: WorkspaceId(ws), channel: ChannelId(channel), expires })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            workspace: WorkspaceId(3),
            channel: ChannelId(7),
            expires: DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn a_link_opens_its_channel_until_it_expires() {
        let key = [5u8; 32];
        let token = token(&key, grant());
        let before = DateTime::from_timestamp(1_999_999_999, 0).unwrap();
        assert_eq!(verify(&key, &token, before), Ok(grant()));
        assert_eq!(verify(&key, &token, grant().expires), Err(LinkError::Expired));
    }

    #[test]
    fn a_changed_link_or_another_key_opens_nothing() {
        let key = [5u8; 32];
        let good = token(&key, grant());
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let other_channel = good.replacen("3.7.", "3.8.", 1);
        let other_team = good.replacen("3.7.", "4.7.", 1);
        let longer = good.replacen(".2000000000.", ".2100000000.", 1);
        for changed in [other_channel, other_team, longer, "nonsense".into(), format!("{good}00")] {
            assert_eq!(verify(&key, &changed, now), Err(LinkError::Invalid), "{changed}");
        }
        assert_eq!(verify(&[6u8; 32], &good, now), Err(LinkError::Invalid));
    }
}
