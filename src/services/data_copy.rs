//! A supporter's own copy of their data (right of access), asked for from
//! the preferences page. The preferences link may sit in an old, forwarded
//! mail, so the copy is never shown on the page: a fresh single-use link is
//! mailed to the address first, and only pressing its button mails the copy
//! (JSON attached) to that same address. Each request is logged in the
//! rights-request log as a completed access request.

use super::audit::Who;
use super::{Context, RequestMeta, Result, ServiceError, privacy_ops, queue_mail, rights};
use crate::domain::{Actor, ConfirmToken, EmailAddress, MailKind, RightsKind, RightsStatus, SignedToken, TokenPurpose};
use chrono::Duration;

/// How long the link in the mail works.
const LINK_HOURS: i64 = 24;
/// At most this many links a day per person (against mail bombing).
const MAX_PER_DAY: i64 = 3;

/// Mails the person behind `preferences_token` a link that releases their
/// copy. Quietly does nothing beyond the daily limit (the page says the
/// same either way).
pub async fn request(ctx: &Context, preferences_token: &str, _meta: &RequestMeta) -> Result<()> {
    let token = SignedToken::verify(preferences_token, &ctx.secret_key, TokenPurpose::Preferences)
        .map_err(|_| ServiceError::NotFound("link"))?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let subscriber = tx.subscriber_by_id(token.subscriber).await?.ok_or(ServiceError::Gone)?;
    if tx.data_copy_tokens_since(subscriber.id, now - Duration::days(1)).await? >= MAX_PER_DAY {
        tracing::warn!(subscriber = %subscriber.id, "data copy requests over the daily limit; no mail");
        return Ok(());
    }
    let link_token = ConfirmToken::generate(now)?;
    tx.insert_data_copy_token(&link_token.hash(), subscriber.id, now, now + Duration::hours(LINK_HOURS)).await?;
    let to = parse_stored(&subscriber.email)?;
    let link = ctx.config.link(&format!("/data-copy/{}", link_token.as_str()));
    let mail = ctx.composer.data_copy_link(&to, &subscriber.name, &link, LINK_HOURS as u64)?;
    queue_mail(&mut tx, MailKind::DataCopyLink, mail, now).await?;
    tx.commit().await?;
    ctx.outbox_wakeup.notify_one();
    Ok(())
}

/// Whether a link is live (for the page with the button).
pub async fn link_is_live(ctx: &Context, raw: &str) -> Result<bool> {
    let Ok(token) = ConfirmToken::parse(raw) else { return Ok(false) };
    let mut tx = ctx.store.read().await?;
    Ok(tx.peek_data_copy_token(&token.hash(), ctx.clock.now()).await?.is_some())
}

/// Uses the link once: mails the copy and logs the request. `Gone` if the
/// link is unknown, used or expired.
pub async fn release(ctx: &Context, raw: &str) -> Result<()> {
    let token = ConfirmToken::parse(raw).map_err(|_| ServiceError::Gone)?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let subscriber_id = tx.use_data_copy_token(&token.hash(), now).await?.ok_or(ServiceError::Gone)?;
    let subscriber = tx.subscriber_by_id(subscriber_id).await?.ok_or(ServiceError::Gone)?;
    // The export reads in its own snapshot; this transaction holds the
    // token, so a second click cannot mail a second copy.
    let export = privacy_ops::export(&ctx.store, &ctx.clock, &ctx.config.group_name, subscriber_id).await?;
    let json = serde_json::to_vec_pretty(&export).map_err(|e| ServiceError::Conflict(e.to_string()))?;
    let mail = ctx.composer.data_copy(&parse_stored(&subscriber.email)?, &subscriber.name, json)?;
    queue_mail(&mut tx, MailKind::DataCopy, mail, now).await?;
    let who =
        Who { actor: Actor::Supporter.to_db(), label: "the person, from their preferences page".into(), ip: None };
    let mut row = rights::new_row(RightsKind::Access, subscriber.email.clone(), now, &who, now);
    row.subscriber_id = Some(subscriber_id);
    row.status = RightsStatus::Completed;
    row.outcome = "copy mailed to the address on request from the preferences page".into();
    row.closed_at = Some(now);
    rights::insert(&mut tx, &row, &who).await?;
    tx.commit().await?;
    ctx.outbox_wakeup.notify_one();
    Ok(())
}

fn parse_stored(email: &str) -> Result<EmailAddress> {
    EmailAddress::parse(email).map_err(|e| ServiceError::Conflict(format!("stored address unusable: {}", e.0)))
}
