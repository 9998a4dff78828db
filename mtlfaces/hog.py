"""HOG features and the HOG + SVM multi-task baselines."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.validation import check_is_fitted

from ._preprocessing import prepare_images
from ._targets import TargetParser, stack_columns
from .tasks import classes_by_task


class HOGTransformer(TransformerMixin, BaseEstimator):
    """Histogram-of-oriented-gradients features (``skimage.feature.hog``) per image.

    Stateless: ``fit`` only checks the parameters. Images are converted to
    grayscale and resized to ``image_size`` first, so any image input accepted by
    :class:`~mtlfaces.MultiTaskFaceClassifier` works.

    Parameters
    ----------
    image_size : int, default=64
    orientations : int, default=9
    pixels_per_cell : int, default=8
    cells_per_block : int, default=2
    block_norm : str, default="L2-Hys"
    """

    def __init__(self, image_size=64, orientations=9, pixels_per_cell=8, cells_per_block=2,
                 block_norm="L2-Hys"):
        self.image_size = image_size
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags

    def fit(self, X, y=None):
        """Validate the parameters and record the input width."""
        if self.pixels_per_cell * self.cells_per_block > self.image_size:
            raise ValueError(
                f"pixels_per_cell*cells_per_block={self.pixels_per_cell * self.cells_per_block} "
                f"exceeds image_size={self.image_size}: no HOG block fits"
            )
        prepare_images(X, self.image_size, grayscale=True)  # validates X
        shape = np.asarray(X).shape
        self.n_features_in_ = int(np.prod(shape[1:]))
        return self

    def transform(self, X):
        """(n, n_hog_features) float32 HOG descriptors."""
        from skimage.feature import hog

        images = prepare_images(X, self.image_size, grayscale=True)[..., 0]
        shape = np.asarray(X).shape
        if hasattr(self, "n_features_in_") and len(shape) == 2 and shape[1] != self.n_features_in_:
            raise ValueError(f"X has {shape[1]} features, but HOGTransformer is "
                             f"expecting {self.n_features_in_} features as input")
        cell = (self.pixels_per_cell, self.pixels_per_cell)
        block = (self.cells_per_block, self.cells_per_block)
        return np.stack([
            hog(im, orientations=self.orientations, pixels_per_cell=cell,
                cells_per_block=block, block_norm=self.block_norm, feature_vector=True)
            for im in images
        ]).astype(np.float32)


class HOGSVMClassifier(ClassifierMixin, BaseEstimator):
    """Multi-task baseline: HOG → StandardScaler → one SVM per task.

    Speaks the interface of :class:`~mtlfaces.MultiTaskFaceClassifier` (same y
    formats, missing labels allowed, same ``predict``/``predict_proba``/``score``
    shapes). Each task's SVM is trained only on the rows that carry that task's
    label, which scikit-learn's ``MultiOutputClassifier`` cannot do.

    Parameters
    ----------
    kernel : {"linear", "rbf"}, default="linear"
        "linear" uses ``LinearSVC`` (fast; probabilities from a softmax of the
        decision function, uncalibrated); "rbf" uses an RBF ``SVC`` with
        sigmoid-calibrated probabilities (``CalibratedClassifierCV``, 3 folds;
        quadratic in the number of samples).
    C : float, default=1.0
    tasks, label_codes
        As in :class:`~mtlfaces.MultiTaskFaceClassifier`.
    image_size, orientations, pixels_per_cell, cells_per_block
        Passed to :class:`HOGTransformer`.
    class_weight : None or "balanced"
    random_state : int, optional

    Attributes
    ----------
    tasks_, classes_, n_features_in_
        As in :class:`~mtlfaces.MultiTaskFaceClassifier`.
    estimators_ : dict of str to Pipeline
        The fitted HOG → scaler → SVM pipeline of each task.
    """

    def __init__(self, kernel="linear", C=1.0, tasks=None, label_codes=None, image_size=64,
                 orientations=9, pixels_per_cell=8, cells_per_block=2, class_weight=None,
                 random_state=None):
        self.kernel = kernel
        self.C = C
        self.tasks = tasks
        self.label_codes = label_codes
        self.image_size = image_size
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.class_weight = class_weight
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        # HOG of a generic feature vector (a 1-row "image") carries little of it.
        tags.classifier_tags.poor_score = True
        return tags

    # The CNN's label parsing, so both estimators accept exactly the same y.
    def _labels(self, y, n):
        fixed = classes_by_task(self) if hasattr(self, "tasks_") else {}
        return TargetParser(self.tasks, self.label_codes, type(self).__name__).parse(y, n, fixed)

    def _svm(self, class_weight=None):
        if self.kernel == "linear":
            return LinearSVC(C=self.C, class_weight=class_weight, random_state=self.random_state)
        if self.kernel == "rbf":
            # Platt-scaled probabilities (SVC(probability=True) is deprecated in sklearn 1.9).
            return CalibratedClassifierCV(
                SVC(C=self.C, kernel="rbf", class_weight=class_weight,
                    random_state=self.random_state), ensemble=False, cv=3)
        raise ValueError(f"kernel={self.kernel!r} is invalid; expected 'linear' or 'rbf'")

    def fit(self, X, y):
        """Fit one HOG → scaler → SVM pipeline per task on that task's labelled rows."""
        self._svm()  # validates kernel before any work
        for attr in ("tasks_", "classes_", "estimators_"):
            self.__dict__.pop(attr, None)
        hog = HOGTransformer(self.image_size, self.orientations, self.pixels_per_cell,
                             self.cells_per_block).fit(X)
        features = hog.transform(X)
        codes, classes, single = self._labels(y, features.shape[0])
        self.tasks_ = list(codes)
        per_task = [classes[t] for t in self.tasks_]
        self.classes_ = per_task[0] if single and len(per_task) == 1 else per_task
        self.estimators_ = {}
        self.n_features_in_ = hog.n_features_in_
        self._hog = hog
        for t in self.tasks_:
            mask = codes[t] >= 0
            present = np.unique(codes[t][mask])
            if present.size < 2:
                raise ValueError(f"task {t!r} has {present.size} class(es) among its labelled "
                                 "rows; an SVM needs at least 2")
            model = make_pipeline(StandardScaler(), self._svm(self._class_weight(t, classes[t])))
            model.fit(features[mask], codes[t][mask])
            self.estimators_[t] = model
        return self

    def _class_weight(self, task, classes):
        """``class_weight`` for one task's SVM, with labels mapped to the SVM's class codes."""
        spec = self.class_weight
        if isinstance(spec, dict) and task in spec and isinstance(spec[task], (dict, str)):
            spec = spec[task]  # {task: ...} form, as MultiTaskFaceClassifier takes
        if spec is None or spec == "balanced":
            return spec
        if isinstance(spec, dict):
            index = {c: i for i, c in enumerate(classes)}
            unknown = [k for k in spec if k not in index]
            if unknown:
                raise ValueError(f"class_weight names {unknown}, not classes of task {task!r} "
                                 f"({list(classes)})")
            return {index[k]: float(v) for k, v in spec.items()}
        raise ValueError(f"class_weight={self.class_weight!r}; expected None, 'balanced', "
                         "{label: weight} or {task: ...}")

    def _is_single(self):
        return not isinstance(self.classes_, list)

    def _task_proba(self, t, features, n_classes):
        model = self.estimators_[t]
        seen = model.classes_
        out = np.zeros((features.shape[0], n_classes))
        if self.kernel == "rbf":
            out[:, seen] = model.predict_proba(features)
            return out
        scores = model.decision_function(features)
        if scores.ndim == 1:
            scores = np.stack([-scores, scores], axis=1)
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        out[:, seen] = e / e.sum(axis=1, keepdims=True)
        return out

    def _all_proba(self, X):
        check_is_fitted(self, "estimators_")
        features = self._hog.transform(X)
        return {t: self._task_proba(t, features, len(c)) for t, c in classes_by_task(self).items()}

    def predict_proba(self, X):
        """Per-task probabilities (list of arrays; one array for a 1-D y fit)."""
        probs = self._all_proba(X)
        out = [probs[t] for t in self.tasks_]
        return out[0] if self._is_single() else out

    def predict(self, X):
        """(n, n_tasks) labels ((n,) for a 1-D y fit)."""
        probs = self._all_proba(X)
        cols = [c[np.argmax(probs[t], axis=1)] for t, c in classes_by_task(self).items()]
        return cols[0] if self._is_single() else stack_columns(cols)

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of accuracy on the labelled entries."""
        pred = np.asarray(self.predict(X), dtype=object)
        if pred.ndim == 1:
            pred = pred[:, np.newaxis]
        codes, _, _ = self._labels(y, pred.shape[0])
        scores = []
        for j, t in enumerate(self.tasks_):
            if t not in codes:
                continue
            mask = codes[t] >= 0
            if not mask.any():
                continue
            index = {c: i for i, c in enumerate(classes_by_task(self)[t])}
            pred_codes = np.array([index[p] for p in pred[:, j]])
            w = None if sample_weight is None else np.asarray(sample_weight)[mask]
            scores.append(float(np.average(pred_codes[mask] == codes[t][mask], weights=w)))
        if not scores:
            raise ValueError("y has no labels to score against")
        return float(np.mean(scores))
