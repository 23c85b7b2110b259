"""A restricted unpickler for data files that hold numpy arrays (CIFAR-10 python batches).

`pickle.load` runs whatever callable a file names, so reading a downloaded pickle can
execute code. `SafeUnpickler` resolves only the handful of globals that a pickled dict
of numpy arrays needs and refuses every other one *before* it is called:

    numpy.core.multiarray._reconstruct / numpy._core.multiarray._reconstruct
    numpy.ndarray, numpy.dtype
    _codecs.encode   (protocol 2 writes bytes as `_codecs.encode(str, "latin1")`),
                     wrapped so that only the latin-1 codec is accepted

dict, list, tuple, str, bytes, int and float are built by pickle opcodes and need
no global at all.
"""

from __future__ import annotations

import codecs
import pickle
from typing import IO, Any

import numpy as np

__all__ = ["SafeUnpickler", "safe_load"]


def _numpy_reconstruct() -> Any:
    """numpy's ndarray reconstruction function (moved to numpy._core in numpy 2)."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """`_codecs.encode` restricted to latin-1, the only codec protocol-2 bytes use."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(
            f"forbidden codec {encoding!r} in _codecs.encode (only latin1 is allowed)"
        )
    return codecs.encode(text, "latin1", errors)


_RECONSTRUCT = _numpy_reconstruct()

# (module, name) -> object returned by find_class. Nothing else can be loaded.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` only returns the numpy array globals listed above."""

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global, else raise `pickle.UnpicklingError` naming it."""
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"forbidden global '{module}.{name}' in pickle (only numpy arrays, "
                "dicts, lists, str, bytes and numbers are allowed)"
            ) from None


def safe_load(file: IO[bytes], encoding: str = "bytes") -> Any:
    """Unpickle `file` (opened in binary mode) with `SafeUnpickler`.

    `encoding="bytes"` matches the official CIFAR-10 loader: Python 2 `str` objects
    (the dict keys of the original batches) come back as `bytes`.
    """
    return SafeUnpickler(file, encoding=encoding).load()
