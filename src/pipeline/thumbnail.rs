//! Live thumbnails: the last frame of each finished chunk, small, as a JPEG in the session
//! folder (`thumbnail.jpg`, replaced atomically), announced by [`crate::protocol::Event::Thumbnail`].
//!
//! Cheap by construction, so the pipeline does not slow down: on the ffmpeg path the chunk's
//! own filter graph gets one more branch that lets only the chunk's first and last frames
//! through and scales them down (two small frames per chunk, no second decode); on the pipe path the engine's
//! last output frame is sampled down in Rust while it passes. Either way a thumbnail is a
//! best-effort extra: failing to make one never fails a chunk.

use std::path::Path;

use crate::engine::Frame;

/// Thumbnail width in pixels (narrower videos keep their width).
pub(crate) const THUMBNAIL_WIDTH: u32 = 320;
/// File name of the thumbnail inside the session folder.
pub(crate) const THUMBNAIL_FILE: &str = "thumbnail.jpg";
const JPEG_QUALITY: u8 = 80;

/// Thumbnail size for a `width × height` frame: at most [`THUMBNAIL_WIDTH`] wide, same
/// aspect, even height.
pub(crate) fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    let tw = width.clamp(1, THUMBNAIL_WIDTH);
    let th = (f64::from(tw) * f64::from(height) / f64::from(width.max(1)) / 2.0).round() as u32 * 2;
    (tw, th.max(2))
}

/// Extends a chunk's filter graph (whose first rendition ends in `[o0]`) with a `[thumb]`
/// output: frames 0 and `last_frame` of the chunk, scaled to `size`, rgb24; the thumbnail
/// is the last of them ([`jpeg_from_raw_file`]). Frame 0 is there because ffmpeg reports no
/// progress until every output has had a frame: with the last frame alone, the progress of
/// a chunk would stay at zero until its end.
pub(crate) fn graph_with_thumbnail(graph: &str, last_frame: usize, size: (u32, u32)) -> String {
    let (tw, th) = size;
    format!(
        "{};[t0]split=2[o0][tsel];[tsel]select=eq(n\\,0)+eq(n\\,{last_frame}),scale={tw}:{th},format=rgb24[thumb]",
        graph.replacen("[o0]", "[t0]", 1)
    )
}

/// Frames the `[thumb]` output of [`graph_with_thumbnail`] writes (one for a one-frame chunk).
pub(crate) const THUMBNAIL_OUTPUT_FRAMES: &str = "2";

/// RGB24 thumbnail of a yuv420p frame: nearest-neighbour sampling, BT.601 limited range.
pub(crate) fn thumbnail_from_yuv420p(frame: &Frame) -> Option<(u32, u32, Vec<u8>)> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    if w == 0 || h == 0 || frame.data.len() < Frame::yuv420p_len(frame.width, frame.height) {
        return None;
    }
    let (tw, th) = thumbnail_size(frame.width, frame.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (y_plane, chroma) = frame.data.split_at(w * h);
    let (u_plane, v_plane) = chroma.split_at(cw * ch);
    let mut rgb = Vec::with_capacity(tw as usize * th as usize * 3);
    for ty in 0..th as usize {
        let y = (ty * h / th as usize).min(h - 1);
        for tx in 0..tw as usize {
            let x = (tx * w / tw as usize).min(w - 1);
            let luma = f32::from(y_plane[y * w + x]) - 16.0;
            let cb = f32::from(u_plane[(y / 2) * cw + x / 2]) - 128.0;
            let cr = f32::from(v_plane[(y / 2) * cw + x / 2]) - 128.0;
            let l = 1.164 * luma;
            for v in [l + 1.596 * cr, l - 0.392 * cb - 0.813 * cr, l + 2.017 * cb] {
                rgb.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    Some((tw, th, rgb))
}

/// RGB24 pixels as a JPEG file's bytes.
pub(crate) fn encode_jpeg(width: u32, height: u32, rgb: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode(rgb, width, height, image::ExtendedColorType::Rgb8)
        .ok()?;
    Some(out)
}

/// A raw rgb24 frame file written by ffmpeg, as JPEG bytes; the raw file is removed.
pub(crate) fn jpeg_from_raw_file(raw: &Path, size: (u32, u32)) -> Option<Vec<u8>> {
    let bytes = std::fs::read(raw).ok();
    let _ = std::fs::remove_file(raw);
    let bytes = bytes?;
    let frame = size.0 as usize * size.1 as usize * 3;
    if bytes.is_empty() || bytes.len() % frame != 0 {
        log::debug!(
            "no thumbnail: {} bytes, not whole frames of {frame}: {}",
            bytes.len(),
            raw.display()
        );
        return None;
    }
    encode_jpeg(size.0, size.1, &bytes[bytes.len() - frame..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_aspect_and_are_even() {
        assert_eq!(thumbnail_size(1920, 1080), (320, 180));
        assert_eq!(thumbnail_size(640, 481), (320, 240));
        assert_eq!(thumbnail_size(100, 50), (100, 50));
        assert_eq!(thumbnail_size(1080, 1920), (320, 568));
    }

    #[test]
    fn the_thumbnail_is_the_last_frame_of_the_raw_output() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("t.rgb");
        let (w, h) = (4u32, 2u32);
        let frame = (w * h * 3) as usize;
        let mut bytes = vec![0u8; frame];
        bytes.extend(vec![250u8; frame]);
        std::fs::write(&raw, &bytes).unwrap();
        let jpeg = jpeg_from_raw_file(&raw, (w, h)).unwrap();
        let decoded = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8();
        assert!(decoded.pixels().all(|p| p.0[0] > 200), "{decoded:?}");
        assert!(!raw.exists(), "the raw file is removed");
        // A one-frame chunk writes one frame; a torn file gives no thumbnail.
        std::fs::write(&raw, vec![250u8; frame]).unwrap();
        assert!(jpeg_from_raw_file(&raw, (w, h)).is_some());
        std::fs::write(&raw, vec![250u8; frame + 1]).unwrap();
        assert!(jpeg_from_raw_file(&raw, (w, h)).is_none());
    }

    #[test]
    fn graph_gets_a_thumbnail_branch() {
        assert_eq!(
            graph_with_thumbnail("[0:0]scale=640:480:flags=lanczos[o0]", 119, (320, 240)),
            "[0:0]scale=640:480:flags=lanczos[t0];[t0]split=2[o0][tsel];[tsel]select=eq(n\\,0)+eq(n\\,119),scale=320:240,format=rgb24[thumb]"
        );
    }

    #[test]
    fn yuv_thumbnail_decodes_as_jpeg_with_the_colour() {
        // A flat mid-grey 640x360 frame (Y=126, U=V=128 is RGB ~128).
        let (w, h) = (640u32, 360u32);
        let mut data = vec![126u8; (w * h) as usize];
        data.resize(Frame::yuv420p_len(w, h), 128);
        let (tw, th, rgb) = thumbnail_from_yuv420p(&Frame {
            width: w,
            height: h,
            data,
        })
        .unwrap();
        assert_eq!((tw, th), (320, 180));
        assert!(rgb.iter().all(|&v| v.abs_diff(128) <= 1), "{:?}", &rgb[..3]);
        let jpeg = encode_jpeg(tw, th, &rgb).unwrap();
        let decoded = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8();
        assert_eq!(decoded.dimensions(), (320, 180));
        assert!(
            decoded
                .pixels()
                .all(|p| p.0.iter().all(|&v| v.abs_diff(128) <= 3))
        );
    }
}
