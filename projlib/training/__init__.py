"""Constrained training: datasets, the fixed models and the paper's procedures.

    from projlib.training import TrainConfig, train
    res = train(TrainConfig(dataset="digits", model="mlp", procedure="projected",
                            constraint="l11", radius=5.0, epochs=10, seed=0), progress=print)

Pure: no files written, nothing printed; progress goes through the callback.
"""

from projlib.training.config import TrainConfig
from projlib.training.datasets import (
    DATASETS,
    Dataset,
    DatasetChecksumError,
    DatasetError,
    DatasetNotFoundError,
    DataSource,
    load_dataset,
    read_cifar_batch,
    read_idx,
)
from projlib.training.models import MODELS, build_model
from projlib.training.procedures import PROCEDURES, TrainResult, train
from projlib.training.projector import Projector
from projlib.training.sparsity import (
    LayerSparsity,
    apply_masks,
    layer_sparsity,
    magnitude_masks,
    select_layers,
)

__all__ = [
    "DATASETS",
    "MODELS",
    "PROCEDURES",
    "Dataset",
    "DatasetChecksumError",
    "DatasetError",
    "DatasetNotFoundError",
    "DataSource",
    "LayerSparsity",
    "Projector",
    "TrainConfig",
    "TrainResult",
    "apply_masks",
    "build_model",
    "layer_sparsity",
    "load_dataset",
    "magnitude_masks",
    "read_cifar_batch",
    "read_idx",
    "select_layers",
    "train",
]
