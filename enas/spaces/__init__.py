"""Search spaces. Importing this package registers every built-in space."""

from enas.spaces.base import SPACES, Graph, SearchSpace, build_space, register_space  # noqa: F401

# Built-in spaces register themselves on import.
from enas.spaces import rnn_cell, macro_cnn, micro_cnn, nas_cnn, nas_rnn_tree  # noqa: F401,E402
