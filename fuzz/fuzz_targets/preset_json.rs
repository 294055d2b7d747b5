//! A preset file as the user wrote it: parsed and validated, then turned into ffmpeg options.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reframe::presets::Preset;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(preset) = Preset::parse(&text, "fuzz") {
        let _ = preset.digest();
        for rendition in preset.renditions() {
            let _ = preset.video_encoder_args(&rendition, 23.976, Some(1), &[]);
        }
        let _ = preset.audio_args();
        let _ = preset.output_extension();
    }
});
