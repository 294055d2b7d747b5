//! Parsing ffmpeg's machine-readable progress (`-progress pipe:1`).
//!
//! ffmpeg writes a block of `key=value` lines every `-stats_period` (0.5 s by default), each
//! block ending with `progress=continue`, the last one with `progress=end`. Reading that
//! rather than the human status line on stderr is stable across versions and locales. The
//! parser is fed one line at a time and yields one [`ProgressUpdate`] per block; it is tested
//! on blocks captured from real runs (`testdata/progress/`).

/// One progress block.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProgressUpdate {
    /// Frames written so far (`None` for audio-only outputs).
    pub frame: Option<u64>,
    /// Output position in microseconds; `None` when ffmpeg printed `N/A` or a negative
    /// value (nothing muxed yet).
    pub out_time_us: Option<u64>,
    /// Encoding speed in frames per second, as ffmpeg averages it.
    pub fps: Option<f64>,
    /// Speed relative to real time (`2.3x` → 2.3); `None` for `N/A`.
    pub speed: Option<f64>,
    /// True for the last block (`progress=end`).
    pub finished: bool,
}

/// Accumulates `key=value` lines until a `progress=` line completes a block.
#[derive(Debug, Default)]
pub struct ProgressParser {
    current: ProgressUpdate,
    /// `out_time=HH:MM:SS.micro`, used when `out_time_us` is absent.
    out_time_fallback_us: Option<u64>,
}

impl ProgressParser {
    pub fn new() -> ProgressParser {
        ProgressParser::default()
    }

    /// Takes one line (with or without its line ending). Returns the finished block at each
    /// `progress=continue|end`; unknown keys and lines without `=` are ignored.
    pub fn feed_line(&mut self, line: &str) -> Option<ProgressUpdate> {
        let (key, value) = line.trim().split_once('=')?;
        let value = value.trim();
        match key.trim() {
            "frame" => self.current.frame = value.parse().ok(),
            "fps" => self.current.fps = parse_float(value),
            "out_time_us" => self.current.out_time_us = parse_micros(value),
            "out_time" => self.out_time_fallback_us = parse_clock_micros(value),
            "speed" => self.current.speed = value.strip_suffix('x').and_then(parse_float),
            "progress" => {
                let mut update = std::mem::take(&mut self.current);
                if update.out_time_us.is_none() {
                    update.out_time_us = self.out_time_fallback_us;
                }
                self.out_time_fallback_us = None;
                update.finished = value == "end";
                return Some(update);
            }
            _ => {}
        }
        None
    }
}

fn parse_float(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// A non-negative integer count of microseconds (ffmpeg prints `-9223372036854775807` or
/// `N/A` before anything has been written).
fn parse_micros(value: &str) -> Option<u64> {
    value
        .parse::<i64>()
        .ok()
        .and_then(|v| u64::try_from(v).ok())
}

/// `HH:MM:SS.ffffff` to microseconds; negative clocks (`-577014:32:22.775808`) give `None`.
fn parse_clock_micros(value: &str) -> Option<u64> {
    if value.starts_with('-') {
        return None;
    }
    let mut parts = value.splitn(3, ':');
    let hours: u64 = parts.next()?.parse().ok()?;
    let minutes: u64 = parts.next()?.parse().ok()?;
    let rest = parts.next()?;
    let (secs, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let secs: u64 = secs.parse().ok()?;
    let mut micros = 0u64;
    let mut scale = 100_000u64;
    for digit in frac.chars().take(6) {
        micros += u64::from(digit.to_digit(10)?) * scale;
        scale /= 10;
    }
    Some(((hours * 60 + minutes) * 60 + secs) * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> Vec<ProgressUpdate> {
        let mut parser = ProgressParser::new();
        text.lines().filter_map(|l| parser.feed_line(l)).collect()
    }

    #[test]
    fn x264_to_null_with_na_values() {
        let updates = parse_all(include_str!("testdata/progress/x264_null.txt"));
        assert_eq!(
            updates,
            [
                ProgressUpdate {
                    frame: Some(1),
                    out_time_us: Some(0),
                    fps: Some(0.0),
                    speed: None, // speed=N/A
                    finished: false,
                },
                ProgressUpdate {
                    frame: Some(100),
                    out_time_us: Some(3_920_000),
                    fps: Some(0.0),
                    speed: Some(5.23),
                    finished: true,
                },
            ]
        );
    }

    #[test]
    fn padded_speed_values() {
        // "speed=   0x", "speed= 2.3x": ffmpeg pads the number.
        let updates = parse_all(include_str!("testdata/progress/x264_aac_mp4.txt"));
        assert_eq!(updates.len(), 3);
        assert_eq!(updates[0].speed, Some(0.0));
        assert_eq!(updates[1].frame, Some(73));
        assert_eq!(updates[1].out_time_us, Some(139_320));
        assert_eq!(updates[1].speed, Some(0.251));
        assert_eq!(updates[2].frame, Some(75));
        assert_eq!(updates[2].fps, Some(57.05));
        assert_eq!(updates[2].speed, Some(2.3));
        assert!(updates[2].finished && !updates[1].finished);
    }

    #[test]
    fn many_blocks_frames_increase() {
        let updates = parse_all(include_str!("testdata/progress/x265_mkv.txt"));
        assert_eq!(updates.len(), 13);
        assert!(updates.windows(2).all(|w| w[0].frame <= w[1].frame));
        assert_eq!(updates.iter().filter(|u| u.finished).count(), 1);
        let last = updates[12];
        assert_eq!(last.frame, Some(50));
        assert_eq!(last.out_time_us, Some(1_881_000));
        assert_eq!(last.speed, Some(0.321));
    }

    #[test]
    fn missing_and_unset_times() {
        let mut parser = ProgressParser::new();
        for line in [
            "frame=0\r\n",
            "fps=N/A",
            "out_time_us=N/A",
            "out_time=N/A",
            "speed=N/A",
        ] {
            assert_eq!(parser.feed_line(line), None);
        }
        let update = parser.feed_line("progress=continue\n").unwrap();
        assert_eq!(
            update,
            ProgressUpdate {
                frame: Some(0),
                ..ProgressUpdate::default()
            }
        );
        parser.feed_line("out_time_us=-9223372036854775807");
        parser.feed_line("out_time=-577014:32:22.775808");
        assert_eq!(
            parser.feed_line("progress=continue").unwrap().out_time_us,
            None
        );
        // Only the clock form present (older ffmpeg): still read.
        parser.feed_line("out_time=01:02:03.250000");
        assert_eq!(
            parser.feed_line("progress=end").unwrap().out_time_us,
            Some(3_723_250_000)
        );
        // Noise is ignored.
        assert_eq!(parser.feed_line(""), None);
        assert_eq!(parser.feed_line("garbage"), None);
    }
}
