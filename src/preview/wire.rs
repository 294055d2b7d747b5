//! The preview worker's wire format, both directions.
//!
//! Requests (client → worker, stdin) are one JSON object per line. Replies (worker → client,
//! stdout) are one JSON header line, tagged by `type`, followed by exactly `payload_bytes`
//! raw bytes when the header says so: RGBA pixels (before, then after) for a frame, the dB
//! values as little-endian f32 for a spectrogram. Pixels never pass through JSON text: a 4K
//! RGBA frame is 33 MB, which a pipe moves in a few milliseconds and JSON would inflate
//! fourfold. Logs go to stderr only. Described in `docs/protocol.md`, pinned by the tests below.

use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};

use super::{PreviewRequest, RgbaImage};
use crate::spectrum::{FreqAxis, Spectrogram, Transform};

/// Version of the preview wire format, exchanged at `hello` (independent of the processing
/// worker's [`crate::protocol::PROTOCOL_VERSION`]).
pub const PREVIEW_PROTOCOL_VERSION: u32 = 3;

/// Longest header line accepted (a header holds a few numbers and maybe an error message).
const MAX_HEADER_BYTES: usize = 1 << 20;
/// Largest payload accepted: an 8K RGBA frame and its 4× upscale fit well below this.
const MAX_PAYLOAD_BYTES: u64 = 4 << 30;

/// Client → worker.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WorkerRequest {
    Hello {
        version: u32,
    },
    Preview {
        id: u64,
        request: PreviewRequest,
    },
    /// Stop request `id` as soon as possible; the worker answers `cancelled` (or the result,
    /// if it was already done).
    Cancel {
        id: u64,
    },
    Shutdown,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub width: u32,
    pub height: u32,
}

impl ImageHeader {
    /// The header of an image to send.
    pub fn of(image: &RgbaImage) -> ImageHeader {
        ImageHeader {
            width: image.width,
            height: image.height,
        }
    }

    /// The image this header announced, with its payload part.
    pub fn image(self, pixels: Vec<u8>) -> RgbaImage {
        RgbaImage {
            width: self.width,
            height: self.height,
            pixels,
        }
    }

    pub fn rgba_bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * 4
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(tag = "scale", rename_all = "kebab-case")]
pub enum WireFreqAxis {
    Linear { max_hz: f32 },
    Log { min_hz: f32, max_hz: f32 },
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WireTransform {
    Stft,
    Cwt,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct SpectrogramHeader {
    pub width: usize,
    pub height: usize,
    pub freq_axis: WireFreqAxis,
    pub start_secs: f64,
    pub end_secs: f64,
    pub transform: WireTransform,
    pub columns_done: usize,
}

/// Worker → client header line.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WorkerReply {
    Hello {
        version: u32,
        pid: u32,
    },
    /// Payload: `before` RGBA then `after` RGBA.
    Frame {
        id: u64,
        frame_index: u64,
        time_secs: f64,
        before: ImageHeader,
        after: ImageHeader,
        payload_bytes: u64,
    },
    /// Payload: `before` RGBA. Sent ahead of [`WorkerReply::Frame`] when the engine is slow
    /// (frame engines): the frame itself, while its "after" image is still being made.
    FrameBefore {
        id: u64,
        frame_index: u64,
        time_secs: f64,
        before: ImageHeader,
        payload_bytes: u64,
    },
    /// Payload: `picture` RGBA: a keyframe's picture shown until the frame's own images come
    /// (see [`super::PreviewReply::FrameApprox`]); the last reply of its request when `done`.
    FrameApprox {
        id: u64,
        frame_index: u64,
        picture_index: u64,
        time_secs: f64,
        picture: ImageHeader,
        display: ImageHeader,
        done: bool,
        payload_bytes: u64,
    },
    /// Payload: `width × height` f32 LE dB values. `overview`: an overview reply (repeated
    /// while it fills); `done`: the last reply of this request.
    Spectrogram {
        id: u64,
        overview: bool,
        done: bool,
        spectrogram: SpectrogramHeader,
        payload_bytes: u64,
    },
    Error {
        id: u64,
        message: String,
    },
    Cancelled {
        id: u64,
    },
}

impl WorkerReply {
    pub fn payload_bytes(&self) -> u64 {
        match self {
            WorkerReply::Frame { payload_bytes, .. }
            | WorkerReply::FrameBefore { payload_bytes, .. }
            | WorkerReply::FrameApprox { payload_bytes, .. }
            | WorkerReply::Spectrogram { payload_bytes, .. } => *payload_bytes,
            _ => 0,
        }
    }

    pub fn id(&self) -> Option<u64> {
        match self {
            WorkerReply::Hello { .. } => None,
            WorkerReply::Frame { id, .. }
            | WorkerReply::FrameBefore { id, .. }
            | WorkerReply::FrameApprox { id, .. }
            | WorkerReply::Spectrogram { id, .. }
            | WorkerReply::Error { id, .. }
            | WorkerReply::Cancelled { id } => Some(*id),
        }
    }

    /// True for the last reply a request gets.
    pub fn is_terminal(&self) -> bool {
        match self {
            WorkerReply::Hello { .. } => false,
            WorkerReply::Spectrogram { done, .. } => *done,
            WorkerReply::FrameBefore { .. } => false,
            WorkerReply::FrameApprox { done, .. } => *done,
            _ => true,
        }
    }

    /// The payload size the header's own dimensions imply, to check `payload_bytes`.
    fn implied_payload_bytes(&self) -> u64 {
        match self {
            WorkerReply::Frame { before, after, .. } => before.rgba_bytes() + after.rgba_bytes(),
            WorkerReply::FrameBefore { before, .. } => before.rgba_bytes(),
            WorkerReply::FrameApprox { picture, .. } => picture.rgba_bytes(),
            WorkerReply::Spectrogram { spectrogram, .. } => {
                (spectrogram.width as u64) * (spectrogram.height as u64) * 4
            }
            _ => 0,
        }
    }
}

/// One reply: its header and payload, split as the header describes it (a frame's `before`
/// and `after` images are two parts; a spectrogram is one).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub header: WorkerReply,
    pub parts: Vec<Vec<u8>>,
}

/// Writes a header line and its payload parts (their total must be the header's
/// `payload_bytes`), then flushes.
pub fn write_message(
    out: &mut impl Write,
    header: &WorkerReply,
    parts: &[&[u8]],
) -> io::Result<()> {
    let mut line = serde_json::to_string(header).map_err(io::Error::other)?;
    line.push('\n');
    out.write_all(line.as_bytes())?;
    for part in parts {
        out.write_all(part)?;
    }
    out.flush()
}

/// Reads one reply; `Ok(None)` at end of stream. A malformed header or a torn payload is an
/// `InvalidData` error (the stream cannot be resynchronised after it).
pub fn read_message(input: &mut impl BufRead) -> io::Result<Option<Message>> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut *input)
            .take(MAX_HEADER_BYTES as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') && n >= MAX_HEADER_BYTES {
            return Err(invalid("a reply header is too long".into()));
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            break;
        }
    }
    let header: WorkerReply = serde_json::from_slice(&line).map_err(|e| {
        invalid(format!(
            "not a preview reply ({e}): {}",
            String::from_utf8_lossy(&line).trim()
        ))
    })?;
    let len = header.payload_bytes();
    if len != header.implied_payload_bytes() || len > MAX_PAYLOAD_BYTES {
        return Err(invalid(format!(
            "payload of {len} bytes does not fit the header {header:?}"
        )));
    }
    let sizes: Vec<u64> = match &header {
        WorkerReply::Frame { before, after, .. } => vec![before.rgba_bytes(), after.rgba_bytes()],
        WorkerReply::FrameBefore { .. }
        | WorkerReply::FrameApprox { .. }
        | WorkerReply::Spectrogram { .. } => vec![len],
        _ => Vec::new(),
    };
    let mut parts = Vec::with_capacity(sizes.len());
    for size in sizes {
        parts.push(read_exact_vec(input, size as usize)?);
    }
    Ok(Some(Message { header, parts }))
}

/// Exactly `len` bytes, without zero-filling a buffer first (frames are tens of megabytes).
pub fn read_exact_vec(input: &mut impl io::Read, len: usize) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(len);
    (&mut *input).take(len as u64).read_to_end(&mut data)?;
    if data.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the stream ended after {} of {len} bytes", data.len()),
        ));
    }
    Ok(data)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A spectrogram's header and payload (f32 LE).
pub fn spectrogram_to_wire(s: &Spectrogram) -> (SpectrogramHeader, Vec<u8>) {
    let header = SpectrogramHeader {
        width: s.width,
        height: s.height,
        freq_axis: match s.freq_axis {
            FreqAxis::Linear { max_hz } => WireFreqAxis::Linear { max_hz },
            FreqAxis::Log { min_hz, max_hz } => WireFreqAxis::Log { min_hz, max_hz },
        },
        start_secs: s.start_secs,
        end_secs: s.end_secs,
        transform: match s.transform {
            Transform::Stft => WireTransform::Stft,
            Transform::Cwt => WireTransform::Cwt,
        },
        columns_done: s.columns_done,
    };
    let mut payload = Vec::with_capacity(s.width * s.height * 4);
    for i in 0..s.width * s.height {
        payload.extend_from_slice(&s.db.get(i).copied().unwrap_or(f32::MIN).to_le_bytes());
    }
    (header, payload)
}

/// The spectrogram a header and payload describe.
pub fn spectrogram_from_wire(h: &SpectrogramHeader, payload: &[u8]) -> Spectrogram {
    Spectrogram {
        width: h.width,
        height: h.height,
        db: payload
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        freq_axis: match h.freq_axis {
            WireFreqAxis::Linear { max_hz } => FreqAxis::Linear { max_hz },
            WireFreqAxis::Log { min_hz, max_hz } => FreqAxis::Log { min_hz, max_hz },
        },
        start_secs: h.start_secs,
        end_secs: h.end_secs,
        transform: match h.transform {
            WireTransform::Stft => Transform::Stft,
            WireTransform::Cwt => Transform::Cwt,
        },
        columns_done: h.columns_done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire format is a contract between two builds of reframe: these exact strings change
    /// only with [`PREVIEW_PROTOCOL_VERSION`].
    #[test]
    fn pinned_json() {
        let req = WorkerRequest::Preview {
            id: 4,
            request: PreviewRequest::Frame {
                input: "/v/a.mp4".into(),
                frame_index: 12,
                engine: "lanczos".into(),
                scale: 2.0,
                denoise: None,
                models_dir: None,
                approximate: false,
            },
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"type":"preview","id":4,"request":{"kind":"frame","input":"/v/a.mp4","frame_index":12,"engine":"lanczos","scale":2.0,"denoise":null}}"#
        );
        assert_eq!(
            serde_json::to_string(&WorkerRequest::Cancel { id: 4 }).unwrap(),
            r#"{"type":"cancel","id":4}"#
        );
        let reply = WorkerReply::Frame {
            id: 4,
            frame_index: 12,
            time_secs: 0.5,
            before: ImageHeader {
                width: 2,
                height: 1,
            },
            after: ImageHeader {
                width: 4,
                height: 2,
            },
            payload_bytes: 40,
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"type":"frame","id":4,"frame_index":12,"time_secs":0.5,"before":{"width":2,"height":1},"after":{"width":4,"height":2},"payload_bytes":40}"#
        );
        let reply = WorkerReply::FrameBefore {
            id: 4,
            frame_index: 12,
            time_secs: 0.5,
            before: ImageHeader {
                width: 2,
                height: 1,
            },
            payload_bytes: 8,
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"type":"frame-before","id":4,"frame_index":12,"time_secs":0.5,"before":{"width":2,"height":1},"payload_bytes":8}"#
        );
        let s = Spectrogram {
            width: 1,
            height: 2,
            db: vec![-10.0, -20.0],
            freq_axis: FreqAxis::Log {
                min_hz: 20.0,
                max_hz: 20000.0,
            },
            start_secs: 1.0,
            end_secs: 2.0,
            transform: Transform::Cwt,
            columns_done: 1,
        };
        let (header, payload) = spectrogram_to_wire(&s);
        let reply = WorkerReply::Spectrogram {
            id: 9,
            overview: false,
            done: true,
            spectrogram: header,
            payload_bytes: payload.len() as u64,
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"type":"spectrogram","id":9,"overview":false,"done":true,"spectrogram":{"width":1,"height":2,"freq_axis":{"scale":"log","min_hz":20.0,"max_hz":20000.0},"start_secs":1.0,"end_secs":2.0,"transform":"cwt","columns_done":1},"payload_bytes":8}"#
        );
        assert_eq!(spectrogram_from_wire(&header, &payload), s);
    }

    #[test]
    fn messages_round_trip_and_bad_ones_are_errors() {
        let reply = WorkerReply::Frame {
            id: 1,
            frame_index: 0,
            time_secs: 0.0,
            before: ImageHeader {
                width: 1,
                height: 1,
            },
            after: ImageHeader {
                width: 1,
                height: 2,
            },
            payload_bytes: 12,
        };
        let mut bytes = Vec::new();
        write_message(&mut bytes, &reply, &[&[1, 2, 3, 4], &[5; 8]]).unwrap();
        write_message(&mut bytes, &WorkerReply::Cancelled { id: 2 }, &[]).unwrap();
        let mut input = &bytes[..];
        let m = read_message(&mut input).unwrap().unwrap();
        assert_eq!(m.header, reply);
        assert_eq!(m.parts, [vec![1, 2, 3, 4], vec![5; 8]]);
        let m = read_message(&mut input).unwrap().unwrap();
        assert!(m.header.is_terminal() && m.parts.is_empty());
        assert!(read_message(&mut input).unwrap().is_none());

        // A keyframe's picture: one part; the last reply only of an approximate request.
        let approx = |done: bool, payload_bytes: u64| WorkerReply::FrameApprox {
            id: 1,
            frame_index: 7,
            picture_index: 4,
            time_secs: 0.3,
            picture: ImageHeader {
                width: 1,
                height: 2,
            },
            display: ImageHeader {
                width: 4,
                height: 8,
            },
            done,
            payload_bytes,
        };
        for done in [false, true] {
            let mut bytes = Vec::new();
            write_message(&mut bytes, &approx(done, 8), &[&[9; 8]]).unwrap();
            let m = read_message(&mut &bytes[..]).unwrap().unwrap();
            assert_eq!(m.header, approx(done, 8));
            assert_eq!(m.parts, [vec![9; 8]]);
            assert_eq!(m.header.is_terminal(), done);
        }
        // Its payload is the picture's, not the display size's.
        let mut bytes = Vec::new();
        write_message(&mut bytes, &approx(false, 128), &[&[0; 128]]).unwrap();
        assert!(read_message(&mut &bytes[..]).is_err());

        // A frame's early "before" image: one part, not the request's last reply.
        let before = WorkerReply::FrameBefore {
            id: 1,
            frame_index: 0,
            time_secs: 0.0,
            before: ImageHeader {
                width: 1,
                height: 1,
            },
            payload_bytes: 4,
        };
        let mut early = Vec::new();
        write_message(&mut early, &before, &[&[9, 8, 7, 6]]).unwrap();
        let m = read_message(&mut &early[..]).unwrap().unwrap();
        assert_eq!(m.header, before);
        assert!(!m.header.is_terminal());
        assert_eq!(m.parts, [vec![9, 8, 7, 6]]);

        // Torn payload, inconsistent size, garbage.
        let torn = &bytes[..bytes.len() - 30];
        assert!(read_message(&mut &torn[..]).is_err());
        let lying = br#"{"type":"frame","id":1,"frame_index":0,"time_secs":0,"before":{"width":1,"height":1},"after":{"width":1,"height":1},"payload_bytes":999}"#;
        assert!(read_message(&mut &[&lying[..], b"\n"].concat()[..]).is_err());
        assert!(read_message(&mut &b"hello world\n"[..]).is_err());
    }
}
