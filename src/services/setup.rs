//! First-run setup: the secret key, a default privacy notice, and a first
//! list with its consent statement, so a fresh install works at once. The
//! defaults say plainly that the organiser must replace them.

use super::{Result, lists};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{hex_lower, sha256_hex};
use crate::store::Store;

/// Marks the default texts so startup can remind the organiser to edit them.
pub const DEFAULT_MARKER: &str = "[DEFAULT TEXT — EDIT BEFORE USE]";

pub fn default_privacy_notice(group: &str) -> String {
    format!(
        "{DEFAULT_MARKER}\n\n\
         {group} uses Tidings to send updates to people who ask for them.\n\n\
         What we keep: your email address, the name you give us (optional), which lists you \
         joined, and a record of your consent — when and how you gave it, the page you used, \
         your IP address and browser, and the exact wording you agreed to.\n\n\
         Why: to send you the updates you asked for (consent, UK GDPR Article 6(1)(a)), and to \
         prove that you asked.\n\n\
         Your rights: you can unsubscribe with one click from any message, change your choices \
         from the preferences link in every message, and ask for a copy of your data or for it \
         to be erased. Contact {group} to exercise them. You may also complain to the \
         Information Commissioner's Office (ico.org.uk).\n\n\
         How long: while you are subscribed; evidence of consent for a limited time after you \
         withdraw it; and, if you ask us to erase you, only a one-way fingerprint of your \
         address so that we never mail it again."
    )
}

pub fn default_statement(group: &str, list_name: &str) -> String {
    format!(
        "Yes, please email me “{list_name}” updates from {group}. I can unsubscribe at any time \
         with the link in every email."
    )
}

/// Runs once per database (idempotent): returns the secret key in force.
pub async fn bootstrap(store: &Store, clock: &Clock, config: &Config) -> Result<Vec<u8>> {
    let now = clock.now();
    let mut tx = store.write().await?;
    let stored_key = {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let fresh = hex_lower(&bytes);
        tx.setting_or_insert("secret_key", &fresh).await?
    };
    if tx.current_privacy_notice(now).await?.is_none() {
        let body = default_privacy_notice(&config.group_name);
        let url = config.link("/privacy");
        tx.publish_privacy_notice(Some(&url), &body, &sha256_hex(&body), now, now).await?;
    }
    if tx.setting("bootstrapped").await?.is_none() {
        if tx.lists().await?.is_empty() {
            let new = lists::NewList {
                slug: "updates".into(),
                name: format!("{} updates", config.group_name),
                description: "News about the campaign: what we have done, what comes next.".into(),
                frequency: String::new(),
                public: true,
                archive: false,
            };
            lists::create_in(&mut tx, config, &new, now).await?;
        }
        tx.setting_or_insert("bootstrapped", &now.to_rfc3339()).await?;
    }
    tx.commit().await?;
    // An operator-supplied key wins, so instances sharing a database can be
    // given the same key explicitly.
    Ok(config.secret_key.clone().unwrap_or(stored_key).into_bytes())
}

/// True while the privacy notice in force is still the shipped default.
pub async fn notice_is_default(store: &Store, clock: &Clock) -> Result<bool> {
    let mut tx = store.read().await?;
    let notice = tx.current_privacy_notice(clock.now()).await?;
    Ok(notice.is_some_and(|n| n.body.starts_with(DEFAULT_MARKER)))
}
