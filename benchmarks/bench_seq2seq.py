"""Training-step time of tinyattn's attention seq2seq models vs the same model in PyTorch.

One training step is forward (mean cross-entropy), backward and an Adam update:
``loss = model(src, src_lengths, tgt_in, tgt_out, tgt_lengths)``,
``model.zero_grad(); model.backward()``, ``tinyattn.training.optim.Adam.step()``.
Two models, both float32 with a bidirectional GRU encoder (E=128, H=256 per
direction, so the decoder state is Hd = 2H = 512), V=2000 for source and
target, B=64, S=T=30:

- ``bahdanau``: additive attention (A=256) queried with s_{i-1}, a GRU-cell
  decoder over ``[E y_{i-1} ; c_i]`` stepped T times, output layer over
  ``[s_i ; c_i ; E y_{i-1}]``;
- ``general``: Luong "general" attention without input feeding: the decoder
  GRU runs over the whole target at once, then all T x S scores, the
  attentional state ``tanh([c ; h] W_c)`` and the output layer.

The PyTorch column is the SAME architecture written here in PyTorch eager
(``nn.Embedding``, bidirectional ``nn.GRU``, the bridge ``tanh(Linear)``,
``nn.GRUCell`` stepped in a Python loop for Bahdanau, ``nn.GRU`` + ``bmm`` for
Luong, ``F.cross_entropy``, ``torch.optim.Adam``), autograd for the backward.
It starts from a copy of tinyattn's weights, so the parameter counts must be
equal (checked) and the initial losses agree to float32 rounding (printed).
Rows ``full`` use all S and T tokens; rows ``ragged`` draw random lengths in
S/2..S (T/2..T), pad with id 0, pack the PyTorch encoder
(``pack_padded_sequence``) and mask attention and loss in both.

Each figure is the median of ``--repeats`` runs (``time.perf_counter``, ms)
timed interleaved with the other implementation (a, b, a, b, ...) after
warm-up; PyTorch gets as many threads as numpy's BLAS. A second table splits
one step into forward / backward (zero_grad included) / optimiser update,
the median of ``--phase-runs`` extra runs. The target "tinyattn/PyTorch <=
0.6" is reported, never asserted.

Run: ``python benchmarks/bench_seq2seq.py``; ``--quick`` is a smoke run
(V=50, B=4, S=T=5, E=H=A=8, 2 repeats). The Markdown report goes to stdout,
progress to stderr; ``--markdown PATH`` also writes the report to a file.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rnn import blas_shared_with, cpu_model, time_interleaved, write_report  # noqa: E402

from tinyattn.seq2seq import Seq2Seq  # noqa: E402
from tinyattn.training.optim import Adam  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
except ImportError:  # the PyTorch columns then say "n/a"
    torch = None

FULL_SHAPE = {"V": 2000, "B": 64, "S": 30, "T": 30, "E": 128, "H": 256, "A": 256}
QUICK_SHAPE = {"V": 50, "B": 4, "S": 5, "T": 5, "E": 8, "H": 8, "A": 8}
MODELS = ("bahdanau", "general")
LENGTHS = ("full", "ragged")
TARGET = 0.6
PAD = 0
COLUMNS = ("model", "lengths", "tinyattn params", "PyTorch params", "tinyattn ms",
           "PyTorch ms", "tinyattn / PyTorch")
PHASE_COLUMNS = ("impl", "model", "lengths", "forward ms", "backward ms", "update ms",
                 "total ms")


# ----- data and the tinyattn model -------------------------------------------
def make_batch(shape: dict, ragged: bool, rng) -> dict:
    """Random ids in 3..V-1; ``ragged``: lengths in S/2..S (one at S), pads = 0."""
    V, B, S, T = (shape[k] for k in "VBST")
    src = rng.integers(3, V, (B, S))
    tgt = rng.integers(3, V, (B, T + 1))
    tgt_in, tgt_out = tgt[:, :T].copy(), tgt[:, 1:].copy()
    src_len, tgt_len = np.full(B, S), np.full(B, T)
    if ragged:
        src_len = rng.integers(max(1, S // 2), S + 1, B)
        tgt_len = rng.integers(max(1, T // 2), T + 1, B)
        src_len[0], tgt_len[0] = S, T  # the padded lengths are real maxima
        src[np.arange(S)[None, :] >= src_len[:, None]] = PAD
        tgt_pad = np.arange(T)[None, :] >= tgt_len[:, None]  # (B, T)
        tgt_in[tgt_pad] = PAD
        tgt_out[tgt_pad] = PAD
    return {"src": src, "src_len": src_len, "tgt_in": tgt_in, "tgt_out": tgt_out,
            "tgt_len": tgt_len}


def make_tinyattn(model: str, shape: dict) -> Seq2Seq:
    V, E, H, A = (shape[k] for k in "VEHA")
    kw = dict(emb_size=E, hidden_size=H, cell="gru", bidirectional=True,
              rng=np.random.default_rng(0), dtype=np.float32)
    if model == "bahdanau":
        return Seq2Seq(V, V, attention="bahdanau", attn_size=A, **kw)
    return Seq2Seq(V, V, attention="general", input_feeding=False, **kw)


class TrainStep:
    """A training step in three timed phases; subclasses set ``self.opt``."""

    def update(self):
        self.opt.step()

    def __call__(self):
        loss = self.forward()
        self.backward()
        self.update()
        return loss


class TinyattnStep(TrainStep):
    """One training step of a tinyattn model, whole or phase by phase."""

    def __init__(self, model: Seq2Seq, batch: dict):
        self.model, self.batch = model, batch
        self.opt = Adam(model.named_parameters(), lr=1e-3)

    def forward(self):
        b = self.batch
        return self.model(b["src"], b["src_len"], b["tgt_in"], b["tgt_out"], b["tgt_len"])

    def backward(self):
        self.model.zero_grad()
        self.model.backward()


# ----- the same architecture in PyTorch ----------------------------------------
if torch is not None:

    class TorchSeq2Seq(nn.Module):
        """tinyattn's Seq2Seq (GRU, bidirectional, bahdanau or general) in PyTorch."""

        def __init__(self, model: str, shape: dict):
            super().__init__()
            V, E, H, A = (shape[k] for k in "VEHA")
            Hk = Hd = 2 * H
            self.model = model
            self.src_emb = nn.Embedding(V, E, padding_idx=PAD)
            self.encoder = nn.GRU(E, H, batch_first=True, bidirectional=True)
            self.bridge = nn.Linear(Hk, Hd)
            self.tgt_emb = nn.Embedding(V, E, padding_idx=PAD)
            if model == "bahdanau":
                self.W_a = nn.Linear(Hd, A, bias=False)  # s_{i-1} W_a
                self.U_a = nn.Linear(Hk, A, bias=False)  # h_j U_a, once per batch
                self.v_a = nn.Parameter(torch.empty(A))
                self.cell = nn.GRUCell(E + Hk, Hd)
                self.out = nn.Linear(Hd + Hk + E, V)
            else:
                self.W_a = nn.Linear(Hk, Hd, bias=False)  # keys = h̄_s W_a^T
                self.cell = nn.GRU(E, Hd, batch_first=True)
                self.W_c = nn.Linear(Hk + Hd, Hd, bias=False)  # h̃ = tanh([c ; h] W_c)
                self.out = nn.Linear(Hd, V)

        def encode(self, src, src_len, ragged):
            x = self.src_emb(src)
            if ragged:
                packed = pack_padded_sequence(x, src_len, batch_first=True,
                                              enforce_sorted=False)
                enc, h_n = self.encoder(packed)
                enc, _ = pad_packed_sequence(enc, batch_first=True, total_length=src.shape[1])
            else:
                enc, h_n = self.encoder(x)
            s0 = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=1)))  # [→h_S ; ←h_1]
            return enc, s0

        def forward(self, src, src_len, src_mask, tgt_in, tgt_out, ragged):
            enc, s = self.encode(src, src_len, ragged)
            emb = self.tgt_emb(tgt_in)  # (B, T, E)
            pad = ~src_mask  # (B, S)
            if self.model == "bahdanau":
                keys = self.U_a(enc)  # (B, S, A)
                hs, ctxs = [], []
                for t in range(emb.shape[1]):
                    e = torch.tanh(self.W_a(s)[:, None, :] + keys) @ self.v_a  # (B, S)
                    alpha = torch.softmax(e.masked_fill(pad, float("-inf")), dim=1)
                    c = torch.bmm(alpha[:, None, :], enc)[:, 0]  # (B, Hk)
                    s = self.cell(torch.cat([emb[:, t], c], dim=1), s)
                    hs.append(s)
                    ctxs.append(c)
                feat = torch.cat([torch.stack(hs, 1), torch.stack(ctxs, 1), emb], dim=2)
                logits = self.out(feat)  # all steps at once
            else:
                h, _ = self.cell(emb, s[None])  # (B, T, Hd)
                scores = torch.bmm(h, self.W_a(enc).transpose(1, 2))  # (B, T, S)
                alpha = torch.softmax(scores.masked_fill(pad[:, None, :], float("-inf")), dim=2)
                ctx = torch.bmm(alpha, enc)  # (B, T, Hk)
                logits = self.out(torch.tanh(self.W_c(torch.cat([ctx, h], dim=2))))
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                                   ignore_index=PAD)  # mean over real target tokens

    def torch_names(model: str) -> dict[str, tuple[str, bool]]:
        """tinyattn parameter name -> (torch parameter name, transpose?)."""
        names = {"src_emb.W": ("src_emb.weight", False), "tgt_emb.W": ("tgt_emb.weight", False),
                 "bridge.W": ("bridge.weight", True), "bridge.b": ("bridge.bias", False),
                 "decoder.out.W": ("out.weight", True), "decoder.out.b": ("out.bias", False)}
        gru = {"W_x": ("weight_ih", True), "W_h": ("weight_hh", True),
               "b_x": ("bias_ih", False), "b_h": ("bias_hh", False)}
        for ours, (theirs, tr) in gru.items():
            names[f"encoder.fwd.{ours}"] = (f"encoder.{theirs}_l0", tr)
            names[f"encoder.bwd.{ours}"] = (f"encoder.{theirs}_l0_reverse", tr)
            names[f"decoder.cell.{ours}"] = (
                f"cell.{theirs}" + ("" if model == "bahdanau" else "_l0"), tr)
        if model == "bahdanau":
            names.update({"decoder.attn.W_a": ("W_a.weight", True),
                          "decoder.attn.U_a": ("U_a.weight", True),
                          "decoder.attn.v_a": ("v_a", False)})
        else:  # tinyattn's W_a (Hq, Hk) is already Linear(Hk, Hq).weight
            names.update({"decoder.attn.W_a": ("W_a.weight", False),
                          "decoder.W_c": ("W_c.weight", True)})
        return names

    def copy_weights(tiny: Seq2Seq, tm: TorchSeq2Seq, model: str) -> None:
        """Load tinyattn's weights into the torch model; every parameter exactly once."""
        theirs = dict(tm.named_parameters())
        names = torch_names(model)
        ours = {n: v for n, v, _ in tiny.named_parameters()}
        if set(ours) != set(names) or {t for t, _ in names.values()} != set(theirs):
            raise RuntimeError(f"parameter maps differ: tinyattn {sorted(ours)}, "
                               f"torch {sorted(theirs)}")
        with torch.no_grad():
            for n, value in ours.items():
                t_name, transpose = names[n]
                theirs[t_name].copy_(torch.from_numpy(value.T if transpose else value))

    class TorchStep(TrainStep):
        """One training step of the PyTorch model, whole or phase by phase."""

        def __init__(self, model: str, shape: dict, tiny: Seq2Seq, batch: dict, ragged: bool):
            self.net = TorchSeq2Seq(model, shape)
            copy_weights(tiny, self.net, model)
            self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
            S = batch["src"].shape[1]
            self.args = (torch.from_numpy(batch["src"]), torch.from_numpy(batch["src_len"]),
                         torch.from_numpy(np.arange(S)[None, :] < batch["src_len"][:, None]),
                         torch.from_numpy(batch["tgt_in"]), torch.from_numpy(batch["tgt_out"]),
                         ragged)
            self.loss = None

        def forward(self):
            self.loss = self.net(*self.args)
            return self.loss

        def backward(self):
            self.opt.zero_grad()
            self.loss.backward()


# ----- measurement ------------------------------------------------------------
def time_phases(step, runs: int) -> dict:
    """Median ms of forward, backward and update over ``runs`` extra steps."""
    samples = {"forward": [], "backward": [], "update": []}
    for _ in range(runs):
        for phase in samples:
            t0 = time.perf_counter()
            getattr(step, phase)()
            samples[phase].append(time.perf_counter() - t0)
    ms = {k: 1e3 * statistics.median(v) for k, v in samples.items()}
    ms["total"] = sum(ms.values())
    return ms


def measure(model: str, lengths: str, shape: dict, args) -> dict:
    batch = make_batch(shape, lengths == "ragged", np.random.default_rng(1))
    tiny = make_tinyattn(model, shape)
    res = {"params": {"tinyattn": tiny.num_parameters()}, "phases": {}}
    candidates = {"tinyattn": TinyattnStep(tiny, batch)}
    if torch is not None:
        tstep = TorchStep(model, shape, tiny, batch, lengths == "ragged")
        res["params"]["torch"] = sum(p.numel() for p in tstep.net.parameters())
        # Same weights, same batch: the first losses must agree (float32 rounding).
        res["loss"] = (float(candidates["tinyattn"].forward()), tstep.forward().item())
        tiny._cache = None  # drop that forward's cache; the steps below start afresh
        candidates["torch"] = tstep
    res["ms"] = time_interleaved(candidates, args.repeats, args.warmup)
    for name, step in candidates.items():
        res["phases"][name] = time_phases(step, args.phase_runs)
    return res


# ----- report -----------------------------------------------------------------
def header_lines(shape: dict, blas, args) -> list[str]:
    return [
        f"- numpy {np.__version__}, BLAS {blas[0]} ({blas[1] or 'unknown'} threads)",
        f"- torch {torch.__version__}, {torch.get_num_threads()} threads"
        if torch is not None else "- torch not installed",
        f"- CPU {cpu_model()}; Python {platform.python_version()}",
        "- shapes V={V}, B={B}, S={S}, T={T}, E={E}, H={H} (decoder Hd=2H), A={A}; "
        "float32; one step = forward + backward + Adam".format(**shape),
        f"- median of {args.repeats} interleaved runs after {args.warmup} warm-up; "
        f"phases: median of {args.phase_runs} extra runs",
    ]


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def table_row(model: str, lengths: str, res: dict) -> list[str]:
    tiny, tch = res["ms"]["tinyattn"], res["ms"].get("torch")
    p_tch = res["params"].get("torch")
    return [model, lengths, str(res["params"]["tinyattn"]),
            "n/a" if p_tch is None else str(p_tch), fmt(tiny), fmt(tch),
            "n/a" if tch is None else f"{tiny / tch:.2f}"]


def phase_rows(model: str, lengths: str, res: dict) -> list[list[str]]:
    label = {"tinyattn": "tinyattn", "torch": "PyTorch"}
    return [[label[impl], model, lengths] + [fmt(ms[k]) for k in
                                             ("forward", "backward", "update", "total")]
            for impl, ms in res["phases"].items()]


def markdown(rows, columns) -> list[str]:
    return ["| " + " | ".join(r) + " |" for r in [columns, ["---"] * len(columns), *rows]]


def target_line(results) -> str:
    goal = f'Target "tinyattn/PyTorch <= {TARGET}"'
    if torch is None:
        return f"{goal}: not evaluated (PyTorch unavailable)."
    ok = {f"{m} {ln}": r["ms"]["tinyattn"] <= TARGET * r["ms"]["torch"]
          for m, ln, r in results}
    met = ", ".join(c for c, v in ok.items() if v) or "none"
    missed = ", ".join(c for c, v in ok.items() if not v) or "none"
    return f"{goal}: met by {met}; not met by {missed}."


def check_lines(results) -> list[str]:
    if torch is None:
        return []
    out = []
    for m, ln, r in results:
        p, (l_ours, l_theirs) = r["params"], r["loss"]
        same = "equal" if p["tinyattn"] == p["torch"] else "DIFFERENT"
        out.append(f"- {m} {ln}: parameter counts {same} ({p['tinyattn']} vs {p['torch']}); "
                   f"initial loss tinyattn {l_ours:.6f}, PyTorch {l_theirs:.6f}")
    return out


def matmul_gflop(model: str, shape: dict) -> float:
    """GFLOP of every matrix product in one training step at full lengths.

    Each forward product ``X @ W`` (2·m·k·n flops) has two backward
    products of the same size (``dX = dY W^T``, ``dW = X^T dY``), so the
    step costs 3x the forward products. Elementwise work (tanh, softmax)
    is left out: this is a lower bound on the products alone.
    """
    V, B, S, T, E, H, A = (shape[k] for k in ("V", "B", "S", "T", "E", "H", "A"))
    Hd, Hk = 2 * H, 2 * H
    fwd = 2 * (2 * B * S * E * 3 * H + 2 * B * S * H * 3 * H)  # two encoder directions
    fwd += 2 * B * T * S * Hk  # contexts alpha @ enc_hs
    if model == "bahdanau":
        fwd += 2 * B * T * (E + Hk) * 3 * Hd + 2 * B * T * Hd * 3 * Hd  # decoder GRU cell
        fwd += 2 * B * S * Hk * A + 2 * B * T * Hd * A  # U_a h_j, W_a s_{i-1}
        fwd += 2 * B * T * (Hd + Hk + E) * V  # output layer
    else:
        fwd += 2 * B * T * E * 3 * Hd + 2 * B * T * Hd * 3 * Hd  # decoder GRU
        fwd += 2 * B * S * Hk * Hd + 2 * B * T * S * Hd  # keys W_a, all T x S scores
        fwd += 2 * B * T * (Hk + Hd) * Hd + 2 * B * T * Hd * V  # W_c, output layer
    return 3 * fwd / 1e9


def sgemm_gflops(shape: dict, runs: int = 7) -> float:
    """Measured float32 GFLOP/s of the step's largest product, the output layer."""
    rng = np.random.default_rng(0)
    m, k, n = shape["B"] * shape["T"], 5 * shape["H"] + shape["E"], shape["V"]
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * m * k * n / statistics.median(times[1:]) / 1e9


def floor_lines(results, shape: dict) -> list[str]:
    if torch is None:
        return []
    rate = sgemm_gflops(shape)
    lines = [f"Matrix-product floor: this BLAS multiplies at {rate:.0f} GFLOP/s (float32, the "
             "output layer's product, median of 7). At that rate the products alone take:", ""]
    rows = []
    for m, ln, r in results:
        if ln != "full":
            continue
        gflop = matmul_gflop(m, shape)
        floor = 1e3 * gflop / rate
        rows.append([m, f"{gflop:.1f}", f"{floor:.0f}", fmt(r["ms"]["torch"]),
                     f"{floor / r['ms']['torch']:.2f}"])
    return lines + markdown(rows, ["model", "GFLOP per step", "floor ms", "PyTorch ms",
                                   "floor / PyTorch"])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per implementation (default 7, or 2 with --quick)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--phase-runs", type=int, default=None,
                   help="extra runs for the phase breakdown (default 3, or 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke run: V=50, B=4, S=T=5, E=H=A=8")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--lengths", nargs="+", choices=LENGTHS, default=list(LENGTHS))
    p.add_argument("--markdown", metavar="PATH", help="also write the report to this file")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    if args.phase_runs is None:
        args.phase_runs = 1 if args.quick else 3
    if args.repeats < 1 or args.warmup < 0 or args.phase_runs < 1:
        p.error("--repeats and --phase-runs must be >= 1 and --warmup >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    shape = QUICK_SHAPE if args.quick else FULL_SHAPE
    blas = blas_shared_with(torch)
    if torch is not None:
        torch.manual_seed(0)
    cells = [(m, ln) for m in MODELS if m in args.models for ln in LENGTHS if ln in args.lengths]
    results = []
    for i, (model, lengths) in enumerate(cells, 1):
        res = measure(model, lengths, shape, args)
        results.append((model, lengths, res))
        print(f"[{i}/{len(cells)}] {model} {lengths}: "
              + ", ".join(f"{n} {v:.2f} ms" for n, v in res["ms"].items()),
              file=sys.stderr, flush=True)
    lines = header_lines(shape, blas, args) + check_lines(results) + [""]
    lines += markdown([table_row(*r) for r in results], COLUMNS)
    lines += ["", target_line(results), "", "Phases of one step (forward; backward with "
              "zero_grad; optimiser update):", ""]
    lines += markdown([row for r in results for row in phase_rows(*r)], PHASE_COLUMNS)
    lines += [""] + floor_lines(results, shape)
    write_report("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
