"""Parsing of y, shared by every mtlfaces estimator so all accept exactly the same targets.

y may be a DataFrame (task columns, other columns ignored), a Series, a 1-D array (one
task) or a 2-D array (one column per task). Labels of the known tasks (age, gender,
emotion) are normalised to their canonical spellings; a missing label (None, NaN, "")
becomes :data:`MISSING` in the integer codes.
"""

import numbers

import numpy as np

from . import tasks as _tasks
from ._losses import MISSING

KNOWN = _tasks.TASKS
SINGLE = "y"  # task name used when y is a 1-D array and ``tasks`` is not given


class TargetParser:
    """Turns y into per-task integer codes for an estimator's ``tasks`` and ``label_codes``.

    Parameters
    ----------
    tasks : str, sequence of str or None
        The estimator's ``tasks`` parameter.
    label_codes : dict or None
        The estimator's ``label_codes`` parameter ({task: {code: label}}).
    owner : str
        The estimator's class name, used in error messages.
    """

    def __init__(self, tasks=None, label_codes=None, owner="estimator"):
        self.tasks = tasks
        self.label_codes = label_codes
        self.owner = owner

    def task_names(self, y):
        """Task names for y, as given by ``tasks`` or by y itself."""
        import pandas as pd

        if self.tasks is not None:
            names = [self.tasks] if isinstance(self.tasks, str) else list(self.tasks)
            if not names or len(set(names)) != len(names):
                raise ValueError(f"tasks={self.tasks!r} must be non-empty with distinct names")
            return names
        if isinstance(y, pd.DataFrame):
            names = [c for c in y.columns if c in KNOWN]
            if not names:
                raise ValueError(
                    f"y has no task column: its columns are {list(y.columns)}; "
                    f"name them {list(KNOWN)} or pass tasks=[...]"
                )
            return names
        if isinstance(y, pd.Series) and y.name in KNOWN:
            return [y.name]
        arr = np.asarray(y, dtype=object)
        if arr.ndim == 2 and arr.shape[1] > 1:
            # Unnamed columns are generic tasks (classes from the data), never age/gender/
            # emotion: name them with tasks=... to get those vocabularies.
            return [f"y{i}" for i in range(arr.shape[1])]
        return [SINGLE]

    def label_columns(self, y, names):
        """Return ({task: object array of raw labels}, single_output)."""
        import pandas as pd

        if isinstance(y, pd.DataFrame):
            missing = [t for t in names if t not in y.columns]
            if missing:
                raise ValueError(f"y has no column(s) {missing}; its columns are {list(y.columns)}")
            return {t: y[t].to_numpy(dtype=object) for t in names}, False
        arr = np.asarray(y, dtype=object)
        if arr.ndim == 1:
            if len(names) != 1:
                raise ValueError(f"y is 1-D but tasks={names} names {len(names)} tasks")
            return {names[0]: arr}, True
        if arr.ndim == 2:
            if arr.shape[1] != len(names):
                raise ValueError(
                    f"y has {arr.shape[1]} columns but tasks={names} names {len(names)}"
                )
            return {t: arr[:, i] for i, t in enumerate(names)}, arr.shape[1] == 1 and (
                self.tasks is None)
        raise ValueError(f"y has shape {arr.shape}; expected 1-D or 2-D labels")

    def normalize(self, task, values):
        """Raw labels → object array of canonical labels (None = missing)."""
        if task in KNOWN:
            codes = (self.label_codes or {}).get(task)
            return _tasks.normalize_labels(task, values, codes=codes)
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            out[i] = None if _tasks.is_missing(v) else v
        present = [v for v in out if v is not None]
        if present and all(isinstance(v, (numbers.Real, np.number)) for v in present):
            from sklearn.utils.multiclass import type_of_target

            kind = type_of_target(np.asarray(present, dtype=np.float64))
            if kind == "continuous":
                raise ValueError(f"Unknown label type: continuous values for task {task!r}; "
                                 "a classifier needs class labels (bin them first)")
        return out

    @staticmethod
    def classes_for(task, labels):
        if task in KNOWN:
            return np.array(KNOWN[task], dtype=object)
        present = [v for v in labels if v is not None]
        if not present:
            return np.array([], dtype=object)
        return np.unique(np.asarray(present))

    @staticmethod
    def encode(task, labels, classes):
        """Canonical labels → int indices, MISSING for None; unknown labels raise."""
        index = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(classes)}
        out = np.full(len(labels), MISSING, dtype=np.int64)
        for i, v in enumerate(labels):
            if v is None:
                continue
            key = v.item() if hasattr(v, "item") else v
            if key not in index:
                raise ValueError(
                    f"y contains {v!r} for task {task!r}, which the model was not fitted "
                    f"with; known classes: {list(classes)}"
                )
            out[i] = index[key]
        return out

    def parse(self, y, n_samples, fitting_classes):
        """Parse y into ``({task: int codes}, {task: classes}, single_output)``.

        ``fitting_classes`` maps tasks whose classes are already fixed (a fitted
        model's) to them; other tasks take theirs from :data:`mtlfaces.TASKS` or y.
        """
        if y is None:
            raise ValueError(f"{self.owner} requires y to be passed, but the target y "
                             "is None")
        names = self.task_names(y)
        columns, single = self.label_columns(y, names)
        for task, values in columns.items():
            if len(values) != n_samples:
                raise ValueError(
                    f"X has {n_samples} images but y has {len(values)} labels for {task!r}"
                )
        labels = {t: self.normalize(t, v) for t, v in columns.items()}
        classes = {}
        for t, lab in labels.items():
            classes[t] = fitting_classes[t] if t in fitting_classes else self.classes_for(t, lab)
        codes = {t: self.encode(t, labels[t], classes[t]) for t in labels}
        return codes, classes, single


def stack_columns(columns):
    """Per-task label arrays → (n, n_tasks): numeric when every task's labels are, else object.

    Shared by the multi-task estimators (the CNN and the HOG baseline).
    """
    kinds = {np.asarray(c).dtype.kind for c in columns}
    if len(kinds) == 1 and kinds <= set("biuf"):
        return np.stack(columns, axis=1)
    out = np.empty((len(columns[0]), len(columns)), dtype=object)
    for i, c in enumerate(columns):
        out[:, i] = c
    return out
