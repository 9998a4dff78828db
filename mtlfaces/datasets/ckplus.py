"""CK+: the ``CK+48/<class>/S<subject>_*.png`` crops."""

import os
import re

from ._archives import (
    DatasetError, _check_exists, _decode_all, _emotion_from_folder, _frame, _is_image_name,
    _iter_members, _member_path, _report, _subset)
from ._cache import _cached


# ----------------------------------------------------------------------- CK+
@_cached
def load_ckplus(path, image_size=48, grayscale=True, include_contempt=False, limit=None,
                random_state=None, strict=False, n_jobs=2):
    """Load the CK+48 crops (``CK+48/<class>/S<subject>_<seq>_<frame>.png``), folder or zip.

    Parameters
    ----------
    include_contempt : bool, default=False
        CK+'s ``contempt`` has no FER2013 counterpart and is dropped by default;
        when kept its label is ``"Contempt"``, outside the 7-class emotion
        vocabulary (train it as a task of its own name, not ``emotion``).
    Other parameters as in :func:`load_utkface`.

    Returns
    -------
    X : ndarray of uint8
    y : DataFrame
        ``emotion``, ``subject`` (e.g. ``"S005"``, for subject-wise splits),
        ``source`` ("ckplus").
    """
    path = os.fspath(path)
    _check_exists(path, "the CK+48 folder or CK+48.zip")
    rows, items, skipped = [], [], []
    for name, data in _iter_members(path, _is_image_name):
        parts = name.replace("\\", "/").split("/")
        if len(parts) >= 2 and parts[-2].lower() == "contempt":
            if not include_contempt:
                continue
            emotion = "Contempt"
        else:
            emotion = _emotion_from_folder(name, skipped)
            if emotion is None:
                continue
        match = re.match(r"(S\d+)_", parts[-1])
        rows.append({"emotion": emotion, "subject": match.group(1) if match else None,
                     "split": None, "source": "ckplus", "path": _member_path(path, name)})
        items.append((name, data))
    if not rows:
        raise DatasetError(f"{path}: no CK+ images found (expected <class>/S<subject>_*.png)")
    keep = _subset(len(rows), limit, random_state)
    rows = [rows[i] for i in keep]
    items = [items[i] for i in keep]
    X, ok, bad = _decode_all(items, image_size, grayscale, strict, n_jobs)
    skipped += bad
    df = _frame([r for r, good in zip(rows, ok) if good])
    _report(df, skipped, path)
    return X, df
