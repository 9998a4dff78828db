"""The fixed validation splits the bundled model is scored on."""

import hashlib
import os

import numpy as np


def hash_holdout(keys, fraction=0.15, salt="mtlfaces"):
    """Boolean mask of the rows held out for validation, decided by hashing ``keys``.

    The decision for a key (e.g. a UTKFace file name or a CK+ subject) depends
    on nothing else, so the split is the same whatever subset, order or copy of
    the dataset is loaded.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1)")
    out = np.empty(len(keys), dtype=bool)
    for i, key in enumerate(keys):
        digest = hashlib.sha1(f"{salt}:{key}".encode()).digest()
        out[i] = int.from_bytes(digest[:4], "big") / 2**32 < fraction
    return out


def utkface_validation_mask(y, fraction=0.15):
    """The fixed UTKFace validation part: 15 % of files, chosen by hashing the file name."""
    names = [os.path.basename(str(p).split("::")[-1]) for p in y["path"]]
    return hash_holdout(names, fraction)


def ckplus_validation_mask(y, fraction=0.2):
    """The fixed CK+ validation part: 20 % of subjects (all of a subject's images together)."""
    return hash_holdout([str(s) for s in y["subject"]], fraction)


def validation_mask(y):
    """Rows of a loader's ``y`` that belong to mtlfaces' fixed validation splits.

    The same rows whichever datasets ``y`` mixes, so training scripts, the CLI and
    benchmarks hold out exactly the same faces:

    - a row whose ``split`` is ``"validation"`` or ``"train"`` keeps it (rows that
      ``mtlfaces build-dataset`` wrote and :func:`load_csv` read back: their image
      files are renamed, so the split cannot be worked out again from the path);
    - otherwise UTKFace rows with a ``path``: :func:`utkface_validation_mask` (15 %
      of files); CK+ rows with a ``subject``: :func:`ckplus_validation_mask` (20 % of
      subjects); FER2013 rows: ``split == "PublicTest"``.

    Parameters
    ----------
    y : DataFrame
        Labels as the loaders return them (``source`` and ``split`` columns, and
        ``path`` / ``subject`` where the dataset has them).

    Returns
    -------
    ndarray of bool, shape (n_samples,)
    """
    import pandas as pd

    if not isinstance(y, pd.DataFrame):
        raise TypeError("validation_mask needs the loaders' label DataFrame, got "
                        f"{type(y).__name__}")
    n = len(y)
    split = y["split"].astype(object).to_numpy() if "split" in y else np.full(n, None, object)
    source = y["source"].astype(object).to_numpy() if "source" in y else np.full(n, None, object)
    mask = (split == "validation") | ((source == "fer2013") & (split == "PublicTest"))
    decided = np.isin(split, ["validation", "train"])
    if "path" in y:
        utk = (source == "utkface") & ~decided & y["path"].notna().to_numpy()
        if utk.any():
            mask[utk] = utkface_validation_mask(y[utk])
    if "subject" in y:
        ck = (source == "ckplus") & ~decided & y["subject"].notna().to_numpy()
        if ck.any():
            mask[ck] = ckplus_validation_mask(y[ck])
    return mask
