"""Tests for enas.data.images and enas.data.safe_pickle on tiny files written in the real formats."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from enas.data.images import (
    CIFAR10_CLASSES,
    KNOWN_DATASETS,
    ImageBatches,
    ImageDataset,
    channel_stats,
    load_cifar10_batches,
    load_digits,
    load_fashion_mnist,
    load_image_folder,
    load_images,
    split_train_valid,
)
from enas.data.safe_pickle import safe_load

REPO = Path(__file__).resolve().parents[1]
CIFAR_JPEG = REPO.parent / "shared" / "data" / "cifar10_jpeg" / "cifar10_jpeg_q75.tar.gz"
FASHION = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- CIFAR-10 python batches


def _batch(n: int, seed: int) -> dict:
    rng = np.random.RandomState(seed)
    return {
        b"batch_label": f"batch {seed}".encode(),
        b"labels": [int(v) for v in rng.randint(0, 10, n)],
        b"data": rng.randint(0, 256, (n, 3072)).astype(np.uint8),
        b"filenames": [f"img{i}.png".encode() for i in range(n)],
    }


def _write_pickle(path: Path, obj, protocol: int = 2) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def _write_cifar(folder: Path, n: int = 4, meta: bool = True) -> dict[str, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {name: _batch(n if name != "test_batch" else 3, seed) for seed, name in enumerate(names)}
    for name, batch in batches.items():
        _write_pickle(folder / name, batch)
    if meta:
        label_names = [f"class{i}".encode() for i in range(10)]
        meta_dict = {b"num_cases_per_batch": n, b"label_names": label_names, b"num_vis": 3072}
        _write_pickle(folder / "batches.meta", meta_dict)
    return batches


def test_cifar_batches_read_pixels_labels_and_meta(tmp_path):
    batches = _write_cifar(tmp_path / "cifar-10-batches-py")
    for root in (tmp_path, tmp_path / "cifar-10-batches-py"):  # parent or the folder itself
        ds = load_cifar10_batches(root)
        assert ds.train_x.shape == (20, 3, 32, 32) and ds.train_x.dtype == torch.uint8
        assert ds.test_x.shape == (3, 3, 32, 32)
        assert ds.classes == [f"class{i}" for i in range(10)] and ds.name == "cifar10"
        b2 = batches["data_batch_2"]
        # row layout: 1024 red, 1024 green, 1024 blue values, each a row-major 32x32 plane
        img = ds.train_x[4 + 1]  # second image of the second batch
        assert int(img[0, 0, 0]) == b2[b"data"][1, 0]
        assert int(img[1, 0, 0]) == b2[b"data"][1, 1024]
        assert int(img[2, 1, 3]) == b2[b"data"][1, 2048 + 32 + 3]
        assert ds.train_y[4:8].tolist() == b2[b"labels"]
        assert ds.test_y.tolist() == batches["test_batch"][b"labels"]


def test_cifar_without_meta_uses_standard_names_and_accepts_str_keys(tmp_path):
    _write_cifar(tmp_path, meta=False)
    batch = _batch(2, 9)
    _write_pickle(tmp_path / "test_batch", {k.decode(): v for k, v in batch.items()}, protocol=4)
    ds = load_cifar10_batches(tmp_path)
    assert ds.classes == CIFAR10_CLASSES
    assert ds.test_y.tolist() == batch[b"labels"]


class _Py2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2 `str` (BINSTRING opcodes), as the originals' cPickle did."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


def test_cifar_python2_style_pickle(tmp_path):
    batches = _write_cifar(tmp_path)
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(batches["data_batch_5"])
    raw = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")  # numpy 1 name
    assert b"cnumpy.core.multiarray\n_reconstruct" in raw and b"_codecs" not in raw
    (tmp_path / "data_batch_5").write_bytes(raw)
    ds = load_cifar10_batches(tmp_path)
    assert np.array_equal(ds.train_x[16:].reshape(4, -1).numpy(), batches["data_batch_5"][b"data"])


def test_cifar_missing_batch_names_file(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10_batches(tmp_path)


def test_cifar_no_batches_at_all(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_cifar10_batches(tmp_path)


def test_cifar_corrupt_pickle_names_file(tmp_path):
    _write_cifar(tmp_path)
    raw = (tmp_path / "data_batch_2").read_bytes()
    (tmp_path / "data_batch_2").write_bytes(raw[: len(raw) // 2])  # truncated download
    with pytest.raises(ValueError, match="data_batch_2"):
        load_cifar10_batches(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(b"this is not a pickle at all")
    with pytest.raises(ValueError, match="data_batch_2"):
        load_cifar10_batches(tmp_path)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.update({b"data": np.zeros((4, 3000), np.uint8)}),  # wrong row length
        lambda b: b.update({b"data": np.zeros((4, 3072), np.float32)}),  # wrong dtype
        lambda b: b.update({b"labels": [0, 1, 2]}),  # 3 labels for 4 rows
        lambda b: b.update({b"labels": [0, 1, 2, 10]}),  # label out of range
        lambda b: b.pop(b"labels"),
    ],
)
def test_cifar_bad_content_names_file(tmp_path, change):
    _write_cifar(tmp_path)
    batch = _batch(4, 0)
    change(batch)
    _write_pickle(tmp_path / "data_batch_4", batch)
    with pytest.raises(ValueError, match="data_batch_4"):
        load_cifar10_batches(tmp_path)


class _Evil:
    """Pickles as a call to os.system: loading it with plain pickle would run the command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_reduce_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    _write_cifar(tmp_path)
    batch = _batch(4, 0)
    batch[b"labels"] = _Evil(marker)
    _write_pickle(tmp_path / "data_batch_1", batch)
    with pytest.raises(ValueError, match=r"data_batch_1.*forbidden global .*system"):
        load_cifar10_batches(tmp_path)
    assert not marker.exists()


def test_hand_written_global_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()  # protocol 0: os.system("touch ...")
    with pytest.raises(pickle.UnpicklingError, match="forbidden global 'os.system'"):
        safe_load(io.BytesIO(payload))
    for module, name in (("builtins", "eval"), ("numpy", "load"), ("subprocess", "Popen")):
        with pytest.raises(pickle.UnpicklingError, match=f"{module}.{name}"):
            safe_load(io.BytesIO(f"c{module}\n{name}\n(S'1'\ntR.".encode()))
    assert not marker.exists()


def test_codecs_encode_only_latin1():
    # protocol 2 bytes are `_codecs.encode(str, "latin1")`; any other codec is refused
    bad = b"c_codecs\nencode\n(X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13tR."
    with pytest.raises(pickle.UnpicklingError, match="codec"):
        safe_load(io.BytesIO(bad))


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_safe_load_roundtrips_numpy_arrays(protocol):
    obj = {b"a": np.arange(12, dtype=np.uint8).reshape(3, 4), b"b": np.linspace(0, 1, 5)}
    obj[b"c"] = [b"x", 1, 2.5]
    out = safe_load(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
    assert np.array_equal(out[b"a"], obj[b"a"]) and out[b"a"].dtype == np.uint8
    assert np.array_equal(out[b"b"], obj[b"b"])
    assert out[b"c"] == [b"x", 1, 2.5]


# --------------------------------------------------------------------------- idx (Fashion-MNIST)


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def _write_idx_set(root: Path, gz: bool, n_train: int = 5, n_test: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.randint(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.randint(0, 10, n_test),
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        raw = _idx_bytes(arr)
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (root / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_gzip_or_not(tmp_path, gz):
    arrays = _write_idx_set(tmp_path, gz)
    ds = load_fashion_mnist(tmp_path)
    assert ds.train_x.shape == (5, 1, 28, 28) and ds.test_x.shape == (3, 1, 28, 28)
    assert np.array_equal(ds.train_x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert ds.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10


def test_idx_corrupt_header_names_file(tmp_path):
    _write_idx_set(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    raw = bytearray(path.read_bytes())
    raw[0] = 0x12  # bad magic
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*magic"):
        load_fashion_mnist(tmp_path)
    raw[0] = 0
    raw[3] = 2  # wrong number of dimensions
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*dimensions"):
        load_fashion_mnist(tmp_path)
    raw[3] = 3
    path.write_bytes(bytes(raw[:-10]))  # truncated data
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path)


def test_idx_label_count_mismatch_and_missing_file(tmp_path):
    _write_idx_set(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(np.zeros(7))))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").exists(),
    reason=f"Debian package dataset-fashion-mnist not installed (no files in {FASHION})",
)
def test_real_fashion_mnist():
    ds = load_images("fashion_mnist")
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.train_y).tolist() == [6000] * 10


# --------------------------------------------------------------------------- ImageFolder and tar


def _write_folder(root: Path, size=(5, 4), per_class=(3, 2)) -> dict[str, np.ndarray]:
    """train/{cat,ant}/ and test/{cat,ant}/ of PNGs (W x H = size); one greyscale image."""
    rng = np.random.RandomState(1)
    pixels = {}
    for split, n in zip(("train", "test"), per_class):
        for cls in ("cat", "ant"):  # created unsorted on purpose
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                arr = rng.randint(0, 256, (size[1], size[0], 3)).astype(np.uint8)
                path = root / split / cls / f"{i:02d}.png"
                if split == "train" and cls == "ant" and i == 1:
                    arr = np.repeat(arr[:, :, :1], 3, axis=2)
                    Image.fromarray(arr[:, :, 0], mode="L").save(path)
                else:
                    Image.fromarray(arr).save(path)
                pixels[f"{split}/{cls}/{i:02d}"] = arr
    (root / "train" / "cat" / "notes.txt").write_text("not an image, ignored")
    return pixels


def _check_folder_dataset(ds: ImageDataset, pixels: dict[str, np.ndarray]) -> None:
    assert ds.classes == ["ant", "cat"]
    assert ds.train_x.shape == (6, 3, 4, 5) and ds.test_x.shape == (4, 3, 4, 5)
    assert ds.train_y.tolist() == [0, 0, 0, 1, 1, 1] and ds.test_y.tolist() == [0, 0, 1, 1]
    assert np.array_equal(ds.train_x[1].permute(1, 2, 0).numpy(), pixels["train/ant/01"])  # grey -> RGB
    assert np.array_equal(ds.train_x[3].permute(1, 2, 0).numpy(), pixels["train/cat/00"])
    assert np.array_equal(ds.test_x[3].permute(1, 2, 0).numpy(), pixels["test/cat/01"])


def test_image_folder_directory(tmp_path):
    pixels = _write_folder(tmp_path / "pets")
    _check_folder_dataset(load_image_folder(tmp_path / "pets"), pixels)
    small = load_image_folder(tmp_path / "pets", limit_per_class=1)
    assert small.train_y.tolist() == [0, 1] and small.test_y.tolist() == [0, 1]
    assert np.array_equal(small.train_x[1].permute(1, 2, 0).numpy(), pixels["train/cat/00"])
    assert load_images("cifar10", tmp_path / "pets").name == "cifar10"  # folder root -> folder reader


@pytest.mark.parametrize("prefix", ["", "pets/"])
def test_image_folder_tar_gz(tmp_path, prefix):
    pixels = _write_folder(tmp_path / "pets")
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("test", "train"):  # test first: member order must not matter
            tar.add(tmp_path / "pets" / split, arcname=prefix + split)
    ds = load_images("image_folder", archive)
    _check_folder_dataset(ds, pixels)
    assert ds.name == "pets"
    small = load_image_folder(archive, limit_per_class=2)
    assert small.train_x.shape[0] == 4 and small.test_x.shape[0] == 4


def test_image_folder_inconsistent_size_names_file(tmp_path):
    _write_folder(tmp_path)
    bad = tmp_path / "train" / "cat" / "01.png"
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(bad)
    with pytest.raises(ValueError, match=r"train/cat/01\.png.*size"):
        load_image_folder(tmp_path)


def test_image_folder_bad_layouts(tmp_path):
    _write_folder(tmp_path / "a")
    (tmp_path / "a" / "test" / "bee").mkdir()
    with pytest.raises(ValueError, match="only in test: \\['bee'\\]"):
        load_image_folder(tmp_path / "a")
    _write_folder(tmp_path / "b")
    (tmp_path / "b" / "test" / "cat" / "00.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"test/cat/00\.png.*decode"):
        load_image_folder(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="test"):
        (tmp_path / "c" / "train" / "x").mkdir(parents=True)
        load_image_folder(tmp_path / "c")
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "nowhere")


@pytest.mark.skipif(not CIFAR_JPEG.exists(), reason=f"shared CIFAR-10 JPEG tarball not found at {CIFAR_JPEG}")
def test_shared_cifar10_jpeg_subset():
    ds = load_images("cifar10", CIFAR_JPEG, limit_per_class=5)
    assert ds.classes == CIFAR10_CLASSES
    assert ds.train_x.shape == (50, 3, 32, 32) and ds.test_x.shape == (50, 3, 32, 32)
    assert torch.bincount(ds.train_y).tolist() == [5] * 10
    assert 0.2 < ds.train_x.float().mean().item() / 255 < 0.8


# --------------------------------------------------------------------------- digits and dispatch


def test_digits_bundled_and_deterministic():
    ds = load_images("digits")
    assert ds.train_x.shape == (1497, 1, 8, 8) and ds.test_x.shape == (300, 1, 8, 8)
    assert int(ds.train_x.max()) == 255 and int(ds.train_x.min()) == 0
    assert set(ds.train_y.unique().tolist()) == set(range(10))
    again = load_digits()
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.test_y, ds.test_y)


def test_load_images_unknown_name_lists_known():
    with pytest.raises(ValueError, match="unknown image dataset 'mnist'.*" + ".*".join(KNOWN_DATASETS)):
        load_images("mnist")
    with pytest.raises(ValueError, match="needs a root"):
        load_images("cifar10")


# --------------------------------------------------------------------------- splits and statistics


def _indexed_dataset(n: int = 50, c: int = 1, hw: int = 6) -> ImageDataset:
    """Image i is filled with value i, so images identify themselves."""
    x = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, c, hw, hw).contiguous()
    y = torch.arange(n) % 3
    return ImageDataset(x, y, x[:4].clone(), y[:4].clone(), ["a", "b", "c"], "toy")


def test_split_train_valid_sizes_disjoint_deterministic():
    ds = _indexed_dataset()
    tx, ty, vx, vy = split_train_valid(ds, 10, seed=3)
    assert tx.shape[0] == 40 and vx.shape[0] == 10 and ty.shape == (40,) and vy.shape == (10,)
    train_ids, valid_ids = set(tx[:, 0, 0, 0].tolist()), set(vx[:, 0, 0, 0].tolist())
    assert not train_ids & valid_ids and len(train_ids | valid_ids) == 50
    assert torch.equal(ty, tx[:, 0, 0, 0].long() % 3)  # labels follow their images
    assert torch.equal(split_train_valid(ds, 10, seed=3)[2], vx)
    assert not torch.equal(split_train_valid(ds, 10, seed=4)[2], vx)
    with pytest.raises(ValueError, match="num_valid"):
        split_train_valid(ds, 50, seed=0)


def test_channel_stats_matches_direct_computation():
    x = torch.randint(0, 256, (37, 3, 5, 5), dtype=torch.uint8)
    mean, std = channel_stats(x, chunk=8)
    ref = x.double().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    assert torch.allclose(mean.double(), ref.mean(1), atol=1e-6)
    assert torch.allclose(std.double(), ref.std(1, unbiased=False), atol=1e-6)


# --------------------------------------------------------------------------- on-device batches


def _batches(x, y, **kw):
    # mean 0, std 1: a batch is exactly x / 255, easy to compare
    return ImageBatches(x, y, [0.0] * x.shape[1], [1.0] * x.shape[1], **kw)


def test_epoch_shapes_coverage_and_determinism():
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(50)
    b = _batches(x, y, batch_size=16, crop_padding=2, flip=True, cutout=3)
    assert b.num_batches == 4 and len(b) == 4
    out = list(b.epoch(torch.Generator().manual_seed(0)))
    assert [imgs.shape[0] for imgs, _ in out] == [16, 16, 16, 2]
    assert all(imgs.shape[1:] == (3, 8, 8) and imgs.dtype == torch.float32 for imgs, _ in out)
    assert sorted(torch.cat([lab for _, lab in out]).tolist()) == list(range(50))
    again = list(b.epoch(torch.Generator().manual_seed(0)))
    assert all(torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]) for a, c in zip(out, again))
    other = list(b.epoch(torch.Generator().manual_seed(1)))
    assert not torch.equal(out[0][1], other[0][1])
    dropped = _batches(x, y, batch_size=16, drop_last=True)
    assert dropped.num_batches == 3 and len(list(dropped.epoch(torch.Generator()))) == 3


def test_normalisation_uses_mean_and_std():
    x = torch.full((4, 2, 3, 3), 51, dtype=torch.uint8)
    b = ImageBatches(x, torch.zeros(4, dtype=torch.long), [0.1, 0.2], [0.5, 0.25], batch_size=4)
    imgs, _ = next(b.fixed_batches(1))
    assert torch.allclose(imgs[:, 0], torch.tensor((0.2 - 0.1) / 0.5))
    assert torch.allclose(imgs[:, 1], torch.tensor(0.0))


def test_flip_really_flips():
    x = torch.randint(0, 256, (64, 3, 4, 6), dtype=torch.uint8)
    b = _batches(x, torch.arange(64), batch_size=64, flip=True)
    imgs, labels = next(b.epoch(torch.Generator().manual_seed(0)))
    orig = x[labels].float() / 255
    same = (imgs == orig).flatten(1).all(1)
    flipped = (imgs == orig.flip(3)).flatten(1).all(1)
    assert bool((same | flipped).all())
    assert 10 < int((flipped & ~same).sum()) < 54  # about half were mirrored


def test_cutout_zeroes_a_square():
    x = torch.full((32, 1, 12, 12), 255, dtype=torch.uint8)
    b = _batches(x, torch.zeros(32, dtype=torch.long), batch_size=32, cutout=4)
    imgs, _ = next(b.epoch(torch.Generator().manual_seed(0)))
    assert set(imgs.unique().tolist()) <= {0.0, 1.0}
    full_squares = 0
    for img in imgs[:, 0]:
        rows, cols = (img == 0).nonzero(as_tuple=True)
        assert rows.numel() > 0  # every image got a (possibly clipped) hole
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert h <= 4 and w <= 4 and rows.numel() == h * w  # one solid rectangle
        full_squares += h == 4 and w == 4
    assert full_squares > 0


def test_crop_keeps_content_shifted():
    n, h, w, p = 16, 6, 7, 2
    x = torch.randint(1, 256, (n, 2, h, w), dtype=torch.uint8)  # no zeros: padding is recognisable
    b = _batches(x, torch.arange(n), batch_size=n, crop_padding=p)
    imgs, labels = next(b.epoch(torch.Generator().manual_seed(5)))
    offsets = set()
    for img, lab in zip(imgs, labels):
        padded = torch.nn.functional.pad(x[lab].float() / 255, (p, p, p, p))
        matches = [
            (dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
            if torch.equal(img, padded[:, dy : dy + h, dx : dx + w])
        ]  # fmt: skip
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 3  # offsets vary across the batch


def test_fixed_batches_are_ordered_and_unaugmented():
    x = torch.randint(0, 256, (10, 3, 5, 5), dtype=torch.uint8)
    b = _batches(x, torch.arange(10), batch_size=4, crop_padding=2, flip=True, cutout=2)
    fixed = list(b.fixed_batches(2))
    assert len(fixed) == 2 and torch.equal(fixed[1][1], torch.arange(4, 8))
    assert torch.equal(fixed[0][0], x[:4].float() / 255)
    assert len(list(b.fixed_batches())) == 3
    with pytest.raises(ValueError, match="fixed_batches"):
        list(b.fixed_batches(4))


def test_bad_batches_arguments():
    x = torch.zeros((4, 3, 2, 2), dtype=torch.uint8)
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="3 values"):
        ImageBatches(x, y, [0.5], [0.2], batch_size=2)
    with pytest.raises(ValueError, match="uint8"):
        ImageBatches(x.float(), y, [0.5] * 3, [0.2] * 3, batch_size=2)
    with pytest.raises(ValueError, match="no full batch"):
        ImageBatches(x, y, [0.5] * 3, [0.2] * 3, batch_size=8, drop_last=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_match_cpu():
    x = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(40)
    kw = dict(batch_size=16, crop_padding=2, flip=True, cutout=3)
    cpu = list(_batches(x, y, **kw).epoch(torch.Generator().manual_seed(0)))
    gpu_batches = _batches(x, y, device="cuda", **kw)
    gpu = list(gpu_batches.epoch(torch.Generator().manual_seed(0)))  # CPU generator: same numbers
    assert gpu[0][0].device.type == "cuda"
    for (ci, cl), (gi, gl) in zip(cpu, gpu):
        assert torch.equal(cl, gl.cpu()) and torch.allclose(ci, gi.cpu())
    cuda_gen = torch.Generator(device="cuda").manual_seed(0)
    out = list(gpu_batches.epoch(cuda_gen))
    assert sorted(torch.cat([lab for _, lab in out]).tolist()) == list(range(40))
    mean, std = channel_stats(x.cuda())
    assert mean.device.type == "cuda" and torch.allclose(mean.cpu(), channel_stats(x)[0])


def test_split_seed_fixes_the_data_whatever_the_run_seed():
    from enas.build import build_task
    data = {"name": "digits", "num_valid": 297, "batch_size": 32, "train_limit": 500, "test_limit": 100}
    fixed = [build_task({**data, "split_seed": 3}, "cpu", seed) for seed in (0, 1)]
    free = [build_task({**data, "split_seed": None}, "cpu", seed) for seed in (0, 1)]
    for split in ("train", "valid", "test"):
        assert torch.equal(fixed[0].splits[split].x, fixed[1].splits[split].x)
        assert not torch.equal(free[0].splits[split].x, free[1].splits[split].x)
    # the run's seed still orders the training batches
    first = [next(task.train_batches(0))[1] for task in fixed]
    assert not torch.equal(first[0], first[1])


def test_experiment_converter_writes_cifar_batches_with_every_image(tmp_path):
    """experiments/search_quality/jpeg_to_batches: an ImageFolder of 32x32 images -> CIFAR-10 python
    batches that data=cifar10 reads back: the same images and labels, shuffled."""
    from experiments.search_quality.jpeg_to_batches import write_batches
    pixels = _write_folder(tmp_path / "folder", size=(32, 32), per_class=(6, 3))
    folder = write_batches(str(tmp_path / "folder"), str(tmp_path / "out"))
    ds = load_cifar10_batches(folder)
    assert ds.classes == ["ant", "cat"] and ds.train_x.shape == (12, 3, 32, 32) and ds.test_x.shape == (6, 3, 32, 32)

    def as_set(x, y):
        return sorted((int(label), image.numpy().tobytes()) for image, label in zip(x, y))

    for split, x, y in (("train", ds.train_x, ds.train_y), ("test", ds.test_x, ds.test_y)):
        expected = sorted((["ant", "cat"].index(key.split("/")[1]), np.ascontiguousarray(arr.transpose(2, 0, 1)).tobytes())
                          for key, arr in pixels.items() if key.startswith(split))
        assert as_set(x, y) == expected
    assert ds.test_y.tolist() != sorted(ds.test_y.tolist()) or len(set(ds.test_y.tolist())) == 1   # not by class
