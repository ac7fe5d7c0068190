"""Scores of decoded output: exact match, token accuracy and BLEU; and of
attention: alignment accuracy against gold spans, attention entropy.
"""

from tinyattn.metrics.accuracy import (
    alignment_accuracy,
    attention_entropy,
    exact_match,
    token_accuracy,
)
from tinyattn.metrics.bleu import BleuScore, bleu_signature, corpus_bleu

__all__ = ["BleuScore", "alignment_accuracy", "attention_entropy", "bleu_signature",
           "corpus_bleu", "exact_match", "token_accuracy"]
