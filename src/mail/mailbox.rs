//! A bounce mailbox on a POP3 ([`super::pop3`]) or IMAP ([`super::imap`])
//! server: its settings from `TIDINGS_BOUNCE_MAILBOX_URL`, the connection
//! (TLS with rustls: the public webpki roots plus `ca_file=PATH`), and one
//! [`Session`] API over both protocols: list, retrieve, mark for deletion,
//! finish. Marked messages go only when the session finishes (POP3 QUIT,
//! IMAP EXPUNGE), so a broken connection leaves every message in place.
//!
//! URL forms: `pop3s://user:pass@host[:995]` and `imaps://user:pass@host[:993][/FOLDER]`
//! use implicit TLS; `pop3://…?tls=starttls` and `imap://…?tls=starttls`
//! upgrade (STLS / STARTTLS); plain `pop3://` and `imap://` send the password
//! in clear and are for a server on the same machine or a trusted network.
//! The IMAP folder defaults to INBOX.

use super::imap::ImapSession;
use super::pop3::Pop3Session;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The largest message retrieved (larger ones are left in the mailbox).
pub const MAX_MESSAGE_BYTES: u64 = 10 * 1024 * 1024;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("bounce mailbox URL: {0}")]
    Config(String),
    #[error("bounce mailbox {0}: {1}")]
    Io(String, std::io::Error),
    #[error("bounce mailbox {0}: timed out")]
    Timeout(String),
    #[error("bounce mailbox {host}: the server refused {command}: {reply}")]
    Refused { host: String, command: &'static str, reply: String },
    #[error("bounce mailbox {0}: TLS: {1}")]
    Tls(String, String),
    #[error("bounce mailbox {0}: {1}")]
    Protocol(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tls {
    Plain,
    Implicit,
    Upgrade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Pop3,
    Imap,
}

/// Where the mailbox is and how to log in.
#[derive(Clone)]
pub struct MailboxSettings {
    pub(crate) protocol: Protocol,
    pub(crate) host: String,
    port: u16,
    pub(crate) tls: Tls,
    pub(crate) user: String,
    pub(crate) password: String,
    ca_file: Option<PathBuf>,
    /// The IMAP folder (POP3 has one mailbox).
    pub(crate) folder: String,
}

impl std::fmt::Debug for MailboxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxSettings")
            .field("protocol", &self.protocol)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &"…")
            .field("folder", &self.folder)
            .finish()
    }
}

fn decode(s: &str) -> Result<String, MailboxError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| MailboxError::Config("bad percent-encoding".into()))
}

impl MailboxSettings {
    pub fn from_url(url: &url::Url) -> Result<Self, MailboxError> {
        let (protocol, implicit, port) = match url.scheme() {
            "pop3s" => (Protocol::Pop3, true, 995),
            "pop3" => (Protocol::Pop3, false, 110),
            "imaps" => (Protocol::Imap, true, 993),
            "imap" => (Protocol::Imap, false, 143),
            other => {
                return Err(MailboxError::Config(format!(
                    "unknown scheme {other}: use pop3s://, pop3://, imaps:// or imap://"
                )));
            }
        };
        let host = url.host_str().ok_or_else(|| MailboxError::Config("a host is needed".into()))?;
        let mut tls = if implicit { Tls::Implicit } else { Tls::Plain };
        let mut ca_file = None;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("ca_file", path) => ca_file = Some(PathBuf::from(path)),
                ("tls", "starttls") if !implicit => tls = Tls::Upgrade,
                ("tls", "none") if !implicit => tls = Tls::Plain,
                ("tls", other) => return Err(MailboxError::Config(format!("unknown tls={other} (starttls or none)"))),
                _ => {}
            }
        }
        let (user, password) = (decode(url.username())?, decode(url.password().unwrap_or(""))?);
        if user.is_empty() || user.chars().chain(password.chars()).any(char::is_control) {
            return Err(MailboxError::Config(
                "a user name is needed, and neither it nor the password may hold control characters".into(),
            ));
        }
        let folder = decode(url.path().trim_matches('/'))?;
        if folder.chars().any(char::is_control) {
            return Err(MailboxError::Config("the folder name may not hold control characters".into()));
        }
        let folder = if folder.is_empty() { "INBOX".to_owned() } else { folder };
        if protocol == Protocol::Pop3 && folder != "INBOX" {
            return Err(MailboxError::Config("POP3 has no folders: leave the path empty".into()));
        }
        Ok(Self {
            protocol,
            host: host.trim_matches(['[', ']']).to_owned(),
            port: url.port().unwrap_or(port),
            tls,
            user,
            password,
            ca_file,
            folder,
        })
    }

    fn tls_connector(&self) -> Result<tokio_rustls::TlsConnector, MailboxError> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = &self.ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| MailboxError::Config(format!("cannot read ca_file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(MailboxError::Config(format!("ca_file {} holds no PEM certificate", path.display())));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| MailboxError::Config(format!("ca_file {}: {e}", path.display())))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MailboxError::Tls(self.host.clone(), e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    /// A TCP connection, already TLS when the scheme says so.
    pub(crate) async fn connect(&self) -> Result<Box<dyn Io>, MailboxError> {
        let tcp = timed(&self.host, TcpStream::connect((self.host.as_str(), self.port))).await?;
        Ok(match self.tls {
            Tls::Implicit => self.start_tls(Box::new(tcp)).await?,
            Tls::Plain | Tls::Upgrade => Box::new(tcp),
        })
    }

    /// TLS over an established connection (implicit, or after STLS/STARTTLS).
    pub(crate) async fn start_tls(&self, stream: Box<dyn Io>) -> Result<Box<dyn Io>, MailboxError> {
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| MailboxError::Tls(self.host.clone(), format!("not a valid server name: {e}")))?;
        let tls = timed(&self.host, self.tls_connector()?.connect(name, stream)).await?;
        Ok(Box::new(tls))
    }
}

/// Anything a session can run over: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// `f`, failing after the protocol timeout.
pub(crate) async fn timed<T>(host: &str, f: impl Future<Output = std::io::Result<T>>) -> Result<T, MailboxError> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(MailboxError::Io(host.to_owned(), e)),
        Err(_) => Err(MailboxError::Timeout(host.to_owned())),
    }
}

/// A logged-in session on either protocol. Message ids are POP3 message
/// numbers or IMAP UIDs.
pub enum Session {
    Pop3(Pop3Session),
    Imap(ImapSession),
}

impl Session {
    pub async fn connect(settings: &MailboxSettings) -> Result<Self, MailboxError> {
        Ok(match settings.protocol {
            Protocol::Pop3 => Session::Pop3(Pop3Session::connect(settings).await?),
            Protocol::Imap => Session::Imap(ImapSession::connect(settings).await?),
        })
    }

    /// Message ids and sizes, oldest first (for IMAP, those not yet marked).
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, MailboxError> {
        match self {
            Session::Pop3(s) => s.list().await,
            Session::Imap(s) => s.list().await,
        }
    }

    /// A key per listed message that names it across sessions (POP3 UIDL;
    /// IMAP UIDVALIDITY and UID). Empty when the server cannot say (a POP3
    /// server without UIDL).
    pub async fn unique_ids(&mut self, listed: &[(u32, u64)]) -> Result<HashMap<u32, String>, MailboxError> {
        match self {
            Session::Pop3(s) => Ok(s.unique_ids().await?.unwrap_or_default()),
            Session::Imap(s) => Ok(listed.iter().map(|(uid, _)| (*uid, s.unique_id(*uid))).collect()),
        }
    }

    pub async fn retrieve(&mut self, id: u32) -> Result<Vec<u8>, MailboxError> {
        match self {
            Session::Pop3(s) => s.retrieve(id).await,
            Session::Imap(s) => s.retrieve(id).await,
        }
    }

    /// Marks a message to go when the session finishes.
    pub async fn delete(&mut self, id: u32) -> Result<(), MailboxError> {
        match self {
            Session::Pop3(s) => s.delete(id).await,
            Session::Imap(s) => s.delete(id).await,
        }
    }

    /// Removes the marked messages and logs out.
    pub async fn finish(self) -> Result<(), MailboxError> {
        match self {
            Session::Pop3(s) => s.quit().await,
            Session::Imap(s) => s.finish().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Result<MailboxSettings, MailboxError> {
        MailboxSettings::from_url(&url.parse().unwrap())
    }

    #[test]
    fn urls_choose_protocol_port_tls_folder_and_credentials() {
        let s = settings("pop3s://bounces%40x.org:p%40ss@mail.x.org").unwrap();
        assert_eq!((s.protocol, s.port, s.tls), (Protocol::Pop3, 995, Tls::Implicit));
        assert_eq!((s.user.as_str(), s.password.as_str()), ("bounces@x.org", "p@ss"));
        assert!(!format!("{s:?}").contains("p@ss"), "the password is not shown");
        let s = settings("pop3://u:p@127.0.0.1:1110?tls=starttls").unwrap();
        assert_eq!((s.port, s.tls), (1110, Tls::Upgrade));
        assert_eq!(settings("pop3://u:p@h").unwrap().port, 110);
        let s = settings("imaps://u:p@h/Bounces%20In").unwrap();
        assert_eq!((s.protocol, s.port, s.folder.as_str()), (Protocol::Imap, 993, "Bounces In"));
        assert_eq!(settings("imap://u:p@h").unwrap().folder, "INBOX");
        assert!(settings("http://u:p@h").is_err());
        assert!(settings("pop3://u:p@h?tls=maybe").is_err());
        assert!(settings("pop3://u:p@h/Folder").is_err());
        assert!(settings("pop3://u%0D%0AQUIT:p@h").is_err(), "no command injection through the URL");
    }
}
