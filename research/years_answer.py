"""Which number should the years head answer? Expected value, median or mode, on v7.

    python research/years_answer.py [--data-dir ../shared/data]

The bundled network's ``age_years`` head gives a distribution over the years 1-90; the
library answers one number. The expected value (what 0.4's development answered first)
leans towards the middle ages: it overestimates children and underestimates the old
(MODEL_CARD.md). For the target the project measures, the mean absolute error, the
best single answer from a distribution is its median. This scores several answers from
the same distributions of the UTKFace validation faces (2,742 faces, the fixed split),
with the 8-bit copy (what ``mtlfaces predict`` uses) and the Keras network: each answer's
MAE, its bias, its error by age group, and its difference from the expected value's error
with the paired standard error (same faces). Also, as a ceiling for a calibration the
library does not ship, a linear and an isotonic map of the expected value fitted on one
half of the faces and scored on the other (2 folds, 10 random splits; fitting on the
validation faces themselves would flatter it). Writes research/results/years_answer.json.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from _common import DEFAULT_DATA, ROOT, machine, table, write_json  # noqa: E402

GROUPS = ("Child", "Young", "Middle Age", "Old", "Very Old")


def answers(P, years):
    """``{rule: ages}`` from distributions ``P`` (rows) over ``years``."""
    from mtlfaces.tasks import median_years

    P = P / P.sum(axis=1, keepdims=True)
    cdf = P.cumsum(axis=1)
    return {"expected value": P @ years,
            "median (interpolated; the library's)": median_years(P, years),
            "median year": years[(cdf >= 0.5).argmax(axis=1)],
            "most probable year": years[P.argmax(axis=1)],
            "geometric mean": np.exp(P @ np.log(years))}


def crossfit(x, truth, fit, rng, splits=10):
    """MAE of ``fit`` (x, truth, x_new -> answers) fitted on one half, scored on the other."""
    maes = []
    for _ in range(splits):
        idx = rng.permutation(len(x))
        a, b = idx[: len(x) // 2], idx[len(x) // 2:]
        out = np.empty(len(x))
        for train, test in ((a, b), (b, a)):
            out[test] = fit(x[train], truth[train], x[test])
        maes.append(float(np.abs(out - truth).mean()))
    return maes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"))
    parser.add_argument("--quick", action="store_true", help="1,500 faces: checks it runs")
    args = parser.parse_args(argv)

    from sklearn.isotonic import IsotonicRegression

    from mtlfaces import load_pretrained
    from mtlfaces.datasets import load_utkface, validation_mask
    from mtlfaces.tasks import YEARS_TASK

    X, y = load_utkface(os.path.join(args.data_dir, "UTKFace.tar.gz"), image_size=48,
                        grayscale=True, cache_dir=args.cache_dir,
                        limit=1500 if args.quick else None, random_state=0)
    val = np.asarray(validation_mask(y), dtype=bool)
    truth = y.loc[val, YEARS_TASK].to_numpy(dtype=float)
    group = y.loc[val, "age"].to_numpy(dtype=str)
    est = load_pretrained()
    years = np.asarray(est.classes_[est.tasks_.index(YEARS_TASK)], dtype=float)
    rows, ceilings = [], []
    for inference in ("int8", "keras"):
        est.set_params(inference="auto" if inference == "int8" else "keras")
        P = est.predict_proba(X[val])[est.tasks_.index(YEARS_TASK)]
        rules = answers(np.asarray(P, dtype=np.float64), years)
        base = np.abs(rules["expected value"] - truth)
        for rule, age in rules.items():
            error = np.abs(age - truth)
            diff = error - base
            rows.append(dict(
                network=inference, answer=rule, mae=float(error.mean()),
                mae_se=float(error.std(ddof=1) / np.sqrt(len(error))),
                vs_expected=float(diff.mean()),
                vs_expected_se=float(diff.std(ddof=1) / np.sqrt(len(diff))),
                bias=float((age - truth).mean()), within_5_years=float(np.mean(error <= 5)),
                **{g: float(error[group == g].mean()) for g in GROUPS if (group == g).any()}))
        rng = np.random.default_rng(0)
        x = rules["expected value"]
        for name, fit in (
                ("linear map of the expected value",
                 lambda a, t, b: np.polyval(np.polyfit(a, t, 1), b)),
                ("isotonic map of the expected value",
                 lambda a, t, b: IsotonicRegression(out_of_bounds="clip").fit(a, t).predict(b))):
            maes = crossfit(x, truth, fit, rng)
            ceilings.append(dict(network=inference, answer=name, mae=float(np.mean(maes)),
                                 mae_min=min(maes), mae_max=max(maes)))
    table([{**r, **{k: f"{r[k]:.3f}" for k in ("mae", "vs_expected", "bias")}} for r in rows],
          ["network", "answer", "mae", "vs_expected", "bias", *GROUPS])
    table(ceilings, ["network", "answer", "mae", "mae_min", "mae_max"])
    write_json("years_answer", {"machine": machine(), "validation_faces": int(val.sum()),
                                "rows": rows, "cross_fitted": ceilings}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
