//! Every frame's presentation time for one stream: the basis of chunk boundaries.
//!
//! Chunk k is frames [k·N, (k+1)·N) in presentation order, so reframe needs each frame's pts
//! (VFR included) before cutting anything. Packet headers give them without decoding
//! (`ffprobe -show_entries packet=pts,flags`); streams whose packets lack timestamps (raw
//! elementary streams, some AVI) fall back to decoding, then to the base frame rate.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::probe::{ProbeError, Rational, check_input, run_ffprobe};
use super::tools::{Tools, file_arg};

/// One frame's presentation time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameTime {
    /// Presentation timestamp in the stream's time base (as `-copyts -ss` sees it).
    pub pts: i64,
    /// `pts × time_base`, in seconds (not shifted by the start time).
    pub time_secs: f64,
    pub keyframe: bool,
}

/// Where the timestamps came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampSource {
    /// Packet headers (fast, no decoding).
    Packets,
    /// Decoded frames' best-effort timestamps (some packets had none).
    DecodedFrames,
    /// Neither had timestamps (raw elementary streams): frame index ÷ base frame rate.
    Synthesized,
}

/// Every frame of one stream in presentation order.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameTimes {
    pub stream_index: usize,
    pub time_base: Rational,
    pub frames: Vec<FrameTime>,
    pub source: TimestampSource,
}

impl FrameTimes {
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The index of the frame with this pts.
    pub fn index_of(&self, pts: i64) -> Option<u64> {
        self.frames
            .binary_search_by_key(&pts, |f| f.pts)
            .ok()
            .map(|i| i as u64)
    }

    /// The last keyframe at or before frame `index` (the last frame, for an index past it).
    pub fn keyframe_at_or_before(&self, index: u64) -> Option<u64> {
        let end = usize::try_from(index)
            .map_or(usize::MAX, |i| i.saturating_add(1))
            .min(self.frames.len());
        self.frames[..end]
            .iter()
            .rposition(|f| f.keyframe)
            .map(|i| i as u64)
    }

    /// True when frame durations vary by more than timestamp rounding explains: more than
    /// one time-base tick and more than 1 % away from the median duration.
    pub fn is_vfr(&self) -> bool {
        let mut deltas: Vec<i64> = self
            .frames
            .windows(2)
            .map(|w| w[1].pts - w[0].pts)
            .collect();
        if deltas.len() < 2 {
            return false;
        }
        deltas.sort_unstable();
        let median = deltas[deltas.len() / 2];
        let tolerance = (median / 100).max(1);
        deltas.iter().any(|d| (d - median).abs() > tolerance)
    }
}

/// Lists every frame's timestamp and keyframe flag for stream `stream_index` (absolute
/// index), sorted by pts. Packets flagged discard (edit-list pre-roll) are left out, as
/// decoders drop them. Reads packet headers only; decodes only when some packet has no pts.
pub fn frame_times(
    tools: &Tools,
    input: &Path,
    stream_index: usize,
) -> Result<FrameTimes, ProbeError> {
    listed_frame_times(tools, input, &stream_index.to_string())
}

/// [`frame_times`] of the first video stream that is not a cover picture (the one
/// [`super::probe::MediaInfo::video`] names), found by ffprobe itself: the listing can start
/// before (or beside) the probe.
pub fn main_video_frame_times(tools: &Tools, input: &Path) -> Result<FrameTimes, ProbeError> {
    listed_frame_times(tools, input, "V:0")
}

fn listed_frame_times(
    tools: &Tools,
    input: &Path,
    streams: &str,
) -> Result<FrameTimes, ProbeError> {
    let (path, _) = check_input(input)?;
    let run = |entries: &str| -> Result<String, ProbeError> {
        let mut cmd = Command::new(&tools.ffprobe);
        cmd.args(["-v", "error", "-select_streams", streams])
            .args(["-show_entries", entries, "-of", "compact"])
            .arg(file_arg(&path));
        Ok(String::from_utf8_lossy(&run_ffprobe(cmd, &path)?).into_owned())
    };
    let listing_error = |detail: String| ProbeError::Parse {
        path: path.clone(),
        detail,
    };

    let packets = parse_listing(&run(
        "stream=index,time_base,r_frame_rate:packet=pts,flags",
    )?)
    .map_err(listing_error)?;
    let (Some(time_base), Some(stream_index)) = (packets.time_base, packets.stream_index) else {
        return Err(ProbeError::NoSuchStream {
            path,
            stream: streams.to_owned(),
        });
    };
    let listing = if packets.entries.iter().all(|e| e.pts.is_some()) {
        packets
    } else {
        log::debug!("packets without pts in stream {stream_index}: decoding for timestamps");
        parse_listing(&run(
            "stream=index,time_base,r_frame_rate:frame=best_effort_timestamp,key_frame",
        )?)
        .map_err(listing_error)?
    };
    build_frame_times(listing, stream_index, time_base).map_err(|detail| ProbeError::Unreadable {
        path: path.clone(),
        detail,
    })
}

/// The presentation time (in the stream's time base) of the first frame the decoder outputs,
/// decoding only the first `packets` packets; `None` when it outputs none there. For a stream
/// that does not start on a keyframe (a recording cut mid-GOP), the frames before this one
/// cannot be decoded: they reference pictures that are not in the file.
pub fn first_decoded_pts(
    tools: &Tools,
    input: &Path,
    stream_index: usize,
    packets: usize,
) -> Result<Option<i64>, ProbeError> {
    let (path, _) = check_input(input)?;
    let mut cmd = Command::new(&tools.ffprobe);
    cmd.args(["-v", "error", "-select_streams"])
        .arg(stream_index.to_string())
        .args(["-read_intervals", &format!("%+#{packets}")])
        .args([
            "-show_entries",
            "stream=time_base,r_frame_rate:frame=best_effort_timestamp,key_frame",
            "-of",
            "compact",
        ])
        .arg(file_arg(&path));
    let text = String::from_utf8_lossy(&run_ffprobe(cmd, &path)?).into_owned();
    let listing = parse_listing(&text).map_err(|detail| ProbeError::Parse {
        path: path.clone(),
        detail,
    })?;
    Ok(listing.entries.iter().filter_map(|e| e.pts).min())
}

/// One line of a packet or frame listing.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ListedFrame {
    pts: Option<i64>,
    keyframe: bool,
}

#[derive(Debug, Default, PartialEq)]
struct Listing {
    /// The stream's absolute index.
    stream_index: Option<usize>,
    time_base: Option<Rational>,
    r_frame_rate: Option<Rational>,
    entries: Vec<ListedFrame>,
    from_frames: bool,
}

/// Parses `ffprobe -show_entries stream=…:packet=pts,flags -of compact` (or the `frame=`
/// variant): lines like `packet|pts=512|flags=K_`, `frame|key_frame=1|best_effort_timestamp=0`
/// and `stream|index=0|r_frame_rate=25/1|time_base=1/12800`. Values are looked up by key, so field
/// order does not matter; side-data sub-sections and blank lines are skipped.
fn parse_listing(text: &str) -> Result<Listing, String> {
    let mut listing = Listing::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut fields = line.split('|');
        let section = fields.next().unwrap_or_default();
        let values: BTreeMap<&str, &str> = fields.filter_map(|f| f.split_once('=')).collect();
        let timestamp = |key: &str| -> Result<Option<i64>, String> {
            match values.get(key) {
                None | Some(&"N/A") => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("bad {key} in line {line:?}")),
            }
        };
        match section {
            "packet" => {
                let flags = values.get("flags").copied().unwrap_or_default();
                // 'D': discarded by the decoder (e.g. before an edit list's start).
                if flags.contains('D') {
                    continue;
                }
                listing.entries.push(ListedFrame {
                    pts: timestamp("pts")?,
                    keyframe: flags.starts_with('K'),
                });
            }
            "frame" => {
                listing.from_frames = true;
                listing.entries.push(ListedFrame {
                    pts: timestamp("best_effort_timestamp")?,
                    keyframe: values.get("key_frame") == Some(&"1"),
                });
            }
            "stream" => {
                listing.stream_index = values.get("index").and_then(|v| v.parse().ok());
                listing.time_base = values.get("time_base").and_then(|v| Rational::parse(v));
                listing.r_frame_rate = values
                    .get("r_frame_rate")
                    .and_then(|v| Rational::parse(v))
                    .filter(|r| r.num > 0);
            }
            _ => {}
        }
    }
    Ok(listing)
}

/// Sorts a listing into [`FrameTimes`], synthesizing timestamps from the base frame rate
/// when the listing has none.
fn build_frame_times(
    listing: Listing,
    stream_index: usize,
    time_base: Rational,
) -> Result<FrameTimes, String> {
    let time_base = listing.time_base.unwrap_or(time_base);
    let tb = time_base.as_f64();
    // (position, pts) of the entries that have a timestamp.
    let known: Vec<(usize, i64)> = listing
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((i, e.pts?)))
        .collect();
    let complete = known.len() == listing.entries.len();
    let source = if complete && !listing.from_frames {
        TimestampSource::Packets
    } else if listing.from_frames && !known.is_empty() {
        // Decoded frames come in presentation order; a few may have no timestamp (a B-frame
        // stream's first or last frame in AVI or MPEG-PS). The decoder gives those the
        // neighbouring frame's time ± one frame, and so does this.
        TimestampSource::DecodedFrames
    } else {
        TimestampSource::Synthesized
    };
    // ticks per frame = 1 / (rate × time_base) = (tb.den × rate.den) / (tb.num × rate.num)
    let ticks_per_frame = if complete {
        0.0
    } else {
        let rate = listing
            .r_frame_rate
            .ok_or_else(|| "the stream has neither timestamps nor a frame rate".to_string())?;
        (time_base.den as f64 * rate.den as f64) / (time_base.num as f64 * rate.num as f64)
    };
    let mut frames: Vec<FrameTime> = listing
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let pts = match (source, e.pts) {
                (TimestampSource::Synthesized, _) => (i as f64 * ticks_per_frame).round() as i64,
                (_, Some(pts)) => pts,
                (_, None) => fill_gap(&known, i, ticks_per_frame),
            };
            FrameTime {
                pts,
                time_secs: pts as f64 * tb,
                keyframe: e.keyframe,
            }
        })
        .collect();
    frames.sort_by_key(|f| f.pts);
    Ok(FrameTimes {
        stream_index,
        time_base,
        frames,
        source,
    })
}

/// The time of frame `i`, which has none, from the nearest frame before it that has one (or,
/// for leading frames, the nearest after it): `known` is (position, pts), sorted by position.
fn fill_gap(known: &[(usize, i64)], i: usize, ticks_per_frame: f64) -> i64 {
    let after = known.partition_point(|&(at, _)| at < i);
    let (at, pts) = if after > 0 {
        known[after - 1]
    } else {
        known[after]
    };
    pts + ((i as f64 - at as f64) * ticks_per_frame).round() as i64
}

/// Number of packets of the first video stream of `file` (one per frame for the video
/// reframe writes), counted by ffprobe without decoding. For a playlist or manifest, the
/// first video stream it lists.
pub fn count_video_packets(tools: &Tools, file: &Path) -> Result<u64, ProbeError> {
    let mut cmd = Command::new(&tools.ffprobe);
    cmd.args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(file_arg(file));
    let out = run_ffprobe(cmd, file)?;
    let text = String::from_utf8_lossy(&out);
    text.lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<u64>().ok())
        .next()
        .ok_or_else(|| ProbeError::Parse {
            path: file.to_path_buf(),
            detail: format!("no packet count in ffprobe's answer {:?}", text.trim()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_support::{count_frames, ffmpeg, tools};
    use std::ffi::OsString;

    #[test]
    fn frames_are_found_by_pts_and_keyframes_before_them() {
        let times = FrameTimes {
            stream_index: 0,
            time_base: Rational { num: 1, den: 24 },
            frames: [false, true, false, false, true, false]
                .iter()
                .enumerate()
                .map(|(i, &keyframe)| FrameTime {
                    pts: 10 * i as i64,
                    time_secs: i as f64 / 2.4,
                    keyframe,
                })
                .collect(),
            source: TimestampSource::Packets,
        };
        assert_eq!(times.index_of(30), Some(3));
        assert_eq!(times.index_of(31), None);
        assert_eq!(times.keyframe_at_or_before(0), None);
        assert_eq!(times.keyframe_at_or_before(1), Some(1));
        assert_eq!(times.keyframe_at_or_before(3), Some(1));
        assert_eq!(times.keyframe_at_or_before(5), Some(4));
        assert_eq!(times.keyframe_at_or_before(99), Some(4));
        assert_eq!(times.keyframe_at_or_before(u64::MAX), Some(4));
    }

    #[test]
    fn listing_parser_handles_side_data_discard_and_missing_pts() {
        let text = "packet|pts=-6656|flags=KD\n\
                    packet|pts=1024|flags=K_\n\
                    packet|pts=0|flags=__\n\
                    packet|pts=512|flags=__|side_data|\n\
                    \n\
                    stream|r_frame_rate=25/1|time_base=1/12800\n";
        let listing = parse_listing(text).unwrap();
        assert_eq!(listing.time_base, Some(Rational { num: 1, den: 12800 }));
        assert_eq!(listing.entries.len(), 3);
        let times = build_frame_times(listing, 0, Rational::ONE).unwrap();
        assert_eq!(times.source, TimestampSource::Packets);
        let pts: Vec<i64> = times.frames.iter().map(|f| f.pts).collect();
        assert_eq!(pts, [0, 512, 1024]);
        assert!(times.frames[2].keyframe && !times.frames[0].keyframe);
        assert_eq!(times.frames[1].time_secs, 0.04);

        let raw = "frame|key_frame=1|best_effort_timestamp=N/A|side_data|\n\n\
                   frame|key_frame=0|best_effort_timestamp=N/A\n\
                   frame|key_frame=0|best_effort_timestamp=N/A\n\
                   stream|r_frame_rate=25/1|time_base=1/1200000\n";
        let times = build_frame_times(parse_listing(raw).unwrap(), 0, Rational::ONE).unwrap();
        assert_eq!(times.source, TimestampSource::Synthesized);
        let pts: Vec<i64> = times.frames.iter().map(|f| f.pts).collect();
        assert_eq!(pts, [0, 48000, 96000]);
        assert!(parse_listing("packet|pts=abc|flags=K_").is_err());
    }

    #[test]
    fn decoded_frames_without_a_timestamp_take_their_neighbours_time() {
        // An MPEG-4 part 2 AVI with B-frames: the first and last decoded frames have none,
        // and the others start at one frame, not zero.
        let avi = "frame|key_frame=1|best_effort_timestamp=N/A\n\
                   frame|key_frame=0|best_effort_timestamp=2\n\
                   frame|key_frame=0|best_effort_timestamp=3\n\
                   frame|key_frame=0|best_effort_timestamp=N/A\n\
                   frame|key_frame=0|best_effort_timestamp=N/A\n\
                   stream|r_frame_rate=25/1|time_base=1/25\n";
        let times = build_frame_times(parse_listing(avi).unwrap(), 0, Rational::ONE).unwrap();
        assert_eq!(times.source, TimestampSource::DecodedFrames);
        let pts: Vec<i64> = times.frames.iter().map(|f| f.pts).collect();
        assert_eq!(pts, [1, 2, 3, 4, 5]);
        assert!(times.frames[0].keyframe);
        // In a 90 kHz time base (MPEG-PS), one frame at 25 fps is 3600 ticks.
        let ps = "frame|key_frame=1|best_effort_timestamp=N/A\n\
                  frame|key_frame=0|best_effort_timestamp=48600\n\
                  stream|r_frame_rate=25/1|time_base=1/90000\n";
        let times = build_frame_times(parse_listing(ps).unwrap(), 0, Rational::ONE).unwrap();
        let pts: Vec<i64> = times.frames.iter().map(|f| f.pts).collect();
        assert_eq!(pts, [45000, 48600]);
    }

    #[test]
    fn vfr_detection_tolerates_rounding() {
        let times = |pts: &[i64]| FrameTimes {
            stream_index: 0,
            time_base: Rational { num: 1, den: 1000 },
            frames: pts
                .iter()
                .map(|&pts| FrameTime {
                    pts,
                    time_secs: pts as f64 / 1000.0,
                    keyframe: false,
                })
                .collect(),
            source: TimestampSource::Packets,
        };
        // 29.97 fps in milliseconds: 33/34 ms alternating is constant rate.
        assert!(!times(&[0, 33, 67, 100, 133, 167, 200]).is_vfr());
        assert!(times(&[0, 40, 80, 160, 200, 240]).is_vfr());
        assert!(!times(&[0]).is_vfr());
    }

    fn assert_frame_times_match_decoder(path: &Path, expect_vfr: bool) -> FrameTimes {
        let tools = tools();
        let times = frame_times(&tools, path, 0).unwrap();
        assert_eq!(
            times.len() as u64,
            count_frames(&tools, path, 0),
            "{path:?}"
        );
        for pair in times.frames.windows(2) {
            assert!(pair[0].pts < pair[1].pts, "not increasing: {pair:?}");
        }
        assert_eq!(times.is_vfr(), expect_vfr, "{path:?}");
        times
    }

    #[test]
    fn frame_times_on_vfr_and_b_frames() {
        let tools = tools();
        let dir = tempfile::tempdir().unwrap();
        let src = [
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x90:rate=25",
            "-t",
            "2",
        ];

        let vfr = dir.path().join("vfr.mp4");
        ffmpeg(
            &tools,
            &src,
            &[
                "-vf",
                r"select='not(eq(mod(n\,7)\,3))'",
                "-fps_mode",
                "vfr",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
            ],
            &vfr,
        );
        let times = assert_frame_times_match_decoder(&vfr, true);
        assert_eq!(times.len(), 43);
        assert_eq!(times.source, TimestampSource::Packets);
        assert!(times.frames[0].keyframe);

        let bframes = dir.path().join("bframes.mp4");
        ffmpeg(
            &tools,
            &src,
            &[
                "-c:v", "libx264", "-bf", "3", "-g", "12", "-pix_fmt", "yuv420p",
            ],
            &bframes,
        );
        let times = assert_frame_times_match_decoder(&bframes, false);
        assert_eq!(times.len(), 50);
        assert_eq!(times.time_base, Rational { num: 1, den: 12800 });
        assert_eq!(times.frames[1].time_secs, 0.04);
        assert_eq!(times.frames.iter().filter(|f| f.keyframe).count(), 5);

        // An edit list starting mid-GOP: the pre-roll packets are flagged discard and must
        // not be counted (the decoder drops them).
        let cut = dir.path().join("cut.mp4");
        let input = [
            OsString::from("-ss"),
            "0.6".into(),
            "-i".into(),
            file_arg(&bframes),
        ];
        ffmpeg(&tools, &input, &["-map", "0:v", "-c", "copy"], &cut);
        let times = assert_frame_times_match_decoder(&cut, false);
        assert!(times.len() < 50);
    }

    #[test]
    fn frame_times_without_packet_timestamps_decodes_or_synthesizes() {
        let tools = tools();
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.h264");
        ffmpeg(
            &tools,
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x90:rate=25",
                "-t",
                "1",
            ],
            &[
                "-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p", "-f", "h264",
            ],
            &raw,
        );
        let times = frame_times(&tools, &raw, 0).unwrap();
        assert_eq!(times.len() as u64, count_frames(&tools, &raw, 0));
        assert_ne!(times.source, TimestampSource::Packets);
        assert!(times.frames.windows(2).all(|w| w[0].pts < w[1].pts));
        assert!((times.frames[24].time_secs - 0.96).abs() < 1e-9);
    }

    #[test]
    fn the_main_video_stream_is_found_by_ffprobe() {
        let tools = tools();
        let dir = tempfile::tempdir().unwrap();
        // Audio first, then the video: the listing says which stream it found.
        let clip = dir.path().join("clip.mkv");
        ffmpeg(
            &tools,
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=duration=1",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=64x36:rate=10:duration=1",
            ],
            &["-map", "0", "-map", "1", "-c:v", "libx264", "-c:a", "flac"],
            &clip,
        );
        let main = main_video_frame_times(&tools, &clip).unwrap();
        assert_eq!(main.stream_index, 1);
        assert_eq!(main, frame_times(&tools, &clip, 1).unwrap());
        assert_eq!(main.len(), 10);
        // A file without video: the stream is named as asked.
        let audio = dir.path().join("audio.flac");
        ffmpeg(
            &tools,
            &["-f", "lavfi", "-i", "sine=duration=1"],
            &[],
            &audio,
        );
        let err = main_video_frame_times(&tools, &audio).unwrap_err();
        assert!(
            matches!(&err, ProbeError::NoSuchStream { stream, .. } if stream == "V:0"),
            "{err:?}"
        );
    }

    #[test]
    fn frame_times_errors() {
        let tools = tools();
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.mkv");
        ffmpeg(
            &tools,
            &["-f", "lavfi", "-i", "testsrc=size=64x36:rate=5", "-t", "1"],
            &["-c:v", "ffv1"],
            &clip,
        );
        let err = frame_times(&tools, &clip, 3).unwrap_err();
        assert!(
            matches!(&err, ProbeError::NoSuchStream { stream, .. } if stream == "3"),
            "{err:?}"
        );
        let err = frame_times(&tools, &dir.path().join("gone.mkv"), 0).unwrap_err();
        assert!(matches!(err, ProbeError::Missing { .. }), "{err:?}");
    }
}
