"""Write a tiny image folder and a tiny PTB-format corpus to try the examples (seconds, no download).

    python examples/own_network/make_toy_data.py /tmp/toy      # -> /tmp/toy/images, /tmp/toy/corpus
"""

import os
import sys

import numpy as np
from PIL import Image


def make_images(root, classes=("circle", "square", "stripe"), per_class=24, size=16, seed=0):
    """root/{train,test}/<class>/*.png: three shapes with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    masks = {"circle": (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2,
             "square": (abs(yy - size / 2) < size / 4) & (abs(xx - size / 2) < size / 4),
             "stripe": (xx // 3) % 2 == 0}
    for split, n in (("train", per_class), ("test", per_class // 3)):
        for name in classes:
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 60, (size, size, 3)) + 180 * masks[name][..., None]
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(os.path.join(root, split, name, f"{i}.png"))


def make_corpus(root, sentences=(400, 60, 60), seed=0):
    """root/ptb.{train,valid,test}.txt: sentences of a small grammar, one a line (PTB format)."""
    rng = np.random.default_rng(seed)
    subjects, verbs, objects = ["the cat", "a dog", "the bird"], ["sees", "eats", "likes"], ["fish", "seeds", "a ball"]
    os.makedirs(root, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), sentences):
        lines = [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}" for _ in range(n)]
        with open(os.path.join(root, f"ptb.{split}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "toy_data"
    make_images(os.path.join(out, "images"))
    make_corpus(os.path.join(out, "corpus"))
    print(f"wrote {out}/images (train/, test/) and {out}/corpus (ptb.train.txt, ptb.valid.txt, ptb.test.txt)")
