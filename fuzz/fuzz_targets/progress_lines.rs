//! ffmpeg's `-progress` key=value lines, fed line by line as they arrive from the pipe.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reframe::media::ProgressParser;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parser = ProgressParser::default();
    for line in text.split('\n') {
        let _ = parser.feed_line(line);
    }
});
