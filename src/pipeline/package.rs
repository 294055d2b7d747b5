//! The package step: join the encoded chunks without re-encoding and mux them with every
//! other stream of the source (audio tracks, subtitles, attachments, cover art, chapters,
//! metadata) into the preset's output: one file, or an HLS / DASH folder (one rendition or a
//! ladder).
//!
//! What a container cannot hold is converted when a faithful conversion exists (text
//! subtitles to mov_text in MP4) or left out with a warning naming it. The output is written
//! under a temporary name (`<output>.part`); the verify step checks it there and only then
//! renames it into place, so an interrupted or unverified job never leaves a file under the
//! final name, and an existing output is only replaced with `--overwrite`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, anyhow};

use super::damage::EncodedFrames;
use super::streams::{CoverAttachment, Covers, plan_streams};
use super::upscale::{FFMPEG_COMMON, PROGRESS_ON_STDOUT, chunk_file};
use super::validate::Job;
use super::{Context, Reporter, Stop};
use crate::media::process;
use crate::media::progress::ProgressParser;
use crate::media::tools::file_arg;
use crate::presets::{Container, OutputKind, VideoCodec};
use crate::session::Session;
use crate::session::progress::Step;

/// Name of the master playlist inside an HLS output folder.
pub(crate) const HLS_MASTER: &str = "master.m3u8";
/// Name of the manifest inside a DASH output folder.
pub(crate) const DASH_MANIFEST: &str = "manifest.mpd";

pub(crate) fn run(
    ctx: &Context,
    reporter: &Reporter,
    job: &Job,
    session: &Session,
) -> Result<(), Stop> {
    let chunks_dir = session.chunks_dir();
    let encoded = EncodedFrames::load(job.plan(), &chunks_dir)?;
    if let Some(warning) = encoded.dropped_warning() {
        reporter.warn(warning);
    }
    let lists: Vec<PathBuf> = (0..job.targets.len())
        .map(|r| {
            let list = session.dir().join(format!("concat_r{r}.txt"));
            write_concat_list(&list, job, &encoded, &chunks_dir, r).map(|()| list)
        })
        .collect::<Result<_, _>>()?;
    let temp = temp_output_path(&job.output);
    remove_path(&temp);

    let streams = plan_streams(&job.info, &job.preset);
    for warning in &streams.warnings {
        reporter.warn(warning.clone());
    }
    let mut cover_files: Vec<PathBuf> = Vec::new();
    let mut cmd = Command::new(&ctx.tools.ffmpeg);
    cmd.args(FFMPEG_COMMON).args(PROGRESS_ON_STDOUT);
    // Source times are kept: the joined video starts where the source's first frame was.
    cmd.arg("-copyts");
    let first_secs = encoded.first_secs().unwrap_or(0.0);
    for list in &lists {
        cmd.args([
            "-itsoffset",
            &format!("{first_secs:.6}"),
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
        ]);
        cmd.arg(file_arg(list));
    }
    let source = lists.len();
    cmd.arg("-i").arg(file_arg(&job.input));
    match job.preset.output_kind() {
        OutputKind::File { container } => {
            cmd.args(["-map", "0:v:0", "-c:v", "copy"]);
            // The video's own tag (hvc1): not the cover pictures' that follow it.
            cmd.args(job.preset.video_mux_args().into_iter().map(|a| {
                if a == "-tag:v" {
                    "-tag:v:0".to_owned()
                } else {
                    a
                }
            }));
            cmd.args(streams.args(source));
            match &streams.covers {
                Covers::None => {}
                Covers::Streams(indices) => {
                    for (n, index) in indices.iter().enumerate() {
                        let v = n + 1;
                        cmd.args(["-map", &format!("{source}:{index}")]);
                        cmd.args([&format!("-c:v:{v}"), "copy"]);
                        cmd.args([&format!("-disposition:v:{v}"), "attached_pic"]);
                    }
                }
                Covers::Attachments(covers) => {
                    let mapped = streams.streams.iter().filter(|s| s.1 == 't').count();
                    let files = extract_covers(ctx, reporter, job, covers, session.dir());
                    for (n, (path, cover)) in files.iter().enumerate() {
                        let t = mapped + n;
                        cmd.arg("-attach").arg(path);
                        cmd.arg(format!("-metadata:s:t:{t}"));
                        cmd.arg(format!("mimetype={}", cover.mimetype));
                        cmd.arg(format!("-metadata:s:t:{t}"));
                        cmd.arg(format!("filename={}", cover.file_name));
                    }
                    cover_files = files.into_iter().map(|(p, _)| p).collect();
                }
            }
            let source_arg = source.to_string();
            cmd.args(["-map_metadata", &source_arg]);
            cmd.args([
                "-map_chapters",
                if streams.chapters { &source_arg } else { "-1" },
            ]);
            let format = match container {
                Container::Mp4 => {
                    cmd.args(["-movflags", "+faststart"]);
                    "mp4"
                }
                Container::Mkv => "matroska",
                Container::Webm => "webm",
            };
            cmd.args(["-f", format]).arg(file_arg(&temp));
        }
        OutputKind::Hls { segment_seconds } => {
            std::fs::create_dir_all(&temp)
                .with_context(|| format!("cannot create {}", temp.display()))?;
            let mut var_map = Vec::new();
            for r in 0..lists.len() {
                cmd.args(["-map", &format!("{r}:v:0")]);
                if let Some(a) = streams.first_audio {
                    cmd.args(["-map", &format!("{source}:{a}")]);
                    var_map.push(format!("v:{r},a:{r}"));
                } else {
                    var_map.push(format!("v:{r}"));
                }
            }
            cmd.args(["-c:v", "copy"]);
            cmd.args(peak_bitrate_args(job, &chunks_dir));
            cmd.args(job.preset.video_mux_args());
            cmd.args(job.preset.audio_args());
            cmd.args([
                "-map_metadata",
                "-1",
                "-f",
                "hls",
                "-hls_time",
                &segment_seconds.to_string(),
            ]);
            cmd.args([
                "-hls_playlist_type",
                "vod",
                "-hls_flags",
                "independent_segments",
            ]);
            // HEVC in HLS needs fragmented MP4 segments; everything else uses MPEG-TS.
            if job.preset.video.codec == VideoCodec::H265 {
                cmd.args([
                    "-hls_segment_type",
                    "fmp4",
                    "-hls_fmp4_init_filename",
                    "init_%v.mp4",
                ]);
                cmd.args(["-hls_segment_filename", "stream_%v_%05d.m4s"]);
            } else {
                cmd.args(["-hls_segment_type", "mpegts"]);
                cmd.args(["-hls_segment_filename", "stream_%v_%05d.ts"]);
            }
            cmd.args([
                "-master_pl_name",
                HLS_MASTER,
                "-var_stream_map",
                &var_map.join(" "),
            ]);
            // Names relative to the output folder: the HLS muxer expands % sequences in the
            // whole path, and the folder's name comes from the user's file name.
            cmd.arg("stream_%v.m3u8").current_dir(&temp);
        }
        OutputKind::Dash { segment_seconds } => {
            std::fs::create_dir_all(&temp)
                .with_context(|| format!("cannot create {}", temp.display()))?;
            for r in 0..lists.len() {
                cmd.args(["-map", &format!("{r}:v:0")]);
            }
            let mut sets = "id=0,streams=v".to_owned();
            if let Some(a) = streams.first_audio {
                cmd.args(["-map", &format!("{source}:{a}")]);
                sets.push_str(" id=1,streams=a");
            }
            cmd.args(["-c:v", "copy"]);
            cmd.args(peak_bitrate_args(job, &chunks_dir));
            cmd.args(job.preset.video_mux_args());
            cmd.args(job.preset.audio_args());
            cmd.args([
                "-map_metadata",
                "-1",
                "-f",
                "dash",
                "-seg_duration",
                &segment_seconds.to_string(),
            ]);
            cmd.args([
                "-use_template",
                "1",
                "-use_timeline",
                "1",
                "-adaptation_sets",
                &sets,
            ]);
            cmd.arg(temp.join(DASH_MANIFEST));
        }
    }
    cmd.stdout(Stdio::piped());
    let mut child = process::spawn(cmd, "package")?;
    let frames_total = encoded.frame_count() as u64;
    if let Some(stdout) = child.take_stdout() {
        let mut parser = ProgressParser::default();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if ctx.cancel.is_cancelled() {
                let _ = child.kill();
                break;
            }
            if let Some(update) = parser.feed_line(&line) {
                let done = update.frame.unwrap_or(0).min(frames_total);
                reporter.progress(
                    Step::Package,
                    done,
                    frames_total,
                    update.fps.unwrap_or(0.0),
                    None,
                );
            }
        }
    }
    let waited = child.wait();
    for file in &cover_files {
        let _ = std::fs::remove_file(file);
    }
    if ctx.cancel.is_cancelled() {
        remove_path(&temp);
        return Err(Stop::Cancelled);
    }
    if let Err(e) = waited {
        remove_path(&temp);
        return Err(Stop::Failed(e.into()));
    }
    for list in lists {
        let _ = std::fs::remove_file(list);
    }
    Ok(())
}

/// `-b:v:<r> <kbps>` per rendition: the highest bitrate of any of its chunks. Copied streams
/// carry no bitrate, and HLS `BANDWIDTH` / DASH `bandwidth` are what players choose a rung by.
fn peak_bitrate_args(job: &Job, chunks_dir: &Path) -> Vec<String> {
    let plan = job.plan();
    let mut args = Vec::new();
    for r in 0..job.targets.len() {
        let peak_bps = plan
            .chunks
            .iter()
            .filter_map(|c| {
                let bytes = std::fs::metadata(chunk_file(chunks_dir, r, c.index))
                    .ok()?
                    .len();
                let secs = c
                    .duration_secs
                    .unwrap_or(c.frame_count as f64 / job.frame_rate);
                (secs > 0.0).then(|| bytes as f64 * 8.0 / secs)
            })
            .fold(0.0, f64::max);
        if peak_bps > 0.0 {
            args.push(format!("-b:v:{r}"));
            args.push(format!("{}k", (peak_bps / 1000.0).ceil() as u64));
        }
    }
    args
}

/// `clip.2x.mp4` → `clip.2x.mp4.part` (same folder, so the final rename is atomic).
pub(crate) fn temp_output_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().map(OsString::from).unwrap_or_default();
    name.push(".part");
    output.with_file_name(name)
}

fn remove_path(path: &Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// The last act of a job: the verified output, made durable, takes its final name.
pub(crate) fn move_into_place(temp: &Path, output: &Path, overwrite: bool) -> Result<(), Stop> {
    sync_tree(temp).with_context(|| format!("cannot flush {} to disk", temp.display()))?;
    if output.exists() {
        if !overwrite {
            remove_path(temp);
            return Err(Stop::Failed(anyhow!(
                "the output appeared while this job ran; it was left as it is (use --overwrite to replace it): {}",
                output.display()
            )));
        }
        if output.is_dir() {
            // A folder cannot be replaced by rename: move the old one aside first.
            let old = output.with_file_name(format!(
                ".{}.reframe-old-{}",
                output
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            remove_path(&old);
            std::fs::rename(output, &old)
                .with_context(|| format!("cannot replace {}", output.display()))?;
            std::fs::rename(temp, output).with_context(|| {
                format!("cannot move the output into place: {}", output.display())
            })?;
            remove_path(&old);
            sync_parent(output);
            return Ok(());
        }
    }
    std::fs::rename(temp, output)
        .with_context(|| format!("cannot move the output into place: {}", output.display()))?;
    sync_parent(output);
    Ok(())
}

/// fsync a file, or every file of a folder and the folder itself.
fn sync_tree(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            sync_tree(&entry?.path())?;
        }
        crate::fsutil::sync_dir(path)
    } else {
        std::fs::File::open(path)?.sync_all()
    }
}

fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        let _ = crate::fsutil::sync_dir(parent);
    }
}

/// A concat demuxer list for rendition `r`: each chunk with its duration up to the next
/// chunk's first frame, so the joined video keeps the source's frame times (chunks none of
/// whose frames decode are left out).
fn write_concat_list(
    list: &Path,
    job: &Job,
    encoded: &EncodedFrames,
    chunks_dir: &Path,
    r: usize,
) -> Result<(), Stop> {
    let mut text = String::from("ffconcat version 1.0\n");
    for (chunk, duration) in job.plan().chunks.iter().zip(encoded.chunk_durations()) {
        if encoded.is_empty_chunk(chunk.index) {
            continue;
        }
        let file = chunk_file(chunks_dir, r, chunk.index);
        text.push_str(&format!("file '{}'\n", escape_concat_path(&file)));
        if let Some(d) = duration {
            text.push_str(&format!("duration {d:.6}\n"));
        }
    }
    crate::fsutil::write_atomic(list, text.as_bytes())
        .with_context(|| format!("cannot write {}", list.display()))?;
    Ok(())
}

/// Quote a path for a concat list line `file '…'`.
fn escape_concat_path(path: &Path) -> String {
    path.to_string_lossy().replace('\'', "'\\''")
}

/// Writes each cover of `covers` that goes in as an attachment to a file in `dir`, for
/// `-attach`; a picture that cannot be written is left out with a warning.
fn extract_covers<'a>(
    ctx: &Context,
    reporter: &Reporter,
    job: &Job,
    covers: &'a [CoverAttachment],
    dir: &Path,
) -> Vec<(PathBuf, &'a CoverAttachment)> {
    let mut files = Vec::new();
    for (n, cover) in covers.iter().enumerate() {
        let path = dir.join(format!("cover_{n}.part"));
        let written = Command::new(&ctx.tools.ffmpeg)
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i"])
            .arg(file_arg(&job.input))
            .args(["-map", &format!("0:{}", cover.index)])
            .args([
                "-c",
                "copy",
                "-frames:v",
                "1",
                "-update",
                "1",
                "-f",
                "image2",
            ])
            .arg(file_arg(&path))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        if written {
            files.push((path, cover));
        } else {
            let _ = std::fs::remove_file(&path);
            reporter.warn(format!(
                "the cover art in stream {} cannot be read; it is left out",
                cover.index
            ));
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_paths_are_quoted() {
        assert_eq!(
            escape_concat_path(Path::new("/a/it's.mkv")),
            "/a/it'\\''s.mkv"
        );
    }

    #[test]
    fn temp_name_is_beside_the_output() {
        assert_eq!(
            temp_output_path(Path::new("/o/clip.2x.mp4")),
            Path::new("/o/clip.2x.mp4.part")
        );
        assert_eq!(
            temp_output_path(Path::new("/o/clip.2x.hls")),
            Path::new("/o/clip.2x.hls.part")
        );
    }

    #[test]
    fn existing_output_is_kept_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, out) = (dir.path().join("o.mp4.part"), dir.path().join("o.mp4"));
        std::fs::write(&temp, "new").unwrap();
        std::fs::write(&out, "old").unwrap();
        assert!(move_into_place(&temp, &out, false).is_err());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
        std::fs::write(&temp, "new").unwrap();
        move_into_place(&temp, &out, true).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new");
        assert!(!temp.exists());
    }

    #[test]
    fn output_folders_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, out) = (dir.path().join("o.hls.part"), dir.path().join("o.hls"));
        std::fs::create_dir_all(&temp).unwrap();
        std::fs::write(temp.join("master.m3u8"), "new").unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("stale.ts"), "old").unwrap();
        move_into_place(&temp, &out, true).unwrap();
        assert!(out.join("master.m3u8").exists());
        assert!(!out.join("stale.ts").exists());
    }
}
