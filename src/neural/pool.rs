//! Float buffers kept for the next blob of a similar size.
//!
//! A net makes a new blob per layer and drops its inputs soon after: at video sizes each is
//! megabytes, which the allocator takes from and gives back to the kernel every time (mmap),
//! so every layer paid page faults and the kernel's zeroing of its fresh pages — a fifth of
//! x4plus-anime's time at 640×360. Blobs that die go back here ([`recycle`]) and the next
//! layer's output is made from one ([`zeroed`]): a memset instead of the faults. One pool for
//! all threads (a band made on one tile thread dies on another), bounded by count and bytes
//! (512 MiB, plus two large buffers of up to 320 MB), and buffers larger than [`MAX_FLOATS`]
//! (whole-frame blobs at 1080p) are never kept.

use std::sync::{Mutex, MutexGuard};

/// Smaller buffers come from the allocator's own free lists.
const MIN_FLOATS: usize = 1 << 18;
/// Larger ones (a whole 1080p frame's 64 channels is 530 MB) are given back at once. A
/// 640×360 frame's RRDB dense-block concatenations (96 to 192 channels, 88 to 177 MB) fit, and
/// so do Real-CUGAN's 64-channel blobs at twice that frame's size (274 MB): without them in
/// the pool, its 640×360 frame took 1.3× as long.
const MAX_FLOATS: usize = 80 << 20;
/// Buffers above this are "large": kept apart, at most [`LARGE_KEPT`] of them, so that they do
/// not push the many smaller ones out (a bound of 640 MiB for all cost animevideov3 5–10 %).
const LARGE_FLOATS: usize = 48 << 20;
const LARGE_KEPT: usize = 2;
/// Other buffers kept, and their bytes in all at most.
const KEPT: usize = 8;
const KEPT_FLOATS: usize = 128 << 20;

static SPARE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

fn spare() -> MutexGuard<'static, Vec<Vec<f32>>> {
    SPARE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `len` zeros, in a kept buffer when one is large enough (the smallest such).
pub(crate) fn zeroed(len: usize) -> Vec<f32> {
    if (MIN_FLOATS..=MAX_FLOATS).contains(&len) {
        let kept = {
            let mut spare = spare();
            (0..spare.len())
                .filter(|&i| spare[i].capacity() >= len)
                .min_by_key(|&i| spare[i].capacity())
                .map(|best| spare.swap_remove(best))
        };
        if let Some(mut data) = kept {
            data.clear();
            data.resize(len, 0.0);
            return data;
        }
    }
    vec![0.0; len]
}

/// Keeps `data` for a later [`zeroed`] (or frees it, beyond the bounds).
pub(crate) fn recycle(data: Vec<f32>) {
    if !(MIN_FLOATS..=MAX_FLOATS).contains(&data.capacity()) {
        return;
    }
    let dropped = {
        let mut spare = spare();
        spare.push(data);
        // The smallest is the least likely to fit the next blob.
        let mut dropped = Vec::new();
        for large in [false, true] {
            let of_kind = |v: &Vec<f32>| (v.capacity() > LARGE_FLOATS) == large;
            let (most, most_floats) = if large {
                (LARGE_KEPT, LARGE_KEPT * MAX_FLOATS)
            } else {
                (KEPT, KEPT_FLOATS)
            };
            loop {
                let kind: Vec<usize> = (0..spare.len()).filter(|&i| of_kind(&spare[i])).collect();
                let floats: usize = kind.iter().map(|&i| spare[i].capacity()).sum();
                if kind.len() <= most && floats <= most_floats {
                    break;
                }
                let Some(&smallest) = kind.iter().min_by_key(|&&i| spare[i].capacity()) else {
                    break;
                };
                dropped.push(spare.swap_remove(smallest));
            }
        }
        dropped
    };
    // Freed outside the lock.
    drop(dropped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_zeroed_and_bounded() {
        // Other tests share the pool: check only what cannot depend on them.
        let mut a = zeroed(MIN_FLOATS + 12_345);
        a.iter_mut().for_each(|v| *v = 1.0);
        recycle(a);
        let b = zeroed(MIN_FLOATS + 12_345);
        assert_eq!(b.len(), MIN_FLOATS + 12_345);
        assert!(
            b.iter().all(|&v| v == 0.0),
            "a kept buffer comes back zeroed"
        );
        // Too small or too large: never kept; never more than KEPT.
        recycle(vec![1.0; 16]);
        recycle(Vec::with_capacity(MAX_FLOATS + 1));
        for _ in 0..KEPT + 3 {
            recycle(Vec::with_capacity(MIN_FLOATS));
        }
        for _ in 0..LARGE_KEPT + 2 {
            recycle(Vec::with_capacity(LARGE_FLOATS + 1));
        }
        let spare = spare();
        let (large, other): (Vec<&Vec<f32>>, Vec<&Vec<f32>>) =
            spare.iter().partition(|v| v.capacity() > LARGE_FLOATS);
        assert!(other.len() <= KEPT && large.len() <= LARGE_KEPT);
        assert!(other.iter().map(|v| v.capacity()).sum::<usize>() <= KEPT_FLOATS);
        assert!(
            spare
                .iter()
                .all(|v| (MIN_FLOATS..=MAX_FLOATS).contains(&v.capacity()))
        );
    }
}
