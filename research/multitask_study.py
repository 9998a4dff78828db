"""Does multi-task learning pay? Joint vs single-task vs two-stage training, HOG+SVM, data size.

    python research/multitask_study.py --data-dir ../shared/data            # published run
    python research/multitask_study.py --quick                              # a few minutes

Same trunk (the default 32-64-128-256 network at 48x48, bf16) and the same number of
epochs over each arm's data, several seeds, on the fixed validation splits of
recipes/train_pretrained.py (UTKFace hash hold-out; FER2013 PublicTest):

  joint           one network, all three tasks, missing labels masked
  joint_weighted  the same with loss weights age 1, gender 1, emotion 0.5
  single          three networks: age on UTKFace, gender on UTKFace, emotion on FER2013+CK+
  two_stage_pseudo    age+gender on UTKFace, then an emotion head grown on the trunk and
                      trained on the emotion data with the stage-1 model's age/gender
                      predictions as pseudo-labels (the reference project's recipe)
  two_stage           the same without pseudo-labels (stage 2 sees emotion labels only)

plus HOG+SVM baselines (linear on all training data, RBF on a subsample) and the joint
network at 10 %, 30 % and 100 % of the training data. Writes
research/results/multitask_study[_quick].json after every arm, and a plot.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from _common import DEFAULT_DATA, RESULTS, machine, table, write_json  # noqa: E402

TASKS = ("age", "gender", "emotion")


def net(seed, epochs, **kw):
    from mtlfaces import MultiTaskFaceClassifier

    params = dict(image_size=48, epochs=epochs, lr_schedule="cosine", mixed_precision=True,
                  early_stopping=False, validation_fraction=0.0, random_state=seed)
    params.update(kw)
    return MultiTaskFaceClassifier(**params)


def accuracies(model, val):
    """Per-task accuracy on the validation sets (age/gender: UTKFace; emotion: PublicTest)."""
    Xu, yu = val["utkface"]
    Xf, yf = val["fer2013_publictest"]
    out = {}
    for task, (X, y) in (("age", (Xu, yu)), ("gender", (Xu, yu)), ("emotion", (Xf, yf))):
        if task in model.tasks_:
            out[task] = model.score(X, y[[task]])
    return out


def n_params(model):
    return int(sum(np.prod(w.shape) for w in model.model_.weights))


def run_arm(arm, seed, X, y, val, epochs):
    """Train one arm; return (accuracies, parameters, seconds)."""
    utk = y["source"].eq("utkface").to_numpy()
    emo = y["emotion"].notna().to_numpy()
    t = time.perf_counter()
    if arm == "joint":
        m = net(seed, epochs, tasks=TASKS).fit(X, y[list(TASKS)])
        acc, params = accuracies(m, val), n_params(m)
    elif arm == "joint_weighted":
        m = net(seed, epochs, tasks=TASKS, loss_weights={"emotion": 0.5}).fit(X, y[list(TASKS)])
        acc, params = accuracies(m, val), n_params(m)
    elif arm == "single":
        acc, params = {}, 0
        for task, rows in (("age", utk), ("gender", utk), ("emotion", emo)):
            m = net(seed, epochs, tasks=(task,)).fit(X[rows], y.loc[rows, [task]])
            acc.update(accuracies(m, val))
            params += n_params(m)
    elif arm in ("two_stage", "two_stage_pseudo"):
        m = net(seed, epochs, tasks=("age", "gender")).fit(X[utk], y.loc[utk, ["age", "gender"]])
        stage1 = accuracies(m, val)
        y2 = y.loc[emo, list(TASKS)].copy()
        if arm == "two_stage_pseudo":
            pseudo = m.predict(X[emo])
            y2["age"], y2["gender"] = pseudo[:, 0], pseudo[:, 1]
        else:
            y2["age"], y2["gender"] = None, None
        m.set_params(warm_start=True, tasks=TASKS)
        m.fit(X[emo], y2)
        acc, params = accuracies(m, val), n_params(m)
        acc["stage1_gender"], acc["stage1_age"] = stage1["gender"], stage1["age"]
    else:
        raise ValueError(arm)
    return acc, params, time.perf_counter() - t


def summarise(runs):
    rows = []
    for arm in dict.fromkeys(r["arm"] for r in runs):
        sel = [r for r in runs if r["arm"] == arm]
        row = {"arm": arm, "seeds": len(sel)}
        for key in ("age", "gender", "emotion", "stage1_gender"):
            vals = [r["accuracy"][key] for r in sel if key in r["accuracy"]]
            if vals:
                row[key] = f"{np.mean(vals):.3f} ± {np.std(vals):.3f}"
        row["params"] = sel[0]["params"]
        row["train_s"] = float(np.median([r["seconds"] for r in sel]))
        rows.append(row)
    return rows


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    arms = list(dict.fromkeys(r["arm"] for r in result["runs"]))
    for k, task in enumerate(TASKS):
        for i, arm in enumerate(arms):
            vals = [r["accuracy"][task] for r in result["runs"] if r["arm"] == arm
                    and task in r["accuracy"]]
            axes[0].scatter([k + (i - len(arms) / 2) * 0.12] * len(vals), vals, s=14,
                            color=f"C{i}", label=arm if k == 0 else None)
    axes[0].set_xticks(range(3), TASKS)
    axes[0].set_ylabel("validation accuracy")
    axes[0].set_title("each seed, each arm")
    axes[0].legend(fontsize=7)
    curve = result.get("data_size", [])
    if curve:
        frac = [c["fraction"] for c in curve]
        for task in TASKS:
            axes[1].plot(frac, [c["accuracy"][task] for c in curve], "o-", label=task)
        axes[1].set_xscale("log")
        axes[1].set_xlabel("fraction of the training data")
        axes[1].set_title("joint network vs data size")
        axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--fraction", type=float, default=0.25,
                        help="part of the training data every arm uses")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.quick:
        args.fraction, args.epochs, args.seeds = 0.015, 1, 1

    from train_pretrained import load_splits

    from mtlfaces import HOGSVMClassifier

    (X_all, y_all), val = load_splits(args.data_dir, 48, os.path.join(HERE, "..", "cache"))
    if args.quick:
        val = {k: (v[0][:300], v[1][:300].reset_index(drop=True)) for k, v in val.items()}
    rng = np.random.RandomState(0)
    keep = np.sort(rng.permutation(len(X_all))[: int(len(X_all) * args.fraction)])
    X, y = X_all[keep], y_all.iloc[keep].reset_index(drop=True)
    print(f"training images per arm: {len(X)} ({args.fraction:.0%}), {args.epochs} epochs, "
          f"{args.seeds} seed(s)", flush=True)
    result = {"machine": machine(), "quick": args.quick, "fraction": args.fraction,
              "epochs": args.epochs, "train_images": int(len(X)), "runs": []}
    arms = ["joint", "joint_weighted", "single", "two_stage_pseudo", "two_stage"]
    for seed in range(args.seeds):
        for arm in arms:
            acc, params, secs = run_arm(arm, seed, X, y, val, args.epochs)
            result["runs"].append({"arm": arm, "seed": seed, "accuracy": acc, "params": params,
                                   "seconds": secs})
            print(f"seed {seed} {arm:<17} " + "  ".join(f"{k} {v:.3f}" for k, v in acc.items())
                  + f"  ({secs:.0f}s)", flush=True)
            write_json("multitask_study", result, args.quick)

    # HOG + SVM baselines on the same validation sets
    utk = y["source"].eq("utkface").to_numpy()
    emo = y["emotion"].notna().to_numpy()
    baselines = []
    for kernel, cap in (("linear", None), ("rbf", 3000 if not args.quick else 300)):
        t = time.perf_counter()
        acc = {}
        fit_s = predict_s = 0.0
        for task, rows in (("age", utk), ("gender", utk), ("emotion", emo)):
            idx = np.flatnonzero(rows)
            if cap:
                idx = np.sort(np.random.RandomState(0).permutation(idx)[:cap])
            svm = HOGSVMClassifier(kernel=kernel, image_size=48, tasks=(task,), random_state=0)
            t0 = time.perf_counter()
            svm.fit(X[idx], y.loc[idx, [task]])
            fit_s += time.perf_counter() - t0
            Xv, yv = val["utkface"] if task != "emotion" else val["fer2013_publictest"]
            t0 = time.perf_counter()
            acc[task] = svm.score(Xv, yv[[task]])
            predict_s += time.perf_counter() - t0
        baselines.append({"model": f"HOG+SVM {kernel}", "train_rows_cap": cap, **acc,
                          "fit_s": fit_s, "predict_s": predict_s})
        print(f"HOG+SVM {kernel}: " + "  ".join(f"{k} {v:.3f}" for k, v in acc.items()),
              flush=True)
        result["baselines"] = baselines
        write_json("multitask_study", result, args.quick)

    # Data size curve of the joint network (relative to all training data)
    curve = []
    for frac in ((0.1, 0.3, 1.0) if not args.quick else (0.005, 0.015)):
        sel = np.sort(np.random.RandomState(1).permutation(len(X_all))[: int(len(X_all) * frac)])
        t = time.perf_counter()
        m = net(0, args.epochs, tasks=TASKS).fit(X_all[sel], y_all.iloc[sel][list(TASKS)])
        curve.append({"fraction": frac, "images": int(len(sel)), "accuracy": accuracies(m, val),
                      "seconds": time.perf_counter() - t})
        print(f"data {frac:.0%}: " + "  ".join(f"{k} {v:.3f}" for k, v in
                                                curve[-1]["accuracy"].items()), flush=True)
        result["data_size"] = curve
        write_json("multitask_study", result, args.quick)

    print("\nArms (mean ± std over seeds)")
    result["summary"] = summarise(result["runs"])
    table(result["summary"], ["arm", "seeds", "age", "gender", "emotion", "stage1_gender",
                              "params", "train_s"])
    print("\nBaselines")
    table(baselines, ["model", "train_rows_cap", "age", "gender", "emotion", "fit_s",
                      "predict_s"])
    print("\nData size (joint)")
    table([{"fraction": c["fraction"], "images": c["images"], **c["accuracy"],
            "seconds": c["seconds"]} for c in curve],
          ["fraction", "images", "age", "gender", "emotion", "seconds"])
    write_json("multitask_study", result, args.quick)
    plot(result, os.path.join(RESULTS, f"multitask_study{'_quick' if args.quick else ''}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
