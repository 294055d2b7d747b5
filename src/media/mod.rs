//! Everything that talks to ffmpeg, ffprobe and mkvmerge.
//!
//! The rest of reframe never builds a `Command` for these tools by hand or parses their text:
//! - [`tools`] finds the executables (env override or `PATH`) and names files safely;
//! - [`process`] spawns children with drained stderr, parent-death kill and kill-on-drop;
//! - [`probe`] turns ffprobe output into typed [`probe::MediaInfo`], and [`frames`] lists
//!   every frame's timestamp (the basis of chunking);
//! - [`hdr`] reads an HDR source's mastering display and light levels, [`mkv_times`] the
//!   frame times of a chunk file without a process;
//! - [`progress`] parses `-progress pipe:1` output.
//!
//! Parsers are pure functions tested on output captured from the real tools (`testdata/`).

pub mod frames;
pub mod hdr;
pub mod mkv_times;
pub mod probe;
pub mod process;
pub mod progress;
pub mod tools;

pub use frames::{FrameTime, FrameTimes, TimestampSource, frame_times};
pub use probe::{MediaInfo, ProbeError, VideoStream, probe};
pub use process::{ProcessError, Spawned, run_capture, spawn, spawn_with_stdin};
pub use progress::{ProgressParser, ProgressUpdate};
pub use tools::{ToolError, Tools, file_arg, locate_mkvmerge};

/// Helpers for tests that run the real ffmpeg.
#[cfg(test)]
pub(crate) mod test_support {
    use std::ffi::OsStr;
    use std::path::Path;
    use std::process::Command;

    use super::tools::{Tools, file_arg};

    /// The installed tools, or a panic that says how to install them.
    pub fn tools() -> Tools {
        Tools::locate().unwrap_or_else(|e| {
            panic!("this test runs the real ffmpeg/ffprobe, which could not be used: {e}")
        })
    }

    /// Runs `ffmpeg -v error -nostdin -y <input_args> <output_args> file:<out>`.
    pub fn ffmpeg<I: AsRef<OsStr>>(
        tools: &Tools,
        input_args: &[I],
        output_args: &[&str],
        out: &Path,
    ) {
        let output = Command::new(&tools.ffmpeg)
            .args(["-v", "error", "-nostdin", "-y"])
            .args(input_args)
            .args(output_args)
            .arg(file_arg(out))
            .output()
            .expect("ffmpeg runs");
        assert!(
            output.status.success(),
            "ffmpeg failed making {}: {}",
            out.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The number of frames the decoder outputs for a stream (`ffprobe -count_frames`).
    pub fn count_frames(tools: &Tools, path: &Path, stream_index: usize) -> u64 {
        let output = Command::new(&tools.ffprobe)
            .args(["-v", "error", "-count_frames", "-select_streams"])
            .arg(stream_index.to_string())
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(file_arg(path))
            .output()
            .expect("ffprobe runs");
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim().parse().unwrap_or_else(|_| {
            panic!("ffprobe -count_frames gave {text:?} for {}", path.display())
        })
    }
}
