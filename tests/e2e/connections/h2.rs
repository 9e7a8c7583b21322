//! A raw HTTP/2 client, frame by frame, as a hostile client writes it: it ignores the server's
//! limits instead of queueing its streams as real clients do.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// HTTP/2's connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const ACK: u8 = 1;
const END_HEADERS: u8 = 4;
/// RST_STREAM's code for a stream the server did not take.
pub const REFUSED_STREAM: u32 = 7;
/// SETTINGS_MAX_CONCURRENT_STREAMS.
const MAX_CONCURRENT_STREAMS: u16 = 3;

/// One frame.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// An HTTP/2 connection written by hand.
pub struct RawH2 {
    stream: TcpStream,
    /// What the connection's flow-control window lets the client send.
    window: u64,
}

impl RawH2 {
    /// Connects and sends the preface and an empty SETTINGS frame.
    pub fn connect(address: SocketAddr) -> RawH2 {
        let stream = TcpStream::connect(address).expect("connect");
        // Every connection's window starts at 65535 bytes; the server's WINDOW_UPDATEs add.
        let mut connection = RawH2 {
            stream,
            window: 65_535,
        };
        connection.write(PREFACE);
        connection.frame(SETTINGS, 0, 0, &[]);
        connection
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Writes one frame.
    pub fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut frame = vec![length[1], length[2], length[3], kind, flags];
        frame.extend_from_slice(&stream.to_be_bytes());
        frame.extend_from_slice(payload);
        self.write(&frame);
    }

    /// Opens stream `id`: a gRPC call of `path`, its request not yet sent.
    pub fn open_call(&mut self, id: u32, path: &str) {
        // HPACK: :method POST and :scheme http from the static table, the rest as literals.
        let mut block = vec![0x83, 0x86];
        literal(&mut block, ":path", path);
        literal(&mut block, ":authority", "mlhost");
        literal(&mut block, "content-type", "application/grpc");
        literal(&mut block, "te", "trailers");
        self.frame(HEADERS, END_HEADERS, id, &block);
    }

    /// Sends `bytes` on each of `streams`, in 16 KiB DATA frames, as the connection's
    /// flow-control window allows (reading the server's WINDOW_UPDATEs); `bytes` must fit in a
    /// stream's initial window. Returns whether it all went before the server stopped opening
    /// the window (for 5 s).
    pub fn send_within_window(&mut self, streams: &[u32], bytes: &[u8]) -> bool {
        for &id in streams {
            for chunk in bytes.chunks(16 * 1024) {
                while self.window < chunk.len() as u64 {
                    if self.next(Duration::from_secs(5)).is_none() {
                        return false;
                    }
                }
                self.window -= chunk.len() as u64;
                self.frame(DATA, 0, id, chunk);
            }
        }
        true
    }

    /// The next frame, answering SETTINGS and PING as a client must; `None` at the end of the
    /// connection or when nothing arrives within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Frame> {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut head = [0u8; 9];
        self.stream.read_exact(&mut head).ok()?;
        let length = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0; length];
        self.stream.read_exact(&mut payload).ok()?;
        let frame = Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        };
        match frame.kind {
            SETTINGS if frame.flags & ACK == 0 => self.frame(SETTINGS, ACK, 0, &[]),
            PING if frame.flags & ACK == 0 => {
                let payload = frame.payload.clone();
                self.frame(PING, ACK, 0, &payload);
            }
            WINDOW_UPDATE if frame.stream == 0 => {
                let increment = &frame.payload[..4];
                self.window += u64::from(
                    u32::from_be_bytes([increment[0], increment[1], increment[2], increment[3]])
                        & 0x7fff_ffff,
                );
            }
            _ => {}
        }
        Some(frame)
    }

    /// Reads the server's first SETTINGS frame (and acknowledges it); returns its
    /// SETTINGS_MAX_CONCURRENT_STREAMS, if it has one.
    pub fn server_settings(&mut self) -> Option<u32> {
        let frame = self
            .next(Duration::from_secs(10))
            .expect("the server's SETTINGS");
        assert_eq!(frame.kind, SETTINGS, "{frame:?}");
        frame.payload.chunks(6).find_map(|setting| {
            (u16::from_be_bytes([setting[0], setting[1]]) == MAX_CONCURRENT_STREAMS)
                .then(|| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]))
        })
    }

    /// Reads frames until `quiet` passes without one (or the connection ends); returns the
    /// streams reset with `code`, and whether the server sent GOAWAY.
    pub fn resets(&mut self, code: u32, quiet: Duration) -> (Vec<u32>, bool) {
        let (mut reset, mut goaway) = (Vec::new(), false);
        while let Some(frame) = self.next(quiet) {
            match frame.kind {
                RST_STREAM if frame.payload[..4] == code.to_be_bytes() => reset.push(frame.stream),
                GOAWAY => goaway = true,
                _ => {}
            }
        }
        (reset, goaway)
    }

    /// How long until the server closes the connection (answering SETTINGS and PING meanwhile),
    /// or `None` if it is still open after `limit`.
    pub fn closed_within(&mut self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            self.stream.set_read_timeout(Some(limit)).unwrap();
            let mut head = [0u8; 9];
            match self.stream.read_exact(&mut head) {
                Ok(()) => {
                    let length = usize::from(head[0]) << 16
                        | usize::from(head[1]) << 8
                        | usize::from(head[2]);
                    let mut payload = vec![0; length];
                    if self.stream.read_exact(&mut payload).is_err() {
                        return Some(started.elapsed());
                    }
                }
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return None;
                }
                Err(_) => return Some(started.elapsed()),
            }
        }
        None
    }
}

/// An HPACK literal header field without indexing, with a new name.
fn literal(block: &mut Vec<u8>, name: &str, value: &str) {
    block.push(0);
    for text in [name, value] {
        block.push(u8::try_from(text.len()).expect("a short header"));
        block.extend_from_slice(text.as_bytes());
    }
}
