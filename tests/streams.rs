//! What survives from source to output: frame times of a VFR source (within 1 ms, same frame
//! count), audio sync, two audio tracks, ASS subtitles, font attachments, chapters, rotation —
//! and a warning naming what a container cannot hold. Also the pipe path (ffmpeg decode →
//! engine → ffmpeg encode) through the test-only `identity` engine.

mod common;

use std::path::Path;

use serde_json::Value;

use common::*;

/// Audio start relative to video start, in seconds.
fn audio_offset_secs(path: &Path) -> f64 {
    let probe = ffprobe_json(path);
    let v = video_stream(&probe);
    let a = streams_of(&probe, "audio")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no audio in {}", path.display()));
    start_secs(&a) - start_secs(&v)
}

/// Audio stays where it was relative to the video (within one AAC frame, 21 ms).
fn assert_audio_in_sync(input: &Path, output: &Path) {
    let a = audio_offset_secs(input);
    let b = audio_offset_secs(output);
    assert!(
        (a - b).abs() <= 0.022,
        "audio offset {b:.4}s in the output vs {a:.4}s in the source"
    );
}

fn vfr_case(preset: &str, out_name: &str) {
    let env = TestEnv::new();
    let input = make_vfr(&env.path("phone.mp4"), Clip::default());
    let src_times = frame_times(&input);
    let out = env.path(out_name);
    let run = env.run(run_args(&input, &out, 0.5, &["--json", "--preset", preset]));
    run.assert_success();
    let started = single_start(&run.events());
    assert_eq!(started.frames_total, src_times.len() as u64, "{started:?}");
    assert!(started.chunks_total >= 4, "{started:?}");
    assert_same_frame_times(&src_times, &frame_times(&out), 0.001);
    assert_eq!(count_video_frames(&out), src_times.len() as u64);
    assert_audio_in_sync(&input, &out);
}

#[test]
fn vfr_source_keeps_every_frame_time_in_mp4() {
    vfr_case("h264_hq", "phone.out.mp4");
}

#[test]
fn vfr_source_keeps_every_frame_time_in_mkv() {
    vfr_case("lossless_ffv1", "phone.out.mkv");
}

#[test]
fn audio_tracks_subtitles_fonts_and_chapters_survive_into_mkv() {
    let env = TestEnv::new();
    let clip = Clip::default();
    let input = make_rich_mkv(&env.path("episode.mkv"), clip);
    let src = ffprobe_json(&input);
    let out = env.path("episode.out.mkv");
    let run = env.run(run_args(
        &input,
        &out,
        1.0,
        &["--json", "--preset", "lossless_ffv1"],
    ));
    run.assert_success();
    let probe = ffprobe_json(&out);
    assert_eq!(count_video_frames(&out), clip.frames());

    let audio = streams_of(&probe, "audio");
    assert_eq!(audio.len(), 2, "both audio tracks: {probe:#}");
    let src_audio = streams_of(&src, "audio");
    for (i, (a, s)) in audio.iter().zip(&src_audio).enumerate() {
        assert_eq!(a["codec_name"], s["codec_name"], "audio {i} copied");
        assert_eq!(
            a["tags"]["language"], RICH_AUDIO_LANGUAGES[i],
            "audio {i}: {a:#}"
        );
    }

    let subs = streams_of(&probe, "subtitle");
    assert_eq!(subs.len(), 1, "{probe:#}");
    assert_eq!(subs[0]["codec_name"], "ass");
    assert!(subtitle_text(&out, 0).contains(RICH_SUBTITLE_TEXT));

    let att = streams_of(&probe, "attachment");
    assert_eq!(att.len(), 1, "font attachment: {probe:#}");
    assert_eq!(att[0]["tags"]["mimetype"], "application/x-truetype-font");
    assert_eq!(att[0]["tags"]["filename"], RICH_FONT_NAME);

    let chapters = probe["chapters"].as_array().cloned().unwrap_or_default();
    assert_eq!(chapters.len(), 2, "{probe:#}");
    let src_chapters = src["chapters"].as_array().cloned().unwrap_or_default();
    for (i, (c, s)) in chapters.iter().zip(&src_chapters).enumerate() {
        assert_eq!(c["tags"]["title"], RICH_CHAPTER_TITLES[i]);
        for k in ["start_time", "end_time"] {
            let a: f64 = c[k].as_str().and_then(|x| x.parse().ok()).expect(k);
            let b: f64 = s[k].as_str().and_then(|x| x.parse().ok()).expect(k);
            assert!((a - b).abs() < 0.002, "chapter {i} {k}: {a} vs {b}");
        }
    }
    // Matroska holds all of it: no warning about dropping any of it.
    for w in warnings(&run.events()) {
        let w = w.to_lowercase();
        assert!(
            !["attachment", "font", "subtitle", "chapter", "audio"]
                .iter()
                .any(|k| w.contains(k)),
            "unexpected warning for an mkv output: {w}"
        );
    }
}

/// MP4 cannot hold attachments (and not ASS subtitles as such): the job still succeeds with
/// every audio track and the chapters, and a warning names what was left out.
#[test]
fn mp4_output_warns_about_what_it_cannot_hold() {
    let env = TestEnv::new();
    let input = make_rich_mkv(&env.path("episode.mkv"), Clip::default());
    let out = env.path("episode.out.mp4");
    let run = env.run(run_args(
        &input,
        &out,
        1.0,
        &["--json", "--preset", "h264_hq"],
    ));
    run.assert_success();
    let events = run.events();
    let warns = warnings(&events).join("\n").to_lowercase();
    assert!(
        warns.contains("attachment") || warns.contains("font"),
        "no warning about the font attachment:\n{}",
        run.describe()
    );
    let probe = ffprobe_json(&out);
    assert_eq!(streams_of(&probe, "audio").len(), 2, "{probe:#}");
    assert!(streams_of(&probe, "attachment").is_empty());
    if streams_of(&probe, "subtitle").is_empty() {
        assert!(
            warns.contains("subtitle"),
            "subtitles dropped without a warning:\n{}",
            run.describe()
        );
    } else {
        assert!(subtitle_text(&out, 0).contains(RICH_SUBTITLE_TEXT));
    }
    assert_eq!(
        probe["chapters"].as_array().map(Vec::len),
        Some(2),
        "mp4 holds chapters: {probe:#}"
    );

    // The human mode prints the warning too.
    let out2 = env.path("episode.human.mp4");
    let run = env.run(run_args(&input, &out2, 1.0, &["--preset", "h264_hq"]));
    run.assert_success();
    let err = run.stderr.to_lowercase();
    assert!(
        err.contains("attachment") || err.contains("font"),
        "human mode: no warning on stderr\n{}",
        run.describe()
    );
}

/// A phone video stored landscape with a 90° display rotation comes out portrait, with the
/// rotation applied to the pixels (no rotation flag left), turned the same way a player shows
/// the source.
#[test]
fn rotation_is_applied() {
    let env = TestEnv::new();
    let input = make_rotated(&env.path("portrait.mp4"), Clip::secs(2.0), 90);
    let out = env.path("portrait.out.mp4");
    let run = env.run(run_args(&input, &out, 1.0, &["--preset", "h264_hq"]));
    run.assert_success();
    let v = video_stream(&ffprobe_json(&out));
    assert_eq!(rotation_deg(&v), 0, "rotation left in the output: {v:#}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(480), Some(640)),
        "portrait at twice the displayed size"
    );
    let want = display_thumbnail(&input, 24, 32);
    let got = display_thumbnail(&out, 24, 32);
    let upside_down: Vec<u8> = want.iter().rev().copied().collect();
    let d = mean_abs_diff(&want, &got);
    assert!(
        d < 12.0 && d < mean_abs_diff(&upside_down, &got) / 2.0,
        "output does not look like the displayed source (mean diff {d:.1})"
    );
    assert_eq!(count_video_frames(&out), 48);
}

fn identity_run(env: &TestEnv, input: &Path, out: &Path, extra: &[&str]) -> RunOutput {
    let mut args: Vec<&str> = vec!["--engine", "identity"];
    args.extend_from_slice(extra);
    env.run_with(run_args(input, out, 0.5, &args), |c| {
        c.env("REFRAME_TEST_ENGINES", "1");
    })
}

/// The pipe path keeps every frame and its time: constant and variable frame rate.
#[test]
fn identity_engine_keeps_frame_count_and_times() {
    let env = TestEnv::new();
    for (name, input) in [
        ("cfr", make_plain(&env.path("cfr.mp4"), Clip::secs(2.0))),
        ("vfr", make_vfr(&env.path("vfr.mp4"), Clip::secs(3.0))),
    ] {
        let out = env.path(format!("{name}.identity.mp4"));
        identity_run(&env, &input, &out, &["--preset", "h264_hq"]).assert_success();
        let src = frame_times(&input);
        assert_same_frame_times(&src, &frame_times(&out), 0.001);
        assert_audio_in_sync(&input, &out);
    }
}

/// Through the pipe path and a lossless 8-bit preset, every decoded frame is bit-identical to
/// the source's: no colour conversion, no lost or repeated frame, order kept.
#[test]
fn identity_engine_with_lossless_preset_is_bit_exact() {
    let env = TestEnv::new();
    let input = make_vfr(&env.path("vfr.mp4"), Clip::secs(3.0));
    let preset = write_preset_file(&env, "ffv1-8bit.json", FFV1_8BIT_PRESET);
    let out = env.path("vfr.identity.mkv");
    let preset_arg = preset.to_string_lossy().into_owned();
    // `--height 240` (the source's): the encoder's fitting to the target is then a no-op.
    identity_run(
        &env,
        &input,
        &out,
        &["--preset", &preset_arg, "--height", "240"],
    )
    .assert_success();
    assert_eq!(video_size(&out), video_size(&input));
    let v = video_stream(&ffprobe_json(&out));
    assert_eq!(v["codec_name"], "ffv1");
    assert_eq!(v["pix_fmt"], "yuv420p");
    assert_eq!(frame_hashes(&out), frame_hashes(&input));
    assert_same_frame_times(&frame_times(&input), &frame_times(&out), 0.001);
}

/// The identity engine is for tests only: not offered without REFRAME_TEST_ENGINES=1.
#[test]
fn identity_engine_is_hidden_from_users() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("clip.mp4"), Clip::secs(1.0));
    let out = env.path("clip.out.mp4");
    let run = env.run(run_args(&input, &out, 0.5, &["--engine", "identity"]));
    run.assert_code(2).assert_mentions_all(&["identity"]);
    assert!(!out.exists());

    let engines = env.run(["engines"]);
    engines.assert_success();
    assert!(engines.stdout.contains("lanczos"), "{}", engines.describe());
    assert!(
        !engines.stdout.contains("identity"),
        "{}",
        engines.describe()
    );
}

/// Display aspect ratio of the first video stream: width × SAR / height.
fn display_aspect(path: &Path) -> f64 {
    let v = video_stream(&ffprobe_json(path));
    let w = v["width"].as_f64().expect("width");
    let h = v["height"].as_f64().expect("height");
    let sar = v["sample_aspect_ratio"]
        .as_str()
        .and_then(|s| s.split_once(':'))
        .and_then(|(a, b)| Some(a.parse::<f64>().ok()? / b.parse::<f64>().ok()?))
        .filter(|r| *r > 0.0)
        .unwrap_or(1.0);
    w * sar / h
}

/// An anamorphic source (stored 4:3, shown 16:9) is still shown 16:9.
#[test]
fn anamorphic_source_keeps_its_display_aspect_ratio() {
    let env = TestEnv::new();
    let input = make_anamorphic(&env.path("wide.mp4"), Clip::secs(1.0));
    let out = env.path("wide.out.mp4");
    env.run(run_args(&input, &out, 0.5, &[])).assert_success();
    let dar = display_aspect(&out);
    assert!(
        (dar - 16.0 / 9.0).abs() < 0.02,
        "display aspect {dar:.4}, source 16:9"
    );
    assert_eq!(count_video_frames(&out), 24);
}

/// Odd source sizes give even output sizes (4:2:0 needs them), aspect kept.
#[test]
fn odd_size_source_gives_even_output() {
    let env = TestEnv::new();
    let input = make_odd_size(&env.path("odd.mp4"), Clip::secs(1.0));
    for (scale, want_w, want_h) in [("2", 642.0, 482.0), ("1.5", 481.5, 361.5)] {
        let out = env.path(format!("odd.{scale}.mp4"));
        env.run(run_args(&input, &out, 0.5, &["--scale", scale]))
            .assert_success();
        let (w, h) = video_size(&out);
        assert!(w % 2 == 0 && h % 2 == 0, "odd output size {w}x{h}");
        assert!(
            (w as f64 - want_w).abs() <= 2.0 && (h as f64 - want_h).abs() <= 2.0,
            "scale {scale}: {w}x{h}, expected about {want_w}x{want_h}"
        );
        assert_eq!(count_video_frames(&out), 24);
    }
}

/// A 10-bit source is processed (in 8-bit for now) with a warning saying so.
#[test]
fn ten_bit_source_is_processed_with_a_warning() {
    let env = TestEnv::new();
    let input = make_10bit(&env.path("ten.mp4"), Clip::secs(1.0));
    let out = env.path("ten.out.mp4");
    let run = env.run(run_args(&input, &out, 0.5, &["--json"]));
    run.assert_success();
    let warns = warnings(&run.events()).join("\n").to_lowercase();
    assert!(
        warns.contains("10-bit") || warns.contains("8-bit") || warns.contains("bit depth"),
        "no bit depth warning\n{}",
        run.describe()
    );
    assert_eq!(count_video_frames(&out), 24);
    assert_eq!(video_stream(&ffprobe_json(&out))["pix_fmt"], "yuv420p");
}

/// An interlaced source is flagged with a warning; `--deinterlace` gives a progressive output
/// with the same frames count and times.
#[test]
fn interlaced_source_warns_and_deinterlace_option_works() {
    let env = TestEnv::new();
    let input = make_interlaced(&env.path("tv.mp4"), Clip::secs(1.0));
    let out = env.path("tv.out.mp4");
    let run = env.run(run_args(&input, &out, 0.5, &["--json"]));
    run.assert_success();
    let warns = warnings(&run.events()).join("\n").to_lowercase();
    assert!(
        warns.contains("interlac"),
        "no interlacing warning\n{}",
        run.describe()
    );
    assert!(
        warns.contains("--deinterlace"),
        "the warning should name the way out\n{}",
        run.describe()
    );

    let out2 = env.path("tv.progressive.mp4");
    let run = env.run(run_args(&input, &out2, 0.5, &["--json", "--deinterlace"]));
    run.assert_success();
    let v = video_stream(&ffprobe_json(&out2));
    let fo = v["field_order"].as_str().unwrap_or("progressive");
    assert!(
        fo == "progressive" || fo == "unknown",
        "field order {fo} after --deinterlace"
    );
    assert_same_frame_times(&frame_times(&input), &frame_times(&out2), 0.001);
}

/// The MD5 of stream `index`'s packets (a cover picture: its bytes).
fn stream_md5(path: &Path, index: usize) -> String {
    let mut args = vec!["-v".into(), "error".into(), "-i".into(), ff_path(path)];
    args.extend(
        [
            "-map",
            &format!("0:{index}"),
            "-c",
            "copy",
            "-f",
            "md5",
            "-",
        ]
        .map(std::ffi::OsString::from),
    );
    String::from_utf8_lossy(&tool("ffmpeg", args))
        .trim()
        .to_owned()
}

/// Cover art (an attached picture, as phones, iTunes and taggers write it) stays: in MP4 as
/// an attached-picture stream, in MKV as an image attachment, with the same bytes either way;
/// HLS cannot hold one and says so.
#[test]
fn cover_art_is_kept_where_the_container_allows() {
    let env = TestEnv::new();
    let plain = make_plain(&env.path("plain.mp4"), Clip::secs(2.0));
    let cover = env.path("cover.jpg");
    tool(
        "ffmpeg",
        [
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=96x96",
            "-frames:v",
            "1",
        ]
        .map(std::ffi::OsString::from)
        .into_iter()
        .chain([ff_path(&cover)]),
    );
    let input = env.path("tagged.m4v");
    tool(
        "ffmpeg",
        ["-v", "error", "-i"]
            .map(std::ffi::OsString::from)
            .into_iter()
            .chain([ff_path(&plain), "-i".into(), ff_path(&cover)])
            .chain(
                [
                    "-map",
                    "0",
                    "-map",
                    "1",
                    "-c",
                    "copy",
                    "-disposition:v:1",
                    "attached_pic",
                    "-f",
                    "mp4",
                ]
                .map(std::ffi::OsString::from),
            )
            .chain([ff_path(&input)]),
    );
    let source_md5 = stream_md5(&input, 2);
    let cover_of = |path: &Path| {
        let probe = ffprobe_json(path);
        let covers: Vec<Value> = streams_of(&probe, "video")
            .into_iter()
            .filter(|s| s["disposition"]["attached_pic"] == 1)
            .collect();
        assert_eq!(
            covers.len(),
            1,
            "one cover in {}: {probe:#}",
            path.display()
        );
        covers[0].clone()
    };
    assert_eq!(cover_of(&input)["index"], 2, "the source's cover");

    let mp4 = env.path("tagged.out.mp4");
    env.run(run_args(&input, &mp4, 1.0, &["--preset", "h264_hq"]))
        .assert_success();
    let kept = cover_of(&mp4);
    assert_eq!(kept["codec_name"], "mjpeg");
    let index = kept["index"].as_u64().expect("index") as usize;
    assert_eq!(stream_md5(&mp4, index), source_md5, "MP4: the same picture");
    assert_eq!(
        framemd5(&mp4).len(),
        48,
        "the video is the upscaled one, not the cover"
    );

    let mkv = env.path("tagged.out.mkv");
    env.run(run_args(&input, &mkv, 1.0, &["--preset", "lossless_ffv1"]))
        .assert_success();
    let kept = cover_of(&mkv);
    assert_eq!(kept["tags"]["mimetype"], "image/jpeg", "{kept:#}");
    assert_eq!(kept["tags"]["filename"], "cover.jpg", "{kept:#}");
    let index = kept["index"].as_u64().expect("index") as usize;
    assert_eq!(stream_md5(&mkv, index), source_md5, "MKV: the same picture");

    let hls = env.path("tagged.hls");
    let run = env.run(run_args(&input, &hls, 1.0, &["--preset", "hls_720p"]));
    run.assert_success();
    assert!(
        run.stderr.to_lowercase().contains("cover art"),
        "HLS: no warning about the cover\n{}",
        run.describe()
    );
}
