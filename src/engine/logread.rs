//! Reading a container's log straight off the engine's Unix socket, for
//! `logs` and `logs -f`: many lines per read instead of one per stream item.
//!
//! The engine flushes every log line as its own HTTP chunk. Through bollard
//! each chunk travels hyper's body channel as a separate item (a wake-up of
//! the reading task and of the connection's task, often on two threads, per
//! line), which made `devenv logs` spend most of its time switching
//! threads. Here one `read` takes whatever the socket holds (hundreds of
//! lines), the chunked body and the engine's 8-byte frame headers are
//! undone in place, and the frames' payloads go out together.
//!
//! What comes out reads line for line as bollard's frames did: each payload
//! ends with a newline (one is added where the engine split a long line
//! across frames), so a reader that splits at newlines sees the same lines.
//! Only Unix sockets are read this way; other transports (TCP, TLS, ssh)
//! keep bollard's stream.

use std::path::PathBuf;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How much one read asks of the socket.
const READ: usize = 64 * 1024;

/// A log request on a Unix socket: `target` is the request's path and
/// query (`/v1.41/containers/ID/logs?…`).
pub(super) struct Request {
    pub socket: PathBuf,
    pub target: String,
}

/// The payloads of the engine's frames as they arrive, several frames per
/// item; the engine's refusal (404, 500, …) as bollard reports it.
pub(super) fn read(
    req: Request,
) -> impl Stream<Item = Result<Bytes, bollard::errors::Error>> + Send + Unpin {
    Box::pin(futures_util::stream::unfold(
        State::Start(req),
        |state| async move {
            let mut reader = match state {
                State::Start(req) => match Reader::open(req).await {
                    Ok(r) => r,
                    Err(e) => return Some((Err(e), State::Over)),
                },
                State::Reading(r) => r,
                State::Over => return None,
            };
            match reader.next().await {
                Ok(Some(payloads)) => Some((Ok(payloads), State::Reading(reader))),
                Ok(None) => None,
                Err(e) => Some((Err(e), State::Over)),
            }
        },
    ))
}

enum State {
    Start(Request),
    Reading(Box<Reader>),
    Over,
}

/// How the response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// `Transfer-Encoding: chunked`: at a chunk's size line.
    ChunkSize,
    /// Inside a chunk, this many bytes to go.
    ChunkData(usize),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// `Content-Length`: this many bytes to go.
    Length(usize),
    /// Neither: the body ends with the connection.
    UntilClose,
    /// The last chunk (or byte) came.
    Done,
}

/// Where the frame decoder stands (as bollard's `NewlineLogOutputDecoder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Header,
    Payload(usize),
}

struct Reader {
    sock: UnixStream,
    /// Bytes read and not yet taken out of the HTTP body.
    raw: BytesMut,
    body: Body,
    /// The body's bytes, not yet a whole frame.
    frames: BytesMut,
    frame: Frame,
}

impl Reader {
    async fn open(req: Request) -> Result<Box<Reader>, bollard::errors::Error> {
        let mut sock = UnixStream::connect(&req.socket).await?;
        let head = format!(
            "GET {} HTTP/1.1\r\nHost: docker\r\nUser-Agent: devenv\r\n\r\n",
            req.target
        );
        sock.write_all(head.as_bytes()).await?;
        let mut raw = BytesMut::with_capacity(READ);
        let (status, body) = loop {
            if let Some(parsed) = response_head(&mut raw)? {
                break parsed;
            }
            if sock.read_buf(&mut raw).await? == 0 {
                return Err(cut_short());
            }
        };
        let mut reader = Box::new(Reader {
            sock,
            raw,
            body,
            frames: BytesMut::with_capacity(READ),
            frame: Frame::Header,
        });
        if !(200..300).contains(&status) {
            return Err(reader.refusal(status).await);
        }
        Ok(reader)
    }

    /// The engine's error answer, read whole, in bollard's words.
    async fn refusal(&mut self, status: u16) -> bollard::errors::Error {
        let mut text = Vec::new();
        loop {
            match self.fill().await {
                Ok(true) => {
                    text.extend_from_slice(&self.frames);
                    self.frames.clear();
                }
                Ok(false) => break,
                Err(e) => return e,
            }
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        #[derive(serde::Deserialize)]
        struct Said {
            message: String,
        }
        let message = match serde_json::from_str::<Said>(&text) {
            Ok(said) => said.message,
            Err(_) => text,
        };
        bollard::errors::Error::DockerResponseServerError {
            status_code: status,
            message,
        }
    }

    /// Reads once and moves the body's bytes into `frames`; false at the
    /// body's end.
    async fn fill(&mut self) -> Result<bool, bollard::errors::Error> {
        loop {
            let before = self.frames.len();
            unchunk(&mut self.body, &mut self.raw, &mut self.frames)?;
            if self.frames.len() > before {
                return Ok(true);
            }
            if self.body == Body::Done {
                return Ok(false);
            }
            self.raw.reserve(READ);
            if self.sock.read_buf(&mut self.raw).await? == 0 {
                return match self.body {
                    Body::UntilClose => {
                        self.body = Body::Done;
                        Ok(false)
                    }
                    _ => Err(cut_short()),
                };
            }
        }
    }

    /// The next payloads, or `None` once the log ends.
    async fn next(&mut self) -> Result<Option<Bytes>, bollard::errors::Error> {
        let mut out = BytesMut::new();
        loop {
            let more = self.fill().await?;
            if !more {
                // What is left of a frame goes out as it is, as bollard does.
                if !self.frames.is_empty() {
                    let rest = self.frames.split();
                    payload(&mut out, &rest);
                }
                return Ok((!out.is_empty()).then(|| out.freeze()));
            }
            out.reserve(self.frames.len());
            deframe(&mut self.frame, &mut self.frames, &mut out);
            if !out.is_empty() {
                return Ok(Some(out.freeze()));
            }
        }
    }
}

/// The status and how the body is delimited, once the whole head is in `raw`
/// (which then holds only the body's bytes).
fn response_head(raw: &mut BytesMut) -> Result<Option<(u16, Body)>, bollard::errors::Error> {
    let Some(end) = find(raw, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = raw.split_to(end + 4);
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad_answer("no status line"))?;
    let mut body = Body::UntilClose;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            body = Body::ChunkSize;
        } else if name.eq_ignore_ascii_case("content-length") && body == Body::UntilClose {
            let n = value
                .parse::<usize>()
                .map_err(|_| bad_answer("a bad Content-Length"))?;
            body = if n == 0 { Body::Done } else { Body::Length(n) };
        }
    }
    Ok(Some((status, body)))
}

/// Moves the body's bytes that `raw` holds into `to`, undoing the chunked
/// encoding; stops where `raw` runs out.
fn unchunk(
    body: &mut Body,
    raw: &mut BytesMut,
    to: &mut BytesMut,
) -> Result<(), bollard::errors::Error> {
    loop {
        match *body {
            Body::Done => {
                raw.clear();
                return Ok(());
            }
            Body::UntilClose => {
                to.extend_from_slice(raw);
                raw.clear();
                return Ok(());
            }
            Body::Length(n) => {
                let take = n.min(raw.len());
                to.extend_from_slice(&raw[..take]);
                raw.advance(take);
                *body = if take == n {
                    Body::Done
                } else {
                    Body::Length(n - take)
                };
                return Ok(());
            }
            Body::ChunkSize => {
                let Some(eol) = find(raw, b"\r\n") else {
                    return Ok(());
                };
                let line = &raw[..eol];
                let hex = line.split(|b| *b == b';').next().unwrap_or(line);
                let size = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
                    .ok_or_else(|| bad_answer("a bad chunk size"))?;
                raw.advance(eol + 2);
                // The last chunk: its trailers (none from the engine) are not read.
                *body = if size == 0 {
                    Body::Done
                } else {
                    Body::ChunkData(size)
                };
            }
            Body::ChunkData(n) => {
                if raw.is_empty() {
                    return Ok(());
                }
                let take = n.min(raw.len());
                to.extend_from_slice(&raw[..take]);
                raw.advance(take);
                *body = if take == n {
                    Body::ChunkEnd
                } else {
                    Body::ChunkData(n - take)
                };
            }
            Body::ChunkEnd => {
                if raw.len() < 2 {
                    return Ok(());
                }
                raw.advance(2);
                *body = Body::ChunkSize;
            }
        }
    }
}

/// Moves every whole frame's payload out of `frames` into `out`. Bytes that
/// do not start with a stream type (0–2) are a TTY's raw output, taken a
/// line at a time, as bollard takes them.
fn deframe(state: &mut Frame, frames: &mut BytesMut, out: &mut BytesMut) {
    let mut at = 0;
    loop {
        let rest = &frames[at..];
        match *state {
            Frame::Header => {
                if rest.first().is_some_and(|b| *b > 2) {
                    let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                        break;
                    };
                    out.extend_from_slice(&rest[..=nl]);
                    at += nl + 1;
                    continue;
                }
                if rest.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
                *state = Frame::Payload(len);
                at += 8;
            }
            Frame::Payload(len) => {
                if rest.len() < len {
                    break;
                }
                payload(out, &rest[..len]);
                at += len;
                *state = Frame::Header;
            }
        }
    }
    frames.advance(at);
}

/// One frame's payload, ending with a newline as a line of text does (an
/// empty one adds no line).
fn payload(out: &mut BytesMut, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    if bytes.last().is_some_and(|b| *b != b'\n') {
        out.extend_from_slice(b"\n");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn cut_short() -> bollard::errors::Error {
    bad_answer("the engine closed the connection mid-answer")
}

fn bad_answer(what: &str) -> bollard::errors::Error {
    bollard::errors::Error::IOError {
        err: std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn chunked(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    /// Feeds `wire` (a response body) a few bytes at a time, as reads may
    /// cut it anywhere, and returns the payloads.
    fn decode(mut body: Body, wire: &[u8], step: usize) -> Vec<u8> {
        let (mut raw, mut frames, mut out) = (BytesMut::new(), BytesMut::new(), BytesMut::new());
        let mut frame = Frame::Header;
        for piece in wire.chunks(step) {
            raw.extend_from_slice(piece);
            unchunk(&mut body, &mut raw, &mut frames).unwrap();
            deframe(&mut frame, &mut frames, &mut out);
        }
        assert_eq!(body, Body::Done);
        out.to_vec()
    }

    #[test]
    fn frames_in_chunks_come_out_as_their_lines_however_reads_cut_them() {
        let one = framed(1, b"first line\n");
        let two = framed(2, b"an error\r\n");
        // The engine splits a long line into frames without a newline.
        let part = framed(1, b"a long line, part 1");
        let empty = framed(1, b"");
        let wire = chunked(&[&one, &two, &[part.as_slice(), empty.as_slice()].concat()]);
        for step in [1, 3, 7, 64, 4096] {
            let out = decode(Body::ChunkSize, &wire, step);
            assert_eq!(
                String::from_utf8_lossy(&out),
                "first line\nan error\r\na long line, part 1\n",
                "step {step}"
            );
        }
    }

    #[test]
    fn a_tty_log_and_a_sized_body_are_read_too() {
        let wire = b"plain tty output\nsecond\n";
        let out = decode(Body::Length(wire.len()), wire, 5);
        assert_eq!(out, wire);
    }

    #[test]
    fn the_head_gives_status_and_framing() {
        let mut raw = BytesMut::from(
            &b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{\"message\":\"No such thing\"}\n"[..],
        );
        let (status, body) = response_head(&mut raw).unwrap().unwrap();
        assert_eq!((status, body), (404, Body::Length(29)));
        assert!(raw.starts_with(b"{\"message\""));
        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"[..]);
        assert!(response_head(&mut partial).unwrap().is_none());
        partial.extend_from_slice(b"\r\n");
        let (status, body) = response_head(&mut partial).unwrap().unwrap();
        assert_eq!((status, body), (200, Body::ChunkSize));
    }
}
