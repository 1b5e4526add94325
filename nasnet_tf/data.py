"""Image classification datasets as `tf.data` pipelines: TFDS, class folders, NumPy, digits.

`load_dataset` reads any of four sources into an `ImageDataset`: a deterministic, seeded
train / validation split of decoded (and, where it fits, cached) images, plus the recipe's
per-epoch pipeline (shuffle, augment, normalise to [-1, 1], batch, prefetch with AUTOTUNE).

The pipelines need the `tensorflow` package; they feed Keras' `fit` under any backend.
"""

import dataclasses
import logging
import os
import pathlib

import numpy as np

from nasnet_tf import augment as aug
from nasnet_tf import validators

__all__ = ["ImageDataset", "load_dataset", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Cache decoded images in memory below this size ("auto"); above it, decode every epoch.
AUTO_CACHE_BYTES = 2 * 1024**3
CHANNELS = (1, 3)

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ImageDataset:
    """A dataset split into train and validation, with its training pipeline.

    Build one with `load_dataset`. `train` and `validation` are ready for `model.fit`;
    `train_epochs(start, stop)` gives the exact batches of epochs `start..stop-1`, which is how
    `nasnet_tf.training.train` resumes a killed run on the same data order and augmentation.

    Attributes:
        name: where the data came from.
        num_classes: the number of classes (labels are integers in `[0, num_classes)`).
        class_names: one name per class.
        image_shape: `(height, width, channels)` of the images the pipelines yield.
        train_size, validation_size: examples in each split.
        batch_size: batch size of `train` / `validation`.
        augment: `"cifar"`, `"imagenet"` or `"none"` (see `nasnet_tf.augment`).
        seed: the seed of the split, the shuffles and the augmentation.
        num_shards, shard_index: which share of every batch this process yields (see
            `shard`); 1 and 0 for the whole batch.
    """

    name: str
    num_classes: int
    class_names: tuple
    image_shape: tuple
    train_size: int
    validation_size: int
    batch_size: int
    augment: str
    seed: int
    shuffle_buffer: int
    cutout: int | None
    train_examples: object = dataclasses.field(repr=False)
    validation_examples: object = dataclasses.field(repr=False)
    num_shards: int = 1
    shard_index: int = 0

    @property
    def steps_per_epoch(self):
        """Full training batches per epoch (the last partial batch is dropped)."""
        return self.train_size // self.batch_size

    def with_batch_size(self, batch_size):
        """Returns a copy that batches `batch_size` examples (e.g. a global batch)."""
        _check_batch_size(batch_size)
        if batch_size > self.train_size:
            raise ValueError(
                f"`batch_size` must not exceed the {self.train_size} training examples. "
                f"Received: batch_size={batch_size}"
            )
        return dataclasses.replace(self, batch_size=batch_size)

    def shard(self, num_shards, index):
        """Returns a copy whose pipelines yield only shard `index`'s share of every batch.

        Each batch of `batch_size` examples (the global batch) is cut into `num_shards`
        contiguous shares of `batch_size // num_shards`; shard `index` yields share `index`.
        The shares of all shards, concatenated in shard order, are exactly the batches of the
        unsharded dataset (same order, same augmentation), which is how the processes of a
        multi-host run (`nasnet_tf.multihost`) each read their own part of the data and
        together train on the single-process batches. A shard augments only its own share.
        Every shard yields the same number of batches (partial global batches are dropped).

        Args:
            num_shards: the number of shares (e.g. processes); must divide `batch_size`.
            index: this shard, in `[0, num_shards)`.

        Example:

        >>> data = load_dataset("digits", batch_size=64)
        >>> images, labels = next(iter(data.shard(2, 1).train_epochs(0, 1)))
        >>> tuple(images.shape)
        (32, 8, 8, 1)
        """
        num_shards = validators.positive_int(num_shards, "num_shards")
        index = validators.positive_int(index, "index", minimum=0)
        if index >= num_shards:
            raise ValueError(
                f"`index` must be in [0, num_shards={num_shards}). Received: index={index}"
            )
        if self.batch_size % num_shards:
            raise ValueError(
                f"`num_shards` must divide the batch size {self.batch_size} (each shard gets "
                f"an equal share of every batch). Received: num_shards={num_shards}"
            )
        return dataclasses.replace(self, num_shards=num_shards, shard_index=index)

    @property
    def shard_batch_size(self):
        """Examples per batch this shard yields (`batch_size` when unsharded)."""
        return self.batch_size // self.num_shards

    def _own_share(self, indexed):
        """Keeps the (index, element) pairs that fall in this shard's share of their batch."""
        if self.num_shards == 1:
            return indexed
        batch, share, me = self.batch_size, self.shard_batch_size, self.shard_index
        return indexed.filter(lambda index, _: (index % batch) // share == me)

    def _augmented(self, examples, seed):
        """Maps (image, label) to augmented, normalised pairs of this shard's share, seeding
        each example from `seed` (shape (2,)) and its position in the unsharded epoch."""
        tf = aug._tf()
        size = self.image_shape[:2]
        fn = aug.make_train_map(self.augment, size, self.image_shape[2], cutout=self.cutout)

        def with_seed(index, pair):
            image, label = pair
            example_seed = tf.random.experimental.stateless_fold_in(seed, index)
            return fn(image, label, example_seed)

        return self._own_share(examples.enumerate()).map(
            with_seed, num_parallel_calls=tf.data.AUTOTUNE
        )

    def train_epochs(self, start_epoch=0, stop_epoch=None, steps_per_epoch=None):
        """Training batches of epochs `start_epoch, ..., stop_epoch - 1` (forever if `None`).

        Epoch `e` is shuffled and augmented from `(seed, e)` alone, so the batches of an
        epoch do not depend on which epochs were iterated before. `steps_per_epoch` keeps only
        the first batches of each epoch (default: `self.steps_per_epoch`, all full batches).

        Example:

        >>> data = load_dataset("digits", batch_size=64)
        >>> batches = data.train_epochs(2, 3)
        >>> sum(1 for _ in batches) == data.steps_per_epoch
        True
        """
        tf = aug._tf()
        steps = min(steps_per_epoch or self.steps_per_epoch, self.steps_per_epoch)
        epochs = tf.data.Dataset.range(start_epoch, stop_epoch if stop_epoch is not None
                                       else np.iinfo(np.int64).max)

        def one_epoch(epoch):
            seed = tf.stack([tf.constant(self.seed, "int32"), tf.cast(epoch, "int32")])
            # A different order each epoch from (seed, epoch) alone: rotate the examples by a
            # seeded offset, then a shuffle buffer with a fixed seed. (A per-epoch tensor seed
            # for `shuffle` breaks under TF's global seed 0.)
            offset = tf.random.stateless_uniform(
                [], seed, 0, self.train_size, dtype="int64"
            )
            rotated = self.train_examples.skip(offset).concatenate(
                self.train_examples.take(offset)
            )
            examples = rotated.shuffle(min(self.shuffle_buffer, self.train_size), seed=self.seed)
            examples = self._augmented(examples, seed)
            # A shard's share of a last partial batch would be one batch too many.
            return examples.batch(self.shard_batch_size, drop_remainder=True).take(steps)

        return epochs.flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)

    @property
    def train(self):
        """The training pipeline for `model.fit(data.train, epochs=...)`: reshuffled and
        re-augmented at each pass (each pass draws fresh seeds from `seed`)."""
        tf = aug._tf()
        examples = self.train_examples.shuffle(
            min(self.shuffle_buffer, self.train_size), seed=self.seed,
            reshuffle_each_iteration=True,
        )
        seeds = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True).batch(2)
        fn = aug.make_train_map(
            self.augment, self.image_shape[:2], self.image_shape[2], cutout=self.cutout
        )
        pairs = self._own_share(tf.data.Dataset.zip(examples, seeds).enumerate()).map(
            lambda index, element: fn(element[0][0], element[0][1],
                                      tf.cast(element[1] % (2**31 - 1), "int32")),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        batches = pairs.batch(self.shard_batch_size, drop_remainder=True)
        return batches.take(self.steps_per_epoch).prefetch(tf.data.AUTOTUNE)

    @property
    def validation(self):
        """The validation pipeline (no augmentation; center crop for ImageNet style), or
        `None` without a validation split."""
        return self.validation_batches()

    def validation_batches(self, drop_remainder=False):
        """The validation pipeline; `drop_remainder=True` leaves out the last partial batch
        (data-parallel replicas each need a share of every batch; always so when sharded)."""
        drop_remainder = drop_remainder or self.num_shards > 1
        if self.validation_size < (self.batch_size if drop_remainder else 1):
            return None
        tf = aug._tf()
        fn = aug.make_eval_map(self.augment, self.image_shape[:2], self.image_shape[2])
        ds = self._own_share(self.validation_examples.enumerate()).map(
            lambda index, pair: fn(*pair), num_parallel_calls=tf.data.AUTOTUNE
        )
        ds = ds.batch(self.shard_batch_size, drop_remainder=drop_remainder)
        if drop_remainder:
            ds = ds.take(self.validation_size // self.batch_size)
        return ds.prefetch(tf.data.AUTOTUNE)


# -- argument checks ---------------------------------------------------------------------------
def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be an integer >= 1. Received: batch_size={batch_size!r}"
        )


def _check_split(validation_split):
    if isinstance(validation_split, str):
        return
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) or \
            not 0.0 <= validation_split < 1.0:
        raise ValueError(
            "`validation_split` must be a fraction in [0, 1) or (TFDS) a split name. "
            f"Received: validation_split={validation_split!r}"
        )


def _check_size(image_size):
    if image_size is None:
        return None
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in image_size)
    ):
        raise ValueError(
            "`image_size` must be an integer or (height, width) of positive integers. "
            f"Received: image_size={image_size!r}"
        )
    return tuple(image_size)


def _split_indices(n, validation_split, seed):
    """A seeded permutation cut into (train, validation) index arrays. The permuted order is
    kept: sources sorted by class (folders) are then cached already mixed, so even a shuffle
    buffer smaller than the data gives batches of every class."""
    n_val = int(round(n * validation_split))
    if validation_split and n_val == 0:
        n_val = 1
    if n - n_val < 1:
        raise ValueError(
            f"`validation_split={validation_split}` leaves no training examples out of {n}."
        )
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_val:], perm[:n_val]


def _check_labels(y, num_classes):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or
                           (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))):
        raise ValueError(
            "Labels must be a 1-D array of integer class indices. "
            f"Received: labels of shape {y.shape} and dtype {y.dtype}"
        )
    y = y.astype("int64")
    if y.size and y.min() < 0:
        raise ValueError(f"Labels must be >= 0. Received: a label {int(y.min())}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    elif y.size and y.max() >= num_classes:
        raise ValueError(
            f"Labels must be in [0, num_classes={num_classes}). "
            f"Received: a label {int(y.max())}"
        )
    return y.astype("int32"), num_classes


def _check_images(x):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(
            "Images must be an array of shape (num_images, height, width[, channels]). "
            f"Received: images of shape {x.shape}"
        )
    if x.shape[-1] not in CHANNELS:
        raise ValueError(
            f"Images must have {' or '.join(map(str, CHANNELS))} channels (last axis). "
            f"Received: images of shape {x.shape}"
        )
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"Images must be numeric. Received: dtype {x.dtype}")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise ValueError(
            "Images must hold pixel values in [0, 255] (they are normalised to [-1, 1] "
            f"here). Received: values in [{x.min()}, {x.max()}]"
        )
    return x


# -- sources -----------------------------------------------------------------------------------
def _from_arrays(x, y, name, class_names, num_classes, validation_split, seed, image_size):
    tf = aug._tf()
    x = _check_images(x)
    y, num_classes = _check_labels(y, num_classes)
    if len(x) != len(y):
        raise ValueError(
            f"Images and labels must have the same length. Received: {len(x)} images, "
            f"{len(y)} labels"
        )
    if isinstance(validation_split, str):
        raise ValueError(
            "For arrays `validation_split` must be a fraction. "
            f"Received: validation_split={validation_split!r}"
        )
    train_idx, val_idx = _split_indices(len(x), validation_split, seed)
    if np.issubdtype(x.dtype, np.floating):
        x = np.round(x)
    x = x.astype("uint8")
    size = image_size or tuple(x.shape[1:3])

    def examples(idx):
        return tf.data.Dataset.from_tensor_slices((x[idx], y[idx]))

    names = tuple(class_names) if class_names else tuple(str(i) for i in range(num_classes))
    return dict(
        name=name, num_classes=num_classes, class_names=names,
        image_shape=size + (x.shape[-1],), train_examples=examples(train_idx),
        validation_examples=examples(val_idx), train_size=len(train_idx),
        validation_size=len(val_idx),
    )


def _digits(validation_split, seed, image_size):
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 8x8 images of 0..16 intensities, scaled to the 0..255 pixel range the pipelines expect.
    x = np.round(digits.images * (255.0 / 16.0)).astype("uint8")
    return _from_arrays(
        x, digits.target, "digits", [str(c) for c in digits.target_names], 10,
        validation_split, seed, image_size,
    )


def _list_image_dir(root, class_names):
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"The image directory does not exist. Received: directory={str(root)!r}")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    if class_names is None:
        class_names = found
    else:
        missing = [c for c in class_names if c not in found]
        if missing:
            raise ValueError(
                f"`class_names` {missing} are not folders of {str(root)!r}; found {found}."
            )
    if not class_names:
        raise ValueError(
            f"The image directory {str(root)!r} has no class folders; expected "
            "root/<class_name>/<image files>."
        )
    paths, labels = [], []
    for label, name in enumerate(class_names):
        files = sorted(
            str(f) for f in (root / name).iterdir()
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
        )
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise ValueError(
            f"No images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {str(root)!r}."
        )
    return paths, np.asarray(labels, "int32"), tuple(class_names)


def _image_dir(root, class_names, validation_split, seed, image_size, channels, cache):
    tf = aug._tf()
    if isinstance(validation_split, str):
        raise ValueError(
            "For an image directory `validation_split` must be a fraction. "
            f"Received: validation_split={validation_split!r}"
        )
    if channels not in CHANNELS:
        raise ValueError(f"`channels` must be one of {CHANNELS}. Received: channels={channels!r}")
    paths, labels, class_names = _list_image_dir(root, class_names)
    if image_size is None:
        first = tf.io.decode_image(tf.io.read_file(paths[0]), expand_animations=False)
        image_size = tuple(int(d) for d in first.shape[:2])
    train_idx, val_idx = _split_indices(len(paths), validation_split, seed)
    paths = np.asarray(paths)

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                   expand_animations=False)
        image.set_shape((None, None, channels))
        # Images are stored at the model's size (cast back to uint8 to cache compactly).
        image = tf.cond(
            tf.reduce_all(tf.shape(image)[:2] == image_size),
            lambda: image,
            lambda: tf.cast(tf.clip_by_value(tf.round(aug._resize(image, image_size)), 0, 255),
                            "uint8"),
        )
        return tf.ensure_shape(image, image_size + (channels,)), label

    def examples(idx):
        ds = tf.data.Dataset.from_tensor_slices((paths[idx], labels[idx]))
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        nbytes = len(idx) * image_size[0] * image_size[1] * channels
        return _maybe_cache(ds, cache, nbytes)

    return dict(
        name=str(root), num_classes=len(class_names), class_names=class_names,
        image_shape=image_size + (channels,), train_examples=examples(train_idx),
        validation_examples=examples(val_idx), train_size=len(train_idx),
        validation_size=len(val_idx),
    )


def _maybe_cache(ds, cache, nbytes):
    if cache == "auto":
        cache = nbytes <= AUTO_CACHE_BYTES
    if cache is True:
        return ds.cache()
    if isinstance(cache, (str, os.PathLike)):
        return ds.cache(str(cache))
    return ds


def _tfds(name, split, data_dir, download, validation_split, seed, image_size, cache):
    tf = aug._tf()
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise ValueError(
            f"Unknown TFDS dataset {name!r} (and no such directory of images). "
            f"Received: source={name!r}"
        ) from e
    if not builder.is_prepared():
        if download:
            builder.download_and_prepare()
        else:
            raise ValueError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir!r} "
                f"(data_dir={data_dir!r}). Prepare it there once with "
                f"`tfds build {name} --data_dir <dir>` or `load_dataset({name!r}, "
                "download=True)`; datasets that need a manual download (imagenet2012) "
                "want their archives in <data_dir>/downloads/manual first."
            )
    info = builder.info
    supervised = info.supervised_keys
    if not supervised or len(supervised) != 2:
        raise ValueError(f"TFDS dataset {name!r} has no (image, label) supervised keys.")
    label_feature = info.features[supervised[1]]
    image_feature = info.features[supervised[0]]
    num_classes = int(label_feature.num_classes)
    class_names = tuple(label_feature.names)
    shape = tuple(image_feature.shape)
    if len(shape) != 3 or shape[-1] not in CHANNELS:
        raise ValueError(
            f"TFDS dataset {name!r} must hold images of shape (h, w, 1 or 3). "
            f"Received: image feature shape {shape}"
        )
    if image_size is None:
        if None in shape[:2]:
            raise ValueError(
                f"TFDS dataset {name!r} has images of varying size: pass `image_size`."
            )
        image_size = shape[:2]
    channels = shape[-1]
    if split not in info.splits:
        raise ValueError(f"Split {split!r} not in {name!r}: {sorted(info.splits)}")
    read = dict(as_supervised=True, shuffle_files=False)
    source = builder.as_dataset(split=split, **read)
    n = info.splits[split].num_examples
    if isinstance(validation_split, str):
        if validation_split not in info.splits:
            raise ValueError(
                f"`validation_split` {validation_split!r} is not a split of {name!r}: "
                f"{sorted(info.splits)}"
            )
        train_ds, train_n = source, n
        val_ds = builder.as_dataset(split=validation_split, **read)
        val_n = info.splits[validation_split].num_examples
    else:
        train_idx, val_idx = _split_indices(n, validation_split, seed)
        is_val = np.zeros(n, bool)
        is_val[val_idx] = True
        is_val = tf.constant(is_val)
        indexed = source.enumerate()

        def part(want_val):
            return indexed.filter(lambda i, pair: tf.gather(is_val, i) == want_val).map(
                lambda i, pair: pair
            )

        train_ds, train_n, val_ds, val_n = part(False), len(train_idx), part(True), len(val_idx)

    def to_size(image, label):
        if None in shape[:2]:
            return image, tf.cast(label, "int32")  # resized per example by the augmentation
        image = tf.cond(
            tf.reduce_all(tf.shape(image)[:2] == image_size),
            lambda: image,
            lambda: tf.cast(tf.clip_by_value(tf.round(aug._resize(image, image_size)), 0, 255),
                            "uint8"),
        )
        return image, tf.cast(label, "int32")

    def examples(ds, count):
        ds = ds.map(to_size, num_parallel_calls=tf.data.AUTOTUNE)
        nbytes = count * image_size[0] * image_size[1] * channels
        return _maybe_cache(ds, cache if None not in shape[:2] else False, nbytes)

    return dict(
        name=name, num_classes=num_classes, class_names=class_names,
        image_shape=tuple(image_size) + (channels,), train_examples=examples(train_ds, train_n),
        validation_examples=examples(val_ds, val_n), train_size=train_n, validation_size=val_n,
    )


def load_dataset(
    source="digits",
    *,
    labels=None,
    split="train",
    validation_split=0.1,
    data_dir=None,
    download=False,
    image_size=None,
    channels=3,
    class_names=None,
    num_classes=None,
    batch_size=32,
    augment="auto",
    cutout=None,
    shuffle_buffer=10_000,
    cache="auto",
    seed=0,
):
    """Loads an image classification dataset as train / validation `tf.data` pipelines.

    Sources, by the type of `source`:
    - `"digits"`: scikit-learn's 1,797 8x8 grey digits (ships with the package; the offline
      default for demos).
    - a directory path (`str` or `Path`) laid out `root/<class_name>/<image>.jpg|png|...`.
    - a NumPy array of images, shape `(n, h, w[, c])`, pixel values in [0, 255], with
      `labels` (or a tuple `(images, labels)`).
    - any other string: a TFDS dataset name (`"cifar10"`, `"imagenet2012"`, ...) read from
      `data_dir`; with `download=False` (the default) nothing is fetched and an unprepared
      dataset is a clear error.

    The validation split is carved from the training examples by a permutation seeded with
    `seed` (or, for TFDS, may name a split such as `"validation"`). Images are decoded in
    parallel, brought to `image_size`, cached in memory where they fit (`cache="auto"`: up to
    2 GiB), augmented (`"cifar"`: pad-and-crop, flip, cutout; `"imagenet"`: random resized
    crop, flip; validation: resize, or resize and center crop for `"imagenet"`), normalised to
    [-1, 1], batched and prefetched with AUTOTUNE.

    Args:
        source: see above.
        labels: integer labels when `source` is an array of images.
        split: TFDS split to train on.
        validation_split: fraction held out for validation, or a TFDS split name.
        data_dir: TFDS data directory (TFDS' default when `None`).
        download: let TFDS download and prepare a missing dataset.
        image_size: `(height, width)` or an int; default: the data's own size.
        channels: channels to decode from an image directory (1 or 3).
        class_names: class folders to use (in label order) for an image directory, or names
            for array classes.
        num_classes: for arrays, the number of classes (default: max label + 1).
        batch_size: batch size of the pipelines.
        augment: `"auto"` (`"cifar"` up to 64 pixels, else `"imagenet"`), `"cifar"`,
            `"imagenet"` or `"none"`.
        cutout: side of the CIFAR cutout square (default: half the image; 0 disables).
        shuffle_buffer: shuffle buffer size (capped at the training set's size).
        cache: `"auto"`, `True` (memory), `False`, or a file path prefix for a disk cache.
        seed: seed of the split, the shuffles and the augmentation.

    Returns:
        An `ImageDataset`.

    Example:

    >>> data = load_dataset("digits", batch_size=16, seed=1)
    >>> data.num_classes, data.image_shape, data.train_size + data.validation_size
    (10, (8, 8, 1), 1797)
    >>> images, labels = next(iter(data.train))
    >>> tuple(images.shape)
    (16, 8, 8, 1)
    """
    _check_batch_size(batch_size)
    _check_split(validation_split)
    image_size = _check_size(image_size)
    if augment != "auto" and augment not in aug.AUGMENTATIONS:
        raise ValueError(
            f"`augment` must be 'auto' or one of {list(aug.AUGMENTATIONS)}. "
            f"Received: augment={augment!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0. Received: seed={seed!r}")
    if isinstance(source, tuple) and len(source) == 2 and labels is None:
        source, labels = source
    if isinstance(source, np.ndarray) or (labels is not None and not isinstance(
            source, (str, os.PathLike))):
        if labels is None:
            raise ValueError("Images given as an array need `labels`.")
        parts = _from_arrays(source, labels, "arrays", class_names, num_classes,
                             validation_split, seed, image_size)
    elif source == "digits":
        parts = _digits(validation_split, seed, image_size)
    elif isinstance(source, os.PathLike) or (
        isinstance(source, str) and (os.sep in source or os.path.isdir(source))
    ):
        parts = _image_dir(source, class_names, validation_split, seed, image_size, channels,
                           cache)
    elif isinstance(source, str):
        parts = _tfds(source, split, data_dir, download, validation_split, seed, image_size,
                      cache)
    else:
        raise ValueError(
            "`source` must be 'digits', a directory of class folders, a TFDS name or an "
            f"array of images. Received: source={source!r}"
        )
    if parts["num_classes"] < 2:
        raise ValueError(f"A classification dataset needs >= 2 classes; {parts['name']!r} has "
                         f"{parts['num_classes']}.")
    if batch_size > parts["train_size"]:
        raise ValueError(
            f"`batch_size` must not exceed the {parts['train_size']} training examples. "
            f"Received: batch_size={batch_size}"
        )
    if augment == "auto":
        augment = aug.default_augment(parts["image_shape"][:2])
    logger.info("Loaded %s: %d train / %d validation images of shape %s, %d classes",
                parts["name"], parts["train_size"], parts["validation_size"],
                parts["image_shape"], parts["num_classes"])
    return ImageDataset(
        batch_size=batch_size, augment=augment, seed=seed, shuffle_buffer=shuffle_buffer,
        cutout=cutout, **parts,
    )
