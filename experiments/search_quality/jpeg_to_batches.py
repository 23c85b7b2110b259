"""Decode the JPEG copy of CIFAR-10 once into CIFAR-10 python batches (data=cifar10 reads them fast).

    python -m experiments.search_quality.jpeg_to_batches ../shared/data/cifar10_jpeg/cifar10_jpeg_q75.tar.gz \
        /tmp/cifar10_batches

Every training of the search-quality harness reads its data again; decoding 60,000 JPEGs each
time would cost more than the training of a small network. The pixels are those of the lossy
JPEG copy (not the original CIFAR-10): the batches are written in the original layout (uint8
rows of 1,024 R, G, B values; 5 training batches of 10,000 images and a test batch).
"""

from __future__ import annotations

import argparse
import os
import pickle

import numpy as np

from enas.data.images import load_image_folder


def write_batches(source: str, out_dir: str) -> str:
    """Decode `source` (ImageFolder tree or its tar.gz) into out_dir/cifar-10-batches-py/; that folder."""
    data = load_image_folder(source)
    folder = os.path.join(out_dir, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    train_x = data.train_x.reshape(len(data.train_x), -1).numpy()   # (50000, 3072) uint8
    train_y = data.train_y.numpy()
    order = np.random.default_rng(0).permutation(len(train_x))     # classes interleaved, as the original
    train_x, train_y = train_x[order], train_y[order]
    for i, part in enumerate(np.array_split(np.arange(len(train_x)), 5)):    # 10,000 each for CIFAR-10
        _dump(os.path.join(folder, f"data_batch_{i + 1}"), train_x[part], train_y[part])
    test_order = np.random.default_rng(1).permutation(len(data.test_x))
    _dump(os.path.join(folder, "test_batch"), data.test_x.reshape(len(data.test_x), -1).numpy()[test_order],
          data.test_y.numpy()[test_order])
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({"label_names": list(data.classes)}, f)
    return folder


def _dump(path: str, x: np.ndarray, y: np.ndarray) -> None:
    with open(path, "wb") as f:
        pickle.dump({"data": np.ascontiguousarray(x, dtype=np.uint8), "labels": [int(v) for v in y]}, f)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    print(write_batches(args.source, args.out_dir))
