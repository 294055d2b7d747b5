//! Audio spectrograms: the types the window draws (CONTRACTS.md, "spectrum").
//!
//! TEMPORARY in the `gui` branch: only the contract's types, so that the window compiles before
//! the spectrum branch lands; that branch's `src/spectrum/` replaces this file whole (the
//! decoding, STFT and CWT live there). Nothing here may be relied on beyond the contract.

/// Which transform made a spectrogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Stft,
    Cwt,
}

/// How rows map to frequencies; row 0 is the highest frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FreqAxis {
    Linear { max_hz: f32 },
    Log { min_hz: f32, max_hz: f32 },
}

/// dB values, row-major, row 0 = the highest frequency (top of the image), `width` columns
/// spanning [start_secs, end_secs).
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    pub width: usize,
    pub height: usize,
    pub db: Vec<f32>,
    pub freq_axis: FreqAxis,
    pub start_secs: f64,
    pub end_secs: f64,
    pub transform: Transform,
    /// < width while an overview is still streaming.
    pub columns_done: usize,
}

impl Spectrogram {
    /// RGBA pixels (`width × height × 4`), `floor_db` black-blue to `ceil_db` yellow-white.
    pub fn to_rgba(&self, floor_db: f32, ceil_db: f32) -> Vec<u8> {
        const STOPS: [[f32; 3]; 5] = [
            [0.0, 0.0, 0.02],
            [0.25, 0.05, 0.45],
            [0.75, 0.15, 0.35],
            [0.98, 0.55, 0.05],
            [0.99, 0.98, 0.75],
        ];
        let span = (ceil_db - floor_db).max(f32::EPSILON);
        let mut out = Vec::with_capacity(self.db.len() * 4);
        for value in &self.db {
            let t = ((value - floor_db) / span).clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
            let i = (t.floor() as usize).min(STOPS.len() - 2);
            let f = t - i as f32;
            for (low, high) in STOPS[i].iter().zip(&STOPS[i + 1]) {
                let v = low + (high - low) * f;
                out.push((v * 255.0).round() as u8);
            }
            out.push(255);
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpectrumError {
    #[error("the file has no audio track")]
    NoAudio,
    #[error("cancelled")]
    Cancelled,
    #[error("could not decode the audio: {0}")]
    Decode(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
