//! The other side's announcements that nobody has dialled yet: bounded in
//! number, in size and in time, whatever the other side sends.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::ANNOUNCE_WAIT;
use crate::proto::plugin::ConnInfo;

/// Most announcements kept at once. go-plugin keeps every one (a goroutine
/// and a timer each); a broker in use has a handful pending, so 1024 is
/// far above real use while a flood costs at most 1024 entries of
/// [`MAX_ADDRESS`] bytes (about 1 MiB).
pub(super) const MAX_PENDING: usize = 1024;

/// Longest address taken: a unix socket path is at most 107 bytes
/// (`sun_path`), `host:port` or `[v6%zone]:port` well under 100. Longer
/// ones are refused.
pub(super) const MAX_ADDRESS: usize = 512;

/// Why an announcement was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// The id is already pending: the first announcement wins, as in
    /// go-plugin.
    Duplicate,
    /// [`MAX_PENDING`] are pending.
    Full,
    /// The address is longer than [`MAX_ADDRESS`].
    TooLong,
}

/// Pending announcements by id, and their arrival order for expiry: each
/// announcement costs O(1) work (amortised), not a pass over all of them.
#[derive(Debug, Default)]
pub(super) struct Pending {
    by_id: HashMap<u32, (ConnInfo, Instant)>,
    /// (arrival, id), oldest first; entries whose id was taken since are
    /// skipped when they come up.
    order: VecDeque<(Instant, u32)>,
    /// The last [`EXPIRED_KEPT`] ids dropped unused, with their arrival,
    /// so that a late dial can say so.
    expired: VecDeque<(u32, Instant)>,
}

/// How many expired ids are remembered for [`Pending::expired_at`].
const EXPIRED_KEPT: usize = 64;

impl Pending {
    /// Keeps `info` until it is taken or [`ANNOUNCE_WAIT`] has passed.
    pub(super) fn insert(&mut self, info: ConnInfo, now: Instant) -> Result<(), Refused> {
        self.expire(now);
        if info.address.len() > MAX_ADDRESS {
            return Err(Refused::TooLong);
        }
        if self.by_id.contains_key(&info.service_id) {
            return Err(Refused::Duplicate);
        }
        if self.by_id.len() >= MAX_PENDING {
            return Err(Refused::Full);
        }
        if self.order.len() >= 2 * MAX_PENDING {
            // Taken ids left their arrival behind: drop those.
            let by_id = &self.by_id;
            self.order
                .retain(|(at, id)| by_id.get(id).is_some_and(|(_, t)| t == at));
        }
        self.order.push_back((now, info.service_id));
        self.by_id.insert(info.service_id, (info, now));
        Ok(())
    }

    /// The announcement for `id`, if one arrived less than
    /// [`ANNOUNCE_WAIT`] ago.
    pub(super) fn take(&mut self, id: u32, now: Instant) -> Option<ConnInfo> {
        self.expire(now);
        self.by_id.remove(&id).map(|(info, _)| info)
    }

    /// Forgets what arrived [`ANNOUNCE_WAIT`] ago or more.
    fn expire(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.order.front() {
            if now.saturating_duration_since(at) < ANNOUNCE_WAIT {
                break;
            }
            self.order.pop_front();
            if self.by_id.get(&id).is_some_and(|(_, t)| *t == at) {
                self.by_id.remove(&id);
                if self.expired.len() == EXPIRED_KEPT {
                    self.expired.pop_front();
                }
                self.expired.push_back((id, at));
            }
        }
    }

    /// When the announcement of `id` arrived, if it was dropped unused
    /// (one of the last few so dropped) and none is pending now.
    pub(super) fn expired_at(&mut self, id: u32, now: Instant) -> Option<Instant> {
        self.expire(now);
        if self.by_id.contains_key(&id) {
            return None;
        }
        self.expired
            .iter()
            .rev()
            .find(|(expired, _)| *expired == id)
            .map(|(_, at)| *at)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn info(id: u32, address: &str) -> ConnInfo {
        ConnInfo {
            service_id: id,
            network: "unix".into(),
            address: address.into(),
            knock: None,
        }
    }

    #[test]
    fn first_wins_and_taking_frees_the_id() {
        let now = Instant::now();
        let mut pending = Pending::default();
        pending.insert(info(1, "/first"), now).unwrap();
        assert_eq!(
            pending.insert(info(1, "/second"), now),
            Err(Refused::Duplicate)
        );
        assert_eq!(pending.take(1, now).unwrap().address, "/first");
        assert_eq!(pending.take(1, now), None);
        pending.insert(info(1, "/third"), now).unwrap();
        assert_eq!(pending.take(1, now).unwrap().address, "/third");
    }

    #[test]
    fn each_expires_5_s_after_it_arrived() {
        let start = Instant::now();
        let mut pending = Pending::default();
        pending.insert(info(1, "/a"), start).unwrap();
        let later = start + Duration::from_secs(3);
        pending.insert(info(2, "/b"), later).unwrap();
        let at_5 = start + ANNOUNCE_WAIT;
        assert_eq!(pending.take(1, at_5), None, "1 is 5 s old");
        assert_eq!(pending.take(2, at_5).unwrap().address, "/b");
        // An id announced again after expiry is taken again.
        pending.insert(info(1, "/again"), at_5).unwrap();
        assert_eq!(pending.take(1, at_5).unwrap().address, "/again");
    }

    #[test]
    fn an_id_dropped_unused_is_remembered_as_expired() {
        let start = Instant::now();
        let mut pending = Pending::default();
        pending.insert(info(1, "/a"), start).unwrap();
        pending.insert(info(2, "/b"), start).unwrap();
        assert_eq!(pending.expired_at(1, start), None, "still pending");
        pending.take(2, start).unwrap();
        let late = start + ANNOUNCE_WAIT + Duration::from_secs(1);
        assert_eq!(pending.expired_at(1, late), Some(start));
        assert_eq!(
            pending.expired_at(2, late),
            None,
            "2 was taken, not dropped"
        );
        for id in 100..100 + EXPIRED_KEPT as u32 {
            pending.insert(info(id, "/c"), late).unwrap();
        }
        let later = late + ANNOUNCE_WAIT;
        assert_eq!(
            pending.expired_at(1, later),
            None,
            "only the last 64 are kept"
        );
        assert_eq!(pending.expired_at(100, later), Some(late));
    }

    #[test]
    fn capped_in_number_and_address_length() {
        let now = Instant::now();
        let mut pending = Pending::default();
        for id in 0..MAX_PENDING as u32 {
            pending.insert(info(id, "/x"), now).unwrap();
        }
        assert_eq!(
            pending.insert(info(u32::MAX, "/x"), now),
            Err(Refused::Full)
        );
        assert_eq!(pending.len(), MAX_PENDING);
        let long = "/".repeat(MAX_ADDRESS + 1);
        assert_eq!(pending.take(0, now).unwrap().address, "/x");
        assert_eq!(pending.insert(info(0, &long), now), Err(Refused::TooLong));
        pending.insert(info(0, &long[..MAX_ADDRESS]), now).unwrap();
        // Once they expire, there is room again.
        let later = now + ANNOUNCE_WAIT;
        pending.insert(info(u32::MAX, "/x"), later).unwrap();
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn taking_and_announcing_again_keeps_the_order_bounded() {
        let now = Instant::now();
        let mut pending = Pending::default();
        for round in 0..10 * MAX_PENDING as u32 {
            pending.insert(info(round, "/x"), now).unwrap();
            pending.take(round, now).unwrap();
        }
        assert!(pending.order.len() <= 2 * MAX_PENDING);
    }
}
