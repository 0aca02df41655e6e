"""`TrainConfig`: the one frozen, validated description of a training run.

Every check lives in `__post_init__`, so a config that exists is a config that can run (up to
facts only known once the model is built, such as which parameter names a `layers` pattern
matches; `train` checks those). Errors are `ValueError` / `TypeError` naming the field (a
value of the wrong kind or out of range: `projlib.checks.ParamError`, both at once).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from projlib.checks import TRAINING_RADIUS, check_choice, check_int, check_number
from projlib.projections import REGISTRY, constraint_names
from projlib.projections._validate import GROUPS_CHOICES
from projlib.training.datasets import DATASETS, MAX_VALIDATION, DataSource
from projlib.training.models import MODELS
from projlib.training.plugins import check_path, is_plugin
from projlib.training.projector import RADIUS_MODES

PROCEDURE_NAMES: tuple[str, ...] = ("dense", "projected", "lottery", "magnitude")
#: The procedures that retrain the network on a support mask (zeros of phase 1 kept at 0).
MASKED_PROCEDURES: tuple[str, ...] = ("lottery", "magnitude")
OPTIMIZER_NAMES: tuple[str, ...] = ("adam", "sgd")
DEVICE_NAMES: tuple[str, ...] = ("cpu", "cuda", "auto")
GROUP_NAMES: tuple[str, ...] = GROUPS_CHOICES

# Upper bounds: far above any real run, low enough that a typo fails here with one line instead
# of an OverflowError / MemoryError deep in torch.
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 24
MAX_SEED = 2**32 - 1  # numpy's seeding range; torch accepts more


def _check_name_or_path(name: str, value: Any, choices: tuple[str, ...], attr: str) -> None:
    # A built-in name, or `package.module:attr` (checked for syntax here, imported by `train`).
    if is_plugin(value):
        check_path(name, value)
    elif not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(choices)} or package.module:{attr}; got {value!r}"
        )


@dataclass(frozen=True)
class TrainConfig:
    """A training run: dataset x model x procedure (x constraint, radius) and its options.

    The defaults are the paper's plain step, and the only defaults in the package (the CLI
    reads them from here): SGD with momentum 0.9 at step 0.02, minibatch 32, 20 epochs. On
    digits/mlp that reaches ~97 % dense (Adam 1e-3 at batch 128 stayed near 92 %).

    procedure: "dense" (no constraint), "projected" (projection after every optimizer step),
    "lottery" (projected phase 1 -> mask of the projected weights -> rewind to the initial
    weights -> masked retrain) or "magnitude" (Frankle & Carbin baseline: dense phase 1 ->
    per-layer largest-magnitude mask at the sparsity of `layer_sparsity`, or of a projected run
    with `constraint`/`radius` when `layer_sparsity` is None -> rewind -> masked retrain).
    layers: fnmatch patterns over parameter names ("3.weight"); None = the paper's default, all
    weight matrices except the first (unless `constrain_first`) and the last (unless
    `constrain_last`). When `layers` is given it is the exact selection and the two flags are
    not consulted.
    verify_data: check MNIST / Fashion-MNIST / CIFAR-10 files against their published checksums
    (False for a custom variant on purpose).
    cuda_graph: on CUDA, replay each phase's full-batch training step from one captured CUDA
    graph (falls back to eager steps where capture is impossible; `TrainResult.step_mode` says
    which ran). It changes how the step is launched, not what it computes, so it is not part
    of a sweep point's identity. Ignored on the CPU.
    validation: the fraction of the training set held out as a validation split (0: none, the
    whole training set is trained on; at most 0.5). Which examples are held out is fixed
    (`datasets.validation_split`: one constant-seeded permutation, the same for every seed).
    With a split, the per-epoch accuracy is measured on the held-out part
    (`TrainResult.val_accuracy_per_epoch`) and the test set is read once, at the end, for
    `test_accuracy`. Part of the point's identity when > 0.
    radius_mode: "absolute" (`radius` is the radius of every constrained layer's ball) or
    "relative" (each constrained layer's radius is `radius` x that layer's norm, under the same
    constraint and grouping, at initialisation; so 0.05 is the same tightness for every
    constraint and layer; `TrainResult.layer_radii` holds the absolute radii). Part of the
    point's identity when "relative".
    data_fingerprint: the `Dataset.fingerprint` of the data this run must train on (None: any
    data found under the dataset's name). Part of a sweep point's identity, so results computed
    on other data are never reused; `train` refuses a dataset whose fingerprint differs.
    dataset / model: a built-in name, or your own `package.module:loader` /
    `package.module:factory` (`projlib.training.plugins`).
    model_source: for a `package.module:factory` model, the sha256 of the factory's module file
    (`plugins.source_hash`) this run must train (None: whatever the file holds now). Part of a
    sweep point's identity (only when set: built-in points keep their ids), so an edited model
    never reuses old results; `train` refuses a module whose file has changed since.
    """

    dataset: str = "digits"
    model: str = "mlp"
    procedure: str = "dense"
    constraint: str | None = None
    radius: float | None = None
    groups: str = "columns"
    epochs: int = 20
    retrain_epochs: int | None = None
    optimizer: str = "sgd"
    lr: float = 0.02
    batch_size: int = 32
    seed: int = 0
    device: str = "cpu"
    layers: tuple[str, ...] | None = None
    constrain_first: bool = False
    constrain_last: bool = False
    data_dir: str | None = None
    download: bool = False
    layer_sparsity: tuple[tuple[str, float], ...] | None = None
    data_fingerprint: str | None = None
    verify_data: bool = True
    cuda_graph: bool = True
    model_source: str | None = None
    validation: float = 0.0
    radius_mode: str = "absolute"

    def __post_init__(self) -> None:
        _check_name_or_path("dataset", self.dataset, tuple(DATASETS), "loader")
        _check_name_or_path("model", self.model, tuple(MODELS), "factory")
        check_choice("procedure", self.procedure, PROCEDURE_NAMES)
        check_choice("groups", self.groups, GROUP_NAMES)
        check_choice("optimizer", self.optimizer, OPTIMIZER_NAMES)
        check_choice("device", self.device, DEVICE_NAMES)
        check_int("epochs", self.epochs, 1, MAX_EPOCHS)
        if self.retrain_epochs is not None:
            check_int("retrain_epochs", self.retrain_epochs, 1, MAX_EPOCHS)
        check_number("lr", self.lr, 0, low_open=True)
        object.__setattr__(self, "lr", float(self.lr))  # 1 and 1.0 must hash the same
        check_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        check_int("seed", self.seed, 0, MAX_SEED)
        for flag in ("constrain_first", "constrain_last", "download", "verify_data", "cuda_graph"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {type(getattr(self, flag)).__name__}")
        self._check_constraint()
        self._check_validation()
        self._normalise_layers()
        self._normalise_layer_sparsity()
        fp = self.data_fingerprint
        if fp is not None and (not isinstance(fp, str) or not fp):
            raise TypeError(f"data_fingerprint must be a non-empty str or None, got {fp!r}")
        src = self.model_source
        if src is not None and (not isinstance(src, str) or not src or not is_plugin(self.model)):
            raise ValueError(
                "model_source must be None or, for a package.module:factory model, the "
                f"non-empty sha256 of its module file; got {src!r} for model {self.model!r}"
            )
        if self.data_dir is not None:
            if not isinstance(self.data_dir, (str, Path)):
                raise TypeError(
                    f"data_dir must be a str or Path, got {type(self.data_dir).__name__}"
                )
            object.__setattr__(self, "data_dir", str(self.data_dir))

    def _check_constraint(self) -> None:
        if self.procedure == "dense":
            if self.constraint is not None:
                raise ValueError(
                    f"constraint must be None for procedure='dense', got {self.constraint!r}"
                )
            return
        needs_constraint = self.procedure in ("projected", "lottery") or (
            self.procedure == "magnitude" and self.layer_sparsity is None
        )
        if self.constraint is None:
            if needs_constraint:
                raise ValueError(
                    f"constraint is required for procedure={self.procedure!r}"
                    + (" (or give layer_sparsity)" if self.procedure == "magnitude" else "")
                )
            return
        check_choice("constraint", self.constraint, constraint_names())
        REGISTRY[self.constraint].check_groups(self.groups)
        if self.radius is None:
            raise ValueError(f"radius is required with constraint={self.constraint!r}")
        TRAINING_RADIUS.check("radius", self.radius)
        object.__setattr__(self, "radius", float(self.radius))

    def _check_validation(self) -> None:
        # 0 and 0.0 must hash the same: stored as the float
        object.__setattr__(self, "validation",
                           check_number("validation", self.validation, 0, MAX_VALIDATION))
        check_choice("radius_mode", self.radius_mode, RADIUS_MODES)
        if self.radius_mode == "relative" and self.constraint is None:
            raise ValueError("radius_mode='relative' needs a constraint (it scales its radius)")

    def _normalise_layers(self) -> None:
        if self.layers is None:
            return
        if isinstance(self.layers, str) or not isinstance(self.layers, (tuple, list)):
            raise TypeError("layers must be a tuple of fnmatch patterns (str) or None")
        if not self.layers or not all(isinstance(p, str) and p for p in self.layers):
            raise ValueError("layers must be a non-empty tuple of non-empty patterns")
        object.__setattr__(self, "layers", tuple(self.layers))

    def _normalise_layer_sparsity(self) -> None:
        if self.layer_sparsity is None:
            return
        if self.procedure != "magnitude":
            raise ValueError("layer_sparsity is only used by procedure='magnitude'")
        if isinstance(self.layer_sparsity, dict):
            pairs = tuple(self.layer_sparsity.items())
        else:
            pairs = tuple(tuple(p) for p in self.layer_sparsity)
        if not pairs:
            raise ValueError("layer_sparsity must name at least one layer")
        for pair in pairs:
            if len(pair) != 2 or not isinstance(pair[0], str):
                raise ValueError(
                    f"layer_sparsity entries must be (layer_name, fraction_zero), got {pair!r}"
                )
            check_number(f"layer_sparsity fraction for {pair[0]!r}", pair[1], 0, 1)
        if len({name for name, _ in pairs}) != len(pairs):
            raise ValueError("layer_sparsity names a layer twice")
        object.__setattr__(self, "layer_sparsity", tuple((n, float(f)) for n, f in pairs))

    @property
    def data_source(self) -> DataSource:
        """Where and how this run reads its dataset (`data_dir`, `download`, `verify_data`)."""
        return DataSource.of(self)

    @property
    def resolved_retrain_epochs(self) -> int:
        """Epochs of the masked retraining phase (lottery / magnitude)."""
        return self.epochs if self.retrain_epochs is None else self.retrain_epochs

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists), stable field order; the results store hashes it."""
        out = asdict(self)
        for f in fields(self):
            value = out[f.name]
            if isinstance(value, tuple):
                out[f.name] = [list(v) if isinstance(v, tuple) else v for v in value]
        return out
