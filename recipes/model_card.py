"""Write the generated blocks of the docs that show what the bundled model says.

    python recipes/model_card.py

- ``MODEL_CARD.md``, between the ``model-card`` markers: the validation results from
  ``recipes/results/pretrained_validation.json`` (written by ``train_pretrained.py``), the
  8-bit copy's from ``recipes/results/quantize.json``, gender on LFW from
  ``benchmarks/results/lfw_gender.json`` (``benchmarks/bench_lfw_gender.py``) and the
  comparison with peers from ``benchmarks/results/peers.json`` (``benchmarks/peers.py``).
- ``README.md``, between the ``example`` markers: what ``mtlfaces predict`` prints for
  scikit-image's astronaut saved as a JPEG of quality 95 (run here, with the bundled model).

Tests check that the committed blocks equal this output.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VALIDATION = os.path.join(HERE, "results", "pretrained_validation.json")
PEERS = os.path.join(ROOT, "benchmarks", "results", "peers.json")
QUANTIZE = os.path.join(HERE, "results", "quantize.json")
LFW = os.path.join(ROOT, "benchmarks", "results", "lfw_gender.json")
CARD = os.path.join(ROOT, "MODEL_CARD.md")
HEADLINE = os.path.join(ROOT, "mtlfaces", "models", "model_card.json")
README = os.path.join(ROOT, "README.md")
#: The targets the table measures the gap to: issue #32's, for the network alone (and, for
#: comparison, the same figures for the network with the read-out that ``mtlfaces predict``
#: averages in); accuracies as fractions, the age in years as a mean absolute error.
TARGETS = {"emotion": 0.72, "gender": 0.96, "age": 0.76, "age_years": 4.5, "lfw_gender": 0.97}
START, END = "<!-- model-card:start -->", "<!-- model-card:end -->"
EXAMPLE = ("<!-- example:start -->", "<!-- example:end -->")


def _read(path):
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def _pct(v):
    return "–" if v is None else f"{100 * v:.1f} %"


def _md(rows, columns):
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")
    return "\n".join(out)


def readout_row(pe):
    """peers.json's row of the bundled model with the shipped descriptor read-out averaged
    in, on UTKFace's hold-out crops as given (what ``mtlfaces predict`` gives on images)."""
    return next((r for r in (pe or {}).get("rows", []) if r["model"].endswith(
        "+ descriptor read-out") and r["protocol"] == "crop as given"), None)


def model_card(v, ro=None):
    """Markdown of the bundled model's validation results (and, given :func:`readout_row`
    ``ro``, with the read-out ``mtlfaces predict`` adds)."""
    val = v["validation"]
    utk, fer, ck = val["utkface"], val["fer2013_publictest"], val.get("ckplus", {})
    lines = []
    targets = TARGETS

    def gap(acc, task):
        return f"{100 * (acc - targets[task]):+.1f} pt"

    rows = [
        {"task": "emotion (7 classes)", "validation set": "FER2013 PublicTest (3,579)",
         "accuracy": _pct(fer["emotion"]["accuracy"]),
         "macro (mean per-class)": _pct(fer["emotion"]["macro_accuracy"]),
         "target": _pct(targets["emotion"]), "gap": gap(fer["emotion"]["accuracy"], "emotion")},
        {"task": "gender", "validation set": f"UTKFace hold-out ({utk['gender']['n']:,})",
         "accuracy": _pct(utk["gender"]["accuracy"]),
         "macro (mean per-class)": _pct(utk["gender"]["macro_accuracy"]),
         "target": _pct(targets["gender"]), "gap": gap(utk["gender"]["accuracy"], "gender")},
        {"task": "age group (5)", "validation set": f"UTKFace hold-out ({utk['age']['n']:,})",
         "accuracy": _pct(utk["age"]["accuracy"]),
         "macro (mean per-class)": _pct(utk["age"]["macro_accuracy"]),
         "target": _pct(targets["age"]), "gap": gap(utk["age"]["accuracy"], "age")},
    ]
    years = utk.get("age_years")
    if years:  # the age_years head: its answer (the median), scored in years
        rows.append({"task": "age in years (mean absolute error)",
                     "validation set": f"UTKFace hold-out ({years['n']:,})",
                     "accuracy": f"{years['mae']:.2f} years (± {years['mae_se']:.2f})",
                     "macro (mean per-class)": "–",
                     "target": f"{targets['age_years']:g} years",
                     "gap": f"{years['mae'] - targets['age_years']:+.2f} years"})
    if ro:  # the shipped descriptor read-out averaged in (benchmarks/peers.py)
        for task, name in (("gender", "gender"), ("age", "age group (5)")):
            acc = ro[f"utkface {task}"]
            rows.append({"task": f"{name}, with the descriptor read-out (`mtlfaces predict`)",
                         "validation set": f"UTKFace hold-out ({ro[f'n utkface {task}']:,})",
                         "accuracy": _pct(acc), "macro (mean per-class)": "–",
                         "target": _pct(targets[task]), "gap": gap(acc, task)})
    if "emotion" in ck:
        rows.append({"task": "emotion (6 of 7 present)", "validation set":
                     f"CK+ hold-out subjects ({ck['emotion']['n']})",
                     "accuracy": _pct(ck["emotion"]["accuracy"]),
                     "macro (mean per-class)": _pct(ck["emotion"]["macro_accuracy"]),
                     "target": "–", "gap": "–"})
    lines.append("The target column holds issue #32's targets for the next bundled network "
                 "(network alone; the rows with the read-out are set against the same figures).")
    lines.append("")
    lines.append(_md(rows, ["task", "validation set", "accuracy", "macro (mean per-class)",
                            "target", "gap"]))
    lines.append("")
    for title, entry in (("Emotion, per class (FER2013 PublicTest)", fer["emotion"]),
                         ("Age group, per class (UTKFace hold-out)", utk["age"]),
                         ("Gender, per class (UTKFace hold-out)", utk["gender"])):
        lines.append(f"**{title}**: " + ", ".join(
            f"{c} {_pct(a)} (n={entry['support'][c]})"
            for c, a in entry["per_class_accuracy"].items()))
        lines.append("")
    by_age = (years or {}).get("by_group", {}).get("age")
    if by_age:
        order = [c for c in utk["age"]["classes"] if c in by_age]
        lines.append("**Age in years, by age group** (UTKFace hold-out; mean absolute error, "
                     "in brackets the mean of answer minus age): " + ", ".join(
                         f"{c} {by_age[c]['mae']:.1f} years ({by_age[c]['bias']:+.1f}, "
                         f"n={by_age[c]['n']})" for c in order))
        lines.append("")
    cm = utk["age"]["confusion_matrix"]
    classes = utk["age"]["classes"]
    lines.append("**Age-group confusion** (UTKFace hold-out; rows true, columns predicted):")
    lines.append("")
    lines.append(_md([{"true \\ predicted": c, **{p: cm[i][j] for j, p in enumerate(classes)}}
                      for i, c in enumerate(classes)], ["true \\ predicted"] + classes))
    lines.append("")
    for task in ("gender", "age"):
        groups = utk[task].get("by_group", {})
        for col in ("race", "gender"):
            if col in groups:
                lines.append(f"**{task} accuracy by {col}** (UTKFace hold-out): " + ", ".join(
                    f"{k} {_pct(g['accuracy'])} (n={g['n']})" for k, g in groups[col].items()))
                lines.append("")
    return "\n".join(lines)


def peers_table(pe):
    """Markdown of benchmarks/peers.py's comparison with face-api.js and fer."""
    cols = [("model", "model"), ("protocol", "faces given"), ("utkface age", "age group (UTKFace)"),
            ("utkface gender", "gender (UTKFace)"),
            ("fer2013_publictest emotion", "emotion (FER2013 PublicTest)"),
            ("ckplus_heldout emotion", "emotion (CK+ held-out)"), ("found", "faces found"),
            ("faces_per_s", "faces/s")]
    rows = []
    for r in pe["rows"]:
        row = {}
        for key, name in cols:
            val = r.get(key)
            if key == "faces_per_s":
                row[name] = "–" if val is None else f"{val:,.0f}" if val >= 10 else f"{val:.1f}"
            elif isinstance(val, float):
                row[name] = _pct(val)
            else:
                row[name] = "–" if val is None else val
        rows.append(row)
    return _md(rows, [name for _, name in cols])


def training_line(v):
    """What was trained on what, and for how long, from the recipe's results."""
    by = v["train_images_by_source"]
    minutes = sum(p.get("train_seconds") or 0 for p in v["phases"].values()) / 60
    size = v["recipe"]["image_size"]
    return (f"**Training.** {v['train_images']:,} images (UTKFace {by['utkface']:,} for age "
            f"group and gender; FER2013 Training {by['fer2013']:,} and CK+ {by['ckplus']:,} "
            f"for emotion); {v['parameters'] / 1e6:.2f} M parameters, {size}×{size} "
            f"grayscale input; {minutes / 60:.1f} h of training in {len(v['phases'])} steps "
            f"on {v.get('trained_on', '2 CPU cores')}, peak memory "
            f"{v['peak_rss_mb'] / 1024:.1f} GB (`python recipes/train_pretrained.py`)."
            + options_line(v))


def options_line(v):
    """The run's targets beyond the labels (distillation, the years head), when it had any."""
    o = v.get("options") or {}
    parts = []
    if o.get("teacher"):
        parts.append(f"a teacher's probabilities (weight {o['teacher_weight']} against a "
                     "real label's 1) for the tasks each face's dataset lacks: age group and "
                     "gender on FER2013 and CK+ faces, emotion on UTKFace faces; the teacher "
                     f"was {v.get('teacher_model', o['teacher'])}")
    if o.get("age_years"):
        parts.append("an `age_years` head over the years 1-90 trained on UTKFace's ages "
                     f"(each age spread as a normal of {o['years_sigma']:g} years), whose "
                     "median is the age in years")
    return (" Besides the labels: " + "; ".join(parts) + ".") if parts else ""


def int8_table(q):
    """The 8-bit copy against the Keras network (``recipes/results/quantize.json``)."""
    lines = ["**8-bit inference** (the default; `python recipes/quantize.py`, calibrated on "
             f"{q['calibration_faces']} training faces): the same validation faces through "
             "the Keras network and through its 8-bit copy, mirror averaging on.", "",
             "| task | Keras network | 8-bit copy |", "|---|---|---|"]
    from quantize import ERRORS  # the scores that are errors in years, not accuracies

    for task, acc in q["keras"].items():
        if task in ERRORS:
            lines.append(f"| {task} | {acc:.2f} | {q['int8'][task]:.2f} |")
        else:
            lines.append(f"| {task} | {acc:.1%} | {q['int8'][task]:.1%} |")
    return "\n".join(lines)


def lfw_line(lf):
    """Gender on LFW's photos through the photo pipeline (``benchmarks/bench_lfw_gender.py``)."""
    rows = {r["read-out"]: r for r in lf["rows"]}
    off, on = rows["off"], rows["on"]
    return (f"**Gender on photos from another dataset** (`python benchmarks/bench_lfw_gender.py`: "
            f"the {lf['photos']:,} labelled LFW photos of `lfw-gender.zip`, never trained on; "
            "detection included, the face nearest the centre answers, a photo with no face "
            f"found counts as wrong; target {_pct(TARGETS['lfw_gender'])}): "
            f"{_pct(on['accuracy'])} with the read-out (± "
            f"{100 * on['accuracy_se']:.1f}), {_pct(off['accuracy'])} network alone; a face is "
            f"found in {_pct(on['face_found'])} of the photos, and where one is, gender is "
            f"right in {_pct(on['accuracy_when_found'])} ({_pct(off['accuracy_when_found'])} "
            "network alone).")


def block(v, pe=None, q=None, lf=None):
    """The generated block: the training, validation results, the 8-bit copy, gender on
    LFW, then the comparison with peers."""
    text = training_line(v) + "\n\n" + model_card(v, readout_row(pe))
    if q:
        text += "\n\n" + int8_table(q)
    if lf and not lf.get("quick"):
        text += "\n\n" + lfw_line(lf)
    if pe:
        text += ("\n\n**Against peers** (`benchmarks/peers.py`; protocols and caveats in "
                 "[docs/research.md](docs/research.md)):\n\n" + peers_table(pe) + "\n")
    return text


def current_block():
    """The model card's block as the committed results make it."""
    v = _read(VALIDATION)
    if v is None:
        raise SystemExit(f"{VALIDATION}: missing; run recipes/train_pretrained.py first")
    return block(v, _read(PEERS), _read(QUANTIZE), _read(LFW)).strip("\n")


def current_example():
    """What ``mtlfaces predict astronaut.jpg`` prints (JPEG quality 95), as a fenced block."""
    import tempfile

    import cv2
    from click.testing import CliRunner
    from skimage import data

    from mtlfaces.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "astronaut.jpg")
        cv2.imwrite(path, cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        result = CliRunner().invoke(cli, ["predict", path])
        if result.exit_code != 0:
            raise RuntimeError(f"mtlfaces predict failed: {result.output}")
        text = result.output.replace(path, "astronaut.jpg").strip()
    return f"```text\n{text}\n```"


def committed_block(path=CARD, markers=(START, END)):
    """What stands between the markers of ``path`` now."""
    start, end = markers
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if start not in text or end not in text:
        raise ValueError(f"{path}: no {start} / {end} markers")
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def write_block(path, markers, content):
    """Replace what stands between the markers of ``path`` with ``content``."""
    start, end = markers
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if start not in text or end not in text:
        raise ValueError(f"{path}: no {start} / {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{head}{start}\n{content}\n{end}{tail}")
    print(f"updated the generated block of {path}")


def headline(q):
    """What ``mtlfaces serve``'s ``/v1/model`` reports: validation accuracy per task, of the
    network and of the 8-bit copy that predicts by default (``recipes/results/quantize.json``)."""
    return {"faces": "the fixed validation splits (UTKFace 15 %, FER2013 PublicTest, CK+ "
                     "20 % of subjects); mirror averaging on; no read-out",
            "network": q["keras"], "int8": q["int8"],
            "source": "recipes/results/quantize.json (python recipes/quantize.py)"}


def write_headline():
    q = _read(QUANTIZE)
    if q is None:
        return
    with open(HEADLINE, "w", encoding="utf-8") as fh:
        json.dump(headline(q), fh, indent=1)
        fh.write("\n")
    print(f"wrote {HEADLINE}")


def main(argv=None):
    try:
        write_headline()
        write_block(CARD, (START, END), current_block())
        write_block(README, EXAMPLE, current_example())
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
