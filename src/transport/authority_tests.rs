//! Tests of the `:authority` normalizer against the real h2 server.
use std::time::Duration;

use bytes::Bytes;
use h2::RecvStream;
use h2::server::SendResponse;
use loona_hpack::encoder::encode_integer_into;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::*;

const TYPE_DATA: u8 = 0x0;
const TYPE_RST_STREAM: u8 = 0x3;
const TYPE_SETTINGS: u8 = 0x4;
const TYPE_PING: u8 = 0x6;
const TYPE_WINDOW_UPDATE: u8 = 0x8;
const FLAG_ACK: u8 = 0x1;
const PROTOCOL_ERROR: u32 = 0x1;
const WAIT: Duration = Duration::from_secs(20);
const BAD_AUTHORITY: &str = "tmp%2Fplugin123";

type Frame = (u8, u8, u32, Vec<u8>);
type Accepted = (http::Request<RecvStream>, SendResponse<Bytes>);

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    put_frame_header(&mut out, payload.len(), kind, flags, stream_id);
    out.extend_from_slice(payload);
    out.to_vec()
}

fn parse_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let stream_id = u32::from_be_bytes(bytes[5..9].try_into().unwrap());
        frames.push((bytes[3], bytes[4], stream_id, bytes[9..9 + len].to_vec()));
        bytes = &bytes[9 + len..];
    }
    frames
}

/// HPACK string literal, not Huffman-coded.
fn hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    encode_integer_into(s.len(), 7, 0, out).unwrap();
    out.extend_from_slice(s);
}

/// Literal field with a static-table name: `0x40` indexes it into the
/// dynamic table (6-bit prefix), `0x00` does not (4-bit prefix).
fn literal(out: &mut Vec<u8>, name_index: usize, value: &[u8], index: bool) {
    if index {
        encode_integer_into(name_index, 6, 0x40, out).unwrap();
    } else {
        encode_integer_into(name_index, 4, 0x00, out).unwrap();
    }
    hpack_string(out, value);
}

/// Header blocks as grpc-core encodes a unary call: the first block
/// inserts `:path`, `:authority`, `content-type` and `te` into the
/// dynamic table, later blocks refer to them by index (62 = newest).
/// The third block starts with a table size update (to 4096, which
/// keeps the entries), as a client may send after SETTINGS.
fn grpcio_blocks(authority: &str) -> [Vec<u8>; 3] {
    let mut first = vec![0x83, 0x86]; // :method POST, :scheme http
    literal(&mut first, 4, b"/proto.KV/Get", true); // :path
    literal(&mut first, 1, authority.as_bytes(), true); // :authority
    literal(&mut first, 31, b"application/grpc", true); // content-type
    first.push(0x40); // te, new name
    hpack_string(&mut first, b"te");
    hpack_string(&mut first, b"trailers");
    // Dynamic table now: 62 te, 63 content-type, 64 :authority, 65 :path.
    let again = vec![0x83, 0x86, 0x80 | 65, 0x80 | 64, 0x80 | 63, 0x80 | 62];
    let mut resized = Vec::new();
    encode_integer_into(4096, 5, 0x20, &mut resized).unwrap();
    resized.extend_from_slice(&again);
    [first, again, resized]
}

/// Three requests on streams 1, 3 and 5: a plain HEADERS frame, one
/// split into HEADERS + CONTINUATION, one PADDED with PRIORITY.
fn three_requests(authority: &str) -> Vec<u8> {
    let [b1, b3, b5] = grpcio_blocks(authority);
    let mut out = frame(TYPE_HEADERS, FLAG_END_STREAM | FLAG_END_HEADERS, 1, &b1);
    let (head, tail) = b3.split_at(b3.len() / 2);
    out.extend(frame(TYPE_HEADERS, FLAG_END_STREAM, 3, head));
    out.extend(frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 3, tail));
    let mut padded = vec![7]; // pad length
    padded.extend_from_slice(&[0, 0, 0, 0, 15]); // depends on 0, weight 16
    padded.extend_from_slice(&b5);
    padded.extend_from_slice(&[0; 7]);
    let flags = FLAG_END_STREAM | FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY;
    out.extend(frame(TYPE_HEADERS, flags, 5, &padded));
    out
}

/// Serves h2 on `io`, handing every accepted request to the test.
async fn serve<T: AsyncRead + AsyncWrite + Unpin>(io: T, tx: mpsc::UnboundedSender<Accepted>) {
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(1 << 20)
        .initial_connection_window_size(1 << 20)
        .max_frame_size(1 << 20);
    let Ok(mut conn) = builder.handshake::<_, Bytes>(io).await else {
        return;
    };
    while let Some(Ok(accepted)) = conn.accept().await {
        if tx.send(accepted).is_err() {
            break;
        }
    }
}

async fn read_frames(mut rd: ReadHalf<DuplexStream>, tx: mpsc::UnboundedSender<Frame>) {
    loop {
        let mut head = [0u8; FRAME_HEADER_LEN];
        if rd.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0; len];
        if rd.read_exact(&mut payload).await.is_err() {
            return;
        }
        let stream_id = u32::from_be_bytes(head[5..9].try_into().unwrap());
        if tx.send((head[3], head[4], stream_id, payload)).is_err() {
            return;
        }
    }
}

/// A raw HTTP/2 client talking to an h2 server, with or without
/// [`AuthorityFix`] in front of it.
struct Peer {
    wr: WriteHalf<DuplexStream>,
    frames: mpsc::UnboundedReceiver<Frame>,
    requests: mpsc::UnboundedReceiver<Accepted>,
}

impl Peer {
    /// Connects and settles SETTINGS, so that h2's larger windows and
    /// frame size apply to what the test sends next.
    async fn start(fix: bool) -> Peer {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (req_tx, requests) = mpsc::unbounded_channel();
        if fix {
            tokio::spawn(serve(AuthorityFix::new(server), req_tx));
        } else {
            tokio::spawn(serve(server, req_tx));
        }
        let (rd, mut wr) = tokio::io::split(client);
        let (frame_tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(read_frames(rd, frame_tx));
        wr.write_all(PREFACE).await.unwrap();
        wr.write_all(&frame(TYPE_SETTINGS, 0, 0, &[]))
            .await
            .unwrap();
        let mut peer = Peer {
            wr,
            frames,
            requests,
        };
        let (mut settings, mut window) = (false, false);
        while !(settings && window) {
            let (kind, flags, stream_id, _) = peer.next_frame().await;
            settings |= kind == TYPE_SETTINGS && flags & FLAG_ACK == 0;
            window |= kind == TYPE_WINDOW_UPDATE && stream_id == 0;
        }
        peer.send(&frame(TYPE_SETTINGS, FLAG_ACK, 0, &[])).await;
        peer
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.unwrap();
        self.wr.flush().await.unwrap();
    }

    async fn next_frame(&mut self) -> Frame {
        timeout(WAIT, self.frames.recv())
            .await
            .expect("timed out waiting for a frame from h2")
            .expect("h2 closed the connection")
    }

    async fn next_request(&mut self) -> Accepted {
        timeout(WAIT, self.requests.recv())
            .await
            .expect("timed out waiting for h2 to accept a request")
            .expect("h2 connection ended")
    }

    /// Waits for RST_STREAM on each of `streams`, returning the codes.
    async fn resets(&mut self, streams: &[u32]) -> Vec<(u32, u32)> {
        let mut resets = Vec::new();
        while resets.len() < streams.len() {
            let (kind, _, stream_id, payload) = self.next_frame().await;
            if kind == TYPE_RST_STREAM && streams.contains(&stream_id) {
                resets.push((
                    stream_id,
                    u32::from_be_bytes(payload[..4].try_into().unwrap()),
                ));
            }
        }
        resets
    }
}

fn assert_grpc_request(accepted: &Accepted, stream_id: u32, authority: &str) {
    let (request, respond) = accepted;
    assert_eq!(u32::from(respond.stream_id()), stream_id);
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri().scheme_str(), Some("http"));
    assert_eq!(request.uri().path(), "/proto.KV/Get");
    assert_eq!(
        request.uri().authority().map(|a| a.as_str()),
        Some(authority)
    );
    assert_eq!(request.headers()["content-type"], "application/grpc");
    assert_eq!(request.headers()["te"], "trailers");
    assert_eq!(request.headers().len(), 2, "{:?}", request.headers());
}

#[tokio::test]
async fn authority_fix_makes_h2_accept_grpcio_authority() {
    let mut peer = Peer::start(true).await;
    peer.send(&three_requests(BAD_AUTHORITY)).await;
    for stream_id in [1, 3, 5] {
        let accepted = peer.next_request().await;
        assert_grpc_request(&accepted, stream_id, "localhost");
    }
}

#[tokio::test]
async fn authority_fix_h2_alone_rejects_grpcio_authority() {
    let mut peer = Peer::start(false).await;
    peer.send(&three_requests(BAD_AUTHORITY)).await;
    // A fourth call with a valid authority, reusing the dynamic table.
    let mut block = vec![0x83, 0x86, 0x80 | 65];
    literal(&mut block, 1, b"localhost:1234", false);
    block.extend_from_slice(&[0x80 | 63, 0x80 | 62]);
    peer.send(&frame(
        TYPE_HEADERS,
        FLAG_END_STREAM | FLAG_END_HEADERS,
        7,
        &block,
    ))
    .await;

    let resets = peer.resets(&[1, 3, 5]).await;
    assert_eq!(
        resets,
        [
            (1, PROTOCOL_ERROR),
            (3, PROTOCOL_ERROR),
            (5, PROTOCOL_ERROR)
        ]
    );
    // The first request h2 accepts is the valid one: 1, 3, 5 never came.
    let accepted = peer.next_request().await;
    assert_grpc_request(&accepted, 7, "localhost:1234");
}

#[tokio::test]
async fn authority_fix_leaves_valid_authority_alone() {
    let mut peer = Peer::start(true).await;
    peer.send(&three_requests("localhost:1234")).await;
    for stream_id in [1, 3, 5] {
        let accepted = peer.next_request().await;
        assert_grpc_request(&accepted, stream_id, "localhost:1234");
    }
}

/// RFC 7541 C.4: requests Huffman-coded and using the dynamic table.
#[tokio::test]
async fn authority_fix_decodes_rfc7541_huffman_examples() {
    let blocks: [&[u8]; 3] = [
        &[
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ],
        &[
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
        ],
        &[
            0x82, 0x87, 0x85, 0xbf, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f,
            0x89, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf,
        ],
    ];
    let mut peer = Peer::start(true).await;
    for (block, stream_id) in blocks.iter().zip([1, 3, 5]) {
        peer.send(&frame(
            TYPE_HEADERS,
            FLAG_END_STREAM | FLAG_END_HEADERS,
            stream_id,
            block,
        ))
        .await;
    }
    let (first, _) = peer.next_request().await;
    assert_eq!(first.uri().to_string(), "http://www.example.com/");
    let (second, _) = peer.next_request().await;
    assert_eq!(second.uri().to_string(), "http://www.example.com/");
    assert_eq!(second.headers()["cache-control"], "no-cache");
    let (third, _) = peer.next_request().await;
    assert_eq!(
        third.uri().to_string(),
        "https://www.example.com/index.html"
    );
    assert_eq!(third.headers()["custom-key"], "custom-value");
}

#[tokio::test]
async fn authority_fix_passes_large_data_frame_through() {
    let mut peer = Peer::start(true).await;
    let [b1, b3, _] = grpcio_blocks(BAD_AUTHORITY);
    let body: Vec<u8> = (0..100 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let mut bytes = frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &b1);
    bytes.extend(frame(TYPE_DATA, FLAG_END_STREAM, 1, &body));
    bytes.extend(frame(
        TYPE_HEADERS,
        FLAG_END_STREAM | FLAG_END_HEADERS,
        3,
        &b3,
    ));
    peer.send(&bytes).await;

    let (request, _respond) = peer.next_request().await;
    assert_eq!(request.uri().authority().unwrap(), "localhost");
    let mut stream = request.into_body();
    let mut received = Vec::new();
    while let Some(chunk) = timeout(WAIT, stream.data()).await.expect("body timed out") {
        let chunk = chunk.unwrap();
        stream.flow_control().release_capacity(chunk.len()).unwrap();
        received.extend_from_slice(&chunk);
    }
    assert!(received == body, "body changed: {} bytes", received.len());
    // Framing carries on after the large frame.
    let accepted = peer.next_request().await;
    assert_grpc_request(&accepted, 3, "localhost");
}

async fn read_all(input: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    AuthorityFix::new(input).read_to_end(&mut out).await?;
    Ok(out)
}

fn after_preface(frames: &[u8]) -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(TYPE_SETTINGS, 0, 0, &[]));
    bytes.extend_from_slice(frames);
    bytes
}

#[tokio::test]
async fn authority_fix_rejects_malformed_input() {
    let mut too_large_table = Vec::new();
    encode_integer_into(4097, 5, 0x20, &mut too_large_table).unwrap();
    too_large_table.push(0x82);
    let open_headers = frame(TYPE_HEADERS, 0, 1, &[0x82]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "oversized HEADERS",
            vec![0xff, 0xff, 0xff, TYPE_HEADERS, FLAG_END_HEADERS, 0, 0, 0, 1],
            "exceeds",
        ),
        (
            "orphan CONTINUATION",
            frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, &[0x82]),
            "without a HEADERS",
        ),
        (
            "bad HPACK index",
            frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &[0x80]),
            "HPACK",
        ),
        (
            "table size above 4096",
            frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &too_large_table),
            "HPACK",
        ),
        (
            "too much padding",
            frame(TYPE_HEADERS, FLAG_END_HEADERS | FLAG_PADDED, 1, &[10, 0x82]),
            "padding",
        ),
        (
            "short PRIORITY",
            frame(TYPE_HEADERS, FLAG_END_HEADERS | FLAG_PRIORITY, 1, &[0, 0]),
            "PRIORITY",
        ),
        (
            "DATA inside a header block",
            [open_headers.clone(), frame(TYPE_DATA, 0, 1, b"x")].concat(),
            "only CONTINUATION",
        ),
        (
            "CONTINUATION on another stream",
            [
                open_headers.clone(),
                frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 3, &[]),
            ]
            .concat(),
            "inside the header block",
        ),
        (
            "PUSH_PROMISE",
            frame(TYPE_PUSH_PROMISE, FLAG_END_HEADERS, 1, &[0, 0, 0, 2]),
            "PUSH_PROMISE",
        ),
    ];
    for (name, frames, message) in cases {
        let input = after_preface(&frames);
        let mut fix = AuthorityFix::new(&input[..]);
        let mut out = Vec::new();
        let err = fix.read_to_end(&mut out).await.expect_err(name);
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{name}: {err}");
        assert!(err.to_string().contains(message), "{name}: {err}");
        // What came before the bad frame was delivered, and reading
        // again fails the same way.
        assert!(out.starts_with(PREFACE), "{name}");
        let again = fix.read(&mut [0; 64]).await.expect_err(name);
        assert_eq!(again.to_string(), err.to_string());
    }

    // Closed halfway through a frame or a header block.
    for cut in [&frame(TYPE_PING, 0, 0, &[0; 8])[..12], &open_headers[..]] {
        let err = read_all(&after_preface(cut)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}

#[tokio::test]
async fn authority_fix_passes_non_http2_through() {
    let http1 = b"GET / HTTP/1.1\r\nHost: tmp%2Fplugin\r\n\r\nPRI * HTTP/2.0\r\n";
    assert_eq!(read_all(http1).await.unwrap(), http1);
    assert_eq!(read_all(&PREFACE[..10]).await.unwrap(), &PREFACE[..10]);
    assert_eq!(read_all(b"").await.unwrap(), b"");
    assert_eq!(read_all(PREFACE).await.unwrap(), PREFACE);
}

/// Hands out one byte per read, returning Pending in between.
struct Trickle<'a> {
    data: &'a [u8],
    stall: bool,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stall = !self.stall;
        if self.stall {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some((&byte, rest)) = self.data.split_first() {
            buf.put_slice(&[byte]);
            self.data = rest;
        }
        Poll::Ready(Ok(()))
    }
}

/// Rewrites what h2 receives as expected, whatever the read sizes.
#[tokio::test]
async fn authority_fix_output_is_well_formed_and_chunking_independent() {
    let big_value = vec![b'v'; 40_000];
    let mut big_block = vec![0x83, 0x86];
    literal(&mut big_block, 4, b"/proto.KV/Get", false);
    big_block.push(0x00);
    hpack_string(&mut big_block, b"x-big");
    hpack_string(&mut big_block, &big_value);
    let data = frame(TYPE_DATA, 0, 1, &vec![0xab; 40_000]);
    let ping = frame(TYPE_PING, 0, 0, b"12345678");
    let window = frame(TYPE_WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]);
    let mut frames = ping.clone();
    frames.extend(three_requests(BAD_AUTHORITY));
    frames.extend(&data);
    frames.extend(frame(
        TYPE_HEADERS,
        FLAG_END_STREAM | FLAG_END_HEADERS,
        7,
        &big_block,
    ));
    frames.extend(&window);
    let input = after_preface(&frames);

    let whole = read_all(&input).await.unwrap();
    let mut trickled = Vec::new();
    let mut fix = AuthorityFix::new(Trickle {
        data: &input,
        stall: false,
    });
    let mut small = [0u8; 5];
    loop {
        let n = fix.read(&mut small).await.unwrap();
        if n == 0 {
            break;
        }
        trickled.extend_from_slice(&small[..n]);
    }
    assert!(whole == trickled, "output depends on read sizes");

    assert!(whole.starts_with(PREFACE));
    let out = parse_frames(&whole[PREFACE.len()..]);
    let mut decoder = Decoder::new();
    let mut blocks = Vec::new();
    let mut passed = Vec::new();
    let mut open: Option<(u32, u8, Vec<u8>)> = None;
    for (kind, flags, stream_id, payload) in out {
        match kind {
            TYPE_HEADERS | TYPE_CONTINUATION => {
                assert!(payload.len() <= MAX_EMITTED_PAYLOAD, "{}", payload.len());
            }
            _ => {}
        }
        match kind {
            TYPE_HEADERS => {
                assert!(open.is_none());
                assert_eq!(flags & FLAG_PADDED, 0);
                let mut fragment = &payload[..];
                if flags & FLAG_PRIORITY != 0 {
                    assert_eq!(&payload[..5], &[0, 0, 0, 0, 15]);
                    fragment = &payload[5..];
                }
                open = Some((stream_id, flags, fragment.to_vec()));
            }
            TYPE_CONTINUATION => {
                let (open_id, _, fragment) = open.as_mut().unwrap();
                assert_eq!(*open_id, stream_id);
                fragment.extend_from_slice(&payload);
            }
            _ => {
                assert!(open.is_none());
                passed.push(frame(kind, flags, stream_id, &payload));
            }
        }
        if matches!(kind, TYPE_HEADERS | TYPE_CONTINUATION) && flags & FLAG_END_HEADERS != 0 {
            let (id, first_flags, fragment) = open.take().unwrap();
            if blocks.is_empty() {
                assert_eq!(fragment[0], TABLE_SIZE_UPDATE_ZERO);
            }
            let fields = decoder.decode(&fragment).unwrap();
            blocks.push((id, first_flags & !FLAG_END_HEADERS, fields));
        }
    }
    assert_eq!(
        passed,
        [frame(TYPE_SETTINGS, 0, 0, &[]), ping, data, window]
    );

    let fields = |authority: &str| -> Vec<(Vec<u8>, Vec<u8>)> {
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/proto.KV/Get"),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
    };
    let big_fields: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b":method".to_vec(), b"POST".to_vec()),
        (b":scheme".to_vec(), b"http".to_vec()),
        (b":path".to_vec(), b"/proto.KV/Get".to_vec()),
        (b"x-big".to_vec(), big_value),
    ];
    assert_eq!(
        blocks,
        [
            (1, FLAG_END_STREAM, fields("localhost")),
            (3, FLAG_END_STREAM, fields("localhost")),
            (5, FLAG_END_STREAM | FLAG_PRIORITY, fields("localhost")),
            (7, FLAG_END_STREAM, big_fields),
        ]
    );
}

#[test]
fn authority_fix_can_serve_tonic() {
    fn serveable<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static>() {}
    serveable::<AuthorityFix<tokio::net::TcpStream>>();
    serveable::<AuthorityFix<crate::transport::Connection>>();
}

/// Random frames after the preface: errors, never panics.
#[tokio::test]
async fn authority_fix_survives_random_frames() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let mut frames = Vec::new();
        for _ in 0..next() % 4 + 1 {
            let kind = [
                TYPE_HEADERS,
                TYPE_CONTINUATION,
                TYPE_HEADERS,
                TYPE_DATA,
                TYPE_PING,
            ][(next() % 5) as usize];
            let payload: Vec<u8> = (0..next() % 40).map(|_| next() as u8).collect();
            let mut bytes = frame(kind, next() as u8, (next() % 4) as u32, &payload);
            if next() % 8 == 0 {
                bytes[2] = next() as u8; // length no longer matches
            }
            frames.extend(bytes);
        }
        if let Err(err) = read_all(&after_preface(&frames)).await {
            assert!(
                matches!(
                    err.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn authority_fix_steps_aside_when_the_first_request_is_fine() {
    // A go-plugin or tonic host sends `localhost`: the whole stream, every
    // header block included, comes out byte for byte as it went in.
    let input = after_preface(&three_requests("localhost"));
    assert_eq!(read_all(&input).await.unwrap(), input);
    // A grpcio host's stream is rewritten, every block of it.
    let input = after_preface(&three_requests(BAD_AUTHORITY));
    let output = read_all(&input).await.unwrap();
    assert_ne!(output, input);
    assert!(
        !output
            .windows(BAD_AUTHORITY.len())
            .any(|w| w == BAD_AUTHORITY.as_bytes())
    );
}
