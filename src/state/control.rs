//! The control socket's protocol, between a supervisor and `rootrun stop`
//! or `rootrun console`: the client sends one request line, the supervisor
//! answers with one line (`ok ...` or `no REASON`), then:
//!
//! - `stop [MS]` and `kill`: the supervisor stops the container and, when
//!   it is gone, sends `exit CODE` (rootrun's exit code for the run). The
//!   client then waits for the lock to be released: the supervisor has
//!   removed everything.
//! - `console`: the supervisor sends the console's output as it comes; the
//!   client sends frames (`Frame`): input for the console, and its
//!   terminal's size. Closing the connection detaches.

use std::time::Duration;

/// Longest request line.
pub const MAX_LINE: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Console,
    /// Ask init to halt; kill after `timeout` (None: the container's own).
    Stop {
        timeout: Option<Duration>,
    },
    /// Kill now.
    Kill,
}

impl Request {
    pub fn line(&self) -> String {
        match self {
            Request::Console => "console\n".into(),
            Request::Stop { timeout: None } => "stop\n".into(),
            Request::Stop {
                timeout: Some(timeout),
            } => format!("stop {}\n", timeout.as_millis()),
            Request::Kill => "kill\n".into(),
        }
    }

    pub fn parse(line: &str) -> Option<Request> {
        let mut words = line.split_ascii_whitespace();
        let request = match (words.next()?, words.next()) {
            ("console", None) => Request::Console,
            ("stop", None) => Request::Stop { timeout: None },
            ("stop", Some(ms)) => Request::Stop {
                timeout: Some(Duration::from_millis(ms.parse().ok()?)),
            },
            ("kill", None) => Request::Kill,
            _ => return None,
        };
        words.next().is_none().then_some(request)
    }
}

/// The last line a stop client gets: `exit CODE`.
pub fn exit_line(code: u8) -> String {
    format!("exit {code}\n")
}

pub fn parse_exit(line: &str) -> Option<u8> {
    line.strip_prefix("exit ")?.trim_end().parse().ok()
}

/// What a console client sends: a kind byte, a big-endian u16 length, and
/// that many bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Input for the console.
    Data(Vec<u8>),
    /// The client's terminal size.
    Size { rows: u16, cols: u16 },
}

const DATA: u8 = b'd';
const SIZE: u8 = b'w';

impl Frame {
    /// Appends `data` as frames (split at 64 KiB).
    pub fn encode_data(data: &[u8], out: &mut Vec<u8>) {
        for chunk in data.chunks(usize::from(u16::MAX)) {
            out.push(DATA);
            // chunks() bounds the length.
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
    }

    pub fn encode_size(rows: u16, cols: u16, out: &mut Vec<u8>) {
        out.push(SIZE);
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&rows.to_be_bytes());
        out.extend_from_slice(&cols.to_be_bytes());
    }
}

/// Cuts a console client's byte stream into frames.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

/// A byte stream that is not frames: the client is dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFrame;

impl FrameReader {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, BadFrame> {
        let [kind, hi, lo, ..] = self.buf[..] else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if self.buf.len() < 3 + len {
            return Ok(None);
        }
        let payload: Vec<u8> = self.buf.drain(..3 + len).skip(3).collect();
        match (kind, &payload[..]) {
            (DATA, _) => Ok(Some(Frame::Data(payload))),
            (SIZE, [r1, r2, c1, c2]) => Ok(Some(Frame::Size {
                rows: u16::from_be_bytes([*r1, *r2]),
                cols: u16::from_be_bytes([*c1, *c2]),
            })),
            _ => Err(BadFrame),
        }
    }
}

/// A client's connection: the request sent and the supervisor's answer
/// read (the text after `ok`), or the refusal as an error.
pub fn connect(
    found: &super::Found,
    request: Request,
) -> Result<(std::os::unix::net::UnixStream, String), crate::error::Error> {
    use std::io::{BufRead, Write};
    let name = &found.record.name;
    let path = found.path(super::CONTROL);
    let failed = |e: std::io::Error| {
        crate::error::Error::Usage(format!(
            "cannot reach {name}'s rootrun at {}: {e}",
            path.display()
        ))
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(failed)?;
    stream
        .write_all(request.line().as_bytes())
        .map_err(failed)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(failed)?;
    let mut answer = Vec::new();
    // One byte at a time: what follows the line is the stream's own.
    let mut reader = std::io::BufReader::with_capacity(1, &stream);
    reader.read_until(b'\n', &mut answer).map_err(failed)?;
    stream.set_read_timeout(None).map_err(failed)?;
    let answer = String::from_utf8_lossy(&answer).trim_end().to_owned();
    match answer.split_once(' ').unwrap_or((&answer, "")) {
        ("ok", rest) => Ok((stream, rest.to_owned())),
        ("no", why) => Err(crate::error::Error::Usage(format!("{name}: {why}"))),
        _ => Err(crate::error::Error::Usage(format!(
            "{name}'s rootrun did not answer (is it stopping?)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for request in [
            Request::Console,
            Request::Kill,
            Request::Stop { timeout: None },
            Request::Stop {
                timeout: Some(Duration::from_millis(2500)),
            },
        ] {
            assert_eq!(Request::parse(&request.line()), Some(request));
        }
        assert_eq!(Request::parse("stop soon\n"), None);
        assert_eq!(Request::parse("console now\n"), None);
        assert_eq!(Request::parse(""), None);
        assert_eq!(parse_exit(&exit_line(143)), Some(143));
        assert_eq!(parse_exit("exit x\n"), None);
    }

    #[test]
    fn frames_survive_any_split() {
        let mut stream = Vec::new();
        Frame::encode_data(b"ls -l\r", &mut stream);
        Frame::encode_size(40, 132, &mut stream);
        Frame::encode_data(&vec![b'x'; 70_000], &mut stream);
        for split in [1, 2, 3, 7, 4096, stream.len()] {
            let mut reader = FrameReader::default();
            let mut frames = Vec::new();
            for piece in stream.chunks(split) {
                reader.feed(piece);
                while let Some(frame) = reader.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            assert_eq!(frames.len(), 4, "split {split}");
            assert_eq!(frames[0], Frame::Data(b"ls -l\r".to_vec()));
            assert_eq!(
                frames[1],
                Frame::Size {
                    rows: 40,
                    cols: 132
                }
            );
            let data: usize = frames[2..]
                .iter()
                .map(|f| match f {
                    Frame::Data(d) => d.len(),
                    Frame::Size { .. } => 0,
                })
                .sum();
            assert_eq!(data, 70_000);
        }
    }

    #[test]
    fn a_bad_frame_is_refused() {
        let mut reader = FrameReader::default();
        reader.feed(&[b'w', 0, 1, 9]);
        assert_eq!(reader.next_frame(), Err(BadFrame));
        let mut reader = FrameReader::default();
        reader.feed(&[b'?', 0, 0]);
        assert_eq!(reader.next_frame(), Err(BadFrame));
    }
}
