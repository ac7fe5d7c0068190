"""Pictures: attention heatmaps (`heatmaps`), a Transformer's per-head grids
(`heads`), training curves (`curves`), and the figure plumbing they share
(`figures`: lazy matplotlib, a CJK font for Chinese tokens, saving as PNG or SVG).

matplotlib is an optional extra (``pip install "tinyattn[viz]"``), imported
only when a figure is drawn, so ``import tinyattn`` never needs it.
"""

from tinyattn.plot.curves import plot_history
from tinyattn.plot.figures import CJK_FONTS, CJKFontWarning, cjk_font, save_figure, setup_fonts
from tinyattn.plot.heads import plot_heads
from tinyattn.plot.heatmaps import plot_alignment, plot_hypotheses

__all__ = ["CJK_FONTS", "CJKFontWarning", "cjk_font", "plot_alignment", "plot_heads",
           "plot_history", "plot_hypotheses", "save_figure", "setup_fonts"]
