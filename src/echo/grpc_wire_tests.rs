use std::convert::Infallible;
use std::task::{Context, Poll};

use http_body::Frame;

use super::*;
use crate::proto::echo::{Leaf, PushRequest};

/// A request body that yields the given chunks as DATA frames.
struct Frames(VecDeque<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

fn reader(chunks: impl IntoIterator<Item = Bytes>, limit: usize) -> MessageReader {
    let body = tonic::body::Body::new(Frames(chunks.into_iter().collect()));
    MessageReader::new(body, limit)
}

fn spec() -> Spec {
    Spec {
        leaves: vec![Leaf {
            dtype: "uint8".into(),
            shape: vec![3],
            path: "obs".into(),
        }],
    }
}

/// The samples of runs, one by one.
fn samples_of(push: &PushIn) -> Vec<Bytes> {
    let mut samples = Vec::new();
    for run in &push.runs {
        assert_eq!(
            run.data.len(),
            run.size * run.count,
            "a run is whole samples"
        );
        for i in 0..run.count {
            samples.push(run.data.slice(i * run.size..(i + 1) * run.size));
        }
    }
    samples
}

/// prost's own encoding, framed.
fn framed(message: &PushRequest) -> Vec<u8> {
    let mut out = BytesMut::new();
    frame_message(message, &mut out);
    out.to_vec()
}

fn encoded(spec: Option<&Spec>, samples: &[Bytes]) -> VecDeque<Bytes> {
    let mut chunks = VecDeque::new();
    let runs = samples.iter().map(|s| (s.clone(), s.len())).collect();
    encode_push(spec, runs, &mut chunks).unwrap();
    chunks
}

fn sample(len: usize, seed: u8) -> Bytes {
    (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect()
}

#[test]
fn pushes_encode_as_prost_does_and_large_samples_are_not_copied() {
    let small = sample(100, 3);
    let large = sample(ZERO_COPY_MIN, 5);
    let cases: [(Option<Spec>, Vec<Bytes>, usize); 5] = [
        (Some(spec()), vec![], 1),
        (Some(spec()), vec![small.clone(), small.clone()], 1),
        (None, vec![large.clone()], 2),
        (Some(spec()), vec![large.clone(), large.clone()], 4),
        (None, vec![small.clone(), large.clone(), small.clone()], 3),
    ];
    for (i, (spec, samples, count)) in cases.into_iter().enumerate() {
        let chunks = encoded(spec.as_ref(), &samples);
        let expected = framed(&PushRequest {
            spec,
            samples: samples.clone(),
        });
        assert_eq!(
            chunks.iter().flatten().copied().collect::<Vec<u8>>(),
            expected,
            "case {i}"
        );
        assert_eq!(chunks.len(), count, "case {i}: {chunks:?}");
        let uncopied = chunks.iter().filter(|c| c.as_ptr() == large.as_ptr());
        let large_ones = samples.iter().filter(|s| s.len() >= ZERO_COPY_MIN);
        assert_eq!(uncopied.count(), large_ones.count(), "case {i}");
    }
}

#[tokio::test]
async fn messages_read_back_across_any_split_and_whole_fields_are_not_copied() {
    let large = sample(ZERO_COPY_MIN + 7, 7);
    let messages = [
        PushRequest {
            spec: Some(spec()),
            samples: vec![],
        },
        PushRequest {
            spec: None,
            samples: vec![large.clone(), sample(10, 1)],
        },
        // Small samples of two sizes around a large one: four runs.
        PushRequest {
            spec: None,
            samples: vec![
                sample(10, 2),
                sample(10, 3),
                sample(12, 4),
                large.clone(),
                sample(10, 5),
            ],
        },
        // Runs read in place: empty samples, samples with a two-byte
        // length, a changed size within the chunk.
        PushRequest {
            spec: None,
            samples: vec![
                sample(0, 1),
                sample(0, 1),
                sample(200, 2),
                sample(200, 3),
                sample(200, 4),
                sample(201, 5),
                sample(10, 6),
                sample(10, 7),
            ],
        },
    ];
    let wire: Vec<u8> = messages.iter().flat_map(framed).collect();
    let wire = Bytes::from(wire);
    // Split the stream in two at every place near the message boundaries
    // and the large field's edges, and into single bytes.
    let first = framed(&messages[0]).len();
    let cuts = (0..first + 12).chain(wire.len() - 40..wire.len());
    let mut splits: Vec<Vec<Bytes>> = cuts
        .map(|cut| vec![wire.slice(..cut), wire.slice(cut..)])
        .collect();
    splits.push((0..wire.len()).map(|i| wire.slice(i..=i)).collect());
    let field_start = first + PREFIX + 1 + prost::length_delimiter_len(large.len());
    let field_end = field_start + large.len();
    for chunks in splits {
        let cut = chunks[0].len();
        let mut plain = reader(chunks.clone(), 1 << 20);
        for message in &messages {
            let got: PushRequest = plain.next().await.unwrap().unwrap();
            assert_eq!(&got, message, "cut at {cut}");
        }
        assert!(plain.next::<PushRequest>().await.unwrap().is_none());
        // The server's reading: the same spec and samples, small ones
        // joined into runs.
        let mut pushes = reader(chunks, 1 << 20);
        for message in &messages {
            let got = pushes.next_push().await.unwrap().unwrap();
            assert_eq!(got.spec, message.spec, "cut at {cut}");
            assert_eq!(samples_of(&got), message.samples, "cut at {cut}");
            // The small samples of a message share one buffer, run after
            // run, whatever their sizes.
            let small: Vec<&SampleRun> = got.runs.iter().filter(|r| r.size < JOIN_BELOW).collect();
            for pair in small.windows(2) {
                let end = pair[0].data.as_ptr_range().end;
                assert_eq!(pair[1].data.as_ptr(), end, "cut at {cut}: runs apart");
            }
        }
        assert!(pushes.next_push().await.unwrap().is_none());
    }
    // A field that lies whole in one chunk is a slice of it; one that
    // spans chunks is gathered.
    for cut in [
        field_start - 1,
        field_start,
        field_start + 1,
        field_end,
        field_end + 1,
    ] {
        let chunks = [wire.slice(..cut), wire.slice(cut..)];
        let mut reader = reader(chunks.clone(), 1 << 20);
        let _spec: PushRequest = reader.next().await.unwrap().unwrap();
        let got: PushRequest = reader.next().await.unwrap().unwrap();
        let field = got.samples[0].as_ptr_range();
        let uncopied = chunks.iter().any(|c| {
            let chunk = c.as_ptr_range();
            chunk.start <= field.start && field.end <= chunk.end
        });
        let whole = cut <= field_start || cut >= field_end;
        assert_eq!(uncopied, whole, "cut at {cut}");
    }
}

#[tokio::test]
async fn bad_framing_is_named() {
    let message = framed(&PushRequest {
        spec: None,
        samples: vec![sample(100, 1)],
    });
    let one = |bytes: Vec<u8>| reader([Bytes::from(bytes)], 1024);
    let mut small_limit = reader([Bytes::from(message.clone())], 64);
    let err = small_limit.next::<PushRequest>().await.unwrap_err();
    assert!(
        matches!(err, WireError::TooLarge { len, limit: 64 } if len > 100),
        "{err:?}"
    );
    assert_eq!(err.into_status().code(), tonic::Code::OutOfRange);

    let mut compressed = message.clone();
    compressed[0] = 1;
    let err = one(compressed).next::<PushRequest>().await.unwrap_err();
    assert!(matches!(err, WireError::Compressed), "{err:?}");
    assert_eq!(err.into_status().code(), tonic::Code::Internal);

    let mut flagged = message.clone();
    flagged[0] = 7;
    let err = one(flagged).next::<PushRequest>().await.unwrap_err();
    assert!(matches!(err, WireError::BadFlag(7)), "{err:?}");

    for cut in [3, 20] {
        let err = one(message[..cut].to_vec())
            .next::<PushRequest>()
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::Truncated), "{cut}: {err:?}");
    }

    let junk = [&[0u8, 0, 0, 0, 16][..], &[0xff; 16]].concat();
    let err = one(junk.clone()).next::<PushRequest>().await.unwrap_err();
    assert!(matches!(err, WireError::Decode(_)), "{err:?}");
    let err = one(junk).next_push().await.unwrap_err();
    assert!(matches!(err, WireError::Decode(_)), "{err:?}");
    // A sample field longer than the rest of its message.
    let long = [&[0u8, 0, 0, 0, 4][..], &[SAMPLES_KEY, 100, 1, 2]].concat();
    let err = one(long).next_push().await.unwrap_err();
    assert!(
        matches!(err, WireError::SampleLength { len: 100, left: 2 }),
        "{err:?}"
    );
    assert_eq!(err.into_status().code(), tonic::Code::Internal);

    assert!(
        reader([], 64)
            .next::<PushRequest>()
            .await
            .unwrap()
            .is_none()
    );
}

/// A `PushRequest`'s bytes, in chunks cut at `cuts`.
fn chunked(bytes: &[u8], cuts: &[usize]) -> Chunks {
    let mut chunks = Chunks::default();
    let mut at = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    ends.sort_unstable();
    for end in ends.into_iter().chain([bytes.len()]) {
        chunks.push(Bytes::copy_from_slice(&bytes[at..end.max(at)]));
        at = end.max(at);
    }
    chunks
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(500)
    ))]

    /// Whatever a client sends, the server's decoder reads what prost
    /// reads, or refuses what prost refuses: valid messages of samples of
    /// any sizes, the same with bytes changed, and bytes at random, in
    /// chunks cut anywhere (the in-place path reads within one chunk).
    #[test]
    fn the_decoder_agrees_with_prost_on_any_bytes(
        sizes in proptest::collection::vec(0usize..300, 0..40),
        flips in proptest::collection::vec((0usize..100_000, 0u8..=255), 0..4),
        noise in proptest::collection::vec(0u8..=255, 0..64),
        random in proptest::bool::ANY,
        cuts in proptest::collection::vec(0usize..100_000, 0..6),
    ) {
        let mut bytes = if random {
            noise
        } else {
            let samples = sizes.iter().enumerate().map(|(i, &n)| sample(n, i as u8 | 1)).collect();
            prost::Message::encode_to_vec(&PushRequest { spec: None, samples })
        };
        if !bytes.is_empty() {
            for (at, byte) in &flips {
                let at = at % bytes.len();
                bytes[at] = *byte;
            }
        }
        let ours = PushIn::decode(chunked(&bytes, &cuts));
        let prosts = <PushRequest as prost::Message>::decode(bytes.as_slice());
        match (ours, prosts) {
            (Ok(ours), Ok(prosts)) => {
                proptest::prop_assert_eq!(samples_of(&ours), prosts.samples);
                proptest::prop_assert_eq!(ours.spec, prosts.spec);
            }
            (Err(_), Err(_)) => {}
            (ours, prosts) => proptest::prop_assert!(
                false,
                "ours {:?}, prost's {:?}",
                ours.map(|p| samples_of(&p).len()),
                prosts.map(|p| p.samples.len())
            ),
        }
    }
}
