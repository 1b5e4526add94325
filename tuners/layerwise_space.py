"""The 2016 layer-wise search space (Zoph & Le, arXiv 1611.01578, Sec. 3.3) as KerasTuner
hyperparameters.

The controller emits, for each convolutional layer i: filter height and width (1, 3, 5, 7),
number of filters (24, 36, 48, 64), optionally the stride (the paper's first experiments keep
it at 1), and, through one sigmoid per earlier layer j < i, whether layer j feeds layer i.
`LayerwiseSearchSpace` declares these decisions as KerasTuner hyperparameters (`Choice` and
`Boolean`) with its `encode` / `decode`.

The architectures themselves (`Layer`, `LayerwiseGenotype`) and their model builder
(`build_layerwise_cnn`) live next to the NASNet ones, in `nasnet_tf.layerwise`; they are
re-exported here for compatibility.
"""

import keras_tuner

from nasnet_tf import validators
from nasnet_tf.genotype import as_genotype
from nasnet_tf.layerwise import (
    FILTER_SIZES,
    NUM_FILTERS,
    Layer,
    LayerwiseGenotype,
    build_layerwise_cnn,
)
from tuners.values import as_values

__all__ = [
    "Layer",
    "LayerwiseGenotype",
    "LayerwiseSearchSpace",
    "build_layerwise_cnn",
    "FILTER_SIZES",
    "NUM_FILTERS",
]


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
        self.num_layers = validators.positive_int(num_layers, "num_layers")
        self.filter_sizes = validators.int_options(filter_sizes, "filter_sizes")
        self.filters = validators.int_options(filters, "filters")
        self.strides = validators.int_options(strides, "strides")
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
        genotype = as_genotype(genotype, LayerwiseGenotype, strings=None)
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
