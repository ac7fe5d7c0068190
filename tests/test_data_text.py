"""Tokenisers (English, French, Chinese, characters) and the vocabulary."""

import json
import unicodedata

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyattn.data import Vocab, detokenize, tokenize

# ---------------------------------------------------------------- tokenize


def test_chinese_one_token_per_character():
    assert tokenize("你很大？", "zh") == ["你", "很", "大", "？"]


def test_chinese_mixed_with_digits_and_latin():
    assert tokenize("我有3个iPhone。", "zh") == ["我", "有", "3", "个", "iPhone", "。"]
    assert tokenize("他说：「过来。」", "zh") == ["他", "说", "：", "「", "过", "来", "。", "」"]
    assert tokenize("我的手机用USB C。", "zh") == ["我", "的", "手", "机", "用", "USB", "C", "。"]


def test_chinese_rare_ideographs_and_whitespace():
    ext_a, compat = "\u3400", "\uf900"  # CJK Ext A and a compatibility ideograph
    assert tokenize(f"{ext_a}{compat} 好 ", "zh") == [ext_a, unicodedata.normalize("NFC", compat),
                                                     "好"]


def test_chinese_detokenize():
    assert detokenize(["我", "有", "3", "个", "iPhone", "。"], "zh") == "我有3个iPhone。"
    assert detokenize(["用", "USB", "C", "。"], "zh") == "用USB C。"


def test_french_elision_and_spacing():
    assert tokenize("L'homme qu'il voit, j'ai dit : « Va ! »") == [
        "L'", "homme", "qu'", "il", "voit", ",", "j'", "ai", "dit", ":", "«", "Va", "!", "»"]
    assert tokenize("Va !") == ["Va", "!"]
    assert tokenize("Va!") == ["Va", "!"]
    assert tokenize("jusqu’à aujourd'hui") == ["jusqu’", "à", "aujourd'hui"]


def test_english_contractions_stay_whole():
    assert tokenize("I'm sure you don't know it's 3.5 km...") == [
        "I'm", "sure", "you", "don't", "know", "it's", "3.5", "km", "..."]


def test_accents_decomposed_equals_composed():
    composed = "Elle a été à l'école."
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert tokenize(decomposed) == tokenize(composed) == [
        "Elle", "a", "été", "à", "l'", "école", "."]
    assert tokenize(decomposed, "char") == list(composed)


def test_lowercase():
    assert tokenize("Était-ce ÉVIDENT ?", lowercase=True) == ["était-ce", "évident", "?"]
    assert tokenize("AB c", "char", lowercase=True) == ["a", "b", " ", "c"]


def test_word_detokenize():
    tokens = tokenize("L'homme (le mien) est là, n'est-ce pas ? Oui !")
    assert detokenize(tokens) == "L'homme (le mien) est là, n'est-ce pas? Oui!"
    assert detokenize(["I", "don't", "know", "."]) == "I don't know."


@given(st.text())
def test_word_and_zh_tokens_only_drop_whitespace(text):
    nfc = unicodedata.normalize("NFC", text)
    for kind in ("word", "zh"):
        tokens = tokenize(text, kind)
        assert all(tok and not any(c.isspace() for c in tok) for tok in tokens)
        assert "".join(tokens) == "".join(nfc.split())


@given(st.text())
def test_char_round_trip(text):
    assert detokenize(tokenize(text, "char"), "char") == unicodedata.normalize("NFC", text)


def test_tokenize_bad_arguments():
    with pytest.raises(ValueError,
                       match="kind must be one of 'char', 'word', 'zh', 'zh-v1'; got 'en'"):
        tokenize("hi", "en")
    with pytest.raises(TypeError, match="text must be a str, got list"):
        tokenize(["hi"])
    with pytest.raises(TypeError, match="tokens must be a sequence of str tokens, got a str"):
        detokenize("hi")

# ------------------------------------------------------------------- Vocab


SENTENCES = [["b", "a", "c"], ["a", "b"], ["a", "d"], ["e"]]


def test_build_order_specials_first_then_frequency_then_text():
    vocab = Vocab.build(SENTENCES)
    assert vocab.tokens == ["<pad>", "<sos>", "<eos>", "<unk>", "a", "b", "c", "d", "e"]
    assert (vocab.pad_id, vocab.sos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.index("a") == 4 and len(vocab) == 9 and "d" in vocab and "z" not in vocab
    assert Vocab.build(reversed(SENTENCES)) == vocab  # input order does not matter


def test_build_min_freq_and_max_size():
    assert Vocab.build(SENTENCES, min_freq=2).tokens[4:] == ["a", "b"]
    assert Vocab.build(SENTENCES, max_size=6).tokens[4:] == ["a", "b"]
    assert len(Vocab.build(SENTENCES, max_size=4)) == 4
    with pytest.raises(ValueError, match=r"max_size \(it counts the 4 special tokens\) must be "
                                         r"None or an int >= 4, got 3"):
        Vocab.build(SENTENCES, max_size=3)
    with pytest.raises(ValueError, match="min_freq must be a positive int, got 0"):
        Vocab.build(SENTENCES, min_freq=0)
    with pytest.raises(TypeError, match=r"sequences\[1\] must be a sequence of str tokens"):
        Vocab.build([["a"], "bc"])


def test_specials_in_data_are_not_duplicated():
    vocab = Vocab.build([["<eos>", "x", "<unk>"]])
    assert vocab.tokens == ["<pad>", "<sos>", "<eos>", "<unk>", "x"]


def test_encode_unknown_and_decode():
    vocab = Vocab.build(SENTENCES)
    assert vocab.encode(["a", "zzz", "e"]) == [4, 3, 8]
    ids = [vocab.sos_id, 4, 3, 5, vocab.eos_id, 6, vocab.pad_id]
    assert vocab.decode(ids) == ["a", "<unk>", "b"]
    assert vocab.decode(ids, strip_special=False) == ["<sos>", "a", "<unk>", "b", "<eos>"]
    assert vocab.decode(np.array([4, 0, 5, 0])) == ["a", "b"]
    assert vocab.decode([]) == []


def test_decode_and_index_errors():
    vocab = Vocab.build(SENTENCES)
    with pytest.raises(ValueError, match=r"ids must be token ids in 0..8 .*got ids\[1\] = 9"):
        vocab.decode([4, 9])
    with pytest.raises(ValueError, match=r"ids must be token ids in 0..8 .*got ids\[0\] = -1"):
        vocab.decode([-1])
    with pytest.raises(TypeError, match=r"ids must hold integer token ids, got dtype float64"):
        vocab.decode([4.0])
    with pytest.raises(ValueError, match=r"ids must have shape \(\w+,\), got \(2, 2\)"):
        vocab.decode(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="token 'zzz' is not in the vocabulary"):
        vocab.index("zzz")
    with pytest.raises(TypeError, match="tokens must be a sequence of str tokens, got a str"):
        vocab.encode("abc")


def test_constructor_checks_specials_and_duplicates():
    with pytest.raises(ValueError, match="tokens must start with the specials"):
        Vocab(["<sos>", "<pad>", "<eos>", "<unk>"])
    with pytest.raises(ValueError, match="tokens must be distinct, got 'a'"):
        Vocab([*Vocab.SPECIALS, "a", "b", "a"])


def test_json_round_trip_and_file(tmp_path):
    vocab = Vocab.build([tokenize("L'élève a lu « 你好 ».")])
    again = Vocab.from_json(vocab.to_json())
    assert again == vocab and again.tokens == vocab.tokens
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert Vocab.load(path) == vocab
    assert "élève" in path.read_text(encoding="utf-8")  # readable, not \u-escaped
    assert vocab != Vocab(list(Vocab.SPECIALS))


@pytest.mark.parametrize("text, message", [
    ("{not json", "vocabulary JSON is malformed"),
    ("[1, 2]", "must be an object with \"format\""),
    (json.dumps({"format": "tinyattn.vocab", "version": 2, "tokens": []}), "version must be 1"),
    (json.dumps({"format": "tinyattn.vocab", "version": 1, "tokens": [1]}), "list of strings"),
    (json.dumps({"format": "tinyattn.vocab", "version": 1, "tokens": ["a"]}),
     "tokens must start with the specials"),
])
def test_malformed_json(text, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        Vocab.from_json(text)
    path = tmp_path / "v.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}: .*{message}"):
        Vocab.load(path)
