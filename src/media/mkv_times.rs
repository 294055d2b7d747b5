//! The frame times of a Matroska file's first track, read straight from its blocks — what a
//! finished chunk is checked against, without starting an ffprobe for each chunk (about a
//! tenth of a second each). Only what reframe's own chunk files contain is understood
//! (ffmpeg's and mkvmerge's muxers: elements of known size, SimpleBlocks or BlockGroups,
//! no lacing); anything else is an error, and the caller asks ffprobe instead.

use std::path::Path;

const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const EBML_HEADER: u32 = 0x1A45_DFA3;

/// Presentation times (seconds, sorted) of the blocks of track 1 in the file at `path`.
pub fn first_track_times(path: &Path) -> Result<Vec<f64>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    block_times(&bytes)
}

/// Presentation times (seconds, sorted) of the blocks of track 1 in a Matroska file.
pub fn block_times(bytes: &[u8]) -> Result<Vec<f64>, String> {
    let mut reader = Reader { bytes, at: 0 };
    let (id, size) = reader.header()?;
    if id != EBML_HEADER {
        return Err("not a Matroska file".into());
    }
    reader.skip(size)?;
    let (id, size) = reader.header()?;
    if id != SEGMENT {
        return Err("no Segment after the EBML header".into());
    }
    let segment_end = reader.end_of(size)?;
    let mut scale_ns: u64 = 1_000_000;
    let mut ticks: Vec<i64> = Vec::new();
    while reader.at < segment_end {
        let (id, size) = reader.header()?;
        let end = reader.end_of(size)?;
        match id {
            INFO => {
                while reader.at < end {
                    let (id, size) = reader.header()?;
                    if id == TIMESTAMP_SCALE {
                        scale_ns = reader.uint(size)?;
                    } else {
                        reader.skip(size)?;
                    }
                }
            }
            CLUSTER => {
                let mut cluster_ts: Option<i64> = None;
                while reader.at < end {
                    let (id, size) = reader.header()?;
                    let element_end = reader.end_of(size)?;
                    match id {
                        CLUSTER_TIMESTAMP => cluster_ts = Some(reader.uint(size)? as i64),
                        SIMPLE_BLOCK => {
                            let base =
                                cluster_ts.ok_or("a block before its cluster's timestamp")?;
                            if let Some(t) = reader.block(size)? {
                                ticks.push(base + t);
                            }
                        }
                        BLOCK_GROUP => {
                            let base =
                                cluster_ts.ok_or("a block before its cluster's timestamp")?;
                            while reader.at < element_end {
                                let (id, size) = reader.header()?;
                                if id == BLOCK {
                                    if let Some(t) = reader.block(size)? {
                                        ticks.push(base + t);
                                    }
                                } else {
                                    reader.skip(size)?;
                                }
                            }
                        }
                        _ => reader.skip(size)?,
                    }
                    reader.at = element_end;
                }
            }
            _ => reader.skip(size)?,
        }
        reader.at = end;
    }
    if scale_ns == 0 {
        return Err("a timestamp scale of 0".into());
    }
    let mut times: Vec<f64> = ticks
        .into_iter()
        .map(|t| t as f64 * scale_ns as f64 / 1e9)
        .collect();
    times.sort_by(f64::total_cmp);
    Ok(times)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or("the file ends inside an element")?;
        self.at += 1;
        Ok(b)
    }

    /// A variable-length integer: its length from the first byte's leading zeros. `keep_marker`
    /// for element ids, which keep the length bit.
    fn vint(&mut self, keep_marker: bool) -> Result<(u64, usize), String> {
        let first = self.byte()?;
        let len = first.leading_zeros() as usize + 1;
        if len > 8 {
            return Err("a malformed variable-length integer".into());
        }
        let mut value = if keep_marker {
            u64::from(first)
        } else {
            u64::from(first) & (0xFF >> len)
        };
        for _ in 1..len {
            value = (value << 8) | u64::from(self.byte()?);
        }
        Ok((value, len))
    }

    /// An element's id and data size.
    fn header(&mut self) -> Result<(u32, u64), String> {
        let (id, id_len) = self.vint(true)?;
        if id_len > 4 {
            return Err("an element id longer than 4 bytes".into());
        }
        let (size, size_len) = self.vint(false)?;
        if size == (1u64 << (7 * size_len)) - 1 {
            return Err("an element of unknown size".into());
        }
        Ok((id as u32, size))
    }

    fn end_of(&self, size: u64) -> Result<usize, String> {
        usize::try_from(size)
            .ok()
            .and_then(|s| self.at.checked_add(s))
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| "an element runs past the end of the file".to_owned())
    }

    fn skip(&mut self, size: u64) -> Result<(), String> {
        self.at = self.end_of(size)?;
        Ok(())
    }

    fn uint(&mut self, size: u64) -> Result<u64, String> {
        if size > 8 {
            return Err("an integer longer than 8 bytes".into());
        }
        let mut value = 0u64;
        for _ in 0..size {
            value = (value << 8) | u64::from(self.byte()?);
        }
        Ok(value)
    }

    /// A (Simple)Block of `size` bytes: its timestamp relative to the cluster, or `None` for a
    /// track other than 1.
    fn block(&mut self, size: u64) -> Result<Option<i64>, String> {
        let end = self.end_of(size)?;
        let (track, _) = self.vint(false)?;
        let hi = self.byte()?;
        let lo = self.byte()?;
        let flags = self.byte()?;
        if flags & 0x06 != 0 {
            return Err("a laced block".into());
        }
        self.at = end;
        Ok((track == 1).then_some(i64::from(i16::from_be_bytes([hi, lo]))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::frame_times;
    use crate::media::test_support::{ffmpeg, tools};

    #[test]
    fn the_same_times_as_ffprobe_for_ffmpeg_and_mkvmerge_files() {
        let tools = tools();
        let dir = tempfile::tempdir().expect("temp dir");
        // B-frames (blocks out of presentation order), a start that is not zero, more than
        // one cluster, and a variable frame rate.
        let ffmpeg_mkv = dir.path().join("chunk.mkv");
        ffmpeg(
            &tools,
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=64x48:rate=24:duration=12",
            ],
            &[
                "-vf",
                "select='not(eq(mod(n\\,7)\\,3))',setpts=PTS+1.5/TB",
                "-fps_mode",
                "passthrough",
                "-c:v",
                "libx264",
                "-bf",
                "3",
                "-f",
                "matroska",
            ],
            &ffmpeg_mkv,
        );
        let mut files = vec![ffmpeg_mkv.clone()];
        if let Ok(mkvmerge) = crate::media::locate_mkvmerge() {
            let remuxed = dir.path().join("remuxed.mkv");
            let status = std::process::Command::new(mkvmerge)
                .arg("--quiet")
                .arg("-o")
                .arg(&remuxed)
                .arg(&ffmpeg_mkv)
                .status()
                .expect("mkvmerge runs");
            assert!(status.success());
            files.push(remuxed);
        }
        for file in files {
            let ours = first_track_times(&file).expect("reads");
            let probed: Vec<f64> = frame_times(&tools, &file, 0)
                .expect("ffprobe")
                .frames
                .iter()
                .map(|f| f.time_secs)
                .collect();
            assert_eq!(ours.len(), probed.len(), "{}", file.display());
            assert!(ours.len() > 200, "{}", ours.len());
            for (a, b) in ours.iter().zip(&probed) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b} in {}", file.display());
            }
        }
    }

    #[test]
    fn anything_else_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            &b"\x1a\x45\xdf\xa3"[..],
            &b"\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67\xff"[..],
            &b"\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67\x88\x1f\x43\xb6\x75\x83\xa3\x81\x81"[..],
            &b"RIFF...."[..],
        ] {
            assert!(block_times(bytes).is_err(), "{bytes:?}");
        }
    }
}
