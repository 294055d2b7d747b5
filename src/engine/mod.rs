//! Upscaling engines: what turns a decoded frame into a larger one.
//!
//! Two kinds exist because they run in different places (DESIGN §3):
//! * filter engines (Lanczos) are ffmpeg's own scalers and run inside ffmpeg's filter graph,
//!   so frames never leave ffmpeg (a pipe round trip measured 3× slower);
//! * frame engines implement [`Upscaler`] in this process and sit between a decoding and an
//!   encoding ffmpeg (the "pipe path"). Neural engines are frame engines.
//!
//! The registry here is the one place that knows which engines exist and what they accept.

mod identity;

use thiserror::Error;

pub use identity::Identity;

/// One planar yuv420p frame (the pipe path's wire format: 1.5 bytes per pixel, half of rgb24).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// Y plane, then U, then V; chroma planes are `ceil(w/2) × ceil(h/2)`.
    pub data: Vec<u8>,
}

impl Frame {
    /// Bytes of a yuv420p frame of this size.
    pub fn yuv420p_len(width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
    }
}

/// An engine of our own that runs on decoded frames.
pub trait Upscaler: Send {
    /// Size of the frame [`Upscaler::process`] returns for an input of this size.
    fn output_size(&self, width: u32, height: u32) -> (u32, u32);
    /// Upscale one frame.
    fn process(&mut self, input: &Frame) -> anyhow::Result<Frame>;
}

/// How an engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// Inside ffmpeg's filter graph: `scale=W:H:flags=<flags>`.
    FfmpegScale { flags: &'static str },
    /// In this process, between a decoding and an encoding ffmpeg.
    Frames,
}

/// What the user can pick.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub kind: EngineKind,
    /// Scale factors the engine accepts.
    pub scales: &'static [f64],
    /// Available denoise levels (empty: the engine has no denoise setting).
    pub denoise_levels: &'static [u8],
}

impl EngineInfo {
    /// A fresh frame engine instance; `None` for filter engines.
    pub fn instantiate(&self) -> Option<Box<dyn Upscaler>> {
        match self.name {
            "identity" => Some(Box::new(Identity)),
            _ => None,
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum EngineError {
    #[error("unknown engine \"{name}\"; available: {available}")]
    Unknown { name: String, available: String },
    #[error("engine {engine} does not support scale {scale}; supported: {supported}")]
    UnsupportedScale {
        engine: String,
        scale: f64,
        supported: String,
    },
    #[error("engine {engine} has no denoise setting")]
    NoDenoise { engine: String },
    #[error("engine {engine} supports denoise levels {supported}, not {level}")]
    UnsupportedDenoise {
        engine: String,
        level: u8,
        supported: String,
    },
}

const SCALES: &[f64] = &[1.5, 2.0, 3.0, 4.0];

const LANCZOS: EngineInfo = EngineInfo {
    name: "lanczos",
    description: "ffmpeg's Lanczos scaler: fast, sharp, always available",
    kind: EngineKind::FfmpegScale { flags: "lanczos" },
    scales: SCALES,
    denoise_levels: &[],
};

/// Pass-through frame engine that exercises the pipe path; offered only when
/// `REFRAME_TEST_ENGINES=1` (tests and benchmarks), never to users.
const IDENTITY: EngineInfo = EngineInfo {
    name: "identity",
    description: "pass-through through the frame pipe (testing only)",
    kind: EngineKind::Frames,
    scales: SCALES,
    denoise_levels: &[],
};

fn test_engines_enabled() -> bool {
    std::env::var_os("REFRAME_TEST_ENGINES").is_some_and(|v| v == "1")
}

/// Engines available on this machine, in display order.
pub fn available() -> Vec<EngineInfo> {
    let mut engines = vec![LANCZOS];
    if test_engines_enabled() {
        engines.push(IDENTITY);
    }
    engines
}

/// Look up an engine and check the requested scale and denoise level against it.
pub fn resolve(
    name: &str,
    scale: Option<f64>,
    denoise: Option<u8>,
) -> Result<EngineInfo, EngineError> {
    let engines = available();
    let Some(info) = engines.iter().find(|e| e.name == name).cloned() else {
        return Err(EngineError::Unknown {
            name: name.to_owned(),
            available: engines
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    if let Some(scale) = scale
        && !info.scales.iter().any(|s| (s - scale).abs() < 1e-9)
    {
        return Err(EngineError::UnsupportedScale {
            engine: name.to_owned(),
            scale,
            supported: join_numbers(info.scales),
        });
    }
    if let Some(level) = denoise {
        if info.denoise_levels.is_empty() {
            return Err(EngineError::NoDenoise {
                engine: name.to_owned(),
            });
        }
        if !info.denoise_levels.contains(&level) {
            return Err(EngineError::UnsupportedDenoise {
                engine: name.to_owned(),
                level,
                supported: info
                    .denoise_levels
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(info)
}

fn join_numbers(values: &[f64]) -> String {
    values
        .iter()
        .map(f64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv420p_len_rounds_chroma_up() {
        assert_eq!(Frame::yuv420p_len(4, 2), 8 + 2 * 2);
        assert_eq!(Frame::yuv420p_len(5, 3), 15 + 2 * 3 * 2);
    }

    #[test]
    fn lanczos_accepts_listed_scales_only() {
        assert!(resolve("lanczos", Some(2.0), None).is_ok());
        assert!(resolve("lanczos", Some(1.5), None).is_ok());
        let err = resolve("lanczos", Some(2.5), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "engine lanczos does not support scale 2.5; supported: 1.5, 2, 3, 4"
        );
        assert_eq!(
            resolve("lanczos", Some(2.0), Some(1)).unwrap_err(),
            EngineError::NoDenoise {
                engine: "lanczos".into()
            }
        );
    }

    #[test]
    fn unknown_engine_lists_available_ones() {
        let err = resolve("esrgan-9000", None, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown engine \"esrgan-9000\"; available: lanczos")
        );
    }
}
