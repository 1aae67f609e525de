//! `TCP_NODELAY` on the PostgreSQL connections.
//!
//! sqlx 0.9.0 stopped setting it (sqlx issue #4335; fixed upstream by pull
//! request #4336, not yet in a release), so a statement that does not fit in
//! one TCP segment has its last segment held back by Nagle's algorithm until
//! the server's delayed ACK: a 40 ms stall. Measured on the subscribe path's
//! group commit, where a batch's confirmation mails make statements of tens
//! of kilobytes: 774 subscribes/s over TCP against 1,981/s over the Unix
//! socket. sqlx exposes no socket, so each new connection's socket is found
//! among the process's open descriptors by its peer's port. Setting the
//! option on another connection to the same port is harmless. Remove this
//! once sqlx sets it again.

/// Sets `TCP_NODELAY` on every TCP socket of this process connected to
/// `port` that does not have it yet. Returns how many it set.
#[cfg(target_os = "linux")]
pub(super) fn set_on_sockets_to(port: u16) -> usize {
    use std::os::fd::{BorrowedFd, RawFd};
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return 0 };
    let mut set = 0;
    for entry in entries.flatten() {
        let Some(raw) = entry.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()) else { continue };
        if !std::fs::read_link(entry.path()).is_ok_and(|target| target.to_string_lossy().starts_with("socket:")) {
            continue;
        }
        // SAFETY: the descriptor was open a moment ago and is only borrowed
        // for the calls below; were another thread to close it meanwhile,
        // they would fail with EBADF or act on whatever reuses the number,
        // and the port check keeps that to a socket to the same server.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        let socket = socket2::SockRef::from(&fd);
        let to_port = socket.peer_addr().ok().and_then(|a| a.as_socket()).is_some_and(|a| a.port() == port);
        if to_port && socket.tcp_nodelay().is_ok_and(|on| !on) && socket.set_tcp_nodelay(true).is_ok() {
            set += 1;
        }
    }
    set
}

#[cfg(not(target_os = "linux"))]
pub(super) fn set_on_sockets_to(_port: u16) -> usize {
    0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn sets_nodelay_on_sockets_to_the_port_and_only_those() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let to_port = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let elsewhere = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert!(!to_port.nodelay().unwrap());
        assert!(super::set_on_sockets_to(port) >= 1);
        assert!(to_port.nodelay().unwrap());
        assert!(!elsewhere.nodelay().unwrap());
    }
}
