"""Is the bundled network at its limit? Several trained networks' answers averaged.

    python research/ensemble.py MODEL MODEL [MODEL ...] [--data-dir ../shared/data]

Each model alone, then the mean of all the models' class probabilities (each with its own
test-time flip), on the recipe's fixed validation splits (FER2013 PublicTest, the UTKFace
hold-out, CK+ held-out subjects). An ensemble of networks trained apart (other seeds, other
restarts) is the usual upper bound of what weight averaging or distillation into one
network of the same size can reach: if it is no better than one network, what is left is
a larger network or more data, not another way of training this one. The models must have
the same tasks and classes. Writes research/results/ensemble.json.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DEFAULT_DATA, QUICK_LIMIT, ROOT, machine, table, write_json  # noqa: E402

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="two or more .mtlfaces files with the same tasks and classes")
    parser.add_argument("--labels", nargs="+", default=None, metavar="LABEL",
                        help="a name for each model in the table (default: its path)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"))
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_LIMIT:,} images per dataset: checks the script runs")
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error(f"an ensemble needs two or more models, got {args.models}")
    if args.labels is not None and len(args.labels) != len(args.models):
        parser.error(f"--labels names {len(args.labels)} models; {len(args.models)} are given")

    import posthoc
    import train_pretrained as recipe

    from mtlfaces import load_model

    models = [load_model(path) for path in args.models]  # first: a mismatch fails fast
    first = models[0]
    for path, est in zip(args.models[1:], models[1:]):
        if est.tasks_ != first.tasks_ or any(
                list(a) != list(b) for a, b in zip(est.classes_, first.classes_)):
            parser.error(f"{path}: its tasks or classes differ from {args.models[0]}'s "
                         f"({est.tasks_} vs {first.tasks_}); an ensemble needs the same")
    (X, _), val = recipe.load_splits(args.data_dir, recipe.RECIPE["image_size"],
                                     args.cache_dir, limit=QUICK_LIMIT if args.quick else None)
    rows, probs = [], []
    for k, (path, est) in enumerate(zip(args.models, models)):
        t = time.time()
        probs.append(posthoc.probabilities(est, val))
        rows.append(dict(model=args.labels[k] if args.labels else recipe._as_given(path),
                         file=recipe._as_given(path), **posthoc.scores(probs[-1], est, val),
                         parameters=int(est.model_.count_params()),
                         seconds=round(time.time() - t, 1)))
        print(rows[-1], flush=True)
    mean = {name: [sum(p[name][k] for p in probs) / len(probs)
                   for k in range(len(first.tasks_))] for name in probs[0]}
    rows.append(dict(model=f"mean of all {len(probs)}", **posthoc.scores(mean, first, val),
                     parameters=sum(r["parameters"] for r in rows)))
    table(rows, ["model"] + list(posthoc.HEADLINE) + ["parameters"])
    write_json("ensemble", {"machine": machine(), "train_images": int(len(X)),
                            "validation_faces": {k: int(len(v[0])) for k, v in val.items()},
                            "rows": rows}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
