"""A language model of your own: the recurrent layer, a projection and a skip are searched.

    enas-search space=custom space.target=tinylm:TinyLM data=ptb data.path=my_corpus trainer=lm
"""

import torch
import torch.nn.functional as F
from torch import nn

from enas.nn import InputChoice, LayerChoice, ValueChoice


class TinyLM(nn.Module):
    def __init__(self, vocab_size, hidden_size=32):
        super().__init__()
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.rnn = LayerChoice({"gru": nn.GRU(hidden_size, hidden_size),
                                "rnn_tanh": nn.RNN(hidden_size, hidden_size),
                                "rnn_relu": nn.RNN(hidden_size, hidden_size, nonlinearity="relu")})
        self.proj = LayerChoice({"identity": nn.Identity(), "linear": nn.Linear(hidden_size, hidden_size),
                                 "tanh": nn.Tanh()})
        self.skip = InputChoice(2, n_chosen=None)      # add the embedding and/or the rnn output back
        self.dropout = ValueChoice([0.0, 0.2])
        self.out = nn.Linear(hidden_size, vocab_size)

    def init_hidden(self, batch_size):                 # the recurrent state: (1, B, H)
        return torch.zeros(1, batch_size, self.hidden_size, device=self.out.weight.device)

    def forward(self, tokens, hidden):                 # (T, B), (1, B, H) -> logits (T, B, V), hidden
        x = F.dropout(self.embed(tokens), self.dropout.value, self.training)
        h, hidden = self.rnn(x, hidden)
        y, skip = self.proj(h), self.skip([x, h])
        y = y if skip is None else y + skip
        return self.out(F.dropout(y, self.dropout.value, self.training)), hidden
