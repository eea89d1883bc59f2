//! Makes grpcio's `:authority` for unix sockets acceptable to h2's server.
//!
//! grpc-core (≥ 1.58, so Python's grpcio and thus pyvider-rpcplugin hosts)
//! dialling `unix:/tmp/plugin123` in plaintext sends the HTTP/2 pseudo-header
//! `:authority: tmp%2Fplugin123`, the socket path percent-encoded. The h2
//! server under tonic parses `:authority` with
//! `http::uri::Authority::from_maybe_shared`, which refuses `%` outside
//! userinfo, and resets every such stream with `RST_STREAM(PROTOCOL_ERROR)`:
//! no call from such a host ever reaches the plugin. grpc-go sends
//! `localhost` instead, and h2 has no switch to relax the check.
//!
//! [`AuthorityFix`] therefore sits between the socket and h2 on the server
//! side and rewrites what the client sends before h2 parses it: it follows
//! the HTTP/2 framing (RFC 9113), decodes every header block with an HPACK
//! decoder that mirrors the client's encoder, replaces an `:authority` that
//! `http` would reject with `localhost`, and encodes the block again for h2.
//! Every block is re-encoded, not only the bad ones: once one block is, h2's
//! HPACK decoder follows our encoder and no longer the client's. Our encoder
//! keeps its dynamic table at size 0 (and tells h2 so), so nothing it emits
//! depends on state beyond the block itself. Frames other than header blocks
//! pass through unchanged and unbuffered; writes pass straight through.
//!
//! A connection whose first block carries a valid `:authority` (every
//! client but grpc-core's) is handed to h2 untouched from then on; that
//! first block is checked by [`hpack_scan`](super::hpack_scan) without
//! decoding it, which takes a quarter of a millisecond off every new
//! connection's first call.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of the fixed frame header: 24-bit length, type, flags, stream id.
const FRAME_HEADER_LEN: usize = 9;

// Frame types (RFC 9113 §6).
const TYPE_HEADERS: u8 = 0x1;
const TYPE_PUSH_PROMISE: u8 = 0x5;
const TYPE_CONTINUATION: u8 = 0x9;

// HEADERS and CONTINUATION flags (RFC 9113 §6.2, §6.10).
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// Stream dependency (4 bytes) and weight (1 byte) of a HEADERS frame with
/// the PRIORITY flag.
const PRIORITY_FIELDS_LEN: usize = 5;

/// Largest frame payload we emit: 16384 is the smallest value
/// SETTINGS_MAX_FRAME_SIZE may take, so every HTTP/2 server accepts it
/// whatever it advertised, and we need not watch the server's SETTINGS.
const MAX_EMITTED_PAYLOAD: usize = 16_384;

/// Cap on one encoded header block (HEADERS plus CONTINUATIONs). gRPC
/// metadata is a few hundred bytes and hyper accepts 16 KiB of decoded
/// headers by default; 1 MiB is far above any real block while bounding
/// what a broken or hostile client makes us buffer.
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// Cap on one decoded header list, counted as RFC 7541 §4.1 sizes
/// (name + value + 32 per field). HPACK can expand a block a thousandfold
/// (one byte referencing a 4 KiB table entry), so the encoded cap alone does
/// not bound memory; 1 MiB matches [`MAX_HEADER_BLOCK`].
const MAX_HEADER_LIST: usize = 1 << 20;

/// Dynamic table size the client's encoder may use: h2's server advertises
/// the default SETTINGS_HEADER_TABLE_SIZE of 4096 (tonic does not change
/// it), so a larger size update from the client is an HPACK error anyway.
const CLIENT_MAX_TABLE_SIZE: usize = 4096;

/// How much we ask the socket for at a time when collecting frame headers
/// and header blocks: one minimum-size frame, a few system calls per block.
const READ_CHUNK: usize = 16 * 1024;

/// Most bytes of a passed-through payload read straight into the caller's
/// buffer at a time. Bounds the zeroing of an uninitialised caller buffer
/// per read, so large DATA frames cost linear time.
const MAX_DIRECT_READ: usize = 64 * 1024;

/// What an `:authority` that `http` rejects becomes; what grpc-go sends.
const FALLBACK_AUTHORITY: &[u8] = b"localhost";

/// HPACK "dynamic table size update" to 0 (RFC 7541 §6.3): `001` + 5-bit 0.
const TABLE_SIZE_UPDATE_ZERO: u8 = 0x20;

/// Where the reader is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Collecting the first 24 bytes to compare with the preface.
    Preface,
    /// Reading HTTP/2 frames.
    Frames,
    /// Not HTTP/2 with prior knowledge: everything passes through.
    Raw,
}

/// A header block whose HEADERS frame arrived but whose END_HEADERS did not.
struct OpenBlock {
    stream_id: u32,
    end_stream: bool,
    priority: Option<[u8; PRIORITY_FIELDS_LEN]>,
    fragment: Vec<u8>,
    /// The block's frames exactly as the client sent them, for a
    /// connection whose first block needs no rewrite.
    raw: Vec<u8>,
}

/// Server-side stream wrapper that rewrites an `:authority` h2 would reject
/// (see the [module docs](self)). Writes pass through unchanged.
pub(crate) struct AuthorityFix<T> {
    inner: T,
    phase: Phase,
    /// Bytes read from `inner` and not yet processed.
    input: BytesMut,
    /// Processed bytes not yet handed to the reader.
    output: BytesMut,
    /// Payload bytes of the current non-header frame still to pass through.
    passthrough: usize,
    open_block: Option<OpenBlock>,
    decoder: Decoder<'static>,
    encoder: Encoder<'static>,
    /// Whether h2 has been told our encoder's dynamic table size is 0.
    table_size_sent: bool,
    /// Whether a block was rewritten on this connection: from then on every
    /// block is, since h2's HPACK decoder follows our encoder.
    rewriting: bool,
    /// Whether a rewrite was logged on this connection.
    rewrite_logged: bool,
    /// The error that ended reading, returned again on later reads.
    failed: Option<(io::ErrorKind, String)>,
}

impl<T> AuthorityFix<T> {
    /// The wrapped stream.
    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Wraps the server side of a connection.
    pub(crate) fn new(inner: T) -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(CLIENT_MAX_TABLE_SIZE);
        let mut encoder = Encoder::new();
        // With no dynamic table, loona's encoder only refers to the static
        // table; what it still inserts is evicted at once on both sides.
        encoder.set_max_table_size(0);
        AuthorityFix {
            inner,
            phase: Phase::Preface,
            input: BytesMut::new(),
            output: BytesMut::new(),
            passthrough: 0,
            open_block: None,
            decoder,
            encoder,
            table_size_sent: false,
            rewriting: false,
            rewrite_logged: false,
            failed: None,
        }
    }

    /// Processes buffered input as far as it goes. Returns whether anything
    /// changed; `false` means more input is needed.
    fn step(&mut self) -> io::Result<bool> {
        match self.phase {
            Phase::Preface => {
                let n = self.input.len().min(PREFACE.len());
                if self.input[..n] != PREFACE[..n] {
                    self.phase = Phase::Raw;
                    return Ok(true);
                }
                if n < PREFACE.len() {
                    return Ok(false);
                }
                let preface = self.input.split_to(PREFACE.len());
                self.output.extend_from_slice(&preface);
                self.phase = Phase::Frames;
                Ok(true)
            }
            Phase::Raw => Ok(false),
            Phase::Frames => self.step_frame(),
        }
    }

    fn step_frame(&mut self) -> io::Result<bool> {
        if self.input.len() < FRAME_HEADER_LEN {
            return Ok(false);
        }
        let head = &self.input[..FRAME_HEADER_LEN];
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;

        match kind {
            TYPE_HEADERS | TYPE_CONTINUATION => {
                if len > MAX_HEADER_BLOCK {
                    return Err(invalid(format!(
                        "HTTP/2 header frame of {len} bytes on stream {stream_id} exceeds \
                         the {MAX_HEADER_BLOCK}-byte limit"
                    )));
                }
                if self.input.len() < FRAME_HEADER_LEN + len {
                    self.input
                        .reserve(FRAME_HEADER_LEN + len - self.input.len());
                    return Ok(false);
                }
                let frame = self.input.split_to(FRAME_HEADER_LEN + len);
                if kind == TYPE_HEADERS {
                    self.on_headers(flags, stream_id, &frame)?;
                } else {
                    self.on_continuation(flags, stream_id, &frame)?;
                }
            }
            TYPE_PUSH_PROMISE => {
                return Err(invalid(format!(
                    "HTTP/2 client sent PUSH_PROMISE on stream {stream_id}"
                )));
            }
            _ => {
                if let Some(open) = &self.open_block {
                    return Err(invalid(format!(
                        "HTTP/2 frame of type {kind:#x} on stream {stream_id} inside the \
                         header block of stream {}, where only CONTINUATION may come",
                        open.stream_id
                    )));
                }
                let head = self.input.split_to(FRAME_HEADER_LEN);
                self.output.extend_from_slice(&head);
                self.passthrough = len;
            }
        }
        Ok(true)
    }

    fn on_headers(&mut self, flags: u8, stream_id: u32, frame: &[u8]) -> io::Result<()> {
        let payload = &frame[FRAME_HEADER_LEN..];
        if let Some(open) = &self.open_block {
            return Err(invalid(format!(
                "HTTP/2 HEADERS frame on stream {stream_id} inside the header block of \
                 stream {}, where only CONTINUATION may come",
                open.stream_id
            )));
        }
        let mut rest = payload;
        let mut padding = 0;
        if flags & FLAG_PADDED != 0 {
            let (&pad, after) = rest.split_first().ok_or_else(|| {
                invalid(format!(
                    "HTTP/2 HEADERS frame on stream {stream_id} is PADDED but empty"
                ))
            })?;
            padding = usize::from(pad);
            rest = after;
        }
        let mut priority = None;
        if flags & FLAG_PRIORITY != 0 {
            let Some((fields, after)) = rest.split_first_chunk::<PRIORITY_FIELDS_LEN>() else {
                return Err(invalid(format!(
                    "HTTP/2 HEADERS frame on stream {stream_id} is too short for its \
                     PRIORITY fields"
                )));
            };
            priority = Some(*fields);
            rest = after;
        }
        if padding > rest.len() {
            return Err(invalid(format!(
                "HTTP/2 HEADERS frame on stream {stream_id} has more padding than payload"
            )));
        }
        let block = OpenBlock {
            stream_id,
            end_stream: flags & FLAG_END_STREAM != 0,
            priority,
            fragment: rest[..rest.len() - padding].to_vec(),
            raw: frame.to_vec(),
        };
        if flags & FLAG_END_HEADERS != 0 {
            self.rewrite(block)
        } else {
            self.open_block = Some(block);
            Ok(())
        }
    }

    fn on_continuation(&mut self, flags: u8, stream_id: u32, frame: &[u8]) -> io::Result<()> {
        let payload = &frame[FRAME_HEADER_LEN..];
        let Some(open) = self.open_block.as_mut() else {
            return Err(invalid(format!(
                "HTTP/2 CONTINUATION frame on stream {stream_id} without a HEADERS frame \
                 before it"
            )));
        };
        if open.stream_id != stream_id {
            return Err(invalid(format!(
                "HTTP/2 CONTINUATION frame on stream {stream_id} inside the header block \
                 of stream {}",
                open.stream_id
            )));
        }
        if open.fragment.len() + payload.len() > MAX_HEADER_BLOCK {
            return Err(invalid(format!(
                "HTTP/2 header block on stream {stream_id} exceeds the \
                 {MAX_HEADER_BLOCK}-byte limit"
            )));
        }
        open.fragment.extend_from_slice(payload);
        open.raw.extend_from_slice(frame);
        if flags & FLAG_END_HEADERS != 0
            && let Some(block) = self.open_block.take()
        {
            self.rewrite(block)?;
        }
        Ok(())
    }

    /// Decodes a complete header block, fixes `:authority`, and queues the
    /// block re-encoded as HEADERS (+ CONTINUATION) frames.
    fn rewrite(&mut self, block: OpenBlock) -> io::Result<()> {
        if !self.rewriting && super::hpack_scan::authorities_fine(&block.fragment) {
            // The connection's first block, proven fine without decoding
            // it: hand it to h2 as it came and step aside.
            self.output.extend_from_slice(&block.raw);
            self.phase = Phase::Raw;
            return Ok(());
        }
        let stream_id = block.stream_id;
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut list_size = 0usize;
        self.decoder
            .decode_with_cb(&block.fragment, |name, value| {
                list_size = list_size.saturating_add(name.len() + value.len() + 32);
                if list_size <= MAX_HEADER_LIST {
                    fields.push((name.into_owned(), value.into_owned()));
                }
            })
            .map_err(|err| {
                invalid(format!(
                    "cannot decode the HPACK header block of HTTP/2 stream {stream_id}: {err}"
                ))
            })?;
        if list_size > MAX_HEADER_LIST {
            return Err(invalid(format!(
                "HTTP/2 header list on stream {stream_id} decodes to more than \
                 {MAX_HEADER_LIST} bytes"
            )));
        }

        let bad_authority = |(name, value): &(Vec<u8>, Vec<u8>)| {
            name.as_slice() == b":authority"
                && http::uri::Authority::try_from(value.as_slice()).is_err()
        };
        if !self.rewriting && !fields.iter().any(bad_authority) {
            // A client sends the same authority on every request of a
            // connection: this one needs no help. Hand h2 the block as it
            // came (so its HPACK state stays the client's) and step aside,
            // costing nothing more on this connection.
            self.output.extend_from_slice(&block.raw);
            self.phase = Phase::Raw;
            return Ok(());
        }
        self.rewriting = true;
        for field in &mut fields {
            if bad_authority(field) {
                let value = &mut field.1;
                if !self.rewrite_logged {
                    self.rewrite_logged = true;
                    tracing::debug!(
                        authority = %String::from_utf8_lossy(value),
                        stream_id,
                        "replacing an invalid HTTP/2 :authority with localhost"
                    );
                }
                *value = FALLBACK_AUTHORITY.to_vec();
            }
        }

        let mut encoded = Vec::with_capacity(block.fragment.len() + 16);
        if !self.table_size_sent {
            // h2 starts with a 4096-byte table; shrink it to ours so the two
            // stay in step without either holding anything.
            encoded.push(TABLE_SIZE_UPDATE_ZERO);
            self.table_size_sent = true;
        }
        self.encoder.encode_into(
            fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice())),
            &mut encoded,
        )?;

        let priority_len = if block.priority.is_some() {
            PRIORITY_FIELDS_LEN
        } else {
            0
        };
        let first = encoded.len().min(MAX_EMITTED_PAYLOAD - priority_len);
        let mut flags = 0;
        if block.end_stream {
            flags |= FLAG_END_STREAM;
        }
        if block.priority.is_some() {
            flags |= FLAG_PRIORITY;
        }
        if first == encoded.len() {
            flags |= FLAG_END_HEADERS;
        }
        self.output
            .reserve(encoded.len() + 2 * FRAME_HEADER_LEN + priority_len);
        put_frame_header(
            &mut self.output,
            priority_len + first,
            TYPE_HEADERS,
            flags,
            stream_id,
        );
        if let Some(fields) = &block.priority {
            self.output.extend_from_slice(fields);
        }
        self.output.extend_from_slice(&encoded[..first]);
        let mut rest = &encoded[first..];
        while !rest.is_empty() {
            let n = rest.len().min(MAX_EMITTED_PAYLOAD);
            let flags = if n == rest.len() { FLAG_END_HEADERS } else { 0 };
            put_frame_header(&mut self.output, n, TYPE_CONTINUATION, flags, stream_id);
            self.output.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AuthorityFix<T> {
    /// Reads more of `inner` into `input`; `Ok(0)` at end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let start = self.input.len();
        self.input.resize(start + READ_CHUNK, 0);
        let mut buf = ReadBuf::new(&mut self.input[start..]);
        let result = Pin::new(&mut self.inner).poll_read(cx, &mut buf);
        let n = buf.filled().len();
        self.input.truncate(start + n);
        result.map_ok(|()| n)
    }

    fn poll_read_inner(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.output.is_empty() {
                let n = self.output.len().min(buf.remaining());
                buf.put_slice(&self.output[..n]);
                self.output.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.phase == Phase::Raw {
                if !self.input.is_empty() {
                    let n = self.input.len().min(buf.remaining());
                    buf.put_slice(&self.input[..n]);
                    self.input.advance(n);
                    return Poll::Ready(Ok(()));
                }
                return Pin::new(&mut self.inner).poll_read(cx, buf);
            }
            if self.passthrough > 0 {
                let limit = self.passthrough.min(buf.remaining());
                if !self.input.is_empty() {
                    let n = limit.min(self.input.len());
                    buf.put_slice(&self.input[..n]);
                    self.input.advance(n);
                    self.passthrough -= n;
                    return Poll::Ready(Ok(()));
                }
                // Straight from the socket into the caller's buffer, within
                // the frame's bounds.
                let dst = buf.initialize_unfilled_to(limit.min(MAX_DIRECT_READ));
                let mut direct = ReadBuf::new(dst);
                ready!(Pin::new(&mut self.inner).poll_read(cx, &mut direct))?;
                let n = direct.filled().len();
                if n == 0 {
                    return Poll::Ready(Err(truncated()));
                }
                buf.advance(n);
                self.passthrough -= n;
                return Poll::Ready(Ok(()));
            }
            if self.step()? {
                continue;
            }
            if ready!(self.poll_fill(cx))? > 0 {
                continue;
            }
            // End of stream.
            if self.phase == Phase::Frames {
                if self.input.is_empty() && self.open_block.is_none() {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(truncated()));
            }
            // Less than a preface, all of it matching: hand over what came.
            self.phase = Phase::Raw;
            if self.input.is_empty() {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for AuthorityFix<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some((kind, message)) = &this.failed {
            return Poll::Ready(Err(io::Error::new(*kind, message.clone())));
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let result = ready!(this.poll_read_inner(cx, buf));
        if let Err(err) = &result
            && matches!(
                err.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            )
        {
            this.failed = Some((err.kind(), err.to_string()));
        }
        Poll::Ready(result)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected
    for AuthorityFix<T>
{
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<T: fmt::Debug> fmt::Debug for AuthorityFix<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorityFix")
            .field("inner", &self.inner)
            .field("phase", &self.phase)
            .field("buffered_in", &self.input.len())
            .field("buffered_out", &self.output.len())
            .finish_non_exhaustive()
    }
}

fn put_frame_header(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream_id: u32) {
    debug_assert!(len < 1 << 24);
    out.put_uint(len as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream_id);
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "HTTP/2 connection closed in the middle of a frame",
    )
}

#[cfg(test)]
#[path = "authority_tests.rs"]
mod tests;
