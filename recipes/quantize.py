"""Give the bundled model its 8-bit copy, and check that it answers as the network does.

    python recipes/quantize.py [--data-dir ../shared/data] [--model FILE] [--out FILE]
                               [--result JSON]

Calibrates :meth:`MultiTaskFaceClassifier.quantize` on 500 training faces (a seeded sample
of UTKFace's, FER2013's and CK+'s training parts: never the validation faces), then scores
the Keras network and the 8-bit copy on the fixed validation splits, mirror averaging as the
model has it. The model file is written (by default over the bundled one) only when no task
loses more than 0.3 points (and, with an ``age_years`` head, the age in years no more than
0.05 years of mean absolute error); ``recipes/results/quantize.json`` (``--result``) records
both scores either way, and ``python recipes/model_card.py`` puts them in the model card.
A candidate model is checked with ``--result`` elsewhere, so that the bundled model's record
stays until the candidate is adopted.
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(HERE)
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data")
RESULT = os.path.join(HERE, "results", "quantize.json")
MAX_LOSS = 0.003  # accuracy a task may lose to the 8-bit copy
MAX_YEARS_LOSS = 0.05  # years of mean absolute error the 8-bit copy may add
#: The recipe's validation summary keys, as the model card and /v1/model name them.
NAMES = {"age": "age (UTKFace)", "gender": "gender (UTKFace)",
         "emotion": "emotion (FER2013)", "ckplus_emotion": "emotion (CK+)",
         "age_mae_years": "age MAE years (UTKFace)"}
#: Scores where lower is better (an error, not an accuracy).
ERRORS = {"age MAE years (UTKFace)": MAX_YEARS_LOSS}


def calibration_faces(datasets, n=500, seed=0):
    """``n`` training faces, a seeded sample spread over the datasets (never validation)."""
    from mtlfaces import datasets as D

    rng = np.random.RandomState(seed)
    parts = []
    for X, y in datasets.values():
        train = X[~D.validation_mask(y)]
        parts.append(train[rng.permutation(len(train))[: n // len(datasets) + 1]])
    faces = np.concatenate(parts)
    return faces[rng.permutation(len(faces))[:n]]


def scores(clf, val):
    """The recipe's four headline accuracies of ``clf``, named as the model card shows them."""
    from train_pretrained import validate, validation_summary

    summary = validation_summary(validate(clf, val))
    return {name: summary[key] for key, name in NAMES.items() if key in summary}


def losses(keras_scores, int8_scores):
    """What the 8-bit copy loses on each score (positive = worse), and whether every loss
    is within its allowance."""
    loss = {t: (int8_scores[t] - keras_scores[t]) if t in ERRORS
            else (keras_scores[t] - int8_scores[t]) for t in keras_scores}
    return loss, all(v <= ERRORS.get(t, MAX_LOSS) for t, v in loss.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument("--out", default=None, help="where to write the model (default: --model)")
    parser.add_argument("--result", default=RESULT, help=f"the scores' JSON (default {RESULT})")
    args = parser.parse_args(argv)
    import mtlfaces
    from mtlfaces._pretrained import PRETRAINED_MODEL_PATH

    path = args.model or PRETRAINED_MODEL_PATH
    clf = mtlfaces.load_model(path)
    from train_pretrained import load_datasets, split

    datasets = load_datasets(args.data_dir, 48, cache_dir=None)  # the recipe's own loading
    _, val = split(datasets)
    keras_scores = scores(clf.set_params(inference="keras"), val)
    clf.quantize(calibration_faces(datasets))
    int8_scores = scores(clf.set_params(inference="int8"), val)
    loss, ok = losses(keras_scores, int8_scores)
    for task in keras_scores:
        print(f"{task:24s} keras {keras_scores[task]:.4f}  int8 {int8_scores[task]:.4f}")
    result = {"model": os.path.basename(path), "calibration_faces": 500,
              "keras": keras_scores, "int8": int8_scores, "max_loss": MAX_LOSS,
              **({"max_years_loss": MAX_YEARS_LOSS} if any(t in ERRORS for t in loss) else {}),
              "written": ok, "int8_bytes": len(clf.int8_)}
    os.makedirs(os.path.dirname(os.path.abspath(args.result)), exist_ok=True)
    with open(args.result, "w") as fh:
        json.dump(result, fh, indent=1)
    if not ok:
        print(f"not written: a task lost more than allowed ({loss}; accuracy {MAX_LOSS:.1%}, "
              f"years {MAX_YEARS_LOSS})", file=sys.stderr)
        return 1
    out = args.out or path
    clf.set_params(inference="auto").save(out)
    print(f"wrote {out} with its 8-bit copy ({len(clf.int8_):,} bytes); {args.result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
