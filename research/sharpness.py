"""Do the training images look like the images the model sees? Sharpness under augmentation.

    python research/sharpness.py [--data-dir ../shared/data] [--model [LABEL=]FILE ...] [--quick]

Two measurements:

1. The sharpness (mean |discrete Laplacian|, away from the borders) of FER2013 training
   faces as the network receives them under each augmentation setting, against the
   faces themselves. Every bilinear resampling (rotation, zoom, a fractional shift)
   averages neighbouring pixels; mtlfaces 0.1.0 rotated and then shifted bilinearly, so
   it trained on faces much blurrier than those it classifies.
2. Each model's validation accuracy (FER2013 PublicTest emotion; UTKFace hold-out age
   group and gender) on faces blurred with a Gaussian of sigma 0-1 pixel. A model that
   scores *higher* on blurred faces than on the faces as given learnt the blur of its
   training images.

Writes research/results/sharpness.json. Models already recorded there under other labels
are kept (a run adds or replaces its own labels; ``--replace`` starts the record afresh),
so that one more model can be measured without rerunning the others.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from _common import DEFAULT_DATA, RESULTS, ROOT, machine, table, write_json  # noqa: E402

SETTINGS = {
    "none": False,
    "flip only": {"rotation": 0, "shift": 0},
    "rotation 0.03 only": {"flip": False, "shift": 0},
    "shift 0.08, bilinear": {"flip": False, "rotation": 0, "shift_interpolation": "bilinear"},
    "shift 0.08, whole pixels": {"flip": False, "rotation": 0},
    "mtlfaces 0.1.0 default (rotation + bilinear shift)": {"shift_interpolation": "bilinear"},
    "default (rotation + whole-pixel shift)": True,
    "default + zoom 0.15": {"zoom": 0.15},
}
SIGMAS = (0.0, 0.4, 0.6, 0.8, 1.0)


def sharpness(images):
    """Mean |discrete Laplacian| of (n, h, w[, 1]) images in [0, 1], 6 pixels from the borders."""
    x = np.asarray(images, dtype=np.float64).reshape(len(images), *np.shape(images)[1:3])
    lap = (4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1]
           - x[:, 1:-1, :-2] - x[:, 1:-1, 2:])
    return float(np.abs(lap[:, 6:-6, 6:-6]).mean())


def augmented_sharpness(faces, settings, seed=0):
    """Sharpness of ``faces`` ((n, h, w) uint8) after each setting's training-mode layers."""
    from mtlfaces._network import augmentation_layers, augmentation_spec

    x0 = faces.astype("float32")[..., None] / 255.0
    base = sharpness(x0)
    rows = []
    for name, augment in settings.items():
        x = x0
        for layer in augmentation_layers(augmentation_spec(augment), seed):
            x = layer(x, training=True)
        s = sharpness(np.asarray(x))
        rows.append({"augmentation": name, "sharpness": round(s, 4),
                     "vs_faces": round(s / base, 3)})
    return base, rows


def blurred(X, sigma):
    from scipy.ndimage import gaussian_filter

    if sigma == 0:
        return X
    return np.stack([gaussian_filter(x.astype(np.float32), sigma) for x in X]).round().clip(
        0, 255).astype(np.uint8)


def accuracy_under_blur(est, val, sigmas):
    from mtlfaces.evaluation import evaluate

    rows = []
    for sigma in sigmas:
        row = {"sigma": sigma}
        for name, task in (("fer2013_publictest", "emotion"), ("utkface", "age"),
                           ("utkface", "gender")):
            X, y = val[name]
            report = evaluate(est, blurred(X, sigma), y[[task]])
            row[task] = round(report[task]["accuracy"], 4)
        rows.append(row)
    return rows


def recorded_blur(quick=False):
    """``accuracy_under_blur`` of the results file an earlier run wrote (empty if none)."""
    path = os.path.join(RESULTS, f"sharpness{'_quick' if quick else ''}.json")
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return dict(json.load(fh).get("accuracy_under_blur", {}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--model", action="append", default=None,
                        metavar="[LABEL=]FILE",
                        help="model file(s) to test, each optionally named LABEL in the "
                             "results (default: the bundled model)")
    parser.add_argument("--replace", action="store_true",
                        help="drop the models recorded by earlier runs (by default they are "
                             "kept, and this run's labels added or replaced)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    import train_pretrained

    from mtlfaces import load_model
    from mtlfaces._pretrained import PRETRAINED_MODEL_PATH

    limit = 1500 if args.quick else None
    train, val = train_pretrained.load_splits(args.data_dir, 48, os.path.join(ROOT, "cache"),
                                              limit=limit)
    X, y = train
    fer_train = X[(y["source"] == "fer2013").to_numpy()][:400 if args.quick else 4000]
    base, aug_rows = augmented_sharpness(fer_train, SETTINGS)
    print(f"FER2013 training faces (n={len(fer_train)}), sharpness as given: {base:.4f}\n")
    table(aug_rows, ["augmentation", "sharpness", "vs_faces"])

    models = args.model or [PRETRAINED_MODEL_PATH]
    sigmas = SIGMAS[:2] if args.quick else SIGMAS
    blur = {} if args.replace else recorded_blur(args.quick)
    for spec in models:
        name, sep, path = spec.rpartition("=")
        if not sep:
            name = os.path.relpath(os.path.abspath(path), ROOT)
        est = load_model(path)
        blur.pop(name, None)  # a label measured again moves to the end
        blur[name] = accuracy_under_blur(est, val, sigmas)
        print(f"\n{name}: validation accuracy on Gaussian-blurred faces")
        table(blur[name], ["sigma", "emotion", "age", "gender"])
    write_json("sharpness", {
        "fer_training_faces": int(len(fer_train)), "sharpness_as_given": round(base, 4),
        "augmentation": aug_rows, "accuracy_under_blur": blur,
        "validation_sizes": {k: int(len(v[0])) for k, v in val.items()},
        "machine": machine()}, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
