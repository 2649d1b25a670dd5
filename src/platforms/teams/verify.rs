//! The Bot Framework's JWT, checked before anything reads an activity: scheme `Bearer`, RS256, the
//! key found by `kid` in the JWKS the OpenID metadata names (cached; fetched again at most hourly
//! for an unknown kid, and daily in any case), the key's endorsements naming the activity's channel,
//! issuer, audience = the app id, lifetime with five minutes' leeway, and the `serviceurl` claim
//! equal to the activity's `serviceUrl`. Entra-issued tokens are accepted only when configured,
//! and then only for the configured tenant.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use url::Url;

use super::config::TeamsConfig;

/// The issuer of every token the Bot Framework sends to bots.
pub const BOT_FRAMEWORK_ISSUER: &str = "https://api.botframework.com";
/// Tokens live an hour; clocks differ by a little.
const LEEWAY_SECS: u64 = 5 * 60;
/// An unknown kid makes nudge fetch the keys again, at most this often (Microsoft rotates keys
/// rarely; a flood of made-up kids must not become a flood of fetches).
const REFETCH_UNKNOWN_AFTER: Duration = Duration::from_secs(60 * 60);
/// Known keys are fetched again after this long, so a revoked key stops working within a day.
const REFRESH_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request was refused; never shown to the caller (the answer is an empty 401 or 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no token, a malformed one, or one that fails a check.
    Unauthorized(&'static str),
    /// 403: a valid signature by a key not endorsed for the activity's channel.
    NotEndorsed,
}

/// What the check needs from the activity, read leniently: a body that is not an activity fails
/// the `serviceurl` check rather than being parsed further.
#[derive(Debug, Default, Deserialize)]
pub struct Claimed {
    #[serde(default, rename = "channelId")]
    pub channel_id: Option<String>,
    #[serde(default, rename = "serviceUrl")]
    pub service_url: Option<String>,
}

impl Claimed {
    pub fn of(body: &[u8]) -> Claimed {
        serde_json::from_slice(body).unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    serviceurl: Option<String>,
    #[serde(default)]
    tid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Unverified {
    #[serde(default)]
    iss: String,
}

pub struct Verifier {
    app_id: String,
    tenant_id: String,
    accept_entra: bool,
    bot_framework: KeySet,
    /// The tenant's own keys, for Entra-issued tokens.
    entra: KeySet,
}

impl Verifier {
    pub fn new(settings: &TeamsConfig) -> Verifier {
        let http = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().unwrap_or_default();
        // The tenant's metadata lives beside its token endpoint (login.microsoftonline.com/{tenant}/…).
        let mut entra_metadata = settings.token_url.clone();
        entra_metadata.set_path(&format!("/{}/v2.0/.well-known/openid-configuration", settings.tenant_id));
        entra_metadata.set_query(None);
        Verifier {
            app_id: settings.app_id.clone(),
            tenant_id: settings.tenant_id.clone(),
            accept_entra: settings.accept_entra_tokens,
            bot_framework: KeySet::new(settings.openid_metadata_url.clone(), http.clone()),
            entra: KeySet::new(entra_metadata, http),
        }
    }

    fn entra_issuers(&self) -> [String; 2] {
        [
            format!("https://sts.windows.net/{}/", self.tenant_id),
            format!("https://login.microsoftonline.com/{}/v2.0", self.tenant_id),
        ]
    }

    /// Checks the `Authorization` header against the activity it came with.
    pub async fn verify(&self, authorization: Option<&str>, activity: &Claimed) -> Result<(), Refusal> {
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Unauthorized("no Bearer token"))?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Unauthorized("not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(Refusal::Unauthorized("not signed with RS256"));
        }
        let kid = header.kid.ok_or(Refusal::Unauthorized("no kid"))?;
        // The issuer picks the key set; it is checked again, with the signature, below.
        let issuer = unverified_issuer(token).ok_or(Refusal::Unauthorized("unreadable claims"))?;
        let entra = self.entra_issuers().contains(&issuer);
        let keys = match () {
            _ if issuer == BOT_FRAMEWORK_ISSUER => &self.bot_framework,
            _ if entra && self.accept_entra => &self.entra,
            _ => return Err(Refusal::Unauthorized("issuer not accepted")),
        };
        let key = keys.key(&kid).await.ok_or(Refusal::Unauthorized("unknown key"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.app_id]);
        validation.set_issuer(&[&issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|_| Refusal::Unauthorized("signature or claims"))?
            .claims;
        let channel = activity.channel_id.as_deref().ok_or(Refusal::Unauthorized("no channelId"))?;
        // A Bot Framework key must name the channel among its endorsements (one without any is not
        // endorsed, as in the Bot Framework SDKs); Entra's keys carry none, the tenant check stands in.
        let endorsed = match &key.endorsements {
            Some(endorsements) => endorsements.iter().any(|e| e == channel),
            None => entra,
        };
        if !endorsed {
            return Err(Refusal::NotEndorsed);
        }
        if entra && claims.tid.as_deref() != Some(self.tenant_id.as_str()) {
            return Err(Refusal::Unauthorized("another tenant"));
        }
        let claimed = activity.service_url.as_deref().map(|u| u.trim_end_matches('/'));
        match (claims.serviceurl.as_deref().map(|u| u.trim_end_matches('/')), claimed) {
            (Some(signed), Some(sent)) if signed == sent => Ok(()),
            // Entra-issued tokens may carry no serviceurl; the Bot Framework's always do.
            (None, Some(_)) if entra => Ok(()),
            _ => Err(Refusal::Unauthorized("serviceurl does not match")),
        }
    }
}

fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Unverified>(&bytes).ok().map(|u| u.iss)
}

#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    /// The channels the key is endorsed for, when the JWKS lists them.
    endorsements: Option<Vec<String>>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, Key>,
    fetched_at: Option<Instant>,
}

/// One issuer's signing keys, fetched through its OpenID metadata and kept in memory.
struct KeySet {
    metadata_url: Url,
    http: reqwest::Client,
    keys: tokio::sync::RwLock<Keys>,
    /// One fetch at a time; the others wait for it and use what it got.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct Metadata {
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    endorsements: Option<Vec<String>>,
}

impl KeySet {
    fn new(metadata_url: Url, http: reqwest::Client) -> KeySet {
        KeySet { metadata_url, http, keys: Default::default(), fetching: Default::default() }
    }

    async fn key(&self, kid: &str) -> Option<Key> {
        let fresh = |keys: &Keys| keys.fetched_at.is_some_and(|at| at.elapsed() < REFRESH_AFTER);
        {
            let keys = self.keys.read().await;
            if fresh(&keys)
                && let Some(key) = keys.by_kid.get(kid)
            {
                return Some(key.clone());
            }
        }
        let _fetching = self.fetching.lock().await;
        {
            let keys = self.keys.read().await;
            let found = keys.by_kid.get(kid).cloned();
            let recently = keys.fetched_at.is_some_and(|at| at.elapsed() < REFETCH_UNKNOWN_AFTER);
            match found {
                Some(key) if fresh(&keys) => return Some(key),
                None if recently => return None,
                _ => {}
            }
        }
        match self.fetch().await {
            Ok(fetched) => {
                let mut keys = self.keys.write().await;
                *keys = Keys { by_kid: fetched, fetched_at: Some(Instant::now()) };
                keys.by_kid.get(kid).cloned()
            }
            Err(error) => {
                tracing::warn!(%error, metadata = %self.metadata_url, "cannot fetch the Bot Framework's signing keys");
                // Keys that were good yesterday are better than none while the fetch fails; a
                // failed fetch still counts, so a broken identity service is not asked per request.
                let mut keys = self.keys.write().await;
                keys.fetched_at = Some(Instant::now());
                keys.by_kid.get(kid).cloned()
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Key>, reqwest::Error> {
        let metadata: Metadata =
            self.http.get(self.metadata_url.clone()).send().await?.error_for_status()?.json().await?;
        let jwks: Jwks = self.http.get(&metadata.jwks_uri).send().await?.error_for_status()?.json().await?;
        Ok(jwks
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA")
            .filter_map(|k| {
                let decoding = DecodingKey::from_rsa_components(k.n.as_deref()?, k.e.as_deref()?).ok()?;
                Some((k.kid?, Key { decoding, endorsements: k.endorsements }))
            })
            .collect())
    }
}
