"""Give the bundled model its 8-bit copy, and check that it answers as the network does.

    python recipes/quantize.py [--data-dir ../shared/data] [--model FILE] [--out FILE]

Calibrates :meth:`MultiTaskFaceClassifier.quantize` on 500 training faces (a seeded sample
of UTKFace's, FER2013's and CK+'s training parts: never the validation faces), then scores
the Keras network and the 8-bit copy on the fixed validation splits, mirror averaging as the
model has it. The model file is written (by default over the bundled one) only when no task
loses more than 0.3 points; ``recipes/results/quantize.json`` records both scores either
way, and ``python recipes/model_card.py`` puts them in the model card.
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data")
RESULT = os.path.join(HERE, "results", "quantize.json")
MAX_LOSS = 0.003  # accuracy a task may lose to the 8-bit copy
SETS = (("UTKFace", "load_utkface", "UTKFace.tar.gz", ("age", "gender")),
        ("FER2013", "load_fer2013", "fer2013.tar.gz", ("emotion",)),
        ("CK+", "load_ckplus", "CK+48.zip", ("emotion",)))


def load(data_dir):
    """{name: (X, y, validation mask)} at the bundled model's 48×48 grayscale."""
    from mtlfaces import datasets as D

    out = {}
    for name, loader, file, _ in SETS:
        X, y = getattr(D, loader)(os.path.join(data_dir, file), image_size=48)
        out[name] = (X, y, D.validation_mask(y))
    return out


def calibration_faces(sets, n=500, seed=0):
    rng = np.random.RandomState(seed)
    parts = []
    for name, (X, _, val) in sets.items():
        train = X[~val]
        parts.append(train[rng.permutation(len(train))[: n // len(sets) + 1]])
    faces = np.concatenate(parts)
    return faces[rng.permutation(len(faces))[:n]]


def scores(clf, sets):
    from mtlfaces.evaluation import evaluate

    out = {}
    for name, _, _, tasks in SETS:
        X, y, val = sets[name]
        report = evaluate(clf, X[val], y[val].reset_index(drop=True))
        for task in tasks:
            out[f"{task} ({name})"] = report[task]["accuracy"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument("--out", default=None, help="where to write the model (default: --model)")
    args = parser.parse_args(argv)
    import mtlfaces
    from mtlfaces._pretrained import PRETRAINED_MODEL_PATH

    path = args.model or PRETRAINED_MODEL_PATH
    clf = mtlfaces.load_model(path)
    sets = load(args.data_dir)
    keras_scores = scores(clf.set_params(inference="keras"), sets)
    clf.quantize(calibration_faces(sets))
    int8_scores = scores(clf.set_params(inference="int8"), sets)
    loss = {t: keras_scores[t] - int8_scores[t] for t in keras_scores}
    ok = all(v <= MAX_LOSS for v in loss.values())
    for task in keras_scores:
        print(f"{task:20s} keras {keras_scores[task]:.4f}  int8 {int8_scores[task]:.4f}")
    result = {"model": os.path.basename(path), "calibration_faces": 500,
              "keras": keras_scores, "int8": int8_scores, "max_loss": MAX_LOSS,
              "written": ok, "int8_bytes": len(clf.int8_)}
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, "w") as fh:
        json.dump(result, fh, indent=1)
    if not ok:
        print(f"not written: a task lost more than {MAX_LOSS:.1%} ({loss})", file=sys.stderr)
        return 1
    out = args.out or path
    clf.set_params(inference="auto").save(out)
    print(f"wrote {out} with its 8-bit copy ({len(clf.int8_):,} bytes); {RESULT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
