"""Training on your own small data set: what a few hundred to a few thousand faces give.

    python benchmarks/bench_small_data.py [--data-dir ../shared/data] [--quick] [--write-docs]

Stands in UTKFace's training faces for "your own" labelled faces (age group and gender) and
scores on its fixed validation faces:

- the bundled network as it is;
- the bundled network fine-tuned on N faces (``warm_start=True``, a lower learning rate);
- a new network trained from scratch on N faces at the default settings.

Prints a table, writes ``benchmarks/results/small_data.json`` (committed: docs/training.md
quotes it) and, with ``--write-docs``, the generated block of docs/training.md.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, ROOT, machine, table, write_blocks, write_json  # noqa: E402

SIZES = (300, 1000, 3000)
FINE_TUNE = dict(learning_rate=1e-4, epochs=10, batch_size="auto", mixup=0.0)  # set before the run
SCRATCH_EPOCHS = 20
VALIDATION_FACES = 1000
DOCS = os.path.join(ROOT, "docs", "training.md")
MARKERS = ("<!-- small-data:start -->", "<!-- small-data:end -->")


def render(result):
    """The docs' table of a result (``small_data.json``)."""
    lines = ["| faces trained on | model | age group | gender | minutes |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['faces'] or '–'} | {r['model']} | {100 * r['age']:.1f} % | "
                     f"{100 * r['gender']:.1f} % | {r['minutes']:.1f} |")
    return "\n".join(lines) + (f"\n\nScored on {result['validation_faces']:,} UTKFace "
                               "validation faces; 2 CPU cores; `python benchmarks/"
                               "bench_small_data.py --write-docs` writes this block.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="100 faces, 2 epochs: seconds")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the table into docs/training.md's generated block")
    args = parser.parse_args(argv)
    import mtlfaces
    from mtlfaces import MultiTaskFaceClassifier
    from mtlfaces.datasets import load_utkface, validation_mask

    X, y = load_utkface(os.path.join(args.data_dir, "UTKFace.tar.gz"), image_size=48)
    held = validation_mask(y)
    rng = np.random.RandomState(0)
    val = rng.permutation(np.flatnonzero(held))[:100 if args.quick else VALIDATION_FACES]
    train = rng.permutation(np.flatnonzero(~held))
    Xv, yv = X[val], y.iloc[val][["age", "gender"]].reset_index(drop=True)

    def scores(model):
        import pandas as pd

        pred = pd.DataFrame(model.predict(Xv), columns=model.tasks_)
        return {t: float((pred[t] == yv[t]).mean()) for t in ("age", "gender")}

    sizes = (100,) if args.quick else SIZES
    bundled = mtlfaces.load_pretrained()
    rows = [{"faces": 0, "model": "bundled network, as it is", **scores(bundled), "minutes": 0.0}]
    for n in sizes:
        Xn, yn = X[train[:n]], y.iloc[train[:n]][["age", "gender"]].reset_index(drop=True)
        start = time.perf_counter()
        tuned = mtlfaces.load_pretrained().set_params(
            warm_start=True, validation_fraction=0.0, verbose=0, tasks=("age", "gender"),
            **dict(FINE_TUNE, epochs=2 if args.quick else FINE_TUNE["epochs"]))
        tuned.fit(Xn, yn)
        rows.append({"faces": n, "model": f"bundled network fine-tuned ({tuned.epochs} epochs, "
                     f"learning rate {tuned.learning_rate:g})", **scores(tuned),
                     "minutes": (time.perf_counter() - start) / 60})
        start = time.perf_counter()
        scratch = MultiTaskFaceClassifier(epochs=2 if args.quick else SCRATCH_EPOCHS,
                                          random_state=0).fit(Xn, yn)
        rows.append({"faces": n, "model": f"new network, defaults ({scratch.epochs} epochs)",
                     **scores(scratch), "minutes": (time.perf_counter() - start) / 60})
        print(rows[-2], rows[-1], flush=True)
    result = {"machine": machine(), "validation_faces": len(val), "rows": rows,
              "fine_tune": FINE_TUNE, "scratch_epochs": SCRATCH_EPOCHS}
    table(rows, ["faces", "model", "age", "gender", "minutes"])
    path = write_json("small_data", result, args.quick)
    if args.write_docs:
        if args.quick:
            print("--write-docs takes a full run's figures, not a quick run's", file=sys.stderr)
            return 1
        write_blocks((DOCS, MARKERS, render(result)))
    return 0 if path else 1


if __name__ == "__main__":
    sys.exit(main())
