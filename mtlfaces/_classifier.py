"""The scikit-learn estimator around the multi-task Keras network."""

import contextlib
import copy
import numbers
import random
import warnings
import weakref
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _metadata, _serialization
from . import tasks as _tasks
from ._losses import MISSING
from ._network import allow_xla, augmentation_spec
from ._preprocessing import prepare_images
from ._serialization import ModelFileError
from ._targets import KNOWN as _KNOWN
from ._targets import SINGLE as _SINGLE
from ._targets import TargetParser, stack_columns  # noqa: F401  (stack_columns: 0.3 name)
from .tasks import YEARS_TASK, age_distribution, classes_by_task

_TRACED = weakref.WeakKeyDictionary()  # model -> {test_time_flip: traced inference function}
_INT8 = weakref.WeakKeyDictionary()  # model -> Int8Network of the estimator's int8_
#: Images per network call at predict time: larger batches are classified 64 at a time,
#: where the bundled network's throughput peaked on the 2-core machine it was tuned on
#: (``mtlfaces benchmark --batch-sizes`` shows it on yours).
PREDICT_CHUNK = 64
_POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]
_FRACTION = [Interval(Real, 0, 1, closed="left")]
_ARCHITECTURE = ("filters", "convs_per_block", "dense_units")
#: A fit with fewer optimizer steps than this warns that it is too short to learn, and sets
#: the BatchNorm statistics from the training images (their running means would still
#: hold much of their initial state: momentum 0.9 leaves 0.9**steps of it).
MIN_STEPS = 100
#: A validation split smaller than this is too noisy to stop training on.
MIN_VALIDATION = 100
#: A fit of at most this many optimizer steps (batches × epochs) runs them eagerly instead
#: of tracing a graph first: tracing costs more than such a fit's steps (on 2 CPU cores,
#: 8 steps of a tiny network were about even; from 15 steps on, tracing won for the tiny
#: and the default networks alike). partial_fit always traces: its calls share the
#: compiled step.
EAGER_STEPS = 8
#: Named architectures: ``MultiTaskFaceClassifier(**ARCHITECTURES["bundled"])`` builds the
#: bundled model's network (recipes/train_pretrained.py trains it; ``mtlfaces train
#: --architecture bundled``). "default" is the estimator's own defaults: half the
#: convolutions, quicker to fit on small data.
ARCHITECTURES = {
    "bundled": dict(image_size=48, grayscale=True, filters=(32, 64, 128, 256),
                    convs_per_block=2, dense_units=(256,), dropout=0.4),
    "default": dict(image_size=48, grayscale=True, filters=(32, 64, 128, 256),
                    convs_per_block=1, dense_units=(256, 128), dropout=0.3),
}


class MultiTaskFaceClassifier(ClassifierMixin, BaseEstimator):
    """Age group, gender and emotion from face images with one multi-task CNN.

    A shared convolutional trunk (``convs_per_block`` × (Conv 3×3 → BatchNorm →
    ReLU), then MaxPool 2×2, per entry of ``filters``; then Flatten) feeds one softmax head per task
    (Dense → Dropout per entry of ``dense_units``). Samples may carry only some
    labels: a missing label is masked out of that head's loss and metrics.

    Parameters
    ----------
    tasks : sequence of str, optional
        Task names, in output order. Required when y is a 2-D array; with a
        DataFrame, defaults to the columns among ``age``, ``gender``, ``emotion``;
        with a 1-D y, defaults to a single generic task. ``age``, ``gender`` and
        ``emotion`` have fixed vocabularies (:data:`mtlfaces.TASKS`) and accept the
        spellings datasets use; any other task name takes its classes from y.
    image_size : int, default=48
        Side of the square network input (the bundled model's); images of another size
        are resized.
    grayscale : bool, default=True
        Feed one channel (True) or RGB (False).
    filters : tuple of int, default=(32, 64, 128, 256)
        Filters of each trunk conv block.
    convs_per_block : int, default=1
        Conv → BatchNorm → ReLU layers in each block before its pooling
        (2 gives a VGG-style trunk: more capacity for the same pooling).
    dense_units : tuple of int, default=(256, 128)
        Units of the dense layers of each head.
    dropout : float, default=0.3
        Dropout after each head dense layer.
    learning_rate : float, default=1e-3
        Adam learning rate.
    lr_schedule : {"constant", "cosine"}, default="constant"
        "cosine" decays the learning rate to zero over ``epochs``: over the
        epochs of each :meth:`fit` call (a warm-started ``fit`` restarts it from
        ``learning_rate``), or over ``epochs`` calls of :meth:`partial_fit`.
    batch_size : int or "auto", default="auto"
        Images per optimizer step. "auto": ``min(128, max(16, n // 16))`` for ``n``
        training images, so a small data set still gets at least 16 steps per epoch (as
        scikit-learn's ``MLPClassifier`` bounds its batch by the sample count). A
        :meth:`fit` that makes fewer than :data:`MIN_STEPS` (100) steps in all warns
        that it is too short to learn; raise ``epochs`` or lower ``batch_size``.
    epochs : int, default=20
        Passes over the data per :meth:`fit` call.
    validation_fraction : float, default=0.1
        Part of the training data held out to monitor training (and for early
        stopping). 0 disables it. A hold-out of fewer than :data:`MIN_VALIDATION` (100)
        images is too noisy to stop on: then nothing is held out, every image trains, and
        a warning says so.
    early_stopping : bool, default=True
        Stop when the validation loss has not improved for ``patience`` epochs
        and restore the best weights. Needs a validation set of at least
        :data:`MIN_VALIDATION` images (``validation_fraction`` of the data, or
        ``validation_data``); with a smaller one it is off, with a warning.
    patience : int, default=5
    loss_weights : dict of str to float, optional
        Weight of each task's loss in the total (default 1 each).
    class_weight : None, "balanced" or dict, optional
        "balanced" weights each task's classes by inverse frequency; a dict maps
        task to "balanced" or to ``{label: weight}``.
    label_smoothing : float, default=0.0
    age_sigma : float, optional
        Label-distribution targets for the ``age`` task: when an age label is a
        number of years, the face's target is spread over the age groups by a
        normal distribution of this standard deviation (years) centred on the
        middle of its year of age (a 29-year-old at 29.5: with 3, 0.57 Young
        and 0.43 Middle Age), instead of all on its group. Faces labelled with
        a group name keep a one-hot target. None (default): one-hot for all.
    soft_target_weight : float, default=1.0
        Weight, relative to a real label's 1, of a soft target that :meth:`fit`'s
        ``soft_targets`` gives for a face whose label for that task is missing: a
        teacher's guess, in distillation (a soft target beside a real label, such as
        annotators' votes, keeps the label's weight). Multiplies ``sample_weight``;
        ``class_weight`` does not apply to such faces (they have no class).
    mixup : float, default=0.0
        Mixup's Beta(mixup, mixup) concentration; 0 turns it off. Each training
        image is blended with another image of its batch that has the same tasks
        labelled (``lam * a + (1 - lam) * b``, ``lam`` drawn per image), and each
        head learns the same blend of the two faces' targets, so no label is
        invented or half-missing. 0.2 blends mildly (most ``lam`` near 0 or 1), 1
        evenly. Applies to :meth:`fit` and :meth:`partial_fit`, never to validation
        data or prediction.
    augment : bool or dict, default=True
        Random transforms of the training images (identity at inference).
        True: horizontal flips, rotations up to ±0.03 of a turn (±10.8°) and
        shifts up to ±8 % of the image size. A dict overrides these entries:
        ``flip`` (bool), ``rotation`` (fraction of a turn), ``shift`` and
        ``zoom`` (fractions of the image size), ``contrast`` (largest relative
        change), ``erase`` (probability of blanking a random rectangle of 2–20 %
        of the image); 0 turns one off, e.g. ``{"zoom": 0.15, "erase": 0.5}``. Shifts move by whole pixels
        (``shift_interpolation="nearest"``); "bilinear" resamples, which blurs
        the training images (as mtlfaces 0.1.0 did). Rotation and zoom resample
        too. A network can learn that blur and then do worse on the sharp faces
        it classifies: a trunk with 2.8 times the bundled one's parameters,
        trained with a rotation and a bilinear shift, scored 11 points less
        emotion accuracy on sharp faces than on blurred ones (research/RESULTS.md,
        "A wider trunk from scratch"). Changing ``augment`` before a
        warm-started fit rebuilds the network's augmentation layers and keeps
        its weights.
    test_time_flip : bool, default=False
        Average the predictions on each image and its mirror image.
    inference : {"auto", "keras", "int8"}, default="auto"
        What classifies at predict time: the Keras network ("keras"), or its 8-bit copy
        made by :meth:`quantize` ("int8"; several times faster on a CPU, answers within a
        few tenths of a point: ``docs/speed.md``). "auto" uses the 8-bit copy when there
        is one. Training always uses the Keras network.
    mixed_precision : bool, default=False
        Compute convolutions and dense layers in bfloat16; heads' softmax stays float32.
        Faster on a GPU or a CPU with AMX or AVX-512 BF16; on a CPU without them bfloat16
        is emulated and training is several times slower than in float32, so ``fit``
        warns there (``docs/training.md``).
    label_codes : dict, optional
        ``{task: {code: label}}`` for integer-coded labels, e.g.
        ``{"emotion": mtlfaces.FER2013_EMOTION_CODES}``. Integers are otherwise
        only accepted for ``age`` (years).
    callbacks : list of keras.callbacks.Callback, optional
        Extra callbacks; deep-copied at each fit so the estimator stays clonable.
        ``keras.callbacks.BackupAndRestore(DIR)`` makes a long fit resumable: after
        a stop, the same fit call (in this process or a new one) goes on from the last
        finished epoch, with weights, optimizer state and schedule restored.
    warm_start : bool, default=False
        When True, :meth:`fit` continues from the fitted network (growing heads
        for new tasks) instead of building a new one.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, dropout, augmentation, shuffling and the validation split.
        The same int on the same CPU gives the same predictions; a ``RandomState`` is
        drawn from once per fit. Fitting leaves the caller's global NumPy and Python
        generators as they were.
    verbose : int, default=0
        0 silent, 1 progress bars, 2 one line per epoch.

    Attributes
    ----------
    tasks_ : list of str
        Tasks of the fitted network, in output order.
    classes_ : list of ndarray, or ndarray
        Classes of each task; a single array when fitted on a 1-D y.
    n_features_in_ : int
        Values per image (h·w·c) of the training images.
    model_ : keras.Model
        The network; outputs a dict ``{task: probabilities}``.
    history_ : dict of str to list of float
        Per-epoch loss and metrics (keys as Keras names them, e.g.
        ``val_gender_accuracy``), accumulated over warm-started fits.
    int8_ : bytes
        The 8-bit TensorFlow Lite copy of the network, after :meth:`quantize` (saved in
        the model file with it, with a digest of the weights it was made from). Any fit
        drops it: it would no longer match the network. :meth:`save` leaves out a copy
        whose network's weights were changed since, and says so.

    See Also
    --------
    mtlfaces.FaceCropper : turns photos into aligned face crops for this estimator.
    mtlfaces.load_pretrained : the bundled, trained model.

    Notes
    -----
    A flattened 2-D X is reshaped to square images when its width is s² or 3s²;
    its width must equal ``n_features_in_`` (the h·w·c of the training images),
    since a flat row carries no shape. Any other width is taken as a
    one-row image, so generic feature vectors work, though a CNN is a poor model
    for them.

    Examples
    --------
    >>> import pandas as pd
    >>> from mtlfaces import MultiTaskFaceClassifier
    >>> clf = MultiTaskFaceClassifier(epochs=2, image_size=32)  # doctest: +SKIP
    >>> y = pd.DataFrame({"age": [25, 70, None], "emotion": ["happy", None, "sad"]})
    >>> clf.fit(images, y).predict(images)  # doctest: +SKIP
    array([['Young', 'Happy'], ...], dtype=object)
    """

    def __init__(self, tasks=None, image_size=48, grayscale=True,
                 filters=(32, 64, 128, 256), convs_per_block=1, dense_units=(256, 128),
                 dropout=0.3, learning_rate=1e-3, lr_schedule="constant", batch_size="auto",
                 epochs=20,
                 validation_fraction=0.1, early_stopping=True, patience=5,
                 loss_weights=None, class_weight=None, label_smoothing=0.0,
                 age_sigma=None, soft_target_weight=1.0, mixup=0.0, augment=True, test_time_flip=False,
                 inference="auto", mixed_precision=False,
                 label_codes=None, callbacks=None, warm_start=False,
                 random_state=None, verbose=0):
        self.tasks = tasks
        self.image_size = image_size
        self.grayscale = grayscale
        self.filters = filters
        self.convs_per_block = convs_per_block
        self.dense_units = dense_units
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.loss_weights = loss_weights
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.age_sigma = age_sigma
        self.soft_target_weight = soft_target_weight
        self.mixup = mixup
        self.augment = augment
        self.test_time_flip = test_time_flip
        self.inference = inference
        self.mixed_precision = mixed_precision
        self.label_codes = label_codes
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.non_deterministic = self.random_state is None
        # A CNN for images is not meant to score well on generic tabular data
        # (scikit-learn's checks feed it blobs of 2-10 features).
        tags.classifier_tags.poor_score = True
        return tags

    # ------------------------------------------------------------ validation
    _parameter_constraints = {
        "tasks": [None, "array-like"],
        "image_size": _POSITIVE_INT,
        "grayscale": ["boolean"],
        "filters": ["array-like"],
        "convs_per_block": _POSITIVE_INT,
        "dense_units": ["array-like"],
        "dropout": _FRACTION,
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "epochs": _POSITIVE_INT,
        "validation_fraction": _FRACTION,
        "early_stopping": ["boolean"],
        "patience": _POSITIVE_INT,
        "loss_weights": [None, dict],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "label_smoothing": _FRACTION,
        "age_sigma": [None, Interval(Real, 0, None, closed="neither")],
        "soft_target_weight": [Interval(Real, 0, None, closed="left")],
        "mixup": [Interval(Real, 0, None, closed="left")],
        "augment": ["boolean", dict],
        "test_time_flip": ["boolean"],
        "inference": [StrOptions({"auto", "keras", "int8"})],
        "mixed_precision": ["boolean"],
        "label_codes": [None, dict],
        "callbacks": [None, list],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _check_params(self):
        """scikit-learn's checks of :attr:`_parameter_constraints`, then what they cannot say."""
        self._validate_params()
        name = type(self).__name__
        for param, constraints in self._parameter_constraints.items():
            value = getattr(self, param)
            # scikit-learn takes True for 1 where a number is wanted; a flag there is a slip.
            if (isinstance(value, (bool, np.bool_)) and "boolean" not in constraints
                    and "verbose" not in constraints):
                raise ValueError(f"{name}: {param}={value!r} is a boolean, which is not one "
                                 f"of its values; see the {param} parameter's documentation")
        for param in ("filters", "dense_units"):
            values = list(getattr(self, param))
            if any(not isinstance(v, Integral) or isinstance(v, bool) or v < 1 for v in values):
                raise ValueError(f"{name}: {param}={getattr(self, param)!r} is invalid; "
                                 "expected a tuple of positive integers, e.g. (32, 64)")
        if len(self.filters) == 0:
            raise ValueError(f"{name}: filters must not be empty")
        for param in ("age_sigma", "soft_target_weight", "mixup"):
            value = getattr(self, param)
            if value is not None and not np.isfinite(value):
                raise ValueError(f"{name}: {param}={value!r} must be finite")
        augmentation_spec(self.augment, name)

    # --------------------------------------------------------------- labels
    def _parser(self):
        return TargetParser(self.tasks, self.label_codes, type(self).__name__)

    # ---------------------------------------------------------------- model
    def _dtype_policy(self):
        return "mixed_bfloat16" if self.mixed_precision else None

    def _input_shape(self):
        return (self.image_size, self.image_size, 1 if self.grayscale else 3)

    def _seed(self):
        """An int seed from ``random_state`` (None: unseeded); a RandomState is drawn from."""
        if self.random_state is None:
            return None
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(2**31 - 1))
        return int(self.random_state) % (2**31)

    def _build(self, task_classes):
        from ._network import build_multitask_model

        return build_multitask_model(
            self._input_shape(), task_classes, filters=tuple(self.filters),
            dense_units=tuple(self.dense_units), dropout=self.dropout, augment=self.augment,
            seed=self._seed(), dtype_policy=self._dtype_policy(),
            convs_per_block=int(self.convs_per_block),
        )

    def _grow(self, task_classes):
        from ._network import add_heads

        self.model_ = add_heads(
            self.model_, task_classes, dense_units=tuple(self.dense_units),
            dropout=self.dropout, seed=self._seed(), dtype_policy=self._dtype_policy(),
        )
        self._invalidate()

    def _match_augmentation(self):
        """Before a warm-started fit: rebuild the network if ``augment`` changed since it was built.

        The augmentation layers are part of the network; the new one gets the
        same weights (and a new optimizer at the next compile).
        """
        from ._network import model_augmentation, same_augmentation, transfer_weights

        wanted = augmentation_spec(self.augment, type(self).__name__)
        if same_augmentation(model_augmentation(self.model_), wanted):
            return
        try:
            sizes = {t: len(c) for t, c in self._classes_by_task().items()}
            self.model_ = transfer_weights(self.model_, self._build(sizes))
        except ValueError as exc:
            raise ValueError(
                f"{type(self).__name__}: augment changed, but the fitted network cannot be rebuilt "
                f"from the current parameters to carry it ({exc}); restore the architecture "
                "parameters it was trained with, or set warm_start=False") from None
        self._invalidate()

    def _invalidate(self):
        self._compiled_for = None

    def _network_changed(self):
        """Say that ``model_`` was replaced or its weights set outside :meth:`fit` (averaged,
        grown to colour, loaded from a checkpoint): the 8-bit copy, made from the network as
        it was, is dropped (``inference="auto"`` then predicts with the Keras network), and
        the next fit compiles anew."""
        self._drop_int8()
        self._invalidate()

    def _drop_int8(self):
        """Forget the 8-bit copy and the weights it was made from."""
        self.__dict__.pop("int8_", None)
        self.__dict__.pop("_int8_of", None)

    def _compile(self, steps_per_epoch, epochs, caller):
        """Compile for training unless already compiled for the same settings.

        A recompile starts a new optimizer (and cosine schedule). Each :meth:`fit`
        call with the cosine schedule gets its own, decaying from ``learning_rate``
        over its epochs; successive :meth:`partial_fit` calls share one schedule
        over ``epochs`` calls and keep the optimizer's state.
        """
        import keras

        from ._losses import masked_accuracy_metric, masked_crossentropy

        key = (caller, tuple(self.tasks_), id(self.model_), self.lr_schedule,
               float(self.learning_rate), float(self.label_smoothing),
               repr(sorted((self.loss_weights or {}).items())))
        fresh = caller == "fit" and self.lr_schedule == "cosine"
        if not fresh and getattr(self, "_compiled_for", None) == key:
            return
        lr = float(self.learning_rate)
        if self.lr_schedule == "cosine":
            lr = keras.optimizers.schedules.CosineDecay(lr, max(1, steps_per_epoch * epochs))
        weights = dict(self.loss_weights or {})
        unknown = set(weights) - set(self.tasks_)
        if unknown:
            raise ValueError(f"loss_weights names task(s) {sorted(unknown)} the model does not "
                             f"have; its tasks are {self.tasks_}")
        if keras.backend.backend() == "jax":
            allow_xla(self.model_)  # else every JAX training step runs op by op
        self.model_.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss={t: masked_crossentropy(self.label_smoothing) for t in self.tasks_},
            loss_weights={t: float(weights.get(t, 1.0)) for t in self.tasks_},
            metrics={t: [masked_accuracy_metric("accuracy")] for t in self.tasks_},
        )
        self._compiled_for = key

    # ---------------------------------------------------------------- fit
    def _sample_weights(self, codes, sample_weight, n):
        base = np.ones(n, dtype=np.float32)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if sw.shape[0] != n:
                raise ValueError(f"sample_weight has {sw.shape[0]} entries for {n} images")
            if not np.isfinite(sw).all() or (sw < 0).any():
                raise ValueError("sample_weight must be finite and non-negative")
            if not sw.any():
                raise ValueError("Sample weights must contain at least one non-zero number")
            base = sw.astype(np.float32)
        out = {}
        for t, c in codes.items():
            w = base.copy()
            spec = self.class_weight
            if isinstance(spec, dict):
                spec = spec.get(t)
            if spec is not None:
                n_classes = len(self._classes_by_task()[t])
                if spec == "balanced":
                    labelled = c[c >= 0]
                    counts = np.bincount(labelled, minlength=n_classes).astype(np.float64)
                    present = counts > 0
                    cw = np.zeros(n_classes)
                    cw[present] = len(labelled) / (present.sum() * counts[present])
                elif isinstance(spec, dict):
                    classes = self._classes_by_task()[t]
                    cw = np.ones(n_classes)
                    for label, value in spec.items():
                        key = _tasks.normalize_label(t, label) if t in _KNOWN else label
                        idx = [i for i, k in enumerate(classes) if k == key]
                        if not idx:
                            raise ValueError(f"class_weight names {label!r}, not a class of "
                                             f"task {t!r} ({list(classes)})")
                        cw[idx[0]] = float(value)
                else:
                    raise ValueError(f"class_weight for task {t!r} is {spec!r}; expected "
                                     "'balanced' or {label: weight}")
                w = w * np.where(c >= 0, cw[np.maximum(c, 0)], 0.0).astype(np.float32)
            out[t] = w
        out["_base"] = base  # before class weights: a soft target without a label's
        return out

    def _classes_by_task(self):
        return classes_by_task(self)

    def _is_single(self):
        """Fitted on a 1-D y: ``classes_`` is one array, predictions are 1-D."""
        return not isinstance(self.classes_, list)

    def _set_classes(self, per_task, single):
        self.classes_ = per_task[0] if single and len(per_task) == 1 else list(per_task)

    def _check_architecture(self):
        """Before a warm-started fit: the architecture parameters must be the network's."""
        from ._network import network_architecture

        built = network_architecture(self.model_)
        wanted = {"filters": tuple(self.filters), "convs_per_block": int(self.convs_per_block),
                  "dense_units": tuple(self.dense_units)}
        changed = [f"{k}={wanted[k]!r} (the network has {built[k]!r})"
                   for k in _ARCHITECTURE if built[k] != wanted[k]]
        if changed:
            raise ValueError(f"{type(self).__name__}: warm_start=True continues the fitted "
                             f"network, which cannot take {', '.join(changed)}; restore "
                             f"{'it' if len(changed) == 1 else 'them'} or set "
                             "warm_start=False to train a new network")

    def fit(self, X, y, sample_weight=None, validation_data=None, soft_targets=None):
        """Train on images X with labels y (missing labels allowed).

        Parameters
        ----------
        X : array-like
            Images (n, h, w), (n, h, w, c) or flattened (n, d); uint8 0-255, uint16,
            or float in [0, 1].
        y : DataFrame, 2-D or 1-D array-like
            Labels per task; None, NaN or '' mean "no label".
        sample_weight : array-like of shape (n,), optional
        validation_data : tuple (X_val, y_val), optional
            Monitor (and early-stop on) this data instead of holding out
            ``validation_fraction`` of X.
        soft_targets : dict of str to array-like of shape (n, n_classes), optional
            A probability distribution over a task's classes (in ``classes_`` order: for
            age, gender and emotion :data:`mtlfaces.TASKS`) per image, learnt instead of
            the one-hot of its label: annotators' votes (FER+), or a teacher model's
            probabilities (distillation). A row of zeros or NaN gives none (the label's
            one-hot is learnt, or nothing where the label is missing). Where the label is
            missing, a row's target counts with ``soft_target_weight`` and is left out of
            the accuracy metrics. Rows must be non-negative and sum to 1 (within 0.01: a
            model's bfloat16 probabilities; they are rescaled to sum to 1). Takes
            precedence over ``age_sigma``'s distributions.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, epochs=self.epochs,
                         keep=self.warm_start and hasattr(self, "model_"),
                         validation_data=validation_data, caller="fit",
                         soft_targets=soft_targets)

    def partial_fit(self, X, y, sample_weight=None, classes=None, soft_targets=None):
        """One pass over (X, y) without re-initialising the network.

        The first call builds the network; its label sets are fixed from then on
        (for tasks other than age, gender and emotion, pass ``classes`` so labels
        absent from the first batch are known). A later call whose y carries a
        task the model lacks grows a new head on the trained trunk; the trunk and
        the existing heads keep their weights.

        Parameters
        ----------
        X, y, sample_weight
            As in :meth:`fit`.
        classes : array-like or dict of str to array-like, optional
            All classes of each generic task (array for a single task).
        soft_targets : dict of str to array-like, optional
            As in :meth:`fit`.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, epochs=1, keep=hasattr(self, "model_"),
                         classes=classes, validate=False, caller="partial_fit",
                         soft_targets=soft_targets)

    def _age_distributions(self, y, n, warn=True):
        """Soft age-group targets ``(n, 5)`` for ``age_sigma`` (zero rows where the age
        label is not a number of years), or None when there is nothing to spread (a
        UserWarning if ``warn``: validation data may well hold group names)."""
        if self.age_sigma is None or "age" in (self.label_codes or {}):
            return None
        parser = self._parser()
        names = parser.task_names(y)
        if "age" not in names:
            return None
        raw = parser.label_columns(y, names)[0]["age"]
        years = np.array([float(v) if isinstance(v, (numbers.Real, np.number))
                          and not isinstance(v, (bool, np.bool_)) and not _tasks.is_missing(v)
                          else np.nan for v in raw])
        if np.isnan(years).all():
            if not warn:
                return None
            warnings.warn(f"{type(self).__name__}: age_sigma={self.age_sigma!r} has no "
                          "effect: no age label in y is a number of years (group names "
                          "keep one-hot targets)", UserWarning, stacklevel=4)
            return None
        return age_distribution(years, float(self.age_sigma))

    def _soft_targets(self, soft_targets, n):
        """``fit``'s ``soft_targets``, checked: ``{task: float32 (n, n_classes)}`` with
        zero rows where none is given."""
        if soft_targets is None:
            return {}
        name = type(self).__name__
        if not isinstance(soft_targets, dict):
            raise ValueError(f"{name}: soft_targets must be a dict {{task: (n, n_classes) "
                             f"array}}, got {type(soft_targets).__name__}")
        sizes = {t: len(c) for t, c in self._classes_by_task().items()}
        out = {}
        for task, values in soft_targets.items():
            if task not in sizes:
                raise ValueError(f"{name}: soft_targets names task {task!r}, which the model "
                                 f"does not have; its tasks are {list(sizes)}")
            try:
                p = np.array(values, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: soft_targets[{task!r}] is not a numeric "
                                 "array") from None
            if p.shape != (n, sizes[task]):
                raise ValueError(f"{name}: soft_targets[{task!r}] has shape {p.shape}; "
                                 f"expected ({n}, {sizes[task]}): one row per image, one "
                                 f"column per class of {task!r}")
            p[np.isnan(p).all(axis=1)] = 0.0  # a NaN row: none given
            given = p.sum(axis=1) > 0
            bad = ~np.isfinite(p).all(axis=1) | (p < 0).any(axis=1)
            bad |= given & (np.abs(p.sum(axis=1) - 1) > 1e-2)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{name}: soft_targets[{task!r}] row {i} is {p[i].tolist()}; "
                                 "each row must be a probability distribution (non-negative, "
                                 "summing to 1) or all zeros / NaN for none")
            p[given] /= p[given].sum(axis=1, keepdims=True)  # float rounding (bfloat16 outputs)
            out[task] = p.astype(np.float32)
        return out

    def _targets(self, codes, weights, n, age=None, soft=None):
        """Per-head targets: class index (MISSING when absent), sample weight and, where
        soft targets are given (``soft``: ``{task: (n, k)}``; ``age``: the age
        distributions of ``age_sigma``), the soft target: (n, 2 + k)."""
        targets = {}
        soft = dict(soft or {})
        if age is not None:
            given = soft.get("age")
            soft["age"] = age.astype(np.float32) if given is None else np.where(
                given.sum(axis=1, keepdims=True) > 0, given, age).astype(np.float32)
        for t in self.tasks_:
            c = codes.get(t, np.full(n, MISSING, dtype=np.int64))
            w = weights.get(t, np.zeros(n, dtype=np.float32))
            columns = [c.astype(np.float32)[:, None], w[:, None]]
            if t in soft:
                guess = (c < 0) & (soft[t].sum(axis=1) > 0)  # a teacher's, no label
                base = weights.get("_base", np.ones(n, dtype=np.float32))
                columns[1] = np.where(guess, base * float(
                    self.soft_target_weight), w).astype(np.float32)[:, None]
                columns.append(soft[t])
            targets[t] = np.concatenate(columns, axis=1)
        return targets

    def _fit(self, *args, **kwargs):
        # Keras seeds, and shuffles with, the global NumPy and Python generators: give them
        # back to the caller as they were.
        numpy_state, python_state = np.random.get_state(), random.getstate()
        self._drop_int8()  # a copy of the network as it was: stale once trained
        try:
            return self._fit_seeded(*args, **kwargs)
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)

    def _fit_seeded(self, X, y, sample_weight, epochs, keep, classes=None, validate=True,
                    validation_data=None, caller="fit", soft_targets=None):
        self._check_params()
        images = prepare_images(X, self.image_size, self.grayscale)
        X = np.asarray(X)  # readable now: prepare_images accepted it
        n = images.shape[0]
        fixed = dict(self._classes_by_task()) if keep else {}
        if classes is not None:
            given = classes if isinstance(classes, dict) else {None: classes}
            for t, c in given.items():
                if t is None:
                    names = self._parser().task_names(y)
                    t = names[0]
                if t not in fixed:
                    fixed[t] = np.unique(np.asarray(c)) if t not in _KNOWN else np.array(
                        _KNOWN[t], dtype=object)
        codes, classes_by_task, single = self._parser().parse(y, n, fixed)
        for t, c in codes.items():
            # A batch may lack a known task's labels; a task cannot start without any.
            if (c >= 0).sum() == 0 and t not in fixed:
                raise ValueError(f"task {t!r} has no labels in y (every value is missing); "
                                 "drop the column or give it labels")
            if len(classes_by_task[t]) < 2 and t not in _KNOWN:
                raise ValueError(
                    f"task {t!r} has 1 class {list(classes_by_task[t])} in y; a classifier "
                    "needs at least 2 classes"
                )
        import keras

        if self.mixed_precision:
            from ._hardware import slow_bfloat16

            slow = slow_bfloat16(type(self).__name__)
            if slow:
                warnings.warn(slow, UserWarning, stacklevel=3)
        if not keep:
            seed = self._seed()
            if seed is not None:
                keras.utils.set_random_seed(seed)
            if hasattr(self, "model_"):
                del self.model_  # free the old graph before building a new one (GridSearchCV)
            self.tasks_ = list(codes)
            self._set_classes([classes_by_task[t] for t in self.tasks_], single)
            self.model_ = self._build({t: len(classes_by_task[t]) for t in self.tasks_})
            self._invalidate()
            self.history_ = {}
            self.n_features_in_ = int(np.prod(np.asarray(X).shape[1:])) if np.ndim(X) > 1 else 1
        else:
            self._check_architecture()
            if tuple(self.model_.input_shape[1:]) != self._input_shape():
                raise ValueError(
                    f"image_size={self.image_size}, grayscale={self.grayscale} do not match the "
                    f"fitted network's input {tuple(self.model_.input_shape[1:])}; restore them "
                    "or set warm_start=False to train a new network"
                )
            if np.ndim(X) == 2 and np.asarray(X).shape[1] != self.n_features_in_:
                raise ValueError(f"X has {np.asarray(X).shape[1]} features, but "
                                 f"{type(self).__name__} is expecting {self.n_features_in_} "
                                 "features as input")
            self._match_augmentation()
            new = [t for t in codes if t not in self.tasks_]
            if new:
                known = list(self._classes_by_task().values())
                self.tasks_ = self.tasks_ + new
                self._set_classes(known + [classes_by_task[t] for t in new], single=False)
                self._grow({t: len(classes_by_task[t]) for t in new})
        targets = self._targets(codes, self._sample_weights(codes, sample_weight, n), n,
                                age=self._age_distributions(y, n),
                                soft=self._soft_targets(soft_targets, n))

        val = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("validation_data must be a tuple (X_val, y_val)")
            X_val, y_val = validation_data
            val_images = prepare_images(X_val, self.image_size, self.grayscale)
            val_codes, _, _ = self._parser().parse(y_val, val_images.shape[0],
                                                   self._classes_by_task())
            unknown = [t for t in val_codes if t not in self.tasks_]
            if unknown:
                raise ValueError(f"validation_data has task(s) {unknown} that y lacks")
            ones = {t: np.ones(val_images.shape[0], dtype=np.float32) for t in val_codes}
            val_targets = self._targets(val_codes, ones, val_images.shape[0],
                                        age=self._age_distributions(y_val, val_images.shape[0],
                                                                    warn=False))
            # Keras averages the loss per batch: shuffle once (fixed order) so batches mix
            # the tasks' labels, as training batches do, instead of some holding none.
            order = np.random.RandomState(0).permutation(val_images.shape[0])
            val = (val_images[order], {t: v[order] for t, v in val_targets.items()})
        elif validate and self.validation_fraction > 0:
            n_val = int(round(n * self.validation_fraction))
            if n_val < MIN_VALIDATION:
                warnings.warn(
                    f"{type(self).__name__}: validation_fraction={self.validation_fraction} "
                    f"would hold out {n_val} of {n} images, too few to monitor training or "
                    f"stop early on (fewer than {MIN_VALIDATION}); training on all {n} "
                    "without early stopping. Pass validation_data, or validation_fraction=0 "
                    "to silence this.", UserWarning, stacklevel=4)
            elif n - n_val >= 1:
                rng = np.random.RandomState(self._seed())
                order = rng.permutation(n)
                tr, va = order[n_val:], order[:n_val]
                val = (images[va], {t: v[va] for t, v in targets.items()})
                images = images[tr]
                targets = {t: v[tr] for t, v in targets.items()}
        batch_size = self._batch_size(images.shape[0])
        steps = int(np.ceil(images.shape[0] / batch_size))
        self._compile(steps, self.epochs, caller)
        callbacks = copy.deepcopy(list(self.callbacks or []))
        if val is not None and self.early_stopping:
            if len(val[0]) >= MIN_VALIDATION:
                callbacks.append(keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=self.patience, restore_best_weights=True))
            else:
                warnings.warn(f"{type(self).__name__}: validation_data has {len(val[0])} "
                              f"images, too few to stop early on (fewer than "
                              f"{MIN_VALIDATION}); it is monitored, and training runs all "
                              f"{epochs} epochs", UserWarning, stacklevel=4)
        # keras.callbacks.BackupAndRestore leaves the epoch it restored on the model and
        # Keras never clears it: a later fit of this network would start there. Each fit
        # starts at epoch 0 unless a backup restores an epoch during this fit.
        self.model_._initial_epoch = None
        if self.mixup > 0:
            from ._mixup import mixup_batches

            sizes = {t: len(c) for t, c in self._classes_by_task().items()}
            done = len(next(iter(self.history_.values()), []))  # epochs trained so far
            seed = None if self.random_state is None else (self._seed() + done) % (2**31)
            data = dict(x=mixup_batches(images, targets, sizes, batch_size,
                                        float(self.mixup), seed))
        else:
            data = dict(x=images, y=targets, batch_size=batch_size, shuffle=True)
        # Tracing the training step costs more than a few steps of a small network take: a
        # fit of a handful of steps runs them eagerly (same operations).
        # Not partial_fit: its calls share one compiled step, so the tracing pays off.
        eager = (caller == "fit" and steps * epochs <= EAGER_STEPS and not _distributed())
        if bool(self.model_.run_eagerly) != eager:
            self.model_.run_eagerly = eager
            # Keras keeps the step function it made first until a compile: without this, a
            # warm fit after a fit of a few steps would run every step eagerly (5-6 times
            # slower), and one after a traced fit would not run eagerly.
            self.model_.train_function = self.model_.test_function = None
        first = (images[:2], {t: v[:2] for t, v in targets.items()})
        if not eager:
            _build_before_tracing(self.model_, first)
        with _multi_worker_build(self.model_, first):
            hist = self.model_.fit(**data, epochs=epochs, validation_data=val,
                                   verbose=self.verbose, callbacks=callbacks)
        for key, values in hist.history.items():
            self.history_.setdefault(key, []).extend(float(v) for v in values)
        made = steps * len(next(iter(hist.history.values()), []))
        if _read_int(self.model_.optimizer.iterations) < MIN_STEPS:
            # Steps since this optimizer began: partial_fit's calls add up, so a stream of
            # small calls recalibrates only until the running averages have settled.
            self._recalibrate_batchnorm(images)
        if made < MIN_STEPS and caller == "fit":
            warnings.warn(
                f"{type(self).__name__}: this fit made {made} optimizer steps ({steps} "
                f"batches of {batch_size} images an epoch), too few for the network to "
                f"learn (fewer than {MIN_STEPS}); raise epochs or lower batch_size",
                UserWarning, stacklevel=3)
        return self

    def _batch_size(self, n):
        """The batch size of a fit on ``n`` images (``batch_size``, or "auto"'s rule)."""
        if self.batch_size == "auto":
            return int(min(128, max(16, n // 16)))
        return int(self.batch_size)

    def _recalibrate_batchnorm(self, images, limit=1024):
        """Set each BatchNorm layer's moving statistics to those of (up to ``limit`` of) the
        training images, in one pass in training mode with the momentum at 0.

        After a short fit the moving averages still hold much of their initial state (mean
        0, variance 1), so the network would predict from statistics it never saw."""
        import keras

        layers = [layer for layer in self.model_.layers
                  if isinstance(layer, keras.layers.BatchNormalization)]
        if not layers or len(images) == 0:
            return
        picked = images[np.linspace(0, len(images) - 1, min(limit, len(images))).astype(int)]
        momenta = [layer.momentum for layer in layers]
        try:
            for layer in layers:
                layer.momentum = 0.0
            self.model_(picked, training=True)
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum

    # ------------------------------------------------------------ predict
    def _check_X(self, X):
        check_is_fitted(self, "model_")
        # The fitted network's input decides the preprocessing, whatever the parameters say now.
        height, _, channels = self.model_.input_shape[1:]
        images = prepare_images(X, int(height), channels == 1)
        arr = np.asarray(X)
        # Flattened rows carry no shape: their width must be the one seen in fit.
        if np.ndim(arr) == 2 and arr.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {arr.shape[1]} features, but {type(self).__name__} "
                             f"is expecting {self.n_features_in_} features as input")
        return images

    def _predict_fn(self):
        """The network's inference call, traced once per model and mirror setting.

        With ``test_time_flip``, one call classifies the batch and its mirror images
        together (the first half of each output is the batch's, the second its mirrors'):
        one call instead of two halves the per-call overhead, which dominates small batches
        (``docs/speed.md``, written by ``benchmarks/bench_speed.py``, compares the two).
        Kept in a module-level weak map rather than on
        the estimator, so predicting leaves the estimator's ``__dict__`` unchanged.
        """
        model = self.model_
        flip = bool(self.test_time_flip)
        cached = _TRACED.get(model, {}).get(flip)
        if cached is not None:
            return cached
        import keras

        shape = tuple(int(d) for d in model.input_shape[1:])
        # The traced function refers to the model weakly: a strong reference from the map's
        # value to its key would keep every model ever predicted with alive.
        network = weakref.ref(model)
        ops = keras.ops

        def views(x):
            return ops.concatenate([x, ops.flip(x, axis=2)], axis=0) if flip else x

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            spec = tf.TensorSpec((None,) + shape, tf.float32)
            fn = tf.function(lambda x: network()(views(x), training=False),
                             input_signature=[spec])
        else:  # other Keras backends: no tracing, still batched
            def fn(x):
                return network()(views(x), training=False)
        _TRACED.setdefault(model, {})[flip] = fn
        return fn

    def _int8_network(self):
        """The :class:`~mtlfaces._int8.Int8Network` of ``int8_`` (cached per blob), or None
        when predicting with the Keras network."""
        blob = getattr(self, "int8_", None)
        if self.inference == "keras" or (blob is None and self.inference == "auto"):
            return None
        if blob is None:
            raise ValueError(f"{type(self).__name__}: inference='int8', but the model has no "
                             "8-bit copy; call quantize(X) first, or pass inference='auto'")
        cached = _INT8.get(self.model_)
        if cached is None or cached.blob is not blob:
            from ._int8 import Int8Network

            try:
                cached = Int8Network(blob, self.tasks_,
                                     [len(c) for c in self._classes_by_task().values()])
            except ImportError as exc:  # no TensorFlow Lite interpreter in this install
                if self.inference == "auto":
                    return None
                raise ValueError(f"{type(self).__name__}: inference='int8': {exc}") from None
            _INT8[self.model_] = cached
        return cached

    def quantize(self, X, max_images=500):
        """Make the 8-bit copy of the network that predicts when ``inference`` is "auto" or
        "int8" (see ``docs/speed.md``).

        Parameters
        ----------
        X : array-like of images
            Calibration images, as for :meth:`predict`: faces like those the model will
            classify (training faces, not the validation faces you score it on). Up to
            ``max_images``, evenly spread over X, are used.

        Returns
        -------
        self
        """
        check_is_fitted(self, "model_")
        from ._int8 import quantize

        images = self._check_X(X)
        self.int8_ = quantize(self.model_, self.tasks_, images, max_images)
        self._int8_of = _serialization.weights_digest(self.model_)
        self._int8_network()  # check it now, not at the first predict
        return self

    def _probabilities(self, images):
        """{task: (n, n_classes) float array} for prepared images."""
        net = self._int8_network()
        if net is not None:
            def fn(x):
                if self.test_time_flip:
                    x = np.concatenate([x, x[:, :, ::-1]])
                return net(x)
        else:
            fn = self._predict_fn()
        chunks = {t: [] for t in self.tasks_}
        for start in range(0, images.shape[0], PREDICT_CHUNK):
            batch = images[start:start + PREDICT_CHUNK]
            out = fn(batch)
            n = batch.shape[0]
            for t in self.tasks_:
                p = np.asarray(out[t], dtype=np.float64)
                if self.test_time_flip:  # the batch's half and its mirrors' half
                    p = (p[:n] + p[n:]) / 2
                chunks[t].append(p)
        return {t: np.concatenate(v, axis=0) for t, v in chunks.items()}

    def predict_proba(self, X):
        """Class probabilities per task.

        Returns
        -------
        list of ndarray of shape (n, n_classes_task), in ``tasks_`` order; a
        single ndarray when the estimator was fitted on a 1-D y.
        """
        probs = self._probabilities(self._check_X(X))
        out = [probs[t] for t in self.tasks_]
        return out[0] if self._is_single() else out

    def predict(self, X):
        """Most probable label per task.

        Returns
        -------
        ndarray of shape (n, n_tasks), labels in ``tasks_`` order; shape (n,)
        when the estimator was fitted on a 1-D y.
        """
        probs = self._probabilities(self._check_X(X))
        cols = [c[np.argmax(probs[t], axis=1)] for t, c in self._classes_by_task().items()]
        return cols[0] if self._is_single() else stack_columns(cols)

    def predict_frame(self, X):
        """Predictions as a DataFrame: one label and one probability column per task."""
        import pandas as pd

        probs = self._probabilities(self._check_X(X))
        data = {}
        for t, classes in self._classes_by_task().items():
            best = np.argmax(probs[t], axis=1)
            data[t] = classes[best]
            data[f"{t}_proba"] = probs[t][np.arange(len(best)), best]
        return pd.DataFrame(data)

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of the accuracy on the labelled entries of y.

        With a DataFrame, the model's tasks found among its columns are scored
        (tasks the model has but y lacks are left out, other columns ignored);
        with an array, columns are matched as in :meth:`fit`.
        """
        check_is_fitted(self, "model_")
        import pandas as pd

        images = self._check_X(X)
        if isinstance(y, pd.DataFrame):
            # Score the model's tasks that y has; other columns (metadata) are ignored, and
            # so is an age in years (an error in years, not an accuracy: evaluate scores it).
            names = [c for c in y.columns if c in self.tasks_ and c != YEARS_TASK]
            if not names:
                raise ValueError(f"y has none of the model's tasks {self.tasks_} as a column "
                                 f"(its columns: {list(y.columns)})")
        else:
            names = self._parser().task_names(y)
        if self._is_single() and names == [_SINGLE]:
            names = list(self.tasks_)
        parser = self._parser()
        columns, _ = parser.label_columns(y, names)
        unknown = [t for t in columns if t not in self.tasks_]
        if unknown:
            raise ValueError(f"y has task(s) {unknown} the model was not fitted on "
                             f"(its tasks: {self.tasks_})")
        probs = self._probabilities(images)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        scores = []
        for t, values in columns.items():
            if len(values) != images.shape[0]:
                raise ValueError(f"X has {images.shape[0]} images but y has {len(values)} "
                                 f"labels for {t!r}")
            codes = parser.encode(t, parser.normalize(t, values), self._classes_by_task()[t])
            mask = codes >= 0
            if not mask.any():
                continue
            hits = (np.argmax(probs[t], axis=1) == codes)[mask]
            w = None if sw is None else sw[mask]
            scores.append(float(np.average(hits, weights=w)))
        if not scores:
            raise ValueError("y has no labels to score against (every value is missing)")
        return float(np.mean(scores))

    # ---------------------------------------------------------- persistence
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_compiled_for", None)
        if "model_" in state:
            state["model_"] = _serialization.model_to_bytes(state["model_"])
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), bytes):
            state["model_"] = _serialization.model_from_bytes(state["model_"])
        # 0.3.x kept the classes twice and the input's ndim (never read): keep them once.
        state.pop("_input_ndim", None)
        state.pop("_single_output", None)
        state.pop("_classes", None)
        self.__dict__.update(state)

    def _metadata(self):
        """The JSON part of a model file: tasks, classes, parameters, preprocessing."""
        params = {k: _serialization.jsonable(v) for k, v in self.get_params(deep=False).items()
                  if k not in _serialization.UNSAVED_PARAMS}
        if isinstance(self.random_state, np.random.RandomState):
            params["random_state"] = None  # a generator's state is no parameter to restore
        return {
            "tasks": list(self.tasks_),
            "classes": [{"values": _serialization.jsonable(np.asarray(c).tolist()),
                         "dtype": str(np.asarray(c).dtype)}
                        for c in self._classes_by_task().values()],
            "single_output": self._is_single(),
            "n_features_in": int(self.n_features_in_),
            "params": params,
            "preprocessing": {"image_size": self.image_size, "grayscale": bool(self.grayscale),
                              "scale": "uint8 / 255, float images in [0, 1]"},
            "history": self.history_,
        }

    @classmethod
    def _from_metadata(cls, meta, load_network, load_int8, path):
        """An estimator from a model file's metadata, its network and its optional 8-bit
        copy (``load_network`` and ``load_int8`` read them). Every field of ``meta`` is
        checked (:mod:`mtlfaces._metadata`) before the network is loaded, then the network
        and the copy against the fields."""
        fields = _metadata.check_metadata(meta, path)
        unknown = sorted(k for k in fields["params"] if k not in cls._get_param_names())
        if unknown:
            raise ModelFileError(f"{path}: field 'params' of the model file has parameters "
                                 f"this mtlfaces version does not know: {unknown!r:.200}")
        est = cls(**fields["params"])
        _metadata.check_parameters(est, path)
        model = load_network()
        _metadata.check_network(model, fields["tasks"], fields["classes"], est.get_params(),
                                path)
        est.model_ = model
        est.tasks_ = fields["tasks"]
        est._set_classes(fields["classes"], fields["single"])
        est.n_features_in_ = fields["n_features_in"]
        est.history_ = fields["history"]
        blob = load_int8()
        if blob is not None:
            net = _metadata.check_int8(blob, fields["tasks"], fields["classes"],
                                       tuple(model.input_shape[1:]), path)
            made_of, digest = meta.get("int8_of"), _serialization.weights_digest(model)
            if made_of is not None and made_of != digest:
                raise ModelFileError(
                    f"{path}: the model file's 8-bit network was made from other weights "
                    "than its Keras network (field 'int8_of'); load and save it again "
                    "after quantize(X), or remove model.int8.tflite from the file")
            est.int8_ = blob
            est._int8_of = digest  # a file without the field (0.4's first files): as it is
            if net is not None:
                _INT8[model] = net  # checked: predict uses it as it is
        est._invalidate()
        return est

    def save(self, path):
        """Save the fitted estimator to ``path`` without pickle.

        The file is a zip with the Keras model (``.keras``) and a JSON document
        of the tasks, classes, parameters, preprocessing and package versions;
        :func:`mtlfaces.load_model` reads it back without running code from it.
        """
        check_is_fitted(self, "model_")
        extra = {}
        # "int8_of": the weights the 8-bit copy was made from (None: no copy, or not known).
        meta = dict(self._metadata(), int8_of=None)
        if getattr(self, "int8_", None) is not None:
            made_of = getattr(self, "_int8_of", None)
            if made_of is None or made_of == _serialization.weights_digest(self.model_):
                extra[_serialization.INT8_ENTRY] = self.int8_
                meta["int8_of"] = made_of
            else:
                warnings.warn(f"{type(self).__name__}.save({str(path)!r}): the network's "
                              "weights changed after quantize(), so its 8-bit copy no longer "
                              "matches; saved without it (call quantize(X) again to make "
                              "one)", UserWarning, stacklevel=2)
        _serialization.write_model_file(path, meta, self.model_, extra)
        return path

    @classmethod
    def load(cls, path):
        """Load an estimator written by :meth:`save` (see :func:`mtlfaces.load_model`)."""
        return cls._from_metadata(_serialization.read_metadata(path),
                                  lambda: _serialization.read_network(path),
                                  lambda: _serialization.read_int8(path), path)


def _tensorflow_backend():
    """Whether Keras runs on TensorFlow (``KERAS_BACKEND`` may name JAX or PyTorch)."""
    import keras

    return keras.backend.backend() == "tensorflow"


def _distributed():
    """Whether a ``tf.distribute`` strategy is in scope (never on another Keras backend)."""
    if not _tensorflow_backend():
        return False
    import tensorflow as tf

    return tf.distribute.has_strategy()


def _build_before_tracing(model, batch):
    """Create the optimizer's and the metrics' variables before a traced fit on TensorFlow.

    Without a distribution strategy, Keras's TensorFlow trainer leaves that to the first
    trace of the training step, and a ``tf.function`` that creates variables is traced a
    second time: building them first (from ``batch``'s shapes, as Keras does under a
    strategy) saves that trace, about a second of every small fit. Elsewhere (another
    backend, a strategy, a Keras without the method) Keras builds them itself.
    """
    build = getattr(model, "_symbolic_build", None)
    if build is None or not _tensorflow_backend() or _distributed():
        return
    build(data_batch=batch)


@contextlib.contextmanager
def _multi_worker_build(model, batch):
    """Let ``model.fit`` run under a ``tf.distribute.MultiWorkerMirroredStrategy``.

    Keras 3 builds a model's loss and metrics from a first batch that, under a strategy,
    it averages across replicas with ``strategy.reduce``; the collective strategy cannot
    reduce a nested batch and fit fails with "Attempt to convert a value (PerReplica...)"
    (keras-team/keras#20585, open). Only the batch's shapes and dtypes are used, so during
    this fit the build is given ``batch``, a slice of this worker's own data; and the
    logs are reduced as "first" (below). Without that strategy (or on another Keras
    backend), nothing changes.
    """
    if not _tensorflow_backend():
        yield
        return
    import tensorflow as tf

    strategy = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    original = model._maybe_symbolic_build

    def build(iterator=None, data_batch=None):
        return original(data_batch=batch if data_batch is None else data_batch)

    object.__setattr__(model, "_maybe_symbolic_build", build)
    # Each step's logs are then reduced with "mean" along axis 0, which fails on the
    # scalars (same issue): "first" returns them as they are. Gradients are all-reduced
    # by the strategy either way; the logged loss and metrics are this worker's.
    from keras.src.backend.tensorflow import trainer

    reduce = trainer.reduce_per_replica

    def reduce_first(values, strategy, reduction="auto"):
        return reduce(values, strategy, "first" if reduction == "auto" else reduction)

    trainer.reduce_per_replica = reduce_first
    try:
        yield
    finally:
        trainer.reduce_per_replica = reduce
        del model.__dict__["_maybe_symbolic_build"]


def _read_int(variable):
    """A scalar Keras variable's value as an int, also when a ``tf.distribute`` strategy
    holds it (a mirrored variable, whose ``int()`` fails)."""
    value = variable.value
    if hasattr(value, "read_value"):
        value = value.read_value()
    return int(np.asarray(value))


def load_model(path):
    """Load a model file written by :meth:`MultiTaskFaceClassifier.save`.

    No pickle is involved and the Keras model is loaded in safe mode, so a file
    from an untrusted source cannot run code. Files written by mtlfaces 0.3 load.

    Raises
    ------
    ModelFileError
        If the file is missing, corrupt, truncated or not an mtlfaces model.
    """
    return MultiTaskFaceClassifier.load(path)
