//! Sender authentication (issue 24 §3): the checks that must pass before a
//! bulk send, shown by `tidings check` and the admin dashboard's "before you
//! send" list, and enforced by [`gate`] on `POST /api/v1/updates/{id}/send`,
//! the admin send button, and the workers that start scheduled sends.
//!
//! The checks, each with a stable code:
//! - `dkim_key`: a DKIM key is configured, RSA of at least 1024 bits or
//!   ed25519;
//! - `dkim_alignment`: its `d=` domain aligns with the From domain (relaxed:
//!   equal, or one is a subdomain of the other — a simple stand-in for "same
//!   organisational domain" that needs no public-suffix list);
//! - `spf`: the From domain publishes a `v=spf1` TXT record;
//! - `dmarc`: `_dmarc.{From domain}` publishes a `v=DMARC1` TXT record;
//! - `dkim_dns`: `{selector}._domainkey.{d=}` publishes a `v=DKIM1` record
//!   whose `p=` is the public half of the configured private key.
//!
//! The DNS checks are made when DNS answers; when it cannot be reached
//! (timeout, refused) they are reported as not checked and do not block.
//! A name that exists without the record, or does not exist, is a failure.

use crate::config::{Config, SenderAuthMode};
// The resolver `mail-auth` (DKIM of complaint reports) is built on: one
// hickory in the tree, whose 0.26 pre-release that crate pins.
use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use mail_auth::hickory_resolver::name_server::TokioConnectionProvider;
use std::time::Duration;

/// Smallest RSA key the bulk-sender rules accept.
pub const MIN_RSA_BITS: usize = 1024;
/// How long one DNS question may take (one attempt).
const DNS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SenderAuthError {
    #[error("DNS resolver: {0}")]
    Resolver(String),
}

/// The configured DKIM key, as far as the checks need it.
#[derive(Debug, Clone)]
pub struct DkimKeyInfo {
    pub selector: String,
    /// The `d=` domain.
    pub domain: String,
    /// `rsa` or `ed25519`.
    pub algorithm: &'static str,
    /// RSA modulus size; `None` for ed25519.
    pub bits: Option<usize>,
    /// The `p=` value the DKIM TXT record must carry.
    pub public_key: String,
}

impl DkimKeyInfo {
    /// The TXT record to publish, as `name` and `value`.
    pub fn txt_record(&self) -> (String, String) {
        let k = if self.algorithm == "ed25519" { "ed25519" } else { "rsa" };
        (format!("{}._domainkey.{}", self.selector, self.domain), format!("v=DKIM1; k={k}; p={}", self.public_key))
    }
}

/// Reads the key `config` names (the same file the signer uses). `Ok(None)`
/// when no key is configured.
pub fn load_key(config: &Config) -> Result<Option<DkimKeyInfo>, String> {
    let (Some(selector), Some(path)) = (&config.dkim_selector, &config.dkim_key_file) else { return Ok(None) };
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let domain = config.dkim_domain.clone().unwrap_or_else(|| config.from.email.domain().to_owned());
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (algorithm, bits, public_key) = if config.dkim_algorithm == "ed25519" {
        let raw = b64.decode(pem.trim()).map_err(|e| format!("{}: not a base64 ed25519 key: {e}", path.display()))?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| format!("{}: an ed25519 key is 32 bytes", path.display()))?;
        let public = ed25519_dalek::SigningKey::from_bytes(&bytes).verifying_key().to_bytes();
        ("ed25519", None, b64.encode(public))
    } else {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem))
            .map_err(|e| format!("{}: not an RSA key: {e}", path.display()))?;
        let public = key.to_public_key().to_public_key_der().map_err(|e| format!("{}: {e}", path.display()))?;
        ("rsa", Some(key.size() * 8), b64.encode(public.as_bytes()))
    };
    Ok(Some(DkimKeyInfo { selector: selector.clone(), domain, algorithm, bits, public_key }))
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// `dkim_key`, `dkim_alignment`, `spf`, `dmarc` or `dkim_dns`.
    pub code: &'static str,
    /// `pass`, `fail` or `unchecked` (DNS unreachable, or nothing to look up).
    pub status: &'static str,
    /// A sentence for the organiser.
    pub message: String,
}

impl Check {
    fn pass(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, status: "pass", message: message.into() }
    }
    fn fail(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, status: "fail", message: message.into() }
    }
    fn unchecked(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, status: "unchecked", message: message.into() }
    }
    pub fn failed(&self) -> bool {
        self.status == "fail"
    }
}

/// Every check, in a fixed order.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.failed()).collect()
    }

    /// "dkim_key: …; spf: …", for error messages and the audit log.
    pub fn summary(&self) -> String {
        self.failures().iter().map(|c| format!("{}: {}", c.code, c.message)).collect::<Vec<_>>().join("; ")
    }
}

/// The checker: mode, key and resolver, built once at start.
#[derive(Clone)]
pub struct SenderAuth {
    mode: SenderAuthMode,
    from_domain: String,
    key: Result<Option<DkimKeyInfo>, String>,
    resolver: Option<TokioResolver>,
}

/// What [`SenderAuth::gate`] decided for one send.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Nothing failed, or the gate is off / warning only (the failures, if
    /// any, are in the report).
    Go(Report),
    /// Refused: the failed checks are in the report.
    Refused(Report),
}

impl SenderAuth {
    pub fn new(config: &Config) -> Result<Self, SenderAuthError> {
        let mode = config.effective_sender_auth();
        let resolver = match mode {
            SenderAuthMode::Off => None,
            _ => Some(build_resolver(config.dns_server)?),
        };
        Ok(Self { mode, from_domain: config.from.email.domain().to_ascii_lowercase(), key: load_key(config), resolver })
    }

    pub fn mode(&self) -> SenderAuthMode {
        self.mode
    }

    /// The configured key, if it could be read.
    pub fn key(&self) -> Option<&DkimKeyInfo> {
        self.key.as_ref().ok().and_then(Option::as_ref)
    }

    /// Runs every check. Used by `tidings check` and the dashboard whatever
    /// the mode (with the mode off and no resolver, DNS is not asked).
    pub async fn report(&self) -> Report {
        let mut checks = Vec::with_capacity(5);
        let key = match &self.key {
            Err(e) => {
                checks.push(Check::fail("dkim_key", format!("the DKIM key cannot be read: {e}")));
                None
            }
            Ok(None) => {
                checks.push(Check::fail(
                    "dkim_key",
                    "no DKIM key is configured (set TIDINGS_DKIM_SELECTOR and TIDINGS_DKIM_KEY_FILE)",
                ));
                None
            }
            Ok(Some(k)) => {
                match k.bits {
                    Some(bits) if bits < MIN_RSA_BITS => checks.push(Check::fail(
                        "dkim_key",
                        format!(
                            "the DKIM key has {bits} bits; mailbox providers need at least {MIN_RSA_BITS} (use 2048)"
                        ),
                    )),
                    Some(bits) => checks.push(Check::pass("dkim_key", format!("RSA key of {bits} bits"))),
                    None => checks.push(Check::pass("dkim_key", "ed25519 key")),
                }
                Some(k)
            }
        };
        match key {
            Some(k) if aligned(&k.domain, &self.from_domain) => checks.push(Check::pass(
                "dkim_alignment",
                format!("d={} aligns with the From domain {}", k.domain, self.from_domain),
            )),
            Some(k) => checks.push(Check::fail(
                "dkim_alignment",
                format!(
                    "the DKIM domain d={} does not align with the From domain {} (use the same domain or a subdomain)",
                    k.domain, self.from_domain
                ),
            )),
            None => checks.push(Check::fail("dkim_alignment", "no DKIM signature, so nothing aligns with From")),
        }
        let Some(resolver) = &self.resolver else {
            for code in ["spf", "dmarc", "dkim_dns"] {
                checks.push(Check::unchecked(code, "DNS not checked (TIDINGS_SENDER_AUTH=off)"));
            }
            return Report { checks };
        };
        let domain = self.from_domain.clone();
        let dmarc_name = format!("_dmarc.{domain}");
        let dkim_name = key.map(|k| k.txt_record().0);
        let (spf, dmarc, dkim) = tokio::join!(txt(resolver, &domain), txt(resolver, &dmarc_name), async {
            match &dkim_name {
                Some(n) => Some(txt(resolver, n).await),
                None => None,
            }
        });
        checks.push(match spf {
            Lookup::Unreachable(e) => Check::unchecked("spf", format!("DNS could not be reached: {e}")),
            Lookup::Records(r) => match r.iter().find(|t| starts_with_tag(t, "v=spf1")) {
                Some(t) => Check::pass("spf", format!("{domain}: {t}")),
                None => Check::fail("spf", format!("{domain} publishes no SPF record (TXT \"v=spf1 …\")")),
            },
        });
        checks.push(match dmarc {
            Lookup::Unreachable(e) => Check::unchecked("dmarc", format!("DNS could not be reached: {e}")),
            Lookup::Records(r) => match r.iter().find(|t| starts_with_tag(t, "v=DMARC1")) {
                Some(t) => Check::pass("dmarc", format!("{dmarc_name}: {t}")),
                None => {
                    Check::fail("dmarc", format!("{dmarc_name} publishes no DMARC record (TXT \"v=DMARC1; p=none\")"))
                }
            },
        });
        checks.push(match (key, dkim) {
            (Some(k), Some(lookup)) => {
                let (name, _) = k.txt_record();
                match lookup {
                    Lookup::Unreachable(e) => Check::unchecked("dkim_dns", format!("DNS could not be reached: {e}")),
                    Lookup::Records(r) => {
                        let published: Vec<String> =
                            r.iter().filter(|t| starts_with_tag(t, "v=DKIM1")).filter_map(|t| tag(t, "p")).collect();
                        if published.contains(&k.public_key) {
                            Check::pass("dkim_dns", format!("{name} publishes the key"))
                        } else if published.is_empty() {
                            Check::fail("dkim_dns", format!("{name} publishes no DKIM key (see `tidings check`)"))
                        } else {
                            Check::fail(
                                "dkim_dns",
                                format!(
                                    "{name} publishes a different key from the configured one (see `tidings check`)"
                                ),
                            )
                        }
                    }
                }
            }
            _ => Check::fail("dkim_dns", "no DKIM key, so none is published"),
        });
        Report { checks }
    }

    /// Decides whether a bulk send may start now.
    pub async fn gate(&self) -> Verdict {
        match self.mode {
            SenderAuthMode::Off => Verdict::Go(Report::default()),
            SenderAuthMode::Warn => {
                let report = self.report().await;
                if !report.failures().is_empty() {
                    tracing::warn!(failures = %report.summary(), "sender authentication fails; sending anyway (TIDINGS_SENDER_AUTH=warn)");
                }
                Verdict::Go(report)
            }
            SenderAuthMode::Require => {
                let report = self.report().await;
                if report.failures().is_empty() { Verdict::Go(report) } else { Verdict::Refused(report) }
            }
        }
    }
}

/// Relaxed alignment: equal, or one a subdomain of the other.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.').to_ascii_lowercase(), b.trim_end_matches('.').to_ascii_lowercase());
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

/// `sub` is `parent` or a subdomain of it (the VERP domain rule).
pub fn aligned_under(sub: &str, parent: &str) -> bool {
    let (sub, parent) =
        (sub.trim_end_matches('.').to_ascii_lowercase(), parent.trim_end_matches('.').to_ascii_lowercase());
    sub == parent || sub.ends_with(&format!(".{parent}"))
}

fn starts_with_tag(txt: &str, version: &str) -> bool {
    let first = txt.split(';').next().unwrap_or("").trim();
    first.eq_ignore_ascii_case(version)
        || txt.to_ascii_lowercase().starts_with(&format!("{} ", version.to_ascii_lowercase()))
}

/// The value of `name=` in a `tag=value; …` record, whitespace removed.
fn tag(txt: &str, name: &str) -> Option<String> {
    txt.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

enum Lookup {
    /// The TXT strings found (each record's strings joined); empty when the
    /// name has no TXT record or does not exist.
    Records(Vec<String>),
    Unreachable(String),
}

async fn txt(resolver: &TokioResolver, name: &str) -> Lookup {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    match resolver.txt_lookup(fqdn.as_str()).await {
        Ok(lookup) => Lookup::Records(
            lookup
                .iter()
                .map(|t| t.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<String>())
                .collect(),
        ),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Lookup::Records(Vec::new()),
        Err(e) => Lookup::Unreachable(e.to_string()),
    }
}

fn build_resolver(server: Option<std::net::SocketAddr>) -> Result<TokioResolver, SenderAuthError> {
    let provider = TokioConnectionProvider::default();
    let mut builder = match server {
        Some(addr) => {
            let servers = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
            TokioResolver::builder_with_config(ResolverConfig::from_parts(None, Vec::new(), servers), provider)
        }
        None => TokioResolver::builder(provider).map_err(|e| SenderAuthError::Resolver(e.to_string()))?,
    };
    let opts = builder.options_mut();
    opts.timeout = DNS_TIMEOUT;
    opts.attempts = 1;
    // Every check asks afresh: a record just published counts at once.
    opts.cache_size = 0;
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_is_equal_or_subdomain() {
        assert!(aligned("hospital.test", "hospital.test"));
        assert!(aligned("mail.hospital.test", "hospital.test"));
        assert!(aligned("Hospital.Test.", "news.hospital.test"));
        assert!(!aligned("evil.test", "hospital.test"));
        assert!(!aligned("nothospital.test", "hospital.test"));
    }

    #[test]
    fn tags_are_read_from_records() {
        assert_eq!(tag("v=DKIM1; k=rsa; p=AB CD", "p").as_deref(), Some("ABCD"));
        assert!(starts_with_tag("v=spf1 -all", "v=spf1"));
        assert!(starts_with_tag("v=DMARC1; p=none", "v=DMARC1"));
        assert!(!starts_with_tag("v=spf10", "v=spf1"));
    }
}
