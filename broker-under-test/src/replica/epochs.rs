//! The leader-epoch file of one partition (KIP-101): at which offset each leader epoch began,
//! so a leader can tell a follower where the follower's last epoch ends in its own log.

use crate::codec::{frame, single_frame, DecodeError, Reader, Writer};

/// The name of partition `partition`'s epoch file (replaced atomically).
pub fn epochs_file(partition: u32) -> String {
    format!("partition-{partition}.epochs")
}

/// (leader epoch, offset of its first batch) in increasing epoch order; start offsets never
/// decrease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Epochs {
    entries: Vec<(u32, u64)>,
}

impl Epochs {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(self.entries.len() as u32);
        for (epoch, start) in &self.entries {
            w.u32(*epoch);
            w.u64(*start);
        }
        frame(&w.buf)
    }

    /// Decodes an epoch file; an empty file holds no epochs.
    pub fn decode(bytes: &[u8]) -> Result<Epochs, DecodeError> {
        if bytes.is_empty() {
            return Ok(Epochs::default());
        }
        let mut r = Reader::new(single_frame(bytes)?);
        let mut entries = Vec::new();
        for _ in 0..r.count(12)? {
            entries.push((r.u32()?, r.u64()?));
        }
        r.finish()?;
        Ok(Epochs { entries })
    }

    /// The newest epoch recorded, whether or not anything was appended under it.
    pub fn latest(&self) -> Option<u32> {
        self.entries.last().map(|(e, _)| *e)
    }

    /// Records that `epoch` begins at `start`; false if it is not newer than the latest (then
    /// nothing changes).
    pub fn begin(&mut self, epoch: u32, start: u64) -> bool {
        if self.latest().is_some_and(|latest| latest >= epoch) {
            return false;
        }
        self.entries.push((epoch, start));
        true
    }

    /// Drops the epochs that begin at or beyond `end` (they hold no batch of a log that ends
    /// there); true if any was dropped.
    pub fn truncate(&mut self, end: u64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(_, start)| *start < end);
        self.entries.len() != before
    }

    /// The epoch of the batch at `offset`, if the file covers it.
    pub fn epoch_at(&self, offset: u64) -> Option<u32> {
        self.entries
            .iter()
            .rev()
            .find(|(_, start)| *start <= offset)
            .map(|(e, _)| *e)
    }

    /// The epoch of the last batch of a log ending at `log_end` (`None` for an empty log).
    pub fn last_batch_epoch(&self, log_end: u64) -> Option<u32> {
        log_end.checked_sub(1).and_then(|last| self.epoch_at(last))
    }

    /// The largest epoch not above `epoch`, and where it ends in a log ending at `log_end`
    /// (where the next epoch begins, or the log end). `None` if every epoch is above it.
    pub fn end_of(&self, epoch: u32, log_end: u64) -> Option<(u32, u64)> {
        let i = self.entries.iter().rposition(|(e, _)| *e <= epoch)?;
        let end = self
            .entries
            .get(i + 1)
            .map_or(log_end, |(_, next_start)| *next_start);
        Some((self.entries[i].0, end.min(log_end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_round_trip_and_answer_where_an_epoch_ends() {
        let mut epochs = Epochs::default();
        assert!(epochs.begin(0, 0));
        assert!(epochs.begin(2, 10));
        assert!(!epochs.begin(1, 12), "epochs only grow");
        assert!(epochs.begin(4, 15));
        assert_eq!(Epochs::decode(&epochs.encode()), Ok(epochs.clone()));
        assert_eq!(Epochs::decode(&[]), Ok(Epochs::default()));
        assert_eq!(epochs.end_of(0, 20), Some((0, 10)));
        assert_eq!(epochs.end_of(1, 20), Some((0, 10)));
        assert_eq!(epochs.end_of(3, 20), Some((2, 15)));
        assert_eq!(epochs.end_of(9, 20), Some((4, 20)));
        assert_eq!(epochs.last_batch_epoch(20), Some(4));
        assert_eq!(epochs.last_batch_epoch(15), Some(2));
        assert_eq!(epochs.last_batch_epoch(0), None);
        assert!(epochs.truncate(15));
        assert_eq!(epochs.latest(), Some(2));
        assert!(!epochs.truncate(15));
    }
}
