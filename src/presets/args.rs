//! Turns a validated preset into ffmpeg arguments: the encoder part of one chunk's command, the
//! audio part of the package command, and what each output container can hold.
//!
//! Every chunk is encoded by its own encoder instance, so the arguments pin down everything that
//! would otherwise vary between runs or machines: the pixel format (x264 fed RGB silently picks
//! 4:4:4), closed GOPs, fixed keyframe spacing for streaming outputs, and thread counts when the
//! caller asks for a single-threaded encoder. All options were checked against ffmpeg 5.1.

use super::schema::{
    Audio, AudioCodec, Container, OutputKind, Preset, RateControl, Rendition, Speed, VideoCodec,
};

/// How a container stores text subtitles (SRT, ASS, WebVTT, mov_text…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSubtitles {
    /// Any text subtitle stream can be copied as is.
    Copy,
    /// Text subtitles must be converted to this ffmpeg subtitle encoder (`mov_text`, `webvtt`).
    ConvertTo(&'static str),
    /// The output cannot carry subtitles: drop them with a warning.
    Unsupported,
}

/// What the output container can carry besides video and audio, so the packager can copy,
/// convert or drop the source's other streams (with a warning) instead of failing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContainerCaps {
    pub text_subtitles: TextSubtitles,
    /// DVD/Blu-ray style image subtitles (dvd_subtitle, hdmv_pgs_subtitle, dvb_subtitle).
    pub bitmap_subtitles: bool,
    /// Attached files such as fonts (Matroska only).
    pub attachments: bool,
    pub chapters: bool,
    output: OutputKind,
}

impl ContainerCaps {
    /// Whether an audio stream of this ffmpeg codec name (`aac`, `ac3`, `pcm_s16le`…) can be
    /// copied into the output without re-encoding.
    pub fn can_copy_audio(&self, codec: &str) -> bool {
        match self.output {
            OutputKind::File {
                container: Container::Mkv,
            } => true,
            OutputKind::File {
                container: Container::Mp4,
            } => matches!(
                codec,
                "aac" | "mp3" | "mp2" | "ac3" | "eac3" | "alac" | "opus" | "dts"
            ),
            OutputKind::File {
                container: Container::Webm,
            } => matches!(codec, "opus" | "vorbis"),
            OutputKind::Hls { .. } | OutputKind::Dash { .. } => codec == "aac",
        }
    }
}

/// Frames between keyframes for a GOP of `keyint_seconds` at `fps` (at least 1). A frame rate
/// that is not a positive number is treated as 25 fps, with a warning.
pub fn keyint_frames(keyint_seconds: f64, fps: f64) -> u32 {
    let fps = if fps.is_finite() && fps > 0.0 {
        fps
    } else {
        log::warn!("frame rate {fps} is not usable for the keyframe interval; assuming 25 fps");
        25.0
    };
    let frames = (keyint_seconds * fps).round();
    if frames.is_finite() && frames >= 1.0 {
        frames.min(f64::from(u32::MAX)) as u32
    } else {
        1
    }
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

fn kbps(x: u32) -> String {
    format!("{x}k")
}

impl Preset {
    /// The encoder part of an ffmpeg command (after the inputs and filters, before the output)
    /// for ONE chunk of `rendition`, encoded by its own encoder instance at `fps`.
    ///
    /// `threads`: `Some(1)` gives a truly single-threaded encoder (several chunks then run side
    /// by side, one per core); `Some(n)` caps the encoder at n threads; `None` lets it decide.
    /// Output is deterministic for a given ffmpeg build and `threads` value.
    ///
    /// `codec_params` go into the encoder's own parameter list (`-x265-params`,
    /// `-svtav1-params`), e.g. a source's HDR mastering display; other encoders take none.
    pub fn video_encoder_args(
        &self,
        rendition: &Rendition,
        fps: f64,
        threads: Option<u32>,
        codec_params: &[String],
    ) -> Vec<String> {
        let threads = threads.filter(|n| *n > 0);
        let keyint = self.video.keyint_seconds.map(|k| keyint_frames(k, fps));
        let pix_fmt = self.video.pix_fmt.as_str();
        let speed = match &self.video.speed {
            Some(Speed::Name(n)) => n.clone(),
            Some(Speed::Number(n)) => n.to_string(),
            None => String::new(),
        };
        let mut a: Vec<String> = vec![s("-c:v"), s(self.video.codec.encoder())];
        match self.video.codec {
            VideoCodec::H264 => {
                a.extend([s("-preset"), speed]);
                match rendition.rate {
                    RateControl::Crf(c) => a.extend([s("-crf"), s(c)]),
                    RateControl::BitrateKbps(b) => a.extend([s("-b:v"), kbps(b)]),
                    RateControl::Lossless => a.extend([s("-qp"), s(0)]),
                }
                if let Some(m) = rendition.maxrate_kbps {
                    a.extend([
                        s("-maxrate"),
                        kbps(m),
                        s("-bufsize"),
                        kbps(m.saturating_mul(2)),
                    ]);
                }
                a.extend([s("-pix_fmt"), s(pix_fmt), s("-flags:v"), s("+cgop")]);
                if let Some(k) = keyint {
                    a.extend([s("-g"), s(k), s("-sc_threshold"), s(0)]);
                }
                if let Some(n) = threads {
                    a.extend([s("-threads"), s(n)]);
                }
            }
            VideoCodec::H265 => {
                a.extend([s("-preset"), speed]);
                let mut params = vec![s("log-level=error"), s("open-gop=0")];
                match rendition.rate {
                    RateControl::Crf(c) => a.extend([s("-crf"), s(c)]),
                    RateControl::BitrateKbps(b) => a.extend([s("-b:v"), kbps(b)]),
                    RateControl::Lossless => params.push(s("lossless=1")),
                }
                if let Some(m) = rendition.maxrate_kbps {
                    params.push(format!("vbv-maxrate={m}"));
                    params.push(format!("vbv-bufsize={}", m.saturating_mul(2)));
                }
                if let Some(k) = keyint {
                    params.push(format!("keyint={k}:min-keyint={k}:scenecut=0"));
                }
                match threads {
                    Some(1) => params.push(s("pools=1:frame-threads=1")),
                    Some(n) => params.push(format!("pools={n}")),
                    None => {}
                }
                params.extend_from_slice(codec_params);
                a.extend([
                    s("-pix_fmt"),
                    s(pix_fmt),
                    s("-x265-params"),
                    params.join(":"),
                ]);
            }
            VideoCodec::Av1 => {
                a.extend([s("-preset"), speed]);
                match rendition.rate {
                    RateControl::Crf(c) => a.extend([s("-crf"), s(c)]),
                    RateControl::BitrateKbps(b) => a.extend([s("-b:v"), kbps(b)]),
                    // Rejected by validation; the closest svt-av1 gets is its best quality.
                    RateControl::Lossless => a.extend([s("-crf"), s(1)]),
                }
                a.extend([s("-pix_fmt"), s(pix_fmt)]);
                // irefresh-type=2: closed GOP (key frames, not forward key frames).
                let mut params = vec![s("irefresh-type=2")];
                if let Some(k) = keyint {
                    a.extend([s("-g"), s(k)]);
                    params.push(s("scd=0"));
                }
                if let Some(n) = threads {
                    params.push(format!("lp={n}"));
                }
                params.extend_from_slice(codec_params);
                a.extend([s("-svtav1-params"), params.join(":")]);
            }
            VideoCodec::Vp9 => {
                a.extend([s("-deadline"), s("good"), s("-cpu-used"), speed]);
                match (rendition.rate, rendition.maxrate_kbps) {
                    (RateControl::Crf(c), None) => a.extend([s("-crf"), s(c), s("-b:v"), s(0)]),
                    // Constrained quality: crf with -b:v as the ceiling.
                    (RateControl::Crf(c), Some(m)) => {
                        a.extend([s("-crf"), s(c), s("-b:v"), kbps(m)])
                    }
                    (RateControl::BitrateKbps(b), m) => {
                        a.extend([s("-b:v"), kbps(b)]);
                        if let Some(m) = m {
                            a.extend([
                                s("-maxrate"),
                                kbps(m),
                                s("-bufsize"),
                                kbps(m.saturating_mul(2)),
                            ]);
                        }
                    }
                    (RateControl::Lossless, _) => a.extend([s("-lossless"), s(1)]),
                }
                a.extend([s("-pix_fmt"), s(pix_fmt)]);
                if let Some(k) = keyint {
                    a.extend([s("-g"), s(k), s("-keyint_min"), s(k)]);
                }
                match threads {
                    Some(1) => a.extend([s("-threads"), s(1), s("-row-mt"), s(0)]),
                    Some(n) => a.extend([s("-threads"), s(n), s("-row-mt"), s(1)]),
                    None => a.extend([s("-row-mt"), s(1)]),
                }
            }
            VideoCodec::Ffv1 => {
                // FFV1 version 3, intra only, range coder, large context, per-slice CRCs:
                // the usual archival settings.
                a.extend(
                    [
                        "-level",
                        "3",
                        "-coder",
                        "1",
                        "-context",
                        "1",
                        "-g",
                        "1",
                        "-slices",
                        "16",
                        "-slicecrc",
                        "1",
                        "-pix_fmt",
                        pix_fmt,
                    ]
                    .map(s),
                );
                if let Some(n) = threads {
                    a.extend([s("-threads"), s(n)]);
                }
            }
        }
        a
    }

    /// Video options for the package step (stream copy into the final container): the `hvc1`
    /// tag that Apple players need for HEVC in MP4 / fragmented MP4. Empty otherwise.
    pub fn video_mux_args(&self) -> Vec<String> {
        let mp4_family = !matches!(
            self.output,
            OutputKind::File {
                container: Container::Mkv | Container::Webm
            }
        );
        if self.video.codec == VideoCodec::H265 && mp4_family {
            vec![s("-tag:v"), s("hvc1")]
        } else {
            Vec::new()
        }
    }

    /// The audio part of the package command: `-c:a copy`, or the encoder and its bitrate.
    pub fn audio_args(&self) -> Vec<String> {
        match self.audio {
            Audio::Copy => vec![s("-c:a"), s("copy")],
            Audio::Encode {
                codec,
                bitrate_kbps,
            } => {
                let encoder = match codec {
                    AudioCodec::Aac => "aac",
                    AudioCodec::Opus => "libopus",
                    AudioCodec::Flac => "flac",
                };
                let mut a = vec![s("-c:a"), s(encoder)];
                if let Some(b) = bitrate_kbps.filter(|_| codec != AudioCodec::Flac) {
                    a.extend([s("-b:a"), kbps(b)]);
                }
                a
            }
        }
    }

    /// Audio arguments for a source stream that `audio_args` would copy but the container cannot
    /// hold (see [`ContainerCaps::can_copy_audio`]): a transparent encode suited to the container.
    pub fn audio_fallback_args(&self) -> Vec<String> {
        match self.output {
            OutputKind::File {
                container: Container::Mkv,
            } => vec![s("-c:a"), s("flac")],
            OutputKind::File {
                container: Container::Mp4,
            } => vec![s("-c:a"), s("aac"), s("-b:a"), s("256k")],
            OutputKind::File {
                container: Container::Webm,
            } => vec![s("-c:a"), s("libopus"), s("-b:a"), s("192k")],
            OutputKind::Hls { .. } | OutputKind::Dash { .. } => match self.audio {
                Audio::Copy => vec![s("-c:a"), s("aac"), s("-b:a"), s("192k")],
                Audio::Encode { .. } => self.audio_args(),
            },
        }
    }

    /// Extension of the output file, or of the top playlist/manifest for HLS/DASH.
    pub fn output_extension(&self) -> &'static str {
        match self.output {
            OutputKind::File { container } => container.as_str(),
            OutputKind::Hls { .. } => "m3u8",
            OutputKind::Dash { .. } => "mpd",
        }
    }

    /// What the output can carry besides video and audio.
    pub fn container_caps(&self) -> ContainerCaps {
        let (text_subtitles, bitmap_subtitles, attachments, chapters) = match self.output {
            OutputKind::File {
                container: Container::Mkv,
            } => (TextSubtitles::Copy, true, true, true),
            OutputKind::File {
                container: Container::Mp4,
            } => (TextSubtitles::ConvertTo("mov_text"), false, false, true),
            OutputKind::File {
                container: Container::Webm,
            } => (TextSubtitles::ConvertTo("webvtt"), false, false, true),
            OutputKind::Hls { .. } => (TextSubtitles::ConvertTo("webvtt"), false, false, false),
            OutputKind::Dash { .. } => (TextSubtitles::Unsupported, false, false, false),
        };
        ContainerCaps {
            text_subtitles,
            bitmap_subtitles,
            attachments,
            chapters,
            output: self.output,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::presets::{builtin, builtin_by_name, fit_to_height};

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn preset(name: &str) -> Preset {
        builtin_by_name(name).expect("built-in exists")
    }

    #[test]
    fn h264_hq_single_threaded_args() {
        let p = preset("h264_hq");
        let r = p.renditions()[0];
        assert_eq!(
            p.video_encoder_args(&r, 23.976, Some(1), &[]),
            strings(&[
                "-c:v", "libx264", "-preset", "slow", "-crf", "18", "-pix_fmt", "yuv420p",
                "-flags:v", "+cgop", "-threads", "1"
            ])
        );
        assert_eq!(p.audio_args(), strings(&["-c:a", "copy"]));
        assert!(p.video_mux_args().is_empty());
        assert_eq!(p.output_extension(), "mp4");
    }

    #[test]
    fn h265_hq_args_and_hvc1_tag() {
        let p = preset("h265_hq");
        let r = p.renditions()[0];
        assert_eq!(
            p.video_encoder_args(&r, 25.0, Some(1), &[]),
            strings(&[
                "-c:v",
                "libx265",
                "-preset",
                "slow",
                "-crf",
                "20",
                "-pix_fmt",
                "yuv420p10le",
                "-x265-params",
                "log-level=error:open-gop=0:pools=1:frame-threads=1"
            ])
        );
        assert_eq!(p.video_mux_args(), strings(&["-tag:v", "hvc1"]));
    }

    #[test]
    fn hls_abr_rendition_args_fix_the_gop() {
        let p = preset("hls_abr");
        let rs = p.renditions();
        assert_eq!(rs.len(), 3);
        assert_eq!(
            p.video_encoder_args(&rs[2], 29.97, None, &[]),
            strings(&[
                "-c:v",
                "libx264",
                "-preset",
                "slow",
                "-b:v",
                "800k",
                "-maxrate",
                "880k",
                "-bufsize",
                "1760k",
                "-pix_fmt",
                "yuv420p",
                "-flags:v",
                "+cgop",
                "-g",
                "60",
                "-sc_threshold",
                "0"
            ])
        );
        assert_eq!(p.audio_args(), strings(&["-c:a", "aac", "-b:a", "128k"]));
        assert_eq!(p.output_extension(), "m3u8");
    }

    #[test]
    fn av1_and_ffv1_thread_options() {
        let p = preset("av1_crf30");
        let r = p.renditions()[0];
        let args = p.video_encoder_args(&r, 24.0, Some(1), &[]);
        assert_eq!(
            args,
            strings(&[
                "-c:v",
                "libsvtav1",
                "-preset",
                "6",
                "-crf",
                "30",
                "-pix_fmt",
                "yuv420p10le",
                "-svtav1-params",
                "irefresh-type=2:lp=1"
            ])
        );
        let p = preset("lossless_ffv1");
        let r = p.renditions()[0];
        assert_eq!(r.rate, RateControl::Lossless);
        let args = p.video_encoder_args(&r, 24.0, Some(1), &[]);
        assert_eq!(args[..4], strings(&["-c:v", "ffv1", "-level", "3"])[..]);
        assert_eq!(args[args.len() - 2..], strings(&["-threads", "1"])[..]);
    }

    #[test]
    fn x265_streaming_params_disable_scenecut() {
        let json = r#"{"name":"t","output":{"kind":"dash","segment_seconds":4},
            "video":{"codec":"h265","speed":"medium","crf":22,"maxrate_kbps":6000,
                     "pix_fmt":"yuv420p","keyint_seconds":2},
            "audio":{"mode":"encode","codec":"aac","bitrate_kbps":128}}"#;
        let p = Preset::parse(json, "t.json").expect("valid");
        let args = p.video_encoder_args(&p.renditions()[0], 25.0, Some(2), &[]);
        assert_eq!(
            args.last().map(String::as_str),
            Some(
                "log-level=error:open-gop=0:vbv-maxrate=6000:vbv-bufsize=12000:keyint=50:min-keyint=50:scenecut=0:pools=2"
            )
        );
    }

    #[test]
    fn keyint_frames_rounds_and_guards() {
        assert_eq!(keyint_frames(2.0, 29.97), 60);
        assert_eq!(keyint_frames(2.0, 23.976), 48);
        assert_eq!(keyint_frames(0.01, 24.0), 1);
        assert_eq!(keyint_frames(2.0, f64::NAN), 50);
        assert_eq!(keyint_frames(2.0, 0.0), 50);
    }

    #[test]
    fn container_caps() {
        let mkv = preset("lossless_ffv1").container_caps();
        assert_eq!(mkv.text_subtitles, TextSubtitles::Copy);
        assert!(mkv.bitmap_subtitles && mkv.attachments && mkv.chapters);
        assert!(mkv.can_copy_audio("pcm_s24le"));
        let mp4 = preset("h264_hq").container_caps();
        assert_eq!(mp4.text_subtitles, TextSubtitles::ConvertTo("mov_text"));
        assert!(!mp4.bitmap_subtitles && !mp4.attachments && mp4.chapters);
        assert!(
            mp4.can_copy_audio("ac3")
                && !mp4.can_copy_audio("pcm_s16le")
                && !mp4.can_copy_audio("flac")
        );
        assert_eq!(
            preset("h264_hq").audio_fallback_args(),
            strings(&["-c:a", "aac", "-b:a", "256k"])
        );
        let hls = preset("hls_720p").container_caps();
        assert_eq!(hls.text_subtitles, TextSubtitles::ConvertTo("webvtt"));
        assert!(!hls.chapters && !hls.attachments);
        let dash = preset("dash_1080p").container_caps();
        assert_eq!(dash.text_subtitles, TextSubtitles::Unsupported);
        assert_eq!(preset("dash_1080p").output_extension(), "mpd");
    }

    // ---- real encodes -----------------------------------------------------------------------

    fn ffmpeg() -> Option<PathBuf> {
        let path = std::env::var_os("REFRAME_FFMPEG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("ffmpeg"));
        let ok = Command::new(&path)
            .arg("-version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        ok.then_some(path)
    }

    /// A 1-second 320x240 test clip through `p`'s rendition `index`, written to `dest`
    /// (file, playlist or manifest); returns ffmpeg's stderr on failure.
    fn encode(
        ffmpeg: &Path,
        p: &Preset,
        index: usize,
        threads: Option<u32>,
        aac: &Path,
        dest: &Path,
    ) -> Result<(), String> {
        let r = p.renditions()[index];
        let mut cmd = Command::new(ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-y"]);
        cmd.args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=24:duration=1",
        ]);
        if p.audio == Audio::Copy {
            cmd.arg("-i").arg(aac);
        } else {
            cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]);
        }
        cmd.args(["-map", "0:v", "-map", "1:a"]);
        if let Some(h) = r.height {
            let (w, h) = fit_to_height(320, 240, h, false);
            cmd.args(["-vf", &format!("scale={w}:{h}")]);
        }
        cmd.args(p.video_encoder_args(&r, 24.0, threads, &[]));
        cmd.args(p.video_mux_args());
        cmd.args(p.audio_args());
        match p.output_kind() {
            OutputKind::File { .. } => {}
            OutputKind::Hls { segment_seconds } => {
                let seg = dest.with_file_name("seg_%03d.ts");
                cmd.args([
                    "-f",
                    "hls",
                    "-hls_playlist_type",
                    "vod",
                    "-hls_time",
                    &segment_seconds.to_string(),
                ]);
                cmd.arg("-hls_segment_filename").arg(seg);
            }
            OutputKind::Dash { segment_seconds } => {
                cmd.args(["-f", "dash", "-seg_duration", &segment_seconds.to_string()]);
            }
        }
        cmd.arg(dest);
        let out = cmd.output().map_err(|e| e.to_string())?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // An option ffmpeg or the encoder ignored or rejected is a bug even if the encode worked.
        let complaint = stderr.lines().any(|l| {
            [
                "not used",
                "nrecognized",
                "Error parsing",
                "nvalid",
                "deprecated",
            ]
            .iter()
            .any(|w| l.contains(w))
        });
        if !out.status.success() || complaint {
            return Err(format!("{cmd:?}\n{stderr}"));
        }
        Ok(())
    }

    fn vp9_webm() -> Preset {
        let json = r#"{"name":"vp9_test","output":{"kind":"file","container":"webm"},
            "video":{"codec":"vp9","speed":4,"crf":32,"pix_fmt":"yuv420p10le","keyint_seconds":2},
            "audio":{"mode":"encode","codec":"opus","bitrate_kbps":128}}"#;
        Preset::parse(json, "vp9_test.json").expect("valid")
    }

    #[test]
    fn every_builtin_encodes_with_ffmpeg() {
        let Some(ffmpeg) = ffmpeg() else {
            eprintln!("note: ffmpeg not found; skipping the real-encode test");
            return;
        };
        let tmp = tempfile::tempdir().expect("tempdir");
        let aac = tmp.path().join("audio.m4a");
        let status = Command::new(&ffmpeg)
            .args([
                "-nostdin",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=duration=1",
                "-c:a",
                "aac",
            ])
            .arg(&aac)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
        let mut presets = builtin();
        presets.push(vp9_webm());
        let mut failures = Vec::new();
        for p in &presets {
            for index in 0..p.renditions().len() {
                let dir = tmp.path().join(format!("{}_{index}", p.name));
                std::fs::create_dir(&dir).expect("mkdir");
                let dest = dir.join(format!("out.{}", p.output_extension()));
                match encode(&ffmpeg, p, index, Some(1), &aac, &dest) {
                    Ok(()) if dest.metadata().map(|m| m.len() > 0).unwrap_or(false) => {}
                    Ok(()) => failures.push(format!("{}[{index}]: no output", p.name)),
                    Err(e) => failures.push(format!("{}[{index}]: {e}", p.name)),
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    /// With keyint_seconds set, keyframes fall exactly every keyint frames even across a hard
    /// scene cut (at frame 31 here; keyint 24 or 48), for every codec that can be streamed.
    #[test]
    fn fixed_gops_ignore_scene_cuts() {
        let Some(ffmpeg) = ffmpeg() else {
            eprintln!("note: ffmpeg not found; skipping the GOP test");
            return;
        };
        let ffprobe = std::env::var_os("REFRAME_FFPROBE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("ffprobe"));
        let tmp = tempfile::tempdir().expect("tempdir");
        let with_codec = |codec: &str, speed: &str, pix_fmt: &str| {
            let json = format!(
                r#"{{"name":"g","output":{{"kind":"dash","segment_seconds":2}},
                "video":{{"codec":"{codec}","speed":{speed},"crf":30,"pix_fmt":"{pix_fmt}","keyint_seconds":1}},
                "audio":{{"mode":"encode","codec":"aac","bitrate_kbps":128}}}}"#
            );
            Preset::parse(&json, "g.json").expect("valid")
        };
        let presets = [
            preset("hls_720p"),
            with_codec("h265", "\"medium\"", "yuv420p10le"),
            with_codec("av1", "8", "yuv420p"),
            with_codec("vp9", "5", "yuv420p"),
        ];
        for p in presets {
            let out = tmp.path().join(format!("{}.mkv", p.video.codec.as_str()));
            let status = Command::new(&ffmpeg)
                .args(["-nostdin", "-loglevel", "error", "-y", "-filter_complex"])
                .arg("testsrc2=s=320x240:r=24:d=1.3[a];smptebars=s=320x240:r=24:d=2.7[b];[a][b]concat")
                .args(p.video_encoder_args(&p.renditions()[0], 24.0, Some(1), &[]))
                .arg(&out)
                .status()
                .expect("ffmpeg runs");
            assert!(status.success(), "{}", p.video.codec.as_str());
            let probe = Command::new(&ffprobe)
                .args([
                    "-v",
                    "error",
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "packet=flags",
                    "-of",
                    "csv=p=0",
                ])
                .arg(&out)
                .output()
                .expect("ffprobe runs");
            let packets = String::from_utf8_lossy(&probe.stdout).into_owned();
            let keyframes: Vec<usize> = packets
                .lines()
                .enumerate()
                .filter(|(_, flags)| flags.starts_with('K'))
                .map(|(i, _)| i)
                .collect();
            let keyint = keyint_frames(p.video.keyint_seconds.unwrap_or(0.0), 24.0) as usize;
            let expected: Vec<usize> = (0..packets.lines().count()).step_by(keyint).collect();
            assert_eq!(keyframes, expected, "{}", p.video.codec.as_str());
        }
    }

    /// Two single-threaded encodes of the same frames give the same packets (framemd5 of the
    /// encoded stream), for every video codec the built-ins use.
    #[test]
    fn single_threaded_encodes_are_deterministic() {
        let Some(ffmpeg) = ffmpeg() else {
            eprintln!("note: ffmpeg not found; skipping the determinism test");
            return;
        };
        for p in [
            preset("h264_hq"),
            preset("h265_hq"),
            preset("av1_crf30"),
            preset("lossless_ffv1"),
            vp9_webm(),
        ] {
            let hashes: Vec<Vec<u8>> = (0..2)
                .map(|_| {
                    let r = p.renditions()[0];
                    let out = Command::new(&ffmpeg)
                        .args(["-nostdin", "-loglevel", "error"])
                        .args([
                            "-f",
                            "lavfi",
                            "-i",
                            "testsrc2=size=320x240:rate=24:duration=1",
                        ])
                        .args(p.video_encoder_args(&r, 24.0, Some(1), &[]))
                        .args(["-f", "framemd5", "-"])
                        .output()
                        .expect("ffmpeg runs");
                    assert!(
                        out.status.success(),
                        "{}: {}",
                        p.name,
                        String::from_utf8_lossy(&out.stderr)
                    );
                    out.stdout
                })
                .collect();
            assert!(!hashes[0].is_empty());
            assert_eq!(
                hashes[0], hashes[1],
                "{} encodes differ between runs",
                p.name
            );
        }
    }
}
