"""Image classification data: readers for small datasets and on-device batching with augmentation.

Readers return an `ImageDataset` of uint8 tensors (CPU), whatever the source:

    load_cifar10_batches(root)   original python batches (cifar-10-batches-py/), read with a safe unpickler
    load_image_folder(root)      train/<class>/*, test/<class>/* as a folder or a .tar(.gz) archive
    load_fashion_mnist(root)     idx files, gzipped or not
    load_digits()                scikit-learn's bundled 8x8 digits (no download)
    load_images(name, root)      dispatch by name

Small images are cheap, so training keeps the whole split on the device and augments
there in batched tensor ops (no DataLoader, no Python loop per image):

    uint8 (N, C, H, W) on device --randperm--> index batch (B,) --> float, normalise
        --> random crop of the zero-padded batch (gather with per-image offsets)
        --> horizontal flip (torch.where on a (B,) mask)
        --> cutout (a (B, H, W) square mask)      --> (images (B, C, H, W), labels (B,))

Padding and cutout write 0 *after* normalisation, i.e. the dataset mean colour, as in
the ENAS and DARTS reference code.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from enas.data.safe_pickle import safe_load

__all__ = [
    "ImageDataset",
    "load_cifar10_batches",
    "load_image_folder",
    "load_fashion_mnist",
    "load_digits",
    "load_images",
    "KNOWN_DATASETS",
    "split_train_valid",
    "channel_stats",
    "ImageBatches",
    "random_crop",
    "random_flip",
    "random_cutout",
]

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


# --------------------------------------------------------------------------- dataset


@dataclass
class ImageDataset:
    """A labelled image dataset as uint8 tensors: x (N, C, H, W) uint8, y (N,) int64."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    name: str

    def __post_init__(self) -> None:
        _check_split(self.name, "train", self.train_x, self.train_y, len(self.classes))
        _check_split(self.name, "test", self.test_x, self.test_y, len(self.classes))
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise ValueError(
                f"dataset {self.name!r}: train images {tuple(self.train_x.shape[1:])} and test "
                f"images {tuple(self.test_x.shape[1:])} differ in shape"
            )

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)


def _check_split(name: str, split: str, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
    """Raise ValueError unless x is uint8 (N, C, H, W) and y int64 (N,) with labels < num_classes."""
    where = f"dataset {name!r} {split} split"
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.dim() != 4:
        raise ValueError(f"{where}: images must be a uint8 tensor (N, C, H, W), got {_describe(x)}")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.dim() != 1:
        raise ValueError(f"{where}: labels must be an int64 tensor (N,), got {_describe(y)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{where}: {x.shape[0]} images but {y.shape[0]} labels")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: no images")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"{where}: labels span [{lo}, {hi}] but there are {num_classes} classes")


def _describe(t: Any) -> str:
    if isinstance(t, torch.Tensor):
        return f"{t.dtype} tensor of shape {tuple(t.shape)}"
    if isinstance(t, np.ndarray):
        return f"{t.dtype} array of shape {t.shape}"
    return type(t).__name__


# --------------------------------------------------------------------------- CIFAR-10 python batches


def load_cifar10_batches(root: str | Path) -> ImageDataset:
    """Read CIFAR-10 in its original python format: data_batch_1..5, test_batch, batches.meta.

    `root` is the `cifar-10-batches-py` folder or its parent. Each batch is a pickled dict
    {b"data": uint8 (n, 3072) rows of 1024 R, 1024 G, 1024 B values, b"labels": [n ints]};
    it is read with a restricted unpickler that refuses every global except numpy arrays.
    Without batches.meta the standard CIFAR-10 class names are used.
    """
    folder = _find_cifar_folder(Path(root))
    classes = _read_cifar_meta(folder / "batches.meta")
    train = [_read_cifar_batch(folder / f"data_batch_{i}", len(classes)) for i in range(1, 6)]
    test_x, test_y = _read_cifar_batch(folder / "test_batch", len(classes))
    train_x = torch.cat([x for x, _ in train])
    train_y = torch.cat([y for _, y in train])
    return ImageDataset(train_x, train_y, test_x, test_y, classes, "cifar10")


def _find_cifar_folder(root: Path) -> Path:
    """`root` itself when it holds the batches, else `root/cifar-10-batches-py`."""
    if (root / "data_batch_1").exists() or root.name == "cifar-10-batches-py":
        return root
    if (root / "cifar-10-batches-py").is_dir():
        return root / "cifar-10-batches-py"
    raise FileNotFoundError(
        f"no image data found in {root}: the layouts accepted are CIFAR-10 python batches "
        f"({root}/data_batch_1 or {root}/cifar-10-batches-py/data_batch_1), an ImageFolder tree "
        f"({root}/train/<class>/<image> and {root}/test/<class>/<image>), a .tar or .tar.gz of that tree, "
        f"and for data=fashion_mnist the idx files (train-images-idx3-ubyte[.gz], ...)"
    )


CIFAR_FORMAT = "a CIFAR-10 python batch (a pickled dict of 'data' and 'labels')"


def _unpickle(path: Path) -> Any:
    """Load one pickle safely; any problem becomes an error naming `path`."""
    if not path.is_file():
        raise FileNotFoundError(f"missing CIFAR-10 batch file: {path}")
    try:
        with open(path, "rb") as f:
            return safe_load(f)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: refused or corrupt pickle: {e}; expected {CIFAR_FORMAT}") from e
    except Exception as e:  # truncated files raise EOFError, garbage raises many kinds
        raise ValueError(f"{path}: corrupt pickle ({type(e).__name__}: {e}); expected {CIFAR_FORMAT}") from e


def _get(d: dict, key: str) -> Any:
    """d[b"key"] (Python 2 pickles) or d["key"] (Python 3 pickles); None when absent."""
    if key.encode() in d:
        return d[key.encode()]
    return d.get(key)


def _read_cifar_meta(path: Path) -> list[str]:
    """Class names from batches.meta, or the standard CIFAR-10 names when it is absent."""
    if not path.exists():
        return list(CIFAR10_CLASSES)
    meta = _unpickle(path)
    names = _get(meta, "label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, (bytes, str)) for n in names):
        raise ValueError(f"{path}: expected a dict with a 'label_names' list of strings")
    return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]


def _read_cifar_batch(path: Path, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch file -> images uint8 (n, 3, 32, 32), labels int64 (n,)."""
    batch = _unpickle(path)
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be a uint8 array (n, 3072), got {_describe(data)}")
    if labels is None:
        raise ValueError(f"{path}: no 'labels' entry")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: 'labels' must be {data.shape[0]} integers (one per row of 'data'), "
            f"got {_describe(labels)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{path}: labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]"
        )
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())  # rows are channel-major 32x32 planes
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# --------------------------------------------------------------------------- ImageFolder (dir or tar)


def load_image_folder(
    root: str | Path, limit_per_class: int | None = None, name: str | None = None
) -> ImageDataset:
    """Read an ImageFolder layout, train/<class>/* and test/<class>/*, from a folder or a tar archive.

    Classes are the sorted subfolder names of train/ (test/ must have the same). Images
    are decoded with Pillow to RGB (3 channels) and must all share one size. Files are
    read in sorted path order; `limit_per_class` keeps the first n of each class and split.
    An archive (.tar, .tar.gz, .tgz, ...) is streamed member by member, never extracted.
    """
    root = Path(root)
    if limit_per_class is not None and limit_per_class < 1:
        raise ValueError(f"limit_per_class must be >= 1 or None, got {limit_per_class}")
    if root.is_file() and root.name.endswith(ARCHIVE_SUFFIXES):
        files = _list_tar(root)
    elif root.is_dir():
        files = _list_dir(root)
    elif root.exists():
        raise ValueError(f"{root}: not a folder nor a tar archive ({', '.join(ARCHIVE_SUFFIXES)})")
    else:
        raise FileNotFoundError(f"image folder or archive not found: {root}")
    classes = _folder_classes(root, files)
    splits = {}
    for split in ("train", "test"):
        items = []  # (label, where, encoded bytes)
        for label, cls in enumerate(classes):
            names = sorted(files[split][cls])[:limit_per_class]
            items += [(label, where, files[split][cls][where]) for where in names]
        splits[split] = _decode_all(items)
    name = name or _dataset_name(root)
    return ImageDataset(*splits["train"], *splits["test"], classes, name)


def _dataset_name(root: Path) -> str:
    base = root.name
    for suffix in ARCHIVE_SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _list_dir(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{split: {class: {path string: Path}}} for the image files of a folder tree."""
    files: dict[str, dict[str, dict[str, Any]]] = {}
    for split in ("train", "test"):
        split_dir = root / split
        if not split_dir.is_dir():
            raise FileNotFoundError(
                f"{root}: missing folder {split_dir} (expected train/<class>/, test/<class>/)"
            )
        files[split] = {}
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            images = [p for p in class_dir.iterdir() if p.is_file() and _is_image_name(p.name)]
            files[split][class_dir.name] = {str(p): p for p in images}
    return files


def _list_tar(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{split: {class: {'archive:member': bytes}}} for the image members of a tar archive.

    Member paths are [prefix/]split/class/file; the archive is read once as a stream.
    """
    files: dict[str, dict[str, dict[str, Any]]] = {"train": {}, "test": {}}
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                if member.isdir() and len(parts) >= 2 and parts[-2] in files:
                    files[parts[-2]].setdefault(parts[-1], {})  # a class folder, maybe empty
                if not member.isfile() or not _is_image_name(parts[-1]):
                    continue
                if len(parts) < 3 or parts[-3] not in files:
                    raise ValueError(
                        f"{path}: member {member.name!r} is not under train/<class>/ or test/<class>/"
                    )
                data = tar.extractfile(member).read()
                files[parts[-3]].setdefault(parts[-2], {})[f"{path}:{member.name}"] = data
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path}: cannot read tar archive ({type(e).__name__}: {e}); expected a .tar or "
                         f".tar.gz of train/<class>/ and test/<class>/ image files") from e
    return files


def _folder_classes(root: Path, files: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Sorted class names of train/; test/ must have the same; no class may be empty."""
    classes = sorted(files["train"])
    if not classes:
        raise ValueError(f"{root}: no class folders under train/")
    if sorted(files["test"]) != classes:
        only_train = sorted(set(classes) - set(files["test"]))
        only_test = sorted(set(files["test"]) - set(classes))
        raise ValueError(
            f"{root}: train/ and test/ have different classes "
            f"(only in train: {only_train}, only in test: {only_test})"
        )
    for split in ("train", "test"):
        for cls in classes:
            if not files[split][cls]:
                raise ValueError(f"{root}: no images in {split}/{cls}/")
    return classes


def _decode_all(items: list[tuple[int, str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode (label, where, Path or bytes) items -> uint8 (N, 3, H, W), int64 (N,).

    The first image fixes the size; any other size is an error naming the file.
    """
    from PIL import Image  # Pillow is needed only by this reader

    first = None
    out = None
    for i, (_, where, source) in enumerate(items):
        try:
            handle = open(source, "rb") if isinstance(source, Path) else io.BytesIO(source)
            with handle, Image.open(handle) as im:
                arr = np.asarray(im.convert("RGB"))  # (H, W, 3) uint8
        except Exception as e:  # Pillow raises many kinds on bad files
            raise ValueError(f"{where}: cannot decode image ({type(e).__name__}: {e}); expected an image "
                             f"file ({', '.join(IMAGE_EXTENSIONS)}) of an image folder") from e
        if out is None:
            first = where
            out = np.empty((len(items), *arr.shape), dtype=np.uint8)  # (N, H, W, 3)
        elif arr.shape != out.shape[1:]:
            raise ValueError(
                f"{where}: image size {arr.shape[1]}x{arr.shape[0]} differs from "
                f"{out.shape[2]}x{out.shape[1]} of {first}"
            )
        out[i] = arr
    x = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
    y = torch.tensor([label for label, _, _ in items], dtype=torch.int64)
    return x, y


# --------------------------------------------------------------------------- Fashion-MNIST (idx)


def load_fashion_mnist(root: str | Path = FASHION_MNIST_ROOT) -> ImageDataset:
    """Read Fashion-MNIST (or MNIST) idx files: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
    t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]. Images come back as (N, 1, 28, 28).

    Debian's `dataset-fashion-mnist` package installs the gzipped files under
    /usr/share/datasets/fashion-mnist/.
    """
    root = Path(root)
    split = {}
    for key, prefix in (("train", "train"), ("test", "t10k")):
        images_path = _find_idx(root, f"{prefix}-images-idx3-ubyte")
        labels_path = _find_idx(root, f"{prefix}-labels-idx1-ubyte")
        images = _read_idx(images_path, ndim=3)  # (N, H, W)
        labels = _read_idx(labels_path, ndim=1)  # (N,)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}"
            )
        split[key] = (
            torch.from_numpy(images.copy()).unsqueeze(1),  # (N, 1, H, W)
            torch.from_numpy(labels.astype(np.int64)),
        )
    return ImageDataset(*split["train"], *split["test"], list(FASHION_MNIST_CLASSES), "fashion_mnist")


def _find_idx(root: Path, base: str) -> Path:
    """root/base or root/base.gz, whichever exists."""
    for path in (root / base, root / f"{base}.gz"):
        if path.is_file():
            return path
    raise FileNotFoundError(f"missing idx file: {root / base} (or {root / base}.gz)")


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an idx file of unsigned bytes: magic 0x0000 0x08 ndim, ndim big-endian uint32 sizes, data."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the idx file ({e.strerror or e})") from e
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file name says
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e}); expected a gzipped idx file") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an idx file (bad magic number {raw[:4].hex()}; expected 00000801 for "
                         f"labels or 00000803 for images)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: idx data type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    if raw[3] != ndim:
        raise ValueError(f"{path}: idx file has {raw[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(dims)
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: idx header says {dims} = {expected} bytes of data, file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


# --------------------------------------------------------------------------- digits (scikit-learn)


def load_digits(num_test: int = 300, seed: int = 0) -> ImageDataset:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16 scaled to 0..255), no download.

    Deterministic split: shuffle with `seed`, the first N - num_test are train, the rest test.
    Images come back as (N, 1, 8, 8).
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    labels = bunch.target.astype(np.int64)
    if not 0 < num_test < len(labels):
        raise ValueError(f"num_test must be in [1, {len(labels) - 1}], got {num_test}")
    order = np.random.RandomState(seed).permutation(len(labels))
    train, test = order[:-num_test], order[-num_test:]
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(labels)
    classes = [str(i) for i in range(10)]
    return ImageDataset(x[train], y[train], x[test], y[test], classes, "digits")


# --------------------------------------------------------------------------- dispatch

KNOWN_DATASETS = ("cifar10", "image_folder", "fashion_mnist", "digits")


def load_images(
    name: str, root: str | Path | None = None, limit_per_class: int | None = None
) -> ImageDataset:
    """Load the dataset `name` (one of KNOWN_DATASETS) from `root`.

    "cifar10" reads the python batches, or an ImageFolder folder/tar archive when `root`
    is one (e.g. shared/data/cifar10_jpeg/cifar10_jpeg_q75.tar.gz). `limit_per_class`
    applies to ImageFolder sources only.
    """
    if name not in KNOWN_DATASETS:
        raise ValueError(f"unknown image dataset {name!r}; known: {', '.join(KNOWN_DATASETS)}")
    if name == "digits":
        if root is not None:
            raise ValueError(f"dataset 'digits' is bundled with scikit-learn and takes no root (got {root})")
        return load_digits()
    if name == "fashion_mnist":
        return load_fashion_mnist(FASHION_MNIST_ROOT if root is None else root)
    if root is None:
        raise ValueError(f"dataset {name!r} needs a root (folder or archive)")
    root = Path(root)
    if name == "image_folder":
        return load_image_folder(root, limit_per_class)
    is_archive = root.is_file() and root.name.endswith(ARCHIVE_SUFFIXES)
    if is_archive or (root / "train").is_dir():
        return load_image_folder(root, limit_per_class, name="cifar10")
    return load_cifar10_batches(root)


# --------------------------------------------------------------------------- splits and statistics


def split_train_valid(
    ds: ImageDataset, num_valid: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hold out `num_valid` random training images (ENAS: 5000 of CIFAR-10's 50k).

    Returns (train_x, train_y, valid_x, valid_y).

    Deterministic for a seed; both parts keep the original order of the images.
    """
    n = ds.train_x.shape[0]
    if not 0 < num_valid < n:
        raise ValueError(f"num_valid must be in [1, {n - 1}] for {n} training images, got {num_valid}")
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=generator)
    valid = perm[:num_valid].sort().values.to(ds.train_x.device)
    train = perm[num_valid:].sort().values.to(ds.train_x.device)
    return ds.train_x[train], ds.train_y[train], ds.train_x[valid], ds.train_y[valid]


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W) on the [0, 1] scale.

    Sums run in float64 over chunks of images, so 50k CIFAR images never become one big float copy.
    Returns two float32 tensors (C,) on x's device.
    """
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[0] == 0:
        raise ValueError(f"channel_stats expects uint8 images (N, C, H, W), got {_describe(x)}")
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.float64, device=x.device)
    total_sq = torch.zeros(c, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk].to(torch.float64).div_(255.0)  # (n, C, H, W)
        total += part.sum(dim=(0, 2, 3))
        total_sq += part.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    var = (total_sq / count - mean.square()).clamp_min(0.0)
    return mean.float(), var.sqrt().float()


# --------------------------------------------------------------------------- on-device batches


class ImageBatches:
    """Shuffled, augmented, normalised mini-batches of images kept whole on one device.

    x: uint8 (N, C, H, W) and y: int64 (N,), moved to `device` (default: x's device);
    mean, std: (C,) on the [0, 1] scale. Augmentation (training only): `crop_padding` p > 0
    takes a random HxW crop of the image zero-padded by p; `flip` mirrors half of the
    images left-right; `cutout` L > 0 zeroes an LxL square (clipped at the border) at a
    random centre. All random numbers come from the generator passed to `epoch`.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        mean: torch.Tensor | list[float],
        std: torch.Tensor | list[float],
        batch_size: int,
        crop_padding: int = 0,
        flip: bool = False,
        cutout: int = 0,
        drop_last: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        _check_split("ImageBatches", "input", x, y, num_classes=int(y.max()) + 1 if y.numel() else 1)
        device = torch.device(device) if device is not None else x.device
        self.x = x.to(device)  # (N, C, H, W) uint8
        self.y = y.to(device)  # (N,) int64
        c = x.shape[1]
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=device).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=device).reshape(-1)
        if self.mean.numel() != c or self.std.numel() != c:
            raise ValueError(
                f"mean and std need {c} values (one per channel), "
                f"got {self.mean.numel()} and {self.std.numel()}"
            )
        if bool((self.std <= 0).any()):
            raise ValueError(f"std must be positive, got {self.std.tolist()}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if crop_padding < 0 or cutout < 0:
            raise ValueError(f"crop_padding and cutout must be >= 0, got {crop_padding} and {cutout}")
        self.batch_size = batch_size
        self.crop_padding = crop_padding
        self.flip = flip
        self.cutout = cutout
        self.drop_last = drop_last
        if self.num_batches == 0:
            raise ValueError(f"{x.shape[0]} images make no full batch of {batch_size} with drop_last=True")

    @property
    def device(self) -> torch.device:
        """Device that holds the images and produces the batches."""
        return self.x.device

    @property
    def num_batches(self) -> int:
        """Batches per epoch."""
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def epoch(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass in a random order, augmented: yields (images float32 (B, C, H, W), labels (B,)).

        The same generator state gives the same batches; the generator may live on the
        CPU or on the device (random numbers are drawn on its device, then moved).
        """
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"epoch needs a torch.Generator, got {type(generator).__name__}")
        n = self.x.shape[0]
        perm = torch.randperm(n, generator=generator, device=generator.device).to(self.device)
        for b in range(self.num_batches):
            idx = perm[b * self.batch_size : (b + 1) * self.batch_size]  # (B,)
            images = self._normalise(self.x[idx])
            yield self._augment(images, generator), self.y[idx]

    def fixed_batches(self, n: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The first `n` batches (all when None) in dataset order, unaugmented: for repeatable validation."""
        if n is None:
            n = self.num_batches
        if not 0 <= n <= self.num_batches:
            raise ValueError(f"fixed_batches: n must be in [0, {self.num_batches}], got {n}")
        for b in range(n):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield self._normalise(self.x[sl]), self.y[sl]

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 (x / 255 - mean) / std."""
        x = x.to(torch.float32).div_(255.0)
        return x.sub_(self.mean[:, None, None]).div_(self.std[:, None, None])

    def _augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Crop, flip, cutout on a normalised batch (B, C, H, W), all batched."""
        if self.crop_padding > 0:
            x = random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = random_flip(x, generator)
        if self.cutout > 0:
            x = random_cutout(x, self.cutout, generator)
        return x


def _draw_int(high: int, size: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Integers in [0, high), drawn on the generator's device and moved to `device`."""
    return torch.randint(0, high, (size,), generator=generator, device=generator.device).to(device)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random HxW crop of each image of x (B, C, H, W) zero-padded by `padding` on every side."""
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))  # (B, C, H+2p, W+2p)
    top = _draw_int(2 * padding + 1, b, generator, x.device)  # (B,)
    left = _draw_int(2 * padding + 1, b, generator, x.device)  # (B,)
    rows = top[:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = left[:, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]  # (B, 1, 1, 1)
    chan = torch.arange(c, device=x.device)[None, :, None, None]  # (1, C, 1, 1)
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image of x (B, C, H, W) left-right with probability 1/2."""
    mask = _draw_int(2, x.shape[0], generator, x.device).bool()  # (B,)
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def random_cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a size x size square at a random centre of each image of x (B, C, H, W)."""
    b, _, h, w = x.shape
    cy = _draw_int(h, b, generator, x.device)  # (B,) centres
    cx = _draw_int(w, b, generator, x.device)
    y0, x0 = cy - size // 2, cx - size // 2  # top-left corners, may be < 0
    ys = torch.arange(h, device=x.device)[None, :]  # (1, H)
    xs = torch.arange(w, device=x.device)[None, :]  # (1, W)
    in_y = (ys >= y0[:, None]) & (ys < y0[:, None] + size)  # (B, H)
    in_x = (xs >= x0[:, None]) & (xs < x0[:, None] + size)  # (B, W)
    mask = in_y[:, :, None] & in_x[:, None, :]  # (B, H, W)
    return x.masked_fill(mask[:, None], 0.0)
