//! Address fingerprints (issue 16 §5): the one batched suppression check
//! every path uses, and the one-time conversion of stored fingerprints from
//! bare SHA-256 to keyed HMAC-SHA256 ([`AddressKey`]).
//!
//! A fingerprint kept after erasure must not let someone holding a copy of
//! the database test guesses against it, so it is keyed with a key derived
//! from the server's secret key, which is not kept with the rows. Rows
//! written before the key existed are bare SHA-256: those whose address is
//! still held are re-keyed at the first start (by [`convert_at_start`]);
//! those of erased addresses cannot be (the address is gone), so they stay
//! as `legacy` rows, matched by the old hash of the address typed, and are
//! re-keyed the first time that address is seen again.

use super::{Result, ServiceError};
use crate::domain::{AddressKey, EmailAddress, sha256_hex};
use crate::store::{Store, Tx};
use std::collections::HashSet;

/// The setting that records which key the stored fingerprints were made
/// with (a check value, not the key).
const KEY_CHECK: &str = "address_key_check";

/// Subscribers converted per read at the first start.
const PAGE: i64 = 1000;

/// For each address, its keyed fingerprint when it is suppressed, else
/// `None`: one query for the whole batch. A legacy (bare SHA-256) match is
/// re-keyed on the spot, in the caller's transaction.
pub async fn suppressed(tx: &mut Tx, key: &AddressKey, emails: &[&EmailAddress]) -> Result<Vec<Option<String>>> {
    let keyed: Vec<String> = emails.iter().map(|e| e.suppression_hash(key)).collect();
    let legacy: Vec<Vec<String>> = emails.iter().map(|e| e.legacy_suppression_hashes()).collect();
    let mut all = keyed.clone();
    all.extend(legacy.iter().flatten().cloned());
    let found = tx.suppressed_among(&all).await?;
    let mut out = Vec::with_capacity(emails.len());
    for (hash, old) in keyed.into_iter().zip(&legacy) {
        if found.contains(&hash) {
            out.push(Some(hash));
        } else if let Some(old) = old.iter().find(|h| found.contains(*h)) {
            tx.rekey_suppression(old, &hash).await?;
            out.push(Some(hash));
        } else {
            out.push(None);
        }
    }
    Ok(out)
}

/// Whether one address is suppressed (see [`suppressed`]).
pub async fn is_suppressed(tx: &mut Tx, key: &AddressKey, email: &EmailAddress) -> Result<bool> {
    Ok(suppressed(tx, key, &[email]).await?.into_iter().any(|h| h.is_some()))
}

/// Runs at every start, before anything reads a fingerprint. The first
/// time (after the upgrade to keyed fingerprints) it re-normalises every
/// held address (issue 16 §4) and re-keys every fingerprint whose address
/// is held; afterwards it only checks that the key is the one the
/// fingerprints were made with, and refuses to start when it is not: with
/// another key every suppression of an erased address would silently stop
/// matching.
pub async fn convert_at_start(store: &Store, key: &AddressKey) -> Result<()> {
    let check = key.check_value();
    let mut tx = store.write().await?;
    match tx.setting(KEY_CHECK).await? {
        Some(stored) if stored == check => return Ok(()),
        Some(_) => {
            return Err(ServiceError::Conflict(
                "TIDINGS_SECRET_KEY is not the key the stored address fingerprints (the suppression list) were \
                 made with; start with the previous key (see README, \"Secret key\")"
                    .to_owned(),
            ));
        }
        None => {}
    }
    let mut after = None;
    let (mut rewritten, mut clashes) = (0u64, 0u64);
    loop {
        let page = tx.stored_addresses_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let parsed: Vec<Option<EmailAddress>> = page.iter().map(|r| EmailAddress::parse(&r.email).ok()).collect();
        // Legacy suppressions of these addresses, in any form an older
        // version could have stored: re-keyed under the new normal form.
        let mut candidates: Vec<(usize, String)> = Vec::new();
        for (i, (row, email)) in page.iter().zip(&parsed).enumerate() {
            candidates.push((i, sha256_hex(&row.email_norm)));
            if let Some(email) = email {
                candidates.extend(email.legacy_suppression_hashes().into_iter().map(|h| (i, h)));
            }
        }
        let hashes: Vec<String> = candidates.iter().map(|(_, h)| h.clone()).collect();
        let found = tx.suppressed_among(&hashes).await?;
        let mut done = HashSet::new();
        for (i, old) in candidates {
            if found.contains(&old) && done.insert(old.clone()) {
                let norm = parsed[i].as_ref().map_or(page[i].email_norm.as_str(), EmailAddress::normalised);
                tx.rekey_suppression(&old, &key.fingerprint(norm)).await?;
            }
        }
        for (row, email) in page.iter().zip(&parsed) {
            let kept_hash = key.fingerprint(&row.email_norm);
            match email {
                Some(e) => {
                    let hash = e.suppression_hash(key);
                    if tx.rewrite_stored_address(row.id, e.as_str(), e.normalised(), &hash, &kept_hash).await? {
                        rewritten += u64::from(e.normalised() != row.email_norm);
                    } else {
                        clashes += 1;
                        tracing::warn!(
                            subscriber = %row.id,
                            "another subscriber has the same address once normalised; this one keeps its old form \
                             (merge or erase one of them)"
                        );
                    }
                }
                // An address the normaliser now refuses keeps its form.
                None => {
                    tx.rewrite_stored_address(row.id, &row.email, &row.email_norm, &kept_hash, &kept_hash).await?;
                }
            }
        }
    }
    for (id, norm) in tx.bounce_events_of_subscribers().await? {
        let hash = EmailAddress::parse(&norm).map_or_else(|_| key.fingerprint(&norm), |e| e.suppression_hash(key));
        tx.set_bounce_fingerprint(id, &hash).await?;
    }
    let forgotten = tx.forget_unkeyed_bounce_fingerprints().await?;
    tx.setting_or_insert(KEY_CHECK, &check).await?;
    tx.commit().await?;
    tracing::info!(rewritten, clashes, forgotten, "address fingerprints keyed and addresses normalised");
    Ok(())
}
