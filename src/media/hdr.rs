//! HDR static metadata of a source: the mastering display (SMPTE ST 2086) and the content
//! light levels (MaxCLL / MaxFALL), read from the first decoded frame's side data (HEVC/AV1
//! carry them in the bitstream) or else from the stream (Matroska's MasteringMetadata), and
//! written back in the forms the encoders take.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::probe::{ProbeError, run_ffprobe};
use super::tools::{Tools, file_arg};

/// Mastering display colour volume. Chromaticities are CIE 1931 xy; luminances in cd/m².
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MasteringDisplay {
    pub red: (f64, f64),
    pub green: (f64, f64),
    pub blue: (f64, f64),
    pub white: (f64, f64),
    pub max_luminance: f64,
    pub min_luminance: f64,
}

/// Content light level: maximum and maximum frame-average, in cd/m².
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentLight {
    pub max_cll: u32,
    pub max_fall: u32,
}

/// What a source says about its HDR grading (either part may be absent).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HdrMetadata {
    pub mastering: Option<MasteringDisplay>,
    pub light: Option<ContentLight>,
}

impl HdrMetadata {
    /// x265's `master-display` and `max-cll` parameters (chromaticities in 1/50000,
    /// luminances in 1/10000 cd/m²).
    pub fn x265_params(&self) -> Vec<String> {
        let mut params = Vec::new();
        if let Some(m) = self.mastering {
            let c =
                |(x, y): (f64, f64)| format!("{},{}", (x * 50000.0).round(), (y * 50000.0).round());
            params.push(format!(
                "master-display=G({})B({})R({})WP({})L({},{})",
                c(m.green),
                c(m.blue),
                c(m.red),
                c(m.white),
                (m.max_luminance * 10000.0).round(),
                (m.min_luminance * 10000.0).round()
            ));
        }
        if let Some(l) = self.light {
            params.push(format!("max-cll={},{}", l.max_cll, l.max_fall));
        }
        if !params.is_empty() {
            params.push("hdr10=1".to_owned());
        }
        params
    }

    /// SVT-AV1's `mastering-display` and `content-light` parameters (plain numbers).
    pub fn svtav1_params(&self) -> Vec<String> {
        let mut params = Vec::new();
        if let Some(m) = self.mastering {
            let c = |(x, y): (f64, f64)| format!("{x:.4},{y:.4}");
            params.push(format!(
                "mastering-display=G({})B({})R({})WP({})L({},{})",
                c(m.green),
                c(m.blue),
                c(m.red),
                c(m.white),
                m.max_luminance,
                m.min_luminance
            ));
        }
        if let Some(l) = self.light {
            params.push(format!("content-light={},{}", l.max_cll, l.max_fall));
        }
        params
    }
}

/// Reads the HDR metadata of stream `stream_index` (decodes one frame).
pub fn probe_hdr_metadata(
    tools: &Tools,
    input: &Path,
    stream_index: usize,
) -> Result<HdrMetadata, ProbeError> {
    let mut cmd = Command::new(&tools.ffprobe);
    cmd.args(["-v", "error", "-print_format", "json"])
        .args(["-select_streams", &stream_index.to_string()])
        .args(["-read_intervals", "%+#1", "-show_frames", "-show_streams"])
        .arg(file_arg(input));
    let stdout = run_ffprobe(cmd, input)?;
    Ok(parse_hdr_metadata(&String::from_utf8_lossy(&stdout)))
}

/// The metadata in ffprobe's `-show_frames -show_streams` JSON: the first frame's side data,
/// else the stream's. Anything unreadable counts as absent.
pub fn parse_hdr_metadata(json: &str) -> HdrMetadata {
    let Ok(root) = serde_json::from_str::<Value>(json) else {
        return HdrMetadata::default();
    };
    let side_data = |key: &str| -> Vec<Value> {
        root.get(key)
            .and_then(Value::as_array)
            .and_then(|items| items.first())
            .and_then(|item| item.get("side_data_list"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut found = HdrMetadata::default();
    for list in [side_data("frames"), side_data("streams")] {
        for entry in &list {
            match entry.get("side_data_type").and_then(Value::as_str) {
                Some("Mastering display metadata") if found.mastering.is_none() => {
                    found.mastering = mastering(entry);
                }
                Some("Content light level metadata") if found.light.is_none() => {
                    found.light = light(entry);
                }
                _ => {}
            }
        }
    }
    found
}

fn mastering(entry: &Value) -> Option<MasteringDisplay> {
    let n = |key: &str| entry.get(key).and_then(number);
    let pair = |x: &str, y: &str| Some((n(x)?, n(y)?));
    let m = MasteringDisplay {
        red: pair("red_x", "red_y")?,
        green: pair("green_x", "green_y")?,
        blue: pair("blue_x", "blue_y")?,
        white: pair("white_point_x", "white_point_y")?,
        max_luminance: n("max_luminance")?,
        min_luminance: n("min_luminance")?,
    };
    let chromaticities = [m.red, m.green, m.blue, m.white];
    let plausible = chromaticities
        .iter()
        .all(|&(x, y)| (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y))
        && m.max_luminance > 0.0
        && m.max_luminance <= 100_000.0
        && (0.0..m.max_luminance).contains(&m.min_luminance);
    plausible.then_some(m)
}

fn light(entry: &Value) -> Option<ContentLight> {
    let n = |key: &str| {
        entry
            .get(key)
            .and_then(number)
            .filter(|v| (0.0..=65535.0).contains(v))
            .map(|v| v as u32)
    };
    Some(ContentLight {
        max_cll: n("max_content")?,
        max_fall: n("max_average")?,
    })
}

/// A JSON number, or a string holding a number or an `a/b` ratio (ffprobe writes both).
fn number(value: &Value) -> Option<f64> {
    if let Some(v) = value.as_f64() {
        return Some(v);
    }
    let text = value.as_str()?.trim();
    let v = match text.split_once('/') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
            if b == 0.0 {
                return None;
            }
            a / b
        }
        None => text.parse().ok()?,
    };
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ffprobe 5.1's output for the first frame of an HDR10 HEVC (trimmed to what is read).
    const HEVC_FRAME: &str = r#"{"frames":[{"media_type":"video","color_transfer":"smpte2084",
        "side_data_list":[
          {"side_data_type":"Mastering display metadata","red_x":"34000/50000","red_y":"16000/50000",
           "green_x":"13250/50000","green_y":"34500/50000","blue_x":"7500/50000","blue_y":"3000/50000",
           "white_point_x":"15635/50000","white_point_y":"16450/50000",
           "min_luminance":"1/10000","max_luminance":"10000000/10000"},
          {"side_data_type":"Content light level metadata","max_content":1000,"max_average":400},
          {"side_data_type":"H.26[45] User Data Unregistered SEI message"}]}],
        "streams":[{"index":0}]}"#;

    #[test]
    fn reads_mastering_display_and_light_level_from_the_frame() {
        let m = parse_hdr_metadata(HEVC_FRAME);
        let md = m.mastering.expect("mastering display");
        assert_eq!(md.red, (0.68, 0.32));
        assert_eq!(md.green, (0.265, 0.69));
        assert_eq!(md.white, (0.3127, 0.329));
        assert_eq!(md.max_luminance, 1000.0);
        assert_eq!(md.min_luminance, 0.0001);
        assert_eq!(
            m.light,
            Some(ContentLight {
                max_cll: 1000,
                max_fall: 400
            })
        );
    }

    #[test]
    fn writes_the_encoders_parameters() {
        let m = parse_hdr_metadata(HEVC_FRAME);
        assert_eq!(
            m.x265_params(),
            [
                "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)",
                "max-cll=1000,400",
                "hdr10=1"
            ]
        );
        assert_eq!(
            m.svtav1_params(),
            [
                "mastering-display=G(0.2650,0.6900)B(0.1500,0.0600)R(0.6800,0.3200)WP(0.3127,0.3290)L(1000,0.0001)",
                "content-light=1000,400"
            ]
        );
        assert!(HdrMetadata::default().x265_params().is_empty());
    }

    #[test]
    fn stream_side_data_when_the_frame_has_none() {
        let json = r#"{"frames":[{"side_data_list":[]}],"streams":[{"side_data_list":[
            {"side_data_type":"Content light level metadata","max_content":650,"max_average":120}]}]}"#;
        let m = parse_hdr_metadata(json);
        assert_eq!(m.mastering, None);
        assert_eq!(
            m.light,
            Some(ContentLight {
                max_cll: 650,
                max_fall: 120
            })
        );
    }

    #[test]
    fn nonsense_is_absent_not_an_error() {
        for json in [
            "",
            "{",
            r#"{"frames":[{"side_data_list":[{"side_data_type":"Mastering display metadata","red_x":"1/0"}]}]}"#,
            r#"{"frames":[{"side_data_list":[{"side_data_type":"Mastering display metadata",
               "red_x":"3/1","red_y":"0","green_x":"0","green_y":"0","blue_x":"0","blue_y":"0",
               "white_point_x":"0","white_point_y":"0","min_luminance":"0","max_luminance":"100"}]}]}"#,
            r#"{"frames":[{"side_data_list":[{"side_data_type":"Content light level metadata","max_content":-5,"max_average":1}]}]}"#,
        ] {
            assert_eq!(parse_hdr_metadata(json), HdrMetadata::default(), "{json}");
        }
    }
}
