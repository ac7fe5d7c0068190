"""Every lesson is exercise-first: a graded exercise, and no answer before it.

The learner's notebook must not import or call the library's version of
what the learner is about to write until after the exercise cell (the
cell holding the solution block). ``ANSWERS`` lists, per exercise, the
code that gives its answer away; no code cell before the exercise may
contain it (comments and quoted names do not count). Every lesson has at
least one graded exercise and at least one predict-then-run question.
"""

import importlib.util
import re
from pathlib import Path

import pytest

pytest.importorskip("nbformat", reason="lessons/build.py needs nbformat (the notebooks extra)")

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
_spec = importlib.util.spec_from_file_location("lessons_build", LESSONS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

SOURCES = build.sources()

# exercise -> regular expressions of code that uses its answer
ANSWERS = {
    "rnn_step_backward": [r"\brnn_step_backward\b"],
    "rnn_output_loss_backward": [r"\bsequence_cross_entropy\b", r"\bsoftmax_backward\b"],
    "rnn_backward": [r"\bcheck_module\(", r"\brnn\.backward\("],
    "lstm_step_backward": [r"\blstm_step_backward\b", r"\bcheck_module\("],
    "gru_step_backward": [r"\bgru_step_backward\b", r"\bcheck_module\("],
    "gru_cho_step_backward": [r"\bgru_step_backward\b", r"\bcheck_module\("],
    "bidirectional_encode": [r"\breverse_index\b", r"\bBidirectional\b"],
    "plain_decoder_backward": [r"\bPlainDecoder\b", r"\bbridge_backward\b", r"\bSeq2Seq\("],
    "masked_softmax_backward": [r"\bmasked_softmax_backward\b", r"\bcheck_module\("],
    "bahdanau_score_backward": [r"\badditive_score_backward\b", r"\bcheck_module\("],
    "bahdanau_decoder_step": [r"\bBahdanauDecoder\b", r"\bSeq2Seq\("],
    "bahdanau_decoder_step_backward": [r"\bBahdanauDecoder\b", r"\bSeq2Seq\("],
    "luong_general_score_backward": [r"\bgeneral_score_backward\b"],
    "local_p_attention": [r"raw:mode\s*=\s*[\"']local-p"],
    "reinforce_score_grad": [r"\breinforce_score_grad\b", r"\bHardAttention\b",
                             r"\bHardSeq2Seq\b"],
    "beam_search": [r"\bbeam_search\b"],
    "masked_cross_entropy": [r"\bsequence_cross_entropy\b", r"\bTrainer\b"],
    "adam_step": [r"\bAdam\b", r"\bTrainer\b"],
    "bleu_sentence_stats": [r"\bcorpus_bleu\b", r"\b_sentence_stats\b"],
    "batched_scores_backward": [r"\bdot_score_backward\b"],
    "multi_head_backward": [],  # the library has no multi-head backward to give it away
    "attention_mask": [r"\battention_mask\b", r"\blength_mask\b", r"\bnp\.tri\b",
                       r"\bnp\.tril\b", r"\bnp\.triu\b"],
    "multihead_attention_backward": [r"\bMultiHeadAttention\b", r"\bsplit_heads\b",
                                     r"\bmerge_heads\b", r"\bcheck_module\(",
                                     r"\bmasked_softmax_backward\b", r"\bsoftmax_backward\b"],
    "layer_norm_backward": [r"\bLayerNorm\b", r"\bcheck_module\(", r"\bTransformerEncoderLayer\b",
                            r"\bTransformerDecoderLayer\b", r"\bTransformer\(",
                            r"\b_ln_backward\b"],
    "cached_attention_step": [r"\bdecode_step\b", r"\bmemory_kv\b",
                              r"\bgreedy_decode\b", r"\bbeam_search\b"],
}

CHECK = re.compile(r"""\bcheck\(\s*["'](\w+)["']""")
PREDICT = re.compile(r"\*\*Predict[.:]?\*\*|\*\*Predict first", re.I)


def _code(text: str, strings: bool = False) -> str:
    """Code without comments and docstrings; without string literals too unless ``strings``."""
    text = re.sub(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'', " ", text)
    text = CHECK.sub(" ", text)  # an exercise's name in check("...")
    if not strings:
        text = re.sub(r'"[^"\n]*"|\'[^\'\n]*\'', " ", text)
    return re.sub(r"#.*", " ", text)


def exercise_cells(cells):
    """{exercise: index of the learner's cell} for every exercise a lesson grades."""
    found = {}
    for i, (kind, text) in enumerate(cells):
        if kind != "code" or build.BEGIN not in text:
            continue
        after = [t for k, t in cells[i:i + 3] if k == "code"][:2]
        for name in CHECK.findall("\n".join(after)):
            found.setdefault(name, i)
    return found


def early_answers(cells):
    """(exercise, cell index, pattern) wherever an answer is used before its exercise."""
    bad = []
    for name, at in exercise_cells(cells).items():
        for pattern in ANSWERS[name]:
            for i, (kind, text) in enumerate(cells[:at]):
                raw = pattern.startswith("raw:")  # the pattern looks inside strings
                if kind == "code" and re.search(pattern.removeprefix("raw:"), _code(text, raw)):
                    bad.append((name, i, pattern))
    return bad


def test_every_exercise_has_its_answers_listed():
    import tinyattn.exercises as ex

    assert set(ANSWERS) == set(ex.names())


@pytest.mark.parametrize("src", SOURCES, ids=lambda s: s.stem)
def test_lesson_has_a_graded_exercise_and_a_prediction(src):
    cells = build.parse(src.read_text(encoding="utf-8"))
    graded = exercise_cells(cells)
    assert graded, f"{src.name}: no exercise cell (a solution block followed by check(...))"
    assert set(graded) <= set(ANSWERS), f"{src.name}: add {set(graded) - set(ANSWERS)} to ANSWERS"
    assert any(kind == "markdown" and PREDICT.search(text) for kind, text in cells), (
        f"{src.name}: no predict-then-run question (**Predict.** …)")


@pytest.mark.parametrize("src", SOURCES, ids=lambda s: s.stem)
def test_no_answer_before_its_exercise(src):
    cells = build.parse(src.read_text(encoding="utf-8"))
    bad = early_answers(cells)
    assert not bad, "\n".join(f"{src.name}: cell {i} uses {p!r} before exercise {n!r}"
                              for n, i, p in bad)


def test_the_check_catches_an_answer_used_early():
    cells = [("code", "from tinyattn.rnn import rnn_step_backward  # the answer, too early"),
             ("code", "def my_rnn_step_backward(dh, cache):\n    # BEGIN SOLUTION\n    pass\n"
                      "    # END SOLUTION"),
             ("code", 'r = ex.check("rnn_step_backward", my_rnn_step_backward)')]
    assert early_answers(cells) == [("rnn_step_backward", 0, r"\brnn_step_backward\b")]
    cells[0] = ("code", 'print("no rnn_step_backward yet")  # quoted: not a use')
    assert early_answers(cells) == []
    cells[0] = ("code", "import tinyattn.rnn as R\nprint(R.rnn_step_backward(dh, cache))")
    assert [b[0] for b in early_answers(cells)] == ["rnn_step_backward"]
