"""Tokenisers (``"char"``, ``"word"`` for English/French, ``"zh"`` for Chinese)
and `Vocab`, the token <-> id mapping with the four special tokens first.

Every tokeniser first puts the text in Unicode NFC form, so "e" + combining
acute and the single character "é" give the same tokens.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter

from tinyattn._validate import check_ids, check_options, check_size
from tinyattn.training.checkpoint import write_text_atomic

KINDS = ("char", "word", "zh", "zh-v1")  # zh-v1: runs made before 2026-12-05 (see tokenize)

_LETTER = r"[\w\u0300-\u036f]"  # word characters plus stray combining accents
_WORD_RE = re.compile(
    r"\d+(?:[.,:]\d+)+"                     # 3.5  10:30  1,000
    rf"|{_LETTER}+(?:[-'’]{_LETTER}+)*"     # words; inner hyphens/apostrophes kept
    r"|\.{2,}"                              # ...
    r"|\S"                                  # any other mark on its own
)
# French elided words split after their apostrophe; English contractions
# ("don't", "I'm", "it's") mostly do not start with one of these, so stay whole.
_ELISION_RE = re.compile(r"(?i)(?:qu|jusqu|lorsqu|puisqu|quoiqu|presqu|[cdjlmnst])['’](?=\w)")
_LATIN = "0-9A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
_ZH_RE = re.compile(  # as sacrebleu's "zh" tokeniser: 10,000, Wi-Fi and it's stay whole
    rf"\d+(?:[.,]\d+)+|[{_LATIN}]+(?:(?<=[^\W\d_])-[{_LATIN}]+|'[{_LATIN}]+)*|\S")
_ZH_V1_RE = re.compile(rf"[{_LATIN}]+|\S")  # the first "zh": "10,000" -> 10 , 000
_LATIN_CHAR = re.compile(rf"[{_LATIN}]")
_CLOSERS = {".", ",", "!", "?", ";", ":", ")", "...", "…"}


def _check_tokens(tokens, name: str = "tokens") -> list[str]:
    if isinstance(tokens, str):
        raise TypeError(f"{name} must be a sequence of str tokens, got a str; "
                        f"tokenize it first (or use list(text) for characters)")
    tokens = list(tokens)
    for k, tok in enumerate(tokens):
        if not isinstance(tok, str):
            raise TypeError(f"{name}[{k}] must be a str, got {type(tok).__name__}")
    return tokens


def tokenize(text: str, kind: str = "word", *, lowercase: bool = False) -> list[str]:
    """Split ``text`` into tokens.

    Parameters
    ----------
    text : str
    kind : {"char", "word", "zh", "zh-v1"}
        ``"char"``: ``list(text)``, spaces kept. ``"word"``: English or
        French words and punctuation (rules below). ``"zh"``: Chinese,
        one token per character except runs of Latin letters/digits
        (with inner apostrophes, and hyphens after a letter: "it's",
        "Wi-Fi") and numbers with inner "," or "." ("10,000"), as
        sacrebleu's ``tokenize="zh"`` splits them (equal on every Chinese
        sentence of the cmn-eng corpus; a test checks). ``"zh-v1"``: the
        first "zh", kept so that runs trained with it rebuild their
        vocabulary and split exactly: runs of Latin letters/digits and
        every other character alone ("10,000" -> "10", ",", "000").
    lowercase : bool
        Apply ``str.lower`` after NFC normalisation.

    Returns
    -------
    list of str

    Notes
    -----
    ``"word"`` rules, in order: a number with inner ``.``, ``,`` or ``:``
    ("3.5", "10:30") is one token; a run of letters/digits with inner
    hyphens or apostrophes is one token ("peut-être", "don't", "I'm" —
    English contractions stay whole, except the few that start like a
    French elision: "C'mon" -> "C'", "mon"); a French elided word is then
    split after its apostrophe (``l' j' d' qu' n' s' c' m' t' jusqu'
    lorsqu' puisqu' quoiqu' presqu'``, straight or curly apostrophe:
    "l'homme" -> "l'", "homme"; "aujourd'hui" stays whole); "..." is one
    token; every other non-space character is its own token, so French
    spacing ("Va !") and English spacing ("Go!") both give "!" alone.
    Accents are kept.

    Examples
    --------
    >>> tokenize("Qu'il est là ! I don't know.")
    ["Qu'", 'il', 'est', 'là', '!', 'I', "don't", 'know', '.']
    >>> tokenize("我有3个iPhone。", "zh")
    ['我', '有', '3', '个', 'iPhone', '。']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    check_options("kind", kind, KINDS)
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = text.lower()
    if kind == "char":
        return list(text)
    if kind == "zh":
        return _ZH_RE.findall(text)
    if kind == "zh-v1":
        return _ZH_V1_RE.findall(text)
    tokens = []
    for tok in _WORD_RE.findall(text):
        m = _ELISION_RE.match(tok)
        if m:
            tokens += [tok[:m.end()], tok[m.end():]]
        else:
            tokens.append(tok)
    return tokens


def detokenize(tokens, kind: str = "word") -> str:
    """Join tokens back into text (the inverse of `tokenize`, approximately).

    Parameters
    ----------
    tokens : sequence of str
    kind : {"char", "word", "zh", "zh-v1"}

    Returns
    -------
    str

    Notes
    -----
    ``"char"`` joins with nothing, so it inverts `tokenize` exactly (up
    to NFC). ``"zh"`` (and ``"zh-v1"``) joins with nothing except one space between two
    adjacent tokens that both start/end with a Latin letter or digit
    ("I", "love", "you" -> "I love you"). ``"word"`` joins with spaces
    but attaches closing punctuation (``. , ! ? ; : )`` and ``...``) to
    the word before it, and the word after ``(`` or after any token
    ending in an apostrophe (an elided "l'", but also a plural possessive
    "dogs'") to the one before it. This is an approximation: French
    typographic spaces ("Va !" -> "Va!") and the spacing around quotes
    are not restored ("the dogs' bone" -> "the dogs 'bone").
    """
    tokens = _check_tokens(tokens)
    check_options("kind", kind, KINDS)
    if kind == "char":
        return "".join(tokens)
    out = []
    for k, tok in enumerate(tokens):
        if k and tok:
            prev = tokens[k - 1]
            if kind in ("zh", "zh-v1"):
                glue = bool(prev) and _LATIN_CHAR.match(prev[-1]) and _LATIN_CHAR.match(tok[0])
            else:
                glue = not (tok in _CLOSERS or prev == "(" or prev.endswith(("'", "’")))
            if glue:
                out.append(" ")
        out.append(tok)
    return "".join(out)


class Vocab:
    """A token <-> id mapping whose first four entries are the special tokens.

    ``<pad>`` = 0, ``<sos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3, then the
    other tokens. Build one from data with `Vocab.build`.

    Parameters
    ----------
    tokens : list of str
        Every token in id order; must start with the four specials in
        that order and hold no duplicates.
    """

    PAD, SOS, EOS, UNK = "<pad>", "<sos>", "<eos>", "<unk>"
    SPECIALS = (PAD, SOS, EOS, UNK)
    pad_id, sos_id, eos_id, unk_id = 0, 1, 2, 3
    _FORMAT = "tinyattn.vocab"

    def __init__(self, tokens: list[str]):
        tokens = _check_tokens(tokens)
        if tuple(tokens[:4]) != self.SPECIALS:
            raise ValueError(f"tokens must start with the specials {list(self.SPECIALS)}, "
                             f"got {tokens[:4]}")
        self._tokens = tokens
        self._ids = {tok: i for i, tok in enumerate(tokens)}
        if len(self._ids) != len(tokens):
            dup = next(t for t, c in Counter(tokens).items() if c > 1)
            raise ValueError(f"tokens must be distinct, got {dup!r} more than once")

    @classmethod
    def build(cls, sequences, *, min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Count tokens and keep the frequent ones.

        Parameters
        ----------
        sequences : iterable of sequences of str
            Tokenised sentences (lists or tuples of tokens, not strings).
        min_freq : int
            Keep tokens seen at least this many times.
        max_size : int or None
            Largest vocabulary size, the four specials included.

        Returns
        -------
        Vocab
            Specials, then tokens by decreasing count, ties broken by the
            token text, so the same data always gives the same ids.
            Special tokens found in the data are not counted twice.
        """
        check_size(min_freq, "min_freq")
        check_size(max_size, "max_size (it counts the 4 special tokens)", low=4, none_ok=True)
        counts = Counter()
        for k, seq in enumerate(sequences):
            counts.update(_check_tokens(seq, f"sequences[{k}]"))
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t not in cls.SPECIALS),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size - 4]
        return cls([*cls.SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token) -> bool:
        return token in self._ids

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self._tokens == other._tokens

    __hash__ = None

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self._tokens[4:9]})"

    @property
    def tokens(self) -> list[str]:
        """Every token in id order (a copy)."""
        return list(self._tokens)

    def index(self, token: str) -> int:
        """The id of ``token``; ValueError when it is not in the vocabulary."""
        try:
            return self._ids[token]
        except (KeyError, TypeError):
            raise ValueError(f"token {token!r} is not in the vocabulary "
                             f"(encode() maps unknown tokens to {self.UNK})") from None

    def encode(self, tokens) -> list[int]:
        """Map tokens to ids; unknown tokens become `unk_id`."""
        ids = self._ids
        return [ids.get(tok, self.unk_id) for tok in _check_tokens(tokens)]

    def decode(self, ids, *, strip_special: bool = True) -> list[str]:
        """Map ids back to tokens, stopping at the first ``<eos>``.

        Parameters
        ----------
        ids : sequence of int or 1-D int ndarray
        strip_special : bool
            True: drop ``<pad>`` and ``<sos>`` and the ``<eos>`` itself.
            False: keep them, the ``<eos>`` included as the last token.
            Either way nothing after the first ``<eos>`` is returned.
            ``<unk>`` is always kept.
        """
        if len(ids) == 0:
            return []
        ids = check_ids(ids, "ids", len(self._tokens), shape=(None,)).tolist()
        out = []
        for i in ids:
            if i == self.eos_id:
                if not strip_special:
                    out.append(self.EOS)
                break
            if strip_special and i in (self.pad_id, self.sos_id):
                continue
            out.append(self._tokens[i])
        return out

    def to_json(self) -> str:
        """A JSON text holding the tokens in id order (UTF-8 kept readable)."""
        return json.dumps({"format": self._FORMAT, "version": 1, "tokens": self._tokens},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, s: str) -> Vocab:
        """The inverse of `to_json`; ValueError on anything malformed."""
        if not isinstance(s, str):
            raise TypeError(f"s must be a str, got {type(s).__name__}")
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            raise ValueError(f"vocabulary JSON is malformed: {e}") from None
        if not isinstance(obj, dict) or obj.get("format") != cls._FORMAT:
            raise ValueError(f"vocabulary JSON must be an object with "
                             f"\"format\": \"{cls._FORMAT}\", got {str(obj)[:60]!r}")
        if obj.get("version") != 1:
            raise ValueError(f"vocabulary JSON version must be 1, got {obj.get('version')!r}")
        tokens = obj.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("vocabulary JSON \"tokens\" must be a list of strings")
        return cls(tokens)

    def save(self, path) -> None:
        """Write `to_json` to ``path`` (UTF-8), atomically."""
        write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path) -> Vocab:
        """Read a vocabulary written by `save`."""
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_json(f.read())
            except ValueError as e:
                raise ValueError(f"{os.fspath(path)}: {e}") from None
