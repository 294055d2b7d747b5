//! `reframe run` end to end with every built-in preset on a short clip, checking the real
//! output: codec, size, frame count, frame times, duration, audio; HLS playlists and segments,
//! DASH manifests; default output names; `--height`; fitting to a preset's height; cleanup of
//! the session and of temp files after success.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// 2 s at 24 fps, 320x240: with `--scale 2` the engine makes 640x480, under every preset height,
/// so every single-file preset keeps 640x480.
const CLIP_SECS: f64 = 2.0;
const CHUNK_SECS: f64 = 0.75;

enum Kind {
    /// One file with one of these extensions.
    File(&'static [&'static str]),
    Hls,
    Dash,
}

struct Expect {
    codec: &'static str,
    /// Expected pixel format of the video, when the preset names one that matters.
    pix_fmt: Option<&'static str>,
    kind: Kind,
}

const MP4: &[&str] = &["mp4"];
const MKV: &[&str] = &["mkv"];

fn run_preset(preset: &str, expect: Expect) {
    run_preset_scaled(preset, 2, expect);
}

/// Runs `preset` on the 320x240 clip at `--scale scale` and checks the output.
fn run_preset_scaled(preset: &str, scale: u32, expect: Expect) {
    let (engine_w, engine_h) = (320 * u64::from(scale), 240 * u64::from(scale));
    let scale_arg = scale.to_string();
    let env = TestEnv::new();
    let clip = Clip::secs(CLIP_SECS);
    let input = make_plain(&env.path("clip.mp4"), clip);
    let before = snapshot(&input);
    let out_dir = env.subdir("out");
    let run = env.run(run_args(
        &input,
        &out_dir,
        CHUNK_SECS,
        &["--json", "--preset", preset, "--scale", &scale_arg],
    ));
    run.assert_success();
    let events = run.events();
    let started = single_start(&events);
    assert!(!started.resumed, "a first run cannot resume: {started:?}");
    assert_eq!(started.frames_total, clip.frames(), "{started:?}");
    assert!(started.chunks_total >= 2, "{started:?}");
    let chunks = chunk_done_indices(&events);
    let mut sorted = chunks.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..started.chunks_total).collect::<Vec<_>>(),
        "every chunk done exactly once"
    );
    let output = single_output(&events);
    assert!(
        output.exists(),
        "{} missing\n{}",
        output.display(),
        run.describe()
    );
    assert!(
        output.starts_with(&out_dir)
            || output.starts_with(out_dir.canonicalize().expect("canonical out dir")),
        "output {} not in {}",
        output.display(),
        out_dir.display()
    );
    let src_times = frame_times(&input);

    match expect.kind {
        Kind::File(exts) => {
            let ext = output.extension().and_then(|e| e.to_str()).unwrap_or("");
            assert!(exts.contains(&ext), "extension of {}", output.display());
            assert_eq!(
                output.file_name().and_then(|n| n.to_str()),
                Some(format!("clip.{scale}x.{ext}").as_str())
            );
            let probe = ffprobe_json(&output);
            let v = video_stream(&probe);
            assert_eq!(v["codec_name"], expect.codec, "{v:#}");
            if let Some(pf) = expect.pix_fmt {
                assert_eq!(v["pix_fmt"], pf, "{v:#}");
            }
            assert_eq!(
                (v["width"].as_u64(), v["height"].as_u64()),
                (Some(engine_w), Some(engine_h)),
                "{v:#}"
            );
            assert_same_frame_times(&src_times, &frame_times(&output), 0.001);
            let d_in = duration_secs(&ffprobe_json(&input));
            let d_out = duration_secs(&probe);
            assert!(
                (d_in - d_out).abs() <= 1.0 / 24.0 + 0.001,
                "duration {d_out} vs source {d_in}"
            );
            assert_eq!(streams_of(&probe, "audio").len(), 1, "audio kept");
            // Only the output in the output folder: no temp names left behind.
            assert_eq!(
                list_files(&out_dir),
                vec![PathBuf::from(output.file_name().expect("name"))]
            );
        }
        Kind::Hls => check_hls(&output, scale, clip.frames(), preset == "hls_abr"),
        Kind::Dash => check_dash(&output, scale, clip.frames()),
    }
    assert_untouched(&input, &before);
    assert!(
        env.session_ids().is_empty(),
        "a completed session is deleted after verification: {:?}",
        env.session_ids()
    );
}

/// The folder of a streaming output and its main file (`master.m3u8` / `manifest.mpd`),
/// whichever of the two the `job-finished` event names.
fn stream_root(output: &Path, scale: u32, main_name: &str, suffix: &str) -> (PathBuf, PathBuf) {
    let (dir, main) = if output.is_dir() {
        (output.to_path_buf(), output.join(main_name))
    } else {
        (
            output.parent().expect("parent").to_path_buf(),
            output.to_path_buf(),
        )
    };
    assert!(main.is_file(), "{} missing", main.display());
    assert_eq!(
        main.file_name().and_then(|n| n.to_str()),
        Some(main_name),
        "{}",
        main.display()
    );
    assert_eq!(
        dir.file_name().and_then(|n| n.to_str()),
        Some(format!("clip.{scale}x.{suffix}").as_str()),
        "{}",
        dir.display()
    );
    (dir, main)
}

/// URIs of a playlist: non-comment lines, plus `URI="…"` attributes (init segments, renditions).
fn playlist_uris(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !line.starts_with('#') {
            uris.push(line.to_string());
        } else if let Some(i) = line.find("URI=\"") {
            let rest = &line[i + 5..];
            if let Some(j) = rest.find('"') {
                uris.push(rest[..j].to_string());
            }
        }
    }
    uris
}

/// (BANDWIDTH, height from RESOLUTION) of every `#EXT-X-STREAM-INF` of a master playlist.
fn stream_inf(master: &str) -> Vec<(u64, u64)> {
    master
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-STREAM-INF:"))
        .map(|attrs| {
            let get = |key: &str| {
                attrs
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key))
                    .unwrap_or("")
                    .to_string()
            };
            let bandwidth = get("BANDWIDTH=").parse().unwrap_or(0);
            let height = get("RESOLUTION=")
                .split_once('x')
                .and_then(|(_, h)| h.parse().ok())
                .unwrap_or(0);
            (bandwidth, height)
        })
        .collect()
}

/// HLS checks; `scale` applied to the 240-line clip gives the engine's height, above which no
/// variant may go.
fn check_hls(output: &Path, scale: u32, frames: u64, ladder: bool) {
    let engine_h = 240 * u64::from(scale);
    let (dir, master) = stream_root(output, scale, "master.m3u8", "hls");
    let text = fs::read_to_string(&master).expect("read master");
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert!(
        text.contains("#EXT-X-STREAM-INF"),
        "not a master playlist:\n{text}"
    );
    let variants: Vec<String> = playlist_uris(&text)
        .into_iter()
        .filter(|u| u.ends_with(".m3u8"))
        .collect();
    assert!(!variants.is_empty(), "no variant in\n{text}");
    let mut heights = Vec::new();
    for v in &variants {
        let vp = dir.join(v);
        let vt = fs::read_to_string(&vp).unwrap_or_else(|e| panic!("{}: {e}", vp.display()));
        assert!(
            vt.contains("#EXT-X-ENDLIST"),
            "unfinished playlist {v}:\n{vt}"
        );
        let segments = playlist_uris(&vt);
        assert!(!segments.is_empty(), "no segment in {v}");
        for s in &segments {
            let sp = vp.parent().expect("parent").join(s);
            let len = fs::metadata(&sp)
                .unwrap_or_else(|e| panic!("segment {}: {e}", sp.display()))
                .len();
            assert!(len > 0, "empty segment {}", sp.display());
        }
        let probe = ffprobe_json(&vp);
        let vs = streams_of(&probe, "video");
        if vs.is_empty() {
            // An audio-only rendition.
            assert!(!streams_of(&probe, "audio").is_empty(), "{v}: {probe:#}");
            continue;
        }
        assert_eq!(vs[0]["codec_name"], "h264", "{v}");
        heights.push(vs[0]["height"].as_u64().expect("height"));
        assert_eq!(count_video_frames(&vp), frames, "frames of variant {v}");
    }
    let probe = ffprobe_json(&master);
    assert!(!streams_of(&probe, "video").is_empty(), "{probe:#}");
    assert!(
        !streams_of(&probe, "audio").is_empty(),
        "audio lost: {probe:#}"
    );
    assert!(
        heights.iter().all(|h| *h <= engine_h),
        "upscaled past the engine: {heights:?}"
    );
    let mut distinct = heights.clone();
    distinct.sort();
    distinct.dedup();
    if ladder {
        assert!(
            distinct.len() >= 2,
            "a ladder needs several heights: {heights:?}"
        );
        assert!(distinct.contains(&360), "{heights:?}");
        if engine_h >= 720 {
            assert_eq!(distinct, vec![360, 480, 720], "the whole ladder");
        }
        assert_eq!(
            distinct.len(),
            heights.len(),
            "two variants of the same size (a rung capped to another's size is a duplicate):\n{text}"
        );
        // Players choose by BANDWIDTH: it must grow with the resolution.
        let mut rungs = stream_inf(&text);
        rungs.sort_by_key(|(_, h)| *h);
        assert!(
            rungs.windows(2).all(|w| w[0].0 < w[1].0),
            "BANDWIDTH does not grow with RESOLUTION: {rungs:?}\n{text}"
        );
    } else {
        assert_eq!(distinct, vec![engine_h.min(720)]);
    }
}

fn check_dash(output: &Path, scale: u32, frames: u64) {
    let (_dir, mpd) = stream_root(output, scale, "manifest.mpd", "dash");
    let text = fs::read_to_string(&mpd).expect("read mpd");
    assert!(text.contains("<MPD"), "{text}");
    let probe = ffprobe_json(&mpd);
    let v = video_stream(&probe);
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        v["height"].as_u64(),
        Some((240 * u64::from(scale)).min(1080))
    );
    assert!(
        !streams_of(&probe, "audio").is_empty(),
        "audio lost: {probe:#}"
    );
    assert_eq!(count_video_frames(&mpd), frames);
}

#[test]
fn preset_h264_hq() {
    run_preset(
        "h264_hq",
        Expect {
            codec: "h264",
            pix_fmt: Some("yuv420p"),
            kind: Kind::File(MP4),
        },
    );
}

#[test]
fn preset_h265_hq() {
    run_preset(
        "h265_hq",
        Expect {
            codec: "hevc",
            pix_fmt: None,
            kind: Kind::File(MP4),
        },
    );
}

#[test]
fn preset_720p_h264() {
    run_preset(
        "720p_h264",
        Expect {
            codec: "h264",
            pix_fmt: Some("yuv420p"),
            kind: Kind::File(MP4),
        },
    );
}

#[test]
fn preset_1080p_h264() {
    run_preset(
        "1080p_h264",
        Expect {
            codec: "h264",
            pix_fmt: Some("yuv420p"),
            kind: Kind::File(MP4),
        },
    );
}

#[test]
fn preset_1080p_h265() {
    run_preset(
        "1080p_h265",
        Expect {
            codec: "hevc",
            pix_fmt: None,
            kind: Kind::File(MP4),
        },
    );
}

#[test]
fn preset_2160p_h265() {
    run_preset(
        "2160p_h265",
        Expect {
            codec: "hevc",
            pix_fmt: None,
            kind: Kind::File(MP4),
        },
    );
}

#[test]
fn preset_av1_crf30() {
    run_preset(
        "av1_crf30",
        Expect {
            codec: "av1",
            pix_fmt: None,
            kind: Kind::File(&["mkv", "mp4", "webm"]),
        },
    );
}

#[test]
fn preset_lossless_ffv1() {
    run_preset(
        "lossless_ffv1",
        Expect {
            codec: "ffv1",
            pix_fmt: None,
            kind: Kind::File(MKV),
        },
    );
}

#[test]
fn preset_hls_720p() {
    run_preset(
        "hls_720p",
        Expect {
            codec: "h264",
            pix_fmt: None,
            kind: Kind::Hls,
        },
    );
}

/// The full ladder: ×3 makes 960x720, so the three rungs 720/480/360 all exist.
#[test]
fn preset_hls_abr() {
    run_preset_scaled(
        "hls_abr",
        3,
        Expect {
            codec: "h264",
            pix_fmt: None,
            kind: Kind::Hls,
        },
    );
}

/// ×2 makes 640x480, under the 720p rung: no variant above 480, and no duplicate variant.
#[test]
fn preset_hls_abr_below_the_top_rung() {
    run_preset(
        "hls_abr",
        Expect {
            codec: "h264",
            pix_fmt: None,
            kind: Kind::Hls,
        },
    );
}

#[test]
fn preset_dash_1080p() {
    run_preset(
        "dash_1080p",
        Expect {
            codec: "h264",
            pix_fmt: None,
            kind: Kind::Dash,
        },
    );
}

/// A preset with a height fits the engine's output to it: 320x240 ×4 = 1280x960 → 960x720.
#[test]
fn preset_height_fits_a_larger_engine_output() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let out = env.path("fitted.mp4");
    let run = env.run(run_args(
        &input,
        &out,
        0.5,
        &["--preset", "720p_h264", "--scale", "4"],
    ));
    run.assert_success();
    assert_eq!(video_size(&out), (960, 720));
    assert_eq!(count_video_frames(&out), 24);
}

/// Human mode, no `-o`: the output lands beside the input as `<stem>.<scale>x.<ext>`, and a
/// "done: <path>" line is printed on stdout.
#[test]
fn default_output_name_beside_the_input() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("holiday.mp4"), Clip::secs(1.0));
    let run = env.run(["run", "holiday.mp4", "--chunk-seconds", "0.5"]);
    run.assert_success();
    let out = env.path("holiday.2x.mp4");
    assert!(out.is_file(), "{}\n{}", out.display(), run.describe());
    assert_eq!(video_size(&out), (640, 480));
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("done: ") && l.contains("holiday.2x.mp4")),
        "no `done: <output>` line\n{}",
        run.describe()
    );
    assert!(input.is_file());

    let run = env.run([
        "run",
        "holiday.mp4",
        "--scale",
        "1.5",
        "--chunk-seconds",
        "0.5",
    ]);
    run.assert_success();
    assert_eq!(video_size(&env.path("holiday.1.5x.mp4")), (480, 360));
}

/// `--height H` instead of `--scale`: "<stem>.<H>p.<ext>", aspect kept.
#[test]
fn height_option_names_and_sizes_the_output() {
    let env = TestEnv::new();
    make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let run = env.run([
        "run",
        "clip.mp4",
        "--height",
        "360",
        "--chunk-seconds",
        "0.5",
    ]);
    run.assert_success();
    let out = env.path("clip.360p.mp4");
    assert!(out.is_file(), "{}\n{}", out.display(), run.describe());
    assert_eq!(video_size(&out), (480, 360));
}

/// Several inputs and `-o DIR`: each output in DIR (created), one after another.
#[test]
fn several_inputs_into_an_output_folder() {
    let env = TestEnv::new();
    let a = make_plain(&env.path("a.mp4"), Clip::secs(1.0));
    let b = make_silent(&env.path("b.mkv"), Clip::secs(1.0));
    let out_dir = env.path("new/folder");
    let run = env.run([
        "run".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "-o".as_ref(),
        out_dir.as_os_str(),
        "--chunk-seconds".as_ref(),
        "0.5".as_ref(),
        "--json".as_ref(),
    ]);
    run.assert_success();
    let events = run.events();
    assert_eq!(started_events(&events).len(), 2);
    let outs = finished_outputs(&events);
    assert_eq!(outs.len(), 2, "{events:#?}");
    for o in &outs {
        assert!(
            o.starts_with(&out_dir),
            "{} not in {}",
            o.display(),
            out_dir.display()
        );
        assert_eq!(video_size(o), (640, 480));
        assert_eq!(count_video_frames(o), 24);
    }
    // The silent input gives a silent output.
    let silent = outs
        .iter()
        .find(|o| {
            o.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("b."))
        })
        .expect("output of b");
    assert!(streams_of(&ffprobe_json(silent), "audio").is_empty());
}

/// The x264 options written into the first video stream of `path` (its SEI).
fn x264_options(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read the output");
    let text = String::from_utf8_lossy(&bytes);
    let start = text.find("x264 - core").expect("x264's SEI in the output");
    text[start..].chars().take(2000).collect()
}

/// A short job (one chunk) on a machine with idle cores gives its one encoder those cores;
/// a job with a chunk per core keeps one thread per encoder. The threaded encode is the same
/// every time (resumed chunks must match the first run's).
#[test]
fn short_jobs_give_their_encoder_the_idle_cores() {
    let env = TestEnv::new();
    let input = make_long_gop(&env.path("short.mp4"), Clip::secs(1.0));
    let encode = |name: &str, chunk_seconds: f64| {
        let out = env.path(name);
        env.run_with(
            run_args(&input, &out, chunk_seconds, &["--preset", "h264_hq"]),
            |cmd| {
                cmd.env("REFRAME_CHUNK_WORKERS", "2");
            },
        )
        .assert_success();
        out
    };
    let video_md5 = |path: &Path| {
        tool(
            "ffmpeg",
            ["-v", "error", "-i"]
                .map(std::ffi::OsString::from)
                .into_iter()
                .chain([ff_path(path)])
                .chain(["-map", "0:v", "-c", "copy", "-f", "md5", "-"].map(Into::into)),
        )
    };
    let one = encode("one.mp4", 5.0);
    assert!(
        x264_options(&one).contains(" threads=2 "),
        "{}",
        x264_options(&one)
    );
    let again = encode("again.mp4", 5.0);
    assert_eq!(
        video_md5(&one),
        video_md5(&again),
        "a threaded encode differs"
    );
    let chunked = encode("chunked.mp4", 0.5);
    assert!(
        x264_options(&chunked).contains(" threads=1 "),
        "{}",
        x264_options(&chunked)
    );
}
