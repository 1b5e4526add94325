"""Writes a small class-folder image dataset (`root/<class>/*.jpg|png`) for tests: the layout
`nasnet_tf.data.load_dataset` reads, without the shared CIFAR-10 copy."""

import pathlib

import numpy as np


def write_image_folder(root, classes=("airplane", "automobile", "bird"), per_class=10, size=32,
                       fmt="jpg", seed=0):
    """Writes `per_class` random RGB images of `size`x`size` per class; returns the root.

    Each class gets its own mean colour, so a classifier has something to learn.
    """
    from PIL import Image

    root = pathlib.Path(root)
    rng = np.random.RandomState(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            base = 40 + 60 * k
            pixels = np.clip(base + rng.randint(-40, 40, (size, size, 3)), 0, 255)
            Image.fromarray(pixels.astype("uint8")).save(root / name / f"{name}_{i:03d}.{fmt}")
    return root
