"""Accuracy of a model on the fixed validation splits, through ``mtlfaces evaluate``.

    python benchmarks/bench_accuracy.py [--data-dir ../shared/data] [--model FILE] [--quick]

Runs ``mtlfaces evaluate ARCHIVE --split validation`` on UTKFace (age group, gender),
FER2013 (emotion, PublicTest) and CK+ (emotion, held-out subjects), as a user would, and
collects the per-task accuracies, and the age in years' mean absolute error (the network
alone: the descriptor read-out is for photos, see MODEL_CARD.md). ``--quick`` scores the first faces of each split. Writes
``benchmarks/results/accuracy.json``.
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA, machine, table, write_json  # noqa: E402

ARCHIVES = {"UTKFace": "UTKFace.tar.gz", "FER2013": "fer2013.tar.gz", "CK+": "CK+48.zip"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--model", default=None)
    parser.add_argument("--quick", action="store_true", help="200 faces per split")
    args = parser.parse_args(argv)
    import click

    from mtlfaces import cli

    rows = []
    for name, file in ARCHIVES.items():
        path = os.path.join(args.data_dir, file)
        if not os.path.exists(path):
            print(f"{path}: not there; skipping {name}", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as out:
            command = ["evaluate", path, "--split", "validation", "--out", out]
            if args.model:
                command += ["--model", args.model]
            if args.quick:
                command += ["--limit", "200"]
            # `mtlfaces evaluate ...` as a user types it, in this process (one TensorFlow start).
            try:
                cli.main(command, standalone_mode=False)
            except click.ClickException as exc:
                exc.show()
                return exc.exit_code
            with open(os.path.join(out, "report.json")) as fh:
                report = json.load(fh)
        for task, r in report.items():
            row = {"dataset": name, "task": task, "faces": r["n"]}
            if "mae" in r:  # the age in years: an error in years, no accuracy
                row["mae_years"] = r["mae"]
            else:
                row.update(accuracy=r["accuracy"], macro=r["macro_accuracy"])
            rows.append(row)
    if not rows:
        print(f"no dataset found in {args.data_dir}", file=sys.stderr)
        return 1
    table(rows, ["dataset", "task", "faces", "accuracy", "macro", "mae_years"])
    write_json("accuracy", {"machine": machine(), "model": args.model or "bundled",
                            "rows": rows}, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
