//! A small POP3 client (RFC 1939, with STLS from RFC 2595) for the bounce
//! mailbox: log in, list, retrieve, delete, quit. Deletions take effect only
//! at QUIT (the protocol's UPDATE state), so a connection that breaks leaves
//! every message where it was.
//!
//! `pop3s://user:pass@host[:995]` uses implicit TLS; `pop3://…?tls=starttls`
//! upgrades with STLS; plain `pop3://` sends the password in clear and is
//! for a mailbox on the same machine or a trusted network. TLS is rustls
//! with the public (webpki) roots, plus `ca_file=PATH` (a PEM file) for a
//! private CA.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The largest message retrieved (larger ones are left in the mailbox).
pub const MAX_MESSAGE_BYTES: u64 = 10 * 1024 * 1024;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
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
enum Tls {
    Plain,
    Implicit,
    Upgrade,
}

/// Where the mailbox is and how to log in.
#[derive(Clone)]
pub struct Pop3Settings {
    host: String,
    port: u16,
    tls: Tls,
    user: String,
    password: String,
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Pop3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &"…")
            .finish()
    }
}

fn decode(s: &str) -> Result<String, Pop3Error> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Pop3Error::Config("bad percent-encoding in the credentials".into()))
}

impl Pop3Settings {
    pub fn from_url(url: &url::Url) -> Result<Self, Pop3Error> {
        let implicit = match url.scheme() {
            "pop3s" => true,
            "pop3" => false,
            other => return Err(Pop3Error::Config(format!("unknown scheme {other}: use pop3s:// or pop3://"))),
        };
        let host = url.host_str().ok_or_else(|| Pop3Error::Config("a host is needed".into()))?;
        let mut tls = if implicit { Tls::Implicit } else { Tls::Plain };
        let mut ca_file = None;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("ca_file", path) => ca_file = Some(PathBuf::from(path)),
                ("tls", "starttls") if !implicit => tls = Tls::Upgrade,
                ("tls", "none") if !implicit => tls = Tls::Plain,
                ("tls", other) => return Err(Pop3Error::Config(format!("unknown tls={other} (starttls or none)"))),
                _ => {}
            }
        }
        Ok(Self {
            host: host.trim_matches(['[', ']']).to_owned(),
            port: url.port().unwrap_or(if implicit { 995 } else { 110 }),
            tls,
            user: decode(url.username())?,
            password: decode(url.password().unwrap_or(""))?,
            ca_file,
        })
    }

    fn tls_connector(&self) -> Result<tokio_rustls::TlsConnector, Pop3Error> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = &self.ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| Pop3Error::Config(format!("cannot read ca_file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Pop3Error::Config(format!("ca_file {} holds no PEM certificate", path.display())));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| Pop3Error::Config(format!("ca_file {}: {e}", path.display())))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Pop3Error::Tls(self.host.clone(), e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

/// Anything a session can run over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A logged-in session (the TRANSACTION state).
pub struct Pop3Session {
    host: String,
    stream: BufReader<Box<dyn Io>>,
}

async fn timed<T>(host: &str, f: impl Future<Output = std::io::Result<T>>) -> Result<T, Pop3Error> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Pop3Error::Io(host.to_owned(), e)),
        Err(_) => Err(Pop3Error::Timeout(host.to_owned())),
    }
}

impl Pop3Session {
    /// Connects, (upgrades to TLS,) and logs in with USER/PASS.
    pub async fn connect(settings: &Pop3Settings) -> Result<Self, Pop3Error> {
        let host = settings.host.clone();
        let tcp = timed(&host, TcpStream::connect((settings.host.as_str(), settings.port))).await?;
        let name = ServerName::try_from(settings.host.clone())
            .map_err(|e| Pop3Error::Tls(host.clone(), format!("not a valid server name: {e}")))?;
        let stream: Box<dyn Io> = if settings.tls == Tls::Implicit {
            let tls = timed(&host, settings.tls_connector()?.connect(name.clone(), tcp)).await?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let mut session = Self { host: host.clone(), stream: BufReader::new(stream) };
        session.reply("greeting").await?;
        if settings.tls == Tls::Upgrade {
            session.command("STLS", "STLS").await?;
            if !session.stream.buffer().is_empty() {
                return Err(Pop3Error::Protocol(host, "data arrived before the TLS handshake".into()));
            }
            let plain = session.stream.into_inner();
            let tls = timed(&host, settings.tls_connector()?.connect(name, plain)).await?;
            session = Self { host: host.clone(), stream: BufReader::new(Box::new(tls)) };
        }
        session.command(&format!("USER {}", settings.user), "USER").await?;
        session.command(&format!("PASS {}", settings.password), "PASS").await?;
        Ok(session)
    }

    async fn line(&mut self) -> Result<String, Pop3Error> {
        let mut buf = Vec::new();
        let n = timed(&self.host, (&mut self.stream).take(64 * 1024).read_until(b'\n', &mut buf)).await?;
        if n == 0 {
            return Err(Pop3Error::Protocol(self.host.clone(), "the server closed the connection".into()));
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    async fn reply(&mut self, command: &'static str) -> Result<String, Pop3Error> {
        let line = self.line().await?;
        match line.strip_prefix("+OK") {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => {
                Err(Pop3Error::Refused { host: self.host.clone(), command, reply: line.chars().take(200).collect() })
            }
        }
    }

    async fn command(&mut self, text: &str, name: &'static str) -> Result<String, Pop3Error> {
        let host = self.host.clone();
        timed(&host, async {
            self.stream.get_mut().write_all(format!("{text}\r\n").as_bytes()).await?;
            self.stream.get_mut().flush().await
        })
        .await?;
        self.reply(name).await
    }

    /// The lines of a multi-line answer up to the terminating ".", with
    /// byte-stuffing removed.
    async fn multiline(&mut self, limit: u64) -> Result<Vec<u8>, Pop3Error> {
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = timed(&self.host, (&mut self.stream).take(1024 * 1024).read_until(b'\n', &mut buf)).await?;
            if n == 0 {
                return Err(Pop3Error::Protocol(self.host.clone(), "the connection closed inside a message".into()));
            }
            let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content == b"." {
                return Ok(out);
            }
            let content = content.strip_prefix(b".").unwrap_or(content);
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
            if out.len() as u64 > limit {
                return Err(Pop3Error::Protocol(self.host.clone(), "a message is larger than announced".into()));
            }
        }
    }

    /// Message numbers and sizes (LIST).
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.command("LIST", "LIST").await?;
        let text = self.multiline(16 * 1024 * 1024).await?;
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(&text).lines() {
            let mut parts = line.split_whitespace();
            match (parts.next().and_then(|n| n.parse().ok()), parts.next().and_then(|s| s.parse().ok())) {
                (Some(n), Some(size)) => out.push((n, size)),
                _ => return Err(Pop3Error::Protocol(self.host.clone(), format!("unreadable LIST line {line:?}"))),
            }
        }
        Ok(out)
    }

    /// One whole message (RETR).
    pub async fn retrieve(&mut self, n: u32) -> Result<Vec<u8>, Pop3Error> {
        self.command(&format!("RETR {n}"), "RETR").await?;
        self.multiline(MAX_MESSAGE_BYTES * 2).await
    }

    /// Marks a message for deletion at QUIT (DELE).
    pub async fn delete(&mut self, n: u32) -> Result<(), Pop3Error> {
        self.command(&format!("DELE {n}"), "DELE").await.map(|_| ())
    }

    /// Ends the session; the server now removes what was marked.
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.command("QUIT", "QUIT").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_port_tls_and_credentials() {
        let s = Pop3Settings::from_url(&"pop3s://bounces%40x.org:p%40ss@mail.x.org".parse().unwrap()).unwrap();
        assert_eq!(
            (s.port, s.tls, s.user.as_str(), s.password.as_str()),
            (995, Tls::Implicit, "bounces@x.org", "p@ss")
        );
        let s = Pop3Settings::from_url(&"pop3://u:p@127.0.0.1:1110?tls=starttls".parse().unwrap()).unwrap();
        assert_eq!((s.port, s.tls), (1110, Tls::Upgrade));
        assert_eq!(Pop3Settings::from_url(&"pop3://u:p@h".parse().unwrap()).unwrap().port, 110);
        assert!(Pop3Settings::from_url(&"imap://u:p@h".parse().unwrap()).is_err());
        assert!(Pop3Settings::from_url(&"pop3://u:p@h?tls=maybe".parse().unwrap()).is_err());
        assert!(!format!("{s:?}").contains("p@ss"));
    }
}
