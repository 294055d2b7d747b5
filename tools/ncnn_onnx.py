#!/usr/bin/env python3
"""Independent reference for reframe's neural engines: ncnn .param/.bin -> ONNX -> onnxruntime.

Written from ncnn's file format and layer definitions only (no code shared with the Rust
inference), so that agreement between the two means something.

    ncnn_onnx.py convert MODEL.param MODEL.bin OUT.onnx
    ncnn_onnx.py run MODEL.param|MODEL.onnx [MODEL.bin] --input IN.f32 --shape C H W
                     --output OUT.f32 [--threads N] [--pad-edge P] [--repeat N]

`run` reads raw little-endian f32 CHW (C*H*W values, no header), optionally pads it by P pixels
on every side by edge replication (waifu2x's upconv_7 has unpadded convolutions and is fed an
image padded by 7 pixels), runs it through onnxruntime on the CPU with N intra-op threads, and
writes the raw f32 CHW output. It prints one JSON line on stdout:
{"shape": [C, H, W], "times_ms": [...], "median_ms": ...} (one time per --repeat).

Layers: Input, Split, Convolution (fused activations 0..4), PReLU, ReLU (slope = leaky),
PixelShuffle, Interp (nearest; bicubic), BinaryOp (add, sub, mul), Deconvolution, Concat, Eltwise,
Pooling (global), InnerProduct, Crop (starts/ends/axes; to a reference blob), Scale.

Correspondences worth stating (checked against ncnn's layer sources):
* PixelShuffle mode 0: out[c][y*r+i][x*r+j] = in[c*r*r + i*r + j][y][x] = DepthToSpace "CRD";
  mode 1 (channel index (i*r+j)*C + c) = DepthToSpace "DCR".
* Deconvolution: ncnn stores weights [out][in][kh][kw] and scatters in[q][y][x]*W[p][q][ky][kx]
  to out[p][y*s+ky][x*s+kx], then cuts `pad` from every side: ONNX ConvTranspose with the
  weights transposed to [in][out][kh][kw] and pads = pad.
* Interp bicubic (resize_type 3): ncnn uses Keys' cubic with A = -0.75 at source position
  (dst + 0.5) * in/out - 0.5 (half_pixel, align_corner 0). At the borders ncnn shifts the
  4-tap window inside the image and folds the weights of the taps that fell outside onto the
  edge pixel; that is exactly the same sum as clamping each tap index to [0, size-1], which is
  what onnxruntime does with exclude_outside = 0. The only difference is rounding: ncnn
  computes the 4th weight as 1 - (the other three), onnxruntime evaluates it directly (< 1e-6).
  Output size: ncnn takes int(size * scale), ONNX floor(size * scale): equal for the scales the
  models use (4, 0.5, 0.75 on multiples of 4).
* Interp nearest (resize_type 1): ncnn takes source index floor(dst * in/out): ONNX Resize
  nearest with coordinate_transformation_mode "asymmetric" and nearest_mode "floor".
"""

import argparse
import json
import struct
import sys
import time

import numpy as np

FP16_TAG = 0x01306B47


class ParamError(Exception):
    pass


def parse_param(text):
    """Layers of a .param text: list of (type, name, bottoms, tops, {key: value})."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines or lines[0].strip() != "7767517":
        raise ParamError("not an ncnn .param file (no 7767517 magic)")
    layer_count, _blob_count = (int(v) for v in lines[1].split())
    layers = []
    for lineno, line in enumerate(lines[2 : 2 + layer_count], start=3):
        parts = line.split()
        kind, name = parts[0], parts[1]
        nb, nt = int(parts[2]), int(parts[3])
        bottoms = parts[4 : 4 + nb]
        tops = parts[4 + nb : 4 + nb + nt]
        params = {}
        for kv in parts[4 + nb + nt :]:
            key, value = kv.split("=", 1)
            key = int(key)
            if key <= -23300:
                values = value.split(",")
                count = int(values[0])
                params[-23300 - key] = [float(v) for v in values[1 : 1 + count]]
            elif any(c in value for c in ".eE"):
                params[key] = float(value)
            else:
                params[key] = int(value)
        layers.append((kind, name, bottoms, tops, params, lineno))
    return layers


class BinReader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise ParamError("the .bin file is shorter than the .param needs")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def tagged(self, count):
        """Weights with the 4-byte storage tag (fp16 or raw fp32)."""
        (tag,) = struct.unpack("<I", self._take(4))
        if tag == FP16_TAG:
            raw = self._take(count * 2)
            self._take((4 - (count * 2) % 4) % 4)  # fp16 data is padded to 4 bytes
            return np.frombuffer(raw, dtype="<f2").astype(np.float32)
        if tag == 0:
            return np.frombuffer(self._take(count * 4), dtype="<f4").astype(np.float32)
        raise ParamError(f"unsupported weight storage tag 0x{tag:08x} (quantized models are not supported)")

    def raw(self, count):
        return np.frombuffer(self._take(count * 4), dtype="<f4").astype(np.float32)


def convert(param_text, bin_data):
    """An onnx.ModelProto for the ncnn model (input "input", output "output", NCHW, N=1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    layers = parse_param(param_text)
    weights = BinReader(bin_data)
    nodes, inits = [], []
    graph_input = None
    consumed = set()
    produced = []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def activation(kind_id, act_params, src, dst, name):
        if kind_id == 0:
            nodes.append(helper.make_node("Identity", [src], [dst], name=name + "_act"))
        elif kind_id == 1:
            nodes.append(helper.make_node("Relu", [src], [dst], name=name + "_act"))
        elif kind_id == 2:
            slope = act_params[0] if act_params else 0.0
            nodes.append(helper.make_node("LeakyRelu", [src], [dst], name=name + "_act", alpha=float(slope)))
        elif kind_id == 3:
            lo = const(name + "_min", np.float32(act_params[0]))
            hi = const(name + "_max", np.float32(act_params[1]))
            nodes.append(helper.make_node("Clip", [src, lo, hi], [dst], name=name + "_act"))
        elif kind_id == 4:
            nodes.append(helper.make_node("Sigmoid", [src], [dst], name=name + "_act"))
        else:
            raise ParamError(f"layer {name}: activation type {kind_id} is not supported")

    for kind, name, bottoms, tops, p, lineno in layers:
        # Blob names get a prefix so that none collides with the graph's "input"/"output".
        bottoms = ["blob:" + b for b in bottoms]
        tops = ["blob:" + t for t in tops]
        consumed.update(bottoms)
        produced.extend(tops)
        where = f"layer {name} ({kind}, line {lineno})"
        if kind == "Input":
            graph_input = tops[0]
        elif kind == "Split":
            for top in tops:
                nodes.append(helper.make_node("Identity", [bottoms[0]], [top], name=f"{name}_{top}"))
        elif kind in ("Convolution", "Deconvolution"):
            out_c = p.get(0, 0)
            kw = p.get(1, 0)
            kh = p.get(11, kw)
            dw = p.get(2, 1)
            dh = p.get(12, dw)
            sw = p.get(3, 1)
            sh = p.get(13, sw)
            size = p.get(6, 0)
            if kind == "Convolution":
                pl = p.get(4, 0)
                pr = p.get(15, pl)
                pt = p.get(14, pl)
                pb = p.get(16, pt)
            else:
                pl = pr = p.get(4, 0)
                pt = pb = p.get(14, pl)
                if p.get(18, 0) or p.get(19, 0) or p.get(20, 0) or p.get(21, 0):
                    raise ParamError(f"{where}: output padding / output size is not supported")
            if min(pl, pr, pt, pb) < 0:
                raise ParamError(f"{where}: automatic ('SAME') padding is not supported")
            if p.get(8, 0):
                raise ParamError(f"{where}: int8 models are not supported")
            if kind == "Convolution" and p.get(7, 1) != 1:
                raise ParamError(f"{where}: grouped convolution is not supported")
            in_c = size // (out_c * kw * kh)
            w = weights.tagged(size).reshape(out_c, in_c, kh, kw)
            b = weights.raw(out_c) if p.get(5, 0) else np.zeros(out_c, np.float32)
            pre = tops[0] + "_pre"
            if kind == "Convolution":
                nodes.append(
                    helper.make_node(
                        "Conv",
                        [bottoms[0], const(name + "_w", w), const(name + "_b", b)],
                        [pre],
                        name=name,
                        kernel_shape=[kh, kw],
                        strides=[sh, sw],
                        dilations=[dh, dw],
                        pads=[pt, pl, pb, pr],
                    )
                )
            else:
                nodes.append(
                    helper.make_node(
                        "ConvTranspose",
                        [bottoms[0], const(name + "_w", np.ascontiguousarray(w.transpose(1, 0, 2, 3))), const(name + "_b", b)],
                        [pre],
                        name=name,
                        kernel_shape=[kh, kw],
                        strides=[sh, sw],
                        dilations=[dh, dw],
                        pads=[pt, pl, pb, pr],
                    )
                )
            activation(p.get(9, 0), p.get(10, []), pre, tops[0], name)
        elif kind == "PReLU":
            n = p.get(0, 0)
            slope = weights.raw(n)
            slope = slope.reshape(n, 1, 1) if n > 1 else slope.reshape(1)
            nodes.append(helper.make_node("PRelu", [bottoms[0], const(name + "_slope", slope)], tops, name=name))
        elif kind == "ReLU":
            slope = float(p.get(0, 0.0))
            if slope == 0.0:
                nodes.append(helper.make_node("Relu", bottoms, tops, name=name))
            else:
                nodes.append(helper.make_node("LeakyRelu", bottoms, tops, name=name, alpha=slope))
        elif kind == "PixelShuffle":
            r = p.get(0, 1)
            mode = "DCR" if p.get(1, 0) == 1 else "CRD"
            nodes.append(helper.make_node("DepthToSpace", bottoms, tops, name=name, blocksize=r, mode=mode))
        elif kind == "Interp":
            resize_type = p.get(0, 0)
            hs = float(p.get(1, 1.0))
            ws = float(p.get(2, 1.0))
            if p.get(3, 0) or p.get(4, 0) or p.get(5, 0):
                raise ParamError(f"{where}: a fixed or dynamic output size is not supported")
            scales = const(name + "_scales", np.array([1.0, 1.0, hs, ws], np.float32))
            if resize_type == 1:
                attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
            elif resize_type == 2:
                attrs = dict(
                    mode="linear",
                    coordinate_transformation_mode="align_corners" if p.get(6, 0) else "half_pixel",
                )
            elif resize_type == 3:
                attrs = dict(
                    mode="cubic",
                    cubic_coeff_a=-0.75,
                    exclude_outside=0,
                    coordinate_transformation_mode="align_corners" if p.get(6, 0) else "half_pixel",
                )
            else:
                raise ParamError(f"{where}: resize type {resize_type} is not supported")
            nodes.append(helper.make_node("Resize", [bottoms[0], "", scales], tops, name=name, **attrs))
        elif kind == "BinaryOp":
            op = {0: "Add", 1: "Sub", 2: "Mul"}.get(p.get(0, 0))
            if op is None or p.get(1, 0):
                raise ParamError(f"{where}: only add/sub/mul of two blobs are supported")
            nodes.append(helper.make_node(op, bottoms, tops, name=name))
        elif kind == "Pooling":
            if not p.get(4, 0):
                raise ParamError(f"{where}: only global pooling is supported")
            op = {0: "GlobalMaxPool", 1: "GlobalAveragePool"}.get(p.get(0, 0))
            if op is None:
                raise ParamError(f"{where}: pooling type {p.get(0, 0)} is not supported")
            nodes.append(helper.make_node(op, bottoms, tops, name=name))
        elif kind == "InnerProduct":
            out_n = p.get(0, 0)
            size = p.get(2, 0)
            w = weights.tagged(size).reshape(out_n, size // out_n)
            flat = f"{name}_flat"
            nodes.append(helper.make_node("Flatten", bottoms, [flat], name=flat, axis=1))
            gemm_inputs = [flat, const(f"{name}_w", w)]
            if p.get(1, 0):
                gemm_inputs.append(const(f"{name}_b", weights.raw(out_n)))
            dense = f"{name}_dense"
            nodes.append(helper.make_node("Gemm", gemm_inputs, [dense], name=dense, transB=1))
            act = f"{name}_activated"
            activation(p.get(9, 0), p.get(10, []), dense, act, name)
            shape = const(f"{name}_shape", np.array([1, out_n, 1, 1], dtype=np.int64))
            nodes.append(helper.make_node("Reshape", [act, shape], tops, name=name))
        elif kind == "Crop":
            starts, ends = p.get(9), p.get(10)
            if len(bottoms) == 2:
                # To the reference blob's size, from (c, h, w) offsets.
                offsets = np.array([p.get(2, 0), p.get(1, 0), p.get(0, 0)], dtype=np.int64)
                shape, size, end = f"{name}_refshape", f"{name}_size", f"{name}_ends"
                nodes.append(helper.make_node("Shape", [bottoms[1]], [shape], name=shape))
                nodes.append(helper.make_node(
                    "Slice",
                    [shape, const(f"{name}_s0", np.array([1], dtype=np.int64)),
                     const(f"{name}_s1", np.array([4], dtype=np.int64))],
                    [size], name=size))
                starts_name = const(f"{name}_starts", offsets)
                nodes.append(helper.make_node("Add", [size, starts_name], [end], name=end))
                nodes.append(helper.make_node(
                    "Slice",
                    [bottoms[0], starts_name, end,
                     const(f"{name}_axes", np.array([1, 2, 3], dtype=np.int64))],
                    tops, name=name))
                continue
            if not starts:
                raise ParamError(f"{where}: only the starts/ends/axes and reference forms are supported")
            axes = p.get(11) or list(range(len(starts)))
            big = 2**31 - 1
            ends = [big if int(e) == -233 else int(e) for e in ends]
            # ncnn's axes count c, h, w; ONNX's have the batch in front.
            axes = [int(a) + 1 if int(a) >= 0 else int(a) for a in axes]
            nodes.append(helper.make_node(
                "Slice",
                [bottoms[0],
                 const(f"{name}_starts", np.array([int(v) for v in starts], dtype=np.int64)),
                 const(f"{name}_ends", np.array(ends, dtype=np.int64)),
                 const(f"{name}_axes", np.array(axes, dtype=np.int64))],
                tops, name=name))
        elif kind == "Scale":
            size = p.get(0, 0)
            if size == -233:
                if p.get(1, 0):
                    raise ParamError(f"{where}: a bias with factors from a blob is not supported")
                nodes.append(helper.make_node("Mul", bottoms, tops, name=name))
            else:
                factors = weights.raw(size).reshape(1, size, 1, 1)
                if p.get(1, 0):
                    scaled = f"{name}_scaled"
                    nodes.append(helper.make_node("Mul", [bottoms[0], const(f"{name}_s", factors)], [scaled], name=scaled))
                    bias = weights.raw(size).reshape(1, size, 1, 1)
                    nodes.append(helper.make_node("Add", [scaled, const(f"{name}_b", bias)], tops, name=name))
                else:
                    nodes.append(helper.make_node("Mul", [bottoms[0], const(f"{name}_s", factors)], tops, name=name))
        elif kind == "Concat":
            if p.get(0, 0) not in (0, -3):
                raise ParamError(f"{where}: only the channel axis (0) is supported")
            nodes.append(helper.make_node("Concat", bottoms, tops, name=name, axis=1))
        elif kind == "Eltwise":
            op_type = p.get(0, 1)
            coeffs = p.get(1, [])
            if op_type == 1 and coeffs:
                scaled = []
                for i, (b, c) in enumerate(zip(bottoms, coeffs)):
                    out = f"{name}_scaled{i}"
                    nodes.append(helper.make_node("Mul", [b, const(f"{name}_coeff{i}", np.float32(c))], [out], name=out))
                    scaled.append(out)
                nodes.append(helper.make_node("Sum", scaled, tops, name=name))
            elif op_type in (0, 1, 2):
                op = {0: "Mul", 1: "Sum", 2: "Max"}[op_type]
                if op == "Mul" and len(bottoms) > 2:
                    raise ParamError(f"{where}: a product of more than two blobs is not supported")
                nodes.append(helper.make_node(op, bottoms, tops, name=name))
            else:
                raise ParamError(f"{where}: Eltwise operation {op_type} is not supported")
        else:
            raise ParamError(f"{where}: layer type {kind} is not supported")

    if graph_input is None:
        raise ParamError("the model has no Input layer")
    if weights.pos != len(bin_data):
        raise ParamError(f"the .bin file has {len(bin_data) - weights.pos} bytes more than the .param uses")
    outputs = [t for t in produced if t not in consumed]
    if len(outputs) != 1:
        raise ParamError(f"expected one output blob, found {outputs}")
    nodes.insert(0, helper.make_node("Identity", ["input"], [graph_input], name="input_identity"))
    nodes.append(helper.make_node("Identity", [outputs[0]], ["output"], name="output_identity"))
    graph = helper.make_graph(
        nodes,
        "ncnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, None, None, None])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, None, None, None])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def load_model_bytes(model_path, bin_path):
    if model_path.endswith(".onnx"):
        with open(model_path, "rb") as f:
            return f.read()
    if bin_path is None:
        raise SystemExit("a .param model needs its .bin file too")
    with open(model_path, encoding="utf-8") as f:
        text = f.read()
    with open(bin_path, "rb") as f:
        data = f.read()
    return convert(text, data).SerializeToString()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="ncnn .param/.bin -> .onnx")
    c.add_argument("param")
    c.add_argument("bin")
    c.add_argument("out")
    r = sub.add_parser("run", help="raw f32 CHW -> onnxruntime -> raw f32 CHW")
    r.add_argument("model", help=".param (converted on the fly) or .onnx")
    r.add_argument("bin", nargs="?")
    r.add_argument("--input", required=True)
    r.add_argument("--shape", required=True, nargs=3, type=int, metavar=("C", "H", "W"))
    r.add_argument("--output", required=True)
    r.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    r.add_argument("--pad-edge", type=int, default=0, help="edge-replicated padding added to the input")
    r.add_argument("--repeat", type=int, default=1, help="run this many times (timings)")
    args = parser.parse_args(argv)

    if args.command == "convert":
        with open(args.param, encoding="utf-8") as f:
            text = f.read()
        with open(args.bin, "rb") as f:
            data = f.read()
        import onnx

        onnx.save(convert(text, data), args.out)
        return 0

    import onnxruntime as ort

    c, h, w = args.shape
    x = np.fromfile(args.input, dtype="<f4")
    if x.size != c * h * w:
        raise SystemExit(f"{args.input} holds {x.size} values, not {c}x{h}x{w}")
    x = x.reshape(1, c, h, w)
    if args.pad_edge:
        x = np.pad(x, ((0, 0), (0, 0), (args.pad_edge,) * 2, (args.pad_edge,) * 2), mode="edge")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(
        load_model_bytes(args.model, args.bin), options, providers=["CPUExecutionProvider"]
    )
    times_ms = []
    y = None
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        (y,) = session.run(["output"], {"input": np.ascontiguousarray(x, dtype=np.float32)})
        times_ms.append((time.perf_counter() - start) * 1000.0)
    y = np.ascontiguousarray(y[0], dtype="<f4")
    y.tofile(args.output)
    print(json.dumps({"shape": list(y.shape), "times_ms": times_ms, "median_ms": float(np.median(times_ms))}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ParamError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
