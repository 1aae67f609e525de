//! Whether an abuse report really comes from the mailbox provider that
//! signed it: the DKIM signature of an RFC 5965 feedback report, checked
//! with `mail-auth` against the public key published in DNS under the
//! signature's selector (RFC 6376). Mailbox providers sign their feedback
//! loops; the result is recorded with the report and shown on the admin's
//! bounces page. It does not decide whether a complaint is applied (that is
//! the tie to a copy Tidings sent, see [`super`]): an unsigned report from a
//! small provider is as common as a signed one from a large one.
//!
//! The DNS server is `Config::report_dns_server`: `TIDINGS_REPORT_DNS_SERVER`
//! when set, else `TIDINGS_DNS_SERVER` (tests point it at a server on
//! loopback answering from a fixture), else the system's resolver.

use crate::config::Config;
use mail_auth::hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use std::time::Duration;

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A signature verified with the published key.
    Pass,
    /// Signed, but no signature verified (wrong key, altered message…).
    Fail,
    /// Not signed at all.
    Unsigned,
    /// Signed, but the key could not be looked up (DNS unreachable, no
    /// resolver): neither verified nor failed.
    Unverified,
}

impl Verdict {
    /// As stored in `bounce_events.dkim`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Unsigned => "none",
            Verdict::Unverified => "unverified",
        }
    }
}

/// The verdict and the signing domain (`d=`) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimCheck {
    pub verdict: Verdict,
    pub domain: Option<String>,
}

fn authenticator(config: &Config) -> Option<MessageAuthenticator> {
    match config.report_dns_server {
        Some(server) => {
            let group = NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true);
            let mut options = ResolverOpts::default();
            options.timeout = Duration::from_secs(5);
            options.attempts = 2;
            MessageAuthenticator::new(ResolverConfig::from_parts(None, Vec::new(), group), options)
                .map_err(|e| tracing::warn!(error = %e, "DKIM check of an abuse report: no resolver"))
                .ok()
        }
        None => MessageAuthenticator::new_system_conf()
            .map_err(|e| tracing::warn!(error = %e, "DKIM check of an abuse report: no system resolver"))
            .ok(),
    }
}

/// Checks the DKIM signatures of `raw`. A pass by any signature is a pass;
/// else a definite failure is a failure; else (key lookups failed) it is
/// unverified.
pub async fn check(config: &Config, raw: &[u8]) -> DkimCheck {
    let Some(message) = AuthenticatedMessage::parse(raw) else {
        return DkimCheck { verdict: Verdict::Unsigned, domain: None };
    };
    if message.dkim_headers.is_empty() {
        return DkimCheck { verdict: Verdict::Unsigned, domain: None };
    }
    let first_domain = message.dkim_headers.iter().find_map(|h| h.header.as_ref().ok().map(|s| s.d.clone()));
    let Some(authenticator) = authenticator(config) else {
        return DkimCheck { verdict: Verdict::Unverified, domain: first_domain };
    };
    let outputs = authenticator.verify_dkim(&message).await;
    if let Some(pass) = outputs.iter().find(|o| matches!(o.result(), DkimResult::Pass)) {
        return DkimCheck { verdict: Verdict::Pass, domain: pass.signature().map(|s| s.d.clone()).or(first_domain) };
    }
    let failed = outputs
        .iter()
        .find(|o| matches!(o.result(), DkimResult::Fail(_) | DkimResult::PermError(_) | DkimResult::Neutral(_)));
    match failed {
        Some(o) => {
            tracing::info!(result = ?o.result(), "abuse report: DKIM signature did not verify");
            DkimCheck { verdict: Verdict::Fail, domain: o.signature().map(|s| s.d.clone()).or(first_domain) }
        }
        None => {
            tracing::info!(results = ?outputs.iter().map(|o| o.result()).collect::<Vec<_>>(),
                "abuse report: DKIM key could not be looked up");
            DkimCheck { verdict: Verdict::Unverified, domain: first_domain }
        }
    }
}
