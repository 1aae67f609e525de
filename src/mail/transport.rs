//! Where composed messages go: an SMTP relay, or a folder of `.eml` files
//! (the zero-configuration default, handy for trying Tidings out).

use super::smtp::{SmtpPool, SmtpSettings};
use std::path::PathBuf;

/// How a send attempt failed, which decides what the caller does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// 4xx from the server: try this message again later.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// 5xx from the server: this message will never be accepted.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// The relay could not be reached, or the connection broke: nothing is
    /// wrong with the message. Pause, then retry.
    #[error("mail server unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(SmtpPool),
    /// Each message becomes `<dir>/<name>.eml`.
    Folder(PathBuf),
}

impl Transport {
    /// SMTP when a URL is configured, else the outbox folder.
    pub fn from_config(
        smtp_url: Option<&url::Url>,
        outbox_dir: &std::path::Path,
        pool_size: usize,
    ) -> Result<Self, String> {
        match smtp_url {
            Some(url) => Ok(Transport::Smtp(SmtpPool::new(SmtpSettings::from_url(url)?, pool_size))),
            None => Ok(Transport::Folder(outbox_dir.to_owned())),
        }
    }

    /// Sends one message. `name` identifies it (the outbox row id): the
    /// folder transport uses it as the file name, so a retried message
    /// replaces its earlier copy rather than adding a second.
    pub async fn send(&self, name: &str, from: &str, to: &str, message: &[u8]) -> Result<String, SendError> {
        match self {
            Transport::Smtp(pool) => pool.send(from, to, message).await,
            Transport::Folder(dir) => write_eml(dir, name, message).await,
        }
    }

    /// For `tidings check`: can we reach the relay (or write the folder)?
    pub async fn check(&self) -> Result<String, SendError> {
        match self {
            Transport::Smtp(pool) => pool.check().await,
            Transport::Folder(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| SendError::Unavailable(e.to_string()))?;
                Ok(format!("writing mail to {}", dir.display()))
            }
        }
    }
}

async fn write_eml(dir: &std::path::Path, name: &str, message: &[u8]) -> Result<String, SendError> {
    let unavailable = |e: std::io::Error| SendError::Unavailable(format!("{}: {e}", dir.display()));
    tokio::fs::create_dir_all(dir).await.map_err(unavailable)?;
    let safe: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    let final_path = dir.join(format!("{safe}.eml"));
    // Write then rename, so a reader never sees half a message and a crash
    // never leaves one.
    let tmp = dir.join(format!(".{safe}.eml.tmp"));
    let written = match tokio::fs::write(&tmp, message).await {
        Ok(()) => tokio::fs::rename(&tmp, &final_path).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        // A write cut short by a full disk leaves half a message, holding
        // space, and kept for good if that message is never retried (its
        // person erased meanwhile, say): remove it. The message is retried
        // whole.
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(unavailable(e));
    }
    Ok(format!("written to {}", final_path.display()))
}
