//! `reframe run --engine animevideov3` end to end on a tiny clip with the real model: it
//! completes, a kill -9 after the first chunk then a rerun resumes and gives the same frames
//! as an uninterrupted run, and the output frames are exactly the engine applied to the
//! decoded source frames (a lossless 8-bit FFV1 preset keeps them bit for bit).
//! Also: `reframe engines` lists what the models folder holds; a missing model is a clear
//! error.

mod common;
mod neural_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use reframe::engine::neural::Neural;
use reframe::engine::{ColorMatrix, Family, Frame, Upscaler};
use reframe::protocol::Event;

const WAIT: Duration = Duration::from_secs(600);
const WIDTH: u32 = 32;
const HEIGHT: u32 = 24;

/// 12 frames at 24 fps, in chunks of 3 frames.
fn clip() -> Clip {
    Clip {
        width: WIDTH,
        height: HEIGHT,
        fps: 24,
        duration_secs: 0.5,
    }
}

const CHUNK_SECS: f64 = 0.125;

fn lossless_preset(env: &TestEnv) -> PathBuf {
    let path = env.path("ffv1_8bit.json");
    std::fs::write(
        &path,
        r#"{ "name": "ffv1_8bit", "description": "lossless 8-bit test preset",
             "output": { "kind": "file", "container": "mkv" },
             "video": { "codec": "ffv1", "pix_fmt": "yuv420p" },
             "audio": { "mode": "copy" } }"#,
    )
    .expect("write preset");
    path
}

fn engine_args(
    env: &TestEnv,
    input: &Path,
    out: &Path,
    engine: &str,
    (scale, denoise): (u32, Option<u8>),
) -> Vec<std::ffi::OsString> {
    let preset = lossless_preset(env);
    let models = neural_support::models_dir();
    let scale = scale.to_string();
    let mut engine_args = vec!["--engine", engine, "--scale", &scale];
    let denoise = denoise.map(|n| n.to_string());
    if let Some(level) = &denoise {
        engine_args.extend(["--denoise", level]);
    }
    let mut a = run_args(input, out, CHUNK_SECS, &engine_args);
    a.extend(["--preset".into(), preset.into_os_string()]);
    a.extend(["--models-dir".into(), models.into_os_string()]);
    a
}

/// Every frame of `path` as raw yuv420p.
fn decode_yuv(path: &Path, width: u32, height: u32) -> Vec<Frame> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(ff_path(path))
        .args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let len = Frame::yuv420p_len(width, height);
    assert_eq!(
        out.stdout.len() % len,
        0,
        "torn frame in {}",
        path.display()
    );
    out.stdout
        .chunks_exact(len)
        .map(|data| Frame {
            width,
            height,
            data: data.to_vec(),
        })
        .collect()
}

#[test]
fn animevideov3_run_kill_resume_and_exact_frames() {
    run_kill_resume_and_exact_frames(
        Family::AnimeVideoV3,
        "realesr-animevideov3-x4",
        clip(),
        (2, None),
    );
}

/// 6 frames of 8×8, in chunks of 3, for the heavy nets (the tests run unoptimised).
fn small_clip() -> Clip {
    Clip {
        width: 8,
        height: 8,
        duration_secs: 0.25,
        ..clip()
    }
}

/// The RRDB engine (body and upsampling tail tiled apart) through the whole pipeline, on a
/// smaller clip (the net is ~100× animevideov3's work per pixel).
#[test]
fn x4plus_anime_run_kill_resume_and_exact_frames() {
    run_kill_resume_and_exact_frames(
        Family::X4PlusAnime,
        "realesrgan-x4plus-anime",
        small_clip(),
        (2, None),
    );
}

/// The squeeze-and-excitation U-Nets (Real-CUGAN se, waifu2x cunet: the frame's statistics,
/// the strides' alignment) through the whole pipeline, on the smaller clip.
#[test]
fn realcugan_and_cunet_run_kill_resume_and_exact_frames() {
    let clip = small_clip();
    run_kill_resume_and_exact_frames(
        Family::RealCugan,
        "models-se/up2x-no-denoise",
        clip,
        (2, None),
    );
    run_kill_resume_and_exact_frames(Family::Waifu2xCunet, "WAIFU2X_CUNET_UP2X", clip, (2, None));
    // cunet's 1× nets only remove noise: the output has the source's size.
    run_kill_resume_and_exact_frames(
        Family::Waifu2xCunet,
        "WAIFU2X_CUNET_UP1X_DENOISE1X",
        clip,
        (1, Some(1)),
    );
}

/// `reframe run` with the engine at `scale` and `denoise`: an uninterrupted run, a run killed
/// after a chunk and resumed (the same frames), and every output frame byte-identical to the
/// engine applied to the decoded source.
fn run_kill_resume_and_exact_frames(
    family: Family,
    model: &str,
    clip: Clip,
    (scale, denoise): (u32, Option<u8>),
) {
    let args = |env: &TestEnv, input: &Path, out: &Path| {
        engine_args(env, input, out, family.engine_name(), (scale, denoise))
    };
    let env = TestEnv::new();
    let input = make_plain(&env.path("tiny.mp4"), clip);
    let frames = (f64::from(clip.fps) * clip.duration_secs).round() as usize;

    // Uninterrupted.
    let reference_out = env.subdir("ref").join("tiny.mkv");
    let run = env
        .spawn_json(args(&env, &input, &reference_out))
        .finish(WAIT);
    run.assert_success();
    let started = single_start(&run.events);
    assert!(started.chunks_total >= 2, "{started:?}");
    let reference = framemd5(&reference_out);
    assert_eq!(reference.len(), frames, "{reference:?}");

    // Killed after its first chunk, then resumed.
    let out = env.subdir("out").join("tiny.mkv");
    let mut run = env.spawn_json(args(&env, &input, &out));
    run.wait_for("a chunk-done", WAIT, |e| {
        matches!(e, Event::ChunkDone { .. })
    });
    run.kill9();
    assert!(!out.exists(), "a killed run left its output");
    let rerun = env.spawn_json(args(&env, &input, &out)).finish(WAIT);
    rerun.assert_success();
    let second = single_start(&rerun.events);
    assert!(second.resumed && second.chunks_done >= 1, "{second:?}");
    assert_eq!(
        framemd5(&out),
        reference,
        "the resumed output differs from an uninterrupted run"
    );

    // The output is the engine applied to the decoded source frames.
    let source = decode_yuv(&input, clip.width, clip.height);
    let encoded = decode_yuv(&out, clip.width * scale, clip.height * scale);
    assert_eq!(source.len(), encoded.len());
    let tools = reframe::media::tools::Tools::locate().expect("ffmpeg");
    let info = reframe::media::probe::probe(&tools, &input).expect("probe");
    let matrix = ColorMatrix::for_source(info.video.color_space.as_deref(), clip.height);
    let (param, bin) = neural_support::model(model);
    let files = reframe::engine::models::ModelFiles { param, bin };
    let mut engine = Neural::load(family, &files, scale, matrix).expect("load");
    for (i, (src, got)) in source.iter().zip(&encoded).enumerate() {
        let want = engine.process(src).expect("engine");
        let max = want
            .data
            .iter()
            .zip(&got.data)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        assert_eq!(
            max, 0,
            "frame {i}: output differs from the engine by up to {max}"
        );
    }
}

#[test]
fn engines_lists_the_models_folder() {
    let env = TestEnv::new();
    let models = neural_support::models_dir();
    let out = env.run([
        "engines".as_ref(),
        "--models-dir".as_ref(),
        models.as_os_str(),
    ]);
    out.assert_success();
    let text = out.stdout.clone();
    assert!(
        text.contains("animevideov3") && text.contains("scales 2x 3x 4x"),
        "{text}"
    );
    assert!(
        text.contains("waifu2x ") && text.contains("denoise [0, 1, 2, 3]"),
        "{text}"
    );
    assert!(text.contains("waifu2x-photo"), "{text}");
    assert!(
        text.contains("x4plus ") && text.contains("x4plus-anime"),
        "{text}"
    );

    let empty = env.subdir("no-models");
    let out = env.run([
        "engines".as_ref(),
        "--models-dir".as_ref(),
        empty.as_os_str(),
    ]);
    out.assert_success();
    assert!(
        !out.stdout.contains("animevideov3 Real-ESRGAN"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("missing: put realesr-animevideov3-x4.param"),
        "{}",
        out.stdout
    );
}

/// A model of the user's own in `<models>/custom/` is an engine named after its file: listed
/// by `reframe engines` with the scale its graph gives, run by `reframe run` at its own scale
/// and below it; one with an unknown layer is listed with the reason (the layer and its
/// line) and refused by `run` with the same reason.
#[test]
fn a_custom_model_in_the_models_folder_is_an_engine() {
    let env = TestEnv::new();
    let models = env.subdir("models");
    let custom = models.join("custom");
    std::fs::create_dir_all(&custom).expect("test dir");
    neural_support::write_esrgan_shaped_model(&custom, "4x-テスト sharp", false);
    neural_support::write_esrgan_shaped_model(&custom, "broken", true);

    let out = env.run([
        "engines".as_ref(),
        "--models-dir".as_ref(),
        models.as_os_str(),
    ]);
    out.assert_success();
    let text = &out.stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with("4x-テスト sharp") && l.contains("scales 2x 3x 4x")),
        "{text}"
    );
    let broken = text
        .lines()
        .find(|l| l.contains("broken") && l.contains("cannot be used"))
        .unwrap_or_else(|| panic!("the broken model is not explained:\n{text}"));
    assert!(
        broken.contains("Swish") && broken.contains("line 7"),
        "{broken}"
    );

    let small = Clip {
        width: 16,
        height: 12,
        duration_secs: 0.25,
        ..clip()
    };
    let input = make_plain(&env.path("tiny.mp4"), small);
    for scale in ["4", "2"] {
        let out = env.path(format!("tiny.x{scale}.mkv"));
        let mut a = run_args(
            &input,
            &out,
            CHUNK_SECS,
            &["--engine", "4x-テスト sharp", "--scale", scale],
        );
        a.extend(["--preset".into(), lossless_preset(&env).into_os_string()]);
        a.extend(["--models-dir".into(), models.clone().into_os_string()]);
        env.run(a).assert_success();
        let factor: u64 = scale.parse().expect("scale");
        assert_eq!(video_size(&out), (16 * factor, 12 * factor));
        assert_eq!(framemd5(&out).len(), 6);
    }

    let mut a = run_args(
        &input,
        &env.path("broken.mkv"),
        CHUNK_SECS,
        &["--engine", "broken"],
    );
    a.extend(["--models-dir".into(), models.into_os_string()]);
    env.run(a).assert_failure().assert_mentions_any(&["Swish"]);
}

#[test]
fn missing_model_is_a_clear_error() {
    let env = TestEnv::new();
    let input = make_plain(&env.path("tiny.mp4"), clip());
    let empty = env.subdir("no-models");
    let out = env.run_with(
        [
            "run".as_ref(),
            input.as_os_str(),
            "--engine".as_ref(),
            "animevideov3".as_ref(),
        ],
        |cmd| {
            cmd.env("REFRAME_MODELS_DIR", &empty);
        },
    );
    out.assert_code(2);
    out.assert_mentions_all(&[
        "animevideov3 model is not installed",
        "realesr-animevideov3-x4.param",
        empty.to_str().expect("utf-8 path"),
    ]);
}

/// A recording damaged in the middle goes through a frame engine as through the filter graph:
/// the same frames are kept (the pipe path lists what the decoder gives, since it never sees
/// the decoder's timestamps), at the same times, with the warning.
#[test]
fn a_damaged_recording_keeps_the_same_frames_through_the_engine() {
    let env = TestEnv::new();
    let clip = Clip {
        duration_secs: 2.0,
        ..clip()
    };
    let input = make_ts_with_lost_keyframe(&env.path("damaged.ts"), clip, 12);
    let lanczos_out = env.path("lanczos.mkv");
    let lanczos = env.run(run_args(
        &input,
        &lanczos_out,
        1.0,
        &["--json", "--preset", "lossless_ffv1", "--scale", "2"],
    ));
    lanczos.assert_success();
    let damage_warning = |warns: Vec<String>| {
        warns
            .into_iter()
            .find(|w| w.contains("cannot be decoded and are left out"))
    };
    let expected =
        damage_warning(warnings(&lanczos.events())).expect("the fixture has undecodable frames");

    let out = env.path("engine.mkv");
    let mut a = run_args(
        &input,
        &out,
        1.0,
        &["--engine", "animevideov3", "--scale", "2"],
    );
    a.extend(["--preset".into(), lossless_preset(&env).into_os_string()]);
    a.extend([
        "--models-dir".into(),
        neural_support::models_dir().into_os_string(),
    ]);
    let run = env.spawn_json(a).finish(WAIT);
    run.assert_success();
    assert_eq!(damage_warning(warnings(&run.events)), Some(expected));
    assert_eq!(frame_times(&out), frame_times(&lanczos_out));
}

/// A target height fit with waifu2x cunet: without denoise it runs the 2× net (cunet's 1× nets
/// only denoise) and scales down to the height asked for; with a level, its 1× net.
#[test]
fn cunet_fits_a_height_with_and_without_denoise() {
    let env = TestEnv::new();
    // The smallest height `--height` takes; three frames.
    let clip = Clip {
        width: 16,
        height: 16,
        duration_secs: 0.125,
        ..small_clip()
    };
    let input = make_plain(&env.path("tiny.mp4"), clip);
    for denoise in [None, Some("1")] {
        let out = env.path(format!("tiny.{}.mkv", denoise.unwrap_or("plain")));
        let mut extra = vec!["--engine", "waifu2x-cunet", "--height", "16"];
        extra.extend(denoise.iter().flat_map(|level| ["--denoise", *level]));
        let mut a = run_args(&input, &out, CHUNK_SECS, &extra);
        a.extend(["--preset".into(), lossless_preset(&env).into_os_string()]);
        a.extend([
            "--models-dir".into(),
            neural_support::models_dir().into_os_string(),
        ]);
        env.run(a).assert_success();
        assert_eq!(video_size(&out), (16, 16), "{denoise:?}");
    }
}
