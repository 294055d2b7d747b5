//! What happens to the colours of an HDR source (PQ or HLG transfer), decided once per job
//! from the preset's `hdr` mode and pixel format:
//! - **tone-mapped** to BT.709 SDR (8-bit presets by default): zscale linearises the signal,
//!   converts the primaries, `tonemap=hable` compresses the highlights, and the output is
//!   tagged BT.709 — the result looks right on every display instead of washed out;
//! - **kept** HDR (10/12-bit presets by default): the output carries the source's primaries,
//!   transfer and matrix tags, and — where the encoder writes them (x265, SVT-AV1) — its
//!   mastering display and content light levels.
//!
//! SDR sources have no plan: their colours pass through as decoded.

use std::path::Path;

use crate::engine::neural::ColorMatrix;
use crate::media::Tools;
use crate::media::hdr::{HdrMetadata, probe_hdr_metadata};
use crate::media::probe::VideoStream;
use crate::presets::{Preset, VideoCodec};

/// The colour plan of an HDR source's job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HdrPlan {
    /// To BT.709 SDR, decoded as `source`.
    ToneMap { source: SourceColour },
    /// HDR out as it came in.
    Keep {
        source: SourceColour,
        metadata: HdrMetadata,
    },
}

/// How an HDR source's samples are to be read (names as ffmpeg and zscale both spell them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceColour {
    /// `smpte2084` (PQ) or `arib-std-b67` (HLG).
    pub transfer: &'static str,
    pub primaries: &'static str,
    pub matrix: &'static str,
    /// `tv` (limited) or `pc` (full).
    pub range: &'static str,
}

impl SourceColour {
    /// The source's tags, with the HDR10 defaults where a tag is missing or one zscale does
    /// not know. `None` for an SDR source.
    fn of(video: &VideoStream) -> Option<SourceColour> {
        let transfer = match video.color_transfer.as_deref() {
            Some("smpte2084") => "smpte2084",
            Some("arib-std-b67") => "arib-std-b67",
            _ => return None,
        };
        let primaries = match video.color_primaries.as_deref() {
            Some("bt709") => "bt709",
            Some("smpte431") => "smpte431",
            Some("smpte432") => "smpte432",
            _ => "bt2020",
        };
        let matrix = match video.color_space.as_deref() {
            Some("bt709") => "bt709",
            Some("bt2020c") => "bt2020c",
            _ => "bt2020nc",
        };
        let range = match video.color_range.as_deref() {
            Some("pc") => "pc",
            _ => "tv",
        };
        Some(SourceColour {
            transfer,
            primaries,
            matrix,
            range,
        })
    }

    fn is_pq(&self) -> bool {
        self.transfer == "smpte2084"
    }
}

impl HdrPlan {
    /// The plan for `video` encoded with `preset`; `None` for SDR sources. Reading the
    /// mastering metadata decodes one frame, only for kept HDR.
    pub(crate) fn for_source(
        tools: &Tools,
        input: &Path,
        video: &VideoStream,
        preset: &Preset,
    ) -> anyhow::Result<Option<HdrPlan>> {
        let Some(source) = SourceColour::of(video) else {
            return Ok(None);
        };
        if preset.video.hdr.tone_maps(preset.video.pix_fmt) {
            return Ok(Some(HdrPlan::ToneMap { source }));
        }
        let metadata = probe_hdr_metadata(tools, input, video.index)?;
        Ok(Some(HdrPlan::Keep { source, metadata }))
    }

    /// Filters (for a filter chain) that turn decoded frames into BT.709 SDR in `pix_fmt`;
    /// `None` when HDR is kept.
    pub(crate) fn tone_map_filter(&self, pix_fmt: &str) -> Option<String> {
        let HdrPlan::ToneMap { source } = self else {
            return None;
        };
        // npl=100: SDR reference white at 100 cd/m², as BT.2408 maps it; hable keeps detail
        // in the highlights; desat=0 keeps bright colours from greying out.
        Some(format!(
            "zscale=tin={}:pin={}:min={}:rin={}:t=linear:npl=100,format=gbrpf32le,\
             zscale=p=bt709,tonemap=tonemap=hable:desat=0,\
             zscale=t=bt709:m=bt709:r=tv,format={pix_fmt}",
            source.transfer, source.primaries, source.matrix, source.range
        ))
    }

    /// The encoder's colour tags (`-color_primaries …`): what the output really holds.
    pub(crate) fn encoder_tag_args(&self) -> Vec<String> {
        let (primaries, transfer, matrix, range) = match self {
            HdrPlan::ToneMap { .. } => ("bt709", "bt709", "bt709", "tv"),
            HdrPlan::Keep { source, .. } => (
                source.primaries,
                source.transfer,
                source.matrix,
                source.range,
            ),
        };
        [
            "-color_primaries",
            primaries,
            "-color_trc",
            transfer,
            "-colorspace",
            matrix,
            "-color_range",
            range,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// The encoder's own parameters that carry the mastering display and light levels.
    pub(crate) fn codec_params(&self, codec: VideoCodec) -> Vec<String> {
        match (self, codec) {
            (HdrPlan::Keep { metadata, .. }, VideoCodec::H265) => metadata.x265_params(),
            (HdrPlan::Keep { metadata, .. }, VideoCodec::Av1) => metadata.svtav1_params(),
            _ => Vec::new(),
        }
    }

    /// The YUV matrix of the frames the engine gets.
    pub(crate) fn engine_matrix(&self) -> ColorMatrix {
        match self {
            HdrPlan::ToneMap { .. } => ColorMatrix::Bt709,
            HdrPlan::Keep { source, .. } => ColorMatrix::for_source(Some(source.matrix), u32::MAX),
        }
    }

    /// The one line the user reads about it.
    pub(crate) fn notice(&self, preset: &Preset) -> String {
        let kind = match self {
            HdrPlan::ToneMap { source } | HdrPlan::Keep { source, .. } if source.is_pq() => {
                "HDR (PQ)"
            }
            _ => "HDR (HLG)",
        };
        match self {
            HdrPlan::ToneMap { .. } => format!(
                "the source is {kind}; it is tone-mapped to BT.709 SDR for this {}-bit preset (a preset with \"hdr\": \"keep\" keeps HDR)",
                preset.video.pix_fmt.bit_depth()
            ),
            HdrPlan::Keep { metadata, .. } => {
                let mut line = format!("the source is {kind}; the output stays HDR");
                if preset.video.pix_fmt.bit_depth() <= 8 {
                    line.push_str(" in 8 bits, so gradients may band");
                }
                let has_metadata = metadata.mastering.is_some() || metadata.light.is_some();
                if has_metadata && self.codec_params(preset.video.codec).is_empty() {
                    line.push_str(&format!(
                        "; its mastering display and light levels are not written by the {} encoder (H.265 and AV1 write them)",
                        preset.video.codec.as_str()
                    ));
                }
                line
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::hdr::ContentLight;
    use crate::presets::{HdrMode, PixFmt};

    fn hdr10_video() -> VideoStream {
        let json = include_str!("../media/testdata/probe/hdr10.mkv.json");
        let info = crate::media::probe::parse_probe_json(json, Path::new("/v/hdr10.mkv"))
            .expect("fixture parses");
        info.video
    }

    fn preset(name: &str, hdr: HdrMode) -> Preset {
        let mut p = crate::presets::resolve(name).expect("built-in preset");
        p.video.hdr = hdr;
        p
    }

    #[test]
    fn sdr_sources_have_no_plan() {
        let mut v = hdr10_video();
        v.color_transfer = Some("bt709".into());
        assert_eq!(SourceColour::of(&v), None);
    }

    #[test]
    fn auto_tone_maps_8_bit_and_keeps_10_bit() {
        assert!(HdrMode::Auto.tone_maps(PixFmt::Yuv420p));
        assert!(!HdrMode::Auto.tone_maps(PixFmt::Yuv420p10le));
        assert!(HdrMode::Tonemap.tone_maps(PixFmt::Yuv420p10le));
        assert!(!HdrMode::Keep.tone_maps(PixFmt::Yuv420p));
    }

    #[test]
    fn tone_map_chain_reads_the_source_as_tagged() {
        let source = SourceColour::of(&hdr10_video()).expect("HDR");
        let plan = HdrPlan::ToneMap { source };
        assert_eq!(
            plan.tone_map_filter("yuv420p").as_deref(),
            Some(
                "zscale=tin=smpte2084:pin=bt2020:min=bt2020nc:rin=tv:t=linear:npl=100,format=gbrpf32le,\
                 zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
            )
        );
        assert_eq!(
            plan.encoder_tag_args().join(" "),
            "-color_primaries bt709 -color_trc bt709 -colorspace bt709 -color_range tv"
        );
        assert_eq!(plan.engine_matrix(), ColorMatrix::Bt709);
        assert!(plan.codec_params(VideoCodec::H265).is_empty());
        let p = preset("h264_hq", HdrMode::Auto);
        assert!(
            plan.notice(&p)
                .contains("tone-mapped to BT.709 SDR for this 8-bit preset")
        );
    }

    #[test]
    fn kept_hdr_carries_tags_and_metadata_where_the_encoder_can() {
        let source = SourceColour::of(&hdr10_video()).expect("HDR");
        let metadata = HdrMetadata {
            mastering: None,
            light: Some(ContentLight {
                max_cll: 1000,
                max_fall: 400,
            }),
        };
        let plan = HdrPlan::Keep { source, metadata };
        assert_eq!(plan.tone_map_filter("yuv420p10le"), None);
        assert_eq!(
            plan.encoder_tag_args().join(" "),
            "-color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc -color_range tv"
        );
        assert_eq!(plan.engine_matrix(), ColorMatrix::Bt2020);
        assert_eq!(
            plan.codec_params(VideoCodec::H265),
            ["max-cll=1000,400", "hdr10=1"]
        );
        assert_eq!(
            plan.codec_params(VideoCodec::Av1),
            ["content-light=1000,400"]
        );
        assert!(plan.codec_params(VideoCodec::Vp9).is_empty());
        let h265 = preset("h265_hq", HdrMode::Auto);
        assert_eq!(
            plan.notice(&h265),
            "the source is HDR (PQ); the output stays HDR"
        );
        let h264 = preset("h264_hq", HdrMode::Keep);
        let notice = plan.notice(&h264);
        assert!(notice.contains("in 8 bits"), "{notice}");
        assert!(
            notice.contains("not written by the h264 encoder"),
            "{notice}"
        );
    }
}
