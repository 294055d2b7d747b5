//! Frames a damaged source could not give. A chunk whose decoder gives fewer frames than its
//! plan (upscale's salvage) records the frames it holds in `chunks/NNNNN.kept.json` before it
//! is marked done; packaging, verifying and the user's warning read the job's frames from
//! here: the plan's, with those records in place of their chunks'. A chunk none of whose
//! frames decode records an empty list and has no files: the joined video goes from the
//! chunk before it straight to the next one that holds frames.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::plan::Plan;

/// The record of one salvaged chunk.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct KeptFrames {
    /// Source times of the frames the chunk's files hold.
    kept_secs: Vec<f64>,
}

fn kept_file(chunks_dir: &Path, index: usize) -> PathBuf {
    chunks_dir.join(format!("{index:05}.kept.json"))
}

/// Records that chunk `index` holds only `kept_secs` (durable once this returns).
pub(crate) fn record_kept(
    chunks_dir: &Path,
    index: usize,
    kept_secs: &[f64],
) -> anyhow::Result<()> {
    let path = kept_file(chunks_dir, index);
    let json = serde_json::to_vec(&KeptFrames {
        kept_secs: kept_secs.to_vec(),
    })?;
    crate::fsutil::write_atomic(&path, &json)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// True when chunk `index` is recorded as holding no frames at all (so it has no files).
pub(crate) fn holds_no_frames(chunks_dir: &Path, index: usize) -> bool {
    std::fs::read(kept_file(chunks_dir, index))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<KeptFrames>(&bytes).ok())
        .is_some_and(|kept| kept.kept_secs.is_empty())
}

/// Removes every file in `chunks_dir` but the records of salvaged chunks.
pub(crate) fn remove_all_but_records(chunks_dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(chunks_dir)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().ends_with(".kept.json") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// The frames of a job's chunks as encoded: each chunk's source times.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedFrames {
    chunks: Vec<Vec<f64>>,
    /// Frames of the plan that no chunk holds, in order.
    dropped_secs: Vec<f64>,
}

impl EncodedFrames {
    /// The plan's frames, with each salvaged chunk's record in place of its planned frames.
    /// A record that cannot be read is an error: packaging without it would misplace frames.
    pub(crate) fn load(plan: &Plan, chunks_dir: &Path) -> anyhow::Result<EncodedFrames> {
        let mut chunks = Vec::with_capacity(plan.chunks.len());
        let mut dropped_secs = Vec::new();
        for chunk in &plan.chunks {
            let planned = plan.chunk_frame_times(chunk);
            let path = kept_file(chunks_dir, chunk.index);
            let kept = match std::fs::read(&path) {
                Ok(bytes) => {
                    serde_json::from_slice::<KeptFrames>(&bytes)
                        .with_context(|| format!("the record {} is damaged", path.display()))?
                        .kept_secs
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => planned.to_vec(),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", path.display()));
                }
            };
            dropped_secs.extend(
                planned
                    .iter()
                    .filter(|t| !kept.iter().any(|k| (*k - **t).abs() <= 0.0015)),
            );
            chunks.push(kept);
        }
        Ok(EncodedFrames {
            chunks,
            dropped_secs,
        })
    }

    pub(crate) fn frame_count(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    pub(crate) fn first_secs(&self) -> Option<f64> {
        self.chunks.iter().flatten().next().copied()
    }

    pub(crate) fn last_secs(&self) -> Option<f64> {
        self.chunks.iter().flatten().next_back().copied()
    }

    /// True when chunk `index` holds no frames (none of them could be decoded).
    pub(crate) fn is_empty_chunk(&self, index: usize) -> bool {
        self.chunks.get(index).is_some_and(Vec::is_empty)
    }

    /// How long each chunk lasts in the joined video: up to the first frame of the next chunk
    /// that holds any; `None` for the last such chunk and for chunks that hold none.
    pub(crate) fn chunk_durations(&self) -> Vec<Option<f64>> {
        let firsts: Vec<Option<f64>> = self.chunks.iter().map(|c| c.first().copied()).collect();
        (0..self.chunks.len())
            .map(|i| {
                let this = firsts[i]?;
                let next = firsts[i + 1..].iter().flatten().next()?;
                Some(next - this)
            })
            .collect()
    }

    /// The one line that tells the user what was left out and where; `None` when nothing was.
    pub(crate) fn dropped_warning(&self) -> Option<String> {
        if self.dropped_secs.is_empty() {
            return None;
        }
        // Runs of dropped frames: a new run where a kept frame lies between two dropped ones.
        let all_kept: Vec<f64> = self.chunks.iter().flatten().copied().collect();
        let mut runs: Vec<(f64, f64, usize)> = Vec::new();
        for &t in &self.dropped_secs {
            match runs.last_mut() {
                Some((_, end, n)) if !all_kept.iter().any(|k| *k > *end && *k < t) => {
                    *end = t;
                    *n += 1;
                }
                _ => runs.push((t, t, 1)),
            }
        }
        const SHOWN: usize = 5;
        let mut places: Vec<String> = runs
            .iter()
            .take(SHOWN)
            .map(|&(start, end, n)| {
                if n == 1 {
                    format!("1 at {start:.3} s")
                } else {
                    format!("{n} from {start:.3} s to {end:.3} s")
                }
            })
            .collect();
        if runs.len() > SHOWN {
            places.push(format!("and {} more places", runs.len() - SHOWN));
        }
        Some(format!(
            "the source is damaged: {} frame(s) cannot be decoded and are left out ({}); every other frame keeps its time, and the audio is complete",
            self.dropped_secs.len(),
            places.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let frames: Vec<(f64, bool)> = (0..12).map(|i| (i as f64 * 0.5, i % 4 == 0)).collect();
        Plan::at_keyframes(&frames, 4)
    }

    #[test]
    fn without_records_the_frames_are_the_plans() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = plan();
        let frames = EncodedFrames::load(&plan, dir.path()).expect("loads");
        assert_eq!(frames.frame_count(), 12);
        assert_eq!(frames.first_secs(), Some(0.0));
        assert_eq!(frames.last_secs(), Some(5.5));
        assert_eq!(frames.chunk_durations(), [Some(2.0), Some(2.0), None]);
        assert_eq!(frames.dropped_warning(), None);
    }

    #[test]
    fn a_record_replaces_its_chunk_and_says_what_is_missing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = plan();
        // Chunk 1 (2.0 … 3.5 s) lost its first two frames; chunk 2 lost 5.0.
        record_kept(dir.path(), 1, &[3.0, 3.5]).expect("write");
        record_kept(dir.path(), 2, &[4.0, 4.5, 5.5]).expect("write");
        let frames = EncodedFrames::load(&plan, dir.path()).expect("loads");
        assert_eq!(frames.frame_count(), 9);
        // The first chunk lasts up to chunk 1's first kept frame.
        assert_eq!(frames.chunk_durations(), [Some(3.0), Some(1.0), None]);
        assert_eq!(
            frames.dropped_warning().as_deref(),
            Some(
                "the source is damaged: 3 frame(s) cannot be decoded and are left out (2 from 2.000 s to 2.500 s, 1 at 5.000 s); every other frame keeps its time, and the audio is complete"
            )
        );
    }

    #[test]
    fn a_chunk_without_frames_is_skipped_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = plan();
        record_kept(dir.path(), 1, &[]).expect("write");
        assert!(holds_no_frames(dir.path(), 1));
        assert!(!holds_no_frames(dir.path(), 0));
        let frames = EncodedFrames::load(&plan, dir.path()).expect("loads");
        assert!(frames.is_empty_chunk(1) && !frames.is_empty_chunk(0));
        assert_eq!(frames.frame_count(), 8);
        // The first chunk lasts up to the third one's first frame.
        assert_eq!(frames.chunk_durations(), [Some(4.0), None, None]);
        assert_eq!(
            frames.dropped_warning().as_deref(),
            Some(
                "the source is damaged: 4 frame(s) cannot be decoded and are left out (4 from 2.000 s to 3.500 s); every other frame keeps its time, and the audio is complete"
            )
        );
    }

    #[test]
    fn a_damaged_record_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(kept_file(dir.path(), 0), b"{").expect("write");
        let err = EncodedFrames::load(&plan(), dir.path()).expect_err("damaged record");
        assert!(format!("{err:#}").contains("is damaged"), "{err:#}");
    }
}
