"""Lessons 04–06 and 08: one context vector, Bahdanau vs Luong, soft vs hard attention.

Names as in tinyattn/decoders.py (PlainDecoder, BahdanauDecoder,
LuongDecoder), tinyattn/bridge.py and docs/equations.md §2–§5.
"""

from __future__ import annotations

import numpy as np

from _schematics.draw import ACCENT, BWD, FWD, GREY, arrow, box, canvas, edge, line, node, text

FH = "$\\overrightarrow{h}_{%s}$"  # forward-direction state
BH = "$\\overleftarrow{h}_{%s}$"  # backward-direction state


def encoder_decoder():
    """Bidirectional encoder, c = [→h_S ; ←h_1], bridge s_0, PlainDecoder reading c
    at every step."""
    fig, ax = canvas(11.6, 5.7)
    src = ["I", "see", "it"]
    xs = [0.9, 2.05, 3.2]
    yf, yb = 1.75, 2.35  # forward and backward halves of each annotation
    fwd, bwd = [], []
    for j, (x, word) in enumerate(zip(xs, src), start=1):
        text(ax, x, 0.42, f"“{word}”", fs=10)
        box(ax, x, 0.9, 0.8, 0.42, f"$x_{j}$", fc="in")
        fwd.append(box(ax, x, yf, 0.8, 0.6, FH % j, fc="state", fs=12))
        bwd.append(box(ax, x, yb, 0.8, 0.6, BH % j, fc="state", fs=12))
        arrow(ax, (x, 1.11), edge(fwd[-1], "b"))
    for a, b in zip(fwd, fwd[1:]):
        arrow(ax, edge(a, "r"), edge(b, "l"))
    for a, b in zip(bwd[1:], bwd):
        arrow(ax, edge(a, "l"), edge(b, "r"))
    text(ax, 0.2, 5.4, "Encoder (bidirectional, §3)", fs=11, ha="left", weight="bold")
    text(ax, 4.0, 1.2, "annotations\n$h_j$ = [" + FH % "j" + " ; " + BH % "j" + "]\n"
         "(PlainDecoder does\nnot read them)", fs=8.5, color=GREY, ha="left")
    # c = [→h_S ; ←h_1]: the forward state after the last word, the backward after the first
    c = box(ax, 2.3, 4.3, 1.9, 0.62, "c = [" + FH % "S" + " ; " + BH % "1" + "]", fc="attn",
            ec=ACCENT, fs=11, lw=2)
    arrow(ax, edge(bwd[0], "t"), (1.7, 3.99), color=ACCENT, lw=2, rad=-0.2)
    arrow(ax, edge(fwd[-1], "r"), (2.95, 3.99), color=ACCENT, lw=2, rad=0.3)
    # the bridge, straight into s_1
    br = box(ax, 4.9, 2.35, 1.75, 0.8, "", fc="op")
    text(ax, 4.9, 2.55, "bridge", fs=9, color=GREY)
    text(ax, 4.9, 2.22, "$s_0 = \\tanh(c\\, W_s + b_s)$", fs=9.5)
    arrow(ax, edge(c, "r"), edge(br, "t"), color=ACCENT, lw=2, rad=-0.3)
    # the decoder: PlainDecoder, c in every step's input and in the output layer
    dx = [6.55, 8.0, 9.45, 10.9]
    ins, outs = ["<sos>", "je", "le", "vois"], ["je", "le", "vois", "<eos>"]
    ybus, yin, ys, ylog = 0.12, 1.15, 2.35, 3.45
    line(ax, [c[0] - 0.95, 0.18, 0.18, 11.45], [4.3, 4.3, ybus, ybus], color=ACCENT, lw=2)
    text(ax, 3.85, 0.3, "c, the same at every step", fs=8.5, color=ACCENT, ha="left")
    prev = br
    for i, x in enumerate(dx, start=1):
        bi = box(ax, x, yin, 1.3, 0.5, f"[E $y_{{{i - 1}}}$ ; c]", fc="in", fs=10)
        arrow(ax, (x + 0.35, ybus), (x + 0.35, yin - 0.25), color=ACCENT, lw=2)
        text(ax, x - 0.3, 0.55, ins[i - 1], fs=9, color=GREY, family="monospace")
        bs = box(ax, x, ys, 1.0, 0.62, f"$s_{i}$", fc="state", fs=13)
        arrow(ax, edge(bi, "t"), edge(bs, "b"))
        bl = box(ax, x, ylog, 1.3, 0.5, f"logits$_{i}$", fc="out", fs=10)
        arrow(ax, edge(bs, "t"), edge(bl, "b"))
        arrow(ax, edge(bl, "t"), (x, 4.05))
        text(ax, x, 4.22, outs[i - 1], fs=10, family="monospace")
        arrow(ax, edge(prev, "r"), edge(bs, "l"))
        prev = bs
    text(ax, 5.9, 5.4, "Decoder (PlainDecoder, §2)", fs=11, ha="left", weight="bold")
    text(ax, 5.9, 5.05, "$s_i = f(s_{i-1}, [E\\,y_{i-1} ; c])$", fs=10, ha="left")
    text(ax, 5.9, 4.72, "logits$_i = [s_i ; c ; E\\,y_{i-1}]\\, W_o + b_o$", fs=10,
         ha="left")
    text(ax, 11.5, 4.9, "teacher forcing: $y_{i-1}$ is\nthe reference's previous token",
         fs=8, color=GREY, ha="right")
    return fig


def _annotations(ax, x0, y, n, sym="h_{%d}", w=0.5, gap=0.12):
    """A row of n annotation boxes starting at x0; their boxes."""
    return [box(ax, x0 + k * (w + gap), y, w, 0.42, f"${sym % (k + 1)}$", fc="state", fs=10)
            for k in range(n)]


def _step_no(ax, x, y, k):
    node(ax, x, y, str(k), r=0.13, fs=9, ec=BWD, fc="#fdecea")


def bahdanau_vs_luong():
    """One decoder step of each: which state scores the annotations, and when."""
    fig, ax = canvas(12.2, 5.9)
    # ---- Bahdanau: attend with s_{i-1}, then step ----
    o = 0.0
    text(ax, o + 0.15, 5.6, "Bahdanau (§4): score with $s_{i-1}$, BEFORE the step", fs=11.5,
         ha="left", weight="bold")
    ycell, yatt, yann = 3.15, 1.75, 0.5
    sp = box(ax, o + 0.65, ycell, 0.85, 0.6, "$s_{i-1}$", fc="state", fs=12)
    cell = box(ax, o + 3.05, ycell, 1.5, 0.6, "GRU/LSTM step f", fc="op", fs=9.5)
    si = box(ax, o + 5.2, ycell, 0.75, 0.6, "$s_i$", fc="state", fs=12)
    arrow(ax, edge(sp, "r"), edge(cell, "l"))
    arrow(ax, edge(cell, "r"), edge(si, "l"))
    box(ax, o + 2.1, yatt, 2.9, 1.0, "", fc="attn")
    text(ax, o + 2.1, yatt + 0.25, "$e_{ij} = v_a \\cdot \\tanh(s_{i-1} W_a + h_j U_a)$", fs=9)
    text(ax, o + 2.1, yatt - 0.02, "$\\alpha_{ij}$ = softmax$_j(e_{ij})$", fs=9)
    text(ax, o + 2.1, yatt - 0.28, "$c_i = \\Sigma_j\\, \\alpha_{ij} h_j$", fs=9)
    arrow(ax, edge(sp, "b"), (o + 0.85, yatt + 0.5), color=BWD, lw=2)
    text(ax, o + 0.55, 2.45, "query", fs=8.5, color=BWD, ha="right")
    _step_no(ax, o + 0.45, 2.2, 1)
    anns = _annotations(ax, o + 1.05, yann, 4)
    for a in anns:
        arrow(ax, edge(a, "t"), (a[0], yatt - 0.5), head=8, lw=1)
    text(ax, o + 3.85, yann, "annotations", fs=8.5, color=GREY, ha="left")
    arrow(ax, (o + 3.3, yatt + 0.5), (o + 3.3, ycell - 0.3), color=ACCENT, lw=2)
    text(ax, o + 3.2, 2.5, "$c_i$", fs=11, color=ACCENT, ha="right")
    emb = box(ax, o + 4.4, yatt + 0.15, 0.9, 0.42, "E $y_{i-1}$", fc="in", fs=9.5)
    arrow(ax, edge(emb, "t"), (o + 3.6, ycell - 0.3))
    text(ax, o + 4.45, yatt - 0.45, "cell input\n[E $y_{i-1}$ ; $c_i$]", fs=8.5, va="top")
    _step_no(ax, o + 3.05, ycell + 0.48, 2)
    box(ax, o + 3.55, 4.45, 3.1, 0.5, "logits$_i = [s_i ; c_i ; E\\,y_{i-1}]\\, W_o + b_o$",
             fc="out", fs=9)
    arrow(ax, edge(si, "t"), (o + 5.05, 4.2))
    _step_no(ax, o + 1.8, 4.45, 3)
    line(ax, [6.15, 6.15], [0.15, 5.45], color=GREY, lw=0.8, ls=":")
    # ---- Luong: step, then attend with h_t ----
    o = 6.4
    text(ax, o + 0.1, 5.6, "Luong (§5.1): score with $h_t$, AFTER the step", fs=11.5,
         ha="left", weight="bold")
    hp = box(ax, o + 0.55, ycell, 0.85, 0.6, "$h_{t-1}$", fc="state", fs=12)
    cell = box(ax, o + 2.05, ycell, 1.35, 0.6, "GRU/LSTM step f", fc="op", fs=9)
    ht = box(ax, o + 3.35, ycell, 0.7, 0.6, "$h_t$", fc="state", fs=12)
    arrow(ax, edge(hp, "r"), edge(cell, "l"))
    arrow(ax, edge(cell, "r"), edge(ht, "l"))
    _step_no(ax, o + 2.05, ycell + 0.48, 1)
    inp = box(ax, o + 1.35, yatt, 1.8, 0.45, "[E $y_{t-1}$ ; $\\tilde{h}_{t-1}$]", fc="in", fs=9.5)
    arrow(ax, edge(inp, "t"), (o + 1.7, ycell - 0.3))
    box(ax, o + 3.9, yatt, 2.1, 1.0, "", fc="attn")
    text(ax, o + 3.9, yatt + 0.25, "$a_t(s)$ = softmax$_s$ score($h_t, \\bar{h}_s$)", fs=8.5)
    text(ax, o + 3.9, yatt - 0.15, "$c_t = \\Sigma_s\\, a_t(s)\\, \\bar{h}_s$", fs=9)
    arrow(ax, (o + 3.35, ycell - 0.3), (o + 3.35, yatt + 0.5), color=BWD, lw=2)
    text(ax, o + 3.25, 2.5, "query", fs=8.5, color=BWD, ha="right")
    _step_no(ax, o + 2.85, 2.25, 2)
    anns = _annotations(ax, o + 3.0, yann, 4, sym="\\bar{h}_{%d}", w=0.46, gap=0.1)
    for a in anns:
        arrow(ax, edge(a, "t"), (a[0], yatt - 0.5), head=8, lw=1)
    box(ax, o + 4.95, ycell + 0.1, 1.3, 0.8, "", fc="op")
    text(ax, o + 4.95, ycell + 0.3, "$\\tilde{h}_t = \\tanh($", fs=10)
    text(ax, o + 4.95, ycell - 0.02, "$[c_t ; h_t]\\, W_c)$", fs=10)
    arrow(ax, edge(ht, "r"), (o + 4.3, ycell))
    arrow(ax, (o + 4.7, yatt + 0.5), (o + 4.7, ycell - 0.3), color=ACCENT, lw=2)
    text(ax, o + 4.8, 2.5, "$c_t$", fs=11, color=ACCENT, ha="left")
    _step_no(ax, o + 5.15, ycell + 0.7, 3)
    lg = box(ax, o + 3.0, 4.45, 2.2, 0.5, "logits$_t = \\tilde{h}_t W_s + b_s$", fc="out",
             fs=9.5)
    arrow(ax, (o + 4.85, ycell + 0.5), edge(lg, "r"))
    # input feeding: h~_t becomes part of the next step's input
    line(ax, [o + 5.4, o + 5.4, o - 0.1, o - 0.1, o + 0.25], [ycell + 0.5, 5.1, 5.1, yatt, yatt],
         color=GREY, ls="--", lw=1.2)
    arrow(ax, (o + 0.2, yatt), edge(inp, "l"), color=GREY, ls="--", lw=1.2)
    text(ax, o + 2.8, 5.22, "input feeding: $\\tilde{h}_t$ is in step t+1's input "
         "($\\tilde{h}_0$ = 0)", fs=8.5, color=GREY)
    text(ax, o + 0.35, 0.5, "(without input feeding:\n input E $y_{t-1}$ only)", fs=8,
         color=GREY, ha="left")
    return fig


def hard_vs_soft():
    """One decoder step: soft context Σ α_j h_j vs hard context h_j for one sampled j."""
    import matplotlib
    from matplotlib.patches import Rectangle

    fig, ax = canvas(11.2, 5.4)
    ax.set_ylim(-0.4, 5.0)  # room for the captions below y = 0
    alpha = np.array([0.05, 0.15, 0.55, 0.20, 0.05])  # one row of attention weights
    H = np.random.default_rng(3).uniform(-1, 1, (5, 3)).round(2)  # annotations h_1..h_5, size 3
    soft = alpha @ H
    j = int(np.random.default_rng(0).choice(5, p=alpha))  # one draw j ~ alpha (here h_3)
    cmap = matplotlib.colormaps["RdBu_r"]

    def vec(x, ytop, v, ec=FWD, lw=0.8):
        for k, val in enumerate(v):
            box(ax, x, ytop - k * 0.32, 0.62, 0.32, f"{val:+.2f}", fc=cmap((val + 1) / 2),
                ec=ec, fs=8, lw=lw)

    panels = ((0.0, "soft attention: a weighted average", ACCENT),
              (5.75, "hard attention: one sampled position", BWD))
    for o, title, col in panels:
        text(ax, o + 0.1, 4.7, title, fs=12, ha="left", weight="bold")
        text(ax, o + 0.1, 3.35, "$\\alpha_j$", fs=12, ha="left", color="#8e44ad")
        hard = o > 0
        for k in range(5):
            x = o + 0.75 + k * 0.8
            ax.add_patch(Rectangle((x - 0.2, 3.0), 0.4, alpha[k] * 2.2, fc="#8e44ad",
                                   alpha=0.75))
            text(ax, x, 3.0 + alpha[k] * 2.2 + 0.14, f"{alpha[k]:.2f}", fs=8.5)
            vec(x, 2.45, H[k], ec=col if (hard and k == j) else FWD,
                lw=2.2 if (hard and k == j) else 0.8)
            text(ax, x, 2.8, f"$h_{k + 1}$", fs=10)
            if hard and k != j:
                arrow(ax, (x, 1.64), (o + 2.35, 1.0), color=GREY, lw=0.8, ls=":", head=7)
            else:
                arrow(ax, (x, 1.64), (o + 2.35, 1.0), color=col,
                      lw=4.0 if hard else 0.6 + 6 * alpha[k], head=9)
        hub = node(ax, o + 2.35, 0.75, "j ~ α" if hard else "Σ", r=0.3 if hard else 0.25,
                   fs=10 if hard else 14, ec=col)
        arrow(ax, edge(hub, "r"), (o + 4.35, 0.75), color=col, lw=2)
        vec(o + 4.7, 1.07, H[j] if hard else soft, ec=col, lw=1.5)
        text(ax, o + 4.7, 1.42, "context", fs=10, color=col)
    text(ax, 0.1, -0.2, "context = $\\Sigma_j\\, \\alpha_j h_j$: every position contributes "
         "$\\alpha_j$ of itself", fs=9, ha="left", color=ACCENT)
    text(ax, 5.85, -0.2, f"j drawn from α (here j = {j + 1}); context = $h_j$.\n"
         "Averaged over many draws, it is the soft context.", fs=9, ha="left", color=BWD)
    line(ax, [5.55, 5.55], [-0.35, 4.9], color=GREY, lw=0.8, ls=":")
    return fig
