//! One chunk, start to finish: encoded by the path its engine takes (inside one ffmpeg filter
//! graph, or through the engine on pipes), its files checked to hold exactly the planned
//! frames, flushed and renamed into place.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};

use super::command::ChunkFrames;
use super::filter_graph::encode_in_ffmpeg;
use super::pipe::{encode_through_engine, restore_timestamps, write_timestamps};
use super::{Chunk, Context, Job, Stop, chunk_file, salvage};
use crate::engine::EngineKind;
use crate::media::frames::frame_times;
use crate::media::mkv_times;
use crate::pipeline::damage;

pub(crate) fn encode_chunk(
    ctx: &Context,
    job: &Job,
    chunk: &Chunk,
    chunks_dir: &Path,
    mkvmerge: Option<&Path>,
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
) -> Result<Option<Vec<u8>>, Stop> {
    let parts: Vec<PathBuf> = (0..job.targets.len())
        .map(|r| chunks_dir.join(format!("r{r}_{:05}.part.mkv", chunk.index)))
        .collect();
    let planned = job.plan().chunk_frame_times(chunk);
    let select = salvage::selection_filter(salvage::chunk_end_secs(job, chunk));
    // None of the chunk's frames decode (damage longer than the chunk): it holds none, and
    // the joined video goes on with the next chunk that does.
    let nothing_decodes = || -> Result<Option<Vec<u8>>, Stop> {
        for part in &parts {
            let _ = std::fs::remove_file(part);
        }
        log::info!(
            "chunk {}: none of its {} frames from {:.3} s can be decoded",
            chunk.index,
            planned.len(),
            planned.first().copied().unwrap_or(0.0)
        );
        damage::record_kept(chunks_dir, chunk.index, &[])?;
        Ok(None)
    };
    // The pipe path never sees the decoder's timestamps: its frames are listed first (cheap
    // next to a frame engine). The filter-graph path finds out from what it wrote.
    let mut kept: Option<Vec<f64>> = None;
    if matches!(job.engine.kind, EngineKind::Frames) {
        let listed = salvage::decodable_frames(ctx, job, chunk)?;
        if !salvage::same_frames(&listed, planned) {
            if listed.is_empty() {
                return nothing_decodes();
            }
            kept = Some(listed);
        }
    }
    let encode = |kept: Option<&[f64]>| {
        let frames = chunk_frames(kept, planned, &select);
        encode_parts(
            ctx,
            job,
            chunk,
            &frames,
            &parts,
            mkvmerge,
            should_stop,
            report,
        )
    };
    let thumbnail = match encode(kept.as_deref()) {
        Err(Stop::Failed(error)) if kept.is_none() && SourceDamaged::is_in(&error) => {
            let listed = salvage::decodable_frames(ctx, job, chunk)?;
            if salvage::same_frames(&listed, planned) {
                return Err(Stop::Failed(error));
            }
            if listed.is_empty() {
                return nothing_decodes();
            }
            for part in &parts {
                let _ = std::fs::remove_file(part);
            }
            let thumbnail = encode(Some(&listed))?;
            kept = Some(listed);
            thumbnail
        }
        other => other?,
    };
    if let Some(kept) = &kept {
        damage::record_kept(chunks_dir, chunk.index, kept)?;
    }
    for (r, part) in parts.iter().enumerate() {
        // Durable before it is recorded as done.
        std::fs::File::open(part)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot flush {} to disk", part.display()))?;
        let done = chunk_file(chunks_dir, r, chunk.index);
        std::fs::rename(part, &done)
            .with_context(|| format!("cannot move {} into place", done.display()))?;
    }
    crate::fsutil::sync_dir(chunks_dir)
        .with_context(|| format!("cannot flush {} to disk", chunks_dir.display()))?;
    Ok(thumbnail)
}

/// Encodes `frames` into `parts` by the engine's path and checks that each part holds them.
#[allow(clippy::too_many_arguments)]
fn encode_parts(
    ctx: &Context,
    job: &Job,
    chunk: &Chunk,
    frames: &ChunkFrames,
    parts: &[PathBuf],
    mkvmerge: Option<&Path>,
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
) -> Result<Option<Vec<u8>>, Stop> {
    let thumbnail = match (job.engine.kind, mkvmerge) {
        (EngineKind::FfmpegScale { flags }, _) => {
            let graph = (flags, frames);
            encode_in_ffmpeg(ctx, job, chunk, graph, parts, should_stop, report)?
        }
        (EngineKind::Frames, Some(mkvmerge)) => {
            let raw_parts: Vec<PathBuf> =
                parts.iter().map(|p| p.with_extension("raw.mkv")).collect();
            let thumbnail =
                encode_through_engine(ctx, job, chunk, frames, &raw_parts, should_stop, report)?;
            let stamps = parts[0].with_file_name(format!("{:05}.timestamps.part.txt", chunk.index));
            write_timestamps(&stamps, frames.times)?;
            for (raw, part) in raw_parts.iter().zip(parts) {
                restore_timestamps(mkvmerge, raw, &stamps, part)?;
                let _ = std::fs::remove_file(raw);
            }
            let _ = std::fs::remove_file(&stamps);
            thumbnail
        }
        (EngineKind::Frames, None) => {
            return Err(Stop::Failed(anyhow!("mkvmerge is needed for this engine")));
        }
    };
    for part in parts {
        let written = match mkv_times::first_track_times(part) {
            Ok(times) => times,
            Err(why) => {
                log::debug!("{}: {why}; asking ffprobe", part.display());
                frame_times(&ctx.tools, part, 0)?
                    .frames
                    .iter()
                    .map(|f| f.time_secs)
                    .collect()
            }
        };
        check_chunk_frames(frames.times, &written)?;
    }
    Ok(thumbnail)
}

/// The kept frames with their selection, or the planned ones.
fn chunk_frames<'a>(
    kept: Option<&'a [f64]>,
    planned: &'a [f64],
    select: &'a str,
) -> ChunkFrames<'a> {
    match kept {
        Some(times) => ChunkFrames {
            times,
            select: Some(select),
        },
        None => ChunkFrames {
            times: planned,
            select: None,
        },
    }
}

fn damaged(text: String) -> Stop {
    Stop::Failed(anyhow::Error::new(SourceDamaged(text)))
}

/// A chunk holds exactly the planned frames: same count, and its first and last frames at the
/// planned times (Matroska stores milliseconds). Catches sources whose listed packets do not
/// all decode (a stream cut mid-GOP), which would otherwise shift frames between chunks.
fn check_chunk_frames(expected_secs: &[f64], written_secs: &[f64]) -> Result<(), Stop> {
    let (Some(first), Some(last)) = (expected_secs.first(), expected_secs.last()) else {
        return Ok(());
    };
    let near = |a: f64, b: f64| (a - b).abs() <= 0.0015;
    if written_secs.len() != expected_secs.len() {
        return Err(damaged(format!(
            "expected {} frames, the decoder gave {} (the source is damaged around {first:.3} s)",
            expected_secs.len(),
            written_secs.len()
        )));
    }
    if !near(written_secs[0], *first) || !near(written_secs[written_secs.len() - 1], *last) {
        return Err(damaged(format!(
            "the chunk's frames are not the planned ones (first at {:.3} s instead of {first:.3} s): \
             the source cannot be decoded exactly at that point (damaged or cut stream)",
            written_secs[0]
        )));
    }
    Ok(())
}

/// A chunk the source cannot give as planned (frames missing or out of place): the same
/// decoder on the same bytes fails the same way on every run, so the job is not resumable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SourceDamaged(pub(super) String);

impl SourceDamaged {
    /// Whether `error` (or anything it wraps) is one.
    pub(crate) fn is_in(error: &anyhow::Error) -> bool {
        error.chain().any(|e| e.is::<SourceDamaged>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_frames_must_be_the_planned_ones() {
        let planned = [1.0, 1.0417, 1.0833];
        assert!(check_chunk_frames(&planned, &[1.0, 1.042, 1.083]).is_ok());
        assert!(check_chunk_frames(&planned, &[1.0, 1.042]).is_err());
        // Shifted by one frame: same count, wrong frames.
        assert!(check_chunk_frames(&planned, &[0.9583, 1.0, 1.042]).is_err());
    }
}
