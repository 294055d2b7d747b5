//! Which streams of the source go into the output, and how: audio copied or converted,
//! subtitles converted where the container needs it, attachments, cover art, chapters — and a
//! warning for each thing the output's container cannot hold. Pure: the package step runs it.

use crate::media::probe::MediaInfo;
use crate::presets::{Container, OutputKind, Preset, TextSubtitles};

/// Which source streams go into the output and how, for a single-file output.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct StreamPlan {
    /// (source stream index, codec arguments for that output stream, kind letter a|s|t)
    pub streams: Vec<(usize, char, Vec<String>)>,
    pub chapters: bool,
    pub first_audio: Option<usize>,
    pub covers: Covers,
    pub warnings: Vec<String>,
}

/// How the source's cover art (attached pictures) goes into a single-file output.
#[derive(Debug, Default, PartialEq)]
pub(crate) enum Covers {
    #[default]
    None,
    /// MP4: copied as video streams with the attached-picture disposition (source indices).
    Streams(Vec<usize>),
    /// Matroska: written out as files, then attached with their name and MIME type (its
    /// muxer stores a copied picture stream as a one-frame video track, not as a cover).
    Attachments(Vec<CoverAttachment>),
}

#[derive(Debug, PartialEq)]
pub(crate) struct CoverAttachment {
    pub index: usize,
    pub file_name: String,
    pub mimetype: String,
}

impl StreamPlan {
    pub(crate) fn args(&self, source_input: usize) -> Vec<String> {
        let mut args = Vec::new();
        let mut counts = std::collections::HashMap::new();
        for (index, kind, codec) in &self.streams {
            args.extend(["-map".to_owned(), format!("{source_input}:{index}")]);
            let n = counts.entry(*kind).or_insert(0usize);
            for (i, a) in codec.iter().enumerate() {
                // Per-stream codec options: "-c:a" → "-c:a:N".
                if i % 2 == 0 && a.starts_with('-') {
                    args.push(format!("{a}:{n}"));
                } else {
                    args.push(a.clone());
                }
            }
            *n += 1;
        }
        args
    }
}

pub(crate) fn plan_streams(info: &MediaInfo, preset: &Preset) -> StreamPlan {
    let caps = preset.container_caps();
    let kind = output_name(preset);
    let mut plan = StreamPlan {
        first_audio: info.audio.first().map(|a| a.index),
        ..StreamPlan::default()
    };
    let single_file = matches!(preset.output_kind(), OutputKind::File { .. });
    if !single_file {
        if info.audio.len() > 1 {
            plan.warnings.push(format!(
                "{kind} output keeps the first audio track only; {} other track(s) left out",
                info.audio.len() - 1
            ));
        }
        if !info.subtitles.is_empty() {
            plan.warnings.push(format!(
                "{kind} output keeps no subtitles; {} track(s) left out",
                info.subtitles.len()
            ));
        }
    } else {
        let audio_args = preset.audio_args();
        let copies_audio = audio_args.iter().any(|a| a == "copy");
        for a in &info.audio {
            let args = if copies_audio && !caps.can_copy_audio(&a.codec) {
                let fallback = preset.audio_fallback_args();
                plan.warnings.push(format!(
                    "audio track {} ({}) cannot be copied into {kind}; it is encoded with {}",
                    a.index,
                    a.codec,
                    fallback.get(1).map_or("another codec", String::as_str)
                ));
                fallback
            } else {
                audio_args.clone()
            };
            plan.streams.push((a.index, 'a', args));
        }
        for sub in &info.subtitles {
            let codec = match (sub.bitmap, caps.text_subtitles) {
                (true, _) if caps.bitmap_subtitles => Some("copy"),
                (true, _) => None,
                (false, TextSubtitles::Copy) => Some("copy"),
                (false, TextSubtitles::ConvertTo(codec)) => Some(codec),
                (false, TextSubtitles::Unsupported) => None,
            };
            match codec {
                Some(codec) => {
                    if codec != "copy" && sub.codec != codec {
                        plan.warnings.push(format!(
                            "subtitle track {} ({}) is converted to {codec} for {kind}; its styling may be lost",
                            sub.index, sub.codec
                        ));
                    }
                    plan.streams.push((sub.index, 's', vec!["-c:s".into(), codec.into()]));
                }
                None => plan.warnings.push(format!(
                    "subtitle track {} ({}) cannot be stored in {kind}; it is left out (an MKV preset keeps it)",
                    sub.index, sub.codec
                )),
            }
        }
    }
    if !info.attachments.is_empty() {
        if caps.attachments {
            for t in &info.attachments {
                plan.streams
                    .push((t.index, 't', vec!["-c:t".into(), "copy".into()]));
            }
        } else {
            plan.warnings.push(format!(
                "{} attachment(s) (such as subtitle fonts) cannot be stored in {kind}; left out (an MKV preset keeps them)",
                info.attachments.len()
            ));
        }
    }
    plan.covers = plan_covers(info, preset, &mut plan.warnings);
    plan.chapters = !info.chapters.is_empty() && caps.chapters;
    if !info.chapters.is_empty() && !caps.chapters {
        plan.warnings.push(format!(
            "{kind} output cannot hold chapters; {} chapter(s) left out",
            info.chapters.len()
        ));
    }
    plan
}

/// Cover art where the container holds it: MP4 takes JPEG and PNG pictures as attached-picture
/// streams, Matroska any picture as an attachment; WebM, HLS and DASH none.
fn plan_covers(info: &MediaInfo, preset: &Preset, warnings: &mut Vec<String>) -> Covers {
    if info.cover_art.is_empty() {
        return Covers::None;
    }
    let kind = output_name(preset);
    let container = match preset.output_kind() {
        OutputKind::File { container } => Some(container),
        _ => None,
    };
    let mimetype_of = |codec: &str| match codec {
        "mjpeg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        "bmp" => Some("image/bmp"),
        "webp" => Some("image/webp"),
        "gif" => Some("image/gif"),
        _ => None,
    };
    let mut left_out = Vec::new();
    let covers = match container {
        Some(Container::Mp4) => {
            let mut kept = Vec::new();
            for cover in &info.cover_art {
                if matches!(cover.codec.as_str(), "mjpeg" | "png") {
                    kept.push(cover.index);
                } else {
                    left_out.push(format!("{} ({})", cover.index, cover.codec));
                }
            }
            Covers::Streams(kept)
        }
        Some(Container::Mkv) => {
            let mut kept = Vec::new();
            for (n, cover) in info.cover_art.iter().enumerate() {
                let Some(mimetype) = cover
                    .mimetype
                    .clone()
                    .or_else(|| mimetype_of(&cover.codec).map(str::to_owned))
                else {
                    left_out.push(format!("{} ({})", cover.index, cover.codec));
                    continue;
                };
                let extension = match cover.codec.as_str() {
                    "mjpeg" => "jpg",
                    other => other,
                };
                let file_name = cover.filename.clone().unwrap_or_else(|| {
                    if n == 0 {
                        format!("cover.{extension}")
                    } else {
                        format!("cover-{}.{extension}", n + 1)
                    }
                });
                kept.push(CoverAttachment {
                    index: cover.index,
                    file_name,
                    mimetype,
                });
            }
            Covers::Attachments(kept)
        }
        Some(Container::Webm) | None => {
            warnings.push(format!(
                "{kind} output cannot hold cover art; {} picture(s) left out (an MP4 or MKV preset keeps them)",
                info.cover_art.len()
            ));
            return Covers::None;
        }
    };
    if !left_out.is_empty() {
        warnings.push(format!(
            "cover art stream(s) {} cannot be stored in {kind}; left out",
            left_out.join(", ")
        ));
    }
    covers
}

/// "MP4", "MKV", "WebM", "HLS", "DASH": for messages.
pub(crate) fn output_name(preset: &Preset) -> &'static str {
    match preset.output_kind() {
        OutputKind::File {
            container: Container::Mp4,
        } => "MP4",
        OutputKind::File {
            container: Container::Mkv,
        } => "MKV",
        OutputKind::File {
            container: Container::Webm,
        } => "WebM",
        OutputKind::Hls { .. } => "HLS",
        OutputKind::Dash { .. } => "DASH",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::media::probe::parse_probe_json;

    fn info(json: &str) -> MediaInfo {
        parse_probe_json(json, Path::new("/in/x")).unwrap()
    }

    fn preset(name: &str) -> Preset {
        crate::presets::resolve(name).unwrap()
    }

    #[test]
    fn covers_go_where_the_container_holds_them() {
        let mp4_source = info(include_str!("../media/testdata/probe/cover.mp4.json"));
        let plan = plan_streams(&mp4_source, &preset("h264_hq"));
        assert_eq!(plan.covers, Covers::Streams(vec![2]));
        assert!(plan.warnings.iter().all(|w| !w.contains("cover")));

        let plan = plan_streams(&mp4_source, &preset("lossless_ffv1"));
        assert_eq!(
            plan.covers,
            Covers::Attachments(vec![CoverAttachment {
                index: 2,
                file_name: "cover.png".into(),
                mimetype: "image/png".into(),
            }])
        );

        let plan = plan_streams(&mp4_source, &preset("hls_720p"));
        assert_eq!(plan.covers, Covers::None);
        assert!(
            plan.warnings
                .iter()
                .any(|w| w == "HLS output cannot hold cover art; 1 picture(s) left out (an MP4 or MKV preset keeps them)"),
            "{:?}",
            plan.warnings
        );

        // A Matroska cover keeps its own name and type.
        let mkv_source = info(include_str!(
            "../media/testdata/probe/cover_attach.mkv.json"
        ));
        let Covers::Attachments(kept) = plan_streams(&mkv_source, &preset("lossless_ffv1")).covers
        else {
            panic!("no attachment");
        };
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].index, 1);
        assert!(kept[0].file_name.contains('.') && kept[0].mimetype.starts_with("image/"));
    }
}
