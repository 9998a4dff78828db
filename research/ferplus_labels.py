"""FER+ votes against FER2013's labels, looked at before any training on them (issue #32).

    python research/ferplus_labels.py [--data ../shared/data] [--grid DIR]

Aligns ``fer2013new.csv`` (ten annotators' votes per face) with ``fer2013.csv`` row by row,
as its README says (dropping FER+'s rows with an empty image name), and checks the
alignment: the per-split counts, the split order, and the agreement of the FER+ majority
with the original label (a shifted file agrees at about chance). Then reports, per split:

- how the votes spread: the share of faces whose majority is an emotion, unknown or not a
  face, or contempt (a class FER2013 lacks); the mean share of the top vote;
- the agreement of the FER+ majority with the original label, per original class;
- pixel statistics and sharpness (variance of the Laplacian) per split, against a copy with
  silently blurred images;
- the bundled network's PublicTest accuracy against the original labels and against the FER+
  majority (the baseline #32 asks to report).

Writes ``research/results/ferplus_labels.json``. ``--grid DIR`` also writes a grid of samples
per class and split into DIR: those are dataset images, never commit them.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DEFAULT_DATA, machine, table, write_json  # noqa: E402
from ferplus import TO_FER, VOTES, load_votes  # noqa: E402,F401  (recipes/)

def majority(votes):
    """Per face: the column with the most votes (ties: the first), and its vote share."""
    top = votes.argmax(axis=1)
    share = votes.max(axis=1) / np.maximum(votes.sum(axis=1), 1)
    return np.array(VOTES)[top], share


def sharpness(images):
    """Variance of the Laplacian per image (low: blurred)."""
    import cv2

    return np.array([cv2.Laplacian(img, cv2.CV_64F).var() for img in images])


def write_grid(folder, X, labels, splits, per_class=8):
    import cv2

    os.makedirs(folder, exist_ok=True)
    for split in np.unique(splits):
        rows = []
        for label in sorted(set(labels)):
            idx = np.flatnonzero((labels == label) & (splits == split))[:per_class]
            tiles = [X[i] for i in idx] + [np.zeros_like(X[0])] * (per_class - len(idx))
            rows.append(np.hstack(tiles))
        path = os.path.join(folder, f"fer2013_{split}.png")
        cv2.imwrite(path, np.vstack(rows))
        print(f"wrote {path} (dataset images: do not commit)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--grid", default=None, help="write sample grids into this folder")
    args = parser.parse_args(argv)
    from mtlfaces import load_pretrained
    from mtlfaces.datasets import load_fer2013

    X, y = load_fer2013(os.path.join(args.data, "fer2013.tar.gz"))
    usage, votes = load_votes(args.data)
    splits = y["split"].to_numpy()
    original = y["emotion"].astype(str).to_numpy()
    if len(usage) != len(splits) or not (usage == splits).all():
        raise SystemExit(f"not aligned: {len(usage)} FER+ rows against {len(splits)} faces, "
                         f"or another split order")
    top, share = majority(votes)
    fer_top = np.array([TO_FER.get(v, v) for v in top])
    result = {"machine": machine(), "faces": int(len(splits)), "splits": {}}
    rows = []
    for split in ("Training", "PublicTest"):
        m = splits == split
        emotion = np.isin(top[m], list(TO_FER))
        sharp = sharpness(X[m])
        entry = {
            "faces": int(m.sum()),
            "majority_emotion_of_fer": float(emotion.mean()),
            "majority_contempt": float((top[m] == "contempt").mean()),
            "majority_unknown": float((top[m] == "unknown").mean()),
            "majority_not_a_face": float((top[m] == "NF").mean()),
            "mean_top_vote_share": float(share[m].mean()),
            "agreement_with_original": float((fer_top[m] == original[m]).mean()),
            "agreement_by_original_class": {
                c: float((fer_top[m][original[m] == c] == c).mean())
                for c in sorted(set(original[m]))},
            "pixel_mean": float(X[m].mean()), "pixel_std": float(X[m].std()),
            "sharpness_median": float(np.median(sharp)),
        }
        result["splits"][split] = entry
        rows.append({"split": split, **{k: v for k, v in entry.items()
                                        if not isinstance(v, dict)}})
    table(rows, list(rows[0]))
    # The bundled network on PublicTest: original labels, and the FER+ majority where it is
    # one of the network's seven classes.
    model = load_pretrained()
    test = splits == "PublicTest"
    predicted = model.predict(X[test])[:, model.tasks_.index("emotion")].astype(str)
    against = fer_top[test]
    shared = np.isin(against, list(TO_FER.values()))
    result["bundled_publictest"] = {
        "accuracy_original": float((predicted == original[test]).mean()),
        "accuracy_ferplus_majority": float((predicted[shared] == against[shared]).mean()),
        "ferplus_faces_scored": int(shared.sum()),
        "note": "FER+ majority: the column with most of the ten votes; faces whose majority "
                "is contempt, unknown or not a face are left out of that score",
    }
    print(result["bundled_publictest"])
    for split, entry in result["splits"].items():
        print(split, "agreement by original class:",
              {c: round(v, 3) for c, v in entry["agreement_by_original_class"].items()})
    write_json("ferplus_labels", result)
    if args.grid:
        write_grid(args.grid, X, original, splits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
