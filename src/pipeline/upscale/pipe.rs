//! Frame engines: a decoding ffmpeg (yuv420p on a pipe) → the engine on this thread → an
//! encoding ffmpeg, each hand-off a bounded queue; mkvmerge then gives the encoded frames the
//! source's own times.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, anyhow, bail};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::chunk::SourceDamaged;
use super::command::{
    ChunkFrames, FFMPEG_COMMON, input_args, output_args, pre_filters, scale_graph,
};
use super::{Chunk, Context, Job, PIPE_QUEUE_FRAMES, POLL, Stop, thumbnail};
use crate::engine::{ColorMatrix, Frame, FrameSetup, Upscaler};
use crate::media::process;

/// Pipe path: decoder → engine (this thread) → encoder, each hand-off a bounded queue.
pub(super) fn encode_through_engine(
    ctx: &Context,
    job: &Job,
    chunk: &Chunk,
    frames: &ChunkFrames,
    raw_parts: &[PathBuf],
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
) -> Result<Option<Vec<u8>>, Stop> {
    let (src_w, src_h) = job.info.video.display_size();
    let setup = FrameSetup {
        scale: job.engine_scale,
        denoise: job.settings.denoise,
        matrix: match &job.hdr {
            Some(hdr) => hdr.engine_matrix(),
            None => ColorMatrix::for_source(job.info.video.color_space.as_deref(), src_h),
        },
    };
    let mut engine: Box<dyn Upscaler> = job.engine.instantiate(&setup)?;
    let (eng_w, eng_h) = engine.output_size(src_w, src_h);

    let mut decoder_cmd = Command::new(&ctx.tools.ffmpeg);
    decoder_cmd.args(FFMPEG_COMMON);
    decoder_cmd.args(input_args(job, chunk));
    decoder_cmd.args(["-map", &format!("0:{}", job.info.video.index)]);
    let frame_count = frames.times.len();
    if let Some(filters) = pre_filters(job, frames, "yuv420p") {
        decoder_cmd.args(["-vf", &filters]);
    }
    decoder_cmd.args([
        "-frames:v",
        &frame_count.to_string(),
        "-fps_mode",
        "passthrough",
    ]);
    decoder_cmd.args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]);
    decoder_cmd.stdout(Stdio::piped());

    let mut encoder_cmd = Command::new(&ctx.tools.ffmpeg);
    encoder_cmd.args(FFMPEG_COMMON);
    encoder_cmd.args([
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-video_size",
        &format!("{eng_w}x{eng_h}"),
    ]);
    encoder_cmd.args([
        "-framerate",
        &format!("{:.6}", job.frame_rate),
        "-i",
        "pipe:0",
    ]);
    let sizes: Vec<(u32, u32)> = job.targets.iter().map(|t| (t.width, t.height)).collect();
    let sar = job.info.video.sar;
    let sar = if sar.num > 0 && sar.den > 0 {
        sar.to_string()
    } else {
        "1/1".to_owned()
    };
    encoder_cmd.args([
        "-filter_complex",
        &scale_graph("0:v", None, &sizes, "lanczos", Some(&sar)),
    ]);
    encoder_cmd.args(output_args(job, frame_count, raw_parts));
    // stdout may be the event channel (`run --json`, the worker): never let a child write there.
    encoder_cmd.stdout(Stdio::null());

    let mut decoder = process::spawn(decoder_cmd, &format!("decode-{}", chunk.index))?;
    let mut encoder = process::spawn_with_stdin(
        encoder_cmd,
        &format!("encode-{}", chunk.index),
        Stdio::piped(),
    )?;
    let decoded = decoder
        .take_stdout()
        .ok_or_else(|| anyhow!("the decoder has no output pipe"))?;
    let encoder_in = encoder
        .take_stdin()
        .ok_or_else(|| anyhow!("the encoder has no input pipe"))?;

    let frame_len = Frame::yuv420p_len(src_w, src_h);
    let (frames_tx, frames_rx) = bounded::<Frame>(PIPE_QUEUE_FRAMES);
    let (out_tx, out_rx) = bounded::<Frame>(PIPE_QUEUE_FRAMES);
    let mut thumb: Option<(u32, u32, Vec<u8>)> = None;
    let last_frame = (frame_count as u64).saturating_sub(1);
    let result = std::thread::scope(|scope| -> Result<(), Stop> {
        let reader = std::thread::Builder::new()
            .name(format!("decode-reader-{}", chunk.index))
            .spawn_scoped(scope, move || {
                read_frames(decoded, src_w, src_h, frame_len, &frames_tx)
            })
            .context("cannot start the decoder reader thread")?;
        let writer = std::thread::Builder::new()
            .name(format!("encode-writer-{}", chunk.index))
            .spawn_scoped(scope, move || write_frames(encoder_in, &out_rx))
            .context("cannot start the encoder writer thread")?;
        let mut at_last = |frame: &Frame| thumb = thumbnail::thumbnail_from_yuv420p(frame);
        let processed = run_engine(
            engine.as_mut(),
            &frames_rx,
            out_tx,
            should_stop,
            report,
            (last_frame, &mut at_last),
        );
        drop(frames_rx);
        let read = reader
            .join()
            .map_err(|_| anyhow!("the decoder reader thread panicked"))?;
        let written = writer
            .join()
            .map_err(|_| anyhow!("the encoder writer thread panicked"))?;
        // The engine's own failure first; a cancel next.
        let processed = processed?;
        if should_stop() {
            return Err(Stop::Cancelled);
        }
        // Both children have seen their pipes close by now. A child's own error (with its log
        // tail: disk full, bad arguments) explains more than the broken pipe it left behind.
        let encoded = encoder.wait();
        let decoded = decoder.wait();
        encoded.map_err(anyhow::Error::from)?;
        decoded.map_err(anyhow::Error::from)?;
        let read = read?;
        written?;
        if processed != read {
            return Err(Stop::Failed(anyhow!(
                "the encoder stopped after {processed} of {read} frames"
            )));
        }
        if read != frame_count as u64 {
            return Err(Stop::Failed(anyhow::Error::new(SourceDamaged(format!(
                "the decoder gave {read} frames, expected {frame_count} (the source is damaged after {:.3} s)",
                chunk.start_secs
            )))));
        }
        Ok(())
    });
    if result.is_err() {
        let _ = decoder.kill();
        let _ = encoder.kill();
    }
    result?;
    Ok(thumb.and_then(|(w, h, rgb)| thumbnail::encode_jpeg(w, h, &rgb)))
}

fn run_engine(
    engine: &mut dyn Upscaler,
    frames: &Receiver<Frame>,
    out: Sender<Frame>,
    should_stop: &(dyn Fn() -> bool + Sync),
    report: &dyn Fn(u64),
    (last_frame, at_last): (u64, &mut dyn FnMut(&Frame)),
) -> Result<u64, Stop> {
    let mut count = 0u64;
    loop {
        if should_stop() {
            return Err(Stop::Cancelled);
        }
        match frames.recv_timeout(POLL) {
            Ok(frame) => {
                let upscaled = engine
                    .process(&frame)
                    .map_err(|e| Stop::Failed(e.context("the engine failed")))?;
                if count == last_frame {
                    at_last(&upscaled);
                }
                if out.send(upscaled).is_err() {
                    // The encoder is gone; its exit status says why.
                    return Ok(count);
                }
                count += 1;
                report(count);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(count),
        }
    }
}

fn read_frames(
    mut from: impl Read,
    width: u32,
    height: u32,
    frame_len: usize,
    to: &Sender<Frame>,
) -> anyhow::Result<u64> {
    let mut count = 0u64;
    loop {
        let mut data = vec![0u8; frame_len];
        let mut filled = 0;
        while filled < frame_len {
            match from.read(&mut data[filled..]) {
                Ok(0) if filled == 0 => return Ok(count),
                Ok(0) => bail!("the decoder stopped in the middle of a frame"),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(anyhow::Error::new(e).context("cannot read decoded frames")),
            }
        }
        if to
            .send(Frame {
                width,
                height,
                data,
            })
            .is_err()
        {
            return Ok(count);
        }
        count += 1;
    }
}

fn write_frames(mut to: impl Write, from: &Receiver<Frame>) -> anyhow::Result<()> {
    for frame in from {
        to.write_all(&frame.data)
            .context("cannot send frames to the encoder")?;
    }
    to.flush().context("cannot send frames to the encoder")?;
    Ok(())
}

/// A v2 timestamps file (milliseconds, one line per frame) for mkvmerge.
pub(super) fn write_timestamps(path: &Path, times_secs: &[f64]) -> Result<(), Stop> {
    let mut text = String::from("# timestamp format v2\n");
    for t in times_secs {
        text.push_str(&format!("{:.6}\n", t * 1000.0));
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub(super) fn restore_timestamps(
    mkvmerge: &Path,
    raw: &Path,
    stamps: &Path,
    out: &Path,
) -> Result<(), Stop> {
    let mut cmd = Command::new(mkvmerge);
    cmd.arg("--quiet")
        .arg("-o")
        .arg(out)
        .arg("--timestamps")
        .arg({
            let mut s = OsString::from("0:");
            s.push(stamps);
            s
        });
    cmd.arg(raw).stdout(Stdio::null());
    match process::spawn(cmd, "mkvmerge")?.wait() {
        Ok(()) => Ok(()),
        // mkvmerge exits 1 for warnings only.
        Err(process::ProcessError::Failed {
            status: process::ExitKind::Code(1),
            ..
        }) => Ok(()),
        Err(e) => Err(Stop::Failed(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;

    #[test]
    fn frames_are_read_whole_and_torn_frames_are_errors() {
        let (tx, rx) = unbounded();
        let len = Frame::yuv420p_len(2, 2);
        let bytes = vec![7u8; len * 2];
        assert_eq!(read_frames(&bytes[..], 2, 2, len, &tx).unwrap(), 2);
        assert_eq!(rx.try_iter().count(), 2);
        let torn = vec![7u8; len + 1];
        assert!(read_frames(&torn[..], 2, 2, len, &tx).is_err());
    }

    #[test]
    fn timestamps_file_is_in_milliseconds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        write_timestamps(&p, &[0.0, 0.041708, 1.5]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "# timestamp format v2\n0.000000\n41.708000\n1500.000000\n"
        );
    }
}
