"""Issue #32's levers on a short schedule: which targets the next bundled model trains on.

    python research/next_model_levers.py [--data-dir ../shared/data] [--epochs 5]
                                         [--arms NAME ...] [--quick]

Every arm trains the bundled architecture from scratch on the recipe's training set for
``--epochs`` epochs (cosine from 1e-3, batch 128, bfloat16, phase 3's whole-pixel
augmentation, the recipe's seed) and is scored on the recipe's fixed validation splits. One
thing changes per arm:

- ``original labels``: FER2013's labels, as the bundled model was trained (the baseline);
- ``FER+ votes``: each FER2013 training face learns the distribution of FER+'s ten votes
  over the seven emotions (``fit(soft_targets=...)``). Contempt, unknown and not-a-face votes
  are left out of the distribution; a face whose most-voted column is unknown or not a face,
  or that has no vote for one of the seven, is dropped;
- ``FER+ votes and original label``: half each: the mean of the votes' distribution and the
  original label's one-hot (FER+ alone pulls the network away from the original labels
  that #32's emotion target is scored on);
- ``distillation``: original labels, and the bundled network (whichever is bundled when the
  arm runs: v6 for the recorded row; int8, with test-time flip;
  without the descriptor read-out: dlib's descriptor of 29,000 48-pixel FER2013 faces would
  cost about 45 CPU-minutes) gives its probabilities for the tasks a face's dataset lacks
  (age group and gender on FER2013 and CK+ faces, emotion on UTKFace faces) as soft
  targets of weight ``--teacher-weight``;
- ``distillation, teacher v7`` (added when v7 was the bundled network): the same settings
  as ``distillation``, run again under its own name with v7 as the teacher, the baseline
  for the next arm;
- ``distillation of every face, teacher v7``: as that, and a face *with* a label for a
  task also learns the teacher's probabilities for it: its target is the mean of the
  label's one-hot and the teacher's distribution (knowledge distillation at temperature 1,
  "born-again" training; the label keeps its weight, 1). What the teacher knows about a
  labelled face (which other emotion it resembles, how sure an age group is) reaches the
  student, not only its guesses for the tasks the dataset lacks;
- ``age in years``: original labels, and a fourth head, ``age_years``, a distribution over
  the years 1-90 trained on UTKFace's ages (a normal of sigma ``--years-sigma`` around each
  age: label-distribution learning); its expected value is the age in years, scored as mean
  absolute error on the UTKFace validation faces;
- ``original labels, no CK+``: the baseline with CK+'s training subjects left out, so that
  emotion on CK+ is a cross-dataset figure (posed faces, never seen): scored on all of CK+'s
  faces (``ckplus_all_emotion``) as well as on the hold-out subjects the other arms use. No
  teacher in this arm: the bundled network was trained on CK+.

Emotion is reported against FER2013's original PublicTest labels (#32's target) and against
the FER+ majority of the same faces. Each arm's row is written to
``research/results/next_model_levers.json`` as soon as it finishes; a rerun skips the arms
already there (``--redo`` trains them again), so a stopped run loses one arm at most.
"""

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DEFAULT_DATA, QUICK_LIMIT, RESULTS, ROOT, dump_json, machine, table  # noqa: E402
from ferplus import ferplus_majority, ferplus_targets  # noqa: E402  (recipes/)

ARMS = {
    "original labels": {},
    "FER+ votes": {"ferplus": 1.0},
    "FER+ votes and original label": {"ferplus": 0.5},
    "distillation": {"distil": True},
    "distillation, teacher v7": {"distil": True},
    "distillation of every face, teacher v7": {"distil": True, "every_face": True},
    "age in years": {"years": True},
    "original labels, no CK+": {"no_ckplus": True},
}
NAME = "next_model_levers"


def every_face_targets(teacher, X, y, tasks):
    """The ``every face`` arm's targets: ``{task: (n, k)}``, the teacher's probabilities
    where a face lacks the task's label (as ``recipe.teacher_targets``), and the mean of the
    label's one-hot and the teacher's probabilities where it has one."""
    import train_pretrained as recipe

    from mtlfaces.tasks import classes_by_task

    # The recipe's targets of faces with no labels at all: the teacher's view of each face.
    seen = recipe.teacher_targets(teacher, X, y.assign(**{t: None for t in tasks}), tasks)
    classes = classes_by_task(teacher)
    out = {}
    for task, p in seen.items():
        index = {c: i for i, c in enumerate(classes[task])}
        rows = np.flatnonzero(y[task].notna().to_numpy())
        onehot = np.zeros_like(p)
        onehot[rows, [index[v] for v in y[task].to_numpy()[rows]]] = 1.0
        out[task] = np.where(onehot.sum(axis=1, keepdims=True) > 0, (onehot + p) / 2, p)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", default=os.path.join(ROOT, "cache"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--teacher-weight", type=float, default=0.5)
    parser.add_argument("--years-sigma", type=float, default=3.0)
    parser.add_argument("--redo", action="store_true", help="train arms already measured again")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_LIMIT:,} images per dataset, 1 epoch: checks the script")
    args = parser.parse_args(argv)

    import json

    import train_pretrained as recipe

    from mtlfaces import MultiTaskFaceClassifier, load_pretrained

    out = os.path.join(RESULTS, NAME + ("_quick" if args.quick else "") + ".json")
    done = {}
    if os.path.exists(out) and not args.redo:
        with open(out) as fh:
            done = {row["arm"]: row for row in json.load(fh)["rows"]}
    (X, y), val = recipe.load_splits(args.data_dir, recipe.RECIPE["image_size"],
                                     args.cache_dir, limit=QUICK_LIMIT if args.quick else None)
    epochs = 1 if args.quick else args.epochs
    soft_fer, drop, _ = ferplus_targets(y, args.data_dir)
    print(f"FER+: {int(drop.sum())} FER2013 training faces dropped (most votes unknown or "
          "not a face, or none for the seven emotions)", flush=True)
    Xv, yv = val["fer2013_publictest"]
    majority = ferplus_majority(yv, args.data_dir)
    tasks = ["age", "gender", "emotion"]
    settings = dict(recipe.RECIPE, epochs=epochs, augment=dict(recipe.PHASE3["augment"]),
                    validation_fraction=0.0, verbose=2)
    teacher = None
    rows = list(done.values())
    for arm in args.arms:
        if arm in done:
            print(f"{arm}: measured already (--redo to train it again)")
            continue
        lever = ARMS[arm]
        keep = ~drop if lever.get("ferplus") else np.ones(len(y), bool)
        if lever.get("no_ckplus"):
            keep = keep & (y["source"] != "ckplus").to_numpy()
        Xa, ya = X[keep], y[keep].reset_index(drop=True)
        soft = {}
        if lever.get("ferplus"):
            share = lever["ferplus"]  # the votes' share; the rest the original label's
            from mtlfaces.tasks import EMOTIONS

            onehot = np.zeros_like(soft_fer[keep])
            labelled = np.array([e in EMOTIONS for e in ya["emotion"]])
            onehot[labelled, [EMOTIONS.index(e) for e in ya["emotion"][labelled]]] = 1.0
            votes = soft_fer[keep]
            has = votes.sum(axis=1) > 0
            soft["emotion"] = np.where(has[:, None], share * votes + (1 - share) * onehot, 0.0)
        arm_tasks = list(tasks)
        if lever.get("distil"):
            if teacher is None:
                teacher = load_pretrained()
            soft.update((every_face_targets if lever.get("every_face")
                         else recipe.teacher_targets)(teacher, Xa, ya, tasks))
        labels = ya[tasks]
        if lever.get("years"):  # the recipe's --age-years targets
            years = recipe.clip_years(ya[recipe.YEARS_TASK].to_numpy(dtype=object))
            labels = labels.assign(**{recipe.YEARS_TASK: years})
            soft[recipe.YEARS_TASK] = recipe.years_distribution(
                years, args.years_sigma, recipe.years_classes(labels))
            arm_tasks.append(recipe.YEARS_TASK)
        est = MultiTaskFaceClassifier(tasks=tuple(arm_tasks), **dict(
            settings, soft_target_weight=args.teacher_weight))
        t0 = time.time()
        est.fit(Xa, labels, soft_targets=soft)
        seconds = time.time() - t0
        report = recipe.validate(est, val)  # with age_mae_years when there is the head
        summary = recipe.validation_summary(report)
        fer = report["fer2013_publictest"]["emotion"]
        predicted = est.predict(Xv)[:, est.tasks_.index("emotion")]
        scored = majority != None  # noqa: E711  (an object array)
        extra = {}
        if lever.get("no_ckplus"):  # every CK+ face is unseen: score them all
            unseen = recipe.without_ckplus((X, y), val)[1]["ckplus"]
            every = recipe.validate(est, {"ckplus": unseen})["ckplus"]["emotion"]
            extra = dict(ckplus_all_emotion=every["accuracy"],
                         ckplus_all_emotion_macro=every["macro_accuracy"],
                         ckplus_all_faces=int(sum(every["support"].values())))
        row = dict(arm=arm, epochs=epochs, train_faces=int(len(Xa)), **extra,
                   train_minutes=round(seconds / 60, 1), **summary,
                   emotion_macro=fer["macro_accuracy"],
                   emotion_ferplus_majority=float((predicted[scored] == majority[scored]).mean()),
                   ferplus_faces_scored=int(scored.sum()))
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()},
              flush=True)
        rows = [r for r in rows if r["arm"] != arm] + [row]
        dump_json(out, {"machine": machine(), "epochs": epochs, "quick": args.quick,
                        "teacher_weight": args.teacher_weight, "years_sigma": args.years_sigma,
                        "settings": {k: v for k, v in settings.items() if k != "callbacks"},
                        "rows": rows})
    table(rows, ["arm", "train_minutes", "emotion", "emotion_ferplus_majority", "gender",
                 "age", "ckplus_emotion", "ckplus_all_emotion", "age_mae_years"])
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
