"""Per-image preprocessing for `tf.data`: the paper's augmentations and the model's normalisation.

Every random choice is *stateless*, keyed by an explicit seed pair, so one epoch of a pipeline
is the same sequence of images whichever process runs it (a resumed run sees the data an
uninterrupted run would have seen) and however many threads map it.

TensorFlow (the package) is needed; the Keras backend may be anything, since Keras' `fit`
takes a `tf.data.Dataset` under JAX too.
"""

AUGMENTATIONS = ("cifar", "imagenet", "none")
"""`"cifar"`: pad, random crop, flip, cutout. `"imagenet"`: random resized crop, flip.
`"none"`: resize only."""

# Inception-style evaluation crop: resize so the crop is 87.5% of the shorter side.
CENTER_CROP_FRACTION = 0.875


def _tf():
    try:
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover - TF is a dependency
        raise ImportError(
            "nasnet_tf's input pipelines use tf.data and need the `tensorflow` package. "
            "Install it (`pip install tensorflow`) or feed NumPy arrays to `fit` yourself."
        ) from e
    return tf


def normalize(image):
    """Maps pixel values in [0, 255] to [-1, 1], the input range of NASNet (and of
    `keras.applications.nasnet.preprocess_input`, so Keras' pretrained weights fit).

    Example:

    >>> import numpy as np
    >>> float(normalize(np.full((2, 2, 3), 255, "uint8"))[0, 0, 0])
    1.0
    """
    tf = _tf()
    return tf.cast(image, "float32") / 127.5 - 1.0


def _resize(image, size):
    tf = _tf()
    return tf.image.resize(tf.cast(image, "float32"), size, antialias=True)


def cifar_augment(image, seed, size, pad=None, cutout=None):
    """Zero-pad by `pad` (default size/8), random crop back to `size`, random horizontal
    flip, cutout of a `cutout`-sized square (default size/2 from 32 pixels up; 0 disables).
    Returns float32 pixels in [0, 255]."""
    tf = _tf()
    h, w = size
    pad = max(1, h // 8) if pad is None else pad
    # The paper's 16x16 cutout on 32x32 CIFAR; off by default for tiny images (8x8 digits).
    cutout = (h // 2 if h >= 32 else 0) if cutout is None else cutout
    seeds = tf.random.experimental.stateless_split(seed, 4)
    image = tf.cast(image, "float32")
    if tuple(image.shape[:2]) != (h, w):
        image = _resize(image, size)
    image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    image = tf.image.stateless_random_crop(image, (h, w, tf.shape(image)[-1]), seed=seeds[0])
    image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
    if cutout:
        cy = tf.random.stateless_uniform([], seeds[2], 0, h, dtype="int32")
        cx = tf.random.stateless_uniform([], seeds[3], 0, w, dtype="int32")
        rows = tf.range(h)[:, None]
        cols = tf.range(w)[None, :]
        top, left = cy - cutout // 2, cx - cutout // 2
        inside = (rows >= top) & (rows < top + cutout) & (cols >= left) & (cols < left + cutout)
        # cutout zeroes *normalised* pixels (the dataset mean), i.e. 127.5 before normalising.
        image = tf.where(inside[..., None], 127.5, image)
    return image


def imagenet_augment(image, seed, size, area_range=(0.08, 1.0), aspect_range=(3 / 4, 4 / 3)):
    """Inception-style random resized crop (8%-100% of the area, aspect 3/4-4/3) to `size`,
    random horizontal flip. Returns float32 pixels in [0, 255]."""
    tf = _tf()
    seeds = tf.random.experimental.stateless_split(seed, 2)
    shape = tf.shape(image)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=(1, 1, 4)),
        seed=seeds[0],
        min_object_covered=0.1,
        aspect_ratio_range=aspect_range,
        area_range=area_range,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, crop_size)
    image = _resize(image, size)
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1])


def eval_resize(image, size, center_crop):
    """Evaluation preprocessing: a plain resize to `size`, or (ImageNet style, `center_crop`)
    resize the shorter side to size/0.875 and take the central `size` crop. Float32 pixels."""
    tf = _tf()
    h, w = size
    if not center_crop:
        if tuple(image.shape[:2]) == (h, w):
            return tf.cast(image, "float32")
        return _resize(image, size)
    shape = tf.cast(tf.shape(image)[:2], "float32")
    scale = max(h, w) / CENTER_CROP_FRACTION / tf.reduce_min(shape)
    new = tf.cast(tf.math.ceil(shape * scale), "int32")
    new = tf.maximum(new, [h, w])
    image = _resize(image, new)
    top = (new[0] - h) // 2
    left = (new[1] - w) // 2
    return tf.slice(image, [top, left, 0], [h, w, -1])


def make_train_map(augment, size, channels, cutout=None):
    """Returns `fn(image, label, seed) -> (normalised image, label)` for `tf.data.map`."""
    tf = _tf()

    def fn(image, label, seed):
        if augment == "cifar":
            image = cifar_augment(image, seed, size, cutout=cutout)
        elif augment == "imagenet":
            image = imagenet_augment(image, seed, size)
        else:
            image = eval_resize(image, size, center_crop=False)
        image = tf.ensure_shape(normalize(image), (size[0], size[1], channels))
        return image, label

    return fn


def make_eval_map(augment, size, channels):
    """Returns `fn(image, label) -> (normalised image, label)`; ImageNet-style pipelines
    center-crop, the others resize."""
    tf = _tf()

    def fn(image, label):
        image = eval_resize(image, size, center_crop=augment == "imagenet")
        return tf.ensure_shape(normalize(image), (size[0], size[1], channels)), label

    return fn


def default_augment(size):
    """`"cifar"` for small images (up to 64 pixels a side), `"imagenet"` above."""
    return "cifar" if max(size) <= 64 else "imagenet"

