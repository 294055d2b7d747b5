//! Frame previews through the seeker: a warm ffmpeg per input that seeks on command
//! ([`Seeker`]), the [`FrameStore`] of decoded frames around the cursor, and a converter fed
//! raw frames; while the user looks, the next frames and the group of pictures before the
//! current one are decoded, and the neighbours' images made.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::converter::{After, Decoder, Images, Source, colour_params};
use super::decode::{FrameError, InputInfo, InputKey};
use super::seek::{FrameStore, Seeker, raw_frame_len, read_until};
use crate::media::frames::TimestampSource;
use crate::media::tools::Tools;

/// Memory for decoded frames kept around the cursor (~75 frames of 1080p 8-bit 4:2:0: a
/// group of pictures of 2 s, the next 12 frames and part of the group before); with the
/// images in flight and the keyframe pictures, the worker stays within 500 MB.
pub(super) const FRAME_STORE_BYTES: usize = 224 << 20;
/// A seek may first deliver frames decoded before it took effect (ffmpeg reads its commands
/// every 100 ms at most), and may land a little early: this many frames beyond the distance
/// from the keyframe are read before the seek is given up as failed.
const SEEK_SLACK: u64 = 64;
/// Frames read on (rather than sought) when the wanted frame is this close ahead.
const READ_ON_MAX: u64 = 12;
/// Frames decoded ahead of the last one asked for while the user looks.
const PREFETCH_AHEAD: u64 = 12;

/// The pixel format and size the seeker delivers for this input, when it can serve it: the
/// frames must be stored unrotated (the `movie` source does not rotate), timestamped (frames
/// are matched by pts), and in a format with a known raw layout.
pub(super) fn seek_layout(loaded: &InputInfo) -> Option<(String, (u32, u32))> {
    let video = &loaded.info.video;
    if video.rotation_deg != 0
        || loaded.times.source == TimestampSource::Synthesized
        || loaded.times.is_empty()
    {
        return None;
    }
    let pix_fmt = video.pix_fmt.as_deref()?;
    raw_frame_len(pix_fmt, video.width, video.height)?;
    Some((pix_fmt.to_owned(), (video.width, video.height)))
}

/// What [`FastPath::prefetch_step`] still has to do.
#[derive(Debug, Default)]
pub(super) struct Prefetch {
    /// Read on up to this frame.
    pub(super) forward_to: Option<u64>,
    /// Decode from keyframe `.0` up to frame `.1`; `.2` once the seek was sent, with the
    /// frames read since.
    pub(super) back: Option<(u64, u64, Option<u64>)>,
    /// Frames whose images to make ahead (the neighbours of the one shown), once decoded.
    pub(super) render: Vec<u64>,
}

/// Images made ahead of a request, kept for the neighbours of the frame shown.
const RENDERED_KEPT: usize = 2;

/// Frame previews of one input through a [`Seeker`], a [`FrameStore`] and a raw-frame
/// converter.
pub(super) struct FastPath {
    pub(super) input: InputKey,
    pub(super) pix_fmt: String,
    pub(super) size: (u32, u32),
    pub(super) seeker: Option<Seeker>,
    /// The index of the frame the seeker delivers next, when known.
    pub(super) seeker_next: Option<u64>,
    /// Decodes the group of pictures before the current one while the user looks.
    pub(super) back_seeker: Option<Seeker>,
    pub(super) store: FrameStore,
    pub(super) renderer: Option<Decoder>,
    pub(super) prefetch: Prefetch,
    /// Images made ahead, by frame index and the `After` they were made for.
    pub(super) rendered: VecDeque<(u64, After, Images)>,
    /// The seeker could not serve this input: it goes through [`Source::File`].
    pub(super) failed: bool,
}

impl FastPath {
    pub(super) fn new(input: &InputKey, pix_fmt: String, size: (u32, u32)) -> FastPath {
        FastPath {
            input: input.clone(),
            pix_fmt,
            size,
            seeker: None,
            seeker_next: None,
            back_seeker: None,
            store: FrameStore::new(FRAME_STORE_BYTES),
            renderer: None,
            prefetch: Prefetch::default(),
            rendered: VecDeque::new(),
            failed: false,
        }
    }

    /// Starts a seeker (at frame 0) if there is none or it ended.
    pub(super) fn ensure_seeker(
        &mut self,
        tools: &Tools,
        loaded: &InputInfo,
    ) -> Result<(), FrameError> {
        if !self.seeker.as_mut().is_some_and(Seeker::alive) {
            self.seeker = None;
            self.seeker = Some(self.start_seeker(tools, loaded)?);
            self.seeker_next = Some(0);
        }
        Ok(())
    }

    pub(super) fn start_seeker(
        &self,
        tools: &Tools,
        loaded: &InputInfo,
    ) -> Result<Seeker, FrameError> {
        Seeker::start(
            tools,
            &self.input.path,
            loaded.info.video.index,
            &self.pix_fmt,
            self.size,
        )
    }

    /// The decoded frame `index`: from the store, else read on or sought by the seeker.
    pub(super) fn frame(
        &mut self,
        tools: &Tools,
        loaded: &InputInfo,
        index: u64,
        cancel: &AtomicBool,
    ) -> Result<Arc<Vec<u8>>, FrameError> {
        self.prefetch = Prefetch::default();
        if let Some(frame) = self.store.get(index) {
            return Ok(frame);
        }
        self.ensure_seeker(tools, loaded)?;
        let times = &loaded.times;
        let keyframe = times.keyframe_at_or_before(index).unwrap_or(0);
        let read_on = self
            .seeker_next
            .is_some_and(|next| index >= next && (keyframe <= next || index - next <= READ_ON_MAX));
        let next = self.seeker_next.take();
        let Some(seeker) = self.seeker.as_mut() else {
            return Err(FrameError::Failed("the seeker did not start".into()));
        };
        let (seek, max_frames) = match (read_on, next) {
            (true, Some(next)) => (None, index - next + SEEK_SLACK),
            _ => (
                Some(times.frames[keyframe as usize].pts),
                index - keyframe + SEEK_SLACK,
            ),
        };
        let lookup = |pts| times.index_of(pts);
        let frame = read_until(
            seeker,
            &mut self.store,
            seek,
            index,
            max_frames,
            &lookup,
            cancel,
        );
        if frame.is_ok() {
            self.seeker_next = Some(index + 1);
        } else if !seeker.alive() {
            self.seeker = None;
        }
        frame
    }

    /// The before and after images of a decoded frame.
    pub(super) fn render(
        &mut self,
        tools: &Tools,
        loaded: &InputInfo,
        after: &After,
        frame: &[u8],
        cancel: &AtomicBool,
    ) -> Result<Images, FrameError> {
        if self.renderer.as_ref().is_none_or(|r| r.after != *after) {
            self.renderer = None;
            let source = Source::Raw {
                pix_fmt: self.pix_fmt.clone(),
                width: self.size.0,
                height: self.size.1,
                params: colour_params(loaded),
            };
            self.renderer = Some(Decoder::start(
                tools,
                &self.input,
                loaded,
                source,
                after.clone(),
            )?);
        }
        let Some(renderer) = self.renderer.as_mut() else {
            return Err(FrameError::Failed("the converter did not start".into()));
        };
        let rendered = renderer.render(frame, cancel);
        if rendered.is_err() {
            // Out of step (or dead): start a fresh one next time.
            self.renderer = None;
        }
        rendered
    }

    /// Makes frame `index`'s images with the converter of the last request and keeps them.
    /// Runs to the end even if a request comes meanwhile (a converter stopped half-way is out
    /// of step, and restarting it costs more than finishing).
    pub(super) fn render_ahead(&mut self, index: u64) {
        let (Some(frame), Some(renderer)) = (self.store.get(index), self.renderer.as_mut()) else {
            return;
        };
        if self
            .rendered
            .iter()
            .any(|(i, a, _)| *i == index && *a == renderer.after)
        {
            return;
        }
        let after = renderer.after.clone();
        match renderer.render(&frame, &AtomicBool::new(false)) {
            Ok(pair) => {
                self.rendered.push_back((index, after, pair));
                while self.rendered.len() > RENDERED_KEPT {
                    self.rendered.pop_front();
                }
            }
            Err(e) => {
                log::debug!("rendering frame {index} ahead failed: {e}");
                self.renderer = None;
            }
        }
    }

    /// Plans the prefetch after frame `index` was shown: the frames just after it, then the
    /// group of pictures before its own, as far as the store holds them beside it.
    pub(super) fn plan_prefetch(&mut self, loaded: &InputInfo, index: u64) {
        let times = &loaded.times;
        let last = times.len() as u64 - 1;
        let capacity = self
            .store
            .capacity(raw_frame_len(&self.pix_fmt, self.size.0, self.size.1).unwrap_or(1));
        let keyframe = times.keyframe_at_or_before(index).unwrap_or(0);
        let ahead = PREFETCH_AHEAD.min(capacity as u64 / 4);
        let forward_to = (index + ahead).min(last);
        let mut plan = Prefetch {
            forward_to: (forward_to > index).then_some(forward_to),
            back: None,
            // The next frame first (→ is the commonest step), then the previous one (←).
            render: [
                index.checked_add(1).filter(|&i| i <= last),
                index.checked_sub(1),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        if keyframe > 0 && !self.store.contains(keyframe - 1) {
            let previous = times.keyframe_at_or_before(keyframe - 1).unwrap_or(0);
            let needed = (keyframe - previous) + (index - keyframe) + ahead;
            if needed <= capacity as u64 * 3 / 4 {
                plan.back = Some((previous, keyframe - 1, None));
            }
        }
        self.prefetch = plan;
    }

    /// One step of the planned prefetch; false when there is nothing more to do.
    pub(super) fn prefetch_step(
        &mut self,
        tools: &Tools,
        loaded: &InputInfo,
        stop: &AtomicBool,
    ) -> Result<bool, FrameError> {
        if let Some(at) = self
            .prefetch
            .render
            .iter()
            .position(|&i| self.store.contains(i))
        {
            let index = self.prefetch.render.remove(at);
            self.render_ahead(index);
            return Ok(true);
        }
        let times = &loaded.times;
        let Some(seeker) = self.seeker.as_mut() else {
            return Ok(false);
        };
        if let Some(to) = self.prefetch.forward_to {
            match self.seeker_next {
                Some(next) if next <= to => {
                    let Some(frame) = seeker.next(stop)? else {
                        // The end of the file: the seeker has exited (reap it now).
                        self.seeker = None;
                        self.seeker_next = None;
                        self.prefetch = Prefetch::default();
                        return Ok(false);
                    };
                    match frame.pts.and_then(|pts| times.index_of(pts)) {
                        Some(index) => {
                            self.store.insert(index, frame.data);
                            self.seeker_next = Some(index + 1);
                        }
                        None => self.seeker_next = None,
                    }
                    return Ok(true);
                }
                _ => self.prefetch.forward_to = None,
            }
        }
        let Some((from, until, sent)) = self.prefetch.back else {
            return Ok(false);
        };
        // A seeker of its own: the request seeker stays idle, so the next seek is read at once
        // (ffmpeg reads commands at most every 100 ms while it decodes). When a request comes,
        // nobody reads this one and it stalls within a few frames.
        if !self.back_seeker.as_mut().is_some_and(Seeker::alive) {
            self.back_seeker = None;
            self.back_seeker = Some(self.start_seeker(tools, loaded)?);
        }
        let Some(back) = self.back_seeker.as_mut() else {
            return Ok(false);
        };
        let read = match sent {
            None => {
                back.seek(times.frames[from as usize].pts, stop)?;
                0
            }
            Some(read) => read,
        };
        if read > until - from + SEEK_SLACK {
            self.prefetch.back = None;
            return Ok(false);
        }
        self.prefetch.back = Some((from, until, Some(read + 1)));
        let Some(frame) = back.next(stop)? else {
            self.back_seeker = None;
            self.prefetch.back = None;
            return Ok(false);
        };
        if let Some(index) = frame.pts.and_then(|pts| times.index_of(pts)) {
            self.store.insert(index, frame.data);
            if index == until {
                self.prefetch.back = None;
                return Ok(true);
            }
        }
        Ok(true)
    }
}
