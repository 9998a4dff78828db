"""FER+ votes (``fer2013new.csv``) as emotion targets for the FER2013 faces the loaders give.

FER+ (Barsoum et al., 2016) asked ten annotators about every FER2013 face. Its rows follow
``fer2013.csv`` line for line once its rows without an image name (the non-faces that our
copy of ``fer2013.csv`` leaves out) are dropped.
"""

import os

import numpy as np

#: FER+ vote columns, and the FER2013 class of each emotion column.
VOTES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
         "contempt", "unknown", "NF"]
TO_FER = {"neutral": "Neutral", "happiness": "Happy", "surprise": "Surprise",
          "sadness": "Sad", "anger": "Angry", "disgust": "Disgust", "fear": "Fear"}
FILE = "fer2013new.csv"


def load_votes(data_dir):
    """FER+'s votes for the faces of fer2013.csv, in its order: (usage, votes (n, 10))."""
    import pandas as pd

    path = os.path.join(data_dir, FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no FER+ votes there; give the --data-dir that "
                                f"holds {FILE}")
    frame = pd.read_csv(path)
    kept = frame[frame["Image name"].notna() & (frame["Image name"].astype(str) != "")]
    return kept["Usage"].to_numpy(), kept[VOTES].to_numpy(dtype=np.int64)


def ferplus_targets(y, data_dir):
    """FER+ vote distributions over the seven emotions for the FER2013 rows of ``y``.

    Parameters
    ----------
    y : DataFrame
        Labels from :mod:`mtlfaces.datasets` loaders (``source``, ``split``, ``path``).
    data_dir : str
        Folder holding ``fer2013new.csv``.

    Returns
    -------
    soft : ndarray of shape (n, 7)
        Each FER2013 face's votes for the seven emotions (in :data:`mtlfaces.tasks.EMOTIONS`
        order), as a distribution; contempt, unknown and not-a-face votes are left out.
        Zero rows for other faces.
    drop : ndarray of shape (n,), bool
        FER2013 faces to leave out: most votes unknown or not a face, or none for the seven.
    top : ndarray of shape (n,), object
        FER+'s most-voted column of each FER2013 face (None for other faces).

    Rows are matched through the CSV line in ``y["path"]`` (``...fer2013.csv#rowN``; the
    header is line 1), and each match's split is checked; a FER+ majority that agrees with
    under half the original labels (0.63 when aligned, about chance when shifted) is refused.
    """
    from mtlfaces.tasks import EMOTIONS

    usage, votes = load_votes(data_dir)
    soft = np.zeros((len(y), len(EMOTIONS)), np.float32)
    drop = np.zeros(len(y), bool)
    tops = np.full(len(y), None, dtype=object)
    columns = [VOTES.index(next(k for k, v in TO_FER.items() if v == e)) for e in EMOTIONS]
    fer = np.flatnonzero((y["source"] == "fer2013").to_numpy())
    for i in fer:
        path, split = y["path"].iat[i], y["split"].iat[i]
        k = int(path.rsplit("#row", 1)[1]) - 2  # the data row's index
        if not 0 <= k < len(usage) or usage[k] != split:
            raise ValueError(f"FER+ not aligned with {path} ({split}): its row {k} is "
                             f"{'missing' if not 0 <= k < len(usage) else usage[k]}")
        v = votes[k]
        seven = v[columns].astype(np.float32)
        top = tops[i] = VOTES[int(np.argmax(v))]
        if top in ("unknown", "NF") or seven.sum() == 0:
            drop[i] = True
            continue
        soft[i] = seven / seven.sum()
    majority = np.array([TO_FER.get(t) for t in tops[fer]], dtype=object)
    agree = float((majority == y["emotion"].to_numpy(dtype=object)[fer]).mean()) if len(fer) else 1
    if agree < 0.5:
        raise ValueError(f"FER+ not aligned: its majority agrees with {agree:.0%} of the "
                         "original labels (0.63 when aligned)")
    return soft, drop, tops


def ferplus_majority(y, data_dir):
    """The FER+ majority emotion per row of ``y``: its most-voted column, None where that
    is contempt, unknown or not a face."""
    return np.array([TO_FER.get(t) for t in ferplus_targets(y, data_dir)[2]], dtype=object)
