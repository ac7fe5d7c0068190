"""matplotlib plumbing for the plots: a lazy import, a CJK font fallback, saving.

Tokens from Chinese (or any CJK) text need a font with those glyphs.
`setup_fonts` lists an installed CJK font in ``rcParams["font.family"]``
right *after* the default font; since matplotlib 3.6 text falls back glyph
by glyph along that list, so Latin text keeps its usual look and only the
characters DejaVu Sans lacks come from the CJK font. `save_figure` writes
PNG or SVG by suffix. Used by `tinyattn.plot.heatmaps` and `tinyattn.plot.curves`.
"""

from __future__ import annotations

import functools
import pathlib
import warnings

from tinyattn._validate import check_path

_INSTALL_HINT = 'matplotlib is needed for tinyattn.plot.heatmaps: pip install "tinyattn[viz]"'
_NO_CJK_HINT = ("no CJK font found; Chinese tokens will show as boxes. Install one: "
                "apt-get install fonts-wqy-microhei (Debian/Ubuntu) or any Noto Sans CJK font")

# Most-preferred first: the font CI installs, then the common Linux, macOS and Windows ones.
CJK_FONTS = (
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR",
    "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "Source Han Sans",
    "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Heiti TC", "STHeiti",
    "Hiragino Sans GB", "Arial Unicode MS",
)
# Lower-case file-name fragments of those fonts, for files matplotlib's cache has not seen.
_CJK_FILE_HINTS = ("wqy", "notosanscjk", "notosanssc", "sourcehansans", "simhei", "msyh",
                   "pingfang", "stheiti", "hiragino")
# Unicode blocks that DejaVu Sans does not cover: CJK radicals .. unified ideographs,
# Hangul syllables, compatibility ideographs, full-width forms.
_CJK_RANGES = ((0x2E80, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF))
_SUFFIXES = {".png": "png", ".svg": "svg"}
_warned_no_cjk = False


class CJKFontWarning(UserWarning):
    """No CJK font is installed, so CJK tokens would render as empty boxes."""


def mpl():
    """Import matplotlib lazily, with an install hint when it is missing."""
    try:
        import matplotlib  # noqa: F401
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return plt


@functools.cache
def cjk_font() -> str | None:
    """Name of an installed CJK font, or None; the search runs once.

    Looks through matplotlib's font list for the names in `CJK_FONTS`, in
    that order. A font installed after matplotlib built its font cache is
    not in that list, so the system's font files with a known CJK file name
    are then registered (``font_manager.fontManager.addfont``) and the list
    is searched again.

    Returns
    -------
    str or None
        A family name usable in ``rcParams["font.family"]``.
    """
    mpl()
    from matplotlib import font_manager

    def search():
        installed = {entry.name for entry in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in installed), None)

    found = search()
    if found is not None:
        return found
    for file in font_manager.findSystemFonts():
        if any(hint in pathlib.Path(file).name.lower() for hint in _CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(file)
            except (OSError, RuntimeError, ValueError):  # unreadable or unsupported file
                continue
    return search()


def setup_fonts(*, warn: bool = True) -> str | None:
    """Make CJK glyphs render by adding a CJK font as a fallback; idempotent.

    matplotlib (>= 3.6) falls back glyph by glyph along the *families listed
    in* ``rcParams["font.family"]``; a generic entry such as "sans-serif"
    resolves to one font only, so the CJK font must be listed there
    itself. The first family is replaced by the font it currently resolves
    to (DejaVu Sans by default) and the CJK font is put right after it::

        ["sans-serif"]  ->  ["DejaVu Sans", "WenQuanYi Micro Hei", "sans-serif"]

    Latin text keeps the default font; only glyphs it lacks come from the
    CJK font. This changes global rcParams, so later figures get it too;
    inside ``matplotlib.rc_context`` the change ends with the context.

    Parameters
    ----------
    warn : bool
        When no CJK font is installed, emit `CJKFontWarning` (once per
        session). The plot functions pass False when no token is CJK.

    Returns
    -------
    str or None
        The CJK font's name, or None when none is installed.
    """
    global _warned_no_cjk
    mpl()
    import matplotlib
    from matplotlib import font_manager

    name = cjk_font()
    if name is None:
        if warn and not _warned_no_cjk:
            _warned_no_cjk = True
            warnings.warn(_NO_CJK_HINT, CJKFontWarning, stacklevel=2)
        return None
    families = list(matplotlib.rcParams["font.family"])
    if name in families:
        return name
    first = font_manager.findfont(font_manager.FontProperties(family=families[:1]))
    primary = font_manager.get_font(first).family_name  # e.g. "sans-serif" -> "DejaVu Sans"
    rest = [f for f in families if f != primary]
    matplotlib.rcParams["font.family"] = [primary, name] + rest
    return name


def is_cjk(text: str) -> bool:
    """Whether ``text`` has a CJK character (it then needs a CJK font)."""
    return any(lo <= ord(c) <= hi for c in text for lo, hi in _CJK_RANGES)


def check_figure_path(path) -> pathlib.Path | None:
    """``path`` as a Path whose suffix matplotlib can write, or None for None."""
    if path is None:
        return None
    path = pathlib.Path(check_path(path, "path", "ending in .png or .svg"))
    if path.suffix.lower() not in _SUFFIXES:
        got = repr(path.suffix) if path.suffix else "no suffix"
        raise ValueError(f"path must end in .png or .svg, got {got} ({str(path)!r})")
    return path


def check_title(title, name: str = "title") -> None:
    """A title is None or a str (matplotlib would print any object's repr)."""
    if title is not None and not isinstance(title, str):
        raise TypeError(f"{name} must be None or a str, got {type(title).__name__}")


def check_ax(ax) -> None:
    """``ax`` is None or a matplotlib Axes to draw into."""
    import matplotlib.axes

    if ax is not None and not isinstance(ax, matplotlib.axes.Axes):
        raise TypeError(f"ax must be None or a matplotlib Axes, got {type(ax).__name__}")


def check_cmap(cmap) -> None:
    """``cmap`` is a registered colormap name ("viridis") or a Colormap."""
    import matplotlib
    import matplotlib.colors

    if isinstance(cmap, matplotlib.colors.Colormap):
        return
    if not isinstance(cmap, str):
        raise TypeError(f"cmap must be a colormap name (a str such as 'viridis') or a "
                        f"matplotlib Colormap, got {type(cmap).__name__}")
    if cmap not in matplotlib.colormaps:
        raise ValueError(f"cmap must be a matplotlib colormap name such as 'viridis', "
                         f"got {cmap!r}")


def save_figure(fig, path) -> pathlib.Path:
    """Save ``fig`` as PNG (150 dpi) or SVG, chosen by the suffix of ``path``.

    Parent directories are created. The figure stays open.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
        Ending in ``.png`` or ``.svg``; anything else is a ValueError.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = check_figure_path(path)
    if path is None:
        raise ValueError("path must be a file path ending in .png or .svg, got None")
    if not callable(getattr(fig, "savefig", None)):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = _SUFFIXES[path.suffix.lower()]
    fig.savefig(path, format=fmt, dpi=150, bbox_inches="tight")
    return path
