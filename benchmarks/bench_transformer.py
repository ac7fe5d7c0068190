"""Forward+backward time of tinyattn's Transformer layers and model vs PyTorch CPU.

Three tables, every figure the median of ``--repeats`` runs (``time.perf_counter``,
ms) timed interleaved with the other candidates of its row (a, b, c, a, b, c, ...)
after warm-up; PyTorch gets as many threads as numpy's BLAS. Targets are
reported, never asserted.

1. Layers: ``TransformerEncoderLayer`` and ``TransformerDecoderLayer`` (post-LN),
   forward then backward with a random upstream gradient, at B=64, T=S=50,
   d_model=256, 4 heads, d_ff=1024, float32 and float64, against
   ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer``
   (``batch_first=True``, ``dropout=0``, the same weights via
   `tinyattn.interop.to_torch`), and the matrix-product floor: the same
   products (the layer's GEMMs and batched attention products, forward and
   backward) timed alone in NumPy. Target: tinyattn/PyTorch <= 1.0.
2. Heads: the self-attention sublayer with its heads as one batched product
   (tinyattn) against a plain loop over heads (the same maths, one head at a
   time) and PyTorch's ``nn.MultiheadAttention``.
3. A training step (forward, backward, Adam) of the dates-sized Transformer
   (the command line's ``--arch transformer`` defaults: d_model=64, 4 heads,
   d_ff=128, 2+2 layers, float32, B=64, source 30 / target 11 tokens) against
   the same model in PyTorch (`tinyattn.interop.to_torch`: the weights copied,
   the loss checked equal). Target: tinyattn/PyTorch <= 1.0.

Run: ``python benchmarks/bench_transformer.py``; ``--quick`` is a smoke run
(tiny shapes, 2 repeats). Markdown to stdout, progress to stderr;
``--markdown PATH`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rnn import blas_shared_with, cpu_model, time_interleaved, write_report  # noqa: E402

import tinyattn as ta  # noqa: E402

try:
    import torch
except ImportError:  # the PyTorch columns then say "n/a"
    torch = None

FULL = {"B": 64, "T": 50, "D": 256, "n": 4, "F": 1024}
QUICK = {"B": 4, "T": 5, "D": 8, "n": 2, "F": 16}
MODEL_FULL = {"B": 64, "S": 30, "T": 11, "V_src": 62, "V_tgt": 15, "D": 64, "n": 4, "F": 128,
              "L": 2}
MODEL_QUICK = {"B": 4, "S": 6, "T": 4, "V_src": 12, "V_tgt": 9, "D": 8, "n": 2, "F": 16, "L": 1}


def fmt(ms) -> str:
    return "n/a" if ms is None else (f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}")


def ratio(a, b) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


def markdown(rows, columns) -> list[str]:
    return (["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            + ["| " + " | ".join(r) + " |" for r in rows])


# ----- 1. layers ---------------------------------------------------------------------
def make_layer(kind: str, s: dict, dtype, rng):
    cls = ta.TransformerEncoderLayer if kind == "encoder" else ta.TransformerDecoderLayer
    return cls(s["D"], s["n"], s["F"], rng=rng, dtype=dtype)


def layer_candidates(kind: str, s: dict, dtype) -> dict:
    rng = np.random.default_rng(0)
    layer = make_layer(kind, s, dtype, rng)
    x = rng.standard_normal((s["B"], s["T"], s["D"])).astype(dtype)
    mem = rng.standard_normal((s["B"], s["T"], s["D"])).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    args = (x,) if kind == "encoder" else (x, mem)
    out = {"tinyattn": lambda: (layer(*args), layer.backward(dy)), "floor": floor(kind, s, dtype)}
    if torch is not None:
        from tinyattn.interop import to_torch

        twin = to_torch(layer)
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        tm = torch.from_numpy(mem.copy()).requires_grad_(True)
        tdy = torch.from_numpy(dy.copy())
        causal = torch.nn.Transformer.generate_square_subsequent_mask(
            s["T"], dtype=tx.dtype)
        if kind == "encoder":
            out["torch"] = lambda: twin(tx).backward(tdy)
        else:
            out["torch"] = lambda: twin(tx, tm, tgt_mask=causal, tgt_is_causal=True).backward(tdy)
    return out


def floor(kind: str, s: dict, dtype):
    """The layer's matrix products alone: 3 each (forward, and two in backward)."""
    B, T, D, n, F = s["B"], s["T"], s["D"], s["n"], s["F"]
    rng = np.random.default_rng(1)
    X = rng.standard_normal((B * T, D)).astype(dtype)
    W = rng.standard_normal((D, D)).astype(dtype)
    W1, W2 = (rng.standard_normal(sh).astype(dtype) for sh in ((D, F), (F, D)))
    H1 = rng.standard_normal((B * T, F)).astype(dtype)
    Q = rng.standard_normal((B, n, T, D // n)).astype(dtype)
    A = rng.standard_normal((B, n, T, T)).astype(dtype)
    attentions = 1 if kind == "encoder" else 2
    projections = 4 * attentions

    def run():
        for _ in range(projections):  # y = x W, dW = xᵀ dy, dx = dy Wᵀ
            X @ W, X.T @ X, X @ W.T
        X @ W1, X.T @ H1, H1 @ W1.T  # the feed-forward network
        H1 @ W2, H1.T @ X, X @ W2.T
        for _ in range(attentions):  # S = Q Kᵀ, H = A V, and four products back
            for _ in range(3):
                Q @ Q.transpose(0, 1, 3, 2), A @ Q
    return run


# ----- 2. heads: batched vs a loop over heads ----------------------------------------------
def head_loop(mha, x, dout):
    """Self-attention forward and backward one head at a time (the same maths)."""
    p, n, d = mha.params, mha.num_heads, mha.head_size
    B, T, D = x.shape
    x2 = x.reshape(B * T, D)
    proj = {k: (x2 @ p["W_" + k] + p["b_" + k]).reshape(B, T, D) for k in "qkv"}
    heads, cache = [], []
    for h in range(n):
        cols = slice(h * d, (h + 1) * d)
        Qh, Kh, Vh = (proj[k][:, :, cols] for k in "qkv")
        S = Qh @ Kh.transpose(0, 2, 1) * mha.scale
        A = np.exp(S - S.max(axis=-1, keepdims=True))
        A /= A.sum(axis=-1, keepdims=True)
        heads.append(A @ Vh)
        cache.append((Qh, Kh, Vh, A))
    merged = np.concatenate(heads, axis=-1)
    merged.reshape(B * T, D) @ p["W_o"]
    dmerged = dout.reshape(B * T, D) @ p["W_o"].T
    dproj = {k: np.empty((B, T, D), x.dtype) for k in "qkv"}
    for h, (Qh, Kh, Vh, A) in enumerate(cache):
        cols = slice(h * d, (h + 1) * d)
        dH = dmerged.reshape(B, T, D)[:, :, cols]
        dA = dH @ Vh.transpose(0, 2, 1)
        dproj["v"][:, :, cols] = A.transpose(0, 2, 1) @ dH
        dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True)) * mha.scale
        dproj["q"][:, :, cols] = dS @ Kh
        dproj["k"][:, :, cols] = dS.transpose(0, 2, 1) @ Qh
    return sum(dproj[k].reshape(B * T, D) @ p["W_" + k].T for k in "qkv").reshape(B, T, D)


def head_candidates(s: dict, dtype) -> dict:
    rng = np.random.default_rng(0)
    mha = ta.MultiHeadAttention(s["D"], s["n"], rng=rng, dtype=dtype)
    x = rng.standard_normal((s["B"], s["T"], s["D"])).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)

    def batched():
        mha(x, x, x)
        return mha.backward(dout)
    loop_dx = head_loop(mha, x, dout)
    assert np.allclose(loop_dx, sum(batched()), rtol=1e-3 if dtype == np.float32 else 1e-9)
    out = {"tinyattn": batched, "loop": lambda: head_loop(mha, x, dout)}
    if torch is not None:
        from tinyattn.interop import to_torch

        twin = to_torch(mha)
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        tdout = torch.from_numpy(dout.copy())
        out["torch"] = lambda: twin(tx, tx, tx, need_weights=False)[0].backward(tdout)
    return out


# ----- 3. a training step of the dates-sized model -----------------------------------------
def model_candidates(s: dict) -> tuple[dict, str]:
    rng = np.random.default_rng(0)
    model = ta.Transformer(s["V_src"], s["V_tgt"], d_model=s["D"], num_heads=s["n"],
                           d_ff=s["F"], num_encoder_layers=s["L"], num_decoder_layers=s["L"],
                           rng=rng, dtype=np.float32)
    B, S, T = s["B"], s["S"], s["T"]
    src_len = rng.integers(S // 2, S + 1, size=B)
    tgt_len = np.full(B, T)
    src = rng.integers(4, s["V_src"], size=(B, S)) * (np.arange(S) < src_len[:, None])
    tgt = rng.integers(4, s["V_tgt"], size=(B, T + 1))
    batch = (src, src_len, tgt[:, :-1], tgt[:, 1:], tgt_len)
    opt = ta.Adam(model.named_parameters(), lr=1e-4, betas=(0.9, 0.98))

    def step():
        model(*batch)
        model.zero_grad()
        model.backward()
        opt.step()
    out = {"tinyattn": step}
    note = ""
    if torch is not None:
        from tinyattn.interop import to_torch

        twin = to_torch(model)
        topt = torch.optim.Adam(twin.parameters(), lr=1e-4, betas=(0.9, 0.98))
        tb = [torch.from_numpy(np.asarray(a)) for a in batch]
        note = (f"initial loss tinyattn {model(*batch):.6f}, PyTorch "
                f"{float(twin(*tb)):.6f}; parameters {model.num_parameters():,} and "
                f"{sum(p.numel() for p in twin.parameters()):,}")

        def tstep():
            loss = twin(*tb)
            topt.zero_grad()
            loss.backward()
            topt.step()
        out["torch"] = tstep
    return out, note


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per candidate (default 7, or 2 with --quick)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--dtypes", nargs="+", choices=("float32", "float64"),
                   default=["float32", "float64"])
    p.add_argument("--markdown", metavar="PATH", help="also write the report to this file")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    s, ms_ = (QUICK, MODEL_QUICK) if args.quick else (FULL, MODEL_FULL)
    blas = blas_shared_with(torch)

    def timed(name, candidates):
        res = time_interleaved(candidates, args.repeats, args.warmup)
        print(f"{name}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in res.items()),
              file=sys.stderr, flush=True)
        return res
    lines = [f"- numpy {np.__version__}, BLAS {blas[0]} ({blas[1] or 'unknown'} threads)",
             f"- torch {torch.__version__}, {torch.get_num_threads()} threads"
             if torch is not None else "- torch not installed",
             f"- CPU {cpu_model()}",
             "- layers: B={B}, T=S={T}, d_model={D}, {n} heads, d_ff={F}; forward + backward"
             .format(**s),
             f"- median of {args.repeats} interleaved runs after {args.warmup} warm-up", ""]
    rows, heads = [], []
    for kind in ("encoder", "decoder"):
        for dt in args.dtypes:
            r = timed(f"{kind} {dt}", layer_candidates(kind, s, np.dtype(dt).type))
            rows.append([kind, dt, fmt(r["tinyattn"]), fmt(r.get("torch")), fmt(r["floor"]),
                         ratio(r["tinyattn"], r.get("torch")), ratio(r["floor"], r["tinyattn"])])
    for dt in args.dtypes:
        r = timed(f"heads {dt}", head_candidates(s, np.dtype(dt).type))
        heads.append([dt, fmt(r["tinyattn"]), fmt(r["loop"]), fmt(r.get("torch")),
                      ratio(r["loop"], r["tinyattn"]), ratio(r["tinyattn"], r.get("torch"))])
    lines += markdown(rows, ["layer", "dtype", "tinyattn ms", "PyTorch ms", "product floor ms",
                             "tinyattn / PyTorch", "floor / tinyattn"])
    worst = max((float(r[5]) for r in rows if r[5] != "n/a"), default=None)
    lines += ["", f'Target "layers tinyattn/PyTorch <= 1.0": worst {worst:.2f}'
              if worst is not None else 'Target "layers tinyattn/PyTorch <= 1.0": n/a', ""]
    lines += ["Self-attention sublayer, forward + backward: heads batched vs a loop over heads",
              ""] + markdown(heads, ["dtype", "batched ms", "head loop ms", "PyTorch MHA ms",
                                     "loop / batched", "batched / PyTorch"])
    r_model, note = model_candidates(ms_)
    r = timed("training step", r_model)
    lines += ["", "Training step (forward, backward, Adam) of the dates-sized Transformer "
              "(B={B}, S={S}, T={T}, d_model={D}, {n} heads, d_ff={F}, {L}+{L} layers, "
              "float32)".format(**ms_), ""]
    lines += markdown([[fmt(r["tinyattn"]), fmt(r.get("torch")),
                        ratio(r["tinyattn"], r.get("torch"))]],
                      ["tinyattn ms", "PyTorch ms", "tinyattn / PyTorch"])
    if note:
        lines += ["", note]
    lines += ["", 'Target "training step tinyattn/PyTorch <= 1.0": '
              + ratio(r["tinyattn"], r.get("torch"))]
    write_report("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
