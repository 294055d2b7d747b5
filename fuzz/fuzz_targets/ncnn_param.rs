//! An ncnn model (`.param` text, then `.bin` weights) from a user's models folder: loaded or
//! refused with the reason, never a panic. The input is split at its first NUL byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (param, bin) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(param);
    let _ = reframe::neural::param::parse(&text);
    let _ = reframe::neural::Net::parse(&text, bin);
});
