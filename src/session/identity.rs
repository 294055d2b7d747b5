//! What makes two runs "the same session": the input file's identity (absolute path, size,
//! modification time) and every setting that changes the output. Their canonical JSON is
//! hashed into the session id, so the same file with the same settings always finds its
//! previous session, and any change (a new scale, an edited preset, a rewritten input) starts
//! a new one.

use std::fmt::Display;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fsutil;

/// Identity of an input file as it was when a session started.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub struct InputIdentity {
    /// Absolute path with symbolic links resolved.
    #[serde(with = "path_serde")]
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime_secs: i64,
    /// Nanoseconds within `mtime_secs`.
    pub mtime_nanos: u32,
}

impl InputIdentity {
    /// Reads the identity of the file at `path` (following symbolic links).
    pub fn of(path: &Path) -> io::Result<Self> {
        let path = std::fs::canonicalize(path)?;
        let meta = std::fs::metadata(&path)?;
        Ok(InputIdentity {
            path,
            size_bytes: meta.len(),
            mtime_secs: meta.mtime(),
            mtime_nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        })
    }
}

/// Every setting that changes the output of a job (and so belongs in the session id).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Settings {
    /// Engine name (`lanczos`, …).
    pub engine: String,
    /// Engine model, for engines that have several.
    pub model: Option<String>,
    /// Scale factor (1.5, 2, 3, 4); informative when `target_height` is set.
    pub scale: f64,
    /// Target output height instead of a scale factor.
    pub target_height: Option<u32>,
    pub denoise: Option<u8>,
    /// Preset name as the user gave it.
    pub preset: String,
    /// Digest of the resolved preset's content, so an edited preset is a different session.
    pub preset_digest: String,
    /// Target chunk length in seconds.
    pub chunk_seconds: f64,
    pub deinterlace: bool,
}

impl Settings {
    /// What differs from `other`, one entry per setting (this value first); each prints as a
    /// line such as `"scale: 2 → 3"`. Empty when the settings are the same.
    pub fn differences(&self, other: &Settings) -> Vec<SettingDifference> {
        use SettingValue::{Seconds, Text};
        let mut out = Vec::new();
        let mut diff = |setting: Setting, from: SettingValue, to: SettingValue| {
            if from != to {
                out.push(SettingDifference { setting, from, to });
            }
        };
        diff(
            Setting::Engine,
            Text(self.engine.clone()),
            Text(other.engine.clone()),
        );
        diff(Setting::Model, opt(&self.model), opt(&other.model));
        if self.scale.to_bits() != other.scale.to_bits() {
            diff(
                Setting::Scale,
                Text(self.scale.to_string()),
                Text(other.scale.to_string()),
            );
        }
        diff(
            Setting::TargetHeight,
            opt(&self.target_height),
            opt(&other.target_height),
        );
        diff(Setting::Denoise, opt(&self.denoise), opt(&other.denoise));
        if self.preset != other.preset {
            diff(
                Setting::Preset,
                Text(self.preset.clone()),
                Text(other.preset.clone()),
            );
        } else if self.preset_digest != other.preset_digest {
            diff(
                Setting::PresetContents(self.preset.clone()),
                Text(short(&self.preset_digest).to_owned()),
                Text(short(&other.preset_digest).to_owned()),
            );
        }
        if self.chunk_seconds.to_bits() != other.chunk_seconds.to_bits() {
            diff(
                Setting::ChunkLength,
                Seconds(self.chunk_seconds),
                Seconds(other.chunk_seconds),
            );
        }
        diff(
            Setting::Deinterlace,
            on_off(self.deinterlace),
            on_off(other.deinterlace),
        );
        out
    }
}

/// A setting that differs between two runs of a file, with its value in each (the earlier run
/// first). `Display` is the English line; the window words it in its own language.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingDifference {
    pub setting: Setting,
    pub from: SettingValue,
    pub to: SettingValue,
}

/// Which setting a [`SettingDifference`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Engine,
    Model,
    Scale,
    TargetHeight,
    Denoise,
    Preset,
    /// The preset of this name was edited (the values are content digests).
    PresetContents(String),
    ChunkLength,
    Deinterlace,
}

impl Setting {
    /// A stable id (`target-height`), for message catalogs.
    pub fn id(&self) -> &'static str {
        match self {
            Setting::Engine => "engine",
            Setting::Model => "model",
            Setting::Scale => "scale",
            Setting::TargetHeight => "target-height",
            Setting::Denoise => "denoise",
            Setting::Preset => "preset",
            Setting::PresetContents(_) => "preset-contents",
            Setting::ChunkLength => "chunk-length",
            Setting::Deinterlace => "deinterlace",
        }
    }
}

/// A setting's value as a [`SettingDifference`] shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    Text(String),
    /// Not set (no model, no target height, no denoise level).
    Unset,
    On,
    Off,
    Seconds(f64),
}

impl Display for SettingValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingValue::Text(text) => f.write_str(text),
            SettingValue::Unset => f.write_str("none"),
            SettingValue::On => f.write_str("on"),
            SettingValue::Off => f.write_str("off"),
            SettingValue::Seconds(seconds) => write!(f, "{seconds} s"),
        }
    }
}

impl Display for SettingDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (from, to) = (&self.from, &self.to);
        match &self.setting {
            Setting::PresetContents(preset) => {
                write!(f, "preset {preset}: contents changed ({from} → {to})")
            }
            setting => {
                let label = setting.id().replace('-', " ");
                write!(f, "{label}: {from} → {to}")
            }
        }
    }
}

fn opt<T: Display>(value: &Option<T>) -> SettingValue {
    match value {
        Some(v) => SettingValue::Text(v.to_string()),
        None => SettingValue::Unset,
    }
}

fn on_off(value: bool) -> SettingValue {
    if value {
        SettingValue::On
    } else {
        SettingValue::Off
    }
}

fn short(digest: &str) -> &str {
    digest.get(..8).unwrap_or(digest)
}

/// The session id of `input` processed with `settings`: the first 12 hex digits of the MD5 of
/// the canonical JSON (object keys sorted, no whitespace) of
/// `{"input": {path, size_bytes, mtime_secs, mtime_nanos}, "settings": {…}}`.
pub fn session_id(input: &InputIdentity, settings: &Settings) -> String {
    let canonical = canonical_identity_json(input, settings);
    let mut id = fsutil::md5_hex(canonical.as_bytes());
    id.truncate(12);
    id
}

/// The exact text hashed by [`session_id`].
pub fn canonical_identity_json(input: &InputIdentity, settings: &Settings) -> String {
    let mut root = serde_json::Map::new();
    // Serialising these plain structs cannot fail: paths go through `path_serde`, which
    // never errors, and there are no maps with non-string keys. Should it ever fail, the
    // Debug text still identifies the pair uniquely.
    match (serde_json::to_value(input), serde_json::to_value(settings)) {
        (Ok(i), Ok(s)) => {
            root.insert("input".to_owned(), i);
            root.insert("settings".to_owned(), s);
        }
        _ => return format!("{input:?}{settings:?}"),
    }
    let mut out = String::new();
    write_canonical(&Value::Object(root), &mut out);
    out
}

/// Writes `value` with object keys sorted bytewise at every level, independent of how
/// `serde_json` happens to order maps (its `preserve_order` feature would keep insertion
/// order, and any crate in the build may switch it on).
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Paths in JSON: a string when the path is UTF-8 (always, in practice), else the raw bytes
/// as an array of numbers, so that every path round-trips exactly.
pub(crate) mod path_serde {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        match path.to_str() {
            Some(text) => serializer.serialize_str(text),
            None => serializer.collect_seq(path.as_os_str().as_bytes()),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(crate) enum Repr {
        Text(String),
        Bytes(Vec<u8>),
    }

    impl Repr {
        pub(crate) fn into_path(self) -> PathBuf {
            match self {
                Repr::Text(text) => PathBuf::from(text),
                Repr::Bytes(bytes) => PathBuf::from(OsStr::from_bytes(&bytes)),
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
        Repr::deserialize(deserializer).map(Repr::into_path)
    }

    /// The same for `Option<PathBuf>`.
    pub mod option {
        use std::path::{Path, PathBuf};

        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        struct Wire<'a>(&'a Path);

        impl Serialize for Wire<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                super::serialize(self.0, serializer)
            }
        }

        pub fn serialize<S: Serializer>(
            path: &Option<PathBuf>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match path {
                Some(p) => serializer.serialize_some(&Wire(p)),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<PathBuf>, D::Error> {
            Option::<super::Repr>::deserialize(deserializer).map(|o| o.map(super::Repr::into_path))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_input() -> InputIdentity {
        InputIdentity {
            path: PathBuf::from("/videos/sample.mp4"),
            size_bytes: 123_456_789,
            mtime_secs: 1_737_061_612,
            mtime_nanos: 250_000_000,
        }
    }

    pub(crate) fn sample_settings() -> Settings {
        Settings {
            engine: "lanczos".to_owned(),
            model: None,
            scale: 2.0,
            target_height: None,
            denoise: None,
            preset: "h264_hq".to_owned(),
            preset_digest: "0123456789abcdef0123456789abcdef".to_owned(),
            chunk_seconds: 5.0,
            deinterlace: false,
        }
    }

    #[test]
    fn canonical_json_is_sorted_and_compact() {
        assert_eq!(
            canonical_identity_json(&sample_input(), &sample_settings()),
            concat!(
                r#"{"input":{"mtime_nanos":250000000,"mtime_secs":1737061612,"#,
                r#""path":"/videos/sample.mp4","size_bytes":123456789},"#,
                r#""settings":{"chunk_seconds":5.0,"deinterlace":false,"denoise":null,"#,
                r#""engine":"lanczos","model":null,"preset":"h264_hq","#,
                r#""preset_digest":"0123456789abcdef0123456789abcdef","scale":2.0,"#,
                r#""target_height":null}}"#
            )
        );
    }

    #[test]
    fn session_id_is_pinned() {
        // Computed once. If this changes, every existing session on users' disks is orphaned:
        // only change it together with a deliberate change of the id scheme.
        assert_eq!(
            session_id(&sample_input(), &sample_settings()),
            "6bfea1b3f0a0"
        );
    }

    #[test]
    fn session_id_shape() {
        let id = session_id(&sample_input(), &sample_settings());
        assert_eq!(id.len(), 12);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(id, session_id(&sample_input(), &sample_settings()));
    }

    #[test]
    fn every_setting_and_identity_field_changes_the_id() {
        let base_input = sample_input();
        let base = sample_settings();
        let base_id = session_id(&base_input, &base);

        let mut variants: Vec<(&str, Settings)> = Vec::new();
        let mut push = |name, f: &dyn Fn(&mut Settings)| {
            let mut s = sample_settings();
            f(&mut s);
            variants.push((name, s));
        };
        push("engine", &|s| s.engine = "realesrgan".to_owned());
        push("model", &|s| s.model = Some("animevideov3".to_owned()));
        push("scale", &|s| s.scale = 3.0);
        push("scale 1.5", &|s| s.scale = 1.5);
        push("target_height", &|s| s.target_height = Some(1080));
        push("denoise", &|s| s.denoise = Some(1));
        push("preset", &|s| s.preset = "av1_crf30".to_owned());
        push("preset_digest", &|s| s.preset_digest = "ff".repeat(16));
        push("chunk_seconds", &|s| s.chunk_seconds = 10.0);
        push("deinterlace", &|s| s.deinterlace = true);
        for (name, settings) in &variants {
            assert_ne!(session_id(&base_input, settings), base_id, "{name}");
            assert!(!base.differences(settings).is_empty(), "{name}");
        }

        let inputs = [
            InputIdentity {
                path: PathBuf::from("/videos/other.mp4"),
                ..sample_input()
            },
            InputIdentity {
                size_bytes: 1,
                ..sample_input()
            },
            InputIdentity {
                mtime_secs: 1,
                ..sample_input()
            },
            InputIdentity {
                mtime_nanos: 1,
                ..sample_input()
            },
        ];
        for input in &inputs {
            assert_ne!(session_id(input, &base), base_id, "{input:?}");
        }
    }

    #[test]
    fn differences_are_human_readable() {
        let a = sample_settings();
        assert!(a.differences(&a.clone()).is_empty());

        let mut b = sample_settings();
        b.scale = 3.0;
        b.preset = "av1_crf30".to_owned();
        b.preset_digest = "ff".repeat(16);
        b.model = Some("animevideov3".to_owned());
        b.chunk_seconds = 2.5;
        b.deinterlace = true;
        let lines = |d: Vec<SettingDifference>| -> Vec<String> {
            d.iter().map(ToString::to_string).collect()
        };
        assert_eq!(
            lines(a.differences(&b)),
            vec![
                "model: none → animevideov3",
                "scale: 2 → 3",
                "preset: h264_hq → av1_crf30",
                "chunk length: 5 s → 2.5 s",
                "deinterlace: off → on",
            ]
        );

        let mut c = sample_settings();
        c.preset_digest = "fedcba9876543210".to_owned();
        c.target_height = Some(1080);
        c.denoise = Some(2);
        assert_eq!(
            lines(a.differences(&c)),
            vec![
                "target height: none → 1080",
                "denoise: none → 2",
                "preset h264_hq: contents changed (01234567 → fedcba98)",
            ]
        );
    }

    #[test]
    fn identity_of_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clip.mp4");
        std::fs::write(&file, b"not really a video").unwrap();
        let id = InputIdentity::of(&file).unwrap();
        assert!(id.path.is_absolute());
        assert_eq!(id.size_bytes, 18);
        assert!(id.mtime_secs > 0);
        // Through a relative-looking path with `..` it is the same identity.
        let roundabout = dir.path().join("sub").join("..").join("clip.mp4");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(InputIdentity::of(&roundabout).unwrap(), id);
        assert!(InputIdentity::of(&dir.path().join("missing.mp4")).is_err());
    }

    #[test]
    fn non_utf8_paths_round_trip() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let input = InputIdentity {
            path: PathBuf::from(OsStr::from_bytes(b"/videos/caf\xe9.mp4")),
            ..sample_input()
        };
        let json = serde_json::to_string(&input).unwrap();
        let back: InputIdentity = serde_json::from_str(&json).unwrap();
        assert_eq!(back, input);
        assert_ne!(
            session_id(&input, &sample_settings()),
            session_id(&sample_input(), &sample_settings())
        );
    }
}
