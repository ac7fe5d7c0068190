"""Lessons 07 and 09: local-p attention's window, and a beam search tree.

Both figures draw numbers computed by the library: `LocalAttention` and
`LuongAttention` on a tiny example, and `beam_search` (with ``trace=``) on a
hand-made table of next-token probabilities.
"""

from __future__ import annotations

import numpy as np

from _schematics.draw import ACCENT, BWD, FWD, GREY, arrow, box, canvas, text
from tinyattn.attention import LuongAttention
from tinyattn.decoding import beam_search
from tinyattn.local_attention import LocalAttention

LOCAL_S, LOCAL_W, LOCAL_P = 9, 2, 6.8  # source length S_b, half-width w, the p_t we aim at


def local_example():
    """α of global attention and of local-p attention for one query over S_b = 9 annotations.

    Returns ``(p_t, alpha_global, alpha_local)``: p_t from the library's
    local-p layer (its W_p, v_p set so that p_t = 6.8), both rows from the
    library with the same "dot" score.
    """
    rng = np.random.default_rng(7)
    H = 4
    enc = rng.standard_normal((1, LOCAL_S, H))
    query = rng.standard_normal((1, 1, H))
    mask = np.ones((1, LOCAL_S), bool)
    glob = LuongAttention(H, H, score="dot", rng=rng)
    local = LocalAttention(H, H, mode="local-p", window=LOCAL_W, score="dot", rng=rng)
    # choose v_p so that v_p · tanh(h_t W_p) = logit(p_t / (S_b − 1))
    u = np.tanh(query[0, 0] @ local.params["W_p"])
    target = np.log(LOCAL_P / (LOCAL_S - 1 - LOCAL_P))
    local.params["v_p"][:] = target * u / (u @ u)
    _, a_glob = glob.forward(query, enc, mask)
    _, a_loc = local.forward(query, enc, mask)
    return float(local.positions[0, 0]), a_glob[0, 0], a_loc[0, 0]


def local_window():
    """Positions 0..S_b−1, p_t, the window [p_t − w, p_t + w] clipped, the Gaussian, α."""
    import matplotlib.pyplot as plt

    p, a_glob, a_loc = local_example()
    w, sigma, S = LOCAL_W, LOCAL_W / 2, LOCAL_S
    fig, (top, bot) = plt.subplots(2, 1, figsize=(10, 5.6), dpi=150, sharex=True,
                                   gridspec_kw={"height_ratios": [1, 1.5], "hspace": 0.12})
    fig.patch.set_facecolor("white")
    s = np.linspace(-0.7, S + 1.2, 600)
    lo, hi = p - w, p + w
    for ax in (top, bot):
        ax.axvspan(lo, min(hi, S - 0.5), color="#f9e79f", alpha=0.5, lw=0)
        ax.axvspan(S - 0.5, S + 1.2, color="#eeeeee", lw=0)
        ax.axvline(p, color=BWD, lw=1.5, ls="--")
    top.plot(s, np.exp(-(s - p) ** 2 / (2 * sigma**2)), color=FWD, lw=2)
    top.set_ylim(0, 1.35)
    top.set_yticks([0, 0.5, 1])
    top.text(p + 0.08, 1.2, f"$p_t$ = {p:.1f}", color=BWD, fontsize=10)
    top.annotate("", (hi, 0.12), (lo, 0.12), arrowprops=dict(arrowstyle="<->", color="black"))
    top.text(lo - 0.15, 0.3, f"window [$p_t - w$, $p_t + w$] = [{lo:.1f}, {hi:.1f}],  w = {w}",
             fontsize=9, ha="right", va="center")
    top.text(S - 0.4, 0.4, "clipped", fontsize=8.5, ha="left", color=BWD)
    top.text(S + 0.35, 0.7, "past the\nsentence", ha="center", fontsize=9, color=GREY)
    top.text(0.0, 1.15, "Gaussian $\\exp(-(s - p_t)^2 / (2\\sigma^2))$,  σ = w/2 = "
             f"{sigma:g}", fontsize=10, color=FWD)
    pos = np.arange(S)
    bot.bar(pos - 0.2, a_glob, 0.38, color="#aab7b8", label="global attention (every s)")
    bot.bar(pos + 0.2, a_loc, 0.38, color="#8e44ad",
            label="local-p: softmax over the window of score − $(s - p_t)^2/(2σ^2)$")
    for k in pos:
        if a_loc[k] == 0:
            bot.text(k + 0.2, 0.01, "0", ha="center", fontsize=8, color="#8e44ad")
    bot.set_ylim(0, max(a_glob.max(), a_loc.max()) * 1.35)
    bot.set_ylabel("$\\alpha_t(s)$")
    bot.legend(loc="upper left", fontsize=9, frameon=False)
    bot.set_xticks(pos)
    bot.set_xlabel(f"source position s = 0 … S_b − 1 (S_b = {S}; positions from 0 as in the "
                   "code, docs/equations.md §5.3)")
    bot.set_xlim(-0.7, S + 1.2)
    for ax in (top, bot):
        ax.spines[["top", "right"]].set_visible(False)
    top.set_title("Local-p attention: the window around $p_t$ is clipped at the last "
                  "position; outside it α is exactly 0", fontsize=11)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.92, bottom=0.11)
    return fig


VOCAB = ["<sos>", "<eos>", "I", "saw", "it"]
# P(next token | tokens so far): a hand-made table, one row per prefix the search reaches.
TABLE = {
    (): {"I": 0.5, "it": 0.3, "saw": 0.15, "<eos>": 0.05},
    ("I",): {"saw": 0.7, "<eos>": 0.2, "it": 0.1},
    ("it",): {"<eos>": 0.45, "saw": 0.4, "I": 0.15},
    ("I", "saw"): {"it": 0.8, "<eos>": 0.15, "I": 0.05},
    ("it", "saw"): {"I": 0.6, "it": 0.3, "<eos>": 0.1},
    ("I", "saw", "it"): {"<eos>": 0.9, "I": 0.05, "saw": 0.05},
    ("it", "saw", "I"): {"<eos>": 0.8, "it": 0.1, "saw": 0.1},
}


class TableModel:
    """A model of the decoding protocol (docs/models.md) that reads `TABLE`.

    The carry is each row's tokens so far; a prefix missing from the table
    gives <eos> probability 1.
    """

    config = {"tgt_vocab": len(VOCAB), "src_vocab": 2}

    def start(self, src, src_lengths):
        """No encoder: the memory is None, the carry holds no token yet."""
        return None, np.zeros((src.shape[0], 0), int)

    def decode_step(self, y, memory, carry, t):
        """Log-probabilities of the next token for every row, from `TABLE`."""
        carry = np.concatenate([carry, y[:, None]], axis=1) if t > 0 else carry
        logp = np.full((len(y), len(VOCAB)), -np.inf)
        for n, row in enumerate(carry):
            probs = TABLE.get(tuple(VOCAB[k] for k in row), {"<eos>": 1.0})
            for word, pr in probs.items():
                logp[n, VOCAB.index(word)] = np.log(pr)
        return logp, carry, None


def beam_example(K=2):
    """``(trace, hypotheses)`` of `beam_search` with beam size K on `TableModel`."""
    trace = []
    hyps = beam_search(TableModel(), np.zeros((1, 1), int), np.array([1]), beam_size=K,
                       max_len=6, sos_id=0, eos_id=1, trace=trace, n_best=K)
    return trace, hyps[0]


STYLE = {"kept": dict(fc="state", ec=FWD, ls="-", lw=1.3),
         "finished": dict(fc="#e9f7ef", ec=ACCENT, ls="-", lw=2.2),
         "pruned": dict(fc="#f4f4f4", ec=GREY, ls="--", lw=1.0)}


def beam_tree():
    """The search tree of `beam_example`: kept, finished and pruned candidates, and the ranking."""
    K = 2
    trace, best = beam_example(K)
    fig, ax = canvas(12.0, 6.0)
    col = lambda t: 0.65 + 2.05 * (t + 1)  # noqa: E731  (x of step t; the root is t = -1)
    root = box(ax, col(-1), 3.2, 0.95, 0.55, "<sos>\n0", fc="in", fs=9)
    parents = [root]  # the node of each live beam of the previous step
    for step in trace:
        cands = step.candidates[0]
        order = sorted(range(len(cands)), key=lambda k: (-parents[cands[k][0]][1], -cands[k][2]))
        ys = np.linspace(5.0, 1.4, len(cands)) if len(cands) > 1 else [3.2]
        nodes = {}
        for slot, k in enumerate(order):
            parent, tok, lp, status = cands[k]
            pnode = parents[parent]
            prev_lp = 0.0 if pnode is root else float(pnode[4])
            b = box(ax, col(step.t), ys[slot], 0.95, 0.55, f"{VOCAB[tok]}\n{lp:.3f}", fs=9,
                    **STYLE[status])
            nodes[k] = (*b, lp)
            arrow(ax, (pnode[0] + 0.48, pnode[1]), (b[0] - 0.48, b[1]),
                  color=GREY if status == "pruned" else FWD, lw=1.0, head=9,
                  ls="--" if status == "pruned" else "-")
            f = 0.5 if abs(b[1] - pnode[1]) < 0.01 else 0.62  # nearer the child when slanted
            mx, my = pnode[0] + f * (b[0] - pnode[0]), pnode[1] + f * (b[1] - pnode[1])
            ax.text(mx, my, f"{lp - prev_lp:+.2f}", fontsize=8, ha="center", va="center",
                    color=BWD, bbox=dict(fc="white", ec="none", pad=0.5), zorder=5)
        kept = [k for k in range(len(cands)) if cands[k][3] == "kept"]
        parents = [nodes[k] for k in kept]  # the i-th kept candidate is beam i
        text(ax, col(step.t), 5.55, f"step t = {step.t}", fs=9, color=GREY)
    text(ax, 0.15, 5.85, f"Beam search, K = {K}: per step the 2K = {2 * K} best extensions, "
         "ranked by log-probability (in each box: token, sum of log-probabilities so far; "
         "on each edge: the token's log p)", fs=9.5, ha="left")
    for x, status, what in ((0.3, "kept", "kept: a live beam"),
                            (2.7, "finished", "finished: ended with <eos>"),
                            (5.6, "pruned", "pruned: below K live beams")):
        box(ax, x + 0.2, 0.45, 0.4, 0.3, "", **STYLE[status])
        text(ax, x + 0.5, 0.45, what, fs=9, ha="left")
    last = trace[-1]
    n_fin = sum(c[3] == "finished" for st in trace for c in st.candidates[0])
    text(ax, col(last.t) + 0.62, 3.5, "live, never expanded:\nthe search stopped,\n"
         f"{n_fin} ≥ K = {K} hypotheses finished", fs=8.5, ha="left", va="center", color=GREY)
    lines = ["final ranking", "(score = logprob,", " length penalty α = 0)", ""]
    for r, h in enumerate(best, start=1):
        lines += [f"{r}. {' '.join(VOCAB[k] for k in h.tokens)}", f"   {h.logprob:.3f}"]
    lines += ["", f"n_best = K = {K} returned", f"of the {n_fin} finished"]
    text(ax, col(last.t) + 0.62, 1.75, "\n".join(lines), fs=8.5, ha="left", va="center",
         color=ACCENT, family="monospace")
    return fig
