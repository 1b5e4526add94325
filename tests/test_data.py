"""Input pipelines: digits, arrays, class folders (images the tests write, and the shared
CIFAR-10 images where present), a real TFDS dataset prepared offline into a temporary
data_dir, augmentation, and bad input."""

import shutil

import numpy as np
import pytest

pytest.importorskip("tensorflow")
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from _image_folder import write_image_folder  # noqa: E402

from nasnet_tf import augment  # noqa: E402
from nasnet_tf.data import ImageDataset, load_dataset  # noqa: E402


def _labels(ds):
    return np.concatenate([y.numpy() for _, y in ds])


def _arrays(n=40, size=8, channels=3, classes=4, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randint(0, 256, (n, size, size, channels)).astype("uint8")
    y = np.arange(n) % classes
    return x, y


# -- digits and arrays ---------------------------------------------------------------------------
def test_digits_are_the_offline_default():
    data = load_dataset(batch_size=64, seed=3)
    assert isinstance(data, ImageDataset)
    assert data.name == "digits"
    assert (data.num_classes, data.image_shape) == (10, (8, 8, 1))
    assert data.train_size + data.validation_size == 1797
    assert data.validation_size == round(1797 * 0.1)
    images, labels = next(iter(data.train))
    assert images.shape == (64, 8, 8, 1) and images.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert labels.dtype == tf.int32
    val = _labels(data.validation)
    assert len(val) == data.validation_size
    assert set(val) <= set(range(10))


def test_validation_split_is_deterministic_from_the_seed():
    a = _labels(load_dataset("digits", seed=1, batch_size=50).validation)
    b = _labels(load_dataset("digits", seed=1, batch_size=50).validation)
    c = _labels(load_dataset("digits", seed=2, batch_size=50).validation)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_train_and_validation_do_not_overlap():
    x, _ = _arrays(n=30)
    x[:, 0, 0, 0] = np.arange(30)  # tag each image
    data = load_dataset(x, labels=np.arange(30) % 3, validation_split=0.2, augment="none",
                        batch_size=1)
    def tags(ds):
        return {round(float(i[0, 0, 0, 0] + 1) * 127.5) for i, _ in ds}
    train = tags(data.train_epochs(0, 1))
    val = tags(data.validation)
    assert len(train) == 24 and len(val) == 6 and not train & val


def test_an_epoch_is_the_same_whichever_epoch_the_pipeline_starts_at():
    data = load_dataset("digits", batch_size=100, seed=5)
    from_start = [(x.numpy(), y.numpy()) for x, y in data.train_epochs(0, 3)]
    resumed = [(x.numpy(), y.numpy()) for x, y in data.train_epochs(2, 3)]
    steps = data.steps_per_epoch
    assert len(from_start) == 3 * steps and len(resumed) == steps
    for (xa, ya), (xb, yb) in zip(from_start[2 * steps:], resumed):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    # ...and different epochs are shuffled differently
    assert not np.array_equal(from_start[0][1], from_start[steps][1])


def test_steps_per_epoch_cap_keeps_epoch_boundaries():
    data = load_dataset("digits", batch_size=100, seed=5)
    full = [y.numpy() for _, y in data.train_epochs(1, 2)]
    capped = [y.numpy() for _, y in data.train_epochs(0, 2, steps_per_epoch=2)]
    assert len(capped) == 4
    np.testing.assert_array_equal(capped[2], full[0])


def test_arrays_keep_size_and_channels_and_resize_on_request():
    x, y = _arrays(n=20, size=10, channels=1)
    data = load_dataset((x, y), batch_size=4, validation_split=0.25)
    assert data.image_shape == (10, 10, 1) and data.num_classes == 4
    assert data.validation_size == 5
    resized = load_dataset(x[..., 0], labels=y, image_size=6, batch_size=4)
    assert next(iter(resized.train))[0].shape == (4, 6, 6, 1)
    assert next(iter(resized.validation))[0].shape[1:] == (6, 6, 1)


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (np.zeros((4, 8), "uint8"), np.zeros(4, int), r"shape \(num_images, height, width"),
        (np.zeros((4, 8, 8, 8, 3), "uint8"), np.zeros(4, int), r"Received: images of shape"),
        (np.zeros((4, 8, 8, 2), "uint8"), np.zeros(4, int), r"1 or 3 channels"),
        (np.full((4, 8, 8, 3), 300.0), np.zeros(4, int), r"\[0, 255\]"),
        (np.zeros((4, 8, 8, 3), "uint8"), np.array([0, 1, 2, 7]), r"num_classes=4\).*7"),
        (np.zeros((4, 8, 8, 3), "uint8"), np.array([0, 1, -1, 2]), r"Labels must be >= 0"),
        (np.zeros((4, 8, 8, 3), "uint8"), np.zeros(3, int), r"4 images, 3 labels"),
        (np.zeros((4, 8, 8, 3), "uint8"), np.array([0.5, 1, 2, 3]), r"integer class"),
    ],
)
def test_bad_arrays_are_clear_errors(images, labels, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(images, labels=labels, num_classes=4, batch_size=1, validation_split=0.25)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=5000), "must not exceed"),
        (dict(validation_split=1.0), "validation_split"),
        (dict(augment="mixup"), "augment"),
        (dict(image_size=(8, 0)), "image_size"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset("digits", **kwargs)


# -- image directories --------------------------------------------------------------------------
def _cifar_subset(cifar_dir, root, classes=3, per_class=6):
    for name in sorted(p.name for p in cifar_dir.iterdir())[:classes]:
        (root / name).mkdir(parents=True)
        for f in sorted((cifar_dir / name).iterdir())[:per_class]:
            shutil.copy(f, root / name / f.name)
    return root


@pytest.fixture(params=["generated", "shared"])
def image_folder(request, tmp_path):
    """`make(classes, per_class)` -> a class-folder root of 32x32 JPEGs: images the test
    writes (every clone) or a subset of the shared real CIFAR-10 images (skips without them)."""
    if request.param == "shared":
        cifar_dir = request.getfixturevalue("cifar_dir")
        return lambda classes, per_class: _cifar_subset(cifar_dir, tmp_path / "cifar", classes,
                                                        per_class)
    names = ("airplane", "automobile", "bird")
    return lambda classes, per_class: write_image_folder(tmp_path / "generated", names[:classes],
                                                         per_class)


def test_image_directory_of_jpegs(image_folder):
    root = image_folder(3, 10)
    data = load_dataset(root, batch_size=4, validation_split=0.2, seed=0)
    assert data.class_names == ("airplane", "automobile", "bird")
    assert (data.num_classes, data.image_shape) == (3, (32, 32, 3))
    assert (data.train_size, data.validation_size) == (24, 6)
    assert data.augment == "cifar"
    images, labels = next(iter(data.train_epochs(0, 1)))
    assert images.shape == (4, 32, 32, 3)
    # the validation images are the decoded JPEGs, normalised, not augmented
    val_images = np.concatenate([x.numpy() for x, _ in data.validation])
    files = sorted(str(p) for p in root.glob("*/*.jpg"))
    decoded = np.stack([tf.io.decode_jpeg(tf.io.read_file(f)).numpy() for f in files])
    normalised = decoded.astype("float32") / 127.5 - 1
    for image in val_images:
        assert np.abs(normalised - image).max(axis=(1, 2, 3)).min() < 1e-6
    assert set(_labels(data.validation)) <= {0, 1, 2}


def test_image_directory_channels_and_size(image_folder):
    root = image_folder(2, 4)
    data = load_dataset(str(root), image_size=16, channels=1, batch_size=2, augment="imagenet")
    images, _ = next(iter(data.train_epochs(0, 1)))
    assert images.shape == (2, 16, 16, 1)
    assert next(iter(data.validation))[0].shape[1:] == (16, 16, 1)


def test_image_directory_of_pngs_in_sorted_class_order(tmp_path):
    # PNGs and class folders written out of order: labels follow the sorted folder names.
    root = write_image_folder(tmp_path / "png", ("zebra", "ant"), per_class=3, size=12,
                              fmt="png")
    data = load_dataset(root, batch_size=6, validation_split=0.0, augment="none", seed=0)
    assert data.class_names == ("ant", "zebra") and data.image_shape == (12, 12, 3)
    images, labels = next(iter(data.train_epochs(0, 1)))
    # write_image_folder paints class k brighter than class k-1: "ant" (k=1) is the brighter.
    means = {int(y): float(x.mean()) for x, y in zip(images.numpy(), labels.numpy())}
    assert sorted(means) == [0, 1] and means[0] > means[1]


def test_the_shared_cifar_folder_whole(cifar_dir):
    data = load_dataset(cifar_dir, batch_size=256, seed=0)
    assert data.num_classes == 10
    assert data.train_size + data.validation_size == sum(
        1 for _ in cifar_dir.glob("*/*.jpg")
    )
    images, labels = next(iter(data.train_epochs(0, 1)))
    assert images.shape == (256, 32, 32, 3)
    # the folders are sorted by class; the first batch still holds every class
    assert len(set(labels.numpy())) == 10


def test_bad_image_directories(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "noimages" / "cat").mkdir(parents=True)
    (tmp_path / "noimages" / "cat" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="No images"):
        load_dataset(tmp_path / "noimages")


# -- TFDS, for real, offline ----------------------------------------------------------------------
class NasnetTinyShapes(tfds.core.GeneratorBasedBuilder):
    """12x12 RGB images of 3 classes (a bright square in one of three places)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(12, 12, 3)),
                "label": tfds.features.ClassLabel(names=["left", "middle", "right"]),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(30, 0), "test": self._generate_examples(9, 1)}

    def _generate_examples(self, n, seed):
        rng = np.random.RandomState(seed)
        for i in range(n):
            label = i % 3
            image = rng.randint(0, 60, (12, 12, 3)).astype("uint8")
            image[4:8, label * 4:label * 4 + 4] = 250
            yield f"{seed}-{i}", {"image": image, "label": label}


@pytest.fixture
def tfds_dir(tmp_path):
    builder = NasnetTinyShapes(data_dir=str(tmp_path))
    builder.download_and_prepare()
    return tmp_path


def test_tfds_dataset_prepared_offline(tfds_dir):
    data = load_dataset("nasnet_tiny_shapes", data_dir=str(tfds_dir), batch_size=4,
                        validation_split=0.2, seed=0)
    assert data.class_names == ("left", "middle", "right")
    assert (data.num_classes, data.image_shape) == (3, (12, 12, 3))
    assert (data.train_size, data.validation_size) == (24, 6)
    train = _labels(data.train_epochs(0, 1))
    assert len(train) == 24
    val = _labels(data.validation)
    assert len(val) == 6
    # The stored images come back: each bright square sits where its label says.
    for images, labels in data.validation:
        for image, label in zip(images.numpy(), labels.numpy()):
            column_means = image[4:8].mean(axis=(0, 2)).reshape(3, 4).mean(axis=1)
            assert int(np.argmax(column_means)) == label


def test_tfds_named_validation_split(tfds_dir):
    data = load_dataset("nasnet_tiny_shapes", data_dir=str(tfds_dir), batch_size=3,
                        validation_split="test")
    assert (data.train_size, data.validation_size) == (30, 9)
    assert len(_labels(data.validation)) == 9


def test_tfds_missing_dataset_names_the_directory(tmp_path):
    with pytest.raises(ValueError, match=r"not prepared in .*" + str(tmp_path)) as info:
        load_dataset("mnist", data_dir=str(tmp_path))
    assert "download=True" in str(info.value)


def test_tfds_unknown_name():
    with pytest.raises(ValueError, match="Unknown TFDS dataset"):
        load_dataset("no_such_dataset_xyz")


# -- augmentation -------------------------------------------------------------------------------
def test_cifar_augmentation_crops_flips_and_cuts_out():
    image = np.full((32, 32, 3), 255, "uint8")
    seeds = [tf.constant([i, 7], "int32") for i in range(8)]
    outs = [augment.cifar_augment(image, s, (32, 32)).numpy() for s in seeds]
    for out in outs:
        assert out.shape == (32, 32, 3)
        cut = np.all(out == 127.5, axis=-1).sum()
        assert 0 < cut <= 16 * 16
        assert (out == 0).any()  # zero padding shows after the shifted crop, mostly
    # stateless: the same seed gives the same image
    np.testing.assert_array_equal(outs[0], augment.cifar_augment(image, seeds[0], (32, 32)))
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])


def test_imagenet_augmentation_and_center_crop():
    image = np.random.RandomState(0).randint(0, 256, (50, 70, 3)).astype("uint8")
    out = augment.imagenet_augment(image, tf.constant([1, 2], "int32"), (24, 24))
    assert out.shape == (24, 24, 3)
    center = augment.eval_resize(image, (24, 24), center_crop=True)
    assert center.shape == (24, 24, 3)
    assert float(augment.normalize(np.uint8(0))) == -1.0
