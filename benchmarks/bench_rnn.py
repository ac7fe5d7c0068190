"""Forward+backward time of tinyattn's recurrent layers vs a naive loop and PyTorch.

Measures one forward and one backward pass (``hs, state = layer(x)``, then
``layer.backward(dhs)``) at B=64, T=50, D=H=256, float32 and float64, for RNN,
GRU (reset_after=True), LSTM and a bidirectional LSTM. Candidates per cell:
tinyattn (the sequence module, with its default ``fused=True`` in-place loop
for RNN and GRU); the plain loop (RNN and GRU with ``fused=False``: the input
projection before the loop, the cell's gates functions per step, the weight
gradients after it; the LSTM has only this loop, so its column says
"= tinyattn"); a naive loop (a plain Python for-loop over t calling the pure
step functions ``*_step_forward`` / ``*_step_backward``); and
PyTorch CPU (``nn.RNN/GRU/LSTM``, ``batch_first=True``, ``out.backward(dhs)``),
"n/a" when torch is missing. The candidates of one cell are timed interleaved
in one process (a, b, c, a, b, c, ...) after warm-up; each figure is the median
of ``--repeats`` runs (``time.perf_counter``), in ms. PyTorch gets as many
threads as numpy's BLAS. The target "LSTM and GRU tinyattn/PyTorch <= 1.0" is
reported, never asserted.

Run: ``python benchmarks/bench_rnn.py`` (``make bench`` calls it); ``--quick``
is a smoke run (B=4, T=5, D=H=8, 2 repeats). The Markdown table goes to stdout,
progress to stderr; ``--markdown PATH`` also writes the report to a file.
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import sys
import time

import numpy as np

import tinyattn as ta
from tinyattn.gru import gru_step_backward, gru_step_forward
from tinyattn.lstm import lstm_step_backward, lstm_step_forward
from tinyattn.rnn import rnn_step_backward, rnn_step_forward

try:
    import torch
except ImportError:  # the PyTorch column then says "n/a"
    torch = None

FULL_SHAPE = {"B": 64, "T": 50, "D": 256, "H": 256}
QUICK_SHAPE = {"B": 4, "T": 5, "D": 8, "H": 8}
LAYERS = ("RNN", "GRU", "LSTM", "BiLSTM")
DTYPES = ("float32", "float64")
TARGET_LAYERS = ("GRU", "LSTM")
STEP_WEIGHTS = {"RNN": ("W_xh", "W_hh", "b_h"), "GRU": ("W_x", "W_h", "b_x", "b_h"),
                "LSTM": ("W_x", "W_h", "b")}
COLUMNS = ("layer", "dtype", "tinyattn ms", "plain loop ms", "naive loop ms", "PyTorch ms",
           "tinyattn / PyTorch", "plain / tinyattn", "naive / tinyattn")


def blas_info() -> tuple[str, int | None]:
    """numpy's BLAS as ``(internal_api, num_threads)``, or ``("unknown", None)``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown", None
    blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    ours = ([p for p in blas if "numpy" in p.get("filepath", "")] or blas or [{}])[0]
    return ours.get("internal_api", "unknown"), ours.get("num_threads")


def blas_shared_with(torch_module) -> tuple[str, int | None]:
    """`blas_info`, after giving PyTorch (if given) numpy's BLAS thread budget."""
    blas = blas_info()
    if torch_module is not None and blas[1]:
        torch_module.set_num_threads(blas[1])
    return blas


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else (platform.processor() or "unknown")


def header_lines(shape: dict, blas: tuple[str, int | None], args) -> list[str]:
    return [
        f"- numpy {np.__version__}, BLAS {blas[0]} ({blas[1] or 'unknown'} threads)",
        f"- torch {torch.__version__}, {torch.get_num_threads()} threads"
        if torch is not None else "- torch not installed",
        f"- CPU {cpu_model()}; Python {platform.python_version()}",
        "- shapes B={B}, T={T}, D={D}, H={H}; forward + backward".format(**shape),
        f"- median of {args.repeats} interleaved runs after {args.warmup} warm-up",
    ]


FUSED = ("RNN", "GRU")  # the layers with a fused loop (tinyattn.fused); LSTM has none


def make_layer(kind: str, D: int, H: int, dtype, rng, fused=True):
    if kind == "BiLSTM":
        return ta.Bidirectional(ta.LSTM(D, H, rng=rng, dtype=dtype),
                                ta.LSTM(D, H, rng=rng, dtype=dtype))
    extra = {"reset_after": True} if kind == "GRU" else {}
    if kind in FUSED:
        extra["fused"] = fused
    return getattr(ta, kind)(D, H, rng=rng, dtype=dtype, **extra)


def naive_simple(step_f, step_b, weights, x, dhs):
    """Naive BPTT for single-state cells (RNN, GRU): ``dx`` and weight grads."""
    B, T, _ = x.shape
    h = np.zeros((B, dhs.shape[2]), dtype=x.dtype)
    hs, caches = [], []
    for t in range(T):
        h, cache = step_f(x[:, t], h, *weights)
        hs.append(h)
        caches.append(cache)
    np.stack(hs, axis=1)  # the (B, T, H) output the module returns
    dx, dh, dW = np.empty_like(x), np.zeros_like(h), [np.zeros_like(w) for w in weights]
    for t in reversed(range(T)):
        dx[:, t], dh, *dws = step_b(dh + dhs[:, t], caches[t])
        for acc, g in zip(dW, dws, strict=True):
            acc += g
    return dx, dW


def naive_lstm(weights, x, dhs):
    """Naive BPTT for the LSTM, carrying ``(h, c)`` and ``(dh, dc)``."""
    B, T, _ = x.shape
    h = c = np.zeros((B, dhs.shape[2]), dtype=x.dtype)
    hs, caches = [], []
    for t in range(T):
        (h, c), cache = lstm_step_forward(x[:, t], h, c, *weights)
        hs.append(h)
        caches.append(cache)
    np.stack(hs, axis=1)
    dx, dW = np.empty_like(x), [np.zeros_like(w) for w in weights]
    dh, dc = np.zeros_like(h), np.zeros_like(c)
    for t in reversed(range(T)):
        dx[:, t], dh, dc, *dws = lstm_step_backward(dh + dhs[:, t], dc, caches[t])
        for acc, g in zip(dW, dws, strict=True):
            acc += g
    return dx, dW


def naive_candidate(kind: str, layer, x, dhs):
    """A closure running the naive loop with ``layer``'s own weights."""
    def weights(module):  # in the step functions' argument order
        return tuple(module.params[n] for n in STEP_WEIGHTS[kind.removeprefix("Bi")])
    if kind == "RNN":
        return lambda: naive_simple(rnn_step_forward, rnn_step_backward, weights(layer), x, dhs)
    if kind == "GRU":
        step_f = functools.partial(gru_step_forward, reset_after=True)
        return lambda: naive_simple(step_f, gru_step_backward, weights(layer), x, dhs)
    if kind == "LSTM":
        return lambda: naive_lstm(weights(layer), x, dhs)
    H, wf, wb = layer.fwd.hidden_size, weights(layer.fwd), weights(layer.bwd)

    def run():  # two independent loops, the second on the time-reversed input
        dx_f, _ = naive_lstm(wf, x, dhs[:, :, :H])
        dx_b, _ = naive_lstm(wb, x[:, ::-1], dhs[:, ::-1, H:])
        return dx_f + dx_b[:, ::-1]
    return run


def tinyattn_candidate(layer, x, dhs):
    return lambda: (layer(x), layer.backward(dhs))  # hs, state = layer(x); layer.backward(dhs)


def torch_candidate(kind: str, D: int, H: int, x, dhs):
    cls = {"RNN": torch.nn.RNN, "GRU": torch.nn.GRU}.get(kind, torch.nn.LSTM)
    tdtype = torch.float32 if x.dtype == np.float32 else torch.float64
    m = cls(D, H, batch_first=True, bidirectional=kind == "BiLSTM").to(tdtype)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tdhs = torch.from_numpy(dhs.copy())
    return lambda: m(tx)[0].backward(tdhs)  # out, _ = m(x); out.backward(dhs)


def time_interleaved(candidates: dict, repeats: int, warmup: int) -> dict:
    """Median ms per candidate, timed round-robin so drift hits all alike."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: 1e3 * statistics.median(s) for name, s in samples.items()}


def measure_cell(kind: str, dtype_name: str, shape: dict, repeats: int, warmup: int) -> dict:
    (B, T, D, H), dtype = (shape[k] for k in "BTDH"), np.dtype(dtype_name).type
    rng = np.random.default_rng(0)
    layer = make_layer(kind, D, H, dtype, rng)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    dhs = rng.standard_normal((B, T, 2 * H if kind == "BiLSTM" else H)).astype(dtype)
    candidates = {"tinyattn": tinyattn_candidate(layer, x, dhs)}
    if kind in FUSED:  # the same module without its fused loop
        plain = make_layer(kind, D, H, dtype, np.random.default_rng(0), fused=False)
        candidates["plain"] = tinyattn_candidate(plain, x, dhs)
    candidates["naive"] = naive_candidate(kind, layer, x, dhs)
    if torch is not None:
        candidates["torch"] = torch_candidate(kind, D, H, x, dhs)
    return time_interleaved(candidates, repeats, warmup)


def table_row(kind: str, dtype_name: str, ms: dict) -> list[str]:
    tiny, plain, naive, tch = ms["tinyattn"], ms.get("plain"), ms["naive"], ms.get("torch")
    return [kind, dtype_name, f"{tiny:.2f}",
            "= tinyattn" if plain is None else f"{plain:.2f}", f"{naive:.2f}",
            "n/a" if tch is None else f"{tch:.2f}",
            "n/a" if tch is None else f"{tiny / tch:.2f}",
            "1" if plain is None else f"{plain / tiny:.2f}", f"{naive / tiny:.2f}"]


def target_line(results: list[tuple[str, str, dict]]) -> str:
    goal = 'Target "LSTM and GRU tinyattn/PyTorch <= 1.0"'
    cells = [(k, d, ms) for k, d, ms in results if k in TARGET_LAYERS]
    if not cells or torch is None:
        return f"{goal}: not evaluated (no GRU/LSTM cells or PyTorch unavailable)."
    ok = {f"{k} {d}": ms["tinyattn"] <= ms["torch"] for k, d, ms in cells}
    met = ", ".join(c for c, v in ok.items() if v) or "none"
    missed = ", ".join(c for c, v in ok.items() if not v) or "none"
    return f"{goal}: met by {met}; not met by {missed}."


def write_report(report: str, path=None) -> None:
    """The report to stdout and, with ``--markdown PATH``, to that file."""
    sys.stdout.write(report)
    if path:
        with open(path, "w") as f:
            f.write(report)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per candidate (default 7, or 2 with --quick)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: B=4, T=5, D=H=8")
    p.add_argument("--layers", nargs="+", choices=LAYERS, default=list(LAYERS))
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    p.add_argument("--markdown", metavar="PATH", help="also write the report to this file")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    if args.repeats < 1 or args.warmup < 0:
        p.error("--repeats must be >= 1 and --warmup >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    shape = QUICK_SHAPE if args.quick else FULL_SHAPE
    blas = blas_shared_with(torch)
    cells = [(k, d) for k in LAYERS if k in args.layers for d in DTYPES if d in args.dtypes]
    results = []
    for i, (kind, dtype_name) in enumerate(cells, 1):
        ms = measure_cell(kind, dtype_name, shape, args.repeats, args.warmup)
        results.append((kind, dtype_name, ms))
        print(f"[{i}/{len(cells)}] {kind} {dtype_name}: "
              + ", ".join(f"{n} {v:.2f} ms" for n, v in ms.items()), file=sys.stderr, flush=True)
    rows = [COLUMNS, ["---"] * len(COLUMNS)] + [table_row(*r) for r in results]
    table = ["| " + " | ".join(r) + " |" for r in rows]
    report = "\n".join(header_lines(shape, blas, args) + [""] + table
                       + ["", target_line(results)]) + "\n"
    write_report(report, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
