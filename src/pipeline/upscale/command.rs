//! The ffmpeg arguments both paths share: the chunk's input (seek, source times), what runs on
//! decoded frames before scaling (deinterlace, HDR tone map), the scale graph, and the
//! encoder outputs of every rendition.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{Chunk, Job};
use crate::media::tools::{file_arg, seek_arg};

/// `[-ss <seek>] -copyts -i file:<input>`: decode the chunk's frames with their source times.
pub(super) fn input_args(job: &Job, chunk: &Chunk) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(seek) = chunk.seek_secs {
        // With -copyts, -ss counts from the file's start time.
        let from_start = (seek - job.info.start_time_secs).max(0.0);
        args.extend(["-ss".into(), seek_arg(from_start).into()]);
    }
    args.extend(["-copyts".into(), "-i".into(), file_arg(&job.input)]);
    args
}

pub(crate) const FFMPEG_COMMON: [&str; 6] = [
    "-hide_banner",
    "-nostdin",
    "-nostats",
    "-loglevel",
    "error",
    "-y",
];
/// Machine-readable progress on stdout (read by [`supervise`]).
pub(crate) const PROGRESS_ON_STDOUT: [&str; 2] = ["-progress", "pipe:1"];

/// Filter graph from `[in]` to one `[o<r>]` label per rendition.
pub(super) fn scale_graph(
    input_label: &str,
    pre: Option<&str>,
    targets: &[(u32, u32)],
    flags: &str,
    sar: Option<&str>,
) -> String {
    let mut graph = format!("[{input_label}]");
    if let Some(pre) = pre {
        graph.push_str(pre);
        graph.push(',');
    }
    let scale = |(w, h): (u32, u32)| {
        let mut s = format!("scale={w}:{h}:flags={flags}");
        if let Some(sar) = sar {
            s.push_str(&format!(",setsar={sar}"));
        }
        s
    };
    if targets.len() == 1 {
        graph.push_str(&scale(targets[0]));
        graph.push_str("[o0]");
        return graph;
    }
    graph.push_str(&format!("split={}", targets.len()));
    for r in 0..targets.len() {
        graph.push_str(&format!("[s{r}]"));
    }
    for (r, &t) in targets.iter().enumerate() {
        graph.push_str(&format!(";[s{r}]{}[o{r}]", scale(t)));
    }
    graph
}

/// Deinterlacer keeping one frame per frame (frame count and times unchanged).
pub(super) const DEINTERLACE: &str = "bwdif=mode=send_frame";

/// What runs on decoded frames before scaling: the damaged-source selection, the
/// deinterlacer, then the HDR tone map (to `pix_fmt`). `None` when none applies.
pub(super) fn pre_filters(job: &Job, frames: &ChunkFrames, pix_fmt: &str) -> Option<String> {
    let filters: Vec<String> = [
        frames.select.map(str::to_owned),
        job.deinterlace.then(|| DEINTERLACE.to_owned()),
        job.hdr
            .as_ref()
            .and_then(|hdr| hdr.tone_map_filter(pix_fmt)),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!filters.is_empty()).then(|| filters.join(","))
}

/// The frames a chunk's files must hold: the planned ones, or — from a source damaged inside
/// the chunk — the ones its decoder really gives, with the filter that selects exactly them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkFrames<'a> {
    /// Source times, in order.
    pub times: &'a [f64],
    /// `None` for the planned frames.
    pub select: Option<&'a str>,
}

pub(super) fn output_args(job: &Job, frame_count: usize, parts: &[PathBuf]) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    for (r, (target, part)) in job.targets.iter().zip(parts).enumerate() {
        args.extend(["-map".into(), format!("[o{r}]").into()]);
        args.extend([
            "-frames:v".into(),
            frame_count.to_string().into(),
            "-fps_mode".into(),
            "passthrough".into(),
            // Encode in the source's time base: the default, 1/frame rate, would move
            // variable-rate frames onto a fixed grid.
            "-enc_time_base:v".into(),
            job.info.video.time_base.to_string().into(),
        ]);
        let codec_params = job
            .hdr
            .as_ref()
            .map(|hdr| hdr.codec_params(job.preset.video.codec))
            .unwrap_or_default();
        args.extend(
            job.preset
                .video_encoder_args(
                    &target.rendition,
                    job.frame_rate,
                    Some(job.plan().encoder_threads),
                    &codec_params,
                )
                .into_iter()
                .map(OsString::from),
        );
        if let Some(hdr) = &job.hdr {
            args.extend(hdr.encoder_tag_args().into_iter().map(OsString::from));
        }
        args.extend([
            "-an".into(),
            "-sn".into(),
            "-dn".into(),
            "-f".into(),
            "matroska".into(),
            file_arg(part),
        ]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rendition_graph() {
        assert_eq!(
            scale_graph("0:0", None, &[(640, 480)], "lanczos", None),
            "[0:0]scale=640:480:flags=lanczos[o0]"
        );
        assert_eq!(
            scale_graph(
                "0:v",
                Some(DEINTERLACE),
                &[(640, 480)],
                "lanczos",
                Some("1/1")
            ),
            "[0:v]bwdif=mode=send_frame,scale=640:480:flags=lanczos,setsar=1/1[o0]"
        );
    }

    #[test]
    fn ladder_graph_splits_once() {
        assert_eq!(
            scale_graph("0:1", None, &[(1280, 720), (854, 480)], "lanczos", None),
            "[0:1]split=2[s0][s1];[s0]scale=1280:720:flags=lanczos[o0];[s1]scale=854:480:flags=lanczos[o1]"
        );
    }
}
