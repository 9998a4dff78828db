"""The ``sample_dataset.csv`` format: one row per image, a path and any labels."""

import os

import numpy as np

from ..tasks import normalize_label
from ._archives import DatasetError, _check_exists, _decode_all, _frame, _report, _subset


# ----------------------------------------------------------------------- CSV
CSV_COLUMNS = ["image", "age", "gender", "emotion", "source", "split"]


def load_csv(path, image_size=64, grayscale=True, limit=None, random_state=None,
             strict=False, n_jobs=2, crop=None):
    """Load a dataset in the ``sample_dataset.csv`` format.

    The CSV has one row per image: ``image`` (a path; relative paths resolve
    against the CSV's folder) and any of ``age`` (years or group name),
    ``gender``, ``emotion``; empty cells are missing labels. Other columns
    (``source``, ``split``, ``race``...) are kept as metadata. ``crop`` re-crops
    the images through a :class:`~mtlfaces.FaceCropper` (see :func:`load_utkface`).

    Returns
    -------
    X : ndarray of uint8
    y : DataFrame with canonical labels (see module docstring).
    """
    import pandas as pd

    path = os.fspath(path)
    _check_exists(path, "a CSV file in the sample_dataset.csv format")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, comment=None)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})") from None
    table.columns = [c.strip() for c in table.columns]
    image_col = next((c for c in ("image", "path", "file", "filename", "image_path")
                      if c in table.columns), None)
    if image_col is None:
        raise DatasetError(f"{path}: no image column; expected a column named 'image' "
                           f"(found {list(table.columns)})")
    label_cols = [c for c in ("age", "gender", "emotion") if c in table.columns]
    if not label_cols:
        raise DatasetError(f"{path}: no label column; expected any of age, gender, emotion")
    root = os.path.dirname(os.path.abspath(path))
    rows, items, skipped = [], [], []
    keep = _subset(len(table), limit, random_state)
    for i in keep:
        rec = table.iloc[i]
        line = i + 2
        image = rec[image_col].strip()
        full = image if os.path.isabs(image) else os.path.join(root, image)
        row = {"path": full}
        try:
            for col in label_cols:
                row[col] = normalize_label(col, rec[col])
                if col == "age" and rec[col].strip().replace(".", "", 1).isdigit():
                    row["age_years"] = float(rec[col])
        except ValueError as exc:
            if strict:
                raise DatasetError(f"{path}, line {line}: {exc}") from None
            skipped.append({"path": full, "reason": "invalid label", "detail": f"line {line}: {exc}"})
            continue
        for col in table.columns:
            if col not in label_cols and col != image_col and col not in row:
                row[col] = rec[col] if rec[col] != "" else None
        try:
            with open(full, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            if strict:
                raise DatasetError(f"{path}, line {line}: image {full}: {exc.strerror}") from None
            skipped.append({"path": full, "reason": "missing image file", "detail": f"line {line}"})
            continue
        rows.append(row)
        items.append((full, data))
    X, ok, bad = _decode_all(items, image_size, grayscale, strict, n_jobs, crop)
    skipped += bad
    if not ok.any():
        raise DatasetError(f"{path}: no usable rows ({len(skipped)} skipped: "
                           f"{_skipped_summary(skipped, root)})")
    df = _frame([r for r, good in zip(rows, ok) if good])
    _report(df, skipped, path)
    return X, df


def _skipped_summary(skipped, root, show=3):
    """'missing image file: a.jpg, b.jpg and 18 more' for each reason of ``skipped``."""
    by_reason = {}
    for entry in skipped:
        by_reason.setdefault(entry["reason"], []).append(
            os.path.relpath(entry["path"], root) if entry.get("path") else entry["detail"])
    parts = []
    for reason, names in by_reason.items():
        more = f" and {len(names) - show} more" if len(names) > show else ""
        parts.append(f"{reason}: {', '.join(names[:show])}{more}")
    return "; ".join(parts)


def write_csv(X, y, path, image_dir=None):
    """Write images and labels as a CSV in the ``sample_dataset.csv`` format.

    Every image is written as a PNG under ``image_dir`` (default: ``images/``
    next to the CSV), so data loaded from archives or FER2013's pixel strings
    becomes a self-contained folder. The CSV is written to a temporary name and
    renamed, so an interrupted run never leaves a complete-looking file.

    Parameters
    ----------
    X : ndarray of uint8
        Images as returned by the loaders.
    y : DataFrame
        Labels and metadata (``age``/``age_years``, ``gender``, ``emotion``,
        ``source``, ``split``).
    path : str
        Output CSV path.

    Returns
    -------
    str : the CSV path.
    """
    import cv2
    import pandas as pd

    X = np.asarray(X)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} images but y has {len(y)} rows")
    path = os.fspath(path)
    root = os.path.dirname(os.path.abspath(path))
    image_dir = image_dir or os.path.join(root, "images")
    os.makedirs(image_dir, exist_ok=True)
    records = []
    sources = y["source"] if "source" in y else pd.Series(["data"] * len(y))
    for i in range(len(y)):
        src = sources.iloc[i] or "data"
        sub = os.path.join(image_dir, str(src))
        os.makedirs(sub, exist_ok=True)
        file = os.path.join(sub, f"{i:06d}.png")
        img = X[i]
        if img.dtype != np.uint8:
            img = np.clip(np.asarray(img, dtype=np.float64) * (255 if img.max() <= 1 else 1),
                          0, 255).astype(np.uint8)
        if img.ndim == 3 and img.shape[-1] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(file, img):
            raise OSError(f"{file}: could not write image")
        rec = y.iloc[i]
        age = rec.get("age_years") if "age_years" in y and rec.get("age_years") is not None \
            and not pd.isna(rec.get("age_years")) else rec.get("age")
        if isinstance(age, float) and age.is_integer():
            age = int(age)
        records.append({
            "image": os.path.relpath(file, root).replace(os.sep, "/"),
            "age": age, "gender": rec.get("gender"), "emotion": rec.get("emotion"),
            "source": rec.get("source"), "split": rec.get("split"),
        })
    out = pd.DataFrame(records, columns=CSV_COLUMNS)
    tmp = path + ".tmp"
    out.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path
