//! A small pool of SMTP connections built on sockets we open ourselves.
//!
//! Why not lettre's own pool: lettre 0.11 never sets `TCP_NODELAY`, so on a
//! reused connection each message stalls ~40 ms on Nagle + delayed ACK
//! (measured: 23 messages/s per connection). We open the `TcpStream`, set
//! `nodelay`, and hand it to `AsyncSmtpConnection::connect_with_transport`;
//! STARTTLS and implicit TLS (smtps) are layered on that same socket.
//!
//! Self-hosters often relay through an internal server whose certificate comes
//! from their own CA: `ca_file=/path/to/ca.pem` in the URL adds that CA to the
//! trusted roots (on top of the public ones).
//!
//! Everything that goes wrong while opening a session (connecting, STARTTLS,
//! the certificate, AUTH) is [`SendError::Unavailable`]: it is the relay's or
//! our configuration's fault, never the message's, so messages wait for the fix
//! instead of being failed for good.

use super::transport::SendError;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[expect(deprecated, reason = "implicit TLS on our own socket needs lettre's stream type")]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};

/// How to encrypt the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text (a relay on loopback or a private network).
    None,
    /// Upgrade with STARTTLS if the server offers it.
    Opportunistic,
    /// Upgrade with STARTTLS, or fail.
    Required,
    /// TLS from the first byte (smtps, usually port 465).
    Implicit,
}

/// Parsed from `TIDINGS_SMTP_URL`.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub credentials: Option<(String, String)>,
    pub timeout: Duration,
    /// Where the extra trusted CA came from (`ca_file=`), for messages.
    pub ca_file: Option<PathBuf>,
    /// That CA, read once when the settings are parsed so a bad path fails at
    /// start-up rather than on the first message.
    pub ca_certificate: Option<Certificate>,
}

impl std::fmt::Debug for SmtpSettings {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl SmtpSettings {
    /// `smtp://[user:pass@]host[:port][?tls=none|opportunistic|starttls]`
    /// (default port 25, no TLS) or `smtps://[user:pass@]host[:port]`
    /// (default port 465, implicit TLS). Both take `ca_file=PATH` (percent-
    /// encoded, as query values are: `%20` or `+` for a space, `%2B` for `+`)
    /// naming a PEM file of extra CA certificates to trust.
    pub fn from_url(url: &url::Url) -> Result<Self, String> {
        let host = url.host_str().ok_or("TIDINGS_SMTP_URL needs a host")?.trim_matches(['[', ']']).to_owned();
        let implicit = url.scheme() == "smtps";
        let mut tls = if implicit { TlsMode::Implicit } else { TlsMode::None };
        let mut ca_file = None;
        for (k, v) in url.query_pairs() {
            if k == "ca_file" {
                ca_file = Some(PathBuf::from(v.as_ref()));
            } else if k == "tls" && !implicit {
                tls = match v.as_ref() {
                    "none" => TlsMode::None,
                    "opportunistic" => TlsMode::Opportunistic,
                    "starttls" | "required" => TlsMode::Required,
                    other => {
                        return Err(format!("TIDINGS_SMTP_URL: unknown tls={other} (none, opportunistic, starttls)"));
                    }
                };
            }
        }
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "TIDINGS_SMTP_URL: bad percent-encoding in the credentials".to_owned())
        };
        let credentials = match (url.username(), url.password()) {
            ("", _) => None,
            (u, p) => Some((decode(u)?, decode(p.unwrap_or(""))?)),
        };
        let ca_certificate = match &ca_file {
            Some(path) => Some(read_ca_file(path)?),
            None => None,
        };
        Ok(Self {
            port: url.port().unwrap_or(if implicit { 465 } else { 25 }),
            host,
            tls,
            credentials,
            timeout: Duration::from_secs(30),
            ca_file,
            ca_certificate,
        })
    }

    /// TLS settings for this relay: the public roots plus our `ca_file`, if any.
    fn tls_parameters(&self) -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(self.host.clone());
        if let Some(ca) = &self.ca_certificate {
            builder = builder.add_root_certificate(ca.clone());
        }
        builder.build().map_err(|e| format!("cannot set up TLS for {}: {e}", self.host))
    }
}

/// Reads the PEM named by `ca_file=`.
fn read_ca_file(path: &std::path::Path) -> Result<Certificate, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("TIDINGS_SMTP_URL: cannot read ca_file {shown}: {e}"))?;
    // lettre accepts a PEM without any certificate in it and would then
    // silently trust only the public roots: say so instead.
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(format!("TIDINGS_SMTP_URL: ca_file {shown} holds no PEM certificate"));
    }
    Certificate::from_pem(&pem).map_err(|e| format!("TIDINGS_SMTP_URL: ca_file {shown}: {e}"))
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// Reusable SMTP sessions, at most `size` at once.
#[derive(Clone)]
pub struct SmtpPool {
    settings: Arc<SmtpSettings>,
    idle: Arc<Mutex<Vec<Idle>>>,
    permits: Arc<Semaphore>,
    hello: ClientId,
}

impl std::fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpPool").field("settings", &self.settings).finish()
    }
}

/// Servers drop idle sessions after a while; don't reuse one older than this.
const MAX_IDLE: Duration = Duration::from_secs(30);

impl SmtpPool {
    pub fn new(settings: SmtpSettings, size: usize) -> Self {
        Self {
            settings: Arc::new(settings),
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(size.max(1))),
            hello: ClientId::default(),
        }
    }

    /// Sends one message to one recipient; returns the server's reply.
    pub async fn send(&self, from: &str, to: &str, message: &[u8]) -> Result<String, SendError> {
        let envelope = Envelope::new(
            Some(from.parse().map_err(|e| SendError::Permanent(format!("bad sender: {e}")))?),
            vec![to.parse().map_err(|e| SendError::Permanent(format!("bad recipient: {e}")))?],
        )
        .map_err(|e| SendError::Permanent(e.to_string()))?;
        let _permit = self.permits.acquire().await.map_err(|_| SendError::Unavailable("pool closed".into()))?;

        // A pooled session may have been closed by the server since we last
        // used it; if so, that is no fault of the message: retry once on a
        // fresh session.
        if let Some(mut conn) = self.take_idle().await {
            match self.send_on(&mut conn, &envelope, message).await {
                Err(SendError::Unavailable(_)) => {}
                outcome => {
                    self.put_back(conn).await;
                    return outcome;
                }
            }
        }
        let mut conn = self.connect().await?;
        let outcome = self.send_on(&mut conn, &envelope, message).await;
        self.put_back(conn).await;
        outcome
    }

    async fn send_on(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<String, SendError> {
        match tokio::time::timeout(self.settings.timeout, conn.send(envelope, message)).await {
            Ok(Ok(response)) => Ok(format!("{} {}", response.code(), response.message().collect::<Vec<_>>().join(" "))),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => {
                conn.abort().await;
                Err(SendError::Unavailable("timed out talking to the mail server".into()))
            }
        }
    }

    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().await;
        while let Some(entry) = idle.pop() {
            if entry.since.elapsed() < MAX_IDLE && !entry.conn.has_broken() {
                return Some(entry.conn);
            }
        }
        None
    }

    async fn put_back(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.idle.lock().await.push(Idle { conn, since: Instant::now() });
        }
    }

    /// Opens, greets, encrypts and authenticates a new session.
    ///
    /// Every failure is `Unavailable`, even a 5xx reply such as a 535 to AUTH
    /// (which lettre calls permanent): see the module docs.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let s = &self.settings;
        let relay = format!("{}:{}", s.host, s.port);
        let work = async {
            let tcp = connect_nodelay(&s.host, s.port).await?;
            let mut conn = if s.tls == TlsMode::Implicit {
                #[expect(deprecated, reason = "lettre offers no other way to wrap a socket we opened in TLS")]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                stream
                    .upgrade_tls(s.tls_parameters().map_err(SendError::Unavailable)?)
                    .await
                    .map_err(|e| SendError::Unavailable(format!("TLS handshake with {relay} failed: {e}")))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(TlsStream(stream)), &self.hello).await
            } else {
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await
            }
            .map_err(|e| SendError::Unavailable(format!("greeting or EHLO with {relay} failed: {e}")))?;
            let upgrade = match s.tls {
                TlsMode::Required if !conn.can_starttls() => {
                    // Sending in clear text instead would defeat the setting.
                    return Err(SendError::Unavailable(format!(
                        "{relay} does not offer STARTTLS, which TIDINGS_SMTP_URL requires"
                    )));
                }
                TlsMode::Required => true,
                TlsMode::Opportunistic => conn.can_starttls(),
                TlsMode::None | TlsMode::Implicit => false,
            };
            if upgrade {
                conn.starttls(s.tls_parameters().map_err(SendError::Unavailable)?, &self.hello)
                    .await
                    .map_err(|e| SendError::Unavailable(format!("STARTTLS with {relay} failed: {e}")))?;
            }
            if let Some((user, pass)) = &s.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], &Credentials::new(user.clone(), pass.clone()))
                    .await
                    .map_err(|e| SendError::Unavailable(format!("{relay} refused our credentials for {user}: {e}")))?;
            }
            Ok(conn)
        };
        tokio::time::timeout(s.timeout, work)
            .await
            .unwrap_or_else(|_| Err(SendError::Unavailable("timed out connecting to the mail server".into())))
    }

    /// Connects and says goodbye, for `tidings check`.
    pub async fn check(&self) -> Result<String, SendError> {
        let mut conn = self.connect().await?;
        let _ = conn.quit().await;
        Ok(format!("connected to {}:{}", self.settings.host, self.settings.port))
    }
}

/// Opens a TCP connection with Nagle's algorithm off (see the module docs).
pub async fn connect_nodelay(host: &str, port: u16) -> Result<TcpStream, SendError> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| SendError::Unavailable(format!("cannot connect to {host}:{port}: {e}")))?;
    stream.set_nodelay(true).map_err(|e| SendError::Unavailable(format!("cannot set TCP_NODELAY: {e}")))?;
    Ok(stream)
}

/// Classifies an error from the MAIL/RCPT/DATA transaction.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let status = e.status().map(u16::from);
    // 530 "authentication required" (or "must issue STARTTLS first") is about
    // how we connect, not about this message: it must not fail it for good.
    if status == Some(530) {
        SendError::Unavailable(format!("the relay wants us to authenticate or encrypt first: {e}"))
    } else if status == Some(421) {
        // "Service not available, closing transmission channel" (RFC 5321
        // 3.8): the relay is going away, whichever command it answers. Taken
        // as a retry of this message, an outage would spend every queued
        // message's attempts and open a connection per message.
        SendError::Unavailable(format!("the relay is not taking mail now: {e}"))
    } else if e.is_permanent() {
        SendError::Permanent(e.to_string())
    } else if e.is_transient() {
        SendError::Transient(e.to_string())
    } else {
        SendError::Unavailable(e.to_string())
    }
}

/// Lets lettre's TLS-wrapped stream (which speaks the `futures-io` traits)
/// be handed back to lettre as a tokio stream for implicit TLS.
#[derive(Debug)]
#[expect(deprecated, reason = "lettre's own TLS stream type; see TlsStream's doc")]
struct TlsStream(AsyncNetworkStream);

impl AsyncRead for TlsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures_io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms_from_the_design() {
        let s =
            SmtpSettings::from_url(&"smtp://user:p%40ss@mail.example.org:587?tls=starttls".parse().unwrap()).unwrap();
        assert_eq!((s.host.as_str(), s.port, s.tls), ("mail.example.org", 587, TlsMode::Required));
        assert_eq!(s.credentials, Some(("user".into(), "p@ss".into())));
        assert!(!format!("{s:?}").contains("p@ss"), "the password never reaches a log");
        let s = SmtpSettings::from_url(&"smtps://relay.example.org".parse().unwrap()).unwrap();
        assert_eq!((s.port, s.tls), (465, TlsMode::Implicit));
        let s = SmtpSettings::from_url(&"smtp://127.0.0.1:2525".parse().unwrap()).unwrap();
        assert_eq!((s.port, s.tls, s.credentials, s.ca_file), (2525, TlsMode::None, None, None));
        assert!(SmtpSettings::from_url(&"smtp://h?tls=maybe".parse().unwrap()).is_err());

        // ca_file: a percent-encoded path, read when the settings are parsed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("our ca.pem");
        let ca = rcgen::generate_simple_self_signed(vec!["relay.internal".to_owned()]).unwrap();
        std::fs::write(&path, ca.cert.pem()).unwrap();
        let encoded = percent_encoding::utf8_percent_encode(path.to_str().unwrap(), percent_encoding::NON_ALPHANUMERIC);
        let s = SmtpSettings::from_url(&format!("smtps://relay.internal?ca_file={encoded}").parse().unwrap()).unwrap();
        assert_eq!((s.tls, s.ca_file.as_deref()), (TlsMode::Implicit, Some(path.as_path())));
        assert!(s.ca_certificate.is_some());
        assert!(s.tls_parameters().is_ok());
        assert!(format!("{s:?}").contains("our ca.pem"));
        let s = SmtpSettings::from_url(
            &format!("smtp://relay.internal:587?tls=starttls&ca_file={encoded}").parse().unwrap(),
        )
        .unwrap();
        assert_eq!((s.port, s.tls, s.ca_file.as_deref()), (587, TlsMode::Required, Some(path.as_path())));

        // A missing or certificate-less file is a start-up error naming the setting.
        let missing = SmtpSettings::from_url(&"smtp://h?ca_file=%2Fno%2Fsuch%2Fca.pem".parse().unwrap()).unwrap_err();
        assert!(missing.contains("TIDINGS_SMTP_URL") && missing.contains("/no/such/ca.pem"), "{missing}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let url = format!("smtp://h?ca_file={}", junk.display());
        let empty = SmtpSettings::from_url(&url.parse().unwrap()).unwrap_err();
        assert!(empty.contains("TIDINGS_SMTP_URL") && empty.contains("no PEM certificate"), "{empty}");
    }

    #[tokio::test]
    async fn every_smtp_socket_has_nodelay_set() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = connect_nodelay("127.0.0.1", port).await.unwrap();
        assert!(stream.nodelay().unwrap());
    }

    #[tokio::test]
    async fn an_unreachable_relay_is_unavailable_not_a_message_failure() {
        // Bind then drop, so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pool =
            SmtpPool::new(SmtpSettings::from_url(&format!("smtp://127.0.0.1:{port}").parse().unwrap()).unwrap(), 1);
        let err = pool.send("a@example.org", "b@example.org", b"Subject: x\r\n\r\nhi\r\n").await.unwrap_err();
        assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    }
}
