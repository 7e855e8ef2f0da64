"""Training and evaluation of the biaxial model: one function for notebooks and the terminal.

    result = train("data/chorales", "runs/chorales", epochs=20)     # notebook
    python -m musicutils train --data data/chorales --out runs/chorales --epochs 20
    python -m musicutils evaluate --checkpoint runs/chorales --data data/chorales --split valid

The run folder (RUN_DIR) holds everything about a run:

    config.json, model.weights.h5   the model with the BEST validation weights so far
                                    (`model.load_model(RUN_DIR)` reads it; so does `generate`)
    train.json                      the data path and every hyperparameter
    log.csv                         one row per completed epoch: epoch, nll, play_nll, val_nll,
                                    val_play_nll, seconds (NLL in nats per time step)
    backup/                         the last completed epoch: weights + optimizer state
                                    (epoch-NNNN.weights.h5) and state.json (epoch, early
                                    stopping counters, log rows)
    train.lock                      held (`fcntl.flock`) by the process training in RUN_DIR

Resuming. Every file is written atomically, and `backup/state.json` is written last: it is the
commit point of an epoch. Kill the process at any moment and run the same command again: it
restores the weights, the optimizer state, the early-stopping counters and the log of the last
committed epoch and carries on from the next one; log.csv is rewritten from the committed rows,
so it never repeats an epoch. The training data are a pure function of (seed, batch number)
(`datasets.SegmentSampler.dataset`), so the resumed run draws the same batches the
uninterrupted one would have, and each epoch's dropout masks are seeded by (seed, epoch) too,
so a resumed run reproduces the uninterrupted one. Running again with a
larger `--epochs` continues a finished run; other settings must match the folder's train.json.
Ctrl-C (KeyboardInterrupt) ends a run the same way: resumable, the CLI exits with status 130.

One writer. A second `train` on a folder that a live process is training in is refused at once
(an advisory lock that dies with its process: a killed run leaves no stale lock). A loss or
weights that stop being finite numbers end the run with a DataError before that epoch is
saved: the backup and the best model stay those of the last good epoch.

Likelihoods are in nats per time step, summed over the notes: `play_nll` counts the N play
bits, `nll` adds the articulation bits of the notes that play (the training loss). Validation
and `evaluate` score whole pieces (a silent step assumed before each), not random segments,
so their numbers are comparable between epochs and runs.
"""

from __future__ import annotations

import atexit
import csv
import functools
import io
import json
import os
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import datasets, stats
from . import model as model_lib
from ._checks import checked
from ._io import atomic_open, atomic_path
from ._lock import run_lock
from ._resources import model_folder
from ._tf import keras, tf
from .errors import CheckpointError, DataError
from .midi import Piece

__all__ = [
    "LOG_COLUMNS",
    "TrainResult",
    "TrainSettings",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_from_args",
    "load_data",
    "make_strategy",
    "read_log",
    "run_folder",
    "train",
    "train_from_args",
]

#: Columns of RUN_DIR/log.csv, in order.
LOG_COLUMNS = ("epoch", "nll", "play_nll", "val_nll", "val_play_nll", "seconds")

_PICKLE_SUFFIXES = (".pickle", ".pkl")
#: Settings that may differ when a run is resumed.
_RESUMABLE_CHANGES = ("epochs", "patience", "strategy", "verbose", "time_limit")


@dataclass
class TrainSettings:
    """Everything that defines a run (stored in RUN_DIR/train.json)."""

    data: str
    epochs: int = 50
    steps_per_epoch: int = 100
    batch_size: int = 10
    segment_length: int = 128
    time_sizes: list[int] = field(default_factory=lambda: [300, 300])
    note_sizes: list[int] = field(default_factory=lambda: [100, 50])
    chord_below: bool = False
    struck_below: bool = False
    dropout: float = 0.5
    learning_rate: float = 1e-3
    ema: float = 0.0
    transpose: int = 0
    validation_split: float = 0.1
    patience: int = 10
    seed: int = 0
    strategy: str = "default"
    precision: str = "float32"
    verbose: int = 1
    time_limit: float | None = None
    init_from: str | None = None


@dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        run_dir: the run folder.
        history: the rows of log.csv, as dicts (floats; NaN where there is no validation).
        epochs_completed: epochs in the log.
        best_epoch: the epoch (1-based, as in log.csv) whose weights are in RUN_DIR, or None.
        best_val_nll: its validation NLL (nats/step), or None without validation pieces.
        stopped_early: True when early stopping ended the run.
        resumed_from: completed epochs found in the backup at the start (0 = fresh run).
        model: the trained model holding the BEST weights.
    """

    run_dir: Path
    history: list[dict]
    epochs_completed: int
    best_epoch: int | None
    best_val_nll: float | None
    stopped_early: bool
    resumed_from: int
    model: object = None

    @property
    def outcome(self) -> str:
        """What the `train` call did, in words: "new run: trained epochs 1-12", "resumed after
        epoch 12: trained epochs 13-15", or "already finished: ..." (nothing was trained)."""
        trained = self.epochs_completed - self.resumed_from
        if trained <= 0:
            why = "early stopping ended it" if self.stopped_early else "no epoch left to train"
            return (
                f"already finished: the run in {self.run_dir.name} has {self.epochs_completed} "
                f"epoch{'' if self.epochs_completed == 1 else 's'} ({why})"
            )
        epochs = f"trained epochs {self.resumed_from + 1}-{self.epochs_completed}"
        if self.resumed_from == 0:
            return f"new run: {epochs}"
        return f"resumed after epoch {self.resumed_from}: {epochs}"


# ---------------------------------------------------------------------------------------------
# Data.


def load_data(
    data: str | os.PathLike,
    *,
    validation_split: float = 0.1,
    seed: int = 0,
    lowest: int | None = None,
    highest: int | None = None,
    verbose: int = 1,
) -> dict[str, list[Piece]]:
    """Pieces for training or evaluation from a MIDI folder or a benchmark pickle.

    Args:
        data: a folder of MIDI files, or a Boulanger-Lewandowski `.pickle`.
        validation_split: for a folder, the fraction of pieces held out (`datasets.split_pieces`
            with `seed`); a pickle keeps its own train/valid/test split.
        seed: the split's seed.
        lowest, highest: pitch window for MIDI folders (default: `data.load_corpus`'s 24..101).
        verbose: print the corpus summary of a folder.

    Returns:
        {"train": [...], "valid": [...]} for a folder (also "all": every piece, in file order);
        {"train", "valid", "test"} for a pickle.
    """
    validation_split = checked("validation_split", validation_split)
    seed = checked("seed", seed)
    path = Path(data)
    if path.is_file() and path.suffix.lower() in _PICKLE_SUFFIXES:
        return datasets.load_benchmark(path)
    if path.is_file():
        raise DataError(f"{path.name}: expected a folder of MIDI files or a .pickle benchmark")
    if not path.exists():
        raise DataError(f"{path}: no such folder or file")
    from . import data as data_lib

    window = {}
    if lowest is not None:
        window["lowest"] = lowest
    if highest is not None:
        window["highest"] = highest
    corpus = data_lib.load_corpus(path, progress=verbose > 0, **window)
    if verbose:
        print(corpus.summary())
    if not corpus.pieces:
        raise DataError(f"{path}: no readable MIDI files")
    train_pieces, valid_pieces = datasets.split_pieces(corpus.pieces, validation_split, seed)
    return {"train": train_pieces, "valid": valid_pieces, "all": list(corpus.pieces)}


# ---------------------------------------------------------------------------------------------
# Scoring whole pieces.


def _sums_fn(model):
    """A tf.function: padded batch -> (play NLL sum, articulation NLL sum, real steps)."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, model.n_notes, 2], tf.uint8),
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None, None], tf.float32),
        ],
        reduce_retracing=True,
    )
    def sums(state, beat, mask):
        logits = model({"state": state, "beat": beat}, training=False)
        play, articulate = model_lib.nats_of_each_step(state, logits)  # (B, T) nats each
        return (tf.reduce_sum(play * mask), tf.reduce_sum(articulate * mask), tf.reduce_sum(mask))

    return sums


def evaluate(
    model,
    pieces: list[Piece],
    *,
    batch_size: int = 8,
    max_steps: int = 4096,
    precision: str | None = None,
    _sums=None,
) -> dict:
    """Negative log-likelihood of whole pieces under a model, in nats per time step.

    Each piece is scored from its first step (a silent step assumed before it) to its last;
    pieces are batched with padding (`datasets.padded_batches`) and the padded steps masked.
    The per-step figure pools all steps: total NLL / total steps. `precision` ("float32",
    "bfloat16", "auto") runs the model's matrix products in that precision for this call;
    None keeps the model's own.

    Returns:
        {"nll": play + articulation, "play_nll": play bits only, "steps": steps scored,
         "pieces": pieces scored}.
    """
    batch_size = checked("batch_size", batch_size)
    if not pieces:
        return {"nll": float("nan"), "play_nll": float("nan"), "steps": 0, "pieces": 0}
    lowest, n_notes = datasets.check_compatible(pieces, "evaluation data")
    if (lowest, n_notes) != (model.lowest, model.n_notes):
        raise DataError(
            f"the model covers MIDI {model.lowest}..{model.lowest + model.n_notes - 1} but the "
            f"data {lowest}..{lowest + n_notes - 1}"
        )
    if precision is not None and _checked_precision(precision) != model.precision:
        with model_lib.use_precision(model, precision):  # traced anew, in that precision
            return evaluate(model, pieces, batch_size=batch_size, max_steps=max_steps)
    sums = _sums or _sums_fn(model)
    play = articulate = steps = 0.0
    for state, beat, mask in datasets.padded_batches(
        pieces, batch_size=batch_size, max_steps=max_steps
    ):
        p, a, s = sums(tf.constant(state), tf.constant(beat), tf.constant(mask))
        play += float(p)
        articulate += float(a)
        steps += float(s)
    if steps == 0:
        raise DataError("no time steps to score: every piece is empty")
    return {
        "nll": (play + articulate) / steps,
        "play_nll": play / steps,
        "steps": int(steps),
        "pieces": len(pieces),
    }


# ---------------------------------------------------------------------------------------------
# Run folder helpers.


def _write_atomic(path: Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as file:
        file.write(text)


def _log_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LOG_COLUMNS)
    for row in rows:
        writer.writerow(
            [row["epoch"]] + [("" if _isnan(row[c]) else f"{row[c]:.6f}") for c in LOG_COLUMNS[1:]]
        )
    return buffer.getvalue()


@contextmanager
def _quiet_saving():
    """Keras 3.15's h5 writer converts variables with np.array(copy=False), which numpy 2 flags
    with a DeprecationWarning per variable; it is harmless, so keep it out of the output."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        yield


def _isnan(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def read_log(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of RUN_DIR/log.csv as dicts (epoch int, the rest float; NaN for blanks)."""
    path = Path(run_dir) / "log.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {
            "epoch": int(r["epoch"]),
            **{c: float(r[c]) if r[c] else float("nan") for c in LOG_COLUMNS[1:]},
        }
        for r in rows
    ]


#: `train` arguments that do not change what a run computes, so `run_folder` leaves them out.
_NOT_IN_RUN_KEY = ("verbose", "strategy", "time_limit")
#: Settings added after runs were named: `run_folder` counts them only when they differ from
#: their default, so the folders of earlier runs keep their names (and resume).
_IN_RUN_KEY_WHEN_SET = ("struck_below", "init_from")
#: Settings that hold a path or None (train.json stores the absolute path).
_OPTIONAL_PATHS = ("init_from",)


def _canonical(value, default):
    """A JSON value for a setting: paths as text, sequences as lists, numbers as the type of
    `train`'s default (so 1e-3 and 0.001, or 12 and 12.0, name the same run)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [_canonical(v, 0) for v in value]
    if isinstance(default, bool) or isinstance(value, bool):
        return value
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    if isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def run_folder(root: str | os.PathLike, settings: dict) -> Path:
    """The run folder of these training settings: `root/run-<10 hex digits>`.

    The digits are a hash of every setting that changes what `train` computes: the keyword
    arguments of `train` (`data` included, `out` not), with its defaults filled in, minus
    verbose, strategy and time_limit. The same settings always give the same folder, so
    `train(out=run_folder(root, s), **s)` resumes an interrupted run or finds it finished;
    any other value (a learning rate, a number of epochs...) gives another folder, a new run.
    A setting added since runs were first named (`struck_below`, `init_from`) counts only when it
    is set, so those runs keep their folders. `init_from` enters as given too, as a path: the
    folder, not the weights in it.
    `data` enters as given (a relative and an absolute path are different keys).

    Args:
        root: the folder that holds the runs (not created here).
        settings: keyword arguments for `train`, including `data`.

    Returns:
        The path (not created: `train` creates it).

    Raises:
        TypeError: a key that `train` does not take (a typo would otherwise pass unnoticed),
            `out`, or no `data`.
    """
    import hashlib
    import inspect

    parameters = inspect.signature(train).parameters
    unknown = sorted(set(settings) - set(parameters) | ({"out"} & set(settings)))
    if unknown:
        raise TypeError(f"run_folder: not a setting of train(): {', '.join(unknown)}")
    if "data" not in settings:
        raise TypeError("run_folder: the settings need 'data'")
    key = {}
    for name, parameter in parameters.items():
        if name == "out" or name in _NOT_IN_RUN_KEY:
            continue
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        value = _canonical(settings.get(name, default), default)
        if name in _IN_RUN_KEY_WHEN_SET and value == default:
            continue
        key[name] = value
    text = json.dumps(key, sort_keys=True, default=str)
    return Path(root) / f"run-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _checked_precision(precision: str, *, resolve: bool = True) -> str:
    """`precision` checked (a DataError unless float32, bfloat16 or auto), and with `resolve`
    "auto" made the precision this machine runs (`model.resolve_precision`)."""
    choices = (*model_lib.PRECISIONS, "auto")
    if precision not in choices:
        raise DataError(f"precision must be one of {', '.join(choices)}, got {precision!r}")
    return model_lib.resolve_precision(precision) if resolve else precision


def make_strategy(name: str):
    """ "default": TensorFlow's default (one device). "mirrored": synchronous data parallelism
    over every GPU, or over every logical CPU device when there is no GPU (useful only for
    testing: real CPUs are already used by every op)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if name == "multiworker":
        return _multiworker_strategy()
    raise DataError(f"unknown strategy {name!r}; use 'default', 'mirrored' or 'multiworker'")


_MULTIWORKER = None


def _multiworker_strategy():
    """ "multiworker": `tf.distribute.MultiWorkerMirroredStrategy` over the machines TF_CONFIG
    names; one per process (TensorFlow wants it made before any other op), kept here."""
    global _MULTIWORKER
    if _MULTIWORKER is None:
        if not os.environ.get("TF_CONFIG"):
            raise DataError(
                "strategy multiworker needs TF_CONFIG: the workers' host:port list and this "
                "machine's index in it (README, Training on several machines)"
            )
        _MULTIWORKER = tf.distribute.MultiWorkerMirroredStrategy()
    return _MULTIWORKER


def _writes_run_folder(settings: TrainSettings) -> bool:
    """False on the workers of a multiworker run that are not the chief (TF_CONFIG's "chief",
    else worker 0): they train alike but write nothing into RUN_DIR."""
    if settings.strategy != "multiworker":
        return True
    return bool(_multiworker_strategy().extended.should_checkpoint)


def _from_chief(strategy, value) -> np.ndarray:
    """`value` (numbers, float64-exact) as the chief holds it, on every worker: one all-reduce
    to which only the first replica (on the chief) contributes."""
    local = tf.constant(np.asarray(value, np.float64))

    def contribution():
        first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
        return local * tf.cast(first, local.dtype)

    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(contribution), axis=None)
    return total.numpy()


def _sync_from_chief(strategy, model) -> None:
    """Give every worker the chief's weights and optimizer state: the chief may have resumed
    from its run folder, which the other machines need not see."""
    if not model.optimizer.built:
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
    for variable in [*model.variables, *model.optimizer.variables]:
        value = _from_chief(strategy, variable.numpy())
        variable.assign(tf.cast(value, variable.dtype))


def _worker_seed(seed: int, worker: int, workers: int) -> int:
    """The data seed of one worker's share of each batch (`seed` itself on a single machine)."""
    if workers == 1:
        return seed
    return int(np.random.SeedSequence([seed, worker]).generate_state(1)[0] % 2**31)


def _fit_function(model, strategy, sampler, settings):
    """`model.fit`, or under the multiworker strategy `_fit_multiworker` with the same call."""
    if settings.strategy != "multiworker":
        return model.fit
    return functools.partial(_fit_multiworker, model, strategy, sampler, settings)


def _fit_multiworker(
    model,
    strategy,
    sampler,
    settings,
    train_data,
    *,
    epochs,
    initial_epoch,
    steps_per_epoch,
    callbacks,
    shuffle=False,
    verbose=1,
):
    """`model.fit` under MultiWorkerMirroredStrategy, written out.

    Keras 3.15's own fit fails under this strategy (it averages the scalar logs along an axis
    they lack; tensorflow/tensorflow#72388), so this is its loop: each worker draws its own
    share of every batch (`sampler.dataset` with a per-worker seed, `_worker_seed`: the data
    stay a function of (seed, batch number), so a resumed run draws what the uninterrupted one
    would), the optimizer sums the replicas' gradients (each replica's loss is its share's mean
    over real steps, divided by the number of replicas), and the logs are averaged over the
    workers. After each epoch the chief's decision to stop (early stopping, the time limit)
    holds for every worker. `train_data` (the one-machine stream) and `shuffle` are unused.
    """
    del train_data, shuffle
    replicas = strategy.num_replicas_in_sync
    if settings.batch_size % replicas:
        raise DataError(
            f"batch-size {settings.batch_size} does not split evenly over the {replicas} "
            "replicas of the workers; use a multiple of it"
        )
    first_batch = initial_epoch * steps_per_epoch

    def worker_data(context):
        seed = _worker_seed(settings.seed, context.input_pipeline_id, context.num_input_pipelines)
        return sampler.dataset(
            context.get_per_replica_batch_size(settings.batch_size),
            seed=seed,
            transpose=settings.transpose,
            first_batch=first_batch,
        )

    batches = iter(strategy.distribute_datasets_from_function(worker_data))
    variables = model.trainable_variables

    def replica_step(inputs, state, weight=None):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            play, articulate = model_lib.nats_of_each_step(state, logits)  # (b, T) each
            weight = tf.ones_like(play) if weight is None else tf.cast(weight, play.dtype)
            steps = tf.maximum(tf.reduce_sum(weight), 1.0)
            loss = tf.reduce_sum((play + articulate) * weight) / steps
            scaled = loss / replicas  # the optimizer sums the replicas' gradients
        gradients = tape.gradient(scaled, variables)
        model.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss, tf.reduce_sum(play * weight) / steps

    @tf.function
    def train_step(batch):
        results = strategy.run(replica_step, args=tuple(batch))
        return [strategy.reduce(tf.distribute.ReduceOp.MEAN, r, axis=None) for r in results]

    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_progbar=verbose != 0,
        model=model,
        epochs=epochs,
        steps=steps_per_epoch,
        verbose=verbose,
    )
    model.stop_training = False
    logs = {}
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        totals = np.zeros(2)
        for index in range(steps_per_epoch):
            callback_list.on_train_batch_begin(index)
            totals += [float(value) for value in train_step(next(batches))]
            logs = {"loss": totals[0] / (index + 1), "play_nll": totals[1] / (index + 1)}
            callback_list.on_train_batch_end(index, logs)
            if model.stop_training:  # the same on every worker: the loss is averaged
                break
        callback_list.on_epoch_end(epoch, logs)
        model.stop_training = bool(_from_chief(strategy, float(model.stop_training)))
        if model.stop_training:
            break
    callback_list.on_train_end(logs)


class _RunCallback(keras.callbacks.Callback):
    """Validation on whole pieces, early stopping, best checkpoint, log.csv and the backup.

    Order at the end of each epoch: validate (with the averaged weights when `ema` is on); save
    the best model if improved; rewrite log.csv; write the backup weights; commit
    `backup/state.json` (the commit point); drop the older backup weights.
    """

    def __init__(
        self,
        run_dir: Path,
        state: dict,
        valid: list[Piece],
        patience: int,
        batch_size: int,
        verbose: int,
        seed: int = 0,
        deadline: float | None = None,
    ):
        super().__init__()
        self.seed = seed
        self.deadline = deadline  # time.perf_counter() value, or None
        self.run_dir = run_dir
        self.backup = run_dir / "backup"
        self.state = state
        self.valid = valid
        self.patience = patience
        self.batch_size = batch_size
        self.verbose = verbose
        self._sums = None
        self._started = 0.0
        self._epoch = 0
        #: Epochs committed to the run folder (backup/state.json written).
        self.committed = state["epoch"]
        #: Where the loss or the weights stopped being finite numbers, in words; None while not.
        self.diverged: str | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        self._epoch = epoch
        # Dropout masks as a function of (seed, epoch), so a resumed epoch replays them exactly.
        generator_state = getattr(getattr(self.model, "_dropout_seed", None), "state", None)
        if generator_state is not None:
            generator_state.assign(tf.constant([self.seed, epoch], generator_state.dtype))

    def on_train_batch_end(self, batch, logs=None):
        # Keras' running mean of the epoch's loss: one non-finite batch makes it non-finite.
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self._diverge(
                f"the loss is {float(loss)} in epoch {self._epoch + 1}, batch {batch + 1}"
            )

    def _diverge(self, where: str) -> None:
        """Stop training; `on_epoch_end` then neither validates, saves nor commits the epoch."""
        self.diverged = where
        self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        # The last batch's update can make the weights non-finite after a finite loss.
        if self.diverged is None and not all(
            np.isfinite(v.numpy()).all() for v in self.model.trainable_variables
        ):
            self._diverge(f"the weights are not finite after epoch {epoch + 1}")
        if self.diverged is not None:
            return  # the last committed epoch stays the run's state; the best model stays too
        logs = logs if logs is not None else {}
        # Validation and the best model use the averaged weights (with `ema`); the backup and
        # the training go on from the raw ones.
        with _averaged_weights(self.model):
            row = self._validate_and_keep_best(epoch, logs)
        self._commit_epoch(epoch, row)

    def _validate_and_keep_best(self, epoch, logs) -> dict:
        """Score the validation pieces; save the model if it is the best; return the log row."""
        if self.valid:
            if self._sums is None:
                self._sums = _sums_fn(self.model)
            scores = evaluate(self.model, self.valid, batch_size=self.batch_size, _sums=self._sums)
            logs["val_nll"] = scores["nll"]
            logs["val_play_nll"] = scores["play_nll"]
        row = {
            "epoch": epoch + 1,
            "nll": float(logs.get("loss", float("nan"))),
            "play_nll": float(logs.get("play_nll", float("nan"))),
            "val_nll": float(logs.get("val_nll", float("nan"))),
            "val_play_nll": float(logs.get("val_play_nll", float("nan"))),
            "seconds": time.perf_counter() - self._started,
        }
        state = self.state
        # Without validation pieces the latest weights are the ones kept.
        monitored = row["val_nll"] if self.valid else -float(epoch)
        if state["best"] is None or monitored < state["best"]:
            state.update(best=monitored, best_epoch=epoch + 1, wait=0)
            # A copy without the optimizer: Keras would save Adam's two slots per weight too,
            # tripling the file that `generate` and users load.
            inference = type(self.model).from_config(self.model.get_config())
            inference.set_weights(self.model.get_weights())
            with _quiet_saving():
                model_lib.save_model(inference, self.run_dir)
        else:
            state["wait"] += 1
        return row

    def _commit_epoch(self, epoch, row):
        """Append the row to log.csv, write the backup, then the commit point; stop if due."""
        state = self.state
        state["rows"].append(row)
        state["epoch"] = epoch + 1
        _write_atomic(self.run_dir / "log.csv", _log_text(state["rows"]))

        self.backup.mkdir(exist_ok=True)
        weights = self.backup / f"epoch-{epoch + 1:04d}.weights.h5"
        with atomic_path(weights, suffix=".weights.h5") as temp, _quiet_saving():
            self.model.save_weights(temp, overwrite=True)  # the model and its optimizer's state
        state["weights"] = weights.name
        _write_atomic(self.backup / "state.json", json.dumps(state, indent=1))
        self.committed = state["epoch"]
        for old in self.backup.glob("epoch-*.weights.h5"):
            if old.name != weights.name:
                old.unlink(missing_ok=True)

        if self.deadline is not None and time.perf_counter() + row["seconds"] > self.deadline:
            self.model.stop_training = True
            if self.verbose:
                print(f"time limit: stopping after epoch {epoch + 1}; run again to continue")
        if self.valid and state["wait"] >= self.patience:
            state["stopped_early"] = True
            _write_atomic(self.backup / "state.json", json.dumps(state, indent=1))
            self.model.stop_training = True
            if self.verbose:
                print(
                    f"early stopping: no improvement for {self.patience} epochs; best epoch "
                    f"{state['best_epoch']} (val_nll {state['best']:.4f})"
                )


@contextmanager
def _averaged_weights(model):
    """Swap the optimizer's moving average of the weights in (`ema` > 0) for the duration."""
    optimizer = model.optimizer
    if not getattr(optimizer, "use_ema", False):
        yield
        return
    raw = [v.numpy() for v in model.trainable_variables]
    optimizer.finalize_variable_values(model.trainable_variables)
    try:
        yield
    finally:
        for variable, value in zip(model.trainable_variables, raw, strict=True):
            variable.assign(value)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _state_problem(state, run_dir: Path) -> str | None:
    """What is wrong with the contents of backup/state.json, in words; None if nothing."""
    if not isinstance(state, dict):
        return "not a JSON object"
    kinds = {
        "epoch": (_is_count, "a whole number"),
        "best": (lambda v: v is None or _is_number(v), "a number or null"),
        "best_epoch": (lambda v: v is None or _is_count(v), "an epoch number or null"),
        "wait": (_is_count, "a whole number"),
        "rows": (lambda v: isinstance(v, list), "a list of log rows"),
        "stopped_early": (lambda v: isinstance(v, bool), "true or false"),
        "weights": (lambda v: isinstance(v, str) and Path(v).name == v, "a file name"),
    }
    for key, (valid, kind) in kinds.items():
        if key not in state:
            return f"no {key!r}"
        if not valid(state[key]):
            return f"{key!r} should be {kind}, not {state[key]!r}"
    rows = state["rows"]
    if len(rows) != state["epoch"]:
        return f"{len(rows)} log rows for {state['epoch']} epochs"
    for row in rows:
        if not (isinstance(row, dict) and all(_is_number(row.get(c)) for c in LOG_COLUMNS)):
            return f"a log row is not {', '.join(LOG_COLUMNS)} numbers: {row!r}"
    if not (run_dir / "backup" / state["weights"]).is_file():
        return f"its weights file {state['weights']} is missing"
    return None


def _read_state(run_dir: Path) -> dict | None:
    """backup/state.json (the last committed epoch), checked; None when there is none yet."""
    path = run_dir / "backup" / "state.json"
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        problem = _state_problem(state, run_dir)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # truncated, not JSON
        problem = f"not readable JSON: {exc}"
    if problem:
        raise CheckpointError(
            f"{path}: the resume state is broken ({problem}); delete {run_dir / 'backup'} to "
            "start the run over"
        )
    return state


def _settings_problem(stored) -> str | None:
    """What is wrong with the contents of train.json, in words; None if nothing.

    Settings missing from it take their defaults (files written before a setting existed);
    unknown settings and values of the wrong kind are errors.
    """
    if not isinstance(stored, dict):
        return "not a JSON object of training settings"
    defaults = asdict(TrainSettings(data=""))
    for key, value in stored.items():
        if key not in defaults:
            return f"unknown setting {key!r}"
        default = defaults[key]
        if key in _OPTIONAL_PATHS:
            valid = value is None or isinstance(value, str)
        elif isinstance(default, bool) or isinstance(default, str):
            valid = isinstance(value, type(default))
        elif isinstance(default, int):
            valid = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float) or default is None:
            valid = _is_number(value) or (default is None and value is None)
        else:  # the layer sizes
            valid = isinstance(value, list) and all(isinstance(v, int) for v in value)
        if not valid:
            return f"{key} = {value!r} is not a value of that setting"
    if "data" not in stored:
        return "no 'data' (the training data path)"
    return None


def _read_settings(path: Path) -> dict:
    """RUN_DIR/train.json, checked; a one-line CheckpointError naming it when it is damaged."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        problem = _settings_problem(stored)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # truncated, not JSON
        problem = f"not readable JSON: {exc}"
    if problem:
        raise CheckpointError(f"{path}: the run's settings are broken ({problem})")
    return stored


def _check_settings(run_dir: Path, settings: TrainSettings) -> None:
    """Write train.json, or check that a resumed run uses the same settings."""
    path = run_dir / "train.json"
    current = asdict(settings)
    if path.exists():
        stored = _read_settings(path)
        defaults = asdict(TrainSettings(data=settings.data))
        changed = [
            key
            for key, value in current.items()
            if key not in _RESUMABLE_CHANGES
            and key != "data"
            and stored.get(key, defaults[key]) != value
        ]
        # The same folder however it is written (older train.json files hold relative paths).
        if Path(stored["data"]).resolve() != Path(settings.data).resolve():
            changed.insert(0, "data")
        if changed:
            key = changed[0]
            raise CheckpointError(
                f"{run_dir}: this run was started with {key}={stored.get(key)!r}, not "
                f"{current[key]!r}; use the same settings to resume it, or a new --out folder"
            )
    elif (run_dir / "model.weights.h5").exists() or (run_dir / "config.json").exists():
        raise CheckpointError(
            f"{run_dir}: holds a model but no train.json (not a training run folder); "
            "choose another --out folder"
        )
    _write_atomic(path, json.dumps(current, indent=1) + "\n")


# ---------------------------------------------------------------------------------------------
# Training.


def _layer_sizes(name: str, sizes) -> list[int]:
    """The LSTM sizes of one axis as a list of ints, each in RANGES["layer_size"]."""
    try:
        sizes = list(sizes)
    except TypeError:
        sizes = []
    if not sizes:
        raise DataError(f"{name} must list at least one layer size")
    return [checked(f"{name}[{i}]", size, kind="layer_size") for i, size in enumerate(sizes)]


def train(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    epochs: int = 50,
    steps_per_epoch: int = 100,
    batch_size: int = 10,
    segment_length: int = 128,
    time_sizes=(300, 300),
    note_sizes=(100, 50),
    chord_below: bool = False,
    struck_below: bool = False,
    dropout: float = 0.5,
    learning_rate: float = 1e-3,
    ema: float = 0.0,
    transpose: int = 0,
    validation_split: float = 0.1,
    patience: int = 10,
    seed: int = 0,
    strategy: str = "default",
    precision: str = "float32",
    verbose: int = 1,
    time_limit: float | None = None,
    init_from: str | os.PathLike | None = None,
) -> TrainResult:
    """Train a biaxial model on a MIDI folder or benchmark pickle; resume the run if `out` has one.

    Args:
        data: a folder of MIDI files or a benchmark `.pickle` (train split for training, valid
            split for validation).
        out: the run folder (created); see the module docstring for its files.
        epochs: total epochs of the run (a resumed run continues up to this number).
        steps_per_epoch: batches per epoch.
        batch_size: segments per batch (the global batch: split over the devices of a
            distribution strategy).
        segment_length: steps per training segment (starts on a bar line; a shorter piece is
            one segment padded with silence that the loss ignores, see `datasets`).
        time_sizes, note_sizes: LSTM sizes of the time-axis and note-axis stacks.
        chord_below: give the note axis the chord chosen so far at each step
            (`model.chord_below_inputs`).
        struck_below: also give it the notes below struck at each step (`model.BiaxialModel`).
        dropout: dropout rate between layers (Johnson used 0.5).
        learning_rate: Adam's learning rate.
        ema: 0 (off), or the momentum of an exponential moving average of the weights, updated
            after every batch (0.99: about the last 100 batches). Validation, the saved best
            model and so `evaluate` and `generate` use the averaged weights; training itself
            goes on from the raw ones (Polyak averaging; it smooths the validation curve, and
            on JSB Chorales it changed the test NLL by under 0.01 nats per step).
        transpose: augment by a random transposition within +-`transpose` semitones.
        validation_split: for a folder, the fraction of whole pieces held out.
        patience: stop after this many epochs without a lower validation NLL.
        seed: seeds the split, the weights' initialisation, the data stream and the dropout
            masks (through `keras.utils.set_random_seed`, which also reseeds Python's, NumPy's
            and TensorFlow's global generators).
        strategy: "default", "mirrored" or "multiworker" (`make_strategy`). With
            "multiworker" run the same call on every machine with its TF_CONFIG: the global
            batch is split over the workers, each draws its own share, and only the chief
            (worker 0) validates and writes `out`; the others keep their files in a temporary
            folder removed when the process exits, and return its path.
        precision: of the LSTMs' matrix products: "float32" (default), "bfloat16" (the weights,
            the LSTM cell and the loss stay float32; `model.matmul`) or "auto" (bfloat16 where
            the machine multiplies it natively, `model.resolve_precision`). train.json keeps
            the value given; the model's config.json the precision it ran.
        verbose: 0 silent, 1 progress bar and summaries, 2 one line per epoch.
        time_limit: wall-clock budget of this call in seconds, or None. Training stops after
            the last epoch that is expected to finish within it (judged by the previous
            epoch's duration); the run stays resumable.
        init_from: a model folder (a run folder, or the bundled `pretrained`) whose weights a
            new run starts from instead of random ones: fine-tuning, or going on training a
            model whose run folder is gone (the optimizer starts afresh). Its architecture
            must be the one these settings build, and its pitch range and grid the data's;
            a DataError names the settings that would match. A resumed run continues from
            its own backup.

    Returns:
        A `TrainResult` whose `model` holds the best weights (the ones saved in `out`).
    """

    started = time.perf_counter()
    run_dir = Path(out)
    if strategy == "multiworker" and not _multiworker_strategy().extended.should_checkpoint:
        # Not the chief: train alike, but write into a folder of its own, removed at exit.
        scratch = tempfile.mkdtemp(prefix="musicutils-worker-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        run_dir = Path(scratch) / "run"
    # Every number in its range (`_checks.RANGES`, shared with the CLI): NaN, infinities and
    # seeds NumPy cannot take are refused here, before anything is read or written.
    settings = TrainSettings(
        # Absolute, so that evaluate and a resumed run recognise the folder from any directory.
        data=str(Path(data).resolve()),
        epochs=checked("epochs", epochs),
        steps_per_epoch=checked("steps_per_epoch", steps_per_epoch),
        batch_size=checked("batch_size", batch_size),
        segment_length=checked("segment_length", segment_length),
        time_sizes=_layer_sizes("time_sizes", time_sizes),
        note_sizes=_layer_sizes("note_sizes", note_sizes),
        chord_below=bool(chord_below),
        struck_below=bool(struck_below),
        dropout=checked("dropout", dropout),
        learning_rate=checked("learning_rate", learning_rate),
        ema=checked("ema", ema),
        transpose=checked("transpose", transpose),
        validation_split=checked("validation_split", validation_split),
        patience=checked("patience", patience),
        seed=checked("seed", seed),
        strategy=str(strategy),
        precision=_checked_precision(str(precision), resolve=False),
        verbose=int(verbose),
        time_limit=None if time_limit is None else checked("time_limit", time_limit),
        init_from=None if init_from is None else str(model_folder(init_from).resolve()),
    )
    if _starts_from(settings, run_dir):
        if not (Path(settings.init_from) / model_lib.CONFIG_FILE).is_file():
            raise CheckpointError(f"init_from {init_from}: no saved model there (no config.json)")
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):  # one writer per run folder: a second one is refused at once
        return _train_holding_lock(run_dir, settings, started)


def _train_holding_lock(run_dir: Path, settings: TrainSettings, started: float) -> TrainResult:
    """The rest of `train`, run while it holds the run folder's lock (`_lock.run_lock`)."""
    data, seed, verbose = settings.data, settings.seed, settings.verbose
    time_limit = settings.time_limit
    pieces = load_data(
        data, validation_split=settings.validation_split, seed=settings.seed, verbose=verbose
    )
    sampler = datasets.SegmentSampler(pieces["train"], settings.segment_length)
    valid = pieces["valid"]
    if not _writes_run_folder(settings):
        valid = []  # the chief validates and decides when to stop (`_fit_multiworker`)
    if valid:
        datasets.check_compatible(valid + pieces["train"], "training and validation data")
    if verbose:
        print(f"training: {sampler.describe()}")
        print(f"validation: {len(valid)} whole pieces, {sum(p.n_steps for p in valid)} steps")

    initial = None  # the model a new run starts from (init_from), checked before train.json
    if _starts_from(settings, run_dir):
        initial = _initial_model(settings, sampler, pieces["train"][0].steps_per_beat)
    _check_settings(run_dir, settings)
    state = _read_state(run_dir)
    resumed_from = state["epoch"] if state else 0
    if state is None:
        state = {
            "epoch": 0,
            "best": None,
            "best_epoch": None,
            "wait": 0,
            "rows": [],
            "stopped_early": False,
            "weights": None,
        }
    # log.csv is a view of the committed rows: rewriting it drops any uncommitted epoch.
    _write_atomic(run_dir / "log.csv", _log_text(state["rows"]))

    def finished(stopped: bool) -> TrainResult:
        if not (run_dir / model_lib.CONFIG_FILE).exists() and not _writes_run_folder(settings):
            best_model = None  # a worker that had nothing left to train
        else:
            best_model = model_lib.load_model(run_dir)
        return TrainResult(
            run_dir=run_dir,
            history=state["rows"],
            epochs_completed=state["epoch"],
            best_epoch=state["best_epoch"],
            best_val_nll=state["best"] if valid and state["best"] is not None else None,
            stopped_early=stopped,
            resumed_from=resumed_from,
            model=best_model,
        )

    stopped = bool(valid) and state["wait"] >= settings.patience
    if settings.strategy == "multiworker":  # every worker starts where the chief's folder is
        epoch, stopped = _from_chief(_multiworker_strategy(), [state["epoch"], stopped])
        state["epoch"], stopped = int(epoch), bool(stopped)
    if state["epoch"] >= settings.epochs or stopped:
        if verbose:
            why = "stopped early" if stopped else f"all {settings.epochs} epochs done"
            print(
                f"{run_dir}: nothing to do ({why}); raise --epochs"
                + (" and --patience" if stopped else "")
                + " to train further"
            )
        return finished(stopped)

    keras.utils.set_random_seed(settings.seed)
    distribution = make_strategy(settings.strategy)
    with distribution.scope():
        model = model_lib.BiaxialModel(
            n_notes=sampler.n_notes,
            lowest=sampler.lowest,
            time_sizes=settings.time_sizes,
            note_sizes=settings.note_sizes,
            dropout=settings.dropout,
            seed=settings.seed,
            steps_per_beat=pieces["train"][0].steps_per_beat,
            chord_below=settings.chord_below,
            struck_below=settings.struck_below,
            precision=_checked_precision(settings.precision),
            voices=stats.typical_voices(pieces["train"]),  # a sampling hint for generate
        )
        model.compile(
            optimizer=keras.optimizers.Adam(
                settings.learning_rate,
                use_ema=settings.ema > 0,
                ema_momentum=settings.ema if settings.ema > 0 else 0.99,
            ),
            loss=model_lib.BiaxialNLL(),
            weighted_metrics=[model_lib.PlayNLL()],  # Keras 3 weights only these
        )
        example = next(iter(sampler.dataset(2, seed=seed).take(1)))[0]
        model(example, training=False)  # build the weights
        if state["weights"]:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(run_dir / "backup" / state["weights"])
        elif initial is not None:
            model.set_weights(initial.get_weights())
        else:  # a new run starts predicting the training data's base rates, not 1/2
            model.output_layer.bias.assign(model_lib.base_rate_logits(sampler.states))
    if settings.strategy == "multiworker":
        _sync_from_chief(distribution, model)
    if verbose and resumed_from:
        print(f"resuming {run_dir} after epoch {resumed_from}")

    train_data = sampler.dataset(
        settings.batch_size,
        seed=settings.seed,
        transpose=settings.transpose,
        first_batch=state["epoch"] * settings.steps_per_epoch,
    )
    deadline = None if time_limit is None else started + float(time_limit)
    callback = _RunCallback(
        run_dir,
        state,
        valid,
        settings.patience,
        settings.batch_size,
        verbose,
        settings.seed,
        deadline,
    )
    state["stopped_early"] = False  # a resumed run (say, with more patience) starts afresh
    try:
        _fit_function(model, distribution, sampler, settings)(
            train_data,
            epochs=settings.epochs,
            initial_epoch=state["epoch"],
            steps_per_epoch=settings.steps_per_epoch,
            callbacks=[callback],
            shuffle=False,
            verbose=verbose,
        )
    except KeyboardInterrupt:
        # Everything up to the last committed epoch is on disk (state.json is written last).
        done = callback.committed
        saved = f"epochs 1-{done} are saved" if done > 1 else f"epoch {done} is saved"
        saved = saved if done else "no epoch was completed yet"
        raise KeyboardInterrupt(
            f"{run_dir}: interrupted; {saved}; run the same command again to resume"
        ) from None
    if callback.diverged:
        kept = (
            f"it keeps epoch {state['epoch']} (best model: epoch {state['best_epoch']})"
            if state["epoch"]
            else "it holds no trained epoch"
        )
        raise DataError(
            f"{run_dir}: training diverged: {callback.diverged}; nothing of that epoch was "
            f"saved and {kept}; lower --learning-rate and train into a new --out folder"
        )
    return finished(state.get("stopped_early", False))


def _starts_from(settings: TrainSettings, run_dir: Path) -> bool:
    """Whether this process loads `init_from`'s weights to start the run: it has one, no epoch
    is committed yet (an existing run, even one stopped during its first epoch before any was
    saved, otherwise continues from its own backup and no longer needs the folder), and it
    writes the run folder (of a multiworker run only the chief loads them)."""
    if not settings.init_from or (run_dir / "backup" / "state.json").exists():
        return False
    return _writes_run_folder(settings)


def _initial_model(settings: TrainSettings, sampler, steps_per_beat: int) -> model_lib.BiaxialModel:
    """The model of `settings.init_from`, checked against the new run: the architecture of
    `settings`, the pitch range of the training data (`sampler`) and its grid, or a DataError
    that says which settings would match."""
    source = model_lib.load_model(settings.init_from)
    name = Path(settings.init_from).name
    wanted = {
        "time_sizes": (tuple(source.time_sizes), tuple(settings.time_sizes)),
        "note_sizes": (tuple(source.note_sizes), tuple(settings.note_sizes)),
        "chord_below": (bool(source.chord_below), bool(settings.chord_below)),
        "struck_below": (bool(source.struck_below), bool(settings.struck_below)),
    }
    if any(have != want for have, want in wanted.values()):
        flags = [
            f"--time-sizes {','.join(map(str, source.time_sizes))}",
            f"--note-sizes {','.join(map(str, source.note_sizes))}",
        ]
        flags += ["--chord-below"] * bool(source.chord_below)
        flags += ["--struck-below"] * bool(source.struck_below)
        raise DataError(
            f"init_from {name}: its model is another architecture than these settings build; "
            f"train with exactly its own: {' '.join(flags)}"
        )
    if (source.n_notes, source.lowest) != (sampler.n_notes, sampler.lowest):
        raise DataError(
            f"init_from {name}: it plays MIDI notes {source.lowest}-"
            f"{source.lowest + source.n_notes - 1}, but this data spans "
            f"{sampler.lowest}-{sampler.lowest + sampler.n_notes - 1}"
        )
    if source.steps_per_beat != steps_per_beat:
        raise DataError(
            f"init_from {name}: it was trained on {source.steps_per_beat} steps per beat, this "
            f"data has {steps_per_beat}"
        )
    return source


def train_from_args(args) -> TrainResult:
    """The `python -m musicutils train` command."""
    result = train(
        args.data,
        args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        segment_length=args.segment_length,
        time_sizes=args.time_sizes,
        note_sizes=args.note_sizes,
        chord_below=args.chord_below,
        struck_below=args.struck_below,
        dropout=args.dropout,
        learning_rate=args.learning_rate,
        ema=args.ema,
        transpose=args.transpose,
        validation_split=args.validation_split,
        patience=args.patience,
        seed=args.seed,
        strategy=args.strategy,
        precision=args.precision,
        verbose=0 if args.quiet else 1,
        init_from=args.init_from,
    )
    if result.best_val_nll is not None:
        print(
            f"best epoch {result.best_epoch}: validation NLL {result.best_val_nll:.4f} "
            f"nats/step; model in {result.run_dir}"
        )
    else:
        print(f"{result.epochs_completed} epochs; model in {result.run_dir}")
    return result


# ---------------------------------------------------------------------------------------------
# Evaluation of a checkpoint.


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    *,
    split: str | None = None,
    batch_size: int = 8,
    precision: str | None = None,
) -> dict:
    """Score a run folder's model on data (see `evaluate_from_args` for which pieces), with its
    matrix products in `precision` (None: the precision the model was trained in).

    Returns:
        `evaluate`'s dict plus "split" (the pieces scored, in words) and "derived" (True when
        the articulation came from onsets, i.e. a benchmark pickle).
    """

    batch_size = checked("batch_size", batch_size)
    run_dir = Path(checkpoint)
    model = model_lib.load_model(run_dir)
    path = Path(data)
    if path.is_file() and path.suffix.lower() in _PICKLE_SUFFIXES:
        split = split or "test"
        if split == "all":
            raise DataError(f"{path.name}: choose one split (train, valid or test)")
        pieces = datasets.load_benchmark(path)[split]
        what, derived = f"{path.name}, {split} split", True
    else:
        trained_on = _trained_on(run_dir)
        is_training_folder = trained_on is not None and Path(trained_on["data"]).resolve() == (
            path.resolve()
        )
        split = split or ("valid" if is_training_folder else "all")
        if split in ("train", "valid") and not is_training_folder:
            raise DataError(
                f"{path}: not the folder this run was trained on, so it has no {split} split; "
                "use --split all"
            )
        if split == "test":
            raise DataError(
                f"{path}: a MIDI folder has no test split; use --split all "
                "(a folder the model never saw) or --split valid"
            )
        validation = trained_on["validation_split"] if is_training_folder else 0.0
        seed = trained_on["seed"] if is_training_folder else 0
        pieces = load_data(
            path,
            validation_split=validation,
            seed=seed,
            lowest=model.lowest,
            highest=model.lowest + model.n_notes,
            verbose=0,
        )[split]
        what, derived = f"{path}, {split} pieces", False
    if not pieces:
        raise DataError(f"{what}: there are no pieces to score")
    scores = evaluate(model, pieces, batch_size=batch_size, precision=precision)
    return {**scores, "split": what, "derived": derived}


def _trained_on(run_dir: Path) -> dict | None:
    """The run's train.json (checked: a damaged one is an error), or None without one."""
    path = run_dir / "train.json"
    if not path.exists():
        return None
    return _read_settings(path)


def evaluate_from_args(args) -> dict:
    """The `python -m musicutils evaluate` command.

    Which pieces: for a benchmark pickle, `--split` (default test). For a MIDI folder: the
    folder the run was trained on gives `--split valid` (default; the held-out pieces, the same
    split train.json recorded) or `train`; any other folder is scored whole (`--split all`).
    Prints the NLL in nats per time step, play bits and play + articulation, and ends with
    `nll_per_step=X` (play bits, the benchmark figure).
    """
    scores = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        split=args.split,
        batch_size=args.batch_size,
        precision=getattr(args, "precision", None),
    )
    print(f"data: {scores['split']}: {scores['pieces']} pieces, {scores['steps']} steps")
    print(
        f"play NLL:              {scores['play_nll']:.4f} nats/step "
        f"(the benchmark figure; {scores['play_nll'] / np.log(2):.3f} bits)"
    )
    note = "articulation derived from onsets" if scores["derived"] else "the training objective"
    print(f"play + articulate NLL: {scores['nll']:.4f} nats/step ({note})")
    print(f"nll_per_step={scores['play_nll']:.6f}")
    return scores
