//! ffmpeg scale engines: one ffmpeg decodes, scales and encodes every rendition of a chunk in
//! one filter graph (no frame leaves ffmpeg), and reports its progress on stdout.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, bounded};

use super::command::{
    ChunkFrames, FFMPEG_COMMON, PROGRESS_ON_STDOUT, input_args, output_args, pre_filters,
    scale_graph,
};
use super::{Chunk, Context, Job, POLL, Stop, thumbnail};
use crate::media::process::{self, Spawned};
use crate::media::progress::ProgressParser;
use crate::media::tools::file_arg;

pub(super) fn encode_in_ffmpeg(
    ctx: &Context,
    job: &Job,
    chunk: &Chunk,
    (flags, frames): (&str, &ChunkFrames),
    parts: &[PathBuf],
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
) -> Result<Option<Vec<u8>>, Stop> {
    let mut cmd = Command::new(&ctx.tools.ffmpeg);
    cmd.args(FFMPEG_COMMON).args(PROGRESS_ON_STDOUT);
    cmd.args(input_args(job, chunk));
    let sizes: Vec<(u32, u32)> = job.targets.iter().map(|t| (t.width, t.height)).collect();
    let graph = scale_graph(
        &format!("0:{}", job.info.video.index),
        pre_filters(job, frames, job.preset.video.pix_fmt.as_str()).as_deref(),
        &sizes,
        flags,
        None,
    );
    // One more output: the chunk's last frame, small (see `thumbnail`).
    // Beside the chunk's parts; a `.part` name, so a stopped run's leftover is swept.
    let raw_thumb = parts
        .first()
        .map(|p| p.with_file_name(format!("{:05}.thumb.part.rgb", chunk.index)));
    let frame_count = frames.times.len();
    let thumb_size = sizes
        .first()
        .map(|&(w, h)| thumbnail::thumbnail_size(w, h))
        .filter(|_| frame_count > 0 && raw_thumb.is_some());
    let graph = match thumb_size {
        Some(size) => thumbnail::graph_with_thumbnail(&graph, frame_count - 1, size),
        None => graph,
    };
    cmd.args(["-filter_complex", &graph]);
    cmd.args(output_args(job, frame_count, parts));
    if let (Some(_), Some(raw)) = (thumb_size, &raw_thumb) {
        cmd.args([
            "-map",
            "[thumb]",
            "-frames:v",
            thumbnail::THUMBNAIL_OUTPUT_FRAMES,
        ]);
        // Passthrough: a constant-rate output would repeat frame 0 to fill the time up to the
        // last frame, and stop at the repeat.
        cmd.args(["-fps_mode", "passthrough", "-f", "rawvideo"]);
        cmd.arg(file_arg(raw));
    }
    cmd.stdout(Stdio::piped());
    let child = process::spawn(cmd, &format!("chunk-{}", chunk.index))?;
    supervise(child, should_stop, report)?;
    Ok(match (thumb_size, raw_thumb) {
        (Some(size), Some(raw)) => thumbnail::jpeg_from_raw_file(&raw, size),
        _ => None,
    })
}

/// Wait for an ffmpeg that reports `-progress` on stdout, forwarding its frame count and
/// killing it when the job stops.
fn supervise(
    mut child: Spawned,
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
) -> Result<(), Stop> {
    let (tx, rx) = bounded::<u64>(16);
    let reader = child.take_stdout().map(|stdout| {
        std::thread::Builder::new()
            .name("ffmpeg-progress".into())
            .spawn(move || {
                let mut parser = ProgressParser::default();
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(update) = parser.feed_line(&line)
                        && let Some(frame) = update.frame
                        && tx.send(frame).is_err()
                    {
                        break;
                    }
                }
            })
    });
    let result = loop {
        if should_stop() {
            let _ = child.kill();
            break Err(Stop::Cancelled);
        }
        match rx.recv_timeout(POLL) {
            Ok(frames) => report(frames),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                break child.wait().map_err(|e| Stop::Failed(e.into()));
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            // Drain what is left; the channel disconnects when the reader sees EOF.
            while let Ok(frames) = rx.recv_timeout(Duration::from_secs(5)) {
                report(frames);
            }
            break child.wait().map_err(|e| Stop::Failed(e.into()));
        }
    };
    drop(rx);
    if let Some(Ok(handle)) = reader {
        let _ = handle.join();
    }
    result
}
