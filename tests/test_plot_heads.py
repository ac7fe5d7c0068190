"""Per-head pictures: tinyattn.plot.heads.plot_heads (panels, titles, shared colour
bar, bad input, CJK tokens) and ``tinyattn plot RUN --layer L --head H | --heads
[--self]`` on a tiny trained Transformer run, with every refusal."""

import os
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import tinyattn.cli.commands as cli  # noqa: E402
from tinyattn import plot as viz  # noqa: E402
from tinyattn.cli import heads as cli_heads  # noqa: E402
from tinyattn.cli.evaluation import decode  # noqa: E402
from tinyattn.cli.run import Run  # noqa: E402
from tinyattn.plot import heads  # noqa: E402

from .cli_helpers import run_cli, train_dates  # noqa: E402

L, N, T, S = 2, 3, 4, 5
SRC = ["a", " ", "bc", "d", "e"]
TGT = ["w", "x", "y", "z"]
ZH_SRC = "Are you very big ?".split()
ZH_TGT = ["你", "很", "大", "？"]
TRANSFORMER = ["--arch", "transformer", "--train-size", "300", "--epochs", "1", "--d-model",
               "8", "--heads", "2", "--d-ff", "16", "--num-layers", "2", "--warmup", "2",
               "--quiet", "--plots", "0"]


@pytest.fixture(autouse=True)
def _isolated_matplotlib():
    """Each test gets the default rcParams back and leaves no figure open."""
    with matplotlib.rc_context():
        yield
    plt.close("all")


def _weights(rng, *shape):
    x = rng.standard_normal(shape)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ----- plot_heads ---------------------------------------------------------------
def test_grid_panels_titles_images_and_one_colorbar(rng, tmp_path):
    w = _weights(rng, L, N, T, S)
    fig = viz.plot_heads(w, SRC, TGT, title="cross", path=tmp_path / "g.png")
    assert len(fig.axes) == L * N + 1  # the panels, then the colour bar
    panels, bar = fig.axes[:-1], fig.axes[-1]
    assert [ax.get_title() for ax in panels] == [f"layer {l}, head {h}" for l in range(L)
                                                 for h in range(N)]
    for k, ax in enumerate(panels):
        (im,) = ax.images
        np.testing.assert_array_equal(im.get_array(), w[k // N, k % N])
        assert im.get_clim() == (0.0, 1.0)
        assert ax.get_ylim() == (T - 0.5, -0.5)  # first target token on top
    assert not bar.images and bar.get_ylabel() == "attention weight"
    assert sum(ax.images[0].colorbar is not None for ax in panels) == 1
    assert fig.get_suptitle() == "cross"
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_axis_and_token_labels_only_on_outer_panels(rng):
    fig = viz.plot_heads(_weights(rng, L, N, T, S), SRC, TGT)
    for k, ax in enumerate(fig.axes[:-1]):
        l, h = divmod(k, N)
        assert ax.get_xlabel() == ("source" if l == L - 1 else "")
        assert ax.get_ylabel() == ("target" if h == 0 else "")
        # the panels share their ticks; the tokens show on the bottom row and left column
        assert ax.get_xticks().tolist() == list(range(S))
        assert ax.get_yticks().tolist() == list(range(T))
        xs = [t.get_text() for t in ax.get_xticklabels()]  # the visible ones
        assert xs == (["a", "␣", "bc", "d", "e"] if l == L - 1 else [])
        assert [t.get_text() for t in ax.get_yticklabels()] == (TGT if h == 0 else [])


def test_one_layer_names_and_axis_labels(rng):
    w = _weights(rng, N, S, S)
    fig = viz.plot_heads(w, SRC, SRC, axis_labels=("key", "query"))
    assert [ax.get_title() for ax in fig.axes[:-1]] == ["head 0", "head 1", "head 2"]
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("key", "query")
    fig = viz.plot_heads(w, SRC, SRC, layer_names=["encoder 1"])
    assert fig.axes[2].get_title() == "encoder 1, head 2"
    fig = viz.plot_heads(_weights(rng, L, N, T, S), SRC, TGT, layer_names=["dec 0", "dec 1"])
    assert fig.axes[N].get_title() == "dec 1, head 0"


def test_figure_grows_with_the_grid_and_the_sequences_within_a_cap(rng):
    def size(*shape):
        w = _weights(rng, *shape)
        return viz.plot_heads(w, [str(j) for j in range(shape[-1])],
                              [str(t) for t in range(shape[-2])]).get_size_inches()

    small = size(1, 2, 4, 5)
    assert size(1, 4, 4, 5)[0] > small[0] and size(3, 2, 4, 5)[1] > small[1]
    assert size(1, 2, 4, 12)[0] > small[0] and size(1, 2, 10, 5)[1] > small[1]
    # 8 heads of 6 layers over 80 x 60 tokens: cells shrink, the figure stays within 30 in
    (width, height), fontsize, cell = heads._grid_size(6, 8, 60, 80, ["x"] * 80, ["y"] * 60,
                                                       True)
    assert width <= 30 and height <= 30 and 0.1 <= cell < 0.3 and fontsize >= 5


def test_bad_input(rng, tmp_path):
    w = _weights(rng, L, N, T, S)
    for bad in (w[0, 0], w[None], np.zeros((L, 0, T, S))):
        with pytest.raises(ValueError, match=r"weights must be a non-empty array of shape "
                                             r"\(L, n, T, S\) .* got shape"):
            viz.plot_heads(bad, SRC, TGT)
    with pytest.raises(TypeError, match="weights"):
        viz.plot_heads(w > 0.5, SRC, TGT)
    with pytest.raises(ValueError, match="weights must be finite"):
        viz.plot_heads(np.where(w > 0.5, np.nan, w), SRC, TGT)
    with pytest.raises(ValueError, match=r"weights must hold attention weights in \[0, 1\]"):
        viz.plot_heads(w * 3 - 1, SRC, TGT)
    with pytest.raises(ValueError, match=r"src_tokens must have one token per column of "
                                         r"weights \(5\), got 4"):
        viz.plot_heads(w, SRC[:4], TGT)
    with pytest.raises(ValueError, match=r"tgt_tokens must have one token per row of "
                                         r"weights \(4\), got 5"):
        viz.plot_heads(w, SRC, TGT + ["v"])
    with pytest.raises(ValueError, match=r"layer_names must have one name per layer of "
                                         r"weights \(2\), got 1"):
        viz.plot_heads(w, SRC, TGT, layer_names=["only"])
    with pytest.raises(TypeError, match=r"layer_names\[1\] must be a str, got int"):
        viz.plot_heads(w, SRC, TGT, layer_names=["a", 1])
    with pytest.raises(ValueError, match=r"axis_labels must be a pair of str"):
        viz.plot_heads(w, SRC, TGT, axis_labels=("x",))
    with pytest.raises(ValueError, match=r"path must end in \.png or \.svg"):
        viz.plot_heads(w, SRC, TGT, path=tmp_path / "g.jpg")
    with pytest.raises(TypeError, match="title must be None or a str"):
        viz.plot_heads(w, SRC, TGT, title=3)
    with pytest.raises(ValueError, match="cmap must be a matplotlib colormap name"):
        viz.plot_heads(w, SRC, TGT, cmap="no-such-map")
    assert not list(tmp_path.iterdir())


def test_plot_alignment_points_per_head_weights_to_plot_heads(rng):
    w = _weights(rng, N, T, S)
    for bad in (w, w[None]):
        with pytest.raises(ValueError, match=r"alpha must be a non-empty 2-D array of shape "
                                             r"\(T, S\), got shape .*plot_heads"):
            viz.plot_alignment(bad, SRC, TGT)
    with pytest.raises(ValueError) as err:  # no pointer for shapes that are not per-head
        viz.plot_alignment(w[0, 0], SRC, TGT)
    assert "plot_heads" not in str(err.value)


def _require_cjk_font():
    if viz.cjk_font() is None:
        if os.environ.get("TINYATTN_REQUIRE_CJK_FONT") == "1":
            pytest.fail("TINYATTN_REQUIRE_CJK_FONT=1 but no CJK font is installed")
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei)")


def test_chinese_tokens_render_without_missing_glyphs(rng, tmp_path):
    _require_cjk_font()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" fails the test
        fig = viz.plot_heads(_weights(rng, L, N, 4, 5), ZH_SRC, ZH_TGT, title="英译中",
                             layer_names=["第一层", "第二层"], path=tmp_path / "zh.png")
        fig.canvas.draw()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ZH_TGT
    assert fig.axes[N].get_title() == "第二层, head 0"


def test_without_the_fallback_the_glyph_warning_appears(rng, monkeypatch):
    """The test above can fail: DejaVu Sans alone has no Chinese glyphs."""
    monkeypatch.setattr(heads, "setup_fonts", lambda **kw: None)
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        with pytest.warns(UserWarning, match="missing from font"):
            fig = viz.plot_heads(_weights(rng, L, N, 4, 5), ZH_SRC, ZH_TGT)
            fig.canvas.draw()


# ----- the command line -----------------------------------------------------------
@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory):
    """A tiny Transformer dates run (2 layers, 2 heads), shared by the CLI tests."""
    out = tmp_path_factory.mktemp("runs") / "tf"
    assert cli.main(["train", "dates", "--out", str(out), *TRANSFORMER]) == 0
    return out


def test_head_weights_average_to_the_decoded_attention(transformer_run):
    """What the pictures draw: the last layer's heads average to decoding's rows."""
    run = Run.open(transformer_run)
    model = run.load_model()
    src = list(run.load_splits()[0]["test"][0].src)
    (_, hyp), = decode(model, run, [src])[0]
    cross = cli_heads.head_weights(model, run, src, hyp.tokens[:-1])
    assert cross.shape == (2, 2, len(hyp.tokens), len(src))
    np.testing.assert_allclose(cross[-1].mean(axis=0), hyp.attention, atol=1e-6)
    assert not np.allclose(cross[-1, 0], cross[-1, 1])  # two heads, two pictures
    enc = cli_heads.head_weights(model, run, src, hyp.tokens[:-1], self_attention=True)
    assert enc.shape == (2, 2, len(src), len(src))
    np.testing.assert_allclose(enc.sum(axis=-1), 1.0, atol=1e-5)


def test_plot_one_head_and_the_grid(transformer_run, capsys, tmp_path, monkeypatch):
    drawn = []
    real = heads.plot_heads
    monkeypatch.setattr(heads, "plot_heads", lambda w, *a, **kw: drawn.append(w) or
                        real(w, *a, **kw))
    code, out, err = run_cli(capsys, "plot", transformer_run, "--index", "2",
                             "--layer", "1", "--head", "0", "--out", tmp_path)
    assert code == 0, err
    assert out.split() == [str(tmp_path / "test_2_layer1_head0.png")]
    code, out, err = run_cli(capsys, "plot", transformer_run, "--index", "0", "--heads",
                             "--out", tmp_path)
    assert code == 0, err
    assert out.split() == [str(tmp_path / "test_0_heads.png")]
    code, out, err = run_cli(capsys, "plot", transformer_run, "--index", "0", "--heads",
                             "--self", "--out", tmp_path)
    assert code == 0, err
    assert out.split() == [str(tmp_path / "test_0_self_heads.png")]
    (cross, enc) = drawn
    assert cross.shape[:2] == (2, 2) and enc.shape[:2] == (2, 2)
    assert enc.shape[2] == enc.shape[3] == cross.shape[3]  # source x source
    for name in ("test_2_layer1_head0", "test_0_heads",
                 "test_0_self_heads"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    # an existing picture is the user's: replaced only with --overwrite
    code, _, err = run_cli(capsys, "plot", transformer_run, "--index", "0", "--heads",
                           "--out", tmp_path)
    assert code == 2 and "test_0_heads.png already exists; add --overwrite" in err


@pytest.mark.parametrize("flags, message", [
    (["--layer", "2", "--head", "0"], "--layer 2 is out of range: the decoder has 2 layers "
                                      "(0..1)"),
    (["--layer", "-1", "--head", "0"], "--layer -1 is out of range"),
    (["--layer", "0", "--head", "2"], "--head 2 is out of range: each layer has 2 heads (0..1)"),
    (["--self", "--layer", "2", "--head", "0"], "the encoder has 2 layers (0..1)"),
    (["--head", "0"], "--head needs --layer"),
    (["--layer", "0"], "--layer needs --head"),
    (["--heads", "--layer", "0", "--head", "0"], "give either --heads or --layer L --head H"),
    (["--heads", "--beam", "2"], "--heads draws the heads of the greedy output: drop --beam 2"),
    (["--self"], "--self needs --heads"),
])
def test_refusals_are_one_line(transformer_run, capsys, tmp_path, flags, message):
    code, out, err = run_cli(capsys, "plot", transformer_run, "--out", tmp_path, *flags)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out and not list(tmp_path.iterdir())


def test_an_rnn_run_has_no_heads(tmp_path, capsys):
    rnn = train_dates(tmp_path / "rnn", "--train-size", "300", "--plots", "0")
    for flags in (["--heads"], ["--layer", "0", "--head", "0"]):
        code, _, err = run_cli(capsys, "plot", rnn, "--out", tmp_path / "p", *flags)
        assert code == 2 and f"{flags[0]}: {rnn} is an --arch rnn run" in err
    assert not (tmp_path / "p").exists()
