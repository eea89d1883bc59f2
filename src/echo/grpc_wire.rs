//! gRPC's message framing for the `Push` stream, done here rather than by
//! tonic's codec so that large samples are copied neither into an encode
//! buffer on the way out nor into a reassembly buffer on the way in.
//!
//! The wire is standard gRPC: each message is a 5-byte prefix (a compressed
//! flag and a big-endian u32 length) followed by the protobuf bytes, carried
//! in HTTP/2 DATA frames that the sender may split anywhere.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::Body as _;
use prost::Message;
use tonic::Status;

use crate::grpc::MAX_MESSAGE_SIZE;
use crate::proto::echo::Spec;

/// The path of `echo.v1.SampleStream/Push`.
pub(crate) const PUSH_PATH: &str = "/echo.v1.SampleStream/Push";

/// gRPC's length prefix: the compressed flag (1 byte) and the message
/// length (big-endian u32).
const PREFIX: usize = 5;

/// The keys of `PushRequest.spec` (field 1) and `PushRequest.samples`
/// (field 2): field number << 3 | wire type 2 (length-delimited). Both fit
/// one byte.
const SPEC_KEY: u8 = 1 << 3 | 2;
const SAMPLES_KEY: u8 = 2 << 3 | 2;

/// Samples of at least this size travel as body chunks of their own,
/// uncopied; smaller ones are copied into the buffer that carries the
/// prefix and field headers. A sample of its own costs two HTTP/2 DATA
/// frames (its field header, then itself) where a copied one shares one
/// frame with the rest of its message, and each frame costs a trip through
/// h2's send queue and flow control on both sides and often a task wakeup
/// on the server. Measured here (one client over a unix socket, allocator
/// page faults ruled out): copying won clearly at 32 KiB (4.5 against
/// 2.9 GB/s) and 64 KiB (about 5 against 4.3 GB/s), the two were even at
/// 128 KiB, and the uncopied chunks won from 256 KiB on.
pub(crate) const ZERO_COPY_MIN: usize = 128 * 1024;

/// A message that cannot be framed or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// Longer than the receiver accepts (or than gRPC's u32 length allows).
    #[error("a message of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The message's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The compressed flag set, though no compression was agreed.
    #[error("a compressed message, but no compression was agreed (no grpc-encoding)")]
    Compressed,
    /// A compressed flag other than 0 or 1.
    #[error("a message with compressed flag {0}; gRPC knows only 0 and 1")]
    BadFlag(u8),
    /// The stream ended inside a message.
    #[error("the stream ended inside a message")]
    Truncated,
    /// Bytes that are not the expected protobuf message.
    #[error("a message that does not decode")]
    Decode(#[from] prost::DecodeError),
    /// A sample field longer than what is left of its message.
    #[error("a sample field of {len} bytes, but {left} bytes of the message are left")]
    SampleLength {
        /// The field's length.
        len: u64,
        /// Bytes left in the message.
        left: usize,
    },
    /// The HTTP/2 stream failed (reset, connection lost).
    #[error("the stream failed")]
    Body(#[source] Status),
}

impl WireError {
    /// The status a gRPC peer gets for it: `OUT_OF_RANGE` for a message
    /// over the limit (refused from its length prefix, before it is read),
    /// `INTERNAL` for broken framing or protobuf, as tonic and grpc-go do.
    pub(crate) fn into_status(self) -> Status {
        match self {
            WireError::TooLarge { .. } => Status::out_of_range(self.to_string()),
            WireError::Body(status) => status,
            // The peer gets the cause too (a decode error's detail).
            _ => Status::internal(crate::chain::Chain(&self).to_string()),
        }
    }
}

/// Appends `message` in gRPC framing to `out`.
pub(crate) fn frame_message(message: &impl Message, out: &mut BytesMut) {
    let len = message.encoded_len();
    out.reserve(PREFIX + len);
    out.put_u8(0);
    out.put_u32(u32::try_from(len).expect("a small message"));
    message
        .encode(out)
        .expect("the buffer has room for the message");
}

/// Appends a `PushRequest` of `spec` (if any) and the samples of `runs`
/// to `out` as body chunks: the prefix and field headers, with the samples
/// smaller than [`ZERO_COPY_MIN`], in shared buffers; each larger sample as
/// it is. A run is whole samples of one size back to back (`send_batch`
/// queues one; a single sample is a run of one), given with that size, so
/// that small samples are copied straight from it. The bytes are exactly
/// prost's encoding of the message.
///
/// # Errors
///
/// [`WireError::TooLarge`] when the message would be over
/// [`MAX_MESSAGE_SIZE`].
pub(crate) fn encode_push(
    spec: Option<&Spec>,
    runs: Vec<(Bytes, usize)>,
    out: &mut VecDeque<Bytes>,
) -> Result<(), WireError> {
    let spec_len = spec.map_or(0, |spec| {
        let len = spec.encoded_len();
        1 + prost::length_delimiter_len(len) + len
    });
    let (mut len, mut inline) = (spec_len, PREFIX + spec_len);
    for (run, size) in &runs {
        let count = samples_in(run, *size);
        let header = 1 + prost::length_delimiter_len(*size);
        len += count * (header + size);
        inline += count * (header + if *size < ZERO_COPY_MIN { *size } else { 0 });
    }
    let prefix_len = u32::try_from(len)
        .ok()
        .filter(|_| len <= MAX_MESSAGE_SIZE)
        .ok_or(WireError::TooLarge {
            len,
            limit: MAX_MESSAGE_SIZE,
        })?;
    // Sized for everything that is copied, so that `split` below never
    // reallocates: the chunks share one allocation.
    let mut head = BytesMut::with_capacity(inline);
    head.put_u8(0);
    head.put_u32(prefix_len);
    if let Some(spec) = spec {
        head.put_u8(SPEC_KEY);
        spec.encode_length_delimited(&mut head)
            .expect("the buffer has room for the spec");
    }
    for (run, size) in runs {
        // The field header is the same for every sample of the run.
        let (header, header_len) = sample_header(size);
        let header = &header[..header_len];
        for i in 0..samples_in(&run, size) {
            head.extend_from_slice(header);
            let at = i * size;
            if size < ZERO_COPY_MIN {
                head.extend_from_slice(&run[at..at + size]);
            } else {
                out.push_back(head.split().freeze());
                out.push_back(run.slice(at..at + size));
            }
        }
    }
    if !head.is_empty() {
        out.push_back(head.freeze());
    }
    Ok(())
}

/// The field key and length that precede each sample of `size` bytes in a
/// `PushRequest`, and how many bytes of the array they take.
fn sample_header(size: usize) -> ([u8; 11], usize) {
    let mut header = [0u8; 11];
    header[0] = SAMPLES_KEY;
    let len = 1 + prost::length_delimiter_len(size);
    prost::encode_length_delimiter(size, &mut &mut header[1..len])
        .expect("the array has room for a length");
    (header, len)
}

/// Samples of `size` bytes in `run` (an empty sample is a run of one).
fn samples_in(run: &Bytes, size: usize) -> usize {
    match size {
        0 => 1,
        size => run.len() / size,
    }
}

/// Bytes received in several chunks (DATA frames), read as one buffer.
/// [`copy_to_bytes`](Buf::copy_to_bytes), which prost uses for `bytes`
/// fields, slices a chunk without copying when the field lies within it,
/// and gathers (copies) only a field that spans chunks.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    /// Never an empty chunk.
    parts: VecDeque<Bytes>,
    remaining: usize,
}

impl Chunks {
    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.remaining += chunk.len();
            self.parts.push_back(chunk);
        }
    }

    /// The first `len` bytes, uncopied.
    fn split_to(&mut self, mut len: usize) -> Chunks {
        assert!(len <= self.remaining, "split past the end");
        let mut first = Chunks::default();
        while len > 0 {
            let front = self.parts.front_mut().expect("bytes remain");
            let part = if front.len() <= len {
                self.parts.pop_front().expect("a front chunk")
            } else {
                front.split_to(len)
            };
            len -= part.len();
            self.remaining -= part.len();
            first.push(part);
        }
        first
    }
}

impl Buf for Chunks {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.parts.front().map_or(&[], |front| front)
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advanced past the end");
        self.remaining -= cnt;
        while cnt > 0 {
            let front = self.parts.front_mut().expect("bytes remain");
            if front.len() > cnt {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.parts.pop_front();
        }
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        assert!(len <= self.remaining, "copied past the end");
        match self.parts.front_mut() {
            Some(front) if front.len() >= len => {
                let bytes = front.split_to(len);
                if front.is_empty() {
                    self.parts.pop_front();
                }
                self.remaining -= len;
                bytes
            }
            _ => {
                let mut gathered = BytesMut::with_capacity(len);
                gathered.put(self.take(len));
                gathered.freeze()
            }
        }
    }
}

/// Samples smaller than this are copied together as a `PushRequest` is
/// decoded, into one buffer for the sink to take many at once (a `Bytes`
/// per sample, made and dropped, cost more than the copy: gRPC with
/// batches of 64 B samples spent a third of its CPU in `Bytes` reference
/// counts); larger ones are sliced from the frames, uncopied.
pub(crate) const JOIN_BELOW: usize = 16 << 10;

/// A `PushRequest` as the server reads it: the spec, and the samples in
/// order as runs (whole samples of one size back to back).
#[derive(Debug, Default)]
pub(crate) struct PushIn {
    pub(crate) spec: Option<Spec>,
    pub(crate) runs: Vec<SampleRun>,
}

/// Samples of one size, back to back.
#[derive(Debug)]
pub(crate) struct SampleRun {
    pub(crate) data: Bytes,
    pub(crate) size: usize,
    pub(crate) count: usize,
}

impl PushIn {
    /// Decodes the protobuf bytes of a `PushRequest` as prost would, but
    /// copying the samples under [`JOIN_BELOW`] into runs as they come.
    fn decode(mut buf: Chunks) -> Result<PushIn, WireError> {
        use prost::encoding::{
            DecodeContext, WireType, check_wire_type, decode_key, decode_varint, skip_field,
        };
        let mut message = PushIn::default();
        // The small samples of the whole message, in one allocation (made
        // at the first of them, for the rest of the message): each run is
        // split off it, so that samples of changing sizes (a broken
        // client's) do not cost an allocation of the rest per run.
        let mut joined = BytesMut::new();
        // The run being joined: its sample size and count.
        let mut run: Option<(usize, usize)> = None;
        let close =
            |joined: &mut BytesMut, run: &mut Option<(usize, usize)>, runs: &mut Vec<SampleRun>| {
                if let Some((size, count)) = run.take() {
                    runs.push(SampleRun {
                        data: joined.split().freeze(),
                        size,
                        count,
                    });
                }
            };
        while buf.has_remaining() {
            let (tag, wire_type) = decode_key(&mut buf)?;
            match (tag, wire_type) {
                (1, WireType::LengthDelimited) => prost::encoding::message::merge(
                    wire_type,
                    message.spec.get_or_insert_with(Spec::default),
                    &mut buf,
                    DecodeContext::default(),
                )?,
                (2, WireType::LengthDelimited) => {
                    let field = decode_varint(&mut buf)?;
                    let left = buf.remaining();
                    let len = usize::try_from(field)
                        .ok()
                        .filter(|len| *len <= left)
                        .ok_or(WireError::SampleLength { len: field, left })?;
                    if len >= JOIN_BELOW {
                        close(&mut joined, &mut run, &mut message.runs);
                        message.runs.push(SampleRun {
                            data: buf.copy_to_bytes(len),
                            size: len,
                            count: 1,
                        });
                        continue;
                    }
                    if run.is_some_and(|(size, _)| size != len) {
                        close(&mut joined, &mut run, &mut message.runs);
                    }
                    if joined.capacity() == 0 {
                        joined.reserve(left);
                    }
                    joined.put((&mut buf).take(len));
                    let count = &mut run.get_or_insert((len, 0)).1;
                    *count += 1;
                    *count += join_in_place(&mut buf, len, &mut joined);
                }
                (1 | 2, wire_type) => {
                    // A known field of another type: refused, as prost
                    // refuses it (skipped, it passed for an empty push).
                    check_wire_type(WireType::LengthDelimited, wire_type)?;
                }
                (tag, wire_type) => skip_field(wire_type, tag, &mut buf, DecodeContext::default())?,
            }
        }
        close(&mut joined, &mut run, &mut message.runs);
        Ok(message)
    }
}

/// Joins the samples of `size` bytes that follow in `buf`'s current chunk,
/// each read in place from the chunk, and returns how many: the same
/// fields `PushIn::decode` would read one by one through the `Buf`
/// methods, which cost more than the copy for small samples (gRPC with
/// batches of 64 B samples spent 17 % of its CPU in `Chunks::advance` and
/// `BytesMut::put`, per perf). Stops at the first field that is not such a
/// sample or does not lie whole within the chunk, for the caller to read.
fn join_in_place(buf: &mut Chunks, size: usize, joined: &mut BytesMut) -> usize {
    let (header, header_len) = sample_header(size);
    let header = &header[..header_len];
    let chunk = buf.chunk();
    let mut at = 0;
    let mut count = 0;
    while let Some(field) = chunk.get(at..at + header_len + size) {
        let Some(sample) = field.strip_prefix(header) else {
            break;
        };
        joined.extend_from_slice(sample);
        at += field.len();
        count += 1;
    }
    buf.advance(at);
    count
}

/// Reads gRPC messages from a request body, frame by frame, refusing a
/// message over `limit` from its prefix, before reading it.
pub(crate) struct MessageReader {
    body: tonic::body::Body,
    buffered: Chunks,
    limit: usize,
}

impl MessageReader {
    pub(crate) fn new(body: tonic::body::Body, limit: usize) -> Self {
        MessageReader {
            body,
            buffered: Chunks::default(),
            limit,
        }
    }

    /// The next message, or `None` when the stream ends between messages.
    ///
    /// # Errors
    ///
    /// A [`WireError`] naming what is wrong with the message or stream.
    #[cfg(test)]
    pub(crate) async fn next<M: Message + Default>(&mut self) -> Result<Option<M>, WireError> {
        match self.next_bytes().await? {
            Some(bytes) => Ok(Some(M::decode(bytes)?)),
            None => Ok(None),
        }
    }

    /// The next `PushRequest`, read as [`PushIn`] (small samples copied
    /// together as they are decoded), or `None` when the stream ends
    /// between messages.
    ///
    /// # Errors
    ///
    /// As [`next`](Self::next).
    pub(crate) async fn next_push(&mut self) -> Result<Option<PushIn>, WireError> {
        match self.next_bytes().await? {
            Some(bytes) => Ok(Some(PushIn::decode(bytes)?)),
            None => Ok(None),
        }
    }

    /// The next message's bytes.
    async fn next_bytes(&mut self) -> Result<Option<Chunks>, WireError> {
        if !self.fill(PREFIX).await? {
            return match self.buffered.remaining() {
                0 => Ok(None),
                _ => Err(WireError::Truncated),
            };
        }
        let flag = self.buffered.get_u8();
        let len = self.buffered.get_u32() as usize;
        match flag {
            0 => {}
            1 => return Err(WireError::Compressed),
            flag => return Err(WireError::BadFlag(flag)),
        }
        if len > self.limit {
            return Err(WireError::TooLarge {
                len,
                limit: self.limit,
            });
        }
        if !self.fill(len).await? {
            return Err(WireError::Truncated);
        }
        Ok(Some(self.buffered.split_to(len)))
    }

    /// Reads frames until `len` bytes are buffered; false if the stream
    /// ends first.
    async fn fill(&mut self, len: usize) -> Result<bool, WireError> {
        while self.buffered.remaining() < len {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None => return Ok(false),
                Some(Err(status)) => return Err(WireError::Body(status)),
                // Trailers (which a request has no use for) are skipped.
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffered.push(data);
                    }
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
#[path = "grpc_wire_tests.rs"]
mod tests;
