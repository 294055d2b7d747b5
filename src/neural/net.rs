//! The graph executor: a loaded model (layers in file order, blobs by index), its forward
//! pass and shape inference.
//!
//! Blobs are reference-counted during a pass, so Split costs nothing and a blob is freed right
//! after its last consumer; pointwise layers work in place when they hold the only reference.
//! The one input blob is the Input layer's; the output is the one blob no layer consumes (or
//! the one named `output` when there are several).

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use super::layers::{self, Op, Shape};
use super::param::{self, LayerDecl};
use super::pool;
use super::weights::WeightReader;
use super::{Kernels, ModelError, Tensor};

struct Layer {
    line: usize,
    name: String,
    bottoms: Vec<usize>,
    tops: Vec<usize>,
    op: Op,
    /// Fast path: this layer is a PReLU folded into the convolution before it.
    fused_away: bool,
}

/// A loaded ncnn model, immutable after loading (`Send + Sync`: share it between threads).
pub struct Net {
    layers: Vec<Layer>,
    blob_names: Vec<String>,
    input_blob: usize,
    output_blob: usize,
    /// Per blob, the index of the last layer that reads it.
    last_use: Vec<usize>,
    /// Per convolution layer, the PReLU layer fused into it on the fast path.
    fused_prelu: Vec<Option<usize>>,
    /// Input pixels of context an output pixel depends on (conservative), see `tile.rs`.
    context_px: usize,
    /// The stretches tiled one after the other (one for most nets), see [`Segment`].
    segments: Vec<Segment>,
    /// The global Pooling layers (file order, so each comes after those it depends on).
    global_pools: Vec<usize>,
    /// Context when every global Pooling's value is given for the whole frame (a constant to
    /// each tile, see `frame_stats.rs`); `u32::MAX` when some other layer (an InnerProduct over
    /// an image) still reads the whole frame.
    frame_stats_context_px: usize,
}

/// Values of global Pooling layers over a whole frame, by layer index: a pass given them
/// uses them instead of pooling its own blob (a tile's), see `frame_stats.rs`.
pub(crate) type GivenPools = [(usize, Tensor)];

/// A stretch of the graph that is tiled on its own: from its seed blob (the input, or the
/// one blob alive at a cut) through a range of layers to its output blob.
///
/// A net whose body has a wide receptive field and whose tail works at a higher resolution
/// (RRDB: 95–350 input pixels of context, then two 2× upsamplings with 64 channels each) is
/// cut before the tail: the body runs on large tiles (its context is paid once per tile), its
/// output for the whole frame is kept (64 channels at the input size), and the tail, which
/// needs 3 pixels of context but 8 KiB per input pixel, runs on small tiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    seed: usize,
    layers: std::ops::Range<usize>,
    output: usize,
    /// Seed pixels of context a tile of this segment needs (conservative).
    pub context_px: usize,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("layers", &self.layers.len())
            .field("blobs", &self.blob_names.len())
            .field("input", &self.blob_names[self.input_blob])
            .field("output", &self.blob_names[self.output_blob])
            .finish()
    }
}

fn shape_error(layer: &Layer, reason: String) -> ModelError {
    ModelError::Shape {
        line: layer.line,
        layer: layer.name.clone(),
        reason,
    }
}

fn graph_error(decl: &LayerDecl, reason: String) -> ModelError {
    ModelError::Param {
        line: decl.line,
        layer: Some(decl.name.clone()),
        reason,
        file: None,
    }
}

impl Net {
    /// Reads a `.param` / `.bin` pair.
    pub fn load(param: &Path, bin: &Path) -> Result<Net, ModelError> {
        let text = std::fs::read(param).map_err(|source| ModelError::Io {
            path: param.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(text).map_err(|_| {
            ModelError::Param {
                line: 1,
                layer: None,
                reason: "the file is not text (a binary .param is not supported)".to_string(),
                file: None,
            }
            .in_file(param)
        })?;
        let weights = std::fs::read(bin).map_err(|source| ModelError::Io {
            path: bin.to_path_buf(),
            source,
        })?;
        Net::parse(&text, &weights).map_err(|e| match e {
            ModelError::Weights { .. } => e.in_file(bin),
            _ => e.in_file(param),
        })
    }

    /// Builds a model from `.param` text and `.bin` bytes.
    pub fn parse(param_text: &str, bin: &[u8]) -> Result<Net, ModelError> {
        let file = param::parse(param_text)?;
        let mut reader = WeightReader::new(bin);
        let mut blob_index: HashMap<String, usize> = HashMap::new();
        let mut blob_names = Vec::new();
        let mut producers = Vec::new();
        let mut layers = Vec::with_capacity(file.layers.len());
        let mut input_blob = None;
        for (i, decl) in file.layers.iter().enumerate() {
            let op = Op::load(decl, &mut reader)?;
            let mut bottoms = Vec::new();
            for name in &decl.bottoms {
                let index = blob_index.get(name).ok_or_else(|| {
                    graph_error(
                        decl,
                        format!("reads blob `{name}` before any layer produces it"),
                    )
                })?;
                bottoms.push(*index);
            }
            let mut tops = Vec::new();
            for name in &decl.tops {
                if blob_index.contains_key(name) {
                    return Err(graph_error(
                        decl,
                        format!("produces blob `{name}`, which an earlier layer produces already"),
                    ));
                }
                blob_index.insert(name.clone(), blob_names.len());
                tops.push(blob_names.len());
                blob_names.push(name.clone());
                producers.push(i);
            }
            if matches!(op, Op::Input) {
                if input_blob.is_some() {
                    return Err(graph_error(
                        decl,
                        "a second Input layer: only single-input models are supported".into(),
                    ));
                }
                input_blob = Some(tops[0]);
            }
            layers.push(Layer {
                line: decl.line,
                name: decl.name.clone(),
                bottoms,
                tops,
                op,
                fused_away: false,
            });
        }
        if reader.remaining() != 0 {
            return Err(ModelError::Weights {
                line: file.layers.last().map_or(1, |d| d.line),
                layer: file.layers.last().map_or(String::new(), |d| d.name.clone()),
                reason: format!(
                    "{} bytes are left after the last layer's weights; this .bin does not \
                     belong to this .param",
                    reader.remaining()
                ),
                file: None,
            });
        }
        let input_blob = input_blob.ok_or_else(|| ModelError::Param {
            line: 2,
            layer: None,
            reason: "the model has no Input layer".to_string(),
            file: None,
        })?;

        let mut last_use = vec![0; blob_names.len()];
        let mut consumers = vec![Vec::new(); blob_names.len()];
        for (i, layer) in layers.iter().enumerate() {
            for &b in &layer.bottoms {
                last_use[b] = i;
                consumers[b].push(i);
            }
        }
        let unconsumed: Vec<usize> = (0..blob_names.len())
            .filter(|&b| consumers[b].is_empty())
            .collect();
        let output_blob = match unconsumed.as_slice() {
            [one] => *one,
            [] => {
                return Err(ModelError::Param {
                    line: 2,
                    layer: None,
                    reason: "every blob is consumed: the model has no output".to_string(),
                    file: None,
                });
            }
            several => *several
                .iter()
                .find(|&&b| blob_names[b] == "output")
                .ok_or_else(|| ModelError::Param {
                    line: 2,
                    layer: None,
                    reason: format!(
                        "the model has {} outputs ({}) and none is named `output`",
                        several.len(),
                        several
                            .iter()
                            .map(|&b| blob_names[b].as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    file: None,
                })?,
        };

        // Fast path: a PReLU that is the only reader of a fast convolution's output is folded
        // into it.
        let mut fused_prelu = vec![None; layers.len()];
        for i in 0..layers.len() {
            let (slopes, j) = {
                let layer = &layers[i];
                let Op::Conv(conv) = &layer.op else { continue };
                if conv.fast_pad().is_none() || conv.act != layers::Act::None {
                    continue;
                }
                let top = layer.tops[0];
                let [j] = consumers[top].as_slice() else {
                    continue;
                };
                if top == output_blob {
                    continue;
                }
                let Op::PRelu(slopes) = &layers[*j].op else {
                    continue;
                };
                if slopes.len() != 1 && slopes.len() != conv.c_out {
                    continue;
                }
                (slopes.clone(), *j)
            };
            if let Op::Conv(conv) = &mut layers[i].op {
                conv.fused_prelu = Some(slopes);
            }
            layers[j].fused_away = true;
            fused_prelu[i] = Some(j);
        }

        let mut net = Net {
            layers,
            blob_names,
            input_blob,
            output_blob,
            last_use,
            fused_prelu,
            context_px: 0,
            segments: Vec::new(),
            global_pools: Vec::new(),
            frame_stats_context_px: 0,
        };
        net.global_pools = (0..net.layers.len())
            .filter(|&i| matches!(net.layers[i].op, Op::Pooling(_)))
            .collect();
        let whole = Segment {
            seed: input_blob,
            layers: 0..net.layers.len(),
            output: output_blob,
            context_px: 0,
        };
        net.context_px = net.context_radius(&whole, false);
        net.frame_stats_context_px = net.context_radius(&whole, true);
        net.segments = net.cut_into_segments(whole);
        Ok(net)
    }

    /// Context (input pixels) above which a net with a cut is run in two segments: below it,
    /// keeping the cut blob for the whole frame costs more than the context saved.
    const CUT_ABOVE_CONTEXT_PX: usize = 32;

    /// The whole net as one segment, or cut in two before its first layer that raises the
    /// resolution of the one blob alive at that point (see [`Segment`]), when the net's
    /// context is wide and finite.
    fn cut_into_segments(&self, whole: Segment) -> Vec<Segment> {
        let mut whole = whole;
        whole.context_px = self.context_px;
        // A global statistic makes the context the whole frame: no cut helps.
        if self.context_px <= Self::CUT_ABOVE_CONTEXT_PX || self.context_px >= u32::MAX as usize {
            return vec![whole];
        }
        let Ok(shapes) = self.blob_shapes(3, 64, 64) else {
            return vec![whole];
        };
        let mut producer = vec![0; self.blob_names.len()];
        for (i, layer) in self.layers.iter().enumerate() {
            for &t in &layer.tops {
                producer[t] = i;
            }
        }
        let pixels = |b: usize| shapes[b].h * shapes[b].w;
        for (k, layer) in self.layers.iter().enumerate().skip(1) {
            let ([seed], [top]) = (layer.bottoms.as_slice(), layer.tops.as_slice()) else {
                continue;
            };
            if pixels(*top) <= pixels(*seed) || *seed == self.input_blob {
                continue;
            }
            // Both parts keep the size (padded convolutions): an unpadded net's edge handling
            // is defined for the whole net.
            let (body_kept, tail_whole) = (
                shapes[*seed].h == 64 && shapes[*seed].w == 64,
                shapes[whole.output].h % 64 == 0 && shapes[whole.output].w % 64 == 0,
            );
            if !body_kept || !tail_whole {
                continue;
            }
            // Nothing else produced before the cut is read after it, and no convolution
            // before it has its PReLU after it.
            let alone = (0..self.blob_names.len())
                .all(|b| b == *seed || producer[b] >= k || self.last_use[b] < k);
            let fused_across = self.fused_prelu[..k].iter().flatten().any(|&j| j >= k);
            if !alone || fused_across {
                continue;
            }
            let mut body = Segment {
                seed: whole.seed,
                layers: 0..k,
                output: *seed,
                context_px: 0,
            };
            let mut tail = Segment {
                seed: *seed,
                layers: k..self.layers.len(),
                output: whole.output,
                context_px: 0,
            };
            body.context_px = self.context_radius(&body, false);
            tail.context_px = self.context_radius(&tail, false);
            return vec![body, tail];
        }
        vec![whole]
    }

    /// The segments tiled one after the other.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The global Pooling layers, in the order they run.
    pub(crate) fn global_pools(&self) -> &[usize] {
        &self.global_pools
    }

    /// Input pixels of context a tile needs when every global Pooling's value is given
    /// (`u32::MAX` or more: the net still needs the whole frame).
    pub(crate) fn frame_stats_context_px(&self) -> usize {
        self.frame_stats_context_px
    }

    /// The whole net as one segment.
    pub(crate) fn whole(&self) -> Segment {
        Segment {
            seed: self.input_blob,
            layers: 0..self.layers.len(),
            output: self.output_blob,
            context_px: self.context_px,
        }
    }

    /// From the input to the blob the global Pooling layer `pool` reads (the layers before
    /// it), and that blob.
    pub(crate) fn prefix_to_pool(&self, pool: usize) -> Result<(Segment, usize), ModelError> {
        let layer = self
            .layers
            .get(pool)
            .filter(|l| matches!(l.op, Op::Pooling(_)))
            .ok_or_else(|| ModelError::Runtime(format!("layer {pool} is not a Pooling")))?;
        let blob = *layer
            .bottoms
            .first()
            .ok_or_else(|| shape_error(layer, "has no input blob".to_string()))?;
        let segment = Segment {
            seed: self.input_blob,
            layers: 0..pool,
            output: blob,
            context_px: self.frame_stats_context_px,
        };
        Ok((segment, blob))
    }

    /// Whether a layer works on a coarser grid than the input (a strided convolution), so
    /// that only some input sizes fit the net and a tile must start on the strides' period.
    pub(crate) fn has_strides(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(&l.op, Op::Conv(c) if c.stride_w > 1 || c.stride_h > 1))
    }

    /// Whether global Pooling layer `pool` takes the maximum (else the mean).
    pub(crate) fn pool_is_max(&self, pool: usize) -> bool {
        matches!(
            self.layers.get(pool).map(|l| &l.op),
            Some(Op::Pooling(layers::pooling::Pooling::GlobalMax))
        )
    }

    /// Channels the segment's output has for a seed of `c` channels (and any size).
    pub(crate) fn segment_output_shape(
        &self,
        segment: &Segment,
        (c, h, w): (usize, usize, usize),
    ) -> Result<(usize, usize, usize), ModelError> {
        let shapes = self.segment_shapes(segment, Shape { c, h, w })?;
        let out = shapes[segment.output];
        Ok((out.c, out.h, out.w))
    }

    /// The largest number of values alive at once while the segment runs on a seed of this
    /// shape (blobs a Split hands on are counted once): its working memory, in f32s, without
    /// the convolutions' bounded scratch.
    pub(crate) fn segment_peak_floats(
        &self,
        segment: &Segment,
        (c, h, w): (usize, usize, usize),
    ) -> Result<usize, ModelError> {
        let shapes = self.segment_shapes(segment, Shape { c, h, w })?;
        let size = |b: usize| shapes[b].c * shapes[b].h * shapes[b].w;
        // A Split's outputs share its input's storage.
        let mut storage: Vec<usize> = (0..self.blob_names.len()).collect();
        let mut live: Vec<usize> = vec![segment.seed];
        let held = |live: &[usize], storage: &[usize]| {
            let mut held: Vec<usize> = live.iter().map(|&b| storage[b]).collect();
            held.sort_unstable();
            held.dedup();
            held.into_iter().map(size).sum::<usize>()
        };
        let mut peak = size(segment.seed);
        for i in segment.layers.clone() {
            let layer = &self.layers[i];
            if matches!(layer.op, Op::Input) {
                continue;
            }
            for &t in &layer.tops {
                if matches!(layer.op, Op::Split) {
                    storage[t] = storage[layer.bottoms[0]];
                }
                live.push(t);
            }
            peak = peak.max(held(&live, &storage));
            live.retain(|&b| b == segment.output || self.last_use[b] > i);
        }
        Ok(peak)
    }

    /// Output geometry for an input of this size, without running: (channels, h, w).
    pub fn output_shape(
        &self,
        c: usize,
        h: usize,
        w: usize,
    ) -> Result<(usize, usize, usize), ModelError> {
        let shapes = self.blob_shapes(c, h, w)?;
        let out = shapes[self.output_blob];
        Ok((out.c, out.h, out.w))
    }

    /// The multiply-adds of the convolutions and deconvolutions for an input of this size,
    /// as floating-point operations (2 per multiply-add): a convolution's weights once per
    /// output pixel, a deconvolution's once per input pixel. What a benchmark divides by its
    /// time to compare kernels across nets (U-Nets run layers at several resolutions).
    pub fn conv_flop(&self, c: usize, h: usize, w: usize) -> Result<f64, ModelError> {
        let shapes = self.blob_shapes(c, h, w)?;
        let pixels = |b: usize| (shapes[b].h * shapes[b].w) as f64;
        Ok(self
            .layers
            .iter()
            .map(|layer| match &layer.op {
                Op::Conv(conv) => 2.0 * conv.weights.len() as f64 * pixels(layer.tops[0]),
                Op::Deconv(deconv) => {
                    let weights = deconv.c_out * deconv.c_in * deconv.kernel_h * deconv.kernel_w;
                    2.0 * weights as f64 * pixels(layer.bottoms[0])
                }
                _ => 0.0,
            })
            .sum())
    }

    /// Every blob's shape for an input of this size.
    pub(crate) fn blob_shapes(
        &self,
        c: usize,
        h: usize,
        w: usize,
    ) -> Result<Vec<Shape>, ModelError> {
        self.segment_shapes(&self.whole(), Shape { c, h, w })
    }

    /// The shapes of the blobs a segment makes for a seed of this shape (others stay empty).
    fn segment_shapes(&self, segment: &Segment, seed: Shape) -> Result<Vec<Shape>, ModelError> {
        if seed.c == 0 || seed.h == 0 || seed.w == 0 {
            return Err(ModelError::Input(format!(
                "the input is empty ({}×{}×{})",
                seed.c, seed.h, seed.w
            )));
        }
        let mut shapes = vec![Shape { c: 0, h: 0, w: 0 }; self.blob_names.len()];
        shapes[segment.seed] = seed;
        for layer in &self.layers[segment.layers.clone()] {
            let outs = if matches!(layer.op, Op::Input) {
                vec![seed]
            } else {
                let inputs: Vec<Shape> = layer.bottoms.iter().map(|&b| shapes[b]).collect();
                layer
                    .op
                    .out_shapes(&inputs, layer.tops.len())
                    .map_err(|reason| shape_error(layer, reason))?
            };
            for (&t, s) in layer.tops.iter().zip(outs) {
                shapes[t] = s;
            }
        }
        Ok(shapes)
    }

    /// Runs the model on one image.
    pub fn forward(&self, input: &Tensor, kernels: Kernels) -> Result<Tensor, ModelError> {
        self.forward_segment(&self.whole(), copy_of(input), kernels, 1)
    }

    /// Runs one segment on its seed blob's values; fast convolutions split their rows into up
    /// to `bands` bands run at once on the current rayon pool (for a tile alone on its threads).
    pub(crate) fn forward_segment(
        &self,
        segment: &Segment,
        input: Tensor,
        kernels: Kernels,
        bands: usize,
    ) -> Result<Tensor, ModelError> {
        self.forward_segment_given(segment, input, kernels, bands, &[])
    }

    /// [`Net::forward_segment`] with the values of some global Pooling layers given.
    pub(crate) fn forward_segment_given(
        &self,
        segment: &Segment,
        input: Tensor,
        kernels: Kernels,
        bands: usize,
        given: &GivenPools,
    ) -> Result<Tensor, ModelError> {
        input.check()?;
        let mut blobs: Vec<Option<Rc<Tensor>>> = vec![None; self.blob_names.len()];
        // Taken by the segment's seed blob, or by the net's Input layer.
        let mut input = Some(input);
        if segment.seed != self.input_blob {
            blobs[segment.seed] = input.take().map(Rc::new);
        }
        for i in segment.layers.clone() {
            let layer = &self.layers[i];
            if kernels == Kernels::Fast && layer.fused_away {
                continue;
            }
            let mut inputs: Vec<Rc<Tensor>> = Vec::with_capacity(layer.bottoms.len());
            for &b in &layer.bottoms {
                let blob = blobs[b].clone().ok_or_else(|| {
                    shape_error(layer, format!("blob `{}` is missing", self.blob_names[b]))
                })?;
                inputs.push(blob);
            }
            for &b in &layer.bottoms {
                if self.last_use[b] == i && b != segment.output {
                    blobs[b] = None;
                }
            }
            let err = |reason: String| shape_error(layer, reason);
            let mut top = layer.tops[0];
            let out = match &layer.op {
                Op::Input => {
                    if layer.tops[0] != self.input_blob {
                        return Err(err("unexpected Input layer".to_string()));
                    }
                    input
                        .take()
                        .ok_or_else(|| err("a second Input layer".to_string()))?
                }
                Op::Split => {
                    for &t in &layer.tops {
                        blobs[t] = Some(inputs[0].clone());
                    }
                    continue;
                }
                Op::Conv(conv) => match (kernels, conv.fast_pad()) {
                    (Kernels::Fast, Some(pad)) => {
                        if let Some(j) = self.fused_prelu[i] {
                            top = self.layers[j].tops[0];
                        }
                        conv.forward_fast_banded(&inputs[0], pad, bands)
                            .map_err(err)?
                    }
                    _ => conv.forward_reference(&inputs[0], bands).map_err(err)?,
                },
                Op::Deconv(deconv) => deconv.forward(&inputs[0], bands).map_err(err)?,
                Op::PRelu(slopes) => {
                    let mut x = owned(single(std::mem::take(&mut inputs)).map_err(err)?);
                    layer.op.out_shapes(&[Shape::of(&x)], 1).map_err(err)?;
                    layers::prelu(&mut x, slopes);
                    x
                }
                Op::Relu(slope) => {
                    let mut x = owned(single(std::mem::take(&mut inputs)).map_err(err)?);
                    layers::relu(&mut x, *slope);
                    x
                }
                Op::PixelShuffle { factor, mode } => {
                    layer
                        .op
                        .out_shapes(&[Shape::of(&inputs[0])], 1)
                        .map_err(err)?;
                    layers::pixel_shuffle(&inputs[0], *factor, *mode)
                }
                Op::Interp(interp) => interp
                    .forward(owned(single(std::mem::take(&mut inputs)).map_err(err)?))
                    .map_err(err)?,
                Op::Binary {
                    kind,
                    scalar: Some(s),
                } => layers::binary_scalar(
                    owned(single(std::mem::take(&mut inputs)).map_err(err)?),
                    *s,
                    *kind,
                ),
                Op::Binary { kind, scalar: None } => {
                    let mut it = std::mem::take(&mut inputs).into_iter();
                    let (a, b) = match (it.next(), it.next()) {
                        (Some(a), Some(b)) => (a, b),
                        _ => return Err(err("needs two input blobs".to_string())),
                    };
                    layers::binary(owned(a), &b, *kind).map_err(err)?
                }
                Op::Pooling(pooling) => match given.iter().find(|(layer, _)| *layer == i) {
                    Some((_, value)) if value.channels == inputs[0].channels => copy_of(value),
                    Some((_, value)) => {
                        return Err(err(format!(
                            "was given {} values for a {}-channel blob",
                            value.channels, inputs[0].channels
                        )));
                    }
                    None => pooling.forward(&inputs[0]),
                },
                Op::InnerProduct(ip) => ip.forward(&inputs[0]).map_err(err)?,
                Op::Crop(crop) => crop
                    .forward(&inputs[0], inputs.get(1).map(|t| t.as_ref()))
                    .map_err(err)?,
                Op::Scale(scale) => {
                    let mut it = std::mem::take(&mut inputs).into_iter();
                    let x = owned(it.next().ok_or_else(|| err("has no input".into()))?);
                    let factors = it.next();
                    scale.forward(x, factors.as_deref()).map_err(err)?
                }
                Op::Concat => {
                    let shapes: Vec<Shape> = inputs.iter().map(|t| Shape::of(t)).collect();
                    layer.op.out_shapes(&shapes, 1).map_err(err)?;
                    let refs: Vec<&Tensor> = inputs.iter().map(|t| t.as_ref()).collect();
                    layers::concat(&refs)
                }
                Op::Eltwise { kind, coeffs } => {
                    let shapes: Vec<Shape> = inputs.iter().map(|t| Shape::of(t)).collect();
                    layer.op.out_shapes(&shapes, 1).map_err(err)?;
                    let mut it = std::mem::take(&mut inputs).into_iter();
                    let first = owned(it.next().ok_or_else(|| err("has no input".into()))?);
                    let rest: Vec<Rc<Tensor>> = it.collect();
                    let refs: Vec<&Tensor> = rest.iter().map(|t| t.as_ref()).collect();
                    layers::eltwise(first, &refs, *kind, coeffs)
                }
            };
            // Inputs read and no longer needed: their buffers make the next layers' outputs.
            for input in inputs {
                if let Ok(dead) = Rc::try_unwrap(input) {
                    pool::recycle(dead.data);
                }
            }
            blobs[top] = Some(Rc::new(out));
        }
        let out = blobs[segment.output]
            .take()
            .ok_or_else(|| ModelError::Input("the model produced no output blob".to_string()))?;
        Ok(owned(out))
    }

    /// Input pixels of context that tiles need around them (conservative receptive-field
    /// radius, see [`Net::context_radius`]).
    #[cfg(test)]
    pub(crate) fn context_px(&self) -> usize {
        self.context_px
    }

    /// A conservative receptive-field radius in input pixels: per blob, its scale relative to
    /// the input and how far (in input pixels) its values reach. Each layer adds how far it
    /// reads beyond an output pixel's position (a padded 3×3 convolution 1 pixel, bicubic 2
    /// plus its border shift), divided by the scale of the blob it reads. With `pools_given`,
    /// a global Pooling's value is a constant (computed for the whole frame beforehand), and
    /// so is whatever is computed from constants alone.
    fn context_radius(&self, segment: &Segment, pools_given: bool) -> usize {
        let mut scale = vec![1.0f64; self.blob_names.len()];
        let mut radius = vec![0.0f64; self.blob_names.len()];
        let mut constant = vec![false; self.blob_names.len()];
        for layer in &self.layers[segment.layers.clone()] {
            let from_constants =
                !layer.bottoms.is_empty() && layer.bottoms.iter().all(|&b| constant[b]);
            if (pools_given && matches!(layer.op, Op::Pooling(_))) || from_constants {
                for &t in &layer.tops {
                    constant[t] = true;
                }
                continue;
            }
            let s_in = layer
                .bottoms
                .iter()
                .find(|&&b| !constant[b])
                .map_or(1.0, |&b| scale[b]);
            let r_in = layer
                .bottoms
                .iter()
                .filter(|&&b| !constant[b])
                .map(|&b| radius[b])
                .fold(0.0f64, f64::max);
            let (s_out, r_out) = match &layer.op {
                Op::Input => (1.0, 0.0),
                Op::Conv(c) => {
                    let stride = c.stride_w.max(c.stride_h) as f64;
                    (s_in / stride, r_in + c.reach() as f64 / s_in)
                }
                Op::Deconv(d) => {
                    let ext = (d.dilation_w * (d.kernel_w - 1) + 1)
                        .max(d.dilation_h * (d.kernel_h - 1) + 1)
                        as f64;
                    let stride = d.stride_w.min(d.stride_h) as f64;
                    (s_in * stride, r_in + (ext / stride + 1.0) / s_in)
                }
                Op::PixelShuffle { factor, .. } => (s_in * *factor as f64, r_in + 1.0 / s_in),
                Op::Interp(interp) => {
                    let factor = if interp.output_height > 0 {
                        1.0
                    } else {
                        f64::from(interp.width_scale.min(interp.height_scale))
                    };
                    // Bicubic reads 2 pixels each way and shifts taps by up to 2 at borders.
                    (s_in * factor, r_in + 4.0 / s_in + 1.0 / (s_in * factor))
                }
                // A global statistic depends on the whole image: a tile needs all of it.
                Op::Pooling(_) | Op::InnerProduct(_) => (s_in, f64::from(u32::MAX)),
                _ => (s_in, r_in),
            };
            for &t in &layer.tops {
                scale[t] = s_out;
                radius[t] = r_out;
            }
        }
        radius[segment.output].ceil() as usize + 1
    }
}

/// The one input of a single-input layer (arity is checked at load).
fn single(inputs: Vec<Rc<Tensor>>) -> Result<Rc<Tensor>, String> {
    inputs
        .into_iter()
        .next()
        .ok_or_else(|| "has no input blob".to_string())
}

/// The tensor itself when this is the only reference, else a copy.
fn owned(t: Rc<Tensor>) -> Tensor {
    Rc::try_unwrap(t).unwrap_or_else(|shared| copy_of(&shared))
}

/// A copy of `t` in a kept buffer ([`pool`]).
fn copy_of(t: &Tensor) -> Tensor {
    let mut data = pool::zeroed(t.data.len());
    data.copy_from_slice(&t.data);
    Tensor {
        channels: t.channels,
        height: t.height,
        width: t.width,
        data,
    }
}
