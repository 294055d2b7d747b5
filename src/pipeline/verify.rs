//! The verify step: the packaged output is probed and compared with what the job promised —
//! frame count, duration, frame size, codec and audio — before the session is discarded.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::damage::EncodedFrames;
use super::package::{DASH_MANIFEST, HLS_MASTER, move_into_place, temp_output_path};
use super::validate::{Job, probed_codec_name};
use super::{Context, Stop};
use crate::media::probe;
use crate::presets::OutputKind;

pub(crate) fn run(ctx: &Context, job: &Job, chunks_dir: &Path) -> Result<(), Stop> {
    let encoded = EncodedFrames::load(job.plan(), chunks_dir)?;
    let expected_frames = encoded.frame_count() as u64;
    let frame_secs = 1.0 / job.frame_rate;
    let expected_duration =
        encoded.last_secs().unwrap_or(0.0) - encoded.first_secs().unwrap_or(0.0) + frame_secs;

    // The packaged output still has its temporary name: it gets the final one only once
    // it is verified.
    let packaged = temp_output_path(&job.output);
    if !packaged.exists() {
        return Err(Stop::Failed(anyhow!(
            "the packaged output is missing; run again to package it anew: {}",
            packaged.display()
        )));
    }
    let playable: Vec<(PathBuf, usize)> = match job.preset.output_kind() {
        OutputKind::File { .. } => vec![(packaged.clone(), 0)],
        OutputKind::Hls { .. } => {
            if !packaged.join(HLS_MASTER).is_file() {
                return Err(Stop::Failed(anyhow!(
                    "the HLS master playlist is missing: {}",
                    packaged.display()
                )));
            }
            (0..job.targets.len())
                .map(|r| (packaged.join(format!("stream_{r}.m3u8")), r))
                .collect()
        }
        OutputKind::Dash { .. } => vec![(packaged.join(DASH_MANIFEST), 0)],
    };
    for (path, r) in playable {
        let (info, frames) = probe::probe_counting_packets(&ctx.tools, &path)
            .map_err(|e| Stop::Failed(anyhow!("the output cannot be read back: {e}")))?;
        let target = &job.targets[r];
        let v = &info.video;
        let mut problems = Vec::new();
        if (v.width, v.height) != (target.width, target.height)
            && !matches!(job.preset.output_kind(), OutputKind::Dash { .. })
        {
            problems.push(format!(
                "frame size {}x{}, expected {}x{}",
                v.width, v.height, target.width, target.height
            ));
        }
        if v.codec != probed_codec_name(job.preset.video.codec) {
            problems.push(format!(
                "video codec {}, expected {}",
                v.codec,
                probed_codec_name(job.preset.video.codec)
            ));
        }
        if !job.info.audio.is_empty() && info.audio.is_empty() {
            problems.push("the source has audio but the output has none".to_owned());
        }
        if frames != expected_frames {
            problems.push(format!("{frames} frames, expected {expected_frames}"));
        }
        // The video stream's own duration: within a frame of the source's (the last frame's
        // duration is not stored exactly by every container). The output keeps the source's
        // times, and Matroska reports a duration from zero, not from the first frame: a source
        // that starts late (MPEG-PS/TS, cut recordings) is measured from its start.
        let off = |d: f64| (d - expected_duration).abs() > 1.5 * frame_secs;
        let start = v.start_time_secs.unwrap_or(0.0);
        if let Some(d) = v.duration_secs
            && matches!(job.preset.output_kind(), OutputKind::File { .. })
            && off(d)
            && off(d - start)
        {
            problems.push(format!(
                "video lasts {d:.3} s, expected {expected_duration:.3} s"
            ));
        }
        if !problems.is_empty() {
            return Err(Stop::Failed(anyhow!(
                "the output does not match the input: {}: {}",
                problems.join("; "),
                path.display()
            )));
        }
    }
    move_into_place(&packaged, &job.output, job.overwrite)
}
