//! A chunk of a source damaged inside it (packets whose frames never decode, or decode out of
//! place: a broken transmission, a bad sector): which of its frames the decoder really gives,
//! and the filter that gives exactly those to the encoders.
//!
//! The rule, applied to the decoder's output in order from the chunk's seek: a frame is kept
//! when its time is inside the chunk and later than every frame output before it. Frames
//! concealed out of order (a damaged GOP's pictures, output late with earlier times) are left
//! out, and nothing past the chunk's end is taken. The same decoder on the same bytes from the
//! same seek gives the same frames every time, so a resumed job makes the same chunk.

use std::process::Command;

use super::command::{FFMPEG_COMMON, input_args};
use super::{Chunk, Context, Job, Stop};
use crate::media::process::run_capture;

/// Offset that keeps the running maximum (ffmpeg's expression registers start at 0) below
/// every frame time, negative ones included.
const TIME_OFFSET: &str = "1e9";

/// The filters that pass the frames [`decodable_frames`] lists: frames at or after the
/// chunk's end (the next chunk's seek point) end the stream; out-of-order frames are dropped.
pub(super) fn selection_filter(end_secs: Option<f64>) -> String {
    let select =
        format!("select='st(1,gt(t+{TIME_OFFSET},ld(0)));st(0,max(t+{TIME_OFFSET},ld(0)));ld(1)'");
    match end_secs {
        Some(end) => format!("trim=end={end:.6},{select}"),
        None => select,
    }
}

/// Where the chunk ends: half-way between its last frame and the next chunk's first; `None`
/// for the last chunk.
pub(super) fn chunk_end_secs(job: &Job, chunk: &Chunk) -> Option<f64> {
    job.plan().chunk_end_secs(chunk)
}

/// The source times of the frames the decoder gives for `chunk`, by the rule above.
pub(super) fn decodable_frames(ctx: &Context, job: &Job, chunk: &Chunk) -> Result<Vec<f64>, Stop> {
    let mut cmd = Command::new(&ctx.tools.ffmpeg);
    cmd.args(FFMPEG_COMMON);
    cmd.args(input_args(job, chunk));
    cmd.args(["-map", &format!("0:{}", job.info.video.index)]);
    cmd.args(["-vf", &selection_filter(chunk_end_secs(job, chunk))]);
    // Timestamps only: the frames are not copied, and the checksums are not read.
    cmd.args(["-fps_mode", "passthrough", "-c:v", "wrapped_avframe"]);
    cmd.args(["-enc_time_base:v", &job.info.video.time_base.to_string()]);
    cmd.args(["-f", "framecrc", "-"]);
    let listing = run_capture(cmd, &format!("list-{}", chunk.index))?;
    Ok(parse_framecrc_times(&String::from_utf8_lossy(&listing)))
}

/// Frame times from ffmpeg's `framecrc` output: `#tb 0: N/D`, then one
/// `stream, dts, pts, duration, size, checksum` line per frame. Lines that do not parse
/// are skipped.
pub(super) fn parse_framecrc_times(text: &str) -> Vec<f64> {
    let mut time_base: Option<f64> = None;
    let mut times = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#tb 0:") {
            time_base = rest.trim().split_once('/').and_then(|(n, d)| {
                let (n, d) = (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?);
                (d != 0.0).then_some(n / d)
            });
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (Some("0"), Some(_dts), Some(pts)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if let (Some(tb), Ok(pts)) = (time_base, pts.parse::<i64>()) {
            times.push(pts as f64 * tb);
        }
    }
    times
}

/// Whether `listed` are the planned frames (Matroska and ffprobe agree to the millisecond).
pub(super) fn same_frames(listed: &[f64], planned: &[f64]) -> bool {
    listed.len() == planned.len()
        && listed
            .iter()
            .zip(planned)
            .all(|(a, b)| (a - b).abs() <= 0.0015)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framecrc_times_in_the_stated_time_base() {
        let text = "#format: frame checksums\n#version: 2\n#hash: CRC\n#tb 0: 1/90000\n\
                    #media_type 0: video\n#stream#, dts,        pts, duration,     size, hash\n\
                    0,     223500,     223500,     3750,   115200, 0x1a2b3c4d\n\
                    0,     227250,     227250,     3750,   115200, 0x00000000\n\
                    garbage\n1, 5, 5, 1, 1, 0x0\n";
        let times = parse_framecrc_times(text);
        assert_eq!(times.len(), 2);
        assert!((times[0] - 2.483333).abs() < 1e-6);
        assert!((times[1] - 2.525).abs() < 1e-6);
        assert!(
            parse_framecrc_times("0, 1, 1, 1, 1, 0x0\n").is_empty(),
            "no time base"
        );
    }

    #[test]
    fn selection_ends_at_the_next_chunk() {
        assert_eq!(
            selection_filter(Some(3.5)),
            "trim=end=3.500000,select='st(1,gt(t+1e9,ld(0)));st(0,max(t+1e9,ld(0)));ld(1)'"
        );
        assert!(!selection_filter(None).contains("trim"));
    }

    #[test]
    fn same_frames_to_the_millisecond() {
        assert!(same_frames(&[1.0, 1.0417], &[1.0004, 1.0412]));
        assert!(!same_frames(&[1.0, 1.0417], &[1.0]));
        assert!(!same_frames(&[1.0, 1.0834], &[1.0, 1.0417]));
    }
}
