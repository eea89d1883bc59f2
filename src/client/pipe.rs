//! Reading a plugin's pipes as a host must: bytes split on `\n`, never
//! text that can fail to decode, each line held up to a cap, and read to
//! the end, so that the plugin never meets a full or closed pipe.

use std::borrow::Cow;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The longest line of plugin output held whole for logging: longer ones
/// are cut there and the rest is counted, not stored. Terraform providers
/// at `TF_LOG=trace` log whole requests, some hundreds of KiB long, so the
/// cap is generous; what it bounds is a line with no end (a plugin that
/// printed 500 MB without a newline used to cost the host 518 MB).
pub(crate) const MAX_LOGGED_LINE: usize = 1 << 20;

/// The longest handshake line accepted. A go-plugin line with a P-521
/// certificate is about 1 KiB; anything near this is not a handshake line.
pub(crate) const MAX_HANDSHAKE_LINE: usize = 64 << 10;

/// One line of plugin output, without its `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The first bytes of the line, up to the cap.
    pub(crate) bytes: Vec<u8>,
    /// How many bytes the whole line had (more than `bytes.len()` when cut).
    pub(crate) len: usize,
}

impl Line {
    /// Whether the line was longer than the cap.
    pub(crate) fn cut(&self) -> bool {
        self.len > self.bytes.len()
    }

    /// The bytes as text, invalid UTF-8 replaced by U+FFFD, with a note of
    /// what was cut.
    pub(crate) fn lossy(&self) -> Cow<'_, str> {
        let text = String::from_utf8_lossy(&self.bytes);
        match self.cut() {
            false => text,
            true => Cow::Owned(format!(
                "{text}… ({} more bytes)",
                self.len - self.bytes.len()
            )),
        }
    }
}

/// Reads lines of bytes from a pipe.
#[derive(Debug)]
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    cap: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Lines held up to `cap` bytes each.
    pub(crate) fn new(inner: R, cap: usize) -> Self {
        LineReader {
            inner: BufReader::new(inner),
            cap,
        }
    }

    /// The next line, read to its `\n` or the end of the pipe; a line cut at
    /// the cap is still read (and dropped) to its end. `None` at the end.
    /// A read error counts as the end: nothing more can come.
    pub(crate) async fn next_line(&mut self) -> Option<Line> {
        self.read(false).await
    }

    /// The next line, but returned as soon as it passes the cap (cut, with
    /// `len` one past the cap) instead of read to its end: for the handshake
    /// line, which must fail at once rather than after a flood.
    pub(crate) async fn next_line_or_cap(&mut self) -> Option<Line> {
        self.read(true).await
    }

    async fn read(&mut self, stop_at_cap: bool) -> Option<Line> {
        let mut line = Line {
            bytes: Vec::new(),
            len: 0,
        };
        loop {
            let buf = match self.inner.fill_buf().await {
                Ok(buf) => buf,
                Err(_) => &[],
            };
            if buf.is_empty() {
                return (line.len > 0).then_some(line);
            }
            let (chunk, newline) = match buf.iter().position(|&b| b == b'\n') {
                Some(at) => (&buf[..at], true),
                None => (buf, false),
            };
            let room = self.cap.saturating_sub(line.bytes.len());
            line.bytes
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            line.len += chunk.len();
            let used = chunk.len() + usize::from(newline);
            self.inner.consume(used);
            if newline {
                return Some(line);
            }
            if stop_at_cap && line.cut() {
                return Some(line);
            }
        }
    }

    /// Reads and drops everything left, to the end of the pipe.
    #[cfg(feature = "probe")]
    pub(crate) async fn drain(mut self) {
        while self.next_line().await.is_some() {}
    }
}

/// `text` safe to show on a terminal: control characters (escape
/// sequences, carriage returns, bells) written as `\u{…}` escapes, tabs
/// kept.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], cap: usize) -> Vec<Line> {
        let mut reader = LineReader::new(input, cap);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn splits_bytes_on_newlines_whatever_they_hold() {
        let got = lines(b"one\n\xff\xfe bad\n\nlast without newline", 100).await;
        let texts: Vec<_> = got.iter().map(|l| l.lossy().into_owned()).collect();
        assert_eq!(
            texts,
            ["one", "\u{fffd}\u{fffd} bad", "", "last without newline"]
        );
        assert!(got.iter().all(|l| !l.cut()));
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_counted_and_reading_goes_on() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nnext\n");
        let got = lines(&input, 16).await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].bytes.len(), 16);
        assert_eq!(got[0].len, 10_000);
        assert!(got[0].lossy().ends_with("… (9984 more bytes)"));
        assert_eq!(got[1].lossy(), "next");
    }

    #[tokio::test]
    async fn the_handshake_read_stops_at_the_cap() {
        let input = vec![b'x'; 1 << 20];
        let mut reader = LineReader::new(&input[..], 100);
        let line = reader.next_line_or_cap().await.unwrap();
        assert!(line.cut());
        assert_eq!(line.bytes.len(), 100);
        assert!(line.len < input.len(), "read {} bytes", line.len);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain\ttext"), "plain\ttext");
        assert_eq!(
            printable("\u{1b}[31mred\r\n\u{7}"),
            "\\u{1b}[31mred\\r\\n\\u{7}"
        );
    }
}
