"""tinyattn: sequence-to-sequence models with attention, in NumPy, built to learn from.

Every layer has a hand-written backward pass checked by `tinyattn.gradcheck`.
"""

from tinyattn.attention import BahdanauAttention, LuongAttention
from tinyattn.bidirectional import Bidirectional
from tinyattn.gru import GRU
from tinyattn.layers import Embedding, Linear
from tinyattn.local_attention import LocalAttention
from tinyattn.losses import sequence_cross_entropy
from tinyattn.lstm import LSTM
from tinyattn.module import Module
from tinyattn.rnn import RNN

__version__ = "0.1.0"

__all__ = [
    "BahdanauAttention",
    "LocalAttention",
    "LuongAttention",
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "Embedding",
    "Linear",
    "Module",
    "sequence_cross_entropy",
]
