//! Organiser sessions and logging in.
//!
//! A session is 256 random bits carried in a cookie; the database keeps only
//! its SHA-256, so reading the database (or a backup) lets nobody act as an
//! organiser. A session ends after [`IDLE_TIMEOUT`] without a request, or
//! [`ABSOLUTE_TIMEOUT`] after logging in, whichever comes first.
//!
//! Logging in is throttled by client address and account *together*: after
//! [`LOGIN_FAILURE_LIMIT`] failures for one account from one address within
//! [`LOGIN_FAILURE_WINDOW`], further attempts at that account from that
//! address are refused without checking the password; and one address that
//! fails [`ADDRESS_FAILURE_LIMIT`] times in the window, whatever accounts it
//! tried, is refused too. Failures from elsewhere never lock an account, so
//! an attacker cannot lock the real organiser out (IPv6 addresses count by
//! their /64, which one attacker usually holds whole). `tidings user
//! unlock` forgets every failure recorded against one account. An attempt is
//! recorded as a failure *before* the (slow) password check and forgiven
//! after it succeeds, so a burst of parallel guesses cannot all slip in
//! before the first failure is written. Unknown addresses cost the same
//! argon2 work as wrong passwords, so timing does not reveal who has an
//! account.

use super::accounts::{self, Role};
use super::{Context, RequestMeta, Result};
use crate::domain::{AddressKey, EmailAddress, sha256_hex};
use crate::store::{NewSession, Tx};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::hours(2);
/// A session ends this long after logging in, however active.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// Failed logins allowed for one account from one client address, per window.
pub const LOGIN_FAILURE_LIMIT: i64 = 5;
/// Failed logins allowed from one client address, whatever the accounts, per window.
pub const ADDRESS_FAILURE_LIMIT: i64 = 10;
pub const LOGIN_FAILURE_WINDOW: Duration = Duration::minutes(15);
/// `last_seen_at` is written at most this often, so browsing is not one
/// database write per page.
const TOUCH_INTERVAL: Duration = Duration::minutes(1);

/// A session id as the cookie carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(String);

impl std::fmt::Debug for SessionKey {
    // Session ids are credentials: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// 32 bytes from the OS CSPRNG.
    fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts only the shape we hand out.
    pub fn parse(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        (bytes.len() == 32).then(|| Self(raw.to_owned()))
    }

    /// The cookie value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the database stores.
    fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

/// The organiser a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAccount {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub key: SessionKey,
    pub account: SessionAccount,
    /// The absolute expiry (the cookie's lifetime).
    pub expires_at: DateTime<Utc>,
}

/// What a login attempt came to.
#[derive(Debug)]
pub enum LoginOutcome {
    LoggedIn(Session),
    /// Wrong address or password (which one is not said).
    Refused,
    /// Too many recent failures for this client or this account.
    Throttled {
        retry_after: std::time::Duration,
    },
}

/// A throttle row's key: keyed like an address fingerprint, so what was
/// typed at the login form cannot be guessed back from a copy of the table.
fn throttle_key(key: &AddressKey, kind: &str, value: &str) -> String {
    key.fingerprint(&format!("{kind}:{value}"))
}

/// The key under which failures against the account typed as `email` are
/// remembered (the same normalisation as EmailAddress, so unparseable input
/// is throttled too).
fn account_throttle_key(key: &AddressKey, email: &str) -> String {
    throttle_key(key, "account", &email.trim().to_lowercase())
}

/// A client address as it is throttled: IPv6 by its /64 (one subscriber
/// line's share), IPv4 and anything unparsed as given.
fn address_for_throttle(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// Forgets every failed login recorded against the account `email`, from
/// any address (`tidings user unlock`). Returns how many were forgotten.
pub async fn unlock(store: &crate::store::Store, key: &AddressKey, email: &str) -> Result<u64> {
    let mut tx = store.write().await?;
    let n = tx.clear_account_login_failures(&account_throttle_key(key, email)).await?;
    tx.commit().await?;
    Ok(n)
}

/// Checks an address and password and, if they match, starts a session.
pub async fn log_in(ctx: &Context, email: &str, password: &str, meta: &RequestMeta) -> Result<LoginOutcome> {
    let now = ctx.clock.now();
    let since = now - LOGIN_FAILURE_WINDOW;
    let fingerprints = &ctx.address_key;
    let account_key = account_throttle_key(fingerprints, email);
    let address = address_for_throttle(meta.ip.as_deref().unwrap_or("-"));
    let pair_key = throttle_key(fingerprints, "pair", &format!("{address} {account_key}"));
    let keys =
        [(pair_key.clone(), LOGIN_FAILURE_LIMIT), (throttle_key(fingerprints, "ip", &address), ADDRESS_FAILURE_LIMIT)];

    let mut tx = ctx.store.write().await?;
    tx.prune_login_failures(since).await?;
    for (key, limit) in &keys {
        if tx.login_failures_since(key, since).await? >= *limit {
            let retry_after = std::time::Duration::from_secs(LOGIN_FAILURE_WINDOW.num_seconds().unsigned_abs());
            return Ok(LoginOutcome::Throttled { retry_after });
        }
    }
    let mut provisional = Vec::with_capacity(keys.len());
    for (key, _) in &keys {
        let id = Uuid::now_v7();
        tx.insert_login_failure(id, key, &account_key, now).await?;
        provisional.push(id);
    }
    let user = match EmailAddress::parse(email) {
        Ok(address) => tx.user_by_email(address.normalised()).await?,
        Err(_) => None,
    };
    tx.commit().await?;

    let matches = accounts::verify_password(password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    let Some(user) = user.filter(|_| matches) else {
        tracing::info!(ip = meta.ip.as_deref().unwrap_or("-"), "organiser login refused");
        return Ok(LoginOutcome::Refused);
    };

    let mut tx = ctx.store.write().await?;
    for id in provisional {
        tx.delete_login_failure(id).await?;
    }
    tx.clear_login_failures(&pair_key).await?;
    tx.note_login(user.id, now).await?;
    let account = SessionAccount { id: user.id, email: user.email, role: user.role };
    let session = start_in(&mut tx, account, meta, now).await?;
    tx.commit().await?;
    tracing::info!(organiser = %session.account.id, "organiser logged in");
    Ok(LoginOutcome::LoggedIn(session))
}

/// Starts a session for an account that has just proved itself another way
/// (completing first-run setup).
pub async fn start(ctx: &Context, account: SessionAccount, meta: &RequestMeta) -> Result<Session> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    tx.note_login(account.id, now).await?;
    let session = start_in(&mut tx, account, meta, now).await?;
    tx.commit().await?;
    Ok(session)
}

/// A fresh id for every login, so a session id planted before login is
/// worth nothing after it. Dead sessions are swept here, the one place
/// sessions are created.
async fn start_in(tx: &mut Tx, account: SessionAccount, meta: &RequestMeta, now: DateTime<Utc>) -> Result<Session> {
    tx.delete_dead_sessions(now, now - IDLE_TIMEOUT).await?;
    let key = SessionKey::generate()?;
    let expires_at = now + ABSOLUTE_TIMEOUT;
    tx.insert_session(&NewSession {
        id_hash: &key.hash(),
        user_id: account.id,
        now,
        expires_at,
        ip: meta.ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
    })
    .await?;
    Ok(Session { key, account, expires_at })
}

/// The live session behind a cookie value, if any, noting the activity.
pub async fn resume(ctx: &Context, cookie: &str) -> Result<Option<Session>> {
    let Some(key) = SessionKey::parse(cookie) else { return Ok(None) };
    let now = ctx.clock.now();
    let hash = key.hash();
    let row = {
        let mut tx = ctx.store.read().await?;
        tx.live_session(&hash, now, now - IDLE_TIMEOUT).await?
    };
    let Some(row) = row else { return Ok(None) };
    if now - row.last_seen_at >= TOUCH_INTERVAL {
        let mut tx = ctx.store.write().await?;
        tx.touch_session(&hash, now).await?;
        tx.commit().await?;
    }
    let account = SessionAccount { id: row.user_id, email: row.email, role: row.role };
    Ok(Some(Session { key, account, expires_at: row.expires_at }))
}

/// Ends a session: its cookie is worthless from now on.
pub async fn log_out(ctx: &Context, session: &Session) -> Result<()> {
    let mut tx = ctx.store.write().await?;
    tx.delete_session(&session.key.hash()).await?;
    tx.commit().await?;
    tracing::info!(organiser = %session.account.id, "organiser logged out");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_are_256_bit_and_parse_only_our_shape() {
        let k = SessionKey::generate().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(k.as_str()).unwrap().len(), 32);
        assert_eq!(SessionKey::parse(k.as_str()), Some(k.clone()));
        assert_ne!(k, SessionKey::generate().unwrap());
        assert_eq!(SessionKey::parse("short"), None);
        assert_eq!(SessionKey::parse("' OR 1=1 --"), None);
        assert_eq!(format!("{k:?}"), "SessionKey(..)");
        assert_eq!(k.hash().len(), 64);
    }

    #[test]
    fn ipv6_addresses_are_throttled_by_their_64() {
        assert_eq!(address_for_throttle("2001:db8:1:2:aaaa::1"), address_for_throttle("2001:db8:1:2:bbbb::9"));
        assert_ne!(address_for_throttle("2001:db8:1:2::1"), address_for_throttle("2001:db8:1:3::1"));
        assert_eq!(address_for_throttle("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(address_for_throttle("192.0.2.1"), "192.0.2.1");
    }
}
