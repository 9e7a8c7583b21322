//! Plain TCP clients for the connection tests: slow, silent, or honouring `Connection: close`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long until the server closes `stream` (what it sent before is returned too), or `None`
/// if it is still open after `limit`.
pub fn closed_within(stream: &mut TcpStream, limit: Duration) -> (Option<Duration>, Vec<u8>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (None, received);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return (Some(started.elapsed()), received),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (None, received);
            }
            Err(_) => return (Some(started.elapsed()), received),
        }
    }
}

/// Writes `bytes` one at a time, every `pause`, until they are all sent or the server closed.
pub fn drip(mut stream: TcpStream, bytes: Vec<u8>, pause: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for byte in bytes {
            if stream.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(pause);
        }
    })
}

/// Asks `/v2/health/live` on new connections from a thread until stopped; returns how many
/// answered 200 and how many did not.
pub fn keep_asking(
    address: SocketAddr,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u32, u32)> {
    std::thread::spawn(move || {
        let (mut good, mut bad) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            let response = crate::support::Connection::open(address).request(
                "GET",
                "/v2/health/live",
                &[],
                b"",
            );
            if response.status == 200 {
                good += 1;
            } else {
                bad += 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (good, bad)
    })
}

/// Reads one response's head and body from `stream`; `None` if the connection ends first.
pub fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    Some(head)
}

/// Asks `/v2/health/live` over keep-alive connections as a client that honours
/// `Connection: close` does, until the server takes no more connections; returns the requests
/// answered and those sent on an open connection that got no answer.
pub fn ask_until_refused(address: SocketAddr) -> (u32, u32) {
    let (mut answered, mut cut) = (0, 0);
    'connections: while let Ok(mut stream) = TcpStream::connect(address) {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        loop {
            let request = b"GET /v2/health/live HTTP/1.1\r\nHost: mlhost\r\n\r\n";
            let Some(head) = stream
                .write_all(request)
                .ok()
                .and_then(|()| read_response(&mut stream))
            else {
                cut += 1;
                continue 'connections;
            };
            answered += 1;
            if head.contains("connection: close") {
                continue 'connections;
            }
        }
    }
    (answered, cut)
}
