//! Where transports deliver samples: a [`Sink`], async and bounded, so that
//! a slow consumer slows producers down instead of growing memory.

use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{Semaphore, mpsc};

use super::Spec;

/// One whole sample: the leaves' bytes concatenated in flattened order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Which connection (stream) it came from, numbered by the transport.
    pub stream: u64,
    /// The payload, exactly the spec's payload size.
    pub data: Bytes,
}

/// A failure to deliver a sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The consumer is gone; nothing more can be delivered.
    #[error("the sample sink is closed")]
    Closed,
    /// A sample whose size is not the spec's payload size.
    #[error("sample of {actual} bytes, but the spec's payload is {expected} bytes")]
    WrongSize {
        /// The spec's payload size.
        expected: u64,
        /// The sample's size.
        actual: u64,
    },
}

/// Where a transport pushes whole samples. `push` completes once the sample
/// is accepted (a transport acknowledges it only then), and waits while the
/// sink is full.
///
/// A transport drops a `push` unfinished when it shuts down while the sink
/// is full (so that a full sink cannot hold shutdown back), and never
/// acknowledges that sample: a `push` dropped before it completed must not
/// have delivered it, as with a bounded `tokio::sync::mpsc` channel.
pub trait Sink: Send + Sync + 'static {
    /// Delivers one sample, waiting for room.
    ///
    /// # Errors
    ///
    /// [`SinkError::Closed`] when the consumer is gone;
    /// [`SinkError::WrongSize`] for a sample of the wrong size.
    ///
    /// # Cancel safety
    ///
    /// Must be cancel safe, as above: a `push` dropped before it completed has
    /// not delivered its sample. [`ChannelSink`]'s is.
    fn push(&self, sample: Sample) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Delivers the first of `samples` (whole samples of `stream`, each
    /// `size` bytes, back to back) and as many more as the sink takes at
    /// once, waiting only while it can take none; returns how many it
    /// delivered (at least one). A transport calls it again for the rest.
    ///
    /// The default pushes the first sample alone; [`ChannelSink`] takes as
    /// many as it has room for, in one step, which is what makes small
    /// samples cheap.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push); nothing was delivered then.
    ///
    /// # Cancel safety
    ///
    /// Must be cancel safe as `push` is: dropped before it completed, it has
    /// delivered nothing.
    ///
    /// # Panics
    ///
    /// May panic when `samples` is empty or `size` is 0: a transport never
    /// asks for that.
    fn push_many(
        &self,
        stream: u64,
        samples: &Bytes,
        size: usize,
    ) -> impl Future<Output = Result<usize, SinkError>> + Send {
        let first = Sample {
            stream,
            data: samples.slice(..size),
        };
        async move { self.push(first).await.map(|()| 1) }
    }
}

/// The in-process sink: a bounded channel. Cheap to clone, one per
/// connection.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    tx: mpsc::UnboundedSender<Run>,
    /// One permit per sample the channel may still hold: the bound.
    room: Arc<Semaphore>,
    payload: u64,
}

/// Samples of one stream, back to back, as one item of the channel: a
/// push of many costs one item, not one per sample.
#[derive(Debug)]
struct Run {
    stream: u64,
    data: Bytes,
    size: usize,
    /// Samples not yet received (counted, not derived from `data`: a spec
    /// may have samples of 0 bytes).
    left: usize,
}

impl Run {
    /// The next sample, if any is left.
    fn next(&mut self) -> Option<Sample> {
        let one = self.take(1);
        (one.left == 1).then(|| Sample {
            stream: one.stream,
            data: one.data,
        })
    }

    /// The next `n` samples (fewer if fewer are left) as a run of their
    /// own: one slice, however many samples.
    fn take(&mut self, n: usize) -> Run {
        let n = n.min(self.left);
        self.left -= n;
        let data = self.data.split_to((n * self.size).min(self.data.len()));
        Run {
            stream: self.stream,
            data,
            size: self.size,
            left: n,
        }
    }
}

/// The consumer's end of a [`ChannelSink`]: samples one by one, or batches.
#[derive(Debug)]
pub struct SampleReceiver {
    rx: mpsc::UnboundedReceiver<Run>,
    room: Arc<Semaphore>,
    /// The run being received, and how many of its samples were taken:
    /// their room is given back together when the run is done (a
    /// semaphore call per sample cost more than the rest of `recv`).
    current: Option<Run>,
    taken: usize,
    spec: Spec,
    /// Samples a [`recv_batch`](SampleReceiver::recv_batch) took before it
    /// was dropped (or is still gathering), as runs: the next call (or
    /// [`recv`](SampleReceiver::recv)) begins with them, so a cancelled
    /// batch loses nothing.
    pending: std::collections::VecDeque<Run>,
    /// Samples in `pending`.
    pending_samples: usize,
}

/// A bounded in-process sink for samples of `spec`, holding at most
/// `capacity` samples not yet received (samples delivered together are
/// counted until the last of them is received).
///
/// # Panics
///
/// If `capacity` is 0.
///
/// ```
/// use rpcplugin::echo::{Sample, Sink, channel};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (sink, mut samples) = channel("uint8[2],float32[]".parse()?, 64);
/// sink.push(Sample { stream: 0, data: vec![1, 2, 0, 0, 128, 63].into() }).await?;
/// let sample = samples.recv().await.expect("a sample");
/// assert_eq!(sample.data.len(), 6);
/// # Ok(()) }
/// ```
pub fn channel(spec: Spec, capacity: usize) -> (ChannelSink, SampleReceiver) {
    assert!(capacity > 0, "a sample channel holds at least one sample");
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(capacity.min(Semaphore::MAX_PERMITS)));
    let sink = ChannelSink {
        tx,
        room: room.clone(),
        payload: spec.payload_size(),
    };
    (
        sink,
        SampleReceiver {
            rx,
            room,
            current: None,
            taken: 0,
            spec,
            pending: Default::default(),
            pending_samples: 0,
        },
    )
}

impl ChannelSink {
    /// Takes room for one sample, waiting for it, then as much more as is
    /// free at once, up to `most`: how many. Cancel safe: dropped while it
    /// waits, it holds nothing.
    async fn room_for(&self, most: usize) -> Result<usize, SinkError> {
        self.room
            .acquire()
            .await
            .map_err(|_| SinkError::Closed)?
            .forget();
        let more = most
            .saturating_sub(1)
            .min(self.room.available_permits())
            .min(u32::MAX as usize);
        let extra = match more {
            0 => 0,
            more => match self.room.try_acquire_many(more as u32) {
                Ok(permits) => {
                    permits.forget();
                    more
                }
                Err(_) => 0,
            },
        };
        Ok(1 + extra)
    }

    /// Hands `samples` samples of `size` bytes in `data` (their room
    /// taken) to the receiver as one run.
    fn hand_on(
        &self,
        stream: u64,
        data: Bytes,
        size: usize,
        samples: usize,
    ) -> Result<(), SinkError> {
        let run = Run {
            stream,
            data,
            size,
            left: samples,
        };
        self.tx.send(run).map_err(|_| {
            self.room.add_permits(samples);
            SinkError::Closed
        })
    }
}

impl Sink for ChannelSink {
    async fn push(&self, sample: Sample) -> Result<(), SinkError> {
        let actual = sample.data.len() as u64;
        if actual != self.payload {
            return Err(SinkError::WrongSize {
                expected: self.payload,
                actual,
            });
        }
        self.room_for(1).await?;
        let size = sample.data.len();
        self.hand_on(sample.stream, sample.data, size, 1)
    }

    async fn push_many(
        &self,
        stream: u64,
        samples: &Bytes,
        size: usize,
    ) -> Result<usize, SinkError> {
        let payload = usize::try_from(self.payload).unwrap_or(usize::MAX);
        if size != payload {
            return Err(SinkError::WrongSize {
                expected: self.payload,
                actual: size as u64,
            });
        }
        let partial = samples.len() % size.max(1);
        if partial != 0 || samples.is_empty() {
            // The sample cut short at the end, or no sample at all.
            return Err(SinkError::WrongSize {
                expected: self.payload,
                actual: partial as u64,
            });
        }
        let n = self.room_for(samples.len() / size).await?;
        self.hand_on(stream, samples.slice(..n * size), size, n)
            .map(|()| n)
    }
}

/// Samples stacked leaf by leaf: for each leaf, one contiguous buffer of
/// shape `[len, dims...]`, as a learner consumes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    len: usize,
    leaves: Vec<Bytes>,
}

impl Batch {
    /// How many samples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no sample (never, for a received batch).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Leaf `index` of every sample, contiguous: `len × leaf size` bytes.
    pub fn leaf(&self, index: usize) -> Option<&Bytes> {
        self.leaves.get(index)
    }
}

impl Drop for SampleReceiver {
    /// Producers waiting for room learn at once that the consumer is gone.
    fn drop(&mut self) {
        self.room.close();
    }
}

impl SampleReceiver {
    /// The next sample; `None` once every sink is dropped and all were
    /// received.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it returns, no sample is taken.
    pub async fn recv(&mut self) -> Option<Sample> {
        if let Some(run) = self.pending.front_mut() {
            let sample = run.next().expect("pending runs are never empty");
            if run.left == 0 {
                self.pending.pop_front();
            }
            self.pending_samples -= 1;
            return Some(sample);
        }
        loop {
            if let Some(sample) = self.next_taken() {
                return Some(sample);
            }
            // Cancel safe: a run received is kept in `current`.
            self.current = Some(self.rx.recv().await?);
        }
    }

    /// The next sample of the current run, if it has one left; the run's
    /// last sample gives the room of all of them back.
    fn next_taken(&mut self) -> Option<Sample> {
        let run = self.current.as_mut()?;
        let sample = run.next();
        if sample.is_some() {
            self.taken += 1;
        }
        self.end_of_run();
        sample
    }

    /// Up to `n` samples of the current run, as one run, if it has any
    /// left.
    fn take_taken(&mut self, n: usize) -> Option<Run> {
        let run = self.current.as_mut()?.take(n);
        self.taken += run.left;
        self.end_of_run();
        (run.left > 0).then_some(run)
    }

    /// Once the current run is all taken, its room goes back.
    fn end_of_run(&mut self) {
        if self.current.as_ref().is_some_and(|run| run.left == 0) {
            self.current = None;
            self.room.add_permits(std::mem::take(&mut self.taken));
        }
    }

    /// The next `size` samples stacked into a [`Batch`]. When the senders
    /// are gone, the last batch may be smaller; `None` when nothing is left.
    ///
    /// # Panics
    ///
    /// If `size` is 0.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped after some samples of the batch were received
    /// (a `timeout` or `select!` around it while samples trickle in), those
    /// samples stay in the receiver, and the next `recv_batch` or
    /// [`recv`](Self::recv) returns them first.
    pub async fn recv_batch(&mut self, size: usize) -> Option<Batch> {
        assert!(size > 0, "a batch holds at least one sample");
        while self.pending_samples < size {
            // Whole runs at a time: a sample each would cost a `Bytes` (two
            // atomic counts) per sample, the largest cost of receiving 64 B
            // samples (19 % of all CPU in `echo_throughput`, per perf).
            if let Some(run) = self.take_taken(size - self.pending_samples) {
                self.pending_samples += run.left;
                self.pending.push_back(run);
                continue;
            }
            match self.rx.recv().await {
                Some(run) => self.current = Some(run),
                None => break,
            }
        }
        if self.pending_samples == 0 {
            return None;
        }
        let mut runs = Vec::new();
        let mut len = 0;
        while len < size {
            let Some(front) = self.pending.front_mut() else {
                break;
            };
            let run = front.take(size - len);
            if front.left == 0 {
                self.pending.pop_front();
            }
            len += run.left;
            runs.push(run);
        }
        self.pending_samples -= len;
        Some(self.stack(len, &runs))
    }

    fn stack(&self, len: usize, runs: &[Run]) -> Batch {
        let payload = usize::try_from(self.spec.payload_size()).unwrap_or(usize::MAX);
        let mut offset = 0;
        let leaves = self
            .spec
            .leaves()
            .iter()
            .map(|leaf| {
                let size = leaf.size() as usize;
                let whole = size == payload;
                let stacked = match runs {
                    // One leaf, one run: the run is the leaf, uncopied.
                    [run] if whole => run.data.clone(),
                    _ => {
                        let mut stacked = BytesMut::with_capacity(size * len);
                        for run in runs {
                            if whole {
                                stacked.extend_from_slice(&run.data);
                            } else {
                                for sample in run.data.chunks_exact(run.size) {
                                    stacked.extend_from_slice(&sample[offset..offset + size]);
                                }
                            }
                        }
                        stacked.freeze()
                    }
                };
                offset += size;
                stacked
            })
            .collect();
        Batch { len, leaves }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(stream: u64, data: &[u8]) -> Sample {
        Sample {
            stream,
            data: Bytes::copy_from_slice(data),
        }
    }

    #[tokio::test]
    async fn samples_in_order_and_wrong_sizes_refused() {
        let (sink, mut rx) = channel("uint8[2],uint8[]".parse().unwrap(), 4);
        sink.push(sample(1, &[1, 2, 3])).await.unwrap();
        let err = sink.push(sample(1, &[1, 2])).await.unwrap_err();
        assert_eq!(
            err,
            SinkError::WrongSize {
                expected: 3,
                actual: 2
            }
        );
        sink.push(sample(2, &[4, 5, 6])).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), sample(1, &[1, 2, 3]));
        assert_eq!(rx.recv().await.unwrap(), sample(2, &[4, 5, 6]));
        drop(sink);
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_full_sink_holds_the_producer_back() {
        let (sink, mut rx) = channel("uint8[1]".parse().unwrap(), 2);
        sink.push(sample(0, &[1])).await.unwrap();
        sink.push(sample(0, &[2])).await.unwrap();
        let third = tokio::spawn({
            let sink = sink.clone();
            async move { sink.push(sample(0, &[3])).await }
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "the third push waits for room");
        assert_eq!(rx.recv().await.unwrap().data, Bytes::from_static(&[1]));
        third.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn batches_stack_each_leaf_contiguously() {
        // Two leaves: uint8[2] then uint8[] (a scalar).
        let (sink, mut rx) = channel("uint8[2],uint8[]".parse().unwrap(), 8);
        for i in 0..5u8 {
            sink.push(sample(0, &[10 * i, 10 * i + 1, 100 + i]))
                .await
                .unwrap();
        }
        drop(sink);
        let batch = rx.recv_batch(3).await.unwrap();
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.leaf(0).unwrap().as_ref(), &[0, 1, 10, 11, 20, 21]);
        assert_eq!(batch.leaf(1).unwrap().as_ref(), &[100, 101, 102]);
        let last = rx.recv_batch(3).await.unwrap();
        assert_eq!(last.len(), 2, "the last batch holds what was left");
        assert_eq!(last.leaf(1).unwrap().as_ref(), &[103, 104]);
        assert!(rx.recv_batch(3).await.is_none());
    }

    #[tokio::test]
    async fn batches_cut_across_runs_and_give_room_back() {
        // Runs of 4, 1 and 3 samples of two leaves; batches of 3 cut them.
        let (sink, mut rx) = channel("uint8[2],uint8[]".parse().unwrap(), 8);
        let all: Vec<u8> = (0..8u8)
            .flat_map(|i| [10 * i, 10 * i + 1, 100 + i])
            .collect();
        let all = Bytes::from(all);
        assert_eq!(sink.push_many(0, &all.slice(..12), 3).await, Ok(4));
        sink.push(Sample {
            stream: 1,
            data: all.slice(12..15),
        })
        .await
        .unwrap();
        assert_eq!(sink.push_many(2, &all.slice(15..), 3).await, Ok(3));
        assert!(sink.room.available_permits() == 0, "the channel is full");
        let mut leaf0 = Vec::new();
        let mut leaf1 = Vec::new();
        let mut lens = Vec::new();
        // A sample alone first, then batches: the order holds.
        assert_eq!(rx.recv().await.unwrap().data, all.slice(..3));
        drop(sink);
        while let Some(batch) = rx.recv_batch(3).await {
            lens.push(batch.len());
            leaf0.extend_from_slice(batch.leaf(0).unwrap());
            leaf1.extend_from_slice(batch.leaf(1).unwrap());
        }
        assert_eq!(lens, [3, 3, 1]);
        let want0: Vec<u8> = (1..8u8).flat_map(|i| [10 * i, 10 * i + 1]).collect();
        assert_eq!(leaf0, want0);
        assert_eq!(leaf1, (101..108u8).collect::<Vec<_>>());
        assert_eq!(rx.room.available_permits(), 8, "every run's room came back");
    }

    #[tokio::test]
    async fn a_batch_of_one_run_of_one_leaf_is_not_copied() {
        let (sink, mut rx) = channel("float32[4]".parse().unwrap(), 64);
        let data = Bytes::from(vec![7u8; 16 * 10]);
        assert_eq!(sink.push_many(0, &data, 16).await, Ok(10));
        let batch = rx.recv_batch(4).await.unwrap();
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.leaf(0).unwrap().as_ptr(), data.as_ptr());
        assert_eq!(batch.leaf(0).unwrap().len(), 64);
        // A batch then a sample, from what is left of the run.
        let sample = rx.recv().await.unwrap();
        assert_eq!(sample.data.as_ptr(), data[64..].as_ptr());
    }

    #[tokio::test]
    async fn a_cancelled_batch_keeps_its_samples() {
        let (sink, mut rx) = channel("uint8[1]".parse().unwrap(), 8);
        for i in 0..2u8 {
            sink.push(sample(0, &[i])).await.unwrap();
        }
        // Two of three arrive, then the wait is given up.
        let batch = tokio::time::timeout(Duration::from_millis(50), rx.recv_batch(3)).await;
        assert!(batch.is_err(), "the batch waits for its third sample");
        sink.push(sample(0, &[2])).await.unwrap();
        sink.push(sample(0, &[3])).await.unwrap();
        let batch = rx.recv_batch(3).await.unwrap();
        assert_eq!(batch.leaf(0).unwrap().as_ref(), &[0, 1, 2]);
        assert_eq!(rx.recv().await.unwrap().data.as_ref(), &[3]);
        // recv also returns what a cancelled batch had taken.
        sink.push(sample(0, &[4])).await.unwrap();
        let batch = tokio::time::timeout(Duration::from_millis(50), rx.recv_batch(2)).await;
        assert!(batch.is_err());
        assert_eq!(rx.recv().await.unwrap().data.as_ref(), &[4]);
    }

    #[tokio::test]
    async fn many_samples_go_in_as_far_as_there_is_room() {
        let (sink, mut rx) = channel("uint8[2]".parse().unwrap(), 3);
        let five = Bytes::from_static(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        // Room for three: three go in at once, the rest is left to the caller.
        assert_eq!(sink.push_many(7, &five, 2).await, Ok(3));
        let rest = five.slice(6..);
        let more = tokio::spawn({
            let (sink, rest) = (sink.clone(), rest.clone());
            async move { sink.push_many(7, &rest, 2).await }
        });
        tokio::task::yield_now().await;
        assert!(!more.is_finished(), "no room: the push waits");
        for expected in [[0u8, 1], [2, 3], [4, 5]] {
            let sample = rx.recv().await.unwrap();
            assert_eq!((sample.stream, sample.data.as_ref()), (7, &expected[..]));
        }
        // The run's last sample gave its room back: both go in.
        assert_eq!(more.await.unwrap(), Ok(2));
        let batch = rx.recv_batch(2).await.unwrap();
        assert_eq!(batch.leaf(0).unwrap().as_ref(), &[6, 7, 8, 9]);
        // Not whole samples, or samples of another size: refused.
        assert_eq!(
            sink.push_many(0, &Bytes::from_static(&[1, 2, 3]), 2).await,
            Err(SinkError::WrongSize {
                expected: 2,
                actual: 1
            })
        );
        assert!(sink.push_many(0, &five, 5).await.is_err());
        drop(rx);
        assert_eq!(sink.push_many(0, &five, 2).await, Err(SinkError::Closed));
    }

    #[tokio::test]
    async fn samples_of_no_bytes_are_received_and_give_their_room_back() {
        let (sink, mut rx) = channel("uint8[0]".parse().unwrap(), 1);
        for _ in 0..3 {
            sink.push(sample(4, &[])).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
            assert_eq!(got.expect("received").unwrap(), sample(4, &[]));
        }
    }

    #[tokio::test]
    async fn a_receiver_dropped_while_a_push_waits_ends_it() {
        let (sink, rx) = channel("uint8[1]".parse().unwrap(), 1);
        sink.push(sample(0, &[1])).await.unwrap();
        let waiting = tokio::spawn({
            let sink = sink.clone();
            async move { sink.push(sample(0, &[2])).await }
        });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(SinkError::Closed));
    }

    #[tokio::test]
    async fn a_dropped_receiver_closes_the_sink() {
        let (sink, rx) = channel("uint8[1]".parse().unwrap(), 1);
        drop(rx);
        assert_eq!(sink.push(sample(0, &[1])).await, Err(SinkError::Closed));
    }
}
