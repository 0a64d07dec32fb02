//! The fixed-size state of a sequence's recurrent layers (LFM2's short
//! convolutions), kept beside its [`crate::kv_cache::KvCache`].
//!
//! A KV cache rewinds by forgetting positions; a recurrent state cannot, it
//! has folded every past token in. So the state is copied at turn
//! boundaries (the end of every evaluation of more than one token: a
//! prompt), into a few checkpoint slots reserved up front. Rewinding to
//! position `n` restores the latest checkpoint at or before `n` (or the
//! zero state of position 0), and the caller replays the tokens from there
//! ([`crate::Context::rewind`]): never a silent continuation from a state
//! that saw tokens that are no longer there.

use crate::alloc::try_zeroed;
use crate::ModelError;

/// Checkpoint slots per sequence: the two latest turn boundaries, so that a
/// chat whose last turn is re-rendered differently (or edited) replays one
/// turn, not the conversation.
pub const CHECKPOINTS: usize = 2;

/// Every recurrent layer's state, and its checkpoints.
#[derive(Debug)]
pub struct RecurrentState {
    /// Start of each layer's state in `cur`; `n_layer + 1` entries.
    offsets: Vec<usize>,
    cur: Vec<f32>,
    /// Checkpoint slots: the position each was taken at (`None`: free) and
    /// a copy of `cur`.
    saved: Vec<(Option<usize>, Vec<f32>)>,
}

impl RecurrentState {
    /// State of `sizes[l]` floats for layer `l` (0 for layers without),
    /// zeroed, with its checkpoint slots reserved.
    pub fn new(sizes: &[usize]) -> Result<RecurrentState, ModelError> {
        let mut offsets = Vec::with_capacity(sizes.len() + 1);
        let mut total = 0usize;
        offsets.push(0);
        for &n in sizes {
            total = total.checked_add(n).ok_or(ModelError::OutOfMemory { what: "recurrent state", bytes: usize::MAX })?;
            offsets.push(total);
        }
        let cur = try_zeroed("recurrent state", total)?;
        let slots = if total == 0 { 0 } else { CHECKPOINTS };
        let saved = (0..slots).map(|_| Ok((None, try_zeroed("recurrent state checkpoints", total)?))).collect::<Result<_, ModelError>>()?;
        Ok(RecurrentState { offsets, cur, saved })
    }

    /// Bytes [`RecurrentState::new`] allocates for `sizes`; `None` on
    /// overflow.
    pub fn bytes_for(sizes: &[usize]) -> Option<usize> {
        let total = sizes.iter().try_fold(0usize, |a, &n| a.checked_add(n))?;
        let copies = if total == 0 { 0 } else { 1 + CHECKPOINTS };
        total.checked_mul(copies)?.checked_mul(size_of::<f32>())
    }

    /// Bytes held (the state and its checkpoint slots).
    pub fn bytes(&self) -> usize {
        (self.cur.len() + self.saved.iter().map(|(_, v)| v.len()).sum::<usize>()) * size_of::<f32>()
    }

    /// No layer keeps state (every layer attends).
    pub fn is_empty(&self) -> bool {
        self.cur.is_empty()
    }

    /// Layer `l`'s state.
    pub fn layer_mut(&mut self, l: usize) -> &mut [f32] {
        &mut self.cur[self.offsets[l]..self.offsets[l + 1]]
    }

    /// The zero state of an empty sequence; checkpoints are dropped.
    pub fn reset(&mut self) {
        self.cur.fill(0.0);
        self.saved.iter_mut().for_each(|(pos, _)| *pos = None);
    }

    /// Frees the checkpoint slots; from now on `checkpoint` keeps nothing
    /// and `rewind` always restarts from the zero state.
    pub fn drop_checkpoints(&mut self) {
        self.saved = Vec::new();
    }

    /// Copies the state, which has seen `pos` tokens, into the oldest (or a
    /// free) slot.
    pub fn checkpoint(&mut self, pos: usize) {
        if self.saved.iter().any(|(p, _)| *p == Some(pos)) {
            return;
        }
        let Some(slot) = self.saved.iter_mut().min_by_key(|(p, _)| p.map_or(0, |p| p + 1)) else {
            return;
        };
        slot.0 = Some(pos);
        slot.1.copy_from_slice(&self.cur);
    }

    /// Restores the latest checkpoint taken at `n` tokens or fewer (the
    /// zero state when there is none) and returns its position. Checkpoints
    /// past `n` are dropped: the tokens they saw may be replaced.
    pub fn rewind(&mut self, n: usize) -> usize {
        for (pos, _) in &mut self.saved {
            if pos.is_some_and(|p| p > n) {
                *pos = None;
            }
        }
        match self.saved.iter().filter_map(|(p, v)| p.map(|p| (p, v))).max_by_key(|(p, _)| *p) {
            Some((p, v)) => {
                self.cur.copy_from_slice(v);
                p
            }
            None => {
                self.cur.fill(0.0);
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewind_restores_the_latest_checkpoint_at_or_before() {
        let mut s = RecurrentState::new(&[0, 2, 1]).unwrap();
        assert_eq!(s.bytes(), RecurrentState::bytes_for(&[0, 2, 1]).unwrap());
        assert!(s.layer_mut(0).is_empty());
        let fill = |s: &mut RecurrentState, v: f32| {
            s.layer_mut(1).fill(v);
            s.layer_mut(2).fill(-v);
        };
        fill(&mut s, 1.0);
        s.checkpoint(10);
        fill(&mut s, 2.0);
        s.checkpoint(20);
        fill(&mut s, 3.0);
        s.checkpoint(30); // replaces the oldest, 10
        fill(&mut s, 4.0);
        assert_eq!(s.rewind(25), 20);
        assert_eq!(s.layer_mut(1), &[2.0, 2.0]);
        assert_eq!(s.layer_mut(2), &[-2.0]);
        // 30 was dropped by the rewind to 25; 10 was overwritten.
        assert_eq!(s.rewind(35), 20);
        assert_eq!(s.rewind(19), 0);
        assert_eq!(s.layer_mut(1), &[0.0, 0.0]);
        assert_eq!(s.rewind(100), 0);
        // Without slots nothing is kept: every rewind restarts from zero.
        s.drop_checkpoints();
        assert_eq!(s.bytes(), 3 * size_of::<f32>());
        fill(&mut s, 5.0);
        s.checkpoint(40);
        assert_eq!(s.rewind(50), 0);
        assert_eq!(s.layer_mut(1), &[0.0, 0.0]);
    }

    #[test]
    fn attention_only_models_hold_nothing() {
        let mut s = RecurrentState::new(&[0, 0]).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
        assert_eq!(RecurrentState::bytes_for(&[0, 0]), Some(0));
        s.checkpoint(3);
        assert_eq!(s.rewind(2), 0);
    }
}
