//! The upscale step: every chunk not yet done is scaled and encoded into the session's
//! `chunks/` folder, several chunks at a time, and recorded in `progress.json` only once its
//! files are complete and hold the expected number of frames.
//!
//! Each chunk is encoded by its own encoder instance starting on a keyframe, so no encoder
//! state crosses a chunk boundary: a resumed run encodes exactly what an uninterrupted one
//! would. Two ways to run a chunk (DESIGN §3):
//! * ffmpeg scale engines run inside one ffmpeg filter graph (no frames leave ffmpeg);
//! * frame engines sit between a decoding ffmpeg (yuv420p on a pipe) and an encoding ffmpeg,
//!   with bounded queues between the three; the encoder's constant-rate timestamps are then
//!   replaced by the source's own frame times with mkvmerge.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use crossbeam_channel::{RecvTimeoutError, unbounded};

mod chunk;
mod command;
mod filter_graph;
mod pipe;
mod salvage;

pub(crate) use chunk::{SourceDamaged, encode_chunk};
pub(crate) use command::{FFMPEG_COMMON, PROGRESS_ON_STDOUT};

use super::plan::{Chunk, Plan};
use super::thumbnail;
use super::validate::{Job, SPACE_MARGIN_BYTES, estimated_output_bytes};
use super::{Context, Reporter, Stop};
use crate::engine::EngineKind;
use crate::fsutil;
use crate::media::tools;
use crate::session::Session;
use crate::session::progress::{Progress, Step};

/// How often a running chunk checks for cancellation and its child's exit.
const POLL: Duration = Duration::from_millis(50);
/// Minimum interval between two progress events.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Frames buffered between decoder, engine and encoder on the pipe path (per queue).
const PIPE_QUEUE_FRAMES: usize = 3;

/// Chunks in parallel start longest first (by frames; the plan's order among equals), so the
/// shortest run last and the job does not end with one long chunk on one core while the
/// others idle. Which chunk runs when changes nothing in what each one holds.
fn longest_first(pending: VecDeque<usize>, plan: &Plan) -> VecDeque<usize> {
    let mut order: Vec<usize> = pending.into();
    order.sort_by_key(|&i| std::cmp::Reverse(plan.chunks.get(i).map_or(0, |c| c.frame_count)));
    order.into()
}

/// File of rendition `r` of chunk `index` inside the chunks folder.
pub(crate) fn chunk_file(chunks_dir: &Path, rendition: usize, index: usize) -> PathBuf {
    chunks_dir.join(format!("r{rendition}_{index:05}.mkv"))
}

/// True when chunk `index` is in place: a non-empty file for each of the `renditions`, or a
/// record that none of its frames could be decoded (such a chunk has no files).
pub(crate) fn chunk_in_place(chunks_dir: &Path, renditions: usize, index: usize) -> bool {
    (0..renditions)
        .all(|r| std::fs::metadata(chunk_file(chunks_dir, r, index)).is_ok_and(|m| m.len() > 0))
        || crate::pipeline::damage::holds_no_frames(chunks_dir, index)
}

enum Msg {
    Frames {
        chunk: usize,
        frames: u64,
    },
    /// `thumbnail`: JPEG bytes of the chunk's last frame, small.
    Done {
        chunk: usize,
        thumbnail: Option<Vec<u8>>,
    },
    Failed {
        chunk: usize,
        error: anyhow::Error,
    },
}

pub(crate) fn run(
    ctx: &Context,
    reporter: &Reporter,
    job: &Job,
    session: &Session,
    progress: &mut Progress,
) -> Result<(), Stop> {
    let plan = job.plan();
    let chunks_dir = session.chunks_dir();
    std::fs::create_dir_all(&chunks_dir)
        .with_context(|| format!("cannot create {}", chunks_dir.display()))?;
    remove_partial_files(&chunks_dir);

    let pending: VecDeque<usize> = plan
        .chunks
        .iter()
        .map(|c| c.index)
        .filter(|i| !progress.completed_chunks.contains(i))
        .collect();
    let mkvmerge = match job.engine.kind {
        EngineKind::Frames => Some(tools::locate_mkvmerge()?),
        EngineKind::FfmpegScale { .. } => None,
    };

    let frames_total = plan.frame_count() as u64;
    let frames_done_before: u64 = progress
        .completed_chunks
        .iter()
        .map(|&i| plan.chunks[i].frame_count as u64)
        .sum();
    let chunk_bytes_estimate = estimated_output_bytes(job) / plan.chunks.len().max(1) as u64;
    // A neural engine already keeps every core busy inside each frame.
    let parallel = if job.engine.uses_all_cores() {
        1
    } else {
        ctx.parallel_chunks
    };
    let workers = parallel.clamp(1, pending.len().max(1));
    let pending = if workers > 1 {
        longest_first(pending, plan)
    } else {
        pending
    };
    let queue = Mutex::new(pending);
    let stop = AtomicBool::new(false);
    let should_stop = || stop.load(Ordering::SeqCst) || ctx.cancel.is_cancelled();
    let (tx, rx) = unbounded::<Msg>();
    let started = Instant::now();

    let mut first_error: Option<anyhow::Error> = None;
    std::thread::scope(|scope| {
        for w in 0..workers {
            let tx = tx.clone();
            let (queue, should_stop, chunks_dir, mkvmerge) =
                (&queue, &should_stop, &chunks_dir, &mkvmerge);
            let spawned = std::thread::Builder::new()
                .name(format!("chunk-worker-{w}"))
                .spawn_scoped(scope, move || {
                    loop {
                        if should_stop() {
                            return;
                        }
                        let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                        let Some(index) = next else { return };
                        let chunk = &job.plan().chunks[index];
                        let result =
                            ensure_space(chunks_dir, chunk_bytes_estimate).and_then(|()| {
                                let report = |frames: u64| {
                                    let _ = tx.send(Msg::Frames {
                                        chunk: index,
                                        frames,
                                    });
                                };
                                encode_chunk(
                                    ctx,
                                    job,
                                    chunk,
                                    chunks_dir,
                                    mkvmerge.as_deref(),
                                    should_stop,
                                    &report,
                                )
                                .map_err(|stop| {
                                    blame_a_full_disk(chunks_dir, chunk_bytes_estimate, stop)
                                })
                            });
                        match result {
                            Ok(thumbnail) => {
                                let _ = tx.send(Msg::Done {
                                    chunk: index,
                                    thumbnail,
                                });
                            }
                            Err(Stop::Cancelled) => return,
                            Err(Stop::Failed(error)) => {
                                let _ = tx.send(Msg::Failed {
                                    chunk: index,
                                    error,
                                });
                                return;
                            }
                        }
                    }
                });
            if let Err(e) = spawned {
                first_error.get_or_insert(anyhow!("cannot start a chunk worker thread: {e}"));
                stop.store(true, Ordering::SeqCst);
            }
        }
        drop(tx);

        let mut in_flight: BTreeMap<usize, u64> = BTreeMap::new();
        let mut frames_done_now = 0u64;
        let mut last_event = Instant::now() - PROGRESS_INTERVAL;
        loop {
            let msg = match rx.recv_timeout(PROGRESS_INTERVAL) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match msg {
                Some(Msg::Frames { chunk, frames }) => {
                    in_flight.insert(chunk, frames);
                }
                Some(Msg::Done { chunk, thumbnail }) => {
                    in_flight.remove(&chunk);
                    frames_done_now += plan.chunks[chunk].frame_count as u64;
                    progress.mark_chunk_done(chunk);
                    let done = frames_done_before + frames_done_now;
                    progress.set_step_progress(Step::Upscale, percent(done, frames_total));
                    match session.save_progress(progress) {
                        Ok(()) => {
                            reporter.chunk_done(
                                chunk,
                                progress.completed_chunks.len(),
                                plan.chunks.len(),
                            );
                            if let Some(jpeg) = thumbnail {
                                let path = session.dir().join(thumbnail::THUMBNAIL_FILE);
                                match fsutil::write_atomic(&path, &jpeg) {
                                    Ok(()) => reporter.thumbnail(chunk, path),
                                    Err(e) => log::warn!(
                                        "cannot write the thumbnail ({e}): {}",
                                        path.display()
                                    ),
                                }
                            }
                        }
                        Err(e) => {
                            // Not recorded, so not done: a resumed run encodes it again.
                            progress.completed_chunks.remove(&chunk);
                            first_error.get_or_insert(
                                anyhow::Error::new(e).context("cannot record a finished chunk"),
                            );
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                }
                Some(Msg::Failed { chunk, error }) => {
                    in_flight.remove(&chunk);
                    first_error.get_or_insert(error.context(format!("chunk {chunk} failed")));
                    stop.store(true, Ordering::SeqCst);
                }
                None => {}
            }
            if last_event.elapsed() >= PROGRESS_INTERVAL {
                last_event = Instant::now();
                let this_run = frames_done_now + in_flight.values().sum::<u64>();
                let done = (frames_done_before + this_run).min(frames_total);
                let elapsed = started.elapsed().as_secs_f64();
                let fps = if elapsed > 0.0 {
                    this_run as f64 / elapsed
                } else {
                    0.0
                };
                let eta = (fps > 0.0).then(|| (frames_total - done) as f64 / fps);
                reporter.progress(Step::Upscale, done, frames_total, fps, eta);
            }
        }
    });

    if let Some(error) = first_error {
        return Err(Stop::Failed(error));
    }
    if ctx.cancel.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    if progress.completed_chunks.len() != plan.chunks.len() {
        return Err(Stop::Failed(anyhow!("not every chunk was encoded")));
    }
    reporter.progress(Step::Upscale, frames_total, frames_total, 0.0, Some(0.0));
    Ok(())
}

fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        100.0 * done as f64 / total as f64
    }
}

/// Leftovers of chunks that were in flight when a run stopped.
fn remove_partial_files(chunks_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(chunks_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().contains(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Keep checking free space while chunks are written: a full disk stops the job cleanly
/// (the session stays resumable) instead of failing in the middle of an encoder.
pub(super) fn ensure_space(chunks_dir: &Path, chunk_bytes_estimate: u64) -> Result<(), Stop> {
    let free = fsutil::available_space(chunks_dir).unwrap_or(u64::MAX);
    let needed = chunk_bytes_estimate.saturating_mul(2) + SPACE_MARGIN_BYTES / 4;
    if free < needed {
        return Err(Stop::Failed(anyhow!(
            "the disk is nearly full ({} MiB free, about {} MiB needed for the next chunk); free some space and run again to resume: {}",
            free >> 20,
            needed >> 20,
            chunks_dir.display()
        )));
    }
    Ok(())
}

/// A chunk that failed while the disk filled up failed because of it (an encoder that cannot
/// write may leave an empty file behind and still exit cleanly): the user is told about the
/// disk, which they can fix, rather than about the empty file.
fn blame_a_full_disk(chunks_dir: &Path, chunk_bytes_estimate: u64, stop: Stop) -> Stop {
    match stop {
        Stop::Failed(error) => match ensure_space(chunks_dir, chunk_bytes_estimate) {
            Err(Stop::Failed(disk)) => {
                Stop::Failed(anyhow!("{disk:#} (the chunk stopped with: {error:#})"))
            }
            _ => Stop::Failed(error),
        },
        Stop::Cancelled => Stop::Cancelled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_chunks_start_first_and_equals_keep_their_order() {
        // Keyframes every 30 frames, chunks of about 24: 30, 30, … and a short tail.
        let frames: Vec<(f64, bool)> = (0..200).map(|i| (i as f64 / 24.0, i % 30 == 0)).collect();
        let plan = Plan::new(&frames, 24, super::super::plan::Reach::Near);
        let sizes: Vec<usize> = plan.chunks.iter().map(|c| c.frame_count).collect();
        let order = longest_first((0..plan.chunks.len()).collect(), &plan);
        let ordered: Vec<usize> = order.iter().map(|&i| sizes[i]).collect();
        assert!(ordered.windows(2).all(|w| w[0] >= w[1]), "{ordered:?}");
        let thirty: Vec<usize> = order.iter().copied().filter(|&i| sizes[i] == 30).collect();
        assert!(thirty.windows(2).all(|w| w[0] < w[1]), "{thirty:?}");
        // Only what is pending is scheduled.
        let some = longest_first(VecDeque::from([4, 1]), &plan);
        let mut sorted: Vec<usize> = some.into();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 4]);
    }
}
