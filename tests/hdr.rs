//! HDR10 sources (PQ, BT.2020, with mastering display and content light level metadata):
//! an 8-bit preset tone-maps them to BT.709 SDR — tagged so, with the brightness of a
//! reference tone-mapped frame, not the washed-out look of PQ samples shown as SDR — on the
//! filter-graph path and the pipe path; a 10-bit H.265 or AV1 preset keeps HDR, tags and
//! metadata included.

mod common;
mod neural_support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const MASTER_DISPLAY: &str = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)";

/// An HDR10 clip: testsrc2 converted to PQ / BT.2020 (SDR white at 203 cd/m², BT.2408),
/// 10-bit HEVC with the mastering display and MaxCLL 1000 / MaxFALL 400 in its SEI.
fn make_hdr10(path: &Path, clip: Clip) -> PathBuf {
    let params = format!(
        "log-level=error:hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:\
         master-display={MASTER_DISPLAY}:max-cll=1000,400"
    );
    make_custom(
        path,
        clip,
        Some(
            "zscale=tin=bt709:min=bt709:pin=bt709:t=smpte2084:m=bt2020nc:p=bt2020:npl=203,\
             format=yuv420p10le",
        ),
        &format!("-c:v libx265 -pix_fmt yuv420p10le -x265-params {params}"),
    )
}

/// The luma plane of frame 0 after `filters`, as 8-bit grey, and its mean.
fn mean_luma(path: &Path, filters: &str) -> f64 {
    let vf = if filters.is_empty() {
        "format=gray".to_owned()
    } else {
        format!("{filters},format=gray")
    };
    let mut args: Vec<OsString> = vec!["-v".into(), "error".into(), "-i".into(), ff_path(path)];
    args.extend(
        ["-vf", &vf, "-frames:v", "1", "-f", "rawvideo", "-"]
            .iter()
            .map(OsString::from),
    );
    let grey = tool("ffmpeg", args);
    assert!(!grey.is_empty(), "no frame from {}", path.display());
    grey.iter().map(|&v| v as f64).sum::<f64>() / grey.len() as f64
}

/// The usual ffmpeg recipe, written out here independently of the product's.
const REFERENCE_TONE_MAP: &str = "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,\
     tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p";

fn colour_tags(path: &Path) -> (String, String, String) {
    let v = video_stream(&ffprobe_json(path));
    let tag = |k: &str| v[k].as_str().unwrap_or("(none)").to_owned();
    (
        tag("color_primaries"),
        tag("color_transfer"),
        tag("color_space"),
    )
}

/// Side data of the first frame, by type.
fn first_frame_side_data(path: &Path) -> Vec<Value> {
    let text = ffprobe(
        "-select_streams v:0 -read_intervals %+#1 -show_frames -of json",
        path,
    );
    let json: Value = serde_json::from_slice(&text).expect("ffprobe JSON");
    json["frames"][0]["side_data_list"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn assert_tone_mapped(source: &Path, out: &Path, run: &RunOutput) {
    let warns = warnings(&run.events()).join("\n");
    assert!(
        warns.contains("tone-mapped to BT.709 SDR"),
        "no notice of the tone mapping:\n{warns}"
    );
    assert_eq!(
        colour_tags(out),
        ("bt709".into(), "bt709".into(), "bt709".into()),
        "an SDR output is tagged BT.709"
    );
    assert!(
        first_frame_side_data(out)
            .iter()
            .all(|d| d["side_data_type"] != "Mastering display metadata"),
        "no HDR metadata on an SDR output"
    );
    let (w, h) = video_size(source);
    let reference = mean_luma(source, REFERENCE_TONE_MAP);
    let untouched = mean_luma(source, "");
    let got = mean_luma(out, &format!("scale={w}:{h}"));
    let off = |v: f64| (v - reference).abs() / reference;
    assert!(
        off(got) < 0.03,
        "mean luma {got:.1}, reference tone-mapped {reference:.1} (PQ as it is: {untouched:.1})"
    );
    // The check can tell: the PQ samples passed through differ by more than that.
    assert!(off(untouched) > 0.06, "{untouched:.1} vs {reference:.1}");
}

#[test]
fn hdr10_into_an_8_bit_preset_is_tone_mapped_to_sdr() {
    let env = TestEnv::new();
    let source = make_hdr10(&env.path("hdr10.mkv"), Clip::secs(0.5));
    let out = env.path("sdr.mp4");
    let run = env.run(run_args(
        &source,
        &out,
        0.25,
        &["--json", "--preset", "720p_h264", "--scale", "2"],
    ));
    run.assert_success();
    assert_tone_mapped(&source, &out, &run);
}

#[test]
fn hdr10_through_a_neural_engine_is_tone_mapped_too() {
    let env = TestEnv::new();
    let clip = Clip {
        width: 64,
        height: 48,
        fps: 24,
        duration_secs: 0.25,
    };
    let source = make_hdr10(&env.path("hdr10.mkv"), clip);
    let out = env.path("sdr.mkv");
    let preset = write_preset_file(&env, "ffv1_8bit.json", FFV1_8BIT_PRESET);
    let mut args = run_args(
        &source,
        &out,
        1.0,
        &["--json", "--engine", "animevideov3", "--scale", "2"],
    );
    args.extend(["--preset".into(), preset.into_os_string()]);
    args.extend([
        "--models-dir".into(),
        neural_support::models_dir().into_os_string(),
    ]);
    let run = env.run(args);
    run.assert_success();
    assert_tone_mapped(&source, &out, &run);
}

#[test]
fn hdr10_into_10_bit_h265_and_av1_stays_hdr_with_its_metadata() {
    let env = TestEnv::new();
    let source = make_hdr10(&env.path("hdr10.mkv"), Clip::secs(0.5));
    for (preset, extension) in [("h265_hq", "mp4"), ("av1_crf30", "mkv")] {
        let out = env.path(format!("{preset}.{extension}"));
        let run = env.run(run_args(
            &source,
            &out,
            0.25,
            &["--json", "--preset", preset, "--scale", "2"],
        ));
        run.assert_success();
        let out = single_output(&run.events());
        assert_eq!(
            colour_tags(&out),
            ("bt2020".into(), "smpte2084".into(), "bt2020nc".into()),
            "{preset}: HDR tags"
        );
        let side_data = first_frame_side_data(&out);
        let of_type = |t: &str| {
            side_data
                .iter()
                .find(|d| d["side_data_type"] == t)
                .cloned()
                .unwrap_or_else(|| panic!("{preset}: no {t} in {side_data:?}"))
        };
        let mastering = of_type("Mastering display metadata");
        let ratio = |v: &Value| -> f64 {
            let text = v.as_str().expect("a ratio");
            let (a, b) = text.split_once('/').expect("a/b");
            a.parse::<f64>().expect("number") / b.parse::<f64>().expect("number")
        };
        assert!((ratio(&mastering["max_luminance"]) - 1000.0).abs() < 1.0);
        assert!((ratio(&mastering["red_x"]) - 0.68).abs() < 0.001);
        assert!((ratio(&mastering["white_point_y"]) - 0.329).abs() < 0.001);
        let light = of_type("Content light level metadata");
        assert_eq!(
            (light["max_content"].as_u64(), light["max_average"].as_u64()),
            (Some(1000), Some(400)),
            "{preset}"
        );
    }
}
