"""How well and how fast a fitted model does: per-task metrics, confusion matrices,
per-group breakdowns, training curves and classification throughput."""

import os
import time

import numpy as np

from .tasks import TASKS, YEARS_TASK


def _task_report(true, pred, classes):
    mask = np.array([t is not None for t in true])
    true, pred = np.asarray(true, dtype=object)[mask], np.asarray(pred, dtype=object)[mask]
    index = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(true, pred):
        cm[index[t], index[p]] += 1
    support = cm.sum(axis=1)
    per_class = {c: (float(cm[i, i] / support[i]) if support[i] else None)
                 for i, c in enumerate(classes)}
    recalls = [v for v in per_class.values() if v is not None]
    return {
        "n": int(mask.sum()),
        "accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "macro_accuracy": float(np.mean(recalls)) if recalls else None,
        "per_class_accuracy": per_class,
        "support": {c: int(s) for c, s in zip(classes, support)},
        "confusion_matrix": cm.tolist(),
        "classes": list(classes),
    }


def _groups(y, group_columns, task, mask):
    """``(column, value, selection)`` for each value of each group column of ``y`` (not the
    task's own), over the rows of ``mask``; the selection indexes those rows."""
    for col in group_columns:
        if col not in y.columns or col == task:
            continue
        values = y[col].to_numpy(dtype=object)[mask]
        for value in sorted({v for v in values if v is not None and v == v}, key=str):
            yield col, str(value), values == value


def _years_report(true, answered, y, task, group_columns):
    """Mean absolute error (in years) of the ages ``answered`` against ``true``
    (None where unknown), with its standard error, bias, median and per-group errors."""
    mask = np.array([t is not None for t in true])
    signed = np.asarray(answered, dtype=float)[mask] - np.asarray(
        [t for t in true if t is not None], dtype=float)
    error = np.abs(signed)
    n = int(mask.sum())
    entry = {"n": n, "mae": float(error.mean()), "bias": float(signed.mean()),
             "mae_se": float(error.std(ddof=1) / np.sqrt(n)) if n > 1 else None,
             "median_ae": float(np.median(error)),
             "within_5_years": float(np.mean(error <= 5))}
    groups = {}
    for col, value, sel in _groups(y, group_columns, task, mask):
        groups.setdefault(col, {})[value] = {"n": int(sel.sum()),
                                             "mae": float(error[sel].mean()),
                                             "bias": float(signed[sel].mean())}
    if groups:
        entry["by_group"] = groups
    return entry


def evaluate(estimator, X, y, group_columns=("race", "gender", "source"), predictions=None):
    """Evaluate a fitted estimator on labelled images.

    Parameters
    ----------
    estimator : MultiTaskFaceClassifier
    X : array-like of images
    y : DataFrame
        Task columns (missing labels are skipped) and optional group columns.
    group_columns : sequence of str
        Columns of y to break accuracy down by (when present), e.g. UTKFace race.
    predictions : ndarray, optional
        Precomputed ``estimator.predict(X)``.

    Returns
    -------
    dict
        ``{task: {accuracy, macro_accuracy, per_class_accuracy, support,
        confusion_matrix, classes, by_group: {column: {value: {n, accuracy}}}}}``. An
        ``age_years`` head (:data:`mtlfaces.tasks.YEARS_TASK`) is scored as the answer
        ``mtlfaces.analyze`` gives (:func:`mtlfaces.tasks.median_years`), against
        ``y["age_years"]``:
        ``{n, mae, bias, mae_se, median_ae, within_5_years, by_group: {column: {value:
        {n, mae, bias}}}}`` (years, against the true age: a face older than the head's
        oldest year counts its whole error; ``bias`` is the mean of answer minus age; the
        groups include the ``age`` column's age groups when ``y`` has one).
    """
    from . import tasks as _tasks

    proba = None
    if YEARS_TASK in estimator.tasks_ and YEARS_TASK in y.columns:
        # One pass through the network: the labels are the distributions' most probable
        # classes, as predict gives them; the years head needs its distribution.
        proba = estimator.predict_proba(X)
        proba = proba if isinstance(proba, list) else [proba]
        if predictions is None:
            fitted = estimator.classes_
            predictions = np.stack([np.asarray(c, dtype=object)[p.argmax(axis=1)] for c, p in
                                    zip(fitted if isinstance(fitted, list) else [fitted],
                                        proba)], axis=1)
    pred = estimator.predict(X) if predictions is None else predictions
    pred = np.asarray(pred, dtype=object)
    if pred.ndim == 1:
        pred = pred[:, np.newaxis]
    report = {}
    for j, task in enumerate(estimator.tasks_):
        if task not in y.columns:
            continue
        if task in TASKS:
            true = list(_tasks.normalize_labels(task, y[task].to_numpy(dtype=object)))
        else:
            true = [None if _tasks.is_missing(v) else v for v in y[task]]
        if not any(t is not None for t in true):
            continue
        fitted = estimator.classes_  # a list per task, or one array for a 1-D fit
        classes = list(fitted[j] if isinstance(fitted, list) else fitted)
        if task == YEARS_TASK:
            true = [None if t is None else float(t) for t in true]
            # By age group too: the answers lean towards the middle of the ages.
            report[task] = _years_report(true, _tasks.median_years(proba[j], classes), y,
                                         task, ("age",) + tuple(c for c in group_columns
                                                                if c != "age"))
            continue
        entry = _task_report(true, pred[:, j], classes)
        mask = np.array([t is not None for t in true])
        hits = (np.asarray(true, dtype=object) == pred[:, j])[mask]
        groups = {}
        for col, value, sel in _groups(y, group_columns, task, mask):
            groups.setdefault(col, {})[value] = {"n": int(sel.sum()),
                                                 "accuracy": float(hits[sel].mean())}
        if groups:
            entry["by_group"] = groups
        report[task] = entry
    return report


def format_report(report):
    """Human-readable text of :func:`evaluate`'s result (accuracy, per class, confusion)."""
    lines = []
    for task, r in report.items():
        if "mae" in r:  # an age in years
            se = "" if r["mae_se"] is None else f" ± {r['mae_se']:.2f}"
            lines.append(f"{task}: mean absolute error {r['mae']:.2f} years{se}  bias "
                         f"{r['bias']:+.2f}  median "
                         f"{r['median_ae']:.2f}  within 5 years {r['within_5_years']:.3f}  "
                         f"(n={r['n']})")
            for col, by in r.get("by_group", {}).items():
                parts = ", ".join(f"{k} {v['mae']:.2f} ({v['bias']:+.1f}, n={v['n']})"
                                  for k, v in by.items())
                lines.append(f"  by {col}: {parts}")
            continue
        lines.append(f"{task}: accuracy {r['accuracy']:.3f}  macro {r['macro_accuracy']:.3f}  "
                     f"(n={r['n']})")
        for c, acc in r["per_class_accuracy"].items():
            acc_s = "   -  " if acc is None else f"{acc:.3f}"
            lines.append(f"  {c:<12} {acc_s}  n={r['support'][c]}")
        width = max(len(c) for c in r["classes"])
        lines.append("  confusion (rows true, columns predicted):")
        lines.append("  " + " " * width + " " + " ".join(f"{c[:6]:>6}" for c in r["classes"]))
        for c, row in zip(r["classes"], r["confusion_matrix"]):
            lines.append(f"  {c:>{width}} " + " ".join(f"{v:>6d}" for v in row))
        for col, by in r.get("by_group", {}).items():
            parts = ", ".join(f"{k} {v['accuracy']:.3f} (n={v['n']})" for k, v in by.items())
            lines.append(f"  by {col}: {parts}")
    return "\n".join(lines)


def plot_confusion(report, path):
    """Write one confusion-matrix panel per classification task as a PNG (None, and no
    file, when the report has none)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in report if "confusion_matrix" in report[t]]  # not years' errors
    if not tasks:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        r = report[task]
        cm = np.asarray(r["confusion_matrix"], dtype=float)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(r["classes"])), r["classes"], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(r["classes"])), r["classes"], fontsize=8)
        for i in range(cm.shape[0]):
            for k in range(cm.shape[1]):
                ax.text(k, i, int(cm[i, k]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, k] > 0.5 else "black")
        ax.set_title(f"{task}: acc {r['accuracy']:.3f}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_history(history, out_dir):
    """Loss and accuracy curves of a fit (``history_``) as ``loss.png`` and ``accuracy.png``
    in ``out_dir``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for kind in ("loss", "accuracy"):
        keys = sorted(k for k in history if k.endswith(kind) and not k.startswith("val_"))
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for k in keys:
            line, = ax.plot(range(1, len(history[k]) + 1), history[k], label=f"train {k}")
            if f"val_{k}" in history:
                ax.plot(range(1, len(history[f"val_{k}"]) + 1), history[f"val_{k}"], "--",
                        color=line.get_color(), label=f"validation {k}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(kind)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{kind}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def classification_throughput(clf, batch_sizes, repeats=5, seed=0):
    """Median time of ``clf.predict_proba`` on random faces of the network's input size.

    Returns
    -------
    list of dict
        Per batch size: ``batch``, ``median_ms``, ``faces_per_s``, and ``mirror_averaging``
        (whether each face is also classified mirrored, doubling the work).
    """
    rng = np.random.RandomState(seed)
    height, _, channels = clf.model_.input_shape[1:]
    rows = []
    for size in batch_sizes:
        shape = (size, height, height) if channels == 1 else (size, height, height, channels)
        X = rng.randint(0, 256, shape).astype(np.uint8)
        clf.predict_proba(X)  # trace and warm up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            clf.predict_proba(X)
            times.append(time.perf_counter() - t)
        med = float(np.median(times))
        rows.append({"batch": int(size), "median_ms": round(med * 1000, 2),
                     "faces_per_s": round(size / med, 1),
                     "mirror_averaging": bool(getattr(clf, "test_time_flip", False))})
    return rows
