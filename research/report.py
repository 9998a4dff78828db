"""Turn the JSON written by the studies into research/RESULTS.md tables.

    python research/report.py

Reads the studies' JSON in research/results/ (whichever exist), the bundled model's
validation from recipes/results/, and the user-facing benchmarks' peers and loading from
benchmarks/results/, and writes research/RESULTS.md, so every figure there comes from a
script's output.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
#: Written by benchmarks/loading.py (a user-facing benchmark, not a study).
LOADING = os.path.join(os.path.dirname(HERE), "benchmarks", "results", "loading.json")
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "recipes"))
from model_card import PEERS, VALIDATION, _md, _pct, model_card, peers_table, readout_row  # noqa: E402,F401


def _load(name):
    path = {"pretrained_validation": VALIDATION, "peers": PEERS, "loading": LOADING}.get(
        name, os.path.join(RESULTS, f"{name}.json"))
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


# The four headline accuracies: column -> key of the recipe's validation_summary.
HEADLINE = {"emotion": "emotion", "gender": "gender", "age": "age", "CK+": "ckplus_emotion"}
# continue_study.ARMS, in order
CONTINUE_ARMS = ("gray", "colour", "age_sigma", "mixup", "mixup_strong")
READOUT_COLUMNS = ("gender with read-out", "age with read-out")


def _headline(summary):
    """``{column: percentage}`` of the headline accuracies in ``summary``."""
    return {col: _pct(summary[key]) for col, key in HEADLINE.items()}


def _as_percent(row, keys=tuple(HEADLINE)):
    """``row`` with its accuracies under ``keys`` (the headline columns) as percentages."""
    return {**row, **{k: _pct(row[k]) for k in keys}}


def _accuracy_section(title, text, rows, first, extra):
    """A RESULTS.md section: ``title``, ``text``, then a table of ``rows`` with their
    ``first`` column, the headline accuracies and the columns ``extra(row)`` formats."""
    table = [{**_as_percent(r), **extra(r)} for r in rows]
    return [f"## {title}", "", text, "",
            _md(table, [first] + list(HEADLINE) + list(extra(rows[0]))), ""]




def _plots(v, sp):
    """Learning curves of the bundled model and speed vs batch size, as PNGs in results/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    if v and v.get("history"):
        h = v["history"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for i, task in enumerate(("age", "gender", "emotion")):
            for kind, ax in (("loss", axes[0]), ("accuracy", axes[1])):
                key = f"{task}_{kind}"
                if key in h:
                    epochs = range(1, len(h[key]) + 1)
                    ax.plot(epochs, h[key], color=f"C{i}", label=f"{task} train")
                    if f"val_{key}" in h:
                        ax.plot(epochs, h[f"val_{key}"], "--", color=f"C{i}",
                                label=f"{task} validation")
        for ax, kind in zip(axes, ("loss", "accuracy")):
            ax.set_xlabel("epoch")
            ax.set_ylabel(kind)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        boundary = 0
        trained = [(k, p) for k, p in v.get("phases", {}).items() if k.startswith("phase")]
        for (name, phase), (after, _) in zip(trained[:-1], trained[1:]):
            boundary += phase["epochs"]
            nxt = f"phase {after[-1]}"
            for ax in axes:
                ax.axvline(boundary + 0.5, color="grey", lw=0.8, ls=":")
                ax.text(boundary + 0.7, ax.get_ylim()[1], nxt, va="top", fontsize=7,
                        color="grey")
        axes[0].set_title("bundled model: loss (validation loss is averaged per batch)")
        axes[1].set_title("bundled model: accuracy")
        fig.tight_layout()
        fig.savefig(os.path.join(RESULTS, "learning_curves.png"), dpi=100)
        plt.close(fig)
        made.append("learning_curves.png")
    if sp:
        fig, ax = plt.subplots(figsize=(6, 4))
        for what in dict.fromkeys(r["what"] for r in sp["classification"]):
            rows = [r for r in sp["classification"] if r["what"] == what]
            if len(rows) > 1:
                ax.plot([r["batch"] for r in rows], [r["faces_per_s"] for r in rows], "o-",
                        label=what)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel("faces / s")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(RESULTS, "speed_vs_batch.png"), dpi=100)
        plt.close(fig)
        made.append("speed_vs_batch.png")
    return made


def _augment_text(augment):
    """A short description of an ``augment`` setting, against the defaults."""
    from mtlfaces._network import AUGMENT_DEFAULTS, augmentation_spec

    spec = augmentation_spec(augment)
    if spec == AUGMENT_DEFAULTS:
        return "default augmentation"
    parts = [f"{k} {spec[k]}" for k in spec if spec[k] != AUGMENT_DEFAULTS[k]]
    return "the default augmentation but " + ", ".join(parts)


def _and(words):
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _later_phase(name, phase, recipe):
    """One sentence part for a warm-restart phase of the recipe's JSON."""
    s = phase["validation_summary"]
    seed = phase.get("random_state", recipe.get("random_state"))
    return (f"phase {name[-1]}, a warm restart: {phase['epochs']} more epochs from lr "
            f"{phase['learning_rate']} with "
            f"{_augment_text(phase.get('augment', recipe.get('augment', True)))} "
            + (f"and seed {seed} " if seed != recipe.get("random_state") else "")
            + (f"and mixup (Beta({phase['mixup']:g}, {phase['mixup']:g}) shares) "
               if phase.get("mixup") else "") +
            f"({phase['train_seconds'] / 60:.0f} min), reaching emotion {_pct(s['emotion'])}, "
            f"gender {_pct(s['gender'])}, age {_pct(s['age'])}, CK+ {_pct(s['ckplus_emotion'])}")


def wide_trunk_section(v, p1, ph1, p4, ph4):
    """RESULTS.md lines for the wider trunk trained from scratch (empty until its phase 1
    results exist): its phase ends as trained and with BatchNorm recalibrated, beside the
    bundled architecture's phase 1 and the fifth bundled model (``v``: its results, v5's)."""
    if not (v and p1 and ph1):
        return []

    def recalibrated(ph):
        (row,) = [r for r in ph["rows"] if r["arm"] == "BN recalibrated, images as given"]
        return {"ckplus_emotion" if k == "CK+" else k: row[k] for k in HEADLINE}

    def arch(p):
        r = p["recipe"]
        return (f"filters {'-'.join(map(str, r['filters']))}, {r['convs_per_block']} convs "
                f"per block, {p['parameters']:,} parameters")

    phase1 = p1["phases"]["phase1"]
    rows = [("bundled architecture, phase 1 (" + str(v["phases"]["phase1"]["epochs"])
             + " epochs)", v["phases"]["phase1"]["validation_summary"],
             v["phases"]["phase1"]["train_seconds"]),
            (f"wide, phase 1 ({phase1['epochs']} epochs)", phase1["validation_summary"],
             phase1["train_seconds"]),
            ("wide, phase 1, BN recalibrated", recalibrated(ph1), None)]
    if p4 and ph4:
        phase4 = p4["phases"]["phase4"]
        rows += [(f"wide, phase 1 + {phase4['epochs']} epochs of phase 4",
                  phase4["validation_summary"], phase4["train_seconds"]),
                 (f"wide, phase 1 + {phase4['epochs']} epochs of phase 4, BN recalibrated",
                  recalibrated(ph4), None),
                 ("wide, mean of phase 1 and phase 4 weights",
                  p4["phases"]["average"]["validation_summary"], None)]
    rows.append(("fifth bundled model (v5)", v["phases"]["average"]["validation_summary"],
                 sum(p["train_seconds"] for name, p in v["phases"].items()
                     if name != "average")))
    table = [{"model": name, **_headline(summary),
              "train_minutes": "" if t is None else f"{t / 60:.0f}"}
             for name, summary, t in rows]
    text = ("`python recipes/train_pretrained.py --filters "
            + " ".join(map(str, p1["recipe"]["filters"]))
            + f" --epochs {phase1['epochs']} --restart-epochs 0 --phase3-epochs 0 "
            "--phase4-epochs 0 ...`: a wider trunk (" + arch(p1) + ", against "
            f"{v['parameters']:,}) trained from scratch with the recipe's phase 1 (its "
            "rotation and bilinear shift blur the training faces: see Training-image "
            "sharpness)")
    if p4 and ph4:
        text += (", then continued with `--continue-from WIDE_PHASE1 --from-phase 4 "
                 f"--phase4-epochs {p4['phases']['phase4']['epochs']}`: phase 4's sharp "
                 "training faces (whole-pixel shifts, no rotation, contrast, erasing) from lr "
                 f"{p4['phases']['phase4']['learning_rate']}, the recipe's weight average "
                 "taken with the phase-1 end")
    text += (". `BN recalibrated`: `python research/posthoc.py --model FILE`, the "
             "BatchNorm statistics recomputed over the training images as given. Training "
             "minutes on the 2 shared cores (the wide runs shared them with other work). "
             "Fixed validation splits.")
    return ["## A wider trunk from scratch", "", text, "",
            _md(table, ["model"] + list(HEADLINE) + ["train_minutes"]), ""]


def more_mixup_section(v, more, average=None):
    """RESULTS.md lines for phase 6 continued (continue_study.py's mixup arm on the bundled
    model, ``--name continue_study_v6``), and its ``mixup_weighted`` arm where it ran,
    beside the bundled model; empty until the mixup arm ran."""
    if not (v and more and more.get("rows")):
        return []
    arms = {r["arm"]: r for r in more["rows"]}
    if "mixup" not in arms:
        return []
    row, weighted = arms["mixup"], arms.get("mixup_weighted")
    ref = more.get("bundled_with_readout") or {}
    start = {**_headline(v["phases"]["phase6"]["validation_summary"]),
             **{f"{t} with read-out": _pct(ref[t]) for t in ("gender", "age") if t in ref}}

    def continued(model, r):
        return {"model": model, **_headline(r),
                **{k: _pct(r[k]) for k in READOUT_COLUMNS if k in r},
                "train_minutes": r["train_minutes"]}

    def counts(r):
        return ", ".join(f"{t} +{r[f'{t} gained']}/−{r[f'{t} lost']}"
                         for t in ("emotion", "gender", "age"))

    rows = [{"model": "bundled (v6: phase 6, 15 epochs of mixup)", **start},
            continued(f"v6 + {row['epochs']} more epochs of mixup", row)]
    title, command, weighted_text = "more epochs of mixup", "--arms mixup", ""
    if weighted:
        weights = more["task_weights"]  # written with the arm
        rows.append(continued(
            f"v6 + {weighted['epochs']} more epochs of mixup, age and gender losses "
            f"× {weights['age']:g}", weighted))
        title += ", and with the age and gender losses weighted"
        command = "--arms mixup mixup_weighted"
        weighted_text = (" The `mixup_weighted` arm is the same continuation with the "
                         "losses weighted " + ", ".join(
                             f"{t} {w:g}" for t, w in weights.items()) + " (`loss_weights`): "
                         + counts(weighted) + ".")
    if average:  # train_pretrained.py --average-models BUNDLED CONTINUED
        rows.append({"model": "mean of v6 and v6 + more",
                     **_headline(average["validation_summary"])})
    return [f"## Phase 6 continued: {title}", "",
            "`python research/continue_study.py --model mtlfaces/models/pretrained.mtlfaces "
            f"{command} --name continue_study_v6`: the bundled model continued once more "
            "the way phase 6 made it (a new cosine schedule from lr "
            f"{more['settings']['learning_rate']}, mixup {more['mixup']:g}). Faces gained and "
            "lost against the bundled model (network alone): " + counts(row) + "."
            + weighted_text + " Fixed validation splits.", "",
            _md(rows, ["model"] + list(HEADLINE) + list(READOUT_COLUMNS) + ["train_minutes"]),
            ""]


def next_model_section(fp, nl):
    """Issue #32: FER+'s votes against FER2013's labels, and the next model's levers on a
    short schedule."""
    parts = []
    if fp:
        tr, pt = fp["splits"]["Training"], fp["splits"]["PublicTest"]
        b = fp["bundled_publictest"]
        parts += ["## FER+ votes against FER2013's labels", "",
                  "`python research/ferplus_labels.py`: FER+'s ten votes per face, aligned "
                  "with `fer2013.csv` row by row. The FER+ majority agrees with the original "
                  f"label on {_pct(tr['agreement_with_original'])} of the Training faces "
                  f"({_pct(pt['agreement_with_original'])} of PublicTest): by original "
                  "class " + ", ".join(f"{c} {_pct(v)}" for c, v in sorted(
                      tr["agreement_by_original_class"].items(), key=lambda kv: -kv[1]))
                  + f". Majority contempt {_pct(tr['majority_contempt'])}, unknown "
                  f"{_pct(tr['majority_unknown'])}, not a face "
                  f"{_pct(tr['majority_not_a_face'])}. Median sharpness (variance of the "
                  f"Laplacian) {tr['sharpness_median']:,.0f} Training, "
                  f"{pt['sharpness_median']:,.0f} PublicTest: no blurred split. The bundled "
                  f"network on PublicTest: {_pct(b['accuracy_original'])} against the "
                  f"original labels, {_pct(b['accuracy_ferplus_majority'])} against the FER+ "
                  f"majority ({b['ferplus_faces_scored']:,} faces whose majority is one of "
                  "the seven emotions).", ""]
    if nl:
        columns = ["arm", "emotion", "emotion vs FER+", "gender", "age", "CK+",
                   "age MAE (years)", "minutes"]
        named = {"distillation": "distillation, teacher v6 (bundled then)"}
        rows = [{"arm": named.get(r["arm"], r["arm"]), "emotion": _pct(r["emotion"]),
                 "emotion vs FER+": _pct(r["emotion_ferplus_majority"]),
                 "gender": _pct(r["gender"]), "age": _pct(r["age"]),
                 "CK+": _pct(r["ckplus_emotion"]) + (
                     f" (all {r['ckplus_all_faces']}: {_pct(r['ckplus_all_emotion'])})"
                     if "ckplus_all_emotion" in r else ""),
                 "age MAE (years)": f"{r['age_mae_years']:.2f}" if "age_mae_years" in r else "",
                 "minutes": f"{r['train_minutes']:.0f}"} for r in nl["rows"]]
        parts += ["## The next model's levers on a short schedule (issue #32)", "",
                  f"`python research/next_model_levers.py --epochs {nl['epochs']}`: each arm "
                  "trains the bundled architecture from scratch for "
                  f"{nl['epochs']} epochs (cosine from 1e-3, bfloat16, whole-pixel shifts, "
                  "contrast and erasing; the recipe's seed), changing its targets; fixed "
                  "validation splits, emotion against PublicTest's original labels and against "
                  "the FER+ majority. Teacher weight "
                  f"{nl['teacher_weight']}; the years head's targets spread by "
                  f"{nl['years_sigma']} years. One seed per arm, so the spread between "
                  "trainings is not measured; the sampling standard error of an accuracy is "
                  "about 0.8 points on PublicTest (3,579 faces), 0.9 for age group and 0.5-0.6 "
                  "for gender (2,742 UTKFace faces). Age MAE: of the years head's expected "
                  "value, the answer at the time (the library now answers the median, "
                  "about 0.15 years better: research/years_answer.py). Minutes: wall time "
                  "on the 2-core machine, which some arms shared with test runs.",
                  "", _md(rows, columns), "",
                  "Any share of FER+'s votes in the target, even half with the original "
                  "label, moves the network's answers to the FER+ reading of a face (up 7-8 "
                  "points against the FER+ majority) and away from the original labels (down "
                  "7-8): the votes are predictable from the face, the original labels' "
                  "disagreements with them are not. The next model's long run therefore keeps "
                  "the original labels and takes distillation and the years head "
                  "(`recipes/train_pretrained.py --teacher bundled --age-years`). The arm "
                  "without CK+ never sees a CK+ face, so its CK+ figure (hold-out subjects, "
                  "and in brackets all of CK+'s faces with one of the seven emotions) is a "
                  "cross-dataset figure for posed faces; the other arms' CK+ column is on "
                  "hold-out subjects of a dataset they trained on.", ""]
        arms = {r["arm"]: r for r in nl["rows"]}
        base, every = (arms.get("distillation, teacher v7"),
                       arms.get("distillation of every face, teacher v7"))
        if base and every:
            def change(a, b, pairs):
                return ", ".join(f"{task} {100 * (a[key] - b[key]):+.1f} points"
                                 for task, key in pairs)

            text = ("Distilling every face (a labelled face's target the mean of its label "
                    "and the teacher's probabilities) against distilling only the tasks a "
                    "face lacks, both with v7 as the teacher: " + change(every, base, (
                        ("emotion", "emotion"), ("gender", "gender"), ("age group", "age"),
                        ("CK+", "ckplus_emotion"))) + ".")
            if "distillation" in arms:
                text += (" v7 as the teacher against v6: " + change(
                    base, arms["distillation"], (("emotion", "emotion"), ("gender", "gender"),
                                                 ("age group", "age"))) + ".")
            parts += [text, ""]
    return parts


def years_answer_section(ya):
    """research/years_answer.py: which number the years head answers."""
    groups = ["Child", "Young", "Middle Age", "Old", "Very Old"]
    rows = [{"network": r["network"], "answer": r["answer"],
             "MAE": f"{r['mae']:.3f} ± {r['mae_se']:.3f}",
             "vs expected value": (f"{r['vs_expected']:+.3f} ± {r['vs_expected_se']:.3f}"
                                   if r["answer"] != "expected value" else ""),
             "bias": f"{r['bias']:+.2f}", "within 5 y": _pct(r["within_5_years"]),
             **{g: f"{r[g]:.2f}" for g in groups}} for r in ya["rows"]]
    fits = [{"network": r["network"], "answer": r["answer"], "MAE": f"{r['mae']:.3f}",
             "range over splits": f"{r['mae_min']:.3f}-{r['mae_max']:.3f}"}
            for r in ya["cross_fitted"]]
    return ["## The years head's answer: expected value, median or mode", "",
            "`python research/years_answer.py`: the bundled network's distributions over "
            f"the years for the {ya['validation_faces']:,} UTKFace validation faces, "
            "answered several ways; MAE and error by age group in years, `vs expected "
            "value` the change in each face's error against the expected value's, with its "
            "paired standard error. `int8` is the 8-bit copy `mtlfaces predict` uses, "
            "`keras` the network. The library answers the interpolated median "
            "(`mtlfaces.tasks.median_years`).", "",
            _md(rows, ["network", "answer", "MAE", "vs expected value", "bias", "within 5 y",
                       *groups]), "",
            "A calibration of the expected value, as a ceiling for one the library does not "
            "ship: fitted on half of the validation faces, scored on the other half (two "
            "folds, ten random splits).", "", _md(fits, ["network", "answer", "MAE",
                                                        "range over splits"]), ""]


def input_width_section(iw):
    """research/input_width_study.py: inputs and widths trained for many epochs (GPU)."""
    rows = [{**r, "age": f"{_pct(r['age'])} ± {r['age_se'] * 100:.1f}",
             "gender": f"{_pct(r['gender'])} ± {r['gender_se'] * 100:.1f}",
             "years MAE": f"{r['years_mae']:.2f} ± {r['years_mae_se']:.2f}",
             "years bias": f"{r['years_bias']:+.2f}", "epochs": r["epochs_run"],
             "s/epoch": r["steady_s_per_epoch"], "first epoch s": r["first_epoch_s"],
             "parameters": f"{r['parameters']:,}"} for r in iw["rows"]]
    missing = ", ".join(f"{m['arm']} (seed {m['seed']})" for m in iw.get("not_run", []))
    pack = iw.get("pack")
    source = (f"every arm made by the estimator from the same {pack['side']}×{pack['side']} "
              f"colour faces carried as JPEG (quality {pack['jpeg_quality']})" if pack
              else "every arm made by the estimator from the same 64×64 colour faces")
    return ["## Input size, colour and width, trained for longer (GPU)", "",
            f"`python research/input_width_study.py --epochs {iw['epochs']}` on "
            f"{iw['device']} (Keras on {iw['backend']}): each arm trained from scratch on "
            f"the UTKFace training part ({iw['train_faces']:,} faces; age group, gender and "
            "the years head as the bundled model has them, RECIPE's settings with PHASE3's "
            "augmentation) and scored on the UTKFace hold-out "
            f"({iw['validation_faces']:,} faces), {source}. ± is one standard error of "
            "the accuracy (binomial) or of the mean error; the arms share their validation faces, so "
            "a difference between them is measured more finely than the ± suggest, but "
            "each arm is one seed. s/epoch is after the first epoch, which holds the "
            "step's compilation." + (f" Not run (the call's time limit): {missing}."
                                     if missing else ""), "",
            _md(rows, ["arm", "epochs", "age", "gender", "years MAE", "years bias",
                       "s/epoch", "first epoch s", "parameters"]), ""]


def without_ckplus_section(w, bundled):
    """recipes/train_pretrained.py --without-ckplus: emotion on CK+ from a network that
    never saw a CK+ face (issue #32's cross-dataset report)."""
    o, v, phases = w["options"], w["validation"], w["phases"]
    ck = v["ckplus"]["emotion"]
    flags = " ".join(["--without-ckplus", f"--teacher {o['teacher'] or 'none'}"]
                     + ([] if o["readout"] else ["--no-readout"])
                     + [f"--{k.replace('_', '-')} {o[k]}" for k in ("epochs", "phase6_epochs")])

    def row(where, task, report, figure=None):
        return {"set": where, "task": task, "faces": f"{report['n']:,}",
                "accuracy": figure or _pct(report["accuracy"]),
                "macro": "" if figure else _pct(report["macro_accuracy"])}

    utk = v["utkface"]
    rows = [row("FER2013 PublicTest", "emotion", v["fer2013_publictest"]["emotion"]),
            row("UTKFace hold-out", "gender", utk["gender"]),
            row("UTKFace hold-out", "age group", utk["age"])]
    if "age_years" in utk:
        rows.append(row("UTKFace hold-out", "age in years (mean absolute error)",
                        utk["age_years"], f"{utk['age_years']['mae']:.2f} years"))
    rows.append(row("CK+, all faces (none seen)", "emotion", ck))
    per_class = ", ".join(f"{c} {_pct(a)} (n={ck['support'][c]})"
                          for c, a in ck["per_class_accuracy"].items() if ck["support"].get(c))
    missed = []  # the classes mostly missed, with their most frequent wrong answer
    for i, (c, answers) in enumerate(zip(ck["classes"], ck["confusion_matrix"])):
        wrong = {ck["classes"][j]: n for j, n in enumerate(answers) if j != i}
        if sum(answers) and answers[i] < sum(answers) / 2:
            most = max(wrong, key=wrong.get)
            missed.append(f"{c} as {most} {wrong[most]} of {sum(answers)}")
    text = (f"`python recipes/train_pretrained.py {flags}`: the bundled network's schedule "
            f"(v7), {sum(ph['epochs'] for ph in phases.values())} epochs in all "
            f"({_and(list(phases))}")
    if bundled:
        text += (f"; the bundled network trained "
                 f"{sum(ph['epochs'] for ph in bundled['phases'].values())} epochs: emotion "
                 f"{_pct(bundled['validation']['fer2013_publictest']['emotion']['accuracy'])}"
                 " on PublicTest")
    text += (f"), trained on {sum(w['train_images_by_source'].values()):,} images ("
             + ", ".join(f"{k} {n:,}" for k, n in w["train_images_by_source"].items())
             + ") with no CK+ face and "
             + ("no teacher (the bundled networks, possible teachers, were trained on CK+)"
                if not o["teacher"] else f"the teacher {o['teacher']}, which may have seen CK+")
             + f"; {w['train_seconds'] / 60:.0f} min on {w['trained_on']}. Every one of CK+'s "
             "faces with one of the seven emotions is unseen, so its emotion accuracy is a "
             "cross-dataset figure for posed faces.")
    if bundled:
        b = bundled["validation"]["ckplus"]["emotion"]
        text += (f" The bundled network scores {_pct(b['accuracy'])} on CK+'s {b['n']} "
                 "hold-out faces, of subjects it did not train on but of a dataset it did.")
    return ["## Emotion on CK+ from a network that never saw it (issue #32)", "", text, "",
            _md(rows, ["set", "task", "accuracy", "macro", "faces"]), "",
            f"**CK+ emotion, per class** (all faces): {per_class}" + (
                ". The classes it mostly misses, and its most frequent wrong answer: "
                + ", ".join(missed) if missed else ""), ""]


def main():
    parts = ["# Benchmark results", "",
             "Generated by `python research/report.py` from the JSON files in "
             "`research/results/`. Each section names the script and command that produced "
             "it. Timings are medians on a shared 2-core machine (±20 %).", ""]
    v = _load("pretrained_validation")
    # The studies below that continue or reuse "the bundled model" were measured on the
    # fifth one (v5, the mean of phases 3 and 4), before phase 6 made the sixth.
    v5 = _load("pretrained_validation_v5") or v
    # The studies that continued the sixth (v6) were measured before issue #32's v7.
    v6 = _load("pretrained_validation_v6") or v
    plots = _plots(v, _load("speed"))
    if v:
        r = v["recipe"]
        options = v.get("options") or {}
        command = ("`python recipes/train_pretrained.py` with the options recorded in its "
                   "results (`options`; the command is in recipes/README.md) "
                   if options else "`python recipes/train_pretrained.py --data-dir "
                   "../shared/data` ")
        phases = v.get("phases", {})
        if len(phases) > 1:
            by = v.get("train_images_by_source", {})
            p1 = phases["phase1"]
            s1 = p1["validation_summary"]
            later = []  # in the order they ran, the average where it was taken
            averaged = False  # phases after the average are told as what followed it
            for name, p in phases.items():
                if name == "average":
                    averaged = True
                    sa = p["validation_summary"]
                    later.append(
                        "then the weights at the ends of " + _and(
                            [f"phase {k[-1]}" for k in p["of"]]) + " were averaged "
                        f"(stochastic weight averaging), reaching emotion {_pct(sa['emotion'])}, "
                        f"gender {_pct(sa['gender'])}, age {_pct(sa['age'])}, CK+ "
                        f"{_pct(sa['ckplus_emotion'])}")
                elif name != "phase1":
                    later.append(("then " if averaged else "")
                                 + _later_phase(name, p, v["recipe"]))
            last = list(phases)[-1]
            phases = {k: p for k, p in phases.items() if k.startswith("phase")}
            keep = ("the last" if options.get("phase1_keep") == "last"
                    else "its lowest validation loss")
            parts += ["## Bundled model: validation", "",
                      command + f"({v['train_images']:,} training images: "
                      + ", ".join(f"{k} {n:,}" for k, n in by.items())
                      + f"; {v.get('parameters', 0):,} parameters; {r['image_size']}×"
                      f"{r['image_size']} grayscale; on {v.get('trained_on', '2 CPU cores')}"
                      + (f", peak RSS {v['peak_rss_mb'] / 1024:.1f} GB" if v.get("peak_rss_mb")
                         else "") + f"), in {len(phases)} phases: phase 1, "
                      f"{p1['epochs']} epochs of a cosine schedule from lr {p1['learning_rate']} "
                      f"({p1['train_seconds'] / 60:.0f} min; kept: epoch {p1['kept_epoch']}, "
                      f"{keep}), reaching emotion "
                      f"{_pct(s1['emotion'])}, gender {_pct(s1['gender'])}, age "
                      f"{_pct(s1['age'])}, CK+ {_pct(s1['ckplus_emotion'])}; "
                      + "; ".join(later) + ". Later phases keep their last epoch, where the "
                      "schedule ends: in them validation loss and accuracy disagree"
                      + (" (in phase 2 the loss stayed above phase 1's best while accuracy "
                         "rose)" if "phase2" in phases else "") + ", so the loss "
                      "does not pick the epoch. "
                      + (v.get("provenance", "") + " " if v.get("provenance") else "")
                      + ("The average:" if last == "average" else
                         f"After all {len(phases)} phases (the bundled model):"), "",
                      model_card(v), ""]
        else:
            by = v.get("train_images_by_source", {})
            parts += ["## Bundled model: validation", "",
                      command + f"({v['train_images']:,} training images: "
                      + ", ".join(f"{k} {n:,}" for k, n in by.items())
                      + f"; {v.get('parameters', 0):,} parameters; {r['epochs']} epochs, "
                      f"{r['image_size']}×{r['image_size']} grayscale, "
                      f"{v['train_seconds'] / 60:.0f} min of training on "
                      f"{v.get('trained_on', '2 CPU cores')}"
                      + (f", peak RSS {v['peak_rss_mb'] / 1024:.1f} GB" if v.get("peak_rss_mb")
                         else "") + ").", "",
                      model_card(v), ""]
        v1 = _load("pretrained_validation_v1")
        if v1:
            r1, val1 = v1["recipe"], v1["validation"]
            parts += ["The first bundled model (`pretrained_validation_v1.json`: filters "
                      f"{tuple(r1['filters'])}, {r1.get('convs_per_block', 1)} conv per block, "
                      f"heads {tuple(r1['dense_units'])}, {r1['epochs']} epochs, "
                      f"{v1['train_seconds'] / 60:.0f} min): emotion "
                      f"{_pct(val1['fer2013_publictest']['emotion']['accuracy'])}, gender "
                      f"{_pct(val1['utkface']['gender']['accuracy'])}, age "
                      f"{_pct(val1['utkface']['age']['accuracy'])}, CK+ "
                      f"{_pct(val1['ckplus']['emotion']['accuracy'])}.", ""]
        if "learning_curves.png" in plots:
            parts += ["![learning curves](results/learning_curves.png)", ""]
    cc = _load("crop_calibration")
    if cc:
        rows = [{**r, **{k: f"{r[k]:.3f}" for k in ("gender", "age", "emotion")}}
                for r in cc["rows"]]
        parts += ["## Face crop margin for the bundled model", "",
                  "`python research/crop_calibration.py`: validation faces re-cropped by "
                  "`detect_faces` at each padding (UTKFace hold-out photos; FER2013 PublicTest "
                  "faces upscaled 3×, where dlib finds about three in four), vs the datasets' "
                  "own crops.", "",
                  _md(rows, ["padding", "utk_found", "gender", "age", "fer_found", "emotion"]),
                  ""]
    sh = _load("sharpness")
    if sh:
        rows = [{**r, "sharpness": f"{r['sharpness']:.4f}", "vs_faces": f"{r['vs_faces']:.2f}"}
                for r in sh["augmentation"]]
        parts += ["## Training-image sharpness", "",
                  "`python research/sharpness.py --model FILE ...`: mean |Laplacian| of "
                  f"{sh['fer_training_faces']:,} FER2013 training faces as the network receives "
                  "them under each augmentation (training mode), against the faces as given "
                  f"({sh['sharpness_as_given']:.4f}); every bilinear resampling blurs.", "",
                  _md(rows, ["augmentation", "sharpness", "vs_faces"]), "",
                  "Validation accuracy on faces blurred with a Gaussian of the given sigma "
                  "(pixels at 48×48). A model that scores higher on blurred faces than on the "
                  "faces as given (sigma 0) has learnt the blur of its training images.", ""]
        for name, blur in sh["accuracy_under_blur"].items():
            rows = [{"sigma": r["sigma"], **{k: _pct(r[k]) for k in ("emotion", "age", "gender")}}
                    for r in blur]
            parts += [f"`{name}`:", "", _md(rows, ["sigma", "emotion", "age", "gender"]), ""]
    lv = _load("levers")
    if lv:
        keys = ["emotion", "emotion macro", "Disgust", "Fear", "gender", "age", "age macro",
                "CK+"]
        rows = [{**_as_percent(r, keys), "seconds": f"{r['seconds']:.0f}"} for r in lv["rows"]]
        parts += ["## Levers: class weighting and label smoothing", "",
                  f"`python research/levers.py --epochs {lv['epochs']}`: each arm fine-tunes "
                  f"the third bundled model (v3) for {lv['epochs']} epochs (cosine from lr "
                  f"{lv['learning_rate']}) on the recipe's {lv['train_images']:,} training "
                  "images, changing one thing; `continue` changes nothing, so the lever's own "
                  "effect is the difference from that row. Fixed validation splits.", "",
                  _md(rows, ["arm"] + keys + ["seconds"]), ""]
    pt, pa = _load("phase5_trial"), _load("phase5_trial_average")
    if pt and pa and v5 and "average" in v5.get("phases", {}):
        def row(name, summary):
            return {"model": name, **_headline(summary)}

        p5 = pt["phases"]["phase5"]
        rows = [row("v5 (bundled before phase 6): mean of phases " + "-".join(
                        k[-1] for k in v5["phases"]["average"]["of"]),
                    v5["phases"]["average"]["validation_summary"]),
                row("phase 5 alone", p5["validation_summary"]),
                row("mean of phases " + "-".join(k[-1] for k in pt["phases"]["average"]["of"]),
                    pt["phases"]["average"]["validation_summary"]),
                row(f"mean of {len(pa['average_of'])} ends (phases 3-5)",
                    pa["validation_summary"])]
        parts += ["## Phase 5: a fourth restart (not in the bundled model)", "",
                  "`python recipes/train_pretrained.py --continue-from PHASE4_MODEL "
                  "--from-phase 5 --phase5-epochs 20`, then `--average-models PHASE3_MODEL "
                  f"PHASE4_MODEL PHASE5_MODEL`: {p5['epochs']} epochs from lr "
                  f"{p5['learning_rate']} with {_augment_text(p5['augment'])} and seed "
                  f"{p5['random_state']} ({p5['train_seconds'] / 60:.0f} min). Fixed "
                  "validation splits.", "",
                  _md(rows, ["model", "emotion", "gender", "age", "CK+"]), ""]
    ins = _load("input_study")
    if ins:
        rows = [{**r, "age": _pct(r["age"]), "gender": _pct(r["gender"]),
                 "parameters": f"{r['parameters']:,}"} for r in ins["rows"]]
        parts += ["## Input size and colour (age group and gender)", "",
                  f"`python research/input_study.py --epochs {ins['epochs']}`: the bundled "
                  "architecture trained from scratch on the UTKFace training part only "
                  f"({ins['train_faces']:,} faces, age group and gender) for {ins['epochs']} "
                  "epochs per input, scored on the UTKFace hold-out "
                  f"({ins['validation_faces']:,} faces). A short budget: the networks are far "
                  "from converged (the bundled model reaches about 71 % / 93 %), so "
                  "differences in accuracy of a few points here are not evidence for or "
                  "against an input (a head that answers one class for every face scores "
                  "the class's share, e.g. 48.4 % on gender); parameters and faces/s are (seconds per "
                  "epoch move with the load of the shared machine).", "",
                  _md(rows, ["input", "age", "gender", "s_per_epoch", "faces_per_s",
                             "parameters"]), ""]
    ya = _load("years_answer")
    if ya:
        parts += years_answer_section(ya)
    iw = _load("input_width_study")
    if iw:
        parts += input_width_section(iw)
    wc = _load("without_ckplus")
    if wc:
        parts += without_ckplus_section(wc, _load("pretrained_validation"))
    cs = _load("continue_study")
    if cs:
        keys = list(HEADLINE)
        rows = [{**r, **_headline(r),
                 "emotion agreement": (_pct(r["emotion_agreement"])
                                       if "emotion_agreement" in r else ""),
                 **{k: _pct(r[k]) if k in r else "" for k in READOUT_COLUMNS}}
                for r in sorted(cs["rows"], key=lambda r: CONTINUE_ARMS.index(r["arm"]))]
        for arm in ("gray", "age_sigma", "mixup", "mixup_strong"):  # --average-models BUNDLED runs/colour/ARM.mtlfaces
            avg = _load(f"continue_study_average_{arm}")
            if avg:
                rows.append({"arm": f"mean of v5 and {arm}", "epochs": "",
                             "emotion agreement": "", "train_minutes": "",
                             **_headline(avg["validation_summary"])})
        mixup = (f" `mixup`: each training face blended with another of its batch that has the "
                 f"same tasks labelled, and their targets alike (Beta({cs['mixup']:g}, "
                 f"{cs['mixup']:g}) shares)." if "mixup" in cs else "")
        if "mixup_strong" in cs:
            mixup += f" `mixup_strong`: the same with Beta({cs['mixup_strong']:g}, " \
                     f"{cs['mixup_strong']:g})."
        ref = cs.get("bundled_with_readout")
        if ref:
            mixup += (" `with read-out`: gender and age group as `mtlfaces predict` gives "
                      "them, the network averaged with the descriptor read-out (UTKFace "
                      "hold-out faces at 200×200; v5 scores "
                      f"{_pct(ref['gender'])} gender and {_pct(ref['age'])} age that way).")
        parts += ["## Colour, soft age targets and mixup, as continuations of the bundled model",
                  "",
                  "`python research/continue_study.py --model "
                  "benchmarks/models/pretrained_v5.mtlfaces` (no longer kept): each arm continues the fifth "
                  "bundled network (v5, the mean of phases 3 and 4; the `mixup` arm's end is "
                  "the sixth, the bundled model since) with phase 4's settings (cosine from lr "
                  f"{cs['settings']['learning_rate']}, no rotation) for the epochs given, "
                  "changing one thing; `gray` changes nothing, so a lever's own effect is the "
                  "difference from that row. `colour`: the network grown to RGB input (first "
                  "kernel split by the luma weights: on a colour face it starts out computing "
                  "exactly what the gray network computes on the face's gray version) with "
                  "UTKFace in colour; `emotion agreement` is the share of UTKFace hold-out "
                  "faces whose emotion it answers the same in colour and in gray (the emotion "
                  "data are all gray). `age_sigma`: UTKFace's ages in years as soft targets "
                  f"(normal, sigma {cs['age_sigma']:g} years, over the age groups)." + mixup
                  + " `mean of "
                  "v5 and ARM`: the weights of v5 and of that arm's end "
                  "averaged (`train_pretrained.py --average-models`), as v5 "
                  "averages its own restarts. v5 itself (emotion / gender / age / "
                  "CK+): "
                  + " / ".join(_headline(v5["phases"]["average"]["validation_summary"]).values())
                  + ". Fixed validation splits" + ("" if cs["complete"] else
                                                   "; not every arm has run yet") + ".", "",
                  _md(rows, ["arm", "epochs"] + keys + ["emotion agreement"]
                      + (list(READOUT_COLUMNS) if ref else [])
                      + ["train_minutes"]), ""]
        counted = [r for r in cs["rows"] if "emotion gained" in r]
        if counted:
            parts += ["Faces each arm gets right that v5 gets wrong, and the "
                      "reverse (network alone; emotion of "
                      f"{v['validation']['fer2013_publictest']['emotion']['n']:,}, gender and "
                      f"age of {v['validation']['utkface']['age']['n']:,}): "
                      + "; ".join(f"{r['arm']}: " + ", ".join(
                          f"{t} +{r[f'{t} gained']}/−{r[f'{t} lost']}"
                          for t in ("emotion", "gender", "age")) for r in counted) + ".", ""]
    parts += more_mixup_section(v6, _load("continue_study_v6"), _load("continue_study_v6_average"))
    ph = _load("posthoc")
    if ph:
        parts += _accuracy_section(
            "Inference-time levers: test-time shifts, BatchNorm recalibration",
            "`python research/posthoc.py`: the fifth bundled model (v5), not retrained, used "
            "differently; `passes` is network passes per face (throughput falls in "
            "proportion). BN recalibration recomputes the BatchNorm statistics of the "
            f"weight-averaged network over the {ph['train_images']:,} training images. "
            "Fixed validation splits.", ph["rows"], "arm",
            lambda r: {"passes": r["passes"], "seconds": f"{r['seconds']:.0f}"})
    parts += wide_trunk_section(v5, _load("wide_phase1_validation"),
                                _load("posthoc_wide_phase1"),
                                _load("wide_phase4_validation"), _load("posthoc_wide_phase4"))
    en = _load("ensemble")
    if en:
        parts += _accuracy_section(
            "An ensemble of saved networks: the ceiling of averaging",
            "`python research/ensemble.py MODEL ...`: each saved network alone (flip "
            "averaging on), then the mean of all their class probabilities. The "
            "networks are one line of training (the recipe's phase ends, averages and "
            "continuations of the fifth bundled model, v5; files in `runs/`, not committed). "
            "Fixed validation splits.", en["rows"], "model",
            lambda r: {"parameters": f"{r['parameters']:,}"})
    dp = _load("descriptor_probe")
    if dp:
        columns = list(dp["rows"][0])
        rows = [_as_percent(r, columns[1:]) for r in dp["rows"]]
        parts += ["## dlib's face descriptor for age group and gender", "",
                  "`python research/descriptor_probe.py`: a logistic regression (`C` "
                  "as named) and a perceptron (one hidden layer of "
                  f"{dp['mlp']['hidden_layer_sizes'][0]}) on dlib's "
                  "128-number face descriptor (its face-recognition ResNet, installed with "
                  f"`face_recognition_models`) of {dp['faces']:,} UTKFace faces in colour, "
                  f"trained on the {dp['train_faces']:,} outside "
                  f"the validation part, scored on the {dp['validation_faces']:,} inside it, "
                  "beside the bundled model on the same faces; then the mean of the bundled "
                  "model's and a read-out's class probabilities (weights one half each, "
                  "fixed beforehand). dlib's detector found "
                  f"{dp['detected']:,} of the faces (the others: a centred box); "
                  f"{dp['seconds_per_face']} s per face on one core.", "",
                  _md(rows, columns), ""]
        if dp.get("by_gender"):
            pair = "mean of bundled and descriptor C=1"
            parts += ["For women and men apart (the bundled model alone → with the C=1 "
                      "read-out, as `mtlfaces predict`): " + "; ".join(
                          f"{task}: " + ", ".join(
                              f"{sex} {_pct(by['bundled model'][sex])} → "
                              f"{_pct(by[pair][sex])}" for sex in ("Female", "Male"))
                          for task, by in dp["by_gender"].items()) + ".", ""]
    dv = _load("descriptor_views")
    if dv:
        columns = [c for c in dv["rows"][0] if c != "read-out"]
        parts += ["## More views of each face for the descriptor read-out", "",
                  "`python research/descriptor_views.py`: dlib's descriptor of each UTKFace "
                  "face three ways (the chip as `mtlfaces predict` cuts it, at padding 0.25; "
                  "the same chip mirrored; a chip at padding 0.5, with more hair and "
                  "outline), read out by `DescriptorReadout(C=1)` (the shipped read-out's "
                  f"model) trained on {dv['train_faces']:,} UTKFace faces outside the "
                  f"validation part and scored on the {dv['validation_faces']:,} inside it: "
                  "alone, averaged with the fifth bundled network (v5; weights one half, as "
                  "`mtlfaces "
                  "predict`), and averaged with the network over posthoc.py's test-time "
                  "shifts (2 pixels four ways: ten passes). An arm that *predicts* from two "
                  "views costs two descriptors per face. Arms named before the run; fixed "
                  f"validation split. {dv['seconds_per_face_3_views']} s per face for the "
                  "three views on one core.", "",
                  _md([_as_percent(r, ("gender", "age")) for r in dv["network"]],
                      ["network", "gender", "age"]), "",
                  _md([_as_percent(r, columns) for r in dv["rows"]], ["read-out"] + columns), "",
                  "With the v5 network, faces each arm gets right that the first arm's "
                  f"pair gets wrong, and the reverse (of the {dv['validation_faces']:,}): "
                  + "; ".join(
                      f"{arm}: " + ", ".join(f"{task} +{g}/−{l}" for task, (g, l) in v.items())
                      for arm, v in list(dv["paired_with_bundled"].items())[1:])
                  + ". The first arm's pair with the network's shifts against without them: "
                  + ", ".join(f"{task} +{g}/−{l}"
                              for task, (g, l) in dv["paired_shifts"].items())
                  + ".", "",
                  "The first arm's weight against the network (one half as shipped) chosen "
                  "instead on a random half of the validation faces and scored on the other "
                  "(both ways, 20 seeded splits): " + "; ".join(
                      f"{task} {_pct(w['tuned'])} against {_pct(w['fixed 0.5'])} at one half "
                      f"(mean weight chosen {w['mean weight chosen']:.2f})"
                      for task, w in dv["tuned_weight"].items()) + ".", ""]
    parts += next_model_section(_load("ferplus_labels"), _load("next_model_levers"))
    s = _load("multitask_study")
    if s:
        parts += ["## Multi-task vs single-task vs two-stage", "",
                  f"`python research/multitask_study.py --fraction {s['fraction']} --epochs "
                  f"{s['epochs']} --seeds {len({r['seed'] for r in s['runs']})}`: every arm "
                  f"trains on the same {s['train_images']:,} images ({100 * s['fraction']:.0f} "
                  f"% of the training data) for {s['epochs']} epochs; accuracy on the fixed "
                  "validation splits, mean ± std over seeds.", ""]
        if "summary" in s:
            rows = [{**r, "params": f"{r['params']:,}", "train_s": f"{r['train_s']:.0f}"}
                    for r in s["summary"]]
            parts += [_md(rows, ["arm", "seeds", "age", "gender", "emotion", "stage1_gender",
                                 "params", "train_s"]), ""]
        if s.get("baselines"):
            rows = [{**b, **{k: f"{b[k]:.3f}" for k in ("age", "gender", "emotion")},
                     "train_rows_cap": b["train_rows_cap"] or "all",
                     "fit_s": f"{b['fit_s']:.1f}", "predict_s": f"{b['predict_s']:.1f}"}
                    for b in s["baselines"]]
            parts += ["HOG + SVM baselines (same training rows; RBF capped per task):", "",
                      _md(rows, ["model", "train_rows_cap", "age", "gender", "emotion",
                                 "fit_s", "predict_s"]), ""]
        if s.get("data_size"):
            rows = [{"fraction": c["fraction"], "images": c["images"],
                     **{k: f"{v:.3f}" for k, v in c["accuracy"].items()},
                     "seconds": f"{c['seconds']:.0f}"} for c in s["data_size"]]
            parts += ["Joint network vs amount of training data (same epochs):", "",
                      _md(rows, ["fraction", "images", "age", "gender", "emotion", "seconds"]),
                      "", "![study](results/multitask_study.png)", ""]
    sp = _load("speed")
    if sp:
        fmt = lambda rows, keys: [{k: (f"{r[k]:.1f}" if isinstance(r[k], float) else r[k])  # noqa
                                   for k in keys} for r in rows]
        c = sp["compute"]
        mf = sp["model_file"]
        parts += ["## Speed", "", "`python research/speed.py`", "",
                  f"Bundled model file: {mf['bytes'] / 1e6:.1f} MB; loading takes "
                  f"{mf['load_s']:.2f} s ({mf['first_load_s']:.1f} s the first time in a "
                  "process, which includes importing TensorFlow).", "",
                  _md(fmt(sp["classification"], ["what", "batch", "ms", "faces_per_s"]),
                      ["what", "batch", "ms", "faces_per_s"]), "",
                  "![speed vs batch size](results/speed_vs_batch.png)", "",
                  _md(fmt(sp["pipeline"], ["what", "ms"]), ["what", "ms"]), "",
                  "End-to-end video loop at 640×480 (detect or follow, classify, track, smooth; "
                  "no video decoding/encoding):", "",
                  _md(fmt(sp["video"], ["faces", "detect_every", "descriptor_readout",
                                        "frames_per_s", "faces_found_per_frame"]),
                      ["faces", "detect_every", "descriptor_readout", "frames_per_s",
                       "faces_found_per_frame"]), "",
                  "Resident memory while streaming a long 640×480 video through the same "
                  "loop (it should stay flat): " + ", ".join(
                      f"frame {m['frame']}: {m['rss_mb']:.0f} MB"
                      for m in sp.get("long_video_memory", [])) + ".", "",
                  f"Folder of {sp['folder']['images']} face images (read, detect, classify): "
                  f"{sp['folder']['images_per_s']:.1f} images/s"
                  + (f", {sp['folder']['images_per_s_with_readout']:.1f} with the descriptor "
                     "read-out (`mtlfaces predict`'s default for images)"
                     if "images_per_s_with_readout" in sp["folder"] else "") + ".", "",
                  "Training throughput (images/s, batch 128, augmentation on):", "",
                  _md(fmt(sp["training"], ["input", "precision", "images_per_s"]),
                      ["input", "precision", "images_per_s"]), "",
                  f"The network costs {c['network_flops_per_face'] / 1e6:.1f} MFLOP per face. A "
                  f"2048² matmul runs at {c['matmul_gflops']:.0f} GFLOP/s in float32 and "
                  f"{c.get('matmul_gflops_bf16', float('nan')):.0f} GFLOP/s in bfloat16 here; the "
                  f"best classification rate ({c['best_faces_per_s']:.0f} faces/s, bfloat16 "
                  f"model, batch 256) is {c['achieved_gflops']:.0f} GFLOP/s, "
                  f"{100 * c['achieved_gflops'] / c.get('matmul_gflops_bf16', float('nan')):.0f}"
                  " % of the bfloat16 matmul rate (small convolutions, batch norm and pooling "
                  "do not reach it); single-face calls are dominated by per-call overhead. "
                  f"Peak RSS of the speed run: {sp['peak_rss_mb']:.0f} MB.", ""]
    pe = _load("peers")
    if pe:
        parts += ["## Peers: face-api.js and fer", "",
                  "`npm install --prefix benchmarks/peers; pip install --no-deps fer==25.10.3; "
                  "python benchmarks/peers.py`: the same validation faces for every library. "
                  "*Crop as given*: each gets the datasets' own face crops, so only the "
                  "classifiers differ. *Own detector*: each finds the face itself in "
                  f"{pe['rows'][-1].get('n_detector', 500)} UTKFace hold-out photos (a fixed "
                  "random subset, each set in a grey border; a face not found counts as an error). Caveat: the peers' training data "
                  "are not ours and may include these sets (fer's training script split the "
                  "whole fer2013.csv at random, PublicTest included), so their figures here can "
                  "be optimistic; CK+ is the set least likely seen by any of them. faces/s: "
                  "crop-as-given over all sets (face-api runs in Node with the WASM backend on "
                  "one thread; ours and fer in TensorFlow on 2 cores), or photos/s with "
                  "detection.", "", peers_table(pe), ""]
    lo = _load("loading")
    if lo:
        rows = [{"dataset": r["dataset"], "images": f"{r['images']:,}",
                 "first load (s)": f"{r['first_load_s']:.1f}",
                 "cached (s)": f"{r['cached_load_s']:.2f}"} for r in lo["rows"]]
        parts += ["## Dataset loading", "", "`python benchmarks/loading.py`", "",
                  _md(rows, ["dataset", "images", "first load (s)", "cached (s)"]), ""]
    out = os.path.join(HERE, "RESULTS.md")
    with open(out, "w") as fh:
        fh.write("\n".join(parts))
    print(f"wrote {out}")
    if v:
        print("\n" + model_card(v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
