//! Encoding presets: the built-in ones (`presets/*.json`, embedded in the binary) and the user's
//! (`$REFRAME_CONFIG_DIR/presets/*.json`, else the platform config dir), looked up by name or
//! path, validated, and turned into ffmpeg arguments.
//!
//! Presets are typed data, never ffmpeg argument strings: `schema` defines and checks the format,
//! `args` writes the ffmpeg options. This module owns where presets come from and how they are
//! found and saved, plus [`fit_to_height`], the one size rule every output follows.

mod args;
mod schema;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use args::{ContainerCaps, TextSubtitles, keyint_frames};
pub use schema::{
    AV1_SPEED_RANGE, Audio, AudioCodec, Container, HdrMode, OutputKind, PixFmt, Preset,
    RateControl, Rendition, RenditionSpec, Speed, VP9_SPEED_RANGE, Video, VideoCodec, X26X_SPEEDS,
};

/// Built-in presets, in the order they are listed.
const BUILTIN_SOURCES: &[(&str, &str)] = &[
    ("h264_hq", include_str!("../../presets/h264_hq.json")),
    ("h265_hq", include_str!("../../presets/h265_hq.json")),
    ("720p_h264", include_str!("../../presets/720p_h264.json")),
    ("1080p_h264", include_str!("../../presets/1080p_h264.json")),
    ("1080p_h265", include_str!("../../presets/1080p_h265.json")),
    ("2160p_h265", include_str!("../../presets/2160p_h265.json")),
    ("av1_crf30", include_str!("../../presets/av1_crf30.json")),
    (
        "lossless_ffv1",
        include_str!("../../presets/lossless_ffv1.json"),
    ),
    ("hls_720p", include_str!("../../presets/hls_720p.json")),
    ("hls_abr", include_str!("../../presets/hls_abr.json")),
    ("dash_1080p", include_str!("../../presets/dash_1080p.json")),
];

/// The preset used when none is chosen.
pub const DEFAULT_PRESET: &str = "h264_hq";

#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("unknown preset \"{name}\"; available: {}. Give a preset name or a path to a .json preset file", available.join(", "))]
    Unknown {
        name: String,
        available: Vec<String>,
    },
    /// `field` is a path into the JSON (`video.crf`, `renditions[1].height`), empty when the
    /// document itself is unreadable.
    #[error("preset \"{origin}\": {}{reason}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Invalid {
        origin: String,
        field: String,
        reason: String,
    },
    #[error("could not {action} preset file ({source}): {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where a listed preset comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetSource {
    Builtin,
    /// A user preset file (possibly shadowing a built-in of the same name).
    User(PathBuf),
}

/// All built-in presets, in listing order.
pub fn builtin() -> Vec<Preset> {
    BUILTIN_SOURCES
        .iter()
        .filter_map(
            |(name, json)| match Preset::parse(json, &format!("{name}.json (built-in)")) {
                Ok(p) => Some(p),
                // Covered by the tests; never expected in a release build.
                Err(e) => {
                    log::error!("{e}");
                    None
                }
            },
        )
        .collect()
}

fn builtin_by_name(name: &str) -> Option<Preset> {
    let (_, json) = BUILTIN_SOURCES.iter().find(|(n, _)| *n == name)?;
    Preset::parse(json, &format!("{name}.json (built-in)")).ok()
}

/// The user preset folder: `$REFRAME_CONFIG_DIR/presets`, else `<config dir>/reframe/presets`.
/// `None` when neither is known (no home directory).
pub fn user_presets_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REFRAME_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("presets"));
    }
    directories::ProjectDirs::from("", "", "reframe").map(|d| d.config_dir().join("presets"))
}

/// Built-ins and user presets, a user preset replacing the built-in of the same name (in the
/// built-in's place); other user presets follow, sorted by name. Broken user files are skipped
/// with a warning.
pub fn list_all() -> Vec<(Preset, PresetSource)> {
    list_all_in(user_presets_dir().as_deref())
}

/// Looks a preset up: a path to a `.json` file (anything ending in `.json` or containing a path
/// separator), else a user preset of that name, else a built-in.
pub fn resolve(name_or_path: &str) -> Result<Preset, PresetError> {
    resolve_in(name_or_path, user_presets_dir().as_deref())
}

/// Validates `p` and writes it as `<user presets dir>/<name>.json`, atomically; returns the path.
pub fn save_user(p: &Preset) -> Result<PathBuf, PresetError> {
    save_user_to(p, user_presets_dir().as_deref())
}

/// [`save_user`] into the user presets folder `dir` (`None`: there is none, an error).
pub fn save_user_to(p: &Preset, dir: Option<&Path>) -> Result<PathBuf, PresetError> {
    let dir = dir.ok_or_else(|| PresetError::Io {
        action: "locate the folder for",
        path: PathBuf::from("$REFRAME_CONFIG_DIR/presets"),
        source: io::Error::new(
            io::ErrorKind::NotFound,
            "no home directory; set REFRAME_CONFIG_DIR",
        ),
    })?;
    save_user_in(p, dir)
}

fn user_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
        .collect();
    files.sort();
    files
}

/// Reads and parses a preset file; a user preset's name must match its file stem so that
/// looking it up by name finds it.
fn load_file(path: &Path, require_stem_match: bool) -> Result<Preset, PresetError> {
    let json = fs::read_to_string(path).map_err(|source| PresetError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let origin = path.display().to_string();
    let preset = Preset::parse(&json, &origin)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if require_stem_match && preset.name != stem {
        return Err(PresetError::Invalid {
            origin,
            field: "name".into(),
            reason: format!(
                "\"{}\" does not match the file name; rename the file to {}.json or set \"name\": \"{stem}\"",
                preset.name, preset.name
            ),
        });
    }
    Ok(preset)
}

/// [`list_all`] with the user presets of `user_dir`.
pub fn list_all_in(user_dir: Option<&Path>) -> Vec<(Preset, PresetSource)> {
    let mut user: Vec<(Preset, PathBuf)> = Vec::new();
    for path in user_dir.map(user_files).unwrap_or_default() {
        match load_file(&path, true) {
            Ok(p) => user.push((p, path)),
            Err(e) => log::warn!("skipping user preset: {e}"),
        }
    }
    let mut all: Vec<(Preset, PresetSource)> = builtin()
        .into_iter()
        .map(|b| match user.iter().position(|(u, _)| u.name == b.name) {
            Some(i) => {
                let (p, path) = user.remove(i);
                (p, PresetSource::User(path))
            }
            None => (b, PresetSource::Builtin),
        })
        .collect();
    user.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    all.extend(
        user.into_iter()
            .map(|(p, path)| (p, PresetSource::User(path))),
    );
    all
}

fn looks_like_path(s: &str) -> bool {
    s.ends_with(".json") || s.contains('/') || s.contains(std::path::MAIN_SEPARATOR)
}

/// [`resolve`] with the user presets of `user_dir`.
pub fn resolve_in(name_or_path: &str, user_dir: Option<&Path>) -> Result<Preset, PresetError> {
    if looks_like_path(name_or_path) {
        return load_file(Path::new(name_or_path), false);
    }
    if let Some(dir) = user_dir {
        let path = dir.join(format!("{name_or_path}.json"));
        if path.is_file() {
            return load_file(&path, true);
        }
    }
    if let Some(p) = builtin_by_name(name_or_path) {
        return Ok(p);
    }
    let mut available: Vec<String> = list_all_in(user_dir)
        .into_iter()
        .map(|(p, _)| p.name)
        .collect();
    available.dedup();
    Err(PresetError::Unknown {
        name: name_or_path.to_string(),
        available,
    })
}

fn save_user_in(p: &Preset, dir: &Path) -> Result<PathBuf, PresetError> {
    p.validate()?;
    let io_err = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| PresetError::Io {
            action,
            path,
            source,
        }
    };
    fs::create_dir_all(dir).map_err(io_err("create the folder for", dir))?;
    let path = dir.join(format!("{}.json", p.name));
    crate::fsutil::write_atomic(&path, p.to_json_pretty().as_bytes())
        .map_err(io_err("write", &path))?;
    Ok(path)
}

/// Output size for a source of display size `w`×`h` fitted to `target_h`: aspect ratio kept,
/// both dimensions even (4:2:0 needs it) and at least 2. Unless `allow_upscale`, the result
/// never exceeds the source (rounded down to even).
pub fn fit_to_height(w: u32, h: u32, target_h: u32, allow_upscale: bool) -> (u32, u32) {
    let even_down = |x: u64| (x & !1).max(2);
    if w == 0 || h == 0 {
        return (
            even_down(u64::from(w)) as u32,
            even_down(u64::from(h)) as u32,
        );
    }
    let (w64, h64) = (u64::from(w), u64::from(h));
    let mut out_h = u64::from(target_h);
    if !allow_upscale {
        out_h = out_h.min(h64);
    }
    let out_h = even_down(out_h);
    // Width to the nearest even number: round(w * out_h / h / 2) * 2, in integers.
    let mut out_w = ((w64 * out_h + h64) / (2 * h64) * 2).max(2);
    if !allow_upscale && out_w > w64 {
        out_w = even_down(w64);
    }
    (
        out_w.min(u64::from(u32::MAX)) as u32,
        out_h.min(u64::from(u32::MAX)) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_BUILTINS: &[&str] = &[
        "h264_hq",
        "h265_hq",
        "720p_h264",
        "1080p_h264",
        "1080p_h265",
        "2160p_h265",
        "av1_crf30",
        "lossless_ffv1",
        "hls_720p",
        "hls_abr",
        "dash_1080p",
    ];

    #[test]
    fn hdr_mode_is_optional_and_checked() {
        let with = |hdr: &str| {
            let json = format!(
                r#"{{"name":"t","description":"t","output":{{"kind":"file","container":"mkv"}},
                    "video":{{"codec":"ffv1","pix_fmt":"yuv420p"{hdr}}},"audio":{{"mode":"copy"}}}}"#
            );
            Preset::parse(&json, "test")
        };
        assert_eq!(with("").expect("parses").video.hdr, HdrMode::Auto);
        let keep = with(r#","hdr":"keep""#).expect("parses");
        assert_eq!(keep.video.hdr, HdrMode::Keep);
        assert!(keep.to_json_pretty().contains(r#""hdr": "keep""#));
        // Auto is the default and not written, so existing presets keep their digest.
        assert!(!with("").expect("parses").to_json_pretty().contains("hdr"));
        let err = with(r#","hdr":"sdr""#).expect_err("unknown mode");
        assert!(err.to_string().contains("hdr"), "{err}");
    }

    #[test]
    fn every_builtin_parses_validates_and_matches_its_file_name() {
        let all = builtin();
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ALL_BUILTINS);
        for (p, (file_stem, json)) in all.iter().zip(BUILTIN_SOURCES) {
            assert_eq!(&p.name, file_stem);
            p.validate().expect("built-in validates");
            assert!(!p.description.is_empty(), "{} has a description", p.name);
            // What save_user writes reads back as the same preset.
            let reparsed = Preset::parse(&p.to_json_pretty(), "roundtrip").expect("roundtrip");
            assert_eq!(&reparsed, p);
            assert_eq!(Preset::parse(json, "again").expect("parses"), reparsed);
        }
    }

    #[test]
    fn builtin_key_settings() {
        let p = |n: &str| builtin_by_name(n).expect("exists");
        assert_eq!(p("720p_h264").height, Some(720));
        assert_eq!(p("2160p_h265").height, Some(2160));
        let abr: Vec<Option<u32>> = p("hls_abr").renditions().iter().map(|r| r.height).collect();
        assert_eq!(abr, vec![Some(720), Some(480), Some(360)]);
        assert_eq!(p("av1_crf30").renditions()[0].rate, RateControl::Crf(30));
        assert_eq!(p("h264_hq").video.codec, VideoCodec::H264);
        assert_eq!(p("lossless_ffv1").video.codec, VideoCodec::Ffv1);
    }

    #[test]
    fn digest_is_stable_and_tracks_settings() {
        let a = builtin_by_name("h264_hq").expect("exists");
        let d = a.digest();
        assert_eq!(d.len(), 32);
        assert!(
            d.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        // Whitespace and key order in the file do not matter.
        let reordered = Preset::parse(&a.to_json_pretty().replace('\n', " "), "x").expect("parses");
        assert_eq!(reordered.digest(), d);
        let mut b = a.clone();
        b.description = "reworded".into();
        assert_eq!(b.digest(), d);
        b.video.crf = Some(19);
        assert_ne!(b.digest(), d);
        let digests: std::collections::HashSet<String> =
            builtin().iter().map(Preset::digest).collect();
        assert_eq!(digests.len(), ALL_BUILTINS.len());
    }

    #[test]
    fn numeric_speed_strings_are_normalised() {
        let json = r#"{"name":"a","output":{"kind":"file","container":"mkv"},
            "video":{"codec":"av1","speed":"8","crf":35,"pix_fmt":"yuv420p"},"audio":{"mode":"copy"}}"#;
        let p = Preset::parse(json, "a.json").expect("valid");
        assert_eq!(p.video.speed, Some(Speed::Number(8)));
    }

    // ---- validation errors name the field ---------------------------------------------------

    const BASE: &str = r#"{"name":"x","description":"d","output":{"kind":"file","container":"mp4"},
        "video":{"codec":"h264","speed":"slow","crf":18,"pix_fmt":"yuv420p"},"audio":{"mode":"copy"}}"#;

    /// BASE with `pointer` (a JSON pointer) set to `value` (or removed when `None`).
    fn with(pointer: &str, value: Option<serde_json::Value>) -> String {
        let mut v: serde_json::Value = serde_json::from_str(BASE).expect("base json");
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        let obj = v
            .pointer_mut(parent)
            .and_then(|p| p.as_object_mut())
            .expect("parent object");
        match value {
            Some(x) => obj.insert(key.to_string(), x),
            None => obj.remove(key),
        };
        v.to_string()
    }

    fn error_of(json: &str) -> (String, String) {
        match Preset::parse(json, "x.json") {
            Err(PresetError::Invalid {
                origin,
                field,
                reason,
            }) => {
                assert_eq!(origin, "x.json");
                (field, reason)
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn base_is_valid() {
        Preset::parse(BASE, "x.json").expect("valid");
    }

    #[test]
    fn crf_out_of_range_message() {
        let err =
            Preset::parse(&with("/video/crf", Some(70.into())), "x.json").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "preset \"x.json\": video.crf: 70 is out of range 0–51 for h264"
        );
    }

    #[test]
    fn each_invalid_field_is_named() {
        use serde_json::json;
        let cases: Vec<(String, &str)> = vec![
            (with("/name", Some(json!("../evil"))), "name"),
            (with("/name", None), "name"),
            (with("/bogus", Some(json!(1))), "bogus"),
            (with("/height", Some(json!(721))), "height"),
            (with("/height", Some(json!(-5))), "height"),
            (with("/height", Some(json!("720"))), "height"),
            (
                with("/output/container", Some(json!("avi"))),
                "output.container",
            ),
            (with("/output/kind", Some(json!("rtmp"))), "output.kind"),
            (
                with("/output/segment_seconds", Some(json!(6))),
                "output.segment_seconds",
            ),
            (with("/video/codec", Some(json!("h266"))), "video.codec"),
            (with("/video/codec", Some(json!("ffv1"))), "video.codec"),
            (with("/video/crf", Some(json!(-1))), "video.crf"),
            (with("/video/crf", None), "video"),
            (
                with("/video/bitrate_kbps", Some(json!(4000))),
                "video.bitrate_kbps",
            ),
            (
                with("/video/bitrate_kbps", Some(json!(5))),
                "video.bitrate_kbps",
            ),
            (with("/video/lossless", Some(json!(true))), "video.crf"),
            (
                with("/video/maxrate_kbps", Some(json!(10))),
                "video.maxrate_kbps",
            ),
            (with("/video/speed", Some(json!("warp"))), "video.speed"),
            (with("/video/speed", Some(json!(3))), "video.speed"),
            (with("/video/speed", None), "video.speed"),
            (
                with("/video/pix_fmt", Some(json!("yuv410p"))),
                "video.pix_fmt",
            ),
            (
                with("/video/pix_fmt", Some(json!("yuv420p12le"))),
                "video.pix_fmt",
            ),
            (
                with("/video/keyint_seconds", Some(json!(0))),
                "video.keyint_seconds",
            ),
            (with("/video/extra", Some(json!("-vf evil"))), "video.extra"),
            (
                with("/renditions", Some(json!([{"height": 720, "crf": 20}]))),
                "renditions",
            ),
            (with("/audio/mode", Some(json!("remux"))), "audio.mode"),
            (with("/audio/mode", Some(json!("encode"))), "audio.codec"),
            (with("/audio/codec", Some(json!("aac"))), "audio.codec"),
        ];
        for (json, expected) in cases {
            let (field, reason) = error_of(&json);
            assert_eq!(field, expected, "for {json}: {reason}");
            assert!(!reason.is_empty());
        }
    }

    #[test]
    fn codec_specific_rules() {
        use serde_json::json;
        let av1 = |speed: serde_json::Value, crf: u32| {
            let mut v: serde_json::Value = serde_json::from_str(BASE).expect("json");
            v["video"] =
                json!({"codec": "av1", "speed": speed, "crf": crf, "pix_fmt": "yuv420p10le"});
            v.to_string()
        };
        assert!(Preset::parse(&av1(json!(6), 30), "a").is_ok());
        assert!(Preset::parse(&av1(json!("13"), 63), "a").is_ok());
        assert_eq!(error_of(&av1(json!(14), 30)).0, "video.speed");
        assert_eq!(error_of(&av1(json!("slow"), 30)).0, "video.speed");
        assert_eq!(error_of(&av1(json!(6), 64)).0, "video.crf");
        assert_eq!(error_of(&av1(json!(6), 0)).0, "video.crf");

        let mut v: serde_json::Value = serde_json::from_str(BASE).expect("json");
        v["output"] = json!({"kind": "file", "container": "mkv"});
        v["video"] = json!({"codec": "ffv1", "pix_fmt": "yuv422p10le", "crf": 0});
        assert_eq!(error_of(&v.to_string()).0, "video.crf");
        v["video"] = json!({"codec": "ffv1", "pix_fmt": "yuv422p10le", "speed": "slow"});
        assert_eq!(error_of(&v.to_string()).0, "video.speed");
        v["video"] = json!({"codec": "ffv1", "pix_fmt": "yuv422p10le"});
        assert!(Preset::parse(&v.to_string(), "f").is_ok());
        v["audio"] = json!({"mode": "encode", "codec": "flac", "bitrate_kbps": 900});
        assert_eq!(error_of(&v.to_string()).0, "audio.bitrate_kbps");

        v["output"] = json!({"kind": "file", "container": "webm"});
        v["video"] = json!({"codec": "vp9", "speed": 9, "crf": 30, "pix_fmt": "yuv420p"});
        v["audio"] = json!({"mode": "encode", "codec": "opus", "bitrate_kbps": 128});
        assert_eq!(error_of(&v.to_string()).0, "video.speed");
        v["audio"] = json!({"mode": "encode", "codec": "aac", "bitrate_kbps": 128});
        v["video"]["speed"] = json!(2);
        assert_eq!(error_of(&v.to_string()).0, "audio.codec");
    }

    #[test]
    fn streaming_rules() {
        use serde_json::json;
        let hls = builtin_by_name("hls_abr").expect("exists");
        let mut v = serde_json::to_value(&hls).expect("value");
        v["audio"] = json!({"mode": "copy"});
        assert_eq!(error_of(&v.to_string()).0, "audio.mode");

        let mut v = serde_json::to_value(&hls).expect("value");
        v["renditions"][1]["height"] = json!(720);
        assert_eq!(error_of(&v.to_string()).0, "renditions[1].height");
        let mut v = serde_json::to_value(&hls).expect("value");
        v["renditions"][2]["crf"] = json!(23);
        assert_eq!(error_of(&v.to_string()).0, "renditions[2].bitrate_kbps");
        let mut v = serde_json::to_value(&hls).expect("value");
        v["renditions"][0]["maxrate_kbps"] = json!(100);
        assert_eq!(error_of(&v.to_string()).0, "renditions[0].maxrate_kbps");
        let mut v = serde_json::to_value(&hls).expect("value");
        v["renditions"][0]["size"] = json!(1);
        assert_eq!(error_of(&v.to_string()).0, "renditions[0].size");
        let mut v = serde_json::to_value(&hls).expect("value");
        v["video"]["crf"] = json!(20);
        assert_eq!(error_of(&v.to_string()).0, "video.crf");
        let mut v = serde_json::to_value(&hls).expect("value");
        v["height"] = json!(720);
        assert_eq!(error_of(&v.to_string()).0, "height");
        let mut v = serde_json::to_value(&hls).expect("value");
        v["video"]
            .as_object_mut()
            .expect("object")
            .remove("keyint_seconds");
        assert_eq!(error_of(&v.to_string()).0, "video.keyint_seconds");
        let mut v = serde_json::to_value(&hls).expect("value");
        v["output"]["segment_seconds"] = json!(5);
        assert_eq!(error_of(&v.to_string()).0, "output.segment_seconds");
        let mut v = serde_json::to_value(&hls).expect("value");
        v["video"]["codec"] = json!("vp9");
        assert_eq!(error_of(&v.to_string()).0, "video.codec");
    }

    #[test]
    fn not_json_is_reported() {
        let err = Preset::parse("{ nope", "x.json").expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with("preset \"x.json\": not valid JSON"),
            "{err}"
        );
        assert_eq!(error_of("[1]").0, "(preset)");
    }

    // ---- fit_to_height ----------------------------------------------------------------------

    #[test]
    fn fit_to_height_cases() {
        assert_eq!(fit_to_height(1920, 1080, 720, false), (1280, 720));
        assert_eq!(fit_to_height(640, 360, 1080, true), (1920, 1080));
        // never upscale unless asked
        assert_eq!(fit_to_height(640, 360, 1080, false), (640, 360));
        // 4:3 SD
        assert_eq!(fit_to_height(720, 540, 1080, true), (1440, 1080));
        // odd source sizes come out even
        assert_eq!(fit_to_height(853, 479, 720, true), (1282, 720));
        assert_eq!(fit_to_height(853, 479, 720, false), (852, 478));
        assert_eq!(fit_to_height(321, 241, 240, false), (320, 240));
        // odd target height
        assert_eq!(fit_to_height(1920, 1080, 721, false), (1280, 720));
        // portrait
        assert_eq!(fit_to_height(1080, 1920, 720, false), (406, 720));
        assert_eq!(fit_to_height(720, 1280, 2160, true), (1216, 2160));
        assert_eq!(fit_to_height(719, 1281, 1281, false), (718, 1280));
        // degenerate input never panics and stays even
        assert_eq!(fit_to_height(0, 0, 720, true), (2, 2));
        assert_eq!(fit_to_height(1, 1, 0, true), (2, 2));
        assert_eq!(
            fit_to_height(u32::MAX, u32::MAX, u32::MAX, true),
            (u32::MAX - 1, u32::MAX - 1)
        );
        for (w, h) in [(1920, 1080), (853, 479), (1080, 1920), (333, 777)] {
            for t in [144, 360, 481, 720, 1080, 2160] {
                for up in [false, true] {
                    let (ow, oh) = fit_to_height(w, h, t, up);
                    assert!(ow % 2 == 0 && oh % 2 == 0, "{w}x{h}->{t}: {ow}x{oh}");
                    if !up {
                        assert!(ow <= w && oh <= h, "{w}x{h}->{t}: {ow}x{oh}");
                    }
                    let aspect_in = f64::from(w) / f64::from(h);
                    let aspect_out = f64::from(ow) / f64::from(oh);
                    assert!(
                        (aspect_out / aspect_in - 1.0).abs() < 0.02,
                        "{w}x{h}->{t}: {ow}x{oh}"
                    );
                }
            }
        }
    }

    // ---- user presets -----------------------------------------------------------------------

    fn user_preset(name: &str, crf: u32) -> String {
        with("/name", Some(name.into())).replace("\"crf\":18", &format!("\"crf\":{crf}"))
    }

    #[test]
    fn user_preset_shadows_builtin_and_lists_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("h264_hq.json"), user_preset("h264_hq", 16)).expect("write");
        fs::write(dir.path().join("zz_mine.json"), user_preset("zz_mine", 22)).expect("write");
        fs::write(dir.path().join("aa_mine.json"), user_preset("aa_mine", 22)).expect("write");
        fs::write(dir.path().join("broken.json"), "{ not json").expect("write");
        fs::write(dir.path().join("notes.txt"), "ignored").expect("write");

        let all = list_all_in(Some(dir.path()));
        let names: Vec<&str> = all.iter().map(|(p, _)| p.name.as_str()).collect();
        let mut expected = ALL_BUILTINS.to_vec();
        expected.extend(["aa_mine", "zz_mine"]);
        assert_eq!(names, expected);
        assert_eq!(
            all[0].1,
            PresetSource::User(dir.path().join("h264_hq.json"))
        );
        assert_eq!(all[0].0.video.crf, Some(16));
        assert_eq!(all[1].1, PresetSource::Builtin);

        assert_eq!(
            resolve_in("h264_hq", Some(dir.path()))
                .expect("found")
                .video
                .crf,
            Some(16)
        );
        assert_eq!(
            resolve_in("h264_hq", None).expect("found").video.crf,
            Some(18)
        );
        assert_eq!(
            resolve_in("zz_mine", Some(dir.path())).expect("found").name,
            "zz_mine"
        );
        match resolve_in("broken", Some(dir.path())) {
            Err(PresetError::Invalid { origin, .. }) => assert!(origin.ends_with("broken.json")),
            other => panic!("expected Invalid, got {other:?}"),
        }
        match resolve_in("nope", Some(dir.path())) {
            Err(PresetError::Unknown { name, available }) => {
                assert_eq!(name, "nope");
                assert!(available.contains(&"zz_mine".to_string()));
                assert!(available.contains(&"dash_1080p".to_string()));
                assert!(!available.contains(&"broken".to_string()));
            }
            other => panic!("expected Unknown, got {other:?}"),
        }
    }

    #[test]
    fn user_file_name_must_match_preset_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("mine.json"), user_preset("other", 20)).expect("write");
        match resolve_in("mine", Some(dir.path())) {
            Err(PresetError::Invalid { field, .. }) => assert_eq!(field, "name"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(list_all_in(Some(dir.path())).len(), ALL_BUILTINS.len());
    }

    #[test]
    fn resolve_by_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("anything.json");
        fs::write(&path, user_preset("custom", 21)).expect("write");
        let p = resolve_in(path.to_str().expect("utf-8"), None).expect("loads");
        assert_eq!(p.name, "custom");
        match resolve_in(
            dir.path().join("missing.json").to_str().expect("utf-8"),
            None,
        ) {
            Err(e @ PresetError::Io { .. }) => {
                assert!(e.to_string().ends_with("missing.json"), "{e}")
            }
            other => panic!("expected Io, got {other:?}"),
        }
    }

    #[test]
    fn save_user_round_trips_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let presets = dir.path().join("presets");
        let mut p = builtin_by_name("1080p_h265").expect("exists");
        p.name = "my_1080p".into();
        p.video.crf = Some(18);
        let path = save_user_in(&p, &presets).expect("saved");
        assert_eq!(path, presets.join("my_1080p.json"));
        assert_eq!(resolve_in("my_1080p", Some(&presets)).expect("found"), p);
        // overwrite in place, no temp files left behind
        p.video.crf = Some(17);
        save_user_in(&p, &presets).expect("saved again");
        assert_eq!(
            resolve_in("my_1080p", Some(&presets))
                .expect("found")
                .video
                .crf,
            Some(17)
        );
        let files: Vec<_> = fs::read_dir(&presets).expect("dir").collect();
        assert_eq!(files.len(), 1);

        p.video.crf = Some(99);
        assert!(matches!(
            save_user_in(&p, &presets),
            Err(PresetError::Invalid { .. })
        ));
        p.video.crf = Some(18);
        p.name = "../escape".into();
        assert!(matches!(
            save_user_in(&p, &presets),
            Err(PresetError::Invalid { .. })
        ));
    }
}
