//! A small pool of SMTP connections built on sockets we open ourselves.
//!
//! Why not lettre's own pool: lettre 0.11 never sets `TCP_NODELAY`, so on a
//! reused connection each message stalls ~40 ms on Nagle + delayed ACK
//! (measured: 23 messages/s per connection). We open the `TcpStream`, set
//! `nodelay`, and hand it to `AsyncSmtpConnection::connect_with_transport`;
//! STARTTLS and implicit TLS (smtps) are layered on that same socket.

use super::transport::SendError;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[expect(deprecated, reason = "implicit TLS on our own socket needs lettre's stream type")]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
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
}

impl std::fmt::Debug for SmtpSettings {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl SmtpSettings {
    /// `smtp://[user:pass@]host[:port][?tls=none|opportunistic|starttls]`
    /// (default port 25, no TLS) or `smtps://[user:pass@]host[:port]`
    /// (default port 465, implicit TLS).
    pub fn from_url(url: &url::Url) -> Result<Self, String> {
        let host = url.host_str().ok_or("TIDINGS_SMTP_URL needs a host")?.trim_matches(['[', ']']).to_owned();
        let implicit = url.scheme() == "smtps";
        let mut tls = if implicit { TlsMode::Implicit } else { TlsMode::None };
        for (k, v) in url.query_pairs() {
            if k == "tls" && !implicit {
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
        Ok(Self {
            port: url.port().unwrap_or(if implicit { 465 } else { 25 }),
            host,
            tls,
            credentials,
            timeout: Duration::from_secs(30),
        })
    }
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
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let s = &self.settings;
        let work = async {
            let tcp = connect_nodelay(&s.host, s.port).await?;
            let tls = || TlsParameters::new(s.host.clone()).map_err(|e| classify(&e));
            let mut conn = if s.tls == TlsMode::Implicit {
                #[expect(deprecated, reason = "lettre offers no other way to wrap a socket we opened in TLS")]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                stream.upgrade_tls(tls()?).await.map_err(|e| classify(&e))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(TlsStream(stream)), &self.hello).await
            } else {
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await
            }
            .map_err(|e| classify(&e))?;
            match s.tls {
                TlsMode::Required => conn.starttls(tls()?, &self.hello).await.map_err(|e| classify(&e))?,
                TlsMode::Opportunistic if conn.can_starttls() => {
                    conn.starttls(tls()?, &self.hello).await.map_err(|e| classify(&e))?
                }
                _ => {}
            }
            if let Some((user, pass)) = &s.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], &Credentials::new(user.clone(), pass.clone()))
                    .await
                    .map_err(|e| classify(&e))?;
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

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
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
        assert_eq!((s.port, s.tls, s.credentials), (2525, TlsMode::None, None));
        assert!(SmtpSettings::from_url(&"smtp://h?tls=maybe".parse().unwrap()).is_err());
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
