//! Configuration: `tidings.toml` (optional) overlaid by `TIDINGS_*`
//! environment variables, which win. Keys and defaults are part of the public
//! contract (README, "Configuration"); new keys may be added, none renamed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid TOML: {source}")]
    Toml { path: PathBuf, source: Box<toml::de::Error> },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// `TIDINGS_SENDER_AUTH`: what happens when a bulk send fails the sender
/// authentication checks (`services::sender_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderAuthMode {
    /// Refuse the send (an admin may override it for that send).
    Require,
    /// Send, but report the failures.
    Warn,
    /// No checks before sending.
    Off,
}

impl SenderAuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderAuthMode::Require => "require",
            SenderAuthMode::Warn => "warn",
            SenderAuthMode::Off => "off",
        }
    }
}

/// The fully parsed configuration. Every field is a value the program can
/// use directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    pub bind: SocketAddr,
    /// Base of every link in mail and pages, without a trailing slash.
    pub base_url: url::Url,
    /// `None` writes mail into `outbox_dir` as `.eml` files.
    pub smtp_url: Option<url::Url>,
    pub outbox_dir: PathBuf,
    /// `Name <address>` used as From on every message.
    pub from: lettre::message::Mailbox,
    /// Overrides the key stored in the database (hex or any string ≥ 32 bytes).
    pub secret_key: Option<String>,
    /// Bulk messages per second; 0 = unlimited.
    pub send_rate: u32,
    pub send_concurrency: u32,
    /// Subscribe requests per minute from one client address; 0 = no limit.
    pub subscribe_limit_per_ip: u32,
    /// Subscribe requests per minute from one IPv4 /24 or one IPv6 /64;
    /// 0 = no subnet limit. `subscribe_limit_per_ip = 0` turns this off too.
    pub subscribe_limit_per_subnet: u32,
    /// The proof-of-work challenge on sign-ups (`web::challenge`).
    pub subscribe_challenge: ChallengeMode,
    /// The challenge's secret number is drawn from 0..=this (its difficulty).
    pub subscribe_challenge_max_number: u64,
    /// Header carrying the real client address behind a reverse proxy.
    pub trusted_proxy_header: Option<String>,
    /// Shown in pages and mail ("Save Our Hospital").
    pub group_name: String,
    /// Postal or contact address for mail footers (PECR expects one).
    pub contact_address: String,
    /// How long a confirmation link works.
    pub confirm_token_ttl: Duration,
    /// At most one confirmation mail per address and list in this window.
    pub confirm_resend_interval: Duration,
    /// Largest request body accepted on public routes.
    pub max_body_bytes: usize,
    /// At most this many bulk messages per rolling hour / day (0 = no cap).
    pub send_hourly_cap: u32,
    pub send_daily_cap: u32,
    /// A send pauses itself when complaints pass this share of its
    /// attempts, in parts per million (3,000 = 0.3%; 0 = never).
    pub pause_complaint_ppm: u32,
    /// … or when hard bounces pass this share (50,000 = 5%; 0 = never) …
    pub pause_hard_bounce_ppm: u32,
    /// … once at least this many copies were attempted.
    pub pause_min_attempts: u32,
    /// DKIM: selector, PEM key file and signing domain (default: the From
    /// address's domain). Signing is on when selector and key are set.
    pub dkim_selector: Option<String>,
    pub dkim_key_file: Option<PathBuf>,
    pub dkim_domain: Option<String>,
    /// `rsa` (default) or `ed25519`.
    pub dkim_algorithm: String,
    /// How long a worker's claim on a batch lasts: after a crash, the batch
    /// is retried this long after it was claimed. A worker starts no new
    /// message once 3/8 of it has passed (the SMTP timeouts fit in the rest).
    pub worker_lease: Duration,
    /// When set, each copy of an update is sent with a VERP return path
    /// `tb-…@{verp_domain}` naming its delivery (see `mail::verp`).
    pub verp_domain: Option<String>,
    /// `TIDINGS_SENDER_AUTH` as given; see [`Config::effective_sender_auth`].
    pub sender_auth: Option<SenderAuthMode>,
    /// `TIDINGS_DNS_SERVER`: the nameserver (`ip:port`) Tidings asks, for
    /// the sender authentication checks and (unless
    /// `TIDINGS_REPORT_DNS_SERVER` says otherwise) the DKIM keys of abuse
    /// reports; `None` = the system resolver.
    pub dns_server: Option<SocketAddr>,
    /// IANA zone in which times are shown and cron schedules run.
    pub timezone: String,
    /// Subscriptions never confirmed are deleted this many days after the
    /// last request (0 = never).
    pub retention_pending_days: u32,
    /// Consent evidence of a withdrawn subscription is deleted this many
    /// days after the withdrawal (0 = never).
    pub retention_withdrawn_days: u32,
    /// Shared secret of `POST /webhooks/{provider}`; unset → webhooks are off (404).
    pub webhook_secret: Option<String>,
    /// Mailgun's HTTP webhook signing key; when set, Mailgun payloads must carry a valid signature.
    pub mailgun_signing_key: Option<String>,
    /// Consecutive soft bounces after which a subscriber is suspended (at least 1).
    pub soft_bounce_limit: u32,
    /// The DNS server that looks up the DKIM keys of abuse reports: `TIDINGS_REPORT_DNS_SERVER` (the
    /// older, narrower key, still honoured), else `TIDINGS_DNS_SERVER`; unset → the system's resolver
    /// (`/etc/resolv.conf`).
    pub report_dns_server: Option<std::net::SocketAddr>,
    /// `pop3s://user:pass@host:995` or `imaps://user:pass@host:993/FOLDER` (or `pop3://`, `imap://`, with
    /// `?tls=starttls`): a bounce mailbox to poll.
    pub bounce_mailbox_url: Option<url::Url>,
    /// How often the bounce mailbox is polled.
    pub bounce_mailbox_interval: Duration,
    /// Origins (`https://campaign.example`) of the sites that embed the
    /// subscribe form: they may call `POST /subscribe` with JSON from a
    /// browser (CORS), and the "check your inbox" page may link back to
    /// them. Serialised as `scheme://host[:port]`; empty = none.
    pub cors_origins: Vec<String>,
    /// When set, `/metrics`, `/healthz` and `/readyz` are also served on
    /// this address (the only HTTP a `tidings worker` process offers).
    pub metrics_bind: Option<SocketAddr>,
    /// When set, `/metrics` (on either listener) answers only requests
    /// carrying `Authorization: Bearer {token}`.
    pub metrics_token: Option<String>,
    /// Serve `/metrics` on the public listener too (off by default: the
    /// counters move when someone new subscribes, so anyone could learn
    /// whether an address is already on a list).
    pub metrics_public: bool,
    /// Largest CSV file accepted by `POST /api/v1/imports` and the admin
    /// upload form (streamed to the database, never held in memory).
    pub import_max_bytes: u64,
    /// Test copies one organiser (user or API token) may send per rolling
    /// hour; 0 = no cap.
    pub test_send_hourly_cap: u32,
    /// A request head (or, on a kept-alive connection, the next one) must
    /// arrive within this; otherwise the connection is closed.
    pub header_read_timeout: Duration,
    /// A connection on which nothing moves for this long while the server
    /// waits on it is closed.
    pub idle_timeout: Duration,
    /// Most open connections on the public listener; 0 = as many as the
    /// open-file limit allows, less a reserve (`web::server`).
    pub max_connections: usize,
}

/// Whether sign-ups carry a proof-of-work challenge (README, "Abuse
/// resistance").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMode {
    /// No challenge: no script, no route.
    Off,
    /// Offered: the form solves it in the background, but a sign-up
    /// without a solution is accepted under the ordinary limits.
    On,
    /// A sign-up without a valid solution is refused (422).
    Require,
}

/// Names of every key, in the order the README documents them.
pub const KEYS: &[&str] = &[
    "TIDINGS_DATABASE_URL",
    "TIDINGS_BIND",
    "TIDINGS_BASE_URL",
    "TIDINGS_SMTP_URL",
    "TIDINGS_OUTBOX_DIR",
    "TIDINGS_FROM",
    "TIDINGS_SECRET_KEY",
    "TIDINGS_SEND_RATE",
    "TIDINGS_SEND_CONCURRENCY",
    "TIDINGS_SUBSCRIBE_LIMIT_PER_IP",
    "TIDINGS_SUBSCRIBE_LIMIT_PER_SUBNET",
    "TIDINGS_SUBSCRIBE_CHALLENGE",
    "TIDINGS_SUBSCRIBE_CHALLENGE_MAX_NUMBER",
    "TIDINGS_TRUSTED_PROXY_HEADER",
    "TIDINGS_GROUP_NAME",
    "TIDINGS_CONTACT_ADDRESS",
    "TIDINGS_CONFIRM_TOKEN_TTL_HOURS",
    "TIDINGS_CONFIRM_RESEND_HOURS",
    "TIDINGS_MAX_BODY_BYTES",
    "TIDINGS_SEND_HOURLY_CAP",
    "TIDINGS_SEND_DAILY_CAP",
    "TIDINGS_PAUSE_COMPLAINT_RATE",
    "TIDINGS_PAUSE_HARD_BOUNCE_RATE",
    "TIDINGS_PAUSE_MIN_ATTEMPTS",
    "TIDINGS_DKIM_SELECTOR",
    "TIDINGS_DKIM_KEY_FILE",
    "TIDINGS_DKIM_DOMAIN",
    "TIDINGS_DKIM_ALGORITHM",
    "TIDINGS_TIMEZONE",
    "TIDINGS_WORKER_LEASE_SECONDS",
    "TIDINGS_VERP_DOMAIN",
    "TIDINGS_RETENTION_PENDING_DAYS",
    "TIDINGS_RETENTION_WITHDRAWN_DAYS",
    "TIDINGS_WEBHOOK_SECRET",
    "TIDINGS_MAILGUN_SIGNING_KEY",
    "TIDINGS_SOFT_BOUNCE_LIMIT",
    "TIDINGS_REPORT_DNS_SERVER",
    "TIDINGS_BOUNCE_MAILBOX_URL",
    "TIDINGS_BOUNCE_MAILBOX_INTERVAL_SECONDS",
    "TIDINGS_CORS_ORIGINS",
    "TIDINGS_METRICS_BIND",
    "TIDINGS_METRICS_TOKEN",
    "TIDINGS_METRICS_PUBLIC",
    "TIDINGS_IMPORT_MAX_BYTES",
    "TIDINGS_TEST_SEND_HOURLY_CAP",
    "TIDINGS_HEADER_READ_TIMEOUT_SECONDS",
    "TIDINGS_IDLE_TIMEOUT_SECONDS",
    "TIDINGS_MAX_CONNECTIONS",
    "TIDINGS_SENDER_AUTH",
    "TIDINGS_DNS_SERVER",
];

impl Config {
    /// Reads `tidings.toml` from `path` if it exists, then the environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut values = read_toml(path)?;
        for key in KEYS {
            if let Ok(v) = std::env::var(key) {
                values.insert((*key).to_owned(), v);
            }
        }
        Self::from_map(&values)
    }

    /// Builds a configuration from `KEY -> value` pairs (missing keys take
    /// their defaults). Tests use this directly.
    pub fn from_map(values: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let get = |key: &str| values.get(key).map(|s| s.trim()).filter(|s| !s.is_empty());

        let base_url = parse_url("TIDINGS_BASE_URL", get("TIDINGS_BASE_URL").unwrap_or("http://localhost:8080"))?;
        let smtp_url = get("TIDINGS_SMTP_URL").map(|s| parse_url("TIDINGS_SMTP_URL", s)).transpose()?;
        if let Some(u) = &smtp_url
            && (!matches!(u.scheme(), "smtp" | "smtps") || u.host_str().is_none())
        {
            return Err(invalid("TIDINGS_SMTP_URL", "use smtp://host:port or smtps://host:port"));
        }
        let from_raw = get("TIDINGS_FROM").unwrap_or("Tidings <noreply@localhost>");
        let from: lettre::message::Mailbox =
            from_raw.parse().map_err(|_| invalid("TIDINGS_FROM", "expected `Name <address@domain>`"))?;
        let from_domain = from.email.domain().to_owned();
        let group_name = get("TIDINGS_GROUP_NAME")
            .map(str::to_owned)
            .or_else(|| from.name.clone())
            .unwrap_or_else(|| "Tidings".to_owned());
        if group_name.chars().any(char::is_control) {
            return Err(invalid("TIDINGS_GROUP_NAME", "must be one line"));
        }
        let dns_server = parse_dns_server(get, "TIDINGS_DNS_SERVER")?;

        Ok(Self {
            database_url: get("TIDINGS_DATABASE_URL").unwrap_or("sqlite://tidings.db").to_owned(),
            bind: get("TIDINGS_BIND")
                .unwrap_or("127.0.0.1:8080")
                .parse()
                .map_err(|_| invalid("TIDINGS_BIND", "expected host:port, e.g. 127.0.0.1:8080"))?,
            base_url,
            smtp_url,
            outbox_dir: PathBuf::from(get("TIDINGS_OUTBOX_DIR").unwrap_or("./outbox")),
            from,
            secret_key: get("TIDINGS_SECRET_KEY")
                .map(|k| check_secret_key(k).map(|()| k.to_owned()).map_err(|m| invalid("TIDINGS_SECRET_KEY", &m)))
                .transpose()?,
            send_rate: parse_num(get, "TIDINGS_SEND_RATE", 0)?,
            send_concurrency: parse_num(get, "TIDINGS_SEND_CONCURRENCY", 4)?.max(1),
            subscribe_limit_per_ip: parse_num(get, "TIDINGS_SUBSCRIBE_LIMIT_PER_IP", 10)?,
            subscribe_limit_per_subnet: parse_num(get, "TIDINGS_SUBSCRIBE_LIMIT_PER_SUBNET", 30)?,
            subscribe_challenge: match get("TIDINGS_SUBSCRIBE_CHALLENGE").unwrap_or("off") {
                "off" => ChallengeMode::Off,
                "on" => ChallengeMode::On,
                "require" => ChallengeMode::Require,
                _ => return Err(invalid("TIDINGS_SUBSCRIBE_CHALLENGE", "off, on or require")),
            },
            subscribe_challenge_max_number: match parse_num(get, "TIDINGS_SUBSCRIBE_CHALLENGE_MAX_NUMBER", 50_000u64)? {
                n @ 1..=10_000_000 => n,
                _ => return Err(invalid("TIDINGS_SUBSCRIBE_CHALLENGE_MAX_NUMBER", "a number from 1 to 10,000,000")),
            },
            trusted_proxy_header: get("TIDINGS_TRUSTED_PROXY_HEADER").map(str::to_owned),
            group_name,
            contact_address: get("TIDINGS_CONTACT_ADDRESS").unwrap_or_default().to_owned(),
            confirm_token_ttl: hours(parse_num(get, "TIDINGS_CONFIRM_TOKEN_TTL_HOURS", 72)?),
            confirm_resend_interval: hours(parse_num(get, "TIDINGS_CONFIRM_RESEND_HOURS", 24)?),
            max_body_bytes: parse_num(get, "TIDINGS_MAX_BODY_BYTES", 64 * 1024)?,
            send_hourly_cap: parse_num(get, "TIDINGS_SEND_HOURLY_CAP", 0)?,
            send_daily_cap: parse_num(get, "TIDINGS_SEND_DAILY_CAP", 0)?,
            pause_complaint_ppm: parse_percent(get, "TIDINGS_PAUSE_COMPLAINT_RATE", 3_000)?,
            pause_hard_bounce_ppm: parse_percent(get, "TIDINGS_PAUSE_HARD_BOUNCE_RATE", 50_000)?,
            pause_min_attempts: parse_num(get, "TIDINGS_PAUSE_MIN_ATTEMPTS", 1000u32)?.max(1),
            dkim_selector: get("TIDINGS_DKIM_SELECTOR").map(str::to_owned),
            dkim_key_file: get("TIDINGS_DKIM_KEY_FILE").map(PathBuf::from),
            dkim_domain: get("TIDINGS_DKIM_DOMAIN").map(str::to_owned),
            dkim_algorithm: match get("TIDINGS_DKIM_ALGORITHM").unwrap_or("rsa") {
                a @ ("rsa" | "ed25519") => a.to_owned(),
                _ => return Err(invalid("TIDINGS_DKIM_ALGORITHM", "rsa or ed25519")),
            },
            verp_domain: match get("TIDINGS_VERP_DOMAIN") {
                Some(d) if !crate::services::sender_auth::aligned_under(d, &from_domain) => {
                    return Err(invalid(
                        "TIDINGS_VERP_DOMAIN",
                        &format!(
                            "{d} must be the From domain ({}) or a subdomain of it, so bounces align with From",
                            from_domain
                        ),
                    ));
                }
                d => d.map(|d| d.trim_end_matches('.').to_ascii_lowercase()),
            },
            sender_auth: match get("TIDINGS_SENDER_AUTH") {
                None => None,
                Some("require") => Some(SenderAuthMode::Require),
                Some("warn") => Some(SenderAuthMode::Warn),
                Some("off") => Some(SenderAuthMode::Off),
                Some(_) => return Err(invalid("TIDINGS_SENDER_AUTH", "require, warn or off")),
            },
            dns_server,
            worker_lease: Duration::from_secs(parse_num(get, "TIDINGS_WORKER_LEASE_SECONDS", 120u64)?.max(2)),
            timezone: parse_timezone(get("TIDINGS_TIMEZONE").unwrap_or("Europe/London"))?,
            retention_pending_days: parse_num(get, "TIDINGS_RETENTION_PENDING_DAYS", 30)?,
            retention_withdrawn_days: parse_num(get, "TIDINGS_RETENTION_WITHDRAWN_DAYS", 730)?,
            webhook_secret: get("TIDINGS_WEBHOOK_SECRET").map(str::to_owned),
            mailgun_signing_key: get("TIDINGS_MAILGUN_SIGNING_KEY").map(str::to_owned),
            soft_bounce_limit: parse_num(get, "TIDINGS_SOFT_BOUNCE_LIMIT", 3u32)?.max(1),
            // Kept for deployments that set it; unset, the one DNS setting
            // serves abuse reports too.
            report_dns_server: parse_dns_server(get, "TIDINGS_REPORT_DNS_SERVER")?.or(dns_server),
            bounce_mailbox_url: get("TIDINGS_BOUNCE_MAILBOX_URL")
                .map(|s| {
                    let u = parse_url("TIDINGS_BOUNCE_MAILBOX_URL", s)?;
                    // Checked now, so a mistake stops startup instead of every poll.
                    crate::mail::mailbox::MailboxSettings::from_url(&u)
                        .map_err(|e| invalid("TIDINGS_BOUNCE_MAILBOX_URL", &e.to_string()))?;
                    Ok(u)
                })
                .transpose()?,
            bounce_mailbox_interval: Duration::from_secs(
                parse_num(get, "TIDINGS_BOUNCE_MAILBOX_INTERVAL_SECONDS", 300u64)?.max(1),
            ),
            cors_origins: parse_origins(get("TIDINGS_CORS_ORIGINS").unwrap_or(""))?,
            metrics_bind: get("TIDINGS_METRICS_BIND")
                .map(|s| {
                    s.parse().map_err(|_| invalid("TIDINGS_METRICS_BIND", "expected host:port, e.g. 0.0.0.0:9090"))
                })
                .transpose()?,
            metrics_token: match get("TIDINGS_METRICS_TOKEN") {
                Some(t) if t.len() < 16 || t.chars().any(|c| c.is_control() || c == ' ') => {
                    return Err(invalid(
                        "TIDINGS_METRICS_TOKEN",
                        "use at least 16 characters without spaces, e.g. the output of `openssl rand -hex 32`",
                    ));
                }
                t => t.map(str::to_owned),
            },
            metrics_public: parse_bool(get, "TIDINGS_METRICS_PUBLIC", false)?,
            import_max_bytes: parse_num(get, "TIDINGS_IMPORT_MAX_BYTES", 256 * 1024 * 1024)?,
            test_send_hourly_cap: parse_num(get, "TIDINGS_TEST_SEND_HOURLY_CAP", 50)?,
            header_read_timeout: Duration::from_secs(
                parse_num(get, "TIDINGS_HEADER_READ_TIMEOUT_SECONDS", 15u64)?.max(1),
            ),
            idle_timeout: Duration::from_secs(parse_num(get, "TIDINGS_IDLE_TIMEOUT_SECONDS", 60u64)?.max(1)),
            max_connections: parse_num(get, "TIDINGS_MAX_CONNECTIONS", 0)?,
        })
    }

    /// `raw` as a link back to one of [`Config::cors_origins`], or `None`
    /// when it points anywhere else: the "check your inbox" page links only
    /// to sites the operator named, so it can never be an open redirect.
    pub fn return_link(&self, raw: &str) -> Option<url::Url> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 2048 {
            return None;
        }
        let url = url::Url::parse(raw).ok()?;
        let allowed = matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && url.password().is_none()
            && self.cors_origins.iter().any(|o| *o == url.origin().ascii_serialization());
        allowed.then_some(url)
    }

    /// The sender authentication mode in force: as set, else `require`
    /// with an SMTP relay; writing to the outbox folder never gates.
    pub fn effective_sender_auth(&self) -> SenderAuthMode {
        match (&self.smtp_url, self.sender_auth) {
            (None, _) => SenderAuthMode::Off,
            (Some(_), Some(mode)) => mode,
            (Some(_), None) => SenderAuthMode::Require,
        }
    }

    /// A link under the base URL, e.g. `link("confirm/abc")`.
    pub fn link(&self, path: &str) -> String {
        format!("{}/{}", self.base_url.as_str().trim_end_matches('/'), path.trim_start_matches('/'))
    }

    /// The host part used in Message-IDs and List-Ids.
    pub fn mail_host(&self) -> String {
        self.base_url.host_str().unwrap_or("localhost").to_owned()
    }
}

fn read_toml(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => return Err(ConfigError::Read { path: path.to_owned(), source }),
    };
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| ConfigError::Toml { path: path.to_owned(), source: Box::new(e) })?;
    // The file may use the environment names or their short lower-case form
    // (`bind = "…"` for TIDINGS_BIND).
    Ok(table
        .into_iter()
        .map(|(k, v)| {
            let key = if k.starts_with("TIDINGS_") { k } else { format!("TIDINGS_{}", k.to_uppercase()) };
            let value = match v {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            (key, value)
        })
        .collect())
}

fn invalid(key: &'static str, message: &str) -> ConfigError {
    ConfigError::Invalid { key, message: message.to_owned() }
}

fn parse_url(key: &'static str, raw: &str) -> Result<url::Url, ConfigError> {
    url::Url::parse(raw).map_err(|e| invalid(key, &e.to_string()))
}

/// A nameserver: `ip:port`, or `ip` for port 53.
fn parse_dns_server<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    key: &'static str,
) -> Result<Option<SocketAddr>, ConfigError> {
    get(key)
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| invalid(key, "expected ip or ip:port, e.g. 127.0.0.1:5353"))
        })
        .transpose()
}

fn parse_num<'a, T: std::str::FromStr>(
    get: impl Fn(&str) -> Option<&'a str>,
    key: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    get(key).map_or(Ok(default), |s| s.parse().map_err(|_| invalid(key, "expected a whole number")))
}

/// A percentage (`0.3` for 0.3%) as parts per million.
fn parse_percent<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    key: &'static str,
    default: u32,
) -> Result<u32, ConfigError> {
    let Some(raw) = get(key) else { return Ok(default) };
    let percent: f64 =
        raw.trim_end_matches('%').trim().parse().map_err(|_| invalid(key, "expected a percentage such as 0.3"))?;
    if !(0.0..=100.0).contains(&percent) {
        return Err(invalid(key, "expected a percentage between 0 and 100"));
    }
    Ok((percent * 10_000.0).round() as u32)
}

fn parse_bool<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    key: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(key).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(_) => Err(invalid(key, "expected true or false")),
    }
}

/// An IANA zone name, checked now so a typo stops startup instead of
/// surfacing later as a schedule that cannot run. Kept as its canonical name.
fn parse_timezone(raw: &str) -> Result<String, ConfigError> {
    raw.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| invalid("TIDINGS_TIMEZONE", "expected an IANA time zone name, e.g. Europe/London or UTC"))
}

/// A comma-separated list of web origins, each kept in its serialised form
/// (`https://example.org`, with a port only when it is not the default).
fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    let mut origins = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let url = url::Url::parse(item).map_err(|_| {
            invalid("TIDINGS_CORS_ORIGINS", &format!("{item:?} is not an origin such as https://campaign.example"))
        })?;
        let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none() && url.username().is_empty();
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare {
            return Err(invalid(
                "TIDINGS_CORS_ORIGINS",
                &format!("{item:?} must be scheme://host[:port] only, e.g. https://campaign.example"),
            ));
        }
        origins.push(url.origin().ascii_serialization());
    }
    Ok(origins)
}

/// Shortest `TIDINGS_SECRET_KEY` accepted, in bytes.
pub const SECRET_KEY_MIN_BYTES: usize = 32;
/// Fewest distinct characters a `TIDINGS_SECRET_KEY` must hold: a random
/// hex key of 32 bytes has about 16, a random base64 one far more, while
/// `changeme` repeated to length has 7.
pub const SECRET_KEY_MIN_DISTINCT: usize = 10;

/// Refuses a secret key that can be guessed: it signs every unsubscribe and
/// preferences link, so a weak one lets anyone forge another person's link.
pub fn check_secret_key(raw: &str) -> Result<(), String> {
    if raw.len() < SECRET_KEY_MIN_BYTES {
        return Err(format!(
            "too short ({} bytes): use at least {SECRET_KEY_MIN_BYTES} random bytes, e.g. the output of \
             `openssl rand -hex 32`, or unset it to use the key generated and stored in the database",
            raw.len()
        ));
    }
    let distinct = raw.chars().collect::<std::collections::BTreeSet<_>>().len();
    if distinct < SECRET_KEY_MIN_DISTINCT {
        return Err(format!(
            "too easy to guess (only {distinct} different characters): use a random key, e.g. the output of \
             `openssl rand -hex 32`, or unset it to use the key generated and stored in the database"
        ));
    }
    Ok(())
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::from_map(&BTreeMap::new()).unwrap();
        assert_eq!(c.database_url, "sqlite://tidings.db");
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.link("/confirm/x"), "http://localhost:8080/confirm/x");
        assert!(c.smtp_url.is_none());
        assert_eq!(c.outbox_dir, PathBuf::from("./outbox"));
        assert_eq!(c.from.to_string(), "Tidings <noreply@localhost>");
        assert_eq!(c.subscribe_limit_per_ip, 10);
        assert_eq!(c.subscribe_limit_per_subnet, 30);
        assert_eq!(c.subscribe_challenge, ChallengeMode::Off);
        assert_eq!(c.subscribe_challenge_max_number, 50_000);
        assert_eq!(c.send_rate, 0);
        assert_eq!(c.confirm_token_ttl, Duration::from_secs(72 * 3600));
        assert!(!c.metrics_public, "/metrics stays off the public listener unless asked for");
        assert!(c.metrics_token.is_none());
    }

    #[test]
    fn the_report_dns_server_is_an_ip_and_port() {
        assert_eq!(Config::from_map(&BTreeMap::new()).unwrap().report_dns_server, None);
        let c = Config::from_map(&map(&[("TIDINGS_REPORT_DNS_SERVER", "127.0.0.1:5353")])).unwrap();
        assert_eq!(c.report_dns_server, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(c.dns_server, None, "the older key concerns abuse reports only");
        let c = Config::from_map(&map(&[("TIDINGS_REPORT_DNS_SERVER", "127.0.0.1")])).unwrap();
        assert_eq!(c.report_dns_server, Some("127.0.0.1:53".parse().unwrap()), "port 53 unless given");
        for bad in ["dns.example.org:53", "nonsense"] {
            let err = Config::from_map(&map(&[("TIDINGS_REPORT_DNS_SERVER", bad)])).unwrap_err();
            assert!(err.to_string().starts_with("TIDINGS_REPORT_DNS_SERVER"), "{bad}: {err}");
        }
    }

    #[test]
    fn one_dns_server_setting_serves_abuse_reports_too() {
        let one = Config::from_map(&map(&[("TIDINGS_DNS_SERVER", "127.0.0.1:5353")])).unwrap();
        assert_eq!(one.dns_server, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(one.report_dns_server, one.dns_server, "TIDINGS_REPORT_DNS_SERVER falls back to it");
        let both = Config::from_map(&map(&[
            ("TIDINGS_DNS_SERVER", "127.0.0.1:5353"),
            ("TIDINGS_REPORT_DNS_SERVER", "127.0.0.2:53"),
        ]))
        .unwrap();
        assert_eq!(both.dns_server, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(both.report_dns_server, Some("127.0.0.2:53".parse().unwrap()), "the specific key wins");
        let err = Config::from_map(&map(&[("TIDINGS_DNS_SERVER", "nonsense")])).unwrap_err();
        assert!(err.to_string().starts_with("TIDINGS_DNS_SERVER"), "{err}");
    }

    #[test]
    fn pause_thresholds_are_percentages() {
        let c = Config::from_map(&BTreeMap::new()).unwrap();
        assert_eq!((c.pause_complaint_ppm, c.pause_hard_bounce_ppm, c.pause_min_attempts), (3_000, 50_000, 1000));
        let c = Config::from_map(&map(&[
            ("TIDINGS_PAUSE_COMPLAINT_RATE", "0.1%"),
            ("TIDINGS_PAUSE_HARD_BOUNCE_RATE", "2.5"),
            ("TIDINGS_PAUSE_MIN_ATTEMPTS", "50"),
        ]))
        .unwrap();
        assert_eq!((c.pause_complaint_ppm, c.pause_hard_bounce_ppm, c.pause_min_attempts), (1_000, 25_000, 50));
        for bad in ["-1", "101", "lots"] {
            let err = Config::from_map(&map(&[("TIDINGS_PAUSE_COMPLAINT_RATE", bad)])).unwrap_err();
            assert!(err.to_string().starts_with("TIDINGS_PAUSE_COMPLAINT_RATE"), "{bad}");
        }
    }

    #[test]
    fn metrics_options_are_checked() {
        let c = Config::from_map(&map(&[
            ("TIDINGS_METRICS_PUBLIC", "true"),
            ("TIDINGS_METRICS_TOKEN", "0123456789abcdef0123"),
        ]))
        .unwrap();
        assert!(c.metrics_public);
        assert_eq!(c.metrics_token.as_deref(), Some("0123456789abcdef0123"));
        let err = Config::from_map(&map(&[("TIDINGS_METRICS_PUBLIC", "maybe")])).unwrap_err();
        assert!(err.to_string().starts_with("TIDINGS_METRICS_PUBLIC"));
        let err = Config::from_map(&map(&[("TIDINGS_METRICS_TOKEN", "short")])).unwrap_err();
        assert!(err.to_string().starts_with("TIDINGS_METRICS_TOKEN"));
    }

    #[test]
    fn weak_secret_keys_are_refused() {
        for weak in ["changeme", "short but not 32 bytes long", &"changeme".repeat(4), &"ab".repeat(40)] {
            let err = Config::from_map(&map(&[("TIDINGS_SECRET_KEY", weak)])).unwrap_err();
            assert!(err.to_string().starts_with("TIDINGS_SECRET_KEY"), "{weak}: {err}");
        }
        let hex = "3f9a0c1be27d4856aa10ff93c4e5d7b2061e8c9d3a5b7f1e2c4d6a8b0e1f2a3b";
        assert_eq!(Config::from_map(&map(&[("TIDINGS_SECRET_KEY", hex)])).unwrap().secret_key.as_deref(), Some(hex));
        // The key generated at first run (32 random bytes in hex) passes.
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).unwrap();
        assert!(check_secret_key(&crate::domain::hex_lower(&bytes)).is_ok());
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::from_map(&map(&[("TIDINGS_BIND", "nonsense")])).unwrap_err();
        assert!(err.to_string().starts_with("TIDINGS_BIND"));
        let err = Config::from_map(&map(&[("TIDINGS_SMTP_URL", "http://x")])).unwrap_err();
        assert!(err.to_string().starts_with("TIDINGS_SMTP_URL"));
        assert!(Config::from_map(&map(&[("TIDINGS_SEND_RATE", "-3")])).is_err());
        let err = Config::from_map(&map(&[("TIDINGS_TIMEZONE", "Europe/Londres")])).unwrap_err();
        assert!(err.to_string().starts_with("TIDINGS_TIMEZONE"));
        assert_eq!(
            Config::from_map(&map(&[("TIDINGS_TIMEZONE", "America/New_York")])).unwrap().timezone,
            "America/New_York"
        );
    }

    #[test]
    fn cors_origins_are_bare_origins_and_return_links_stay_on_them() {
        let c = Config::from_map(&map(&[(
            "TIDINGS_CORS_ORIGINS",
            " https://campaign.example , http://localhost:3000/,https://Other.Example:443",
        )]))
        .unwrap();
        assert_eq!(c.cors_origins, ["https://campaign.example", "http://localhost:3000", "https://other.example"]);
        assert!(Config::from_map(&BTreeMap::new()).unwrap().cors_origins.is_empty());
        for bad in
            ["campaign.example", "https://campaign.example/page", "ftp://campaign.example", "https://x@y.example"]
        {
            let err = Config::from_map(&map(&[("TIDINGS_CORS_ORIGINS", bad)])).unwrap_err();
            assert!(err.to_string().starts_with("TIDINGS_CORS_ORIGINS"), "{bad}: {err}");
        }

        let back = c.return_link("https://campaign.example/thanks?from=form#top").unwrap();
        assert_eq!(back.as_str(), "https://campaign.example/thanks?from=form#top");
        assert!(c.return_link("http://localhost:3000/").is_some());
        for refused in [
            "",
            "/relative/path",
            "//evil.example/",
            "https://evil.example/",
            "https://campaign.example.evil.example/",
            "https://campaign.example@evil.example/",
            "https://user@campaign.example/",
            "http://campaign.example/",
            "https://campaign.example:8443/",
            "javascript:alert(1)",
            "data:text/html,hi",
        ] {
            assert!(c.return_link(refused).is_none(), "{refused} must be refused");
        }
        assert!(c.return_link(&format!("https://campaign.example/{}", "a".repeat(2100))).is_none());
    }

    #[test]
    fn toml_file_is_read_and_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tidings.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9999\"\nsend_rate = 5\n").unwrap();
        let from_file = read_toml(&path).unwrap();
        assert_eq!(from_file["TIDINGS_BIND"], "127.0.0.1:9999");
        assert_eq!(from_file["TIDINGS_SEND_RATE"], "5");
        let mut merged = from_file;
        merged.insert("TIDINGS_BIND".into(), "127.0.0.1:7777".into());
        assert_eq!(Config::from_map(&merged).unwrap().bind.port(), 7777);
    }

    #[test]
    fn a_verp_domain_outside_the_from_domain_is_refused() {
        let from = ("TIDINGS_FROM", "News <news@hospital.test>");
        for ok in ["hospital.test", "bounces.hospital.test", "B.Hospital.Test."] {
            assert!(Config::from_map(&map(&[from, ("TIDINGS_VERP_DOMAIN", ok)])).is_ok(), "{ok}");
        }
        for bad in ["elsewhere.test", "nothospital.test", "test"] {
            let err = Config::from_map(&map(&[from, ("TIDINGS_VERP_DOMAIN", bad)])).unwrap_err().to_string();
            assert!(err.starts_with("TIDINGS_VERP_DOMAIN") && err.contains("hospital.test"), "{bad}: {err}");
        }
    }

    #[test]
    fn sender_auth_is_required_with_a_relay_and_off_without() {
        let c = Config::from_map(&map(&[])).unwrap();
        assert_eq!(c.effective_sender_auth(), SenderAuthMode::Off, "the outbox folder never gates");
        let relay = ("TIDINGS_SMTP_URL", "smtp://127.0.0.1:25");
        assert_eq!(Config::from_map(&map(&[relay])).unwrap().effective_sender_auth(), SenderAuthMode::Require);
        let warn = Config::from_map(&map(&[relay, ("TIDINGS_SENDER_AUTH", "warn")])).unwrap();
        assert_eq!(warn.effective_sender_auth(), SenderAuthMode::Warn);
        assert!(Config::from_map(&map(&[("TIDINGS_SENDER_AUTH", "maybe")])).is_err());
        let dns = Config::from_map(&map(&[("TIDINGS_DNS_SERVER", "127.0.0.1")])).unwrap();
        assert_eq!(dns.dns_server, Some("127.0.0.1:53".parse().unwrap()));
    }
}
