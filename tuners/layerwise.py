"""The 2016 layer-wise search space (Zoph & Le, arXiv 1611.01578, Sec. 3.3) and its CNN builder.

The controller emits, for each convolutional layer i: filter height and width (1, 3, 5, 7),
number of filters (24, 36, 48, 64), optionally the stride (the paper's first experiments keep
it at 1), and, through one sigmoid per earlier layer j < i, whether layer j feeds layer i.
As the paper describes: a layer concatenates (along channels) every layer that feeds it, zero-
padding smaller feature maps to the largest; a layer that no layer feeds reads the image; the
outputs of all layers that feed no layer are concatenated before the classifier.

`LayerwiseGenotype` holds such an architecture as data; `LayerwiseSearchSpace` declares it as
KerasTuner hyperparameters (`Choice` and `Boolean`) with its `encode` / `decode`;
`build_layerwise_cnn` turns it into a Keras model (ReLU, conv, BN per layer; global average
pooling; softmax).
"""

import dataclasses
import json

import keras
import keras_tuner

from tuners.values import as_values

__all__ = [
    "Layer",
    "LayerwiseGenotype",
    "LayerwiseSearchSpace",
    "build_layerwise_cnn",
    "FILTER_SIZES",
    "NUM_FILTERS",
]

FILTER_SIZES = (1, 3, 5, 7)
NUM_FILTERS = (24, 36, 48, 64)
_LAYER_FIELDS = ("filter_height", "filter_width", "filters", "stride", "inputs")


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One convolutional layer of a layer-wise architecture.

    Args:
        filter_height: kernel height.
        filter_width: kernel width.
        filters: number of output channels.
        stride: the stride along both spatial axes.
        inputs: indices of the earlier layers concatenated as this layer's input, or `()` to
            read the image. Stored sorted.

    Example:

    >>> Layer(3, 5, 36, inputs=[1, 0])
    Layer(filter_height=3, filter_width=5, filters=36, stride=1, inputs=(0, 1))
    """

    filter_height: int
    filter_width: int
    filters: int
    stride: int = 1
    inputs: tuple = ()

    def __post_init__(self):
        for name in ("filter_height", "filter_width", "filters", "stride"):
            _check_positive_int(getattr(self, name), name)
        inputs = self.inputs
        if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
            raise ValueError(
                f"`inputs` must be a sequence of layer indices. Received: inputs={inputs!r}"
            )
        inputs = tuple(inputs)
        for j in inputs:
            if isinstance(j, bool) or not isinstance(j, int) or j < 0:
                raise ValueError(
                    f"`inputs` must hold layer indices >= 0. Received: inputs={list(inputs)}"
                )
        if len(set(inputs)) != len(inputs):
            raise ValueError(f"`inputs` must be distinct. Received: inputs={list(inputs)}")
        object.__setattr__(self, "inputs", tuple(sorted(inputs)))

    def to_dict(self):
        config = dataclasses.asdict(self)
        config["inputs"] = list(self.inputs)
        return config


@dataclasses.dataclass(frozen=True)
class LayerwiseGenotype:
    """A layer-wise CNN architecture: a sequence of `Layer`s, each reading earlier ones.

    Args:
        layers: a sequence of `Layer` (or their dicts). Layer i may read layers 0..i-1 only.

    Example:

    >>> g = LayerwiseGenotype([Layer(3, 3, 24), Layer(5, 1, 36, inputs=[0])])
    >>> g.output_layers
    (1,)
    >>> LayerwiseGenotype.from_json(g.to_json()) == g
    True
    """

    layers: tuple

    def __post_init__(self):
        layers = self.layers
        if isinstance(layers, (str, bytes, dict)) or not hasattr(layers, "__iter__"):
            raise ValueError(
                f"`layers` must be a sequence of Layer. Received: layers={layers!r}"
            )
        layers = tuple(_as_layer(layer) for layer in layers)
        if not layers:
            raise ValueError("An architecture needs at least one layer. Received: layers=()")
        for i, layer in enumerate(layers):
            late = [j for j in layer.inputs if j >= i]
            if late:
                raise ValueError(
                    f"Layer {i} reads layers {late}, which do not come before it. Layer {i} "
                    f"may read layers 0..{i - 1}. Received: inputs={list(layer.inputs)}"
                )
        object.__setattr__(self, "layers", layers)

    @property
    def num_layers(self):
        return len(self.layers)

    @property
    def output_layers(self):
        """The layers no layer reads, concatenated before the classifier."""
        used = {j for layer in self.layers for j in layer.inputs}
        return tuple(i for i in range(len(self.layers)) if i not in used)

    def to_dict(self):
        return {"layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict) or set(data) != {"layers"}:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(
                f"A layer-wise genotype dict has exactly the key ['layers']. Received: {got}"
            )
        return cls(data["layers"])

    def to_json(self, indent=None):
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Invalid layer-wise genotype JSON: {e}") from e
        return cls.from_dict(data)

    def __str__(self):
        parts = []
        for i, layer in enumerate(self.layers):
            source = ",".join(map(str, layer.inputs)) if layer.inputs else "img"
            parts.append(
                f"{i}={layer.filter_height}x{layer.filter_width}x{layer.filters}"
                f"/{layer.stride}({source})"
            )
        return " ".join(parts) + " -> " + ",".join(map(str, self.output_layers))


def _as_layer(value):
    if isinstance(value, Layer):
        return value
    if isinstance(value, dict):
        unknown = set(value) - set(_LAYER_FIELDS)
        if unknown:
            raise ValueError(
                f"Unknown layer fields {sorted(unknown)}. Accepted: {list(_LAYER_FIELDS)}"
            )
        return Layer(**value)
    raise ValueError(
        f"Each layer must be a Layer or a dict with keys {list(_LAYER_FIELDS)}. "
        f"Received: {value!r}"
    )


def _check_options(value, name):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(
            f"`{name}` must be a sequence of integers >= 1. Received: {name}={value!r}"
        )
    value = tuple(value)
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if not value or bad or len(set(value)) != len(value):
        raise ValueError(
            f"`{name}` must list distinct integers >= 1, at least one. "
            f"Received: {name}={list(value)}"
        )
    return value


class LayerwiseSearchSpace:
    """The 2016 NAS space of CNNs, layer by layer, as KerasTuner hyperparameters.

    Per layer i: `layer_{i}_filter_height`, `layer_{i}_filter_width`, `layer_{i}_filters`
    (`Choice`s), `layer_{i}_stride` (a `Choice` when `strides` has several values, else not
    declared), and, with `skip_connections`, one `Boolean` `layer_{i}_skip_{j}` per earlier
    layer j ("does layer j feed layer i", the paper's anchor-point sigmoids). Without
    `skip_connections`, each layer reads the one before it (a plain chain).

    Args:
        num_layers: number of convolutional layers.
        filter_sizes: candidate filter heights and widths (the paper: 1, 3, 5, 7).
        filters: candidate numbers of filters (the paper: 24, 36, 48, 64).
        strides: candidate strides; `(1,)` (the default) keeps it fixed, as the paper's
            first experiments did; `(1, 2)` searches it.
        skip_connections: whether to search the connections between layers.

    Example:

    >>> space = LayerwiseSearchSpace(num_layers=3)
    >>> hp = space.hyperparameters()
    >>> len(hp.space)  # 3 x 3 choices + 0 + 1 + 2 skip booleans
    12
    >>> g = space.decode(hp.values)
    >>> space.decode(space.encode(g)) == g
    True
    """

    def __init__(
        self,
        num_layers=6,
        filter_sizes=FILTER_SIZES,
        filters=NUM_FILTERS,
        strides=(1,),
        skip_connections=True,
    ):
        _check_positive_int(num_layers, "num_layers")
        self.num_layers = num_layers
        self.filter_sizes = _check_options(filter_sizes, "filter_sizes")
        self.filters = _check_options(filters, "filters")
        self.strides = _check_options(strides, "strides")
        if not isinstance(skip_connections, bool):
            raise ValueError(
                "`skip_connections` must be a bool. "
                f"Received: skip_connections={skip_connections!r}"
            )
        self.skip_connections = skip_connections

    def _choices(self, i):
        choices = [
            (f"layer_{i}_filter_height", self.filter_sizes),
            (f"layer_{i}_filter_width", self.filter_sizes),
            (f"layer_{i}_filters", self.filters),
        ]
        if len(self.strides) > 1:
            choices.append((f"layer_{i}_stride", self.strides))
        return choices

    def _skip_names(self, i):
        if not self.skip_connections:
            return []
        return [f"layer_{i}_skip_{j}" for j in range(i)]

    @property
    def names(self):
        """Every hyperparameter name, in declaration (= prediction) order."""
        names = []
        for i in range(self.num_layers):
            names += [name for name, _ in self._choices(i)] + self._skip_names(i)
        return names

    def declare(self, hp):
        """Registers the decisions on `hp` and returns the genotype of its current values."""
        values = {}
        for i in range(self.num_layers):
            for name, options in self._choices(i):
                if len(options) == 1:
                    values[name] = hp.Fixed(name, options[0])
                else:
                    values[name] = hp.Choice(name, list(options))
            for name in self._skip_names(i):
                values[name] = hp.Boolean(name)
        return self.decode(values)

    def hyperparameters(self):
        """A fresh `keras_tuner.HyperParameters` holding this space."""
        hp = keras_tuner.HyperParameters()
        self.declare(hp)
        return hp

    def encode(self, genotype):
        """The hyperparameter values of `genotype` (a `LayerwiseGenotype` or its dict)."""
        if isinstance(genotype, dict):
            genotype = LayerwiseGenotype.from_dict(genotype)
        if not isinstance(genotype, LayerwiseGenotype):
            raise ValueError(
                "`genotype` must be a `LayerwiseGenotype` or its dict. "
                f"Received: genotype={genotype!r}"
            )
        if genotype.num_layers != self.num_layers:
            raise ValueError(
                f"The genotype has {genotype.num_layers} layers but the space has "
                f"num_layers={self.num_layers}. Received: genotype={genotype}"
            )
        values = {}
        for i, layer in enumerate(genotype.layers):
            fields = {
                f"layer_{i}_filter_height": (layer.filter_height, self.filter_sizes),
                f"layer_{i}_filter_width": (layer.filter_width, self.filter_sizes),
                f"layer_{i}_filters": (layer.filters, self.filters),
                f"layer_{i}_stride": (layer.stride, self.strides),
            }
            for name, (value, options) in fields.items():
                if value not in options:
                    raise ValueError(
                        f"Layer {i} has {name.split('_', 2)[2]}={value}, which is not in the "
                        f"space. Accepted: {list(options)}"
                    )
            for name, _ in self._choices(i):
                values[name] = fields[name][0]
            if self.skip_connections:
                for j in range(i):
                    values[f"layer_{i}_skip_{j}"] = j in layer.inputs
            elif layer.inputs != ((i - 1,) if i else ()):
                raise ValueError(
                    f"Without skip connections, layer {i} must read layer {i - 1} only (the "
                    f"image for layer 0). Received: inputs={list(layer.inputs)}"
                )
        return values

    def decode(self, values):
        """The `LayerwiseGenotype` of hyperparameter `values` (a dict or `HyperParameters`);
        entries that are not the space's are ignored."""
        values = as_values(values, self.names)
        layers = []
        for i in range(self.num_layers):
            chosen = {}
            for name, options in self._choices(i):
                if values[name] not in options:
                    raise ValueError(
                        f"`{name}` must be one of {list(options)}. Received: {values[name]!r}"
                    )
                chosen[name[len(f"layer_{i}_"):]] = values[name]
            if self.skip_connections:
                inputs = [j for j in range(i) if bool(values[f"layer_{i}_skip_{j}"])]
            else:
                inputs = [i - 1] if i else []
            layers.append(
                Layer(
                    chosen["filter_height"],
                    chosen["filter_width"],
                    chosen["filters"],
                    stride=chosen.get("stride", self.strides[0]),
                    inputs=inputs,
                )
            )
        return LayerwiseGenotype(layers)

    def get_config(self):
        return {
            "num_layers": self.num_layers,
            "filter_sizes": list(self.filter_sizes),
            "filters": list(self.filters),
            "strides": list(self.strides),
            "skip_connections": self.skip_connections,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"LayerwiseSearchSpace({args})"


def _concat_padded(tensors, name):
    """Concatenates feature maps along channels, zero-padding smaller ones to the largest
    height and width (1611.01578, Sec. 3.3), centred as evenly as possible."""
    if len(tensors) == 1:
        return tensors[0]
    height = max(t.shape[1] for t in tensors)
    width = max(t.shape[2] for t in tensors)
    padded = []
    for k, t in enumerate(tensors):
        dh, dw = height - t.shape[1], width - t.shape[2]
        if dh or dw:
            t = keras.layers.ZeroPadding2D(
                ((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)), name=f"{name}_pad{k}"
            )(t)
        padded.append(t)
    return keras.layers.Concatenate(axis=-1, name=name)(padded)


def build_layerwise_cnn(
    genotype,
    *,
    input_shape=(32, 32, 3),
    classes=10,
    classifier_activation="softmax",
    batch_norm_momentum=0.99,
    name="layerwise_cnn",
):
    """Builds the CNN of a layer-wise architecture.

    Each layer is ReLU, `Conv2D` (its filter size, filters and stride; `"same"` padding, no
    bias), then batch normalization, over the channel-wise concatenation of the layers that
    feed it (zero-padded to the largest map), or over the image when none does. The layers
    that feed no layer are concatenated, globally average-pooled and classified.

    Args:
        genotype: a `LayerwiseGenotype` (or its dict).
        input_shape: `(height, width, channels)` of the images (channels last).
        classes: number of classes.
        classifier_activation: activation of the classifier, `None` for logits.
        batch_norm_momentum: momentum of the batch normalizations' moving statistics.
        name: the model's name.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> g = LayerwiseGenotype([Layer(3, 3, 24), Layer(1, 5, 36, stride=2, inputs=[0]),
    ...                        Layer(3, 1, 24, inputs=[0, 1])])
    >>> build_layerwise_cnn(g, input_shape=(8, 8, 3), classes=4).output_shape
    (None, 4)
    """
    if isinstance(genotype, dict):
        genotype = LayerwiseGenotype.from_dict(genotype)
    if not isinstance(genotype, LayerwiseGenotype):
        raise ValueError(
            "`genotype` must be a `LayerwiseGenotype` or its dict. "
            f"Received: genotype={genotype!r}"
        )
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in input_shape
    ):
        raise ValueError(
            "`input_shape` must be (height, width, channels) of positive integers. "
            f"Received: input_shape={input_shape}"
        )
    _check_positive_int(classes, "classes")
    if (
        isinstance(batch_norm_momentum, bool)
        or not isinstance(batch_norm_momentum, (int, float))
        or not 0.0 <= batch_norm_momentum < 1.0
    ):
        raise ValueError(
            "`batch_norm_momentum` must be in [0, 1). "
            f"Received: batch_norm_momentum={batch_norm_momentum!r}"
        )
    inputs = keras.Input(shape=input_shape, name="image")
    outputs = []
    for i, layer in enumerate(genotype.layers):
        sources = [outputs[j] for j in layer.inputs] or [inputs]
        x = _concat_padded(sources, name=f"layer{i}_concat")
        x = keras.layers.ReLU(name=f"layer{i}_relu")(x)
        x = keras.layers.Conv2D(
            layer.filters,
            (layer.filter_height, layer.filter_width),
            strides=layer.stride,
            padding="same",
            use_bias=False,
            name=f"layer{i}_conv",
        )(x)
        x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=f"layer{i}_bn")(x)
        outputs.append(x)
    x = _concat_padded([outputs[i] for i in genotype.output_layers], name="head_concat")
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, x, name=name)
