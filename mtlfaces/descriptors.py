"""dlib's face descriptor, and a read-out of age group and gender from it.

dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, installed
with ``face_recognition_models``; trained for identity on about three million faces) turns
an aligned face into 128 numbers. :class:`DescriptorReadout` reads task labels out of them
with one logistic regression per task. Alone it is a little weaker than the bundled
network on age group and gender, but it errs on other faces, so the mean of the two
models' probabilities beats either (``research/descriptor_probe.py``): the CLI's
``predict`` adds the bundled read-out to the bundled network on images (not on videos
unless asked: at 80 ms per face it would cost most of the frame rate). A read-out is saved
as JSON (numbers only; loading it runs nothing) and predicts with numpy alone.
"""

import json
import os

import numpy as np

from .faces import Face, _model
from .images import as_rgb_uint8

SIZE = 128  # numbers per descriptor
FORMAT = "mtlfaces-descriptor-readout"
FORMAT_VERSION = 1
PRETRAINED_READOUT_PATH = os.path.join(os.path.dirname(__file__), "models",
                                       "descriptor_readout.json")


class ReadoutFileError(ValueError):
    """A read-out file is missing, corrupt or not an mtlfaces descriptor read-out."""


def face_descriptors(image, faces, bgr=False):
    """Descriptors of faces already found in ``image``.

    Parameters
    ----------
    image : ndarray
        The image the faces were found in (RGB unless ``bgr``; grayscale is accepted).
    faces : sequence of Face
        From :func:`mtlfaces.detect_faces` or :func:`mtlfaces.faces.align_faces` on
        ``image``: their boxes and landmarks (5 or 68 points) place the descriptor's chip.

    Returns
    -------
    ndarray of shape (len(faces), 128), float32
    """
    return _descriptors_rgb(np.ascontiguousarray(as_rgb_uint8(image, bgr=bgr)), faces)


def _descriptors_rgb(rgb, faces):
    """:func:`face_descriptors` of an image that is RGB uint8 already (the pipeline's path)."""
    import dlib

    out = np.zeros((len(faces), SIZE), np.float32)
    for i, face in enumerate(faces):
        if not isinstance(face, Face) or face.landmarks is None:
            raise TypeError(f"faces[{i}] is {type(face).__name__}; expected a Face with "
                            "landmarks, as detect_faces returns")
        rect = dlib.rectangle(*(int(round(v)) for v in face.box))
        points = dlib.points([dlib.point(int(round(x)), int(round(y)))
                              for x, y in face.landmarks])
        shape = dlib.full_object_detection(rect, points)
        out[i] = np.asarray(_model("descriptor").compute_face_descriptor(rgb, shape))
    return out


_CROPS = None  # the crops, for forked workers (shared copy-on-write, never pickled)


def _crop_chunk(bounds):
    return crop_descriptors(_CROPS[bounds[0]:bounds[1]])


def crop_descriptors(crops, n_jobs=1, chunk=250):
    """Descriptors of face crops (one face filling each image, as UTKFace's 200×200 crops).

    dlib's detector looks for the face in each crop (the largest box; a centred box
    covering three quarters of the crop where it finds none), then the 5-point landmarks
    place the descriptor's chip. About 0.1 s per crop on one core; ``n_jobs`` > 1 splits
    the crops over forked processes (Linux, macOS), each loading dlib's models once.

    Returns
    -------
    features : ndarray of shape (n, 128), float32
    found : int
        How many crops the detector found a face in.
    """
    global _CROPS
    if n_jobs > 1 and len(crops) > chunk:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _CROPS = crops
        bounds = [(i, min(i + chunk, len(crops))) for i in range(0, len(crops), chunk)]
        try:
            with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                parts = list(pool.map(_crop_chunk, bounds))
        finally:
            _CROPS = None
        return np.concatenate([p[0] for p in parts]), sum(p[1] for p in parts)
    out, found = np.zeros((len(crops), SIZE), np.float32), 0
    for i, crop in enumerate(crops):
        rgb, shape, detected = crop_landmarks(crop)
        found += detected
        out[i] = np.asarray(_model("descriptor").compute_face_descriptor(rgb, shape))
    return out, found


def crop_landmarks(crop):
    """Where the descriptor's chip lies in a face crop: ``rgb, shape, detected``.

    ``rgb`` is the crop as contiguous RGB uint8, ``shape`` dlib's 5-point landmarks of
    the largest face the detector finds in it (of a centred box covering three quarters
    of the crop where it finds none; ``detected`` is then False).
    """
    import dlib

    rgb = np.ascontiguousarray(as_rgb_uint8(crop))
    boxes = _model("hog")(rgb, 0)
    h, w = rgb.shape[:2]
    box = (max(boxes, key=lambda b: b.area()) if len(boxes)
           else dlib.rectangle(w // 8, h // 8, w - w // 8, h - h // 8))
    return rgb, _model("landmarks5")(rgb, box), len(boxes) > 0


class DescriptorReadout:
    """One logistic regression per task on standardised face descriptors.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength (scikit-learn's ``LogisticRegression``).
    max_iter : int, default=2000

    Attributes
    ----------
    tasks_ : list of str
    classes_ : dict
        task -> list of class labels (str), the columns of :meth:`predict_proba`.
    n_samples_ : dict
        task -> how many labelled descriptors it was fitted on.
    """

    def __init__(self, C=1.0, max_iter=2000):
        self.C = C
        self.max_iter = max_iter

    def fit(self, X, y):
        """Fit on descriptors ``X`` (n, 128) and labels ``y``.

        ``y`` is a DataFrame or a dict of task -> labels, every column a task; labels
        of the known tasks (age, gender, emotion) are normalised as everywhere in mtlfaces
        (an age in years becomes its group). A missing label (None, NaN, "") leaves that
        row out of that task's fit.
        """
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        from .tasks import TASKS, is_missing, normalize_labels

        X = self._check(X)
        columns = dict(y.items()) if isinstance(y, (dict, pd.DataFrame)) else None
        if not columns:
            raise ValueError(f"y must be a DataFrame or a dict of task -> labels; "
                             f"got {type(y).__name__}")
        self.tasks_, self.classes_, self.n_samples_, self._params = [], {}, {}, {}
        for task, labels in columns.items():
            labels = np.asarray(labels, dtype=object)
            if len(labels) != len(X):
                raise ValueError(f"y[{task!r}] has {len(labels)} labels for {len(X)} "
                                 "descriptors")
            if task in TASKS:
                labels = normalize_labels(task, labels)
            given = np.array([not is_missing(v) for v in labels], dtype=bool)
            names = labels[given].astype(str)
            if len(set(names)) < 2:
                raise ValueError(f"y[{task!r}] has {len(set(names))} distinct label(s) "
                                 "among its given labels; a read-out needs two or more")
            mean, scale = X[given].mean(0), X[given].std(0)
            scale[scale == 0] = 1.0
            lr = LogisticRegression(C=self.C, max_iter=self.max_iter)
            lr.fit((X[given] - mean) / scale, names)
            coef, intercept = lr.coef_, lr.intercept_
            if len(lr.classes_) == 2:  # one logit z for class 1: softmax of (0, z) is the same
                coef = np.vstack([np.zeros_like(coef), coef])
                intercept = np.concatenate([[0.0], intercept])
            self.tasks_.append(str(task))
            self.classes_[str(task)] = [str(c) for c in lr.classes_]
            self.n_samples_[str(task)] = int(given.sum())
            self._params[str(task)] = dict(mean=mean, scale=scale, coef=coef.T,
                                           intercept=intercept)
        return self

    def predict_proba(self, X):
        """task -> (n, n_classes) class probabilities, columns in ``classes_[task]``."""
        if not hasattr(self, "tasks_"):
            raise RuntimeError("this DescriptorReadout is not fitted; call fit or load")
        X = self._check(X)
        out = {}
        for task in self.tasks_:
            p = self._params[task]
            logits = ((X - p["mean"]) / p["scale"]) @ p["coef"] + p["intercept"]
            logits -= logits.max(1, keepdims=True)
            e = np.exp(logits)
            out[task] = e / e.sum(1, keepdims=True)
        return out

    def predict(self, X):
        """task -> (n,) labels."""
        return {t: np.asarray(self.classes_[t])[p.argmax(1)]
                for t, p in self.predict_proba(X).items()}

    @staticmethod
    def _check(X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != SIZE:
            raise ValueError(f"X has shape {X.shape}; expected (n, {SIZE}) face descriptors "
                             "(mtlfaces.descriptors.face_descriptors)")
        return X

    def save(self, path):
        """Write the read-out as JSON (numbers and labels only), whole or not at all."""
        if not hasattr(self, "tasks_"):
            raise RuntimeError("this DescriptorReadout is not fitted; nothing to save")
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION,
                   "params": {"C": self.C, "max_iter": self.max_iter},
                   "tasks": {t: {"classes": self.classes_[t], "n_samples": self.n_samples_[t],
                                 **{k: np.asarray(v).tolist()
                                    for k, v in self._params[t].items()}}
                             for t in self.tasks_}}
        path = os.fspath(path)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(payload, fh)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path):
        """Read a read-out written by :meth:`save`."""
        path = os.fspath(path)
        try:
            with open(path) as fh:
                payload = json.load(fh)
        except FileNotFoundError:
            raise ReadoutFileError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReadoutFileError(f"{path}: not a JSON descriptor read-out ({exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ReadoutFileError(f"{path}: not an mtlfaces descriptor read-out (its "
                                   f"format is not {FORMAT!r})")
        if payload.get("format_version") != FORMAT_VERSION:
            raise ReadoutFileError(f"{path}: read-out format version "
                                   f"{payload.get('format_version')!r}; this mtlfaces reads "
                                   f"{FORMAT_VERSION}")
        try:
            out = cls(**payload["params"])
            out.tasks_, out.classes_, out.n_samples_, out._params = [], {}, {}, {}
            for task, entry in payload["tasks"].items():
                params = {k: np.asarray(entry[k], dtype=np.float64)
                          for k in ("mean", "scale", "coef", "intercept")}
                k = len(entry["classes"])
                if (params["mean"].shape != (SIZE,) or params["scale"].shape != (SIZE,)
                        or params["coef"].shape != (SIZE, k) or params["intercept"].shape != (k,)):
                    raise ValueError(f"task {task!r}: arrays of the wrong shape")
                out.tasks_.append(task)
                out.classes_[task] = [str(c) for c in entry["classes"]]
                out.n_samples_[task] = int(entry["n_samples"])
                out._params[task] = params
        except (KeyError, TypeError, ValueError) as exc:
            raise ReadoutFileError(f"{path}: a damaged descriptor read-out ({exc})") from None
        return out


def load_pretrained_readout():
    """The bundled :class:`DescriptorReadout` (age group and gender, trained on UTKFace)."""
    return DescriptorReadout.load(PRETRAINED_READOUT_PATH)


def mean_with(proba, classes, readout_proba, readout):
    """Average a classifier's probabilities with a read-out's, task by task.

    ``proba`` is task -> (n, k) in ``classes[task]`` order; the tasks the read-out
    also has get the mean of the two (its columns reordered to ``classes``); the others
    are returned unchanged.
    """
    out = dict(proba)
    for task in readout.tasks_:
        if task not in proba:
            continue
        names = [str(c) for c in classes[task]]
        if sorted(names) != sorted(readout.classes_[task]):
            raise ValueError(f"task {task!r}: the classifier's classes {names} are not the "
                             f"read-out's {readout.classes_[task]}")
        order = [readout.classes_[task].index(c) for c in names]
        out[task] = (np.asarray(proba[task]) + readout_proba[task][:, order]) / 2
    return out
