"""Synthetic multi-task images for tests and examples (no download)."""

import numpy as np

from ..tasks import AGE_GROUPS


# ---------------------------------------------------------------- synthetic
_SHAPES_AGES = {"Child": 8, "Young": 24, "Middle Age": 38, "Old": 55, "Very Old": 80}


def make_shapes(n=400, size=32, seed=0, missing_gender=0.5):
    """A synthetic labelled set whose labels are visible structure (for tests and examples).

    age group: the row band (of 5) holding a bright blob (flip-invariant);
    gender: a vertical (Female) or horizontal (Male) bar in the other half;
    emotion: a square at the right edge, top (Sad), middle (Neutral) or bottom (Happy).
    ``missing_gender`` of the gender labels are removed.

    Returns
    -------
    X : ndarray of uint8, shape (n, size, size)
    y : DataFrame with ``age`` (years), ``gender`` and ``emotion``.
    """
    import pandas as pd

    rng = np.random.RandomState(seed)
    X = rng.randint(0, 40, size=(n, size, size)).astype(np.float32)
    age = rng.randint(0, 5, n)
    gender = rng.randint(0, 2, n)
    emotion = rng.randint(0, 3, n)
    band = size // 5
    for i in range(n):
        e0 = [2, size // 2 - 3, size - 8][emotion[i]]
        X[i, e0:e0 + 6, size - 6:] = 170
        r0 = age[i] * band
        X[i, r0:r0 + band, : size // 3] = 250
        if gender[i] == 0:
            X[i, 2:size - 2, size // 2 + 4: size // 2 + 8] = 200
        else:
            X[i, size // 2 - 2: size // 2 + 2, size // 2: size - 8] = 200
    y = pd.DataFrame({
        "age": [_SHAPES_AGES[AGE_GROUPS[a]] for a in age],
        "gender": np.array(["Female", "Male"])[gender].astype(object),
        "emotion": np.array(["Sad", "Neutral", "Happy"])[emotion].astype(object),
    })
    drop = rng.rand(n) < missing_gender
    y.loc[drop, "gender"] = None
    return np.clip(X, 0, 255).astype(np.uint8), y
