"""tuners: NAS search strategies for nasnet_tf, as KerasTuner oracles and tuners.

- `Controller`: the autoregressive LSTM policy, trained by PPO (or REINFORCE).
- `ControllerOracle`: a KerasTuner `Oracle` that samples trials from the controller and feeds
  their scores back as rewards; resumable and usable in KerasTuner's chief/worker mode.
- `EvolutionOracle`: regularized (aging) evolution (Real et al. 2019) as a KerasTuner `Oracle`,
  with the same weight-sharing calls (`sample_candidates`, `add_rewards`) as `ControllerOracle`.
- `RewardOracle`: their base, the oracle that takes rewards for architectures it did not hand
  out as trials (`sample_candidates`, `add_rewards`, `final_candidates`); estimators ask for it
  by type.
- `NASTuner(hypermodel, oracle=None, *, estimator=None, ...)`: the one NAS tuner, shaped like
  `keras_tuner.RandomSearch`; its hypermodel is the space: `NASNetHyperModel` (the NASNet cell
  space) or `LayerwiseHyperModel` (the 2016 layer-wise space). `NASNetTuner` / `LayerwiseTuner`
  are conveniences that make that hypermodel from their own keyword arguments.
- Spaces as hyperparameters: `NASNetSearchSpace` (with `encode` / `decode` / `hp_name`) and
  `LayerwiseSearchSpace`. The layer-wise architectures and builder (`Layer`,
  `LayerwiseGenotype`, `build_layerwise_cnn`) live in `nasnet_tf.layerwise`, re-exported here.
- Estimators (`tuners.estimation`, `tuners.weight_sharing`): `TrainAndEvaluate` (build and
  train each child), `FreshWeights` (fresh weights through one compiled super-network) and
  `SharedWeights` (ENAS weight sharing).
- `SearchRun(directory, ...)`: the whole resumable search of `nasnet-tf search` from Python
  (oracle, estimator, tuner, resume checks, time budget) with its outputs: the per-trial
  table, best genotypes, trials and estimation records, cell drawings, HTML report and
  TensorBoard scalars. Trial events reach them through `SearchListener`s
  (`NASTuner(..., listeners=[...])`; the outputs are in `tuners.search_outputs`).
"""

from tuners.controller import Controller
from tuners.controller_oracle import ControllerOracle
from tuners.estimation import Child, PerformanceEstimator, TrainAndEvaluate
from tuners.evolution import EvolutionOracle
from tuners.final_selection import FinalSelection
from tuners.layerwise_space import (
    Layer,
    LayerwiseGenotype,
    LayerwiseSearchSpace,
    build_layerwise_cnn,
)
from tuners.listeners import SearchListener
from tuners.nas_tuner import (
    LayerwiseHyperModel,
    LayerwiseTuner,
    NASNetHyperModel,
    NASNetTuner,
    NASTuner,
)
from tuners.nasnet_space import NASNetSearchSpace, decode, encode, hp_name
from tuners.reward_oracle import RewardOracle
from tuners.rewards import nas2016_reward, nasnet_reward
from tuners.search_run import SearchRun
from tuners.weight_sharing import FreshWeights, SharedWeights

__all__ = [
    "Child",
    "Controller",
    "ControllerOracle",
    "EvolutionOracle",
    "FinalSelection",
    "FreshWeights",
    "Layer",
    "LayerwiseGenotype",
    "LayerwiseHyperModel",
    "LayerwiseSearchSpace",
    "LayerwiseTuner",
    "NASNetHyperModel",
    "NASNetSearchSpace",
    "NASNetTuner",
    "NASTuner",
    "PerformanceEstimator",
    "RewardOracle",
    "SearchListener",
    "SearchRun",
    "SharedWeights",
    "TrainAndEvaluate",
    "build_layerwise_cnn",
    "decode",
    "encode",
    "hp_name",
    "nas2016_reward",
    "nasnet_reward",
]
