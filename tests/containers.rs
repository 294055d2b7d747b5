//! Constant-rate video in the containers and codecs older recordings and rips come in —
//! MPEG-4 part 2 in AVI and MPEG-2 in program and transport streams, both with B-frames, and
//! Sorenson in FLV — goes through with every frame, no "variable frame rate" warning, and the
//! source's frame times (these containers leave some frames without a timestamp, or start
//! the video late).

mod common;

use std::ffi::OsString;
use std::path::Path;

use common::*;

/// 2 s at 25 fps, 320x240, made by ffmpeg with `codec_args`.
fn make(path: &Path, codec_args: &str) -> Vec<String> {
    let mut args: Vec<OsString> = "-v error -f lavfi -i testsrc2=size=320x240:rate=25:duration=2"
        .split(' ')
        .map(OsString::from)
        .collect();
    args.extend(codec_args.split(' ').map(OsString::from));
    args.push(ff_path(path));
    tool("ffmpeg", args);
    framemd5(path)
}

#[test]
fn old_containers_with_b_frames_keep_every_frame_at_its_time() {
    let env = TestEnv::new();
    for (name, codec) in [
        ("mpeg4.avi", "-c:v mpeg4 -bf 2 -q:v 5"),
        ("mpeg2.mpg", "-c:v mpeg2video -bf 2 -q:v 5"),
        ("mpeg2.ts", "-c:v mpeg2video -bf 2 -q:v 5"),
        ("sorenson.flv", "-c:v flv1 -q:v 5"),
    ] {
        let input = env.path(name);
        let source = make(&input, codec);
        let out = env.path(format!("{name}.out.mkv"));
        let run = env.run(run_args(
            &input,
            &out,
            1.0,
            &["--json", "--preset", "lossless_ffv1", "--scale", "2"],
        ));
        run.assert_success();
        let warns = warnings(&run.events()).join("\n");
        assert!(
            !warns.contains("variable frame rate"),
            "{name}: a constant-rate source called variable:\n{warns}"
        );
        let output = framemd5(&out);
        assert_eq!(output.len(), source.len(), "{name}: frame count");
        // The same frame times, frame for frame: framemd5's pts (from the first frame: it
        // starts a stream at zero or not depending on the container) and duration columns.
        let times = |lines: &[String]| -> Vec<(i64, i64)> {
            let columns: Vec<(i64, i64)> = lines
                .iter()
                .map(|l| {
                    let f: Vec<i64> = l
                        .split(',')
                        .map(|c| c.trim().parse().unwrap_or(-1))
                        .collect();
                    (f[2], f[3])
                })
                .collect();
            let first = columns.first().map_or(0, |c| c.0);
            columns.iter().map(|&(pts, d)| (pts - first, d)).collect()
        };
        assert_eq!(times(&output), times(&source), "{name}: frame times");
    }
}

/// A transport stream recording that starts mid-GOP (its first packets cut off, as a DVR or
/// a cut tool leaves it): the frames before the first keyframe reference pictures that are not
/// in the file. It is processed from the first frame that decodes, with one warning saying how
/// many frames were left out, and the audio keeps its times.
#[test]
fn a_recording_cut_mid_gop_starts_at_its_first_decodable_frame() {
    let env = TestEnv::new();
    let full = make_custom(&env.path("full.ts"), Clip::secs(4.0), None, "-g 48 -bf 2");
    let bytes = std::fs::read(&full).expect("test setup");
    let packets = bytes.len() / 188;
    let input = env.path("cut.ts");
    std::fs::write(&input, &bytes[packets * 15 / 100 * 188..]).expect("test setup");
    // What a decoder makes of it: fewer frames than the packets it holds.
    let decodable = framemd5(&input).len();
    let listed = String::from_utf8_lossy(&ffprobe(
        "-select_streams v -show_entries packet=pts -of csv=p=0",
        &input,
    ))
    .lines()
    .filter(|l| !l.trim().is_empty())
    .count();
    assert!(
        decodable < listed,
        "the cut leaves undecodable frames: {decodable} of {listed}"
    );

    let out = env.path("cut.out.mkv");
    let run = env.run(run_args(
        &input,
        &out,
        1.0,
        &["--json", "--preset", "lossless_ffv1", "--scale", "2"],
    ));
    run.assert_success();
    let warns = warnings(&run.events());
    let cut: Vec<&String> = warns
        .iter()
        .filter(|w| w.contains("does not start on a keyframe"))
        .collect();
    assert_eq!(cut.len(), 1, "one warning about the cut: {warns:?}");
    assert!(
        cut[0].contains(&format!("first {} frame(s)", listed - decodable)),
        "{}",
        cut[0]
    );
    assert_eq!(
        framemd5(&out).len(),
        decodable,
        "every decodable frame, no more"
    );
    let probe = ffprobe_json(&out);
    assert_eq!(streams_of(&probe, "audio").len(), 1, "{probe:#}");
}

/// `(pts, md5)` of each frame in framemd5 lines.
fn pts_and_hash(lines: &[String]) -> Vec<(i64, String)> {
    lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f[2].parse().unwrap_or(-1), f[5].to_owned())
        })
        .collect()
}

/// A recording damaged in the middle (the payload of a run of packets scrambled, as a bad
/// sector or a broken transmission leaves it) is processed from end to end: the frames lost
/// from the file and those that cannot be decoded are left out, each with one warning that
/// says how many and where; every frame outside the damaged stretch is exactly what the
/// undamaged recording gives at the same time; the audio is complete; and the same command
/// again (what a resumed job runs) gives the same frames.
#[test]
fn a_recording_damaged_in_the_middle_keeps_every_frame_that_decodes() {
    let env = TestEnv::new();
    let input = make_damaged_ts(&env.path("damaged.ts"), Clip::secs(4.0), 24);
    let mut full = input.clone().into_os_string();
    full.push(".full.ts");
    let encode = |source: &Path, name: &str, extra: &[&str]| {
        let out = env.path(name);
        let mut args = vec!["--json", "--preset", "lossless_ffv1", "--scale", "2"];
        args.extend(extra);
        let run = env.run(run_args(source, &out, 1.0, &args));
        run.assert_success();
        (out, warnings(&run.events()))
    };
    let (undamaged, _) = encode(Path::new(&full), "full.out.mkv", &[]);
    let (out, warns) = encode(&input, "damaged.out.mkv", &[]);

    let lost: Vec<&String> = warns
        .iter()
        .filter(|w| w.contains("missing from the file"))
        .collect();
    assert_eq!(
        lost.len(),
        1,
        "one warning about the lost packets: {warns:?}"
    );
    let undecodable: Vec<&String> = warns
        .iter()
        .filter(|w| w.contains("cannot be decoded and are left out"))
        .collect();
    assert_eq!(
        undecodable.len(),
        1,
        "one warning about undecodable frames: {warns:?}"
    );
    assert!(
        undecodable[0].contains(" s to "),
        "where: {}",
        undecodable[0]
    );
    assert!(
        !warns.iter().any(|w| w.contains("variable frame rate")),
        "a damaged constant-rate recording called variable: {warns:?}"
    );

    let reference = pts_and_hash(&framemd5(&undamaged));
    let got = pts_and_hash(&framemd5(&out));
    assert!(
        got.len() < reference.len() && got.len() > reference.len() / 2,
        "{} of {} frames",
        got.len(),
        reference.len()
    );
    // Strictly increasing times, each one a frame time of the undamaged recording.
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "frames out of order"
    );
    let same = got.iter().filter(|f| reference.contains(f)).count();
    // Pictures of the damaged group that the decoder conceals differ; nothing else does.
    assert!(
        same + 8 >= got.len(),
        "only {same} of {} frames are the undamaged recording's",
        got.len()
    );
    assert_eq!(got.first(), reference.first(), "first frame");
    assert_eq!(got.last(), reference.last(), "last frame");
    let audio_secs = |path: &Path| -> f64 {
        let probe = ffprobe_json(path);
        let audio = streams_of(&probe, "audio");
        assert_eq!(audio.len(), 1, "{probe:#}");
        audio[0]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| duration_secs(&probe))
    };
    assert!(
        (audio_secs(&out) - audio_secs(&undamaged)).abs() < 0.05,
        "audio {} s, undamaged {} s",
        audio_secs(&out),
        audio_secs(&undamaged)
    );

    let (again, _) = encode(&input, "again.out.mkv", &["--restart"]);
    assert_eq!(framemd5(&again), framemd5(&out), "the same frames again");
}

/// Damage longer than a chunk: a chunk none of whose frames decode holds none, and the job
/// goes on with the next one (it used to fail as "cannot be processed"). The output has the
/// frames that decode, one warning says what was left out, the audio is complete, and the
/// same command again gives the same frames.
#[test]
fn a_chunk_none_of_whose_frames_decode_is_left_out() {
    let env = TestEnv::new();
    let ts = make_ts_with_lost_keyframe(&env.path("damaged.ts"), Clip::secs(3.0), 12);
    // Matroska has a seek index: chunks of 6 frames are cut whatever the keyframes, so one of
    // them falls entirely in the group of pictures whose keyframe was lost.
    let input = env.path("damaged.mkv");
    let mut remux = vec![OsString::from("-i"), ff_path(&ts)];
    remux.extend(["-map", "0", "-c", "copy"].map(OsString::from));
    remux.push(ff_path(&input));
    tool("ffmpeg", remux);
    let decoded = |path: &Path| -> usize {
        let out = tool(
            "ffprobe",
            [
                OsString::from("-v"),
                "error".into(),
                "-count_frames".into(),
                "-select_streams".into(),
                "v:0".into(),
                "-show_entries".into(),
                "stream=nb_read_frames".into(),
                "-of".into(),
                "csv=p=0".into(),
                ff_path(path),
            ],
        );
        String::from_utf8_lossy(&out)
            .trim()
            .parse()
            .expect("a frame count")
    };
    let decodable = decoded(&input);
    assert!(
        decodable < 66,
        "test setup: too little was lost ({decodable})"
    );

    let encode = |name: &str, extra: &[&str]| {
        let out = env.path(name);
        let mut args = vec!["--json", "--preset", "lossless_ffv1", "--scale", "2"];
        args.extend(extra);
        let run = env.run(run_args(&input, &out, 0.25, &args));
        run.assert_success();
        (out, warnings(&run.events()))
    };
    let (out, warns) = encode("out.mkv", &[]);
    let left_out: Vec<&String> = warns
        .iter()
        .filter(|w| w.contains("cannot be decoded and are left out"))
        .collect();
    assert_eq!(left_out.len(), 1, "{warns:?}");
    // A picture the decoder conceals when it runs through the damage may be left out by a
    // decoder that starts at the chunk: nothing else is.
    let made = decoded(&out);
    assert!(
        made <= decodable && made + 2 >= decodable,
        "{made} frames made, {decodable} decode from the start"
    );
    let probe = ffprobe_json(&out);
    assert_eq!(streams_of(&probe, "audio").len(), 1, "{probe:#}");
    assert!(
        (duration_secs(&probe) - 3.0).abs() < 0.15,
        "duration {}",
        duration_secs(&probe)
    );
    assert!(env.session_ids().is_empty(), "the session was left behind");

    let (again, _) = encode("again.out.mkv", &["--restart"]);
    assert_eq!(framemd5(&again), framemd5(&out), "the same frames again");
}
