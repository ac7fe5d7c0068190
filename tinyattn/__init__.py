"""tinyattn: sequence-to-sequence models with attention, in NumPy, built to learn from.

Every layer has a hand-written backward pass checked by `tinyattn.gradcheck`.
"""

from tinyattn._validate import NonFiniteError
from tinyattn.attention import BahdanauAttention, LuongAttention
from tinyattn.bidirectional import Bidirectional
from tinyattn.gru import GRU
from tinyattn.hard_attention import HardAttention, HardSeq2Seq
from tinyattn.layernorm import LayerNorm, PositionalEncoding
from tinyattn.layers import Embedding, Linear
from tinyattn.local_attention import LocalAttention
from tinyattn.losses import sequence_cross_entropy
from tinyattn.lstm import LSTM
from tinyattn.module import Module
from tinyattn.multihead import MultiHeadAttention
from tinyattn.rnn import RNN
from tinyattn.self_attention import SelfAttention
from tinyattn.seq2seq import Seq2Seq
from tinyattn.training.optim import SGD, Adam, clip_grad_norm
from tinyattn.training.schedules import NoamSchedule, PlateauDecay, StepDecay, WarmupLinear
from tinyattn.training.trainer import Trainer
from tinyattn.transformer import Transformer
from tinyattn.transformer_layers import TransformerDecoderLayer, TransformerEncoderLayer

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adam",
    "Seq2Seq",
    "HardSeq2Seq",
    "NoamSchedule",
    "WarmupLinear",
    "PlateauDecay",
    "StepDecay",
    "Trainer",
    "clip_grad_norm",
    "BahdanauAttention",
    "HardAttention",
    "LocalAttention",
    "LuongAttention",
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "Embedding",
    "Linear",
    "Module",
    "NonFiniteError",
    "SelfAttention",
    "Transformer",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "MultiHeadAttention",
    "LayerNorm",
    "PositionalEncoding",
    "sequence_cross_entropy",
]
