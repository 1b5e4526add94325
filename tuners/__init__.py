"""tuners: NAS search strategies for nasnet_tf, as KerasTuner oracles and tuners.

- `Controller`: the autoregressive LSTM policy, trained by PPO (or REINFORCE).
- `ControllerOracle`: a KerasTuner `Oracle` that samples trials from the controller and feeds
  their scores back as rewards; resumable and usable in KerasTuner's chief/worker mode.
- `NASNetTuner` / `LayerwiseTuner`: search the NASNet cell space / the 2016 layer-wise space.
"""

from tuners.controller import Controller
from tuners.estimation import Child, PerformanceEstimator, TrainAndEvaluate
from tuners.layerwise import Layer, LayerwiseGenotype, LayerwiseSearchSpace, build_layerwise_cnn
from tuners.nas_tuner import LayerwiseHyperModel, LayerwiseTuner, NASNetHyperModel, NASNetTuner
from tuners.nasnet_space import NASNetSearchSpace, decode, encode, hp_name
from tuners.oracle import ControllerOracle

__all__ = [
    "Child",
    "Controller",
    "ControllerOracle",
    "Layer",
    "LayerwiseGenotype",
    "LayerwiseHyperModel",
    "LayerwiseSearchSpace",
    "LayerwiseTuner",
    "NASNetHyperModel",
    "NASNetSearchSpace",
    "NASNetTuner",
    "PerformanceEstimator",
    "TrainAndEvaluate",
    "build_layerwise_cnn",
    "decode",
    "encode",
    "hp_name",
]
