#!/usr/bin/env python3
"""Reference timings for `cargo bench --bench spectrum`: the same samples and image sizes
through scipy.signal.stft and pywt.cwt(method='fft'). Benchmark only (not CI):
`pip install scipy pywavelets`.

Reads the samples from reframe's audio cache file (32-byte header, then mono little-endian
f32). Prints `key=value` lines (seconds, median of the runs) for the benchmark to read.

What is timed, so that the work matches what reframe computes for one image:
- STFT: a 60 s window, Hann frames of 2048 samples, hop = window / 1600 (1600 frames, as
  reframe transforms one frame per column), magnitudes to dB.
- STFT as a scipy user would write it for the same window and segment length:
  `signal.stft(x, fs, nperseg=2048)` with its defaults (Hann, noverlap=1024, boundary
  padding: ~2800 frames over 60 s), magnitudes to dB. More frames than reframe computes for
  a 1600-column image; this is the comparison against ordinary use, the one above against
  the same work.
- Both STFTs again from the file: the window read with `numpy.fromfile` inside the timed
  part (reframe's "from the cache file" figure reads its mapped cache file likewise).
- CWT: complex Morlet 'cmor1.5-1.0' at 200 log-spaced frequencies 20 Hz … 24 kHz, full-rate
  coefficients (that is what pywt computes), magnitudes to dB, 1600 columns picked. 5 s
  window: all 200 scales. 30 s window: 200 scales would need 4.6 GB of complex128 output,
  so every 10th scale (20, spread over the whole range) is timed and the time multiplied by
  10; the output says so.
"""
import argparse
import statistics
import sys
import time

import numpy as np

try:
    import pywt
    from scipy import signal
except ImportError as e:  # the benchmark prints this and carries on
    print(f"python reference needs scipy and pywavelets: {e}", file=sys.stderr)
    sys.exit(2)

HEADER_BYTES = 32


def window(samples, rate, start_secs, secs):
    first = int(start_secs * rate)
    return np.array(samples[first:first + int(secs * rate)], dtype=np.float32)


def median_time(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stft_image(x, rate, width):
    nperseg = 2048
    hop = len(x) // width
    _, _, z = signal.stft(x, fs=rate, window="hann", nperseg=nperseg,
                          noverlap=nperseg - hop, boundary=None, padded=False)
    return 20 * np.log10(np.maximum(np.abs(z), 1e-6))


def stft_default(x, rate):
    _, _, z = signal.stft(x, rate, nperseg=2048)
    return 20 * np.log10(np.maximum(np.abs(z), 1e-6))


def read_window(path, rate, start_secs, secs):
    first = int(start_secs * rate)
    return np.fromfile(path, dtype="<f4", count=int(secs * rate),
                       offset=HEADER_BYTES + 4 * first)


def cwt_image(x, rate, width, freqs, chunk):
    columns = (np.arange(width) + 0.5) * len(x) / width
    columns = columns.astype(int)
    scales = 1.0 / (freqs / rate)  # cmor centre frequency 1.0
    rows = []
    for i in range(0, len(scales), chunk):
        coefs, _ = pywt.cwt(x, scales[i:i + chunk], "cmor1.5-1.0",
                            sampling_period=1.0 / rate, method="fft")
        rows.append(20 * np.log10(np.maximum(np.abs(coefs[:, columns]), 1e-6)))
        del coefs
    return np.vstack(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cache")
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--stft-start", type=float, required=True)
    parser.add_argument("--cwt30-start", type=float)
    parser.add_argument("--cwt5-start", type=float)
    # The benchmark's REFRAME_BENCH_ONLY_STFT: the STFT references alone (the same calls).
    parser.add_argument("--skip-cwt", action="store_true")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--stft-height", type=int, default=256)
    parser.add_argument("--cwt-height", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    samples = np.memmap(args.cache, dtype="<f4", mode="r", offset=HEADER_BYTES)
    rate, width = args.rate, args.width
    print(f"python numpy {np.__version__}, scipy {__import__('scipy').__version__}, "
          f"pywt {pywt.__version__}")

    x60 = window(samples, rate, args.stft_start, 60.0)
    stft_runs = max(args.runs, 9)
    t = median_time(lambda: stft_image(x60, rate, width), stft_runs)
    frames = stft_image(x60, rate, width).shape[1]
    print(f"scipy_stft_60s_secs={t:.4f}")
    print(f"scipy stft 60 s: {frames} frames of 2048, {t * 1e3:.1f} ms (median)")
    t = median_time(lambda: stft_default(x60, rate), stft_runs)
    frames = stft_default(x60, rate).shape[1]
    print(f"scipy_stft_default_60s_secs={t:.4f}")
    print(f"scipy_stft_default_60s_frames={frames}")
    print(f"scipy stft 60 s, defaults (nperseg=2048, noverlap=1024): {frames} frames, "
          f"{t * 1e3:.1f} ms (median)")
    start = args.stft_start
    t = median_time(lambda: stft_image(read_window(args.cache, rate, start, 60.0), rate,
                                       width), stft_runs)
    print(f"scipy_stft_60s_file_secs={t:.4f}")
    print(f"scipy stft 60 s, same frames, window read with numpy.fromfile: {t * 1e3:.1f} ms")
    t = median_time(lambda: stft_default(read_window(args.cache, rate, start, 60.0), rate),
                    stft_runs)
    print(f"scipy_stft_default_60s_file_secs={t:.4f}")
    print(f"scipy stft 60 s, defaults, window read with numpy.fromfile: {t * 1e3:.1f} ms")

    if args.skip_cwt:
        return
    if args.cwt30_start is None or args.cwt5_start is None:
        parser.error("--cwt30-start and --cwt5-start are needed unless --skip-cwt")
    freqs = np.geomspace(rate / 2, 20.0, args.cwt_height)
    x5 = window(samples, rate, args.cwt5_start, 5.0)
    t5 = median_time(lambda: cwt_image(x5, rate, width, freqs, 25), args.runs)
    print(f"pywt_cwt_5s_secs={t5:.4f}")
    print(f"pywt cwt 5 s, {len(freqs)} scales: {t5:.2f} s (median of {args.runs})")

    x30 = window(samples, rate, args.cwt30_start, 30.0)
    subset = freqs[::10]
    t30 = median_time(lambda: cwt_image(x30, rate, width, subset, 5), 1)
    scaled = t30 * len(freqs) / len(subset)
    print(f"pywt_cwt_30s_secs={scaled:.4f}")
    print(f"pywt cwt 30 s: {len(subset)} of {len(freqs)} scales took {t30:.2f} s, "
          f"so ~{scaled:.1f} s for all (extrapolated)")


if __name__ == "__main__":
    main()
