//! The chunk plan: which frames go into which chunk, where each chunk's decode seeks to, and
//! how long each chunk lasts in the packaged output.
//!
//! A plan is computed once per session from the source's frame timestamps and stored in the
//! session (`plan.json`), so a resumed run cuts exactly the same chunks as the first one.
//! Chunk boundaries prefer source keyframes (cheaper seeks) when the source's GOP allows.

use serde::{Deserialize, Serialize};

/// Version of the `plan.json` layout.
pub const PLAN_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Chunk {
    pub index: usize,
    pub first_frame: usize,
    pub frame_count: usize,
    /// Source time of the chunk's first frame.
    pub start_secs: f64,
    /// Where the decoder seeks. On a source keyframe (in a container with a seek index), the
    /// keyframe's own time: the demuxer lands on it, where a time before it would land on the
    /// keyframe before and decode a whole group of pictures for nothing (the command never
    /// rounds it past the frame: see `upscale::command::input_args`). Otherwise half-way
    /// between the previous frame and this chunk's first, so that rounding can neither keep
    /// the previous frame nor drop this one. `None` for the first chunk (decode from the start).
    pub seek_secs: Option<f64>,
    /// Time from this chunk's first frame to the next chunk's first frame; `None` for the last.
    pub duration_secs: Option<f64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Plan {
    pub version: u32,
    /// Every source frame's time in seconds (presentation order).
    pub frame_times_secs: Vec<f64>,
    pub chunks: Vec<Chunk>,
    /// Threads of each chunk's encoder, fixed for the session: the encoders' output depends
    /// on it, so a resumed job encodes its chunks as the first run did. More than one when a
    /// job has fewer chunks than there are cores (short clips), which would leave cores idle.
    /// Plans written before it existed read as 1.
    #[serde(default = "one_thread", skip_serializing_if = "is_one_thread")]
    pub encoder_threads: u32,
}

fn one_thread() -> u32 {
    1
}

fn is_one_thread(n: &u32) -> bool {
    *n == 1
}

/// The most threads one chunk's encoder gets.
pub const MAX_ENCODER_THREADS: u32 = 8;

/// How far from its target length a chunk may end so that the next one starts on a source
/// keyframe. A chunk that starts between keyframes decodes from the keyframe before it and
/// throws those frames away: up to a whole group of pictures (250 frames with x264's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The first keyframe in `[target, 1.5·target)` frames: chunks stay close to the target.
    /// For engines whose work per frame dwarfs decoding (the neural ones: a chunk is minutes
    /// of work, and a longer one is more to redo after an interruption).
    Near,
    /// The keyframe nearest the target in `[target/2, 2.5·target)`: for engines where
    /// decoding is a noticeable share of the work (Lanczos), so that with x264's default
    /// keyframe interval nearly every chunk starts on a keyframe.
    Wide,
}

impl Reach {
    /// Where a chunk starting at `start` ends (the next chunk's first frame).
    fn end(self, frames: &[(f64, bool)], start: usize, target: usize) -> usize {
        let total = frames.len();
        let aim = start + target;
        match self {
            Reach::Near => (aim..(aim + target / 2).min(total))
                .find(|&i| frames[i].1)
                .unwrap_or(aim),
            Reach::Wide => {
                let reach_end = start + target * 5 / 2;
                let window = (start + target.div_ceil(2)).max(start + 1)..reach_end.min(total);
                // Nearest to the aim; of two as near, the later (the longer chunk).
                window
                    .filter(|&i| frames[i].1)
                    .min_by_key(|&i| (i.abs_diff(aim), std::cmp::Reverse(i)))
                    .unwrap_or(aim)
            }
        }
    }
}

impl Plan {
    pub fn frame_count(&self) -> usize {
        self.frame_times_secs.len()
    }

    /// Cut `frames` (time, is-keyframe; sorted by time) into chunks of about `target_frames`,
    /// ending on a source keyframe where `reach` finds one (see [`Reach`]), else at exactly
    /// `target` frames. A last chunk shorter than half the target joins the one before it.
    pub fn new(frames: &[(f64, bool)], target_frames: usize, reach: Reach) -> Plan {
        Plan::cut(frames, target_frames, Some(reach))
    }

    /// Every chunk starts on a source keyframe: it ends at the first keyframe at least
    /// `target` frames after its start (so chunks may be longer). For containers without a
    /// seek index (MPEG-TS, MPEG-PS, raw streams), where ffmpeg's seek lands on whatever packet
    /// is near the time asked and the decoder starts at the next keyframe: a chunk starting
    /// between keyframes would lose its first frames.
    pub fn at_keyframes(frames: &[(f64, bool)], target_frames: usize) -> Plan {
        Plan::cut(frames, target_frames, None)
    }

    fn cut(frames: &[(f64, bool)], target_frames: usize, reach: Option<Reach>) -> Plan {
        let keyframes_only = reach.is_none();
        let target = target_frames.max(1);
        let total = frames.len();
        let mut starts = Vec::new();
        let mut start = 0;
        while start < total {
            starts.push(start);
            if start + target >= total {
                break;
            }
            let mut next = match reach {
                None => (start + target..total)
                    .find(|&i| frames[i].1)
                    .unwrap_or(total),
                Some(reach) => reach.end(frames, start, target),
            };
            if total - next < target.div_ceil(2) {
                next = total;
            }
            start = next;
        }
        let chunks = starts
            .iter()
            .enumerate()
            .map(|(index, &first)| {
                let end = starts.get(index + 1).copied().unwrap_or(total);
                let start_secs = frames[first].0;
                // Without a seek index, the demuxer's landing is approximate: stay before.
                let on_keyframe = frames[first].1 && !keyframes_only;
                Chunk {
                    index,
                    first_frame: first,
                    frame_count: end - first,
                    start_secs,
                    seek_secs: (first > 0).then(|| {
                        if on_keyframe {
                            start_secs
                        } else {
                            (frames[first - 1].0 + start_secs) / 2.0
                        }
                    }),
                    duration_secs: (end < total).then(|| frames[end].0 - start_secs),
                }
            })
            .collect();
        Plan {
            version: PLAN_VERSION,
            frame_times_secs: frames.iter().map(|f| f.0).collect(),
            chunks,
            encoder_threads: 1,
        }
    }

    /// Gives each chunk's encoder the cores that `parallel` chunk workers would leave idle
    /// (a job of one chunk on eight cores: eight threads). For encoders beside an engine that
    /// uses every core itself, keep 1.
    pub fn share_cores(mut self, parallel: usize) -> Plan {
        let per_chunk = parallel / self.chunks.len().max(1);
        self.encoder_threads = (per_chunk as u32).clamp(1, MAX_ENCODER_THREADS);
        self
    }

    /// Where `chunk` ends: half-way between its last frame and the next chunk's first; `None`
    /// for the last chunk.
    pub fn chunk_end_secs(&self, chunk: &Chunk) -> Option<f64> {
        let next = chunk.first_frame.checked_add(chunk.frame_count)?;
        let last = self.frame_times_secs.get(next.checked_sub(1)?)?;
        let first_of_next = self.frame_times_secs.get(next)?;
        Some((last + first_of_next) / 2.0)
    }

    /// Chunks cover every frame once, in order (a check on a plan read back from disk).
    pub fn is_consistent(&self) -> bool {
        let mut next: usize = 0;
        for (i, c) in self.chunks.iter().enumerate() {
            if c.index != i || c.first_frame != next || c.frame_count == 0 {
                return false;
            }
            let Some(end) = next.checked_add(c.frame_count) else {
                return false;
            };
            next = end;
        }
        next == self.frame_times_secs.len()
    }

    /// Frame times of one chunk.
    pub fn chunk_frame_times(&self, chunk: &Chunk) -> &[f64] {
        &self.frame_times_secs[chunk.first_frame..chunk.first_frame + chunk.frame_count]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfr(n: usize, fps: f64, gop: usize) -> Vec<(f64, bool)> {
        (0..n).map(|i| (i as f64 / fps, i % gop == 0)).collect()
    }

    #[test]
    fn idle_cores_go_to_the_encoders_of_short_jobs() {
        let frames = cfr(100, 25.0, 1000);
        assert_eq!(
            Plan::new(&frames, 200, Reach::Near)
                .share_cores(2)
                .encoder_threads,
            2
        );
        assert_eq!(
            Plan::new(&frames, 200, Reach::Near)
                .share_cores(64)
                .encoder_threads,
            MAX_ENCODER_THREADS
        );
        // Four chunks on two cores, or on six: one thread each.
        assert_eq!(
            Plan::new(&frames, 25, Reach::Near)
                .share_cores(2)
                .encoder_threads,
            1
        );
        assert_eq!(
            Plan::new(&frames, 25, Reach::Near)
                .share_cores(6)
                .encoder_threads,
            1
        );
        assert_eq!(
            Plan::new(&frames, 25, Reach::Near)
                .share_cores(8)
                .encoder_threads,
            2
        );
        // Written only when it is not 1, and read as 1 when absent (plans of older versions).
        let json = serde_json::to_string(&Plan::new(&frames, 25, Reach::Near)).expect("JSON");
        assert!(!json.contains("encoder_threads"));
        let read: Plan = serde_json::from_str(&json).expect("reads");
        assert_eq!(read.encoder_threads, 1);
        let two = Plan::new(&frames, 200, Reach::Near).share_cores(2);
        let json = serde_json::to_string(&two).expect("JSON");
        assert_eq!(serde_json::from_str::<Plan>(&json).expect("reads"), two);
    }

    #[test]
    fn frame_counts_that_overflow_are_damage_not_a_panic() {
        // Counts that wrap around to the frame list's length (found writing the fuzz target).
        let json = r#"{"version":1,"frame_times_secs":[],"chunks":[
            {"index":0,"first_frame":0,"frame_count":18446744073709551615,"start_secs":0,"seek_secs":null,"duration_secs":null},
            {"index":1,"first_frame":18446744073709551615,"frame_count":1,"start_secs":0,"seek_secs":null,"duration_secs":null}]}"#;
        let plan: Plan = serde_json::from_str(json).expect("parses");
        assert!(!plan.is_consistent());
    }

    #[test]
    fn damaged_plans_are_detected() {
        let mut plan = Plan::new(&cfr(100, 25.0, 1000), 30, Reach::Near);
        assert!(plan.is_consistent());
        plan.chunks[1].frame_count += 1;
        assert!(!plan.is_consistent());
        let mut plan = Plan::new(&cfr(100, 25.0, 1000), 30, Reach::Near);
        plan.frame_times_secs.pop();
        assert!(!plan.is_consistent());
    }

    fn covers_every_frame_once(plan: &Plan) {
        let mut next = 0;
        for (i, c) in plan.chunks.iter().enumerate() {
            assert_eq!(c.index, i);
            assert_eq!(c.first_frame, next, "chunks are contiguous");
            assert!(c.frame_count > 0);
            next += c.frame_count;
        }
        assert_eq!(next, plan.frame_count());
    }

    #[test]
    fn cuts_on_keyframes_when_the_gop_allows() {
        // 10 s at 24 fps, keyframe every 48 frames, target 5 s = 120 frames → cut at 144.
        let plan = Plan::new(&cfr(240, 24.0, 48), 120, Reach::Near);
        covers_every_frame_once(&plan);
        assert_eq!(plan.chunks.len(), 2);
        assert_eq!(plan.chunks[1].first_frame, 144);
        assert!(plan.chunks.iter().all(|c| c.first_frame % 48 == 0));
    }

    #[test]
    fn cuts_at_the_target_when_keyframes_are_far_apart() {
        let plan = Plan::new(&cfr(1000, 25.0, 250), 100, Reach::Near);
        covers_every_frame_once(&plan);
        assert_eq!(plan.chunks[1].first_frame, 100);
        assert_eq!(plan.chunks.len(), 10);
    }

    #[test]
    fn a_wide_reach_starts_chunks_on_far_apart_keyframes() {
        // x264's default interval: a keyframe every 250 frames, chunks of about 120. The near
        // reach cuts at 120, 240, 360 … (decoding up to 249 frames before each chunk); the
        // wide one starts every chunk on a keyframe but a last one past the last keyframe's reach.
        let frames = cfr(1440, 24.0, 250);
        let near = Plan::new(&frames, 120, Reach::Near);
        assert_eq!(near.chunks[1].first_frame, 120);
        let wide = Plan::new(&frames, 120, Reach::Wide);
        covers_every_frame_once(&wide);
        let starts: Vec<usize> = wide.chunks.iter().map(|c| c.first_frame).collect();
        assert_eq!(starts, [0, 250, 500, 750, 1000, 1250, 1370]);
        // Keyframes every 100 frames: the one nearest the target (100, not 200).
        let wide = Plan::new(&cfr(1000, 24.0, 100), 120, Reach::Wide);
        assert!(wide.chunks.iter().all(|c| c.frame_count == 100));
        // Of two as near, the later: 96 and 144 around 120.
        let wide = Plan::new(&cfr(480, 24.0, 48), 120, Reach::Wide);
        assert_eq!(wide.chunks[1].first_frame, 144);
        // No keyframe in reach: the target, as the near reach does.
        let wide = Plan::new(&cfr(1000, 24.0, 1000), 120, Reach::Wide);
        assert_eq!(
            wide.chunks,
            Plan::new(&cfr(1000, 24.0, 1000), 120, Reach::Near).chunks
        );
        assert!(wide.is_consistent());
        // Tiny targets still make progress.
        let wide = Plan::new(&cfr(10, 24.0, 1), 1, Reach::Wide);
        assert_eq!(wide.chunks.len(), 10);
    }

    #[test]
    fn short_tail_joins_the_previous_chunk() {
        let plan = Plan::new(&cfr(130, 25.0, 1000), 50, Reach::Near);
        covers_every_frame_once(&plan);
        // 0..50, 50..130 (a 30-frame tail would be 30 ≥ 25, so it stays separate)
        assert_eq!(
            plan.chunks
                .iter()
                .map(|c| c.frame_count)
                .collect::<Vec<_>>(),
            vec![50, 50, 30]
        );
        let plan = Plan::new(&cfr(120, 25.0, 1000), 50, Reach::Near);
        assert_eq!(
            plan.chunks
                .iter()
                .map(|c| c.frame_count)
                .collect::<Vec<_>>(),
            vec![50, 70]
        );
    }

    #[test]
    fn seek_points_and_durations_follow_the_frame_times() {
        // Irregular (VFR) times.
        let times = [0.0, 0.04, 0.1, 0.12, 0.2, 0.33, 0.34, 0.5];
        let frames: Vec<_> = times.iter().map(|&t| (t, false)).collect();
        let plan = Plan::new(&frames, 3, Reach::Near);
        covers_every_frame_once(&plan);
        let c1 = &plan.chunks[1];
        assert_eq!(c1.first_frame, 3);
        assert_eq!(c1.start_secs, 0.12);
        assert!((c1.seek_secs.unwrap() - 0.11).abs() < 1e-12);
        assert!((plan.chunks[0].duration_secs.unwrap() - 0.12).abs() < 1e-12);
        assert_eq!(plan.chunks[0].seek_secs, None);
        assert_eq!(plan.chunks.last().unwrap().duration_secs, None);
        assert_eq!(plan.chunk_frame_times(c1), &times[3..3 + c1.frame_count]);
        assert!((plan.chunk_end_secs(&plan.chunks[0]).unwrap() - 0.11).abs() < 1e-12);
        assert_eq!(plan.chunk_end_secs(plan.chunks.last().unwrap()), None);
    }

    #[test]
    fn chunks_on_a_keyframe_seek_to_it() {
        // Keyframes every 48 frames at 24 fps; chunks of about 40 frames.
        let frames = cfr(200, 24.0, 48);
        let plan = Plan::new(&frames, 40, Reach::Near);
        let on_keyframe = &plan.chunks[1];
        assert_eq!(on_keyframe.first_frame, 48);
        assert_eq!(on_keyframe.seek_secs, Some(2.0));
        // Without a seek index, a keyframe chunk still seeks before its first frame.
        let plan = Plan::at_keyframes(&frames, 40);
        assert_eq!(plan.chunks[1].first_frame, 48);
        assert!((plan.chunks[1].seek_secs.unwrap() - (47.5 / 24.0)).abs() < 1e-12);
        // Between keyframes: half-way between the frames.
        let plan = Plan::new(&cfr(200, 24.0, 1000), 40, Reach::Near);
        assert_eq!(plan.chunks[1].first_frame, 40);
        assert!((plan.chunks[1].seek_secs.unwrap() - (39.5 / 24.0)).abs() < 1e-12);
    }

    #[test]
    fn chunks_without_a_seek_index_start_on_keyframes() {
        // Keyframes every 48 frames, chunks of about 30: each chunk runs to the next keyframe.
        let plan = Plan::at_keyframes(&cfr(200, 24.0, 48), 30);
        let starts: Vec<usize> = plan.chunks.iter().map(|c| c.first_frame).collect();
        assert_eq!(starts, [0, 48, 96, 144]);
        assert!(plan.is_consistent());
        // A keyframe just past the target is taken, not the target itself.
        let plan = Plan::at_keyframes(&cfr(200, 24.0, 48), 48);
        let starts: Vec<usize> = plan.chunks.iter().map(|c| c.first_frame).collect();
        assert_eq!(starts, [0, 48, 96, 144]);
        // No keyframe after the first: one chunk.
        let plan = Plan::at_keyframes(&cfr(200, 24.0, 1000), 30);
        assert_eq!(plan.chunks.len(), 1);
    }

    #[test]
    fn tiny_inputs_make_one_chunk() {
        let plan = Plan::new(&cfr(1, 25.0, 1), 100, Reach::Near);
        assert_eq!(plan.chunks.len(), 1);
        assert_eq!(plan.chunks[0].frame_count, 1);
        let plan = Plan::new(&[], 100, Reach::Near);
        assert!(plan.chunks.is_empty());
    }
}
