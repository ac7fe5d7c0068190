"""Lessons 01–02: the RNN unrolled with BPTT's gradients, the GRU cell, the LSTM cell.

Names as in tinyattn/rnn.py, tinyattn/gru.py, tinyattn/lstm.py and
docs/equations.md §1.
"""

from __future__ import annotations

from _schematics.draw import ACCENT, BWD, FWD, GREY, arrow, box, canvas, edge, line, node, text


def rnn_unrolled():
    """Four steps of h_t = tanh(x_t W_xh + h_{t−1} W_hh + b_h); BPTT's gradients in red."""
    fig, ax = canvas(10.4, 5.6)
    xs = [2.4, 4.5, 6.6, 8.7]
    yx, yh, yo = 0.65, 2.45, 4.0
    h0 = box(ax, 0.75, yh, 0.8, 0.8, "$h_0$", fc="state")
    prev = h0
    for t, x in enumerate(xs, start=1):
        bx = box(ax, x, yx, 0.8, 0.5, f"$x_{t}$", fc="in")
        bh = box(ax, x, yh, 1.1, 0.8, f"$h_{t}$", fc="state", fs=13)
        box(ax, x, yo, 1.25, 0.55, f"output at {t}", fc="out", fs=9)
        # forward: x_t -> h_t through W_xh, h_{t-1} -> h_t through W_hh, h_t -> output
        arrow(ax, edge(bx, "t"), edge(bh, "b"))
        text(ax, x - 0.12, (yx + yh) / 2, "$W_{xh}$", fs=10, color=FWD, ha="right")
        arrow(ax, (edge(prev, "r")[0], yh + 0.16), (edge(bh, "l")[0], yh + 0.16))
        text(ax, (edge(prev, "r")[0] + edge(bh, "l")[0]) / 2, yh + 0.36, "$W_{hh}$",
             fs=10, color=FWD)
        arrow(ax, (x - 0.2, yh + 0.4), (x - 0.2, yo - 0.275))
        # backward: dhs[:, t] from the output, dh_next from step t+1
        arrow(ax, (x + 0.2, yo - 0.275), (x + 0.2, yh + 0.4), color=BWD)
        text(ax, x + 0.27, (yh + yo) / 2 + 0.05, "dhs[:, t]", fs=9, color=BWD, ha="left",
             family="monospace")
        arrow(ax, (edge(bh, "l")[0], yh - 0.18), (edge(prev, "r")[0], yh - 0.18), color=BWD)
        lab = "dh0" if t == 1 else "dh_next"
        text(ax, (edge(prev, "r")[0] + edge(bh, "l")[0]) / 2, yh - 0.4, lab, fs=9,
             color=BWD, family="monospace")
        prev = bh
    # after the last step: the final state h_T leaves, dh_T comes back
    arrow(ax, (edge(prev, "r")[0], yh + 0.16), (10.3, yh + 0.16))
    text(ax, 9.85, yh + 0.36, "$h_T$", fs=10, color=FWD)
    arrow(ax, (10.3, yh - 0.18), (edge(prev, "r")[0], yh - 0.18), color=BWD)
    text(ax, 9.85, yh - 0.4, "dh_T", fs=9, color=BWD, family="monospace")
    text(ax, 0.15, 5.3, "forward (blue):  $h_t = \\tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)$,"
         "  the same $W_{xh}, W_{hh}, b_h$ at every step", fs=10.5, color=FWD, ha="left")
    text(ax, 0.15, 4.92, "backward (red), t = T … 1:   dh = dhs[:, t] + dh_next,   "
         "dh_next = (dh ⊙ (1 − $h_t^2$)) $W_{hh}^\\top$,   "
         "dW_hh = $\\Sigma_t\\, h_{t-1}^\\top$ da_t", fs=10, color=BWD, ha="left")
    return fig


def _bus(ax, y_top, y_bus, x_h, x_x, x_end, label):
    """The wires: h_prev drops from the top line to a bus at y_bus, x_t rises into it."""
    line(ax, [x_h, x_h, x_end], [y_top, y_bus, y_bus])
    arrow(ax, (x_x, 0.2), (x_x, y_bus), head=10)
    text(ax, x_x + 0.12, 0.3, "$x_t$", fs=12, ha="left")
    text(ax, x_end - 0.05, y_bus - 0.2, label, fs=9, color=GREY, ha="right")


def gru_cell():
    """The GRU step of tinyattn/gru.py: gates r, z, n and h = (1 − z) ⊙ n + z ⊙ h_prev."""
    fig, ax = canvas(10.6, 5.4)
    ytop, ybus, ygate, ymix = 4.7, 1.0, 2.3, 3.6
    # the top line: h_prev -> (z ⊙ h_prev) -> (+) -> h
    text(ax, 0.1, ytop + 0.25, "$h_{prev}$", fs=12, ha="left")
    _bus(ax, ytop, ybus, 0.7, 1.2, 5.6, "[ $x_t$ ; $h_{prev}$ ] feeds every gate")
    m1 = node(ax, 1.9, ytop, "⊙")
    plus = node(ax, 6.3, ytop, "+")
    arrow(ax, (0.1, ytop), edge(m1, "l"))
    arrow(ax, edge(m1, "r"), edge(plus, "l"))
    text(ax, 4.1, ytop + 0.2, "z ⊙ $h_{prev}$", fs=10, color=FWD)
    arrow(ax, edge(plus, "r"), (7.2, ytop))
    text(ax, 7.0, ytop + 0.28, "$h$", fs=13)
    # the gates, fed from the bus
    z = box(ax, 1.9, ygate, 1.0, 0.62, "z = σ(·)", fc="gate")
    r = box(ax, 3.3, ygate, 1.0, 0.62, "r = σ(·)", fc="gate")
    n = box(ax, 4.9, ygate, 1.5, 0.62, "n = tanh(· + ★)", fc="gate")
    for g in (z, r, n):
        arrow(ax, (g[0], ybus), edge(g, "b"))
    arrow(ax, edge(r, "r"), edge(n, "l"))
    text(ax, 4.0, ygate + 0.17, "r", fs=10)
    # z -> z ⊙ h_prev, and z -> (1 − z) -> (1 − z) ⊙ n
    line(ax, [1.9, 1.9], [ygate + 0.31, ymix])
    arrow(ax, (1.9, ymix), edge(m1, "b"))
    one = node(ax, 3.3, ymix, "1−", fs=10)
    arrow(ax, (1.9, ymix), edge(one, "l"))
    m2 = node(ax, 4.9, ymix, "⊙")
    arrow(ax, edge(one, "r"), edge(m2, "l"))
    text(ax, 4.1, ymix + 0.2, "1 − z", fs=10)
    arrow(ax, edge(n, "t"), edge(m2, "b"))
    line(ax, [edge(m2, "r")[0], 6.3], [ymix, ymix])
    arrow(ax, (6.3, ymix), edge(plus, "b"))
    text(ax, 5.6, ymix + 0.2, "(1 − z) ⊙ n", fs=10)
    # the reset term ★ inside n, and the two forms of it
    # n's reset term ★ is where the two forms differ: dashed red to the two forms
    arrow(ax, edge(n, "r"), (7.57, 1.42), color=BWD, ls="--", lw=1.2)
    px = 7.55
    text(ax, px, 4.05, "z = σ($x_t W_{xz} + b_{xz} + h_{prev} W_{hz} + b_{hz}$)", fs=9,
         ha="left")
    text(ax, px, 3.7, "r = σ($x_t W_{xr} + b_{xr} + h_{prev} W_{hr} + b_{hr}$)", fs=9,
         ha="left")
    text(ax, px, 3.35, "n = tanh($x_t W_{xn} + b_{xn}$ + ★)", fs=9, ha="left")
    text(ax, px, 3.0, "h = (1 − z) ⊙ n + z ⊙ $h_{prev}$", fs=9, ha="left", weight="bold")
    for y, head, form, note in (
            (2.1, "reset_after=True  (default)", "★ = r ⊙ ($h_{prev} W_{hn} + b_{hn}$)",
             "PyTorch, cuDNN, Keras: one product\n$h_{prev}$ @ W_h for r, z, n"),
            (0.75, "reset_after=False  (Cho et al. 2014)", "★ = (r ⊙ $h_{prev}$) $W_{hn} + b_{hn}$",
             "a second product per step;\nthe two forms give different numbers")):
        box(ax, 9.05, y, 2.95, 1.15, "", fc="note", ec=BWD, ls="--")
        text(ax, px + 0.1, y + 0.38, head, fs=8.5, ha="left", family="monospace", color=BWD)
        text(ax, px + 0.1, y + 0.05, form, fs=10, ha="left")
        text(ax, px + 0.1, y - 0.3, note, fs=8, ha="left", color=GREY)
    return fig


def lstm_cell():
    """The LSTM step of tinyattn/lstm.py: c = f ⊙ c_prev + i ⊙ g, h = o ⊙ tanh(c)."""
    fig, ax = canvas(10.6, 5.4)
    ytop, ybus, ygate, ymix = 4.7, 1.0, 2.3, 3.6
    # the additive path c_prev -> (f ⊙) -> (+) -> c, highlighted
    text(ax, 0.1, ytop + 0.25, "$c_{prev}$", fs=12, ha="left")
    mf = node(ax, 1.9, ytop, "⊙", ec=ACCENT)
    plus = node(ax, 3.7, ytop, "+", ec=ACCENT)
    arrow(ax, (0.1, ytop), edge(mf, "l"), color=ACCENT, lw=3.2)
    arrow(ax, edge(mf, "r"), edge(plus, "l"), color=ACCENT, lw=3.2)
    arrow(ax, edge(plus, "r"), (7.2, ytop), color=ACCENT, lw=3.2)
    text(ax, 7.0, ytop + 0.28, "$c$", fs=13)
    text(ax, 4.2, ytop + 0.32, "c = f ⊙ $c_{prev}$ + i ⊙ g", fs=10, color=ACCENT,
         ha="left")
    # h_prev enters lower left and joins x_t on the bus
    text(ax, 0.1, ybus + 0.22, "$h_{prev}$", fs=12, ha="left")
    line(ax, [0.1, 6.2], [ybus, ybus])
    arrow(ax, (1.2, 0.2), (1.2, ybus), head=10)
    text(ax, 1.32, 0.3, "$x_t$", fs=12, ha="left")
    text(ax, 6.15, ybus - 0.2, "[ $x_t$ ; $h_{prev}$ ] feeds every gate", fs=9, color=GREY,
         ha="right")
    f = box(ax, 1.9, ygate, 0.9, 0.6, "f = σ", fc="gate")
    i = box(ax, 3.1, ygate, 0.9, 0.6, "i = σ", fc="gate")
    g = box(ax, 4.3, ygate, 1.05, 0.6, "g = tanh", fc="gate")
    o = box(ax, 5.6, ygate, 0.9, 0.6, "o = σ", fc="gate")
    for gate in (f, i, g, o):
        arrow(ax, (gate[0], ybus), edge(gate, "b"))
    arrow(ax, edge(f, "t"), edge(mf, "b"))
    mig = node(ax, 3.7, ymix, "⊙")
    arrow(ax, edge(i, "t"), (3.58, ymix - 0.13))
    arrow(ax, edge(g, "t"), (3.82, ymix - 0.13))
    arrow(ax, edge(mig, "t"), edge(plus, "b"))
    text(ax, 3.9, (ymix + ytop) / 2, "i ⊙ g", fs=10, ha="left")
    # h = o ⊙ tanh(c)
    th = node(ax, 6.6, ymix, "tanh", r=0.27, fs=8)
    line(ax, [6.6, 6.6], [ytop, ymix + 0.27])
    mo = node(ax, 6.6, ygate, "⊙")
    arrow(ax, edge(th, "b"), edge(mo, "t"))
    arrow(ax, edge(o, "r"), edge(mo, "l"))
    arrow(ax, edge(mo, "r"), (7.2, ygate))
    text(ax, 7.0, ygate + 0.28, "$h$", fs=13)
    text(ax, 6.7, (ymix + ygate) / 2, "tanh(c)", fs=9, ha="left")
    px = 7.55
    text(ax, px, 4.05, "a = $x_t W_x + h_{prev} W_h + b$", fs=9.5, ha="left")
    text(ax, px, 3.72, "   = [a_i ; a_f ; a_g ; a_o]   (4H)", fs=9.5, ha="left")
    text(ax, px, 3.35, "i, f, o = σ(a_i), σ(a_f), σ(a_o)", fs=9.5, ha="left")
    text(ax, px, 3.02, "g = tanh(a_g)", fs=9.5, ha="left")
    text(ax, px, 2.6, "c = f ⊙ $c_{prev}$ + i ⊙ g", fs=9.5, ha="left", weight="bold",
         color=ACCENT)
    text(ax, px, 2.27, "h = o ⊙ tanh(c)", fs=9.5, ha="left", weight="bold")
    box(ax, 9.05, 1.05, 2.95, 1.2, "", fc="note", ec=ACCENT, ls="--")
    text(ax, px + 0.12, 1.05, "backward along the green path:\ndc_prev = dc ⊙ f\none elementwise "
         "factor per step,\nno matrix product", fs=9, ha="left", color=ACCENT,
         linespacing=1.35)
    return fig
