//! The preset file format: typed serde structs, parsing with errors that name the offending
//! field, and the semantic checks (ranges, codec/container and codec/pixel-format pairs) that
//! make every accepted preset produce a working ffmpeg command.
//!
//! Nothing here is free-form: every value a preset can hold maps onto one ffmpeg option that
//! `args.rs` knows how to write, so no text from a preset file reaches the command line as is.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::PresetError;

/// A validated encoding preset: what to encode the upscaled video into and how.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Identifier used on the command line; also the user preset's file stem.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub output: OutputKind,
    pub video: Video,
    /// Fit the engine's output to this height (aspect kept). Not with `renditions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// ABR ladder for HLS/DASH: one encode per entry, highest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<RenditionSpec>,
    pub audio: Audio,
}

/// What the package step writes.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OutputKind {
    /// One file in the given container.
    File { container: Container },
    /// An HLS folder: master playlist, media playlists and segments.
    Hls { segment_seconds: f64 },
    /// A DASH folder: manifest and segments.
    Dash { segment_seconds: f64 },
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    Mp4,
    Mkv,
    Webm,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Mkv => "mkv",
            Container::Webm => "webm",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    H265,
    Av1,
    Ffv1,
    Vp9,
}

impl VideoCodec {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
            VideoCodec::Av1 => "av1",
            VideoCodec::Ffv1 => "ffv1",
            VideoCodec::Vp9 => "vp9",
        }
    }

    /// The ffmpeg encoder used for this codec.
    pub fn encoder(self) -> &'static str {
        match self {
            VideoCodec::H264 => "libx264",
            VideoCodec::H265 => "libx265",
            VideoCodec::Av1 => "libsvtav1",
            VideoCodec::Ffv1 => "ffv1",
            VideoCodec::Vp9 => "libvpx-vp9",
        }
    }

    /// Inclusive CRF range, or `None` when the codec has no CRF mode.
    pub fn crf_range(self) -> Option<(u32, u32)> {
        match self {
            VideoCodec::H264 | VideoCodec::H265 => Some((0, 51)),
            // ffmpeg 5.1's libsvtav1 wrapper treats crf 0 as "not set".
            VideoCodec::Av1 => Some((1, 63)),
            VideoCodec::Vp9 => Some((0, 63)),
            VideoCodec::Ffv1 => None,
        }
    }

    pub fn supports_pix_fmt(self, pix_fmt: PixFmt) -> bool {
        use PixFmt::*;
        match self {
            VideoCodec::H264 => matches!(
                pix_fmt,
                Yuv420p | Yuv422p | Yuv444p | Yuv420p10le | Yuv422p10le | Yuv444p10le
            ),
            VideoCodec::Av1 => matches!(pix_fmt, Yuv420p | Yuv420p10le),
            VideoCodec::H265 | VideoCodec::Ffv1 | VideoCodec::Vp9 => true,
        }
    }
}

/// Pixel formats a preset may ask for (each is checked against the codec).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum PixFmt {
    Yuv420p,
    Yuv422p,
    Yuv444p,
    Yuv420p10le,
    Yuv422p10le,
    Yuv444p10le,
    Yuv420p12le,
    Yuv422p12le,
    Yuv444p12le,
}

impl PixFmt {
    pub fn as_str(self) -> &'static str {
        match self {
            PixFmt::Yuv420p => "yuv420p",
            PixFmt::Yuv422p => "yuv422p",
            PixFmt::Yuv444p => "yuv444p",
            PixFmt::Yuv420p10le => "yuv420p10le",
            PixFmt::Yuv422p10le => "yuv422p10le",
            PixFmt::Yuv444p10le => "yuv444p10le",
            PixFmt::Yuv420p12le => "yuv420p12le",
            PixFmt::Yuv422p12le => "yuv422p12le",
            PixFmt::Yuv444p12le => "yuv444p12le",
        }
    }

    pub fn bit_depth(self) -> u32 {
        match self {
            PixFmt::Yuv420p | PixFmt::Yuv422p | PixFmt::Yuv444p => 8,
            PixFmt::Yuv420p10le | PixFmt::Yuv422p10le | PixFmt::Yuv444p10le => 10,
            PixFmt::Yuv420p12le | PixFmt::Yuv422p12le | PixFmt::Yuv444p12le => 12,
        }
    }
}

/// Encoder speed: a name (x264/x265 presets) or a number (svt-av1 preset, vp9 cpu-used).
/// A numeric string ("6") is accepted for the numeric kinds and stored as a number.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum Speed {
    Number(u32),
    Name(String),
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Number(n) => write!(f, "{n}"),
            Speed::Name(s) => write!(f, "\"{s}\""),
        }
    }
}

/// x264 and x265 share these preset names, fastest first.
pub const X26X_SPEEDS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];
/// svt-av1 presets (0 slowest).
pub const AV1_SPEED_RANGE: (u32, u32) = (0, 13);
/// libvpx-vp9 `-cpu-used` with `-deadline good` (0 slowest).
pub const VP9_SPEED_RANGE: (u32, u32) = (0, 5);

/// Video encoding settings. Rate control: exactly one of `crf`, `bitrate_kbps`, `lossless`
/// (none for ffv1, which is always lossless; none when `renditions` carry their own).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Video {
    pub codec: VideoCodec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crf: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<u32>,
    /// Peak bitrate cap (VBV) for crf or bitrate mode; the buffer is twice this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxrate_kbps: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub lossless: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Speed>,
    pub pix_fmt: PixFmt,
    /// Fixed GOP length; also disables scene-cut keyframes. Required for HLS/DASH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyint_seconds: Option<f64>,
    /// What happens to an HDR source (PQ or HLG); nothing changes for SDR sources.
    #[serde(default, skip_serializing_if = "HdrMode::is_auto")]
    pub hdr: HdrMode,
}

/// HDR sources: tone-mapped to BT.709 SDR, or kept HDR with their signalling.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum HdrMode {
    /// Tone-map for 8-bit pixel formats (which cannot hold HDR without banding), keep HDR
    /// for 10- and 12-bit ones.
    #[default]
    Auto,
    /// Always tone-map to BT.709 SDR.
    Tonemap,
    /// Always keep HDR: transfer, primaries, matrix, mastering display, light levels.
    Keep,
}

impl HdrMode {
    fn is_auto(&self) -> bool {
        *self == HdrMode::Auto
    }

    /// Whether an HDR source encoded to `pix_fmt` is tone-mapped to SDR.
    pub fn tone_maps(self, pix_fmt: PixFmt) -> bool {
        match self {
            HdrMode::Auto => pix_fmt.bit_depth() <= 8,
            HdrMode::Tonemap => true,
            HdrMode::Keep => false,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One rung of an ABR ladder as written in the preset file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RenditionSpec {
    pub height: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crf: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxrate_kbps: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum Audio {
    /// Copy the source's audio streams unchanged.
    Copy,
    /// Re-encode; `bitrate_kbps` for aac and opus, none for flac.
    Encode {
        codec: AudioCodec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bitrate_kbps: Option<u32>,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    Aac,
    Opus,
    Flac,
}

impl AudioCodec {
    pub fn as_str(self) -> &'static str {
        match self {
            AudioCodec::Aac => "aac",
            AudioCodec::Opus => "opus",
            AudioCodec::Flac => "flac",
        }
    }
}

/// How one encode is rate controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateControl {
    Crf(u32),
    BitrateKbps(u32),
    Lossless,
}

/// One video encode of the preset: the single output, or one rung of an ABR ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    /// Output height; `None` keeps the engine's output size.
    pub height: Option<u32>,
    pub rate: RateControl,
    pub maxrate_kbps: Option<u32>,
}

const HEIGHT_RANGE: (u32, u32) = (16, 4320);
const BITRATE_KBPS_RANGE: (u32, u32) = (50, 200_000);
const KEYINT_SECONDS_RANGE: (f64, f64) = (0.1, 20.0);
const SEGMENT_SECONDS_RANGE: (f64, f64) = (1.0, 60.0);
const MAX_RENDITIONS: usize = 8;
const NAME_MAX_CHARS: usize = 64;

/// A field path and what is wrong with it, before the preset's origin is attached.
type Located = (String, String);

impl Preset {
    /// Parses and validates a preset; `origin` (file name or path) is quoted in errors.
    /// Numeric speeds given as strings are normalised to numbers.
    pub fn parse(json: &str, origin: &str) -> Result<Preset, PresetError> {
        let invalid = |(field, reason): Located| PresetError::Invalid {
            origin: origin.to_string(),
            field,
            reason,
        };
        let value: Value = serde_json::from_str(json)
            .map_err(|e| invalid((String::new(), format!("not valid JSON: {e}"))))?;
        // The walk comes first: it names the field, and it also rejects unknown keys inside the
        // tagged enums (`output`, `audio`), where serde's deny_unknown_fields does not apply.
        locate_shape_error(&value).map_err(invalid)?;
        let mut preset: Preset =
            serde_json::from_value(value).map_err(|e| invalid((String::new(), e.to_string())))?;
        preset.check().map_err(invalid)?;
        preset.normalize();
        Ok(preset)
    }

    /// Checks every rule a parsed preset must satisfy; errors use the preset's name as origin.
    pub fn validate(&self) -> Result<(), PresetError> {
        self.check()
            .map_err(|(field, reason)| PresetError::Invalid {
                origin: self.name.clone(),
                field,
                reason,
            })
    }

    /// Stores numeric speeds as numbers, so equal presets have equal canonical JSON.
    fn normalize(&mut self) {
        if matches!(self.video.codec, VideoCodec::Av1 | VideoCodec::Vp9)
            && let Some(Speed::Name(s)) = &self.video.speed
            && let Ok(n) = s.trim().parse::<u32>()
        {
            self.video.speed = Some(Speed::Number(n));
        }
    }

    fn check(&self) -> Result<(), Located> {
        check_name(&self.name)?;
        self.check_output()?;
        self.check_size_and_ladder()?;
        self.check_video()?;
        self.check_audio()
    }

    fn check_output(&self) -> Result<(), Located> {
        let codec = self.video.codec;
        match self.output {
            OutputKind::File { container } => {
                let ok = match container {
                    Container::Mkv => true,
                    Container::Mp4 => codec != VideoCodec::Ffv1,
                    Container::Webm => matches!(codec, VideoCodec::Vp9 | VideoCodec::Av1),
                };
                if !ok {
                    let hint = match container {
                        Container::Webm => "use vp9 or av1",
                        _ => "use mkv for ffv1",
                    };
                    return Err(field(
                        "video.codec",
                        format!(
                            "{} cannot go in {} ({hint})",
                            codec.as_str(),
                            container.as_str()
                        ),
                    ));
                }
            }
            OutputKind::Hls { segment_seconds } | OutputKind::Dash { segment_seconds } => {
                let kind = self.output_name();
                let codec_ok = match self.output {
                    OutputKind::Hls { .. } => matches!(codec, VideoCodec::H264 | VideoCodec::H265),
                    _ => codec != VideoCodec::Ffv1,
                };
                if !codec_ok {
                    return Err(field(
                        "video.codec",
                        format!("{} is not supported for {kind} output", codec.as_str()),
                    ));
                }
                check_f64_range(
                    "output.segment_seconds",
                    segment_seconds,
                    SEGMENT_SECONDS_RANGE,
                )?;
                let Some(keyint) = self.video.keyint_seconds else {
                    return Err(field(
                        "video.keyint_seconds",
                        format!(
                            "required for {kind} output so that segments and renditions cut on the same keyframes"
                        ),
                    ));
                };
                check_f64_range("video.keyint_seconds", keyint, KEYINT_SECONDS_RANGE)?;
                let ratio = segment_seconds / keyint;
                if (ratio - ratio.round()).abs() > 1e-6 || ratio < 1.0 - 1e-9 {
                    return Err(field(
                        "output.segment_seconds",
                        format!(
                            "{segment_seconds} is not a multiple of video.keyint_seconds ({keyint}); segments must start on keyframes"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_video(&self) -> Result<(), Located> {
        let v = &self.video;
        let codec = v.codec;
        if !codec.supports_pix_fmt(v.pix_fmt) {
            return Err(field(
                "video.pix_fmt",
                format!(
                    "{} is not supported by {} ({})",
                    v.pix_fmt.as_str(),
                    codec.as_str(),
                    codec.encoder()
                ),
            ));
        }
        check_speed(codec, v.speed.as_ref())?;
        if let Some(k) = v.keyint_seconds {
            check_f64_range("video.keyint_seconds", k, KEYINT_SECONDS_RANGE)?;
        }
        if codec == VideoCodec::Ffv1 {
            for (name, set) in [
                ("video.crf", v.crf.is_some()),
                ("video.bitrate_kbps", v.bitrate_kbps.is_some()),
                ("video.maxrate_kbps", v.maxrate_kbps.is_some()),
            ] {
                if set {
                    return Err(field(
                        name,
                        "ffv1 is always lossless; remove this field".into(),
                    ));
                }
            }
            return Ok(());
        }
        if v.lossless && matches!(codec, VideoCodec::Av1) {
            return Err(field(
                "video.lossless",
                "libsvtav1 has no lossless mode; use ffv1, h264, h265 or vp9".into(),
            ));
        }
        if !self.renditions.is_empty() {
            for (name, set) in [
                ("video.crf", v.crf.is_some()),
                ("video.bitrate_kbps", v.bitrate_kbps.is_some()),
                ("video.maxrate_kbps", v.maxrate_kbps.is_some()),
                ("video.lossless", v.lossless),
            ] {
                if set {
                    return Err(field(
                        name,
                        "set rate control per rendition in `renditions` for an ABR ladder".into(),
                    ));
                }
            }
            return Ok(());
        }
        if v.lossless {
            for (name, set) in [
                ("video.crf", v.crf.is_some()),
                ("video.bitrate_kbps", v.bitrate_kbps.is_some()),
                ("video.maxrate_kbps", v.maxrate_kbps.is_some()),
            ] {
                if set {
                    return Err(field(
                        name,
                        "conflicts with video.lossless; set only one rate control".into(),
                    ));
                }
            }
            return Ok(());
        }
        check_rate("video", codec, v.crf, v.bitrate_kbps, v.maxrate_kbps)
    }

    fn check_size_and_ladder(&self) -> Result<(), Located> {
        if let Some(h) = self.height {
            check_height("height", h)?;
        }
        if self.renditions.is_empty() {
            return Ok(());
        }
        if matches!(self.output, OutputKind::File { .. }) {
            return Err(field(
                "renditions",
                "an ABR ladder needs hls or dash output".into(),
            ));
        }
        if self.height.is_some() {
            return Err(field(
                "height",
                "not allowed with renditions (each rendition has its own height)".into(),
            ));
        }
        if self.renditions.len() > MAX_RENDITIONS {
            return Err(field(
                "renditions",
                format!(
                    "{} entries, at most {MAX_RENDITIONS} are allowed",
                    self.renditions.len()
                ),
            ));
        }
        let mut seen = Vec::new();
        for (i, r) in self.renditions.iter().enumerate() {
            let prefix = format!("renditions[{i}]");
            check_height(&format!("{prefix}.height"), r.height)?;
            if seen.contains(&r.height) {
                return Err(field(
                    &format!("{prefix}.height"),
                    format!(
                        "{} appears twice; each rendition needs its own height",
                        r.height
                    ),
                ));
            }
            seen.push(r.height);
            check_rate(
                &prefix,
                self.video.codec,
                r.crf,
                r.bitrate_kbps,
                r.maxrate_kbps,
            )?;
        }
        Ok(())
    }

    fn check_audio(&self) -> Result<(), Located> {
        match self.audio {
            Audio::Copy => {
                if !matches!(self.output, OutputKind::File { .. }) {
                    return Err(field(
                        "audio.mode",
                        format!(
                            "copy is not allowed for {} output; encode to aac so every player can read the segments",
                            self.output_name()
                        ),
                    ));
                }
            }
            Audio::Encode {
                codec,
                bitrate_kbps,
            } => {
                let allowed: &[AudioCodec] = match self.output {
                    OutputKind::File {
                        container: Container::Mkv,
                    } => &[AudioCodec::Aac, AudioCodec::Opus, AudioCodec::Flac],
                    // flac in MP4 is still "experimental" in ffmpeg 5.1.
                    OutputKind::File {
                        container: Container::Mp4,
                    } => &[AudioCodec::Aac, AudioCodec::Opus],
                    OutputKind::File {
                        container: Container::Webm,
                    } => &[AudioCodec::Opus],
                    OutputKind::Hls { .. } => &[AudioCodec::Aac],
                    OutputKind::Dash { .. } => &[AudioCodec::Aac, AudioCodec::Opus],
                };
                if !allowed.contains(&codec) {
                    let names: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
                    return Err(field(
                        "audio.codec",
                        format!(
                            "{} cannot go in {} output (use {})",
                            codec.as_str(),
                            self.output_name(),
                            names.join(" or ")
                        ),
                    ));
                }
                let range = match codec {
                    AudioCodec::Aac => Some((32, 512)),
                    AudioCodec::Opus => Some((6, 510)),
                    AudioCodec::Flac => None,
                };
                match (range, bitrate_kbps) {
                    (Some(_), None) => {
                        return Err(field(
                            "audio.bitrate_kbps",
                            format!("required for {}", codec.as_str()),
                        ));
                    }
                    (Some((lo, hi)), Some(b)) if !(lo..=hi).contains(&b) => {
                        return Err(field(
                            "audio.bitrate_kbps",
                            format!("{b} is out of range {lo}–{hi} for {}", codec.as_str()),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(field(
                            "audio.bitrate_kbps",
                            "flac is lossless and takes no bitrate; remove this field".into(),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn output_name(&self) -> &'static str {
        match self.output {
            OutputKind::File { container } => container.as_str(),
            OutputKind::Hls { .. } => "hls",
            OutputKind::Dash { .. } => "dash",
        }
    }

    /// What the package step writes.
    pub fn output_kind(&self) -> OutputKind {
        self.output
    }

    /// The video encodes this preset asks for: one, or one per ABR rung (highest first as
    /// written). For a single output the height is the preset's `height`.
    pub fn renditions(&self) -> Vec<Rendition> {
        if !self.renditions.is_empty() {
            return self
                .renditions
                .iter()
                .map(|r| Rendition {
                    height: Some(r.height),
                    rate: rate_of(r.crf, r.bitrate_kbps, false),
                    maxrate_kbps: r.maxrate_kbps,
                })
                .collect();
        }
        let v = &self.video;
        let lossless = v.lossless || v.codec == VideoCodec::Ffv1;
        vec![Rendition {
            height: self.height,
            rate: rate_of(v.crf, v.bitrate_kbps, lossless),
            maxrate_kbps: if lossless { None } else { v.maxrate_kbps },
        }]
    }

    /// MD5 (32 lowercase hex) of the preset's canonical JSON (compact, fields in declaration
    /// order), leaving out the description: it changes whenever a setting does, so sessions
    /// made with other settings are never resumed, but rewording a description does not.
    pub fn digest(&self) -> String {
        let canonical_form = Preset {
            description: String::new(),
            ..self.clone()
        };
        // Serialising plain structs and enums cannot fail; an empty string would still give a
        // stable (if unhelpful) digest rather than a panic.
        let canonical = serde_json::to_string(&canonical_form).unwrap_or_default();
        crate::fsutil::md5_hex(canonical.as_bytes())
    }

    /// The preset as a pretty JSON document (what `save_user` writes).
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

fn rate_of(crf: Option<u32>, bitrate_kbps: Option<u32>, lossless: bool) -> RateControl {
    match (lossless, crf, bitrate_kbps) {
        (true, _, _) => RateControl::Lossless,
        (false, Some(c), _) => RateControl::Crf(c),
        (false, None, Some(b)) => RateControl::BitrateKbps(b),
        // Validation rules this out; lossless is the only choice that loses nothing.
        (false, None, None) => RateControl::Lossless,
    }
}

fn field(name: &str, reason: String) -> Located {
    (name.to_string(), reason)
}

fn check_name(name: &str) -> Result<(), Located> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if name.is_empty() || name.len() > NAME_MAX_CHARS || !ok_chars || name.starts_with('-') {
        return Err(field(
            "name",
            format!(
                "\"{name}\" is not a valid preset name: use 1–{NAME_MAX_CHARS} letters, digits, '_' or '-' (not starting with '-')"
            ),
        ));
    }
    Ok(())
}

fn check_speed(codec: VideoCodec, speed: Option<&Speed>) -> Result<(), Located> {
    const F: &str = "video.speed";
    let numeric = |range: (u32, u32), what: &str| -> Result<(), Located> {
        let n = match speed {
            None => {
                return Err(field(
                    F,
                    format!(
                        "required for {} ({what} {}–{})",
                        codec.as_str(),
                        range.0,
                        range.1
                    ),
                ));
            }
            Some(Speed::Number(n)) => Some(*n),
            Some(Speed::Name(s)) => s.trim().parse::<u32>().ok(),
        };
        match n {
            Some(n) if (range.0..=range.1).contains(&n) => Ok(()),
            _ => Err(field(
                F,
                format!(
                    "{} is out of range {}–{} for {} ({what})",
                    speed.map(|s| s.to_string()).unwrap_or_default(),
                    range.0,
                    range.1,
                    codec.as_str()
                ),
            )),
        }
    };
    match codec {
        VideoCodec::H264 | VideoCodec::H265 => {
            let list = X26X_SPEEDS.join(", ");
            match speed {
                Some(Speed::Name(s)) if X26X_SPEEDS.contains(&s.as_str()) => Ok(()),
                None => Err(field(
                    F,
                    format!("required for {} (one of {list})", codec.as_str()),
                )),
                Some(other) => Err(field(
                    F,
                    format!(
                        "{other} is not a {} preset (one of {list})",
                        codec.encoder()
                    ),
                )),
            }
        }
        VideoCodec::Av1 => numeric(AV1_SPEED_RANGE, "svt-av1 preset"),
        VideoCodec::Vp9 => numeric(VP9_SPEED_RANGE, "cpu-used"),
        VideoCodec::Ffv1 => match speed {
            None => Ok(()),
            Some(_) => Err(field(
                F,
                "ffv1 has no speed setting; remove this field".into(),
            )),
        },
    }
}

/// Exactly one of crf / bitrate, both in range; maxrate only where the encoder honours it.
fn check_rate(
    prefix: &str,
    codec: VideoCodec,
    crf: Option<u32>,
    bitrate_kbps: Option<u32>,
    maxrate_kbps: Option<u32>,
) -> Result<(), Located> {
    match (crf, bitrate_kbps) {
        (None, None) => {
            return Err(field(
                prefix,
                "set a rate control: crf, bitrate_kbps or (video only) lossless".into(),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(field(
                &format!("{prefix}.bitrate_kbps"),
                format!("conflicts with {prefix}.crf; set only one rate control"),
            ));
        }
        _ => {}
    }
    if let Some(c) = crf {
        // Codecs without CRF (ffv1) never reach here.
        let (lo, hi) = codec.crf_range().unwrap_or((0, 0));
        if !(lo..=hi).contains(&c) {
            return Err(field(
                &format!("{prefix}.crf"),
                format!("{c} is out of range {lo}–{hi} for {}", codec.as_str()),
            ));
        }
    }
    let (lo, hi) = BITRATE_KBPS_RANGE;
    if let Some(b) = bitrate_kbps
        && !(lo..=hi).contains(&b)
    {
        return Err(field(
            &format!("{prefix}.bitrate_kbps"),
            format!("{b} is out of range {lo}–{hi}"),
        ));
    }
    if let Some(m) = maxrate_kbps {
        let name = format!("{prefix}.maxrate_kbps");
        if codec == VideoCodec::Av1 {
            return Err(field(
                &name,
                "libsvtav1 in ffmpeg 5.1 cannot cap the bitrate; remove it or use another codec"
                    .into(),
            ));
        }
        if !(lo..=hi).contains(&m) {
            return Err(field(&name, format!("{m} is out of range {lo}–{hi}")));
        }
        if let Some(b) = bitrate_kbps
            && m < b
        {
            return Err(field(&name, format!("{m} is below bitrate_kbps ({b})")));
        }
    }
    Ok(())
}

fn check_height(name: &str, h: u32) -> Result<(), Located> {
    let (lo, hi) = HEIGHT_RANGE;
    if !(lo..=hi).contains(&h) {
        return Err(field(name, format!("{h} is out of range {lo}–{hi}")));
    }
    if !h.is_multiple_of(2) {
        return Err(field(
            name,
            format!("{h} is odd; 4:2:0 video needs an even height"),
        ));
    }
    Ok(())
}

fn check_f64_range(name: &str, x: f64, (lo, hi): (f64, f64)) -> Result<(), Located> {
    if !x.is_finite() || x < lo || x > hi {
        return Err(field(name, format!("{x} is out of range {lo}–{hi}")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shape check. serde reports *what* is wrong but not *where*; this walks the JSON value along
// the schema and returns the first field that does not fit, with serde's reason. It is also
// the strict check for unknown keys in the internally tagged enums.

const TOP_FIELDS: &[&str] = &[
    "name",
    "description",
    "output",
    "video",
    "height",
    "renditions",
    "audio",
];
const TOP_REQUIRED: &[&str] = &["name", "output", "video", "audio"];
const VIDEO_FIELDS: &[&str] = &[
    "codec",
    "crf",
    "bitrate_kbps",
    "maxrate_kbps",
    "lossless",
    "speed",
    "pix_fmt",
    "keyint_seconds",
    "hdr",
];
const RENDITION_FIELDS: &[&str] = &["height", "crf", "bitrate_kbps", "maxrate_kbps"];

fn locate_shape_error(value: &Value) -> Result<(), Located> {
    let top = object(value, "")?;
    keys(top, "", TOP_FIELDS, TOP_REQUIRED)?;
    leaf::<String>(top, "", "name")?;
    leaf::<String>(top, "", "description")?;
    leaf::<u32>(top, "", "height")?;
    if let Some(v) = top.get("output") {
        locate_output(v)?;
    }
    if let Some(v) = top.get("video") {
        let video = object(v, "video")?;
        keys(video, "video", VIDEO_FIELDS, &["codec", "pix_fmt"])?;
        leaf::<VideoCodec>(video, "video", "codec")?;
        leaf::<u32>(video, "video", "crf")?;
        leaf::<u32>(video, "video", "bitrate_kbps")?;
        leaf::<u32>(video, "video", "maxrate_kbps")?;
        leaf::<bool>(video, "video", "lossless")?;
        leaf::<Speed>(video, "video", "speed")?;
        leaf::<PixFmt>(video, "video", "pix_fmt")?;
        leaf::<f64>(video, "video", "keyint_seconds")?;
        leaf::<HdrMode>(video, "video", "hdr")?;
    }
    if let Some(v) = top.get("renditions") {
        let Value::Array(items) = v else {
            return Err(field("renditions", "expected a list of renditions".into()));
        };
        for (i, item) in items.iter().enumerate() {
            let prefix = format!("renditions[{i}]");
            let r = object(item, &prefix)?;
            keys(r, &prefix, RENDITION_FIELDS, &["height"])?;
            for k in RENDITION_FIELDS {
                leaf::<u32>(r, &prefix, k)?;
            }
        }
    }
    if let Some(v) = top.get("audio") {
        locate_audio(v)?;
    }
    Ok(())
}

fn locate_output(v: &Value) -> Result<(), Located> {
    let o = object(v, "output")?;
    let kind = tag(o, "output", "kind", &["file", "hls", "dash"])?;
    if kind == "file" {
        keys(o, "output", &["kind", "container"], &["container"])?;
        leaf::<Container>(o, "output", "container")
    } else {
        keys(
            o,
            "output",
            &["kind", "segment_seconds"],
            &["segment_seconds"],
        )?;
        leaf::<f64>(o, "output", "segment_seconds")
    }
}

fn locate_audio(v: &Value) -> Result<(), Located> {
    let a = object(v, "audio")?;
    let mode = tag(a, "audio", "mode", &["copy", "encode"])?;
    if mode == "copy" {
        keys(a, "audio", &["mode"], &[])
    } else {
        keys(a, "audio", &["mode", "codec", "bitrate_kbps"], &["codec"])?;
        leaf::<AudioCodec>(a, "audio", "codec")?;
        leaf::<u32>(a, "audio", "bitrate_kbps")
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Located> {
    v.as_object().ok_or_else(|| {
        let name = if path.is_empty() { "(preset)" } else { path };
        field(name, format!("expected a JSON object, found {v}"))
    })
}

fn keys(
    obj: &Map<String, Value>,
    prefix: &str,
    allowed: &[&str],
    required: &[&str],
) -> Result<(), Located> {
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(field(
            &join(prefix, k),
            format!("unknown field; expected one of: {}", allowed.join(", ")),
        ));
    }
    if let Some(k) = required.iter().find(|k| !obj.contains_key(**k)) {
        return Err(field(&join(prefix, k), "missing".into()));
    }
    Ok(())
}

fn leaf<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<(), Located> {
    match obj.get(key) {
        None => Ok(()),
        Some(v) => serde_json::from_value::<T>(v.clone())
            .map(|_| ())
            .map_err(|e| field(&join(prefix, key), format!("{v}: {e}"))),
    }
}

fn tag<'a>(
    obj: &'a Map<String, Value>,
    prefix: &str,
    key: &str,
    allowed: &[&str],
) -> Result<&'a str, Located> {
    let name = join(prefix, key);
    match obj.get(key) {
        None => Err(field(
            &name,
            format!("missing (one of: {})", allowed.join(", ")),
        )),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s),
        Some(v) => Err(field(
            &name,
            format!("{v} is not one of: {}", allowed.join(", ")),
        )),
    }
}
