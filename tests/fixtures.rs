//! Checks the test fixtures themselves: each generator makes what the other tests assume it
//! makes (a test on a broken fixture proves nothing). Needs only ffmpeg, not reframe.

mod common;

use common::*;

#[test]
fn plain_mp4_has_video_and_audio() {
    let env = TestEnv::new();
    let clip = Clip::default();
    let p = make_plain(&env.path("plain.mp4"), clip);
    let probe = ffprobe_json(&p);
    let v = video_stream(&probe);
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(streams_of(&probe, "audio").len(), 1);
    assert_eq!(count_video_frames(&p), clip.frames());
    let d = duration_secs(&probe);
    assert!((d - clip.duration_secs).abs() < 0.1, "duration {d}");
    // Evenly spaced frames.
    let t = frame_times(&p);
    assert_eq!(t.len() as u64, clip.frames());
    for w in t.windows(2) {
        assert!((w[1] - w[0] - 1.0 / 24.0).abs() < 0.001, "{t:?}");
    }
    assert!(
        ffprobe_json(&make_silent(&env.path("silent.mp4"), clip))["streams"]
            .as_array()
            .is_some_and(|s| s.len() == 1)
    );
}

#[test]
fn vfr_mp4_has_irregular_frame_times() {
    let env = TestEnv::new();
    let clip = Clip::default();
    let p = make_vfr(&env.path("vfr.mp4"), clip);
    let t = frame_times(&p);
    assert!(
        t.len() > 40 && (t.len() as u64) < clip.frames(),
        "{} frames",
        t.len()
    );
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let min = gaps.iter().cloned().fold(f64::MAX, f64::min);
    let max = gaps.iter().cloned().fold(0.0, f64::max);
    assert!(max > 3.0 * min, "gaps not irregular enough: {gaps:?}");
    // Some frame times are off the 1/24 s grid (shifted by 7 ms).
    assert!(
        t.iter()
            .any(|x| ((x * 24.0) - (x * 24.0).round()).abs() > 0.1),
        "{t:?}"
    );
    assert_eq!(count_video_frames(&p), t.len() as u64);
    assert_eq!(streams_of(&ffprobe_json(&p), "audio").len(), 1);
}

#[test]
fn rich_mkv_has_two_audio_tracks_subtitles_font_and_chapters() {
    let env = TestEnv::new();
    let p = make_rich_mkv(&env.path("rich.mkv"), Clip::default());
    let probe = ffprobe_json(&p);
    assert!(
        probe["format"]["format_name"]
            .as_str()
            .is_some_and(|f| f.contains("matroska"))
    );
    let audio = streams_of(&probe, "audio");
    assert_eq!(audio.len(), 2);
    assert_eq!(audio[0]["tags"]["language"], RICH_AUDIO_LANGUAGES[0]);
    assert_eq!(audio[1]["tags"]["language"], RICH_AUDIO_LANGUAGES[1]);
    assert_eq!(audio[1]["codec_name"], "opus");
    let subs = streams_of(&probe, "subtitle");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["codec_name"], "ass");
    let att = streams_of(&probe, "attachment");
    assert_eq!(att.len(), 1);
    assert_eq!(att[0]["tags"]["mimetype"], "application/x-truetype-font");
    assert_eq!(att[0]["tags"]["filename"], RICH_FONT_NAME);
    let chapters = probe["chapters"].as_array().expect("chapters");
    assert_eq!(chapters.len(), 2);
    assert_eq!(chapters[0]["tags"]["title"], RICH_CHAPTER_TITLES[0]);
    assert_eq!(chapters[1]["tags"]["title"], RICH_CHAPTER_TITLES[1]);
    // Helper files were cleaned up.
    assert_eq!(
        list_files(&env.work_dir),
        vec![std::path::PathBuf::from("rich.mkv")]
    );
}

#[test]
fn rotated_mp4_reports_rotation() {
    let env = TestEnv::new();
    let p = make_rotated(&env.path("rot.mp4"), Clip::default(), 90);
    let v = video_stream(&ffprobe_json(&p));
    assert_eq!(rotation_deg(&v).abs(), 90, "{v:#}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240))
    );
}

#[test]
fn broken_inputs_are_broken() {
    let env = TestEnv::new();
    let audio = make_audio_only(&env.path("audio_only.mp4"), 2.0);
    let probe = ffprobe_json(&audio);
    assert!(streams_of(&probe, "video").is_empty());
    assert_eq!(streams_of(&probe, "audio").len(), 1);

    let zero = make_zero_byte(&env.path("zero.mp4"));
    assert_eq!(std::fs::metadata(&zero).expect("stat").len(), 0);
    assert!(!ffprobe_ok(&zero));

    let text = make_text_file(&env.path("notes.mp4"));
    assert!(!ffprobe_ok(&text));

    let cut = make_truncated(&env.path("cut.mp4"), Clip::default(), Truncation::NoIndex);
    assert!(!ffprobe_ok(&cut), "an mp4 without its index must not probe");

    let cut2 = make_truncated(
        &env.path("cut_fast.mp4"),
        Clip::default(),
        Truncation::MissingFrames,
    );
    assert!(ffprobe_ok(&cut2), "a faststart mp4 cut short still probes");
    // …but holds fewer frames than its index announces.
    let announced: u64 = video_stream(&ffprobe_json(&cut2))["nb_frames"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("nb_frames");
    assert!(count_video_frames(&cut2) < announced);
}

#[test]
fn awkward_names_can_be_generated_and_probed() {
    let env = TestEnv::new();
    for name in AWKWARD_NAMES {
        let p = make_plain(&env.path(name), Clip::secs(1.0));
        assert!(p.exists(), "{name}");
        assert_eq!(video_size(&p), (320, 240), "{name}");
        assert_eq!(frame_hashes(&p).len(), 24, "{name}");
    }
}

#[test]
fn harness_reads_events_and_finds_orphans() {
    // The harness itself, without reframe: a shell printing event lines, with a child in its
    // process group that does not die with it (as a careless product's ffmpeg would not).
    let env = TestEnv::new();
    let script = r#"echo '{"type":"hello","version":1,"pid":1}'; echo 'not json'; sleep 30 & echo '{"type":"job-cancelled","job":3}'; wait"#;
    let mut cmd = std::process::Command::new("sh");
    env.apply_env(&mut cmd);
    cmd.args(["-c", script]);
    let mut run = JsonRun::spawn(cmd);
    let secs = std::time::Duration::from_secs(10);
    run.wait_for("job-cancelled", secs, |e| {
        matches!(e, reframe::protocol::Event::JobCancelled { job: 3 })
    });
    assert_eq!(run.events.len(), 2);
    assert_eq!(run.garbage, vec!["not json".to_string()]);
    let left = run.kill9_leftovers();
    assert!(left.iter().any(|p| p.starts_with("sleep(")), "{left:?}");
    assert!(run.alive().is_empty());

    // A well-behaved command: every line an event, exit 0.
    let mut cmd = std::process::Command::new("sh");
    env.apply_env(&mut cmd);
    cmd.args(["-c", r#"echo '{"type":"job-cancelled","job":1}'"#]);
    let done = JsonRun::spawn(cmd).finish(secs);
    done.assert_success();
    assert_eq!(done.events.len(), 1);
}

#[test]
fn special_sources_have_their_property() {
    let env = TestEnv::new();
    let clip = Clip::secs(1.0);
    let v = video_stream(&ffprobe_json(&make_interlaced(&env.path("i.mp4"), clip)));
    assert_eq!(v["field_order"], "tt", "{v:#}");
    assert_eq!(count_video_frames(&env.path("i.mp4")), 24);
    let v = video_stream(&ffprobe_json(&make_10bit(&env.path("10.mp4"), clip)));
    assert_eq!(v["pix_fmt"], "yuv420p10le", "{v:#}");
    let v = video_stream(&ffprobe_json(&make_anamorphic(&env.path("a.mp4"), clip)));
    assert_eq!(v["sample_aspect_ratio"], "4:3", "{v:#}");
    assert_eq!(v["display_aspect_ratio"], "16:9", "{v:#}");
    let v = video_stream(&ffprobe_json(&make_odd_size(&env.path("odd.mp4"), clip)));
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(321), Some(241))
    );
}
