"""Figures (tinyattn.plot.heatmaps): labels read back from the artists, files written,
bad input rejected, and CJK tokens rendered without missing-glyph warnings."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from tinyattn import plot as viz  # noqa: E402
from tinyattn.decoding import Hypothesis  # noqa: E402
from tinyattn.plot import figures, heatmaps  # noqa: E402
from tinyattn.training.trainer import EpochRecord  # noqa: E402

T, S = 3, 5
SRC = ["a", " ", "bc", "d", "e"]
TGT = ["x", "y", "z"]
ZH_SRC = "Are you very big ?".split()
ZH_TGT = ["你", "很", "大", "？"]
GLYPH_MISSING = "missing from font"


@pytest.fixture(autouse=True)
def _isolated_matplotlib():
    """Each test gets the default rcParams back and leaves no figure open."""
    with matplotlib.rc_context():
        yield
    plt.close("all")


def _alpha(rng, rows=T, cols=S):
    x = rng.standard_normal((rows, cols))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _require_cjk_font() -> str:
    name = viz.cjk_font()
    if name is None:
        if os.environ.get("TINYATTN_REQUIRE_CJK_FONT") == "1":
            pytest.fail("TINYATTN_REQUIRE_CJK_FONT=1 but no CJK font is installed "
                        "(apt-get install fonts-wqy-microhei)")
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei); "
                    "set TINYATTN_REQUIRE_CJK_FONT=1 to make this a failure")
    return name


# ----- plot_alignment -------------------------------------------------------
def test_alignment_tick_labels_axes_and_colorbar(rng):
    fig = viz.plot_alignment(_alpha(rng), SRC, TGT, title="demo")
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "␣", "bc", "d", "e"]
    assert [t.get_text() for t in ax.get_yticklabels()] == TGT
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("source", "target", "demo")
    (im,) = ax.images
    assert im.get_array().shape == (T, S)
    assert im.colorbar is not None
    assert im.colorbar.ax.get_ylabel() == "attention weight"
    assert im.get_clim() == (0.0, 1.0)
    assert ax.get_ylim() == (T - 0.5, -0.5)  # first target token on top


def test_alignment_gold_rectangles_one_per_given_span(rng):
    gold = [(0, 2), None, (4, 5)]
    fig = viz.plot_alignment(_alpha(rng), SRC, TGT, gold=gold)
    ax = fig.axes[0]
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rects) == 2
    assert rects[0].get_xy() == (-0.5, -0.5) and rects[0].get_width() == 2
    assert rects[1].get_xy() == (3.5, 1.5)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["gold span"]
    fig = viz.plot_alignment(_alpha(rng), SRC, TGT, gold=gold, gold_label="hand alignment")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["hand alignment"]
    with pytest.raises(TypeError, match="gold_label must be a str, got int"):
        viz.plot_alignment(_alpha(rng), SRC, TGT, gold=gold, gold_label=3)


def test_alignment_local_positions_and_window(rng):
    pos = np.array([0.4, 2.0, 3.7])
    fig = viz.plot_alignment(_alpha(rng), SRC, TGT, positions=pos, window=1)
    ax = fig.axes[0]
    (centres,) = [ln for ln in ax.lines if "p$_t$" in ln.get_label()]
    np.testing.assert_allclose(centres.get_xdata(), pos)
    np.testing.assert_allclose(centres.get_ydata(), np.arange(T))
    assert centres.get_marker() == "o"
    (window,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    xs = sorted(seg[0][0] for seg in window.get_segments())
    np.testing.assert_allclose(xs, sorted(np.r_[pos - 1, pos + 1]))
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["window p$_t$ ± 1", "window centre p$_t$"]


def test_alignment_into_given_axes_draws_there(rng):
    fig, (ax0, ax1) = plt.subplots(1, 2)
    n_open = len(plt.get_fignums())
    out = viz.plot_alignment(_alpha(rng), SRC, TGT, ax=ax1, gold=[None, (1, 2), None])
    assert out is fig and len(plt.get_fignums()) == n_open
    assert len(ax1.images) == 1 and not ax0.images
    assert ax1.get_legend() is not None


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_alignment_saved_with_parent_dirs(rng, tmp_path, suffix, magic):
    path = tmp_path / "new" / "dir" / f"align{suffix}"
    fig = viz.plot_alignment(_alpha(rng), SRC, TGT, path=path)
    assert path.stat().st_size > 1000
    assert path.read_bytes().startswith(magic)
    assert plt.fignum_exists(fig.number)  # saved, not closed: the caller decides


def test_alignment_bad_input(rng, tmp_path):
    a = _alpha(rng)
    with pytest.raises(ValueError, match=r"path must end in \.png or \.svg, got '\.jpg'"):
        viz.plot_alignment(a, SRC, TGT, path=tmp_path / "x.jpg")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"src_tokens must have one token per column of alpha "
                                         r"\(5\), got 4"):
        viz.plot_alignment(a, SRC[:4], TGT)
    with pytest.raises(ValueError, match=r"tgt_tokens must have one token per row of alpha "
                                         r"\(3\), got 4"):
        viz.plot_alignment(a, SRC, TGT + ["w"])
    for bad in (a[0], a[None]):
        with pytest.raises(ValueError, match=r"alpha must be a non-empty 2-D array of shape "
                                             r"\(T, S\), got shape"):
            viz.plot_alignment(bad, SRC, TGT)
    with pytest.raises(ValueError, match="alpha must be finite"):
        viz.plot_alignment(np.where(a > 0.5, np.nan, a), SRC, TGT)
    with pytest.raises(ValueError, match=r"alpha must hold attention weights in \[0, 1\]"):
        viz.plot_alignment(a * 3 - 1, SRC, TGT)
    with pytest.raises(ValueError, match=r"gold must have one span .* \(3\), got 2"):
        viz.plot_alignment(a, SRC, TGT, gold=[None, None])
    with pytest.raises(ValueError, match=r"gold\[1\] must be a half-open source span"):
        viz.plot_alignment(a, SRC, TGT, gold=[None, (3, 9), None])
    with pytest.raises(ValueError, match=r"positions must be a finite array of shape \(3,\)"):
        viz.plot_alignment(a, SRC, TGT, positions=[1.0, 2.0])
    with pytest.raises(ValueError, match="window needs positions"):
        viz.plot_alignment(a, SRC, TGT, window=2)


# ----- fonts ----------------------------------------------------------------
def test_chinese_tokens_render_without_missing_glyphs(rng, tmp_path):
    name = _require_cjk_font()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" fails the test
        fig = viz.plot_alignment(_alpha(rng, 4, 5), ZH_SRC, ZH_TGT, title="英译中 en→zh",
                                 path=tmp_path / "zh.png")
        fig.canvas.draw()
        viz.save_figure(fig, tmp_path / "zh.svg")  # SVG draws text as paths, same fallback
    assert name in matplotlib.rcParams["font.family"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ZH_TGT
    assert (tmp_path / "zh.png").stat().st_size > 1000
    assert (tmp_path / "zh.svg").stat().st_size > 1000


def test_without_the_fallback_the_glyph_warning_appears(rng, monkeypatch):
    """The test above can fail: DejaVu Sans alone has no Chinese glyphs."""
    monkeypatch.setattr(heatmaps, "setup_fonts", lambda **kw: None)
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        with pytest.warns(UserWarning, match=GLYPH_MISSING):
            fig = viz.plot_alignment(_alpha(rng, 4, 5), ZH_SRC, ZH_TGT)
            fig.canvas.draw()


def test_setup_fonts_adds_fallback_after_default_once(monkeypatch):
    from matplotlib import font_manager

    monkeypatch.setattr(figures, "cjk_font", lambda: "Some CJK Font")
    with matplotlib.rc_context({"font.family": ["sans-serif"],
                                "font.sans-serif": ["DejaVu Sans", "Arial"]}):
        assert viz.setup_fonts() == "Some CJK Font"
        expected = ["DejaVu Sans", "Some CJK Font", "sans-serif"]
        assert matplotlib.rcParams["font.family"] == expected
        viz.setup_fonts()
        assert matplotlib.rcParams["font.family"] == expected
        # Latin text still comes from the default font
        path = font_manager.findfont(font_manager.FontProperties())
        assert os.path.basename(path) == "DejaVuSans.ttf"


def test_setup_fonts_with_installed_font_is_idempotent():
    name = _require_cjk_font()
    assert viz.setup_fonts() == name
    first = list(matplotlib.rcParams["font.family"])
    assert viz.setup_fonts() == name
    assert matplotlib.rcParams["font.family"] == first
    assert first.count(name) == 1 and first.index(name) == 1


def test_no_cjk_font_warns_once(monkeypatch, rng):
    monkeypatch.setattr(figures, "cjk_font", lambda: None)
    monkeypatch.setattr(figures, "_warned_no_cjk", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        viz.plot_alignment(_alpha(rng), SRC, TGT)  # no CJK token: nothing to warn about
        for _ in range(3):
            assert viz.setup_fonts() is None
    ours = [w for w in caught if issubclass(w.category, viz.CJKFontWarning)]
    assert len(ours) == 1
    assert issubclass(viz.CJKFontWarning, UserWarning)
    assert "apt-get install fonts-wqy-microhei" in str(ours[0].message)
    assert "Noto Sans CJK" in str(ours[0].message)


def test_cjk_font_is_searched_once():
    viz.cjk_font.cache_clear()
    first = viz.cjk_font()
    assert first is None or first in viz.CJK_FONTS
    assert viz.cjk_font() == first
    assert viz.cjk_font.cache_info().hits >= 1


def test_missing_matplotlib_gives_install_hint(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "tinyattn\[viz\]"'):
        viz.plot_alignment(_alpha(rng), SRC, TGT)


def test_importing_viz_does_not_import_matplotlib():
    code = "import sys, tinyattn.plot.heatmaps; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ----- save_figure ----------------------------------------------------------
def test_save_figure(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    out = viz.save_figure(fig, str(tmp_path / "a" / "fig.svg"))
    assert out == tmp_path / "a" / "fig.svg" and b"<svg" in out.read_bytes()
    with pytest.raises(ValueError, match="got no suffix"):
        viz.save_figure(fig, tmp_path / "fig")
    with pytest.raises(ValueError, match="got None"):
        viz.save_figure(fig, None)
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure, got str"):
        viz.save_figure("fig", tmp_path / "x.png")


# ----- plot_history ---------------------------------------------------------
def _records():
    return [EpochRecord(e, 3.0 / e, None if e == 2 else 3.2 / e, 0.5, 4.0 / e, 1e-3)
            for e in range(1, 6)]


def test_history_from_epoch_records_skips_missing_valid_loss(tmp_path):
    fig = viz.plot_history(_records(), title="run", path=tmp_path / "h.png")
    loss_ax, right_ax = fig.axes
    train, valid = loss_ax.lines
    assert list(train.get_xdata()) == [1, 2, 3, 4, 5]
    assert list(valid.get_xdata()) == [1, 3, 4, 5]
    assert loss_ax.get_xlabel() == "epoch"
    assert loss_ax.get_ylabel() == "cross-entropy per token (nats)"
    assert "gradient" in right_ax.get_ylabel() and right_ax.get_xlabel() == "epoch"
    np.testing.assert_allclose(right_ax.lines[0].get_ydata(), [4.0 / e for e in range(1, 6)])
    assert fig.get_suptitle() == "run"
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_history_from_dicts_with_accuracy():
    dicts = [{**vars(r), "valid_loss": None, "valid_exact_match": 0.1 * r.epoch}
             for r in _records()]
    fig = viz.plot_history(dicts)
    loss_ax, right_ax = fig.axes
    assert [ln.get_label() for ln in loss_ax.lines] == ["train"]  # no valid loss at all
    assert right_ax.get_ylabel().startswith("accuracy")
    assert [ln.get_label() for ln in right_ax.lines] == ["valid exact match"]
    assert right_ax.get_ylim()[0] == 0


def test_history_bad_input():
    with pytest.raises(ValueError, match="at least one epoch"):
        viz.plot_history([])
    with pytest.raises(TypeError, match=r"records\[0\] must be an EpochRecord or a dict"):
        viz.plot_history([(1, 2.0)])
    with pytest.raises(ValueError, match=r"records\[0\] needs a value for 'train_loss'"):
        viz.plot_history([{"epoch": 1}])
    with pytest.raises(ValueError, match="grad_norm"):
        viz.plot_history([{"epoch": 1, "train_loss": 2.0}])


# ----- plot_hypotheses ------------------------------------------------------
def _hypotheses(rng, lengths=(4, 3, 5)):
    hyps, tokens = [], []
    for k, n in enumerate(lengths):
        hyps.append(Hypothesis(tokens=list(range(n)), logprob=-1.5 * (k + 1),
                               score=-0.5 * (k + 1), attention=_alpha(rng, n, S)))
        tokens.append([f"t{i}" for i in range(n - 1)] + ["</s>"])
    return hyps, tokens


def test_hypotheses_one_panel_each_with_shared_scale(rng, tmp_path):
    hyps, tokens = _hypotheses(rng)
    fig = viz.plot_hypotheses(hyps, SRC, tokens, title="beam", path=tmp_path / "b.svg")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3
    assert [ax.get_title().splitlines()[0] for ax in panels] == [
        "#1 score -0.50", "#2 score -1.00", "#3 score -1.50"]
    for ax, toks in zip(panels, tokens):
        assert [t.get_text() for t in ax.get_yticklabels()] == toks
        assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "␣", "bc", "d", "e"]
        assert ax.images[0].get_clim() == (0.0, 1.0)
    colorbars = {ax.images[0].colorbar for ax in panels} - {None}
    assert len(colorbars) == 1
    assert colorbars.pop().ax.get_ylabel() == "attention weight"
    assert (tmp_path / "b.svg").stat().st_size > 1000


@pytest.mark.parametrize("n, rows, cols", [(2, 1, 2), (4, 1, 4), (5, 2, 3), (7, 3, 3)])
def test_hypotheses_up_to_four_in_a_row_then_three_per_row(rng, n, rows, cols):
    hyps, tokens = _hypotheses(rng, lengths=(3,) * n)
    fig = viz.plot_hypotheses(hyps, SRC, tokens)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == n
    grid = panels[0].get_subplotspec().get_gridspec()
    assert (grid.nrows, grid.ncols) == (rows, cols)


def test_hypotheses_bad_input(rng):
    hyps, tokens = _hypotheses(rng)
    with pytest.raises(ValueError, match=r"one token list per hypothesis \(3\), got 2"):
        viz.plot_hypotheses(hyps, SRC, tokens[:2])
    with pytest.raises(ValueError, match=r"tgt_tokens_per_hyp\[1\] must have one token per row"):
        viz.plot_hypotheses(hyps, SRC, [tokens[0], tokens[0], tokens[2]])
    with pytest.raises(ValueError, match="at least one Hypothesis"):
        viz.plot_hypotheses([], SRC, [])
    hyps[2].attention = None
    with pytest.raises(ValueError, match=r"hypotheses\[2\]\.attention is None"):
        viz.plot_hypotheses(hyps, SRC, tokens)
    hyps[2].attention = _alpha(rng, 5, S + 1)
    with pytest.raises(ValueError, match=r"same 5 source positions, hypotheses\[2\]"):
        viz.plot_hypotheses(hyps, SRC, tokens)


def test_history_with_batch_losses_draws_every_batch():
    records = _records()
    losses = list(np.linspace(3.0, 0.001, 4 * len(records)))
    fig = viz.plot_history(records, batch_losses=losses)
    loss_ax = fig.axes[0]
    batch_line = loss_ax.lines[0]
    assert batch_line.get_label() == "train (each batch)"
    np.testing.assert_allclose(batch_line.get_xdata()[[0, -1]], [0.25, len(records)])
    assert loss_ax.get_yscale() == "log"  # 3.0 / 0.001 spans over two decades
    assert [ln.get_label() for ln in loss_ax.lines][1] == "train (epoch mean)"



def test_chinese_ticks_render_on_axes_made_before_the_fonts_were_set_up(rng):
    """A learner's plt.subplots() before the first plot_alignment: ticks still render."""
    _require_cjk_font()
    with matplotlib.rc_context({"font.family": ["sans-serif"]}):
        fig, ax = plt.subplots()  # tick labels made now get plain sans-serif
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            viz.plot_alignment(_alpha(rng, 4, 5), ZH_SRC, ZH_TGT, ax=ax)
            fig.canvas.draw()


def test_chinese_title_renders_on_axes_made_before_the_fonts_were_set_up(rng):
    """The title too: an axes' title text keeps the font family of the axes' creation."""
    _require_cjk_font()
    with matplotlib.rc_context({"font.family": ["sans-serif"]}):
        fig, ax = plt.subplots()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            viz.plot_alignment(_alpha(rng, 4, 5), ZH_SRC, ZH_TGT, ax=ax, title="你很大？")
            fig.canvas.draw()
    assert ax.get_title() == "你很大？"
