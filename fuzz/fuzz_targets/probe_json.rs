//! ffprobe's JSON (`-show_format -show_streams -show_chapters`, and the first frame's HDR side
//! data) as the probe reads it: any bytes give a `MediaInfo` or an error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(info) = reframe::media::probe::parse_probe_json(&text, Path::new("/fuzz/input.mkv")) {
        // What the pipeline asks of a probed file next.
        let _ = info.video.display_size();
        let _ = info.video.frame_rate();
    }
    let _ = reframe::media::hdr::parse_hdr_metadata(&text);
});
