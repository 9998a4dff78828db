"""Write the shipped ``sample_dataset.csv`` and its ``sample_images/``.

    python recipes/sample_dataset.py [--out DIR]

The sample shows the CSV format (``image``, any of ``age`` in years or as a group name,
``gender`` and ``emotion`` in the spellings datasets use, an empty cell for a missing label,
``source`` and ``split``) and is trainable on a fresh clone:
``mtlfaces train sample_dataset.csv --out model/``. Its 24 images are synthetic
(:func:`mtlfaces.datasets.make_shapes`: the labels are visible shapes, not faces), because
the real datasets' images may not be redistributed; ``mtlfaces build-dataset`` writes the
same format from the real archives. The output is deterministic, and a test checks that the
committed files are what this script writes.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Spellings the loader accepts, cycled through so the sample shows them.
AGE_NAMES = {8: "Child", 24: "Young", 38: "Middle Age", 55: "Old", 80: "Very Old"}
GENDER_SPELLINGS = {"Female": ["Female", "F", "female"], "Male": ["Male", "m", "male"]}
EMOTION_SPELLINGS = {"Happy": ["Happy", "happiness"], "Sad": ["Sad", "sadness"],
                     "Neutral": ["Neutral", "neutral"]}


def write_sample(out_dir, n=24, seed=0):
    """Write ``sample_dataset.csv`` and ``sample_images/`` into ``out_dir``; the CSV's path."""
    import numpy as np
    import pandas as pd

    from mtlfaces.datasets import make_shapes, write_csv

    X, y = make_shapes(n, size=32, seed=seed, missing_gender=0.25)
    rows = np.arange(n)
    y = y.assign(source="synthetic", split=np.where(rows % 4 == 3, "validation", "train"))
    y["age"] = [a if i % 2 else AGE_NAMES[a] for i, a in enumerate(y["age"])]
    y.loc[rows % 6 == 5, "age"] = None  # a missing label: masked, never invented
    y["gender"] = [None if not isinstance(g, str) else GENDER_SPELLINGS[g][i % 3]
                   for i, g in enumerate(y["gender"])]
    y["emotion"] = [EMOTION_SPELLINGS[e][i % 2] for i, e in enumerate(y["emotion"])]
    y.loc[rows % 8 == 2, "emotion"] = None
    y = y.astype(object).where(pd.notna(y), None)
    path = os.path.join(out_dir, "sample_dataset.csv")
    write_csv(X, y, path, image_dir=os.path.join(out_dir, "sample_images"))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=ROOT, help="folder to write into (default: the "
                                                     "repository root)")
    args = parser.parse_args(argv)
    print(f"wrote {write_sample(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
