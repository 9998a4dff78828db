"""The mtlfaces command line, with real media made here: photos, a video, a messy folder."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mtlfaces.cli import main

from mtlfaces.datasets import make_shapes

from .conftest import TINY


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small real model (trained here) saved as a model file: fast to load."""
    from mtlfaces import MultiTaskFaceClassifier

    X, y = make_shapes(200, seed=4)
    params = dict(TINY, image_size=32)
    path = tmp_path_factory.mktemp("model") / "tiny.mtlfaces"
    MultiTaskFaceClassifier(epochs=1, **params).fit(X, y).save(path)
    return str(path)


@pytest.fixture(scope="module")
def media(tmp_path_factory, astronaut):
    root = tmp_path_factory.mktemp("media")
    bgr = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(root / "astronaut.png"), bgr)
    cv2.imwrite(str(root / "astronaut.jpg"), bgr)
    folder = root / "folder"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "good.png"), bgr)
    cv2.imwrite(str(folder / "sub" / "good2.jpg"), bgr[:, ::-1])
    (folder / "corrupt.jpg").write_bytes(open(root / "astronaut.jpg", "rb").read()[:300])
    (folder / "notes.txt").write_text("not an image")
    cv2.imwrite(str(folder / "blank.png"), np.zeros((200, 200, 3), np.uint8))
    (root / "empty").mkdir()
    (root / "fake.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    whole = make_video(root / "whole.mp4", astronaut).read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 3])  # index (moov) lost
    return root


def make_video(path, astronaut, frames=12, size=(640, 480), fourcc="mp4v"):
    """A real video: the astronaut's head moving right across a grey frame."""
    face = cv2.cvtColor(astronaut[40:260, 120:330], cv2.COLOR_RGB2BGR)  # 220 x 210
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, size)
    for i in range(frames):
        canvas = np.full((size[1], size[0], 3), 90, np.uint8)
        x = 40 + i * 25
        canvas[120:120 + face.shape[0], x:x + face.shape[1]] = face
        writer.write(canvas)
    writer.release()
    return path


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_help_is_fast_and_does_not_import_tensorflow():
    code = ("import sys, time; t=time.time(); from mtlfaces.cli import main; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    result = run("--help")
    assert result.exit_code == 0 and "predict" in result.output and "train" in result.output


def test_predict_image_json_and_annotation(model_file, media, tmp_path):
    out = tmp_path / "faces.jsonl"
    result = run("predict", media / "astronaut.png", media / "astronaut.jpg", "--model",
                 model_file, "--json", out, "--annotate", tmp_path / "ann")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2  # one face per photo (the patch stays below the threshold)
    for row in rows:
        assert 160 < row["left"] < 200 and row["age"] in ("Child", "Young", "Middle Age", "Old",
                                                          "Very Old")
        assert row["gender"] in ("Female", "Male") and 0 <= row["emotion_probability"] <= 1
        assert abs(row["yaw"]) < 30
    assert "1 face(s)" in result.output
    for name in ("astronaut.annotated.png", "astronaut.annotated.jpg"):
        img = cv2.imread(str(tmp_path / "ann" / name))
        assert img is not None and img.shape == (512, 512, 3)
    assert not list(tmp_path.glob("*.partial"))


def test_predict_csv_to_stdout(model_file, media):
    result = run("predict", media / "astronaut.png", "--model", model_file, "--csv", "-")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("source,frame,time,status,face,track,left")
    assert len(lines) == 2 and "astronaut.png" in lines[1]


def test_folder_reports_bad_files_and_processes_the_rest(model_file, media, tmp_path):
    out = tmp_path / "rows.csv"
    result = CliRunner().invoke(main, ["predict", str(media / "folder"), "--model", model_file,
                                       "--csv", str(out)])
    assert result.exit_code == 1  # the corrupt file; the faceless one is no failure
    err = result.stderr
    assert "corrupt.jpg: not a readable image" in err
    assert "blank.png: no face found" in result.stdout and "blank.png" not in err
    assert "notes.txt" not in err  # not an image extension: not part of the folder run
    assert "Traceback" not in result.output + err
    table = pd.read_csv(out)
    status = dict(zip((os.path.basename(s) for s in table["source"]), table["status"]))
    assert status == {"good.png": "ok", "good2.jpg": "ok", "blank.png": "no_face",
                      "corrupt.jpg": "error"}
    assert "not a readable image" in table.set_index("status").loc["error", "error"]


def test_a_photo_without_a_face_is_a_row_not_a_failure(model_file, media, tmp_path):
    blank = str(media / "folder" / "blank.png")
    result = CliRunner().invoke(main, ["predict", blank, "--model", model_file, "--json", "-"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [{"source": blank, "frame": None, "time": None, "status": "no_face"}]
    result = CliRunner().invoke(main, ["predict", blank, "--model", model_file, "--json", "-",
                                       "--require-face"])
    assert result.exit_code == 1 and "blank.png: no face found (--require-face)" in result.stderr


def test_distributions_in_json_and_as_csv_columns(model_file, media, tmp_path):
    png = str(media / "astronaut.png")
    result = CliRunner().invoke(main, ["predict", png, "--model", model_file, "--json", "-"])
    row = json.loads(result.stdout.splitlines()[0])
    for task in ("age", "gender", "emotion"):
        dist = row["distributions"][task]
        assert abs(sum(dist.values()) - 1) < 1e-3
        assert max(dist, key=dist.get) == row[task]
        assert dist[row[task]] == pytest.approx(row[f"{task}_probability"], abs=1e-4)
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(main, ["predict", png, "--model", model_file, "--csv", str(out),
                                       "--probabilities"])
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(out)
    for task in ("age", "gender", "emotion"):
        cols = [c for c in table.columns if c.startswith(f"{task}.")]
        assert [c.split(".", 1)[1] for c in cols] == list(row["distributions"][task])
        assert table[cols].sum(axis=1).iloc[0] == pytest.approx(1, abs=1e-3)
    plain = CliRunner().invoke(main, ["predict", png, "--model", model_file, "--csv", "-"])
    assert not any("." in c for c in plain.stdout.splitlines()[0].split(",") if c != "source")
    result = CliRunner().invoke(main, ["predict", png, "--json", "-", "--probabilities"])
    assert result.exit_code == 2 and "--probabilities adds columns to --csv" in result.stderr


def test_summary_and_records_number_faces_alike(model_file, media):
    png = str(media / "astronaut.png")
    text = CliRunner().invoke(main, ["predict", png, "--model", model_file]).stdout
    row = json.loads(CliRunner().invoke(main, ["predict", png, "--model", model_file,
                                               "--json", "-"]).stdout.splitlines()[0])
    assert row["face"] == 0 and "  face 0 at" in text


@pytest.mark.parametrize("args,message", [
    (["predict", "nowhere.jpg"], "nowhere.jpg: no such file or folder"),
    (["predict", "{empty}"], "no images or videos in this folder"),
    (["predict", "{fake}"], "fake.mp4: "),
    (["predict", "{truncated}"], "truncated.mp4: "),
    (["predict", "{png}", "--model", "{notes}"], "not a readable mtlfaces model file"),
    (["predict", "{png}", "--model", "missing.mtlfaces"], "missing.mtlfaces: no such model file"),
])
def test_errors_are_one_line_without_traceback(model_file, media, args, message):
    subst = {"{empty}": str(media / "empty"), "{fake}": str(media / "fake.mp4"),
             "{truncated}": str(media / "truncated.mp4"),
             "{png}": str(media / "astronaut.png"), "{notes}": str(media / "folder" / "notes.txt")}
    args = [subst.get(a, a) for a in args]
    if "--model" not in args:
        args += ["--model", model_file]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.output


@pytest.mark.parametrize("fmt,fourcc", [("mp4", "mp4v"), ("avi", "MJPG")])
def test_video_rows_tracks_and_annotated_video(model_file, astronaut, tmp_path, fmt, fourcc):
    video = make_video(tmp_path / f"walk.{fmt}", astronaut, fourcc=fourcc)
    out = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(main, ["predict", str(video), "--model", model_file, "--json",
                                       str(out), "--annotate", str(tmp_path / "ann"), "--every",
                                       "3", "--video-format", fmt])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    frames = sorted({r["frame"] for r in rows})
    assert frames == list(range(12))  # the face is followed on frames without detection
    assert {r["track"] for r in rows} == {0}  # one face, one track, across the motion
    xs = [r["left"] for r in sorted(rows, key=lambda r: r["frame"])]
    assert xs[-1] - xs[0] > 150  # the box follows the moving face
    assert rows[3]["time"] == pytest.approx(0.3)
    annotated = tmp_path / "ann" / f"walk.annotated.{fmt}"
    cap = cv2.VideoCapture(str(annotated))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 12
    assert not list((tmp_path / "ann").glob("*.partial*"))


def test_webcam_index_reads_frames_until_max_frames(model_file, astronaut, tmp_path,
                                                    monkeypatch):
    """``predict 0`` on a camera. No camera here: index 0 is routed to a recorded video
    through cv2.VideoCapture, so everything after the capture (unknown length, the
    --max-frames stop, names, annotation) is the real webcam path; index 1 has no device."""
    video = make_video(tmp_path / "camera.mp4", astronaut, frames=12)
    real_capture = cv2.VideoCapture
    opened = []

    def capture(source, *args):
        if isinstance(source, int):
            opened.append(source)
            return real_capture(str(video)) if source == 0 else real_capture()
        return real_capture(source, *args)

    monkeypatch.setattr(cv2, "VideoCapture", capture)
    out = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(main, ["predict", "0", "--model", model_file, "--json", str(out),
                                       "--max-frames", "5", "--annotate", str(tmp_path / "ann")])
    assert result.exit_code == 0, result.stderr
    assert opened == [0]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted({r["frame"] for r in rows}) == list(range(5))
    assert {r["source"] for r in rows} == {"webcam 0"}
    (annotated,) = (tmp_path / "ann").iterdir()
    assert annotated.name.startswith("webcam0") and ".partial" not in annotated.name
    cap = real_capture(str(annotated))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 5
    result = CliRunner().invoke(main, ["predict", "1", "--model", model_file])
    assert result.exit_code == 1 and "webcam 1: cannot open as a video" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_smoothing_steadies_predictions(model_file, astronaut, tmp_path):
    """With smoothing, a tracked face's probabilities change less from frame to frame."""
    video = make_video(tmp_path / "walk.mp4", astronaut, frames=10)
    spreads = []
    for smooth in ("0", "0.9"):
        out = tmp_path / f"s{smooth}.jsonl"
        run("predict", video, "--model", model_file, "--json", out, "--smooth", smooth)
        p = [json.loads(x)["age_probability"] for x in out.read_text().splitlines()]
        spreads.append(np.abs(np.diff(p)).sum())
    assert spreads[1] < spreads[0]


def test_train_two_stages_then_evaluate(tmp_path):
    from mtlfaces.datasets import write_csv

    X, y = make_shapes(240, size=48, seed=5, missing_gender=0.0)
    y = y.assign(source="shapes", split=None)
    csv_path = tmp_path / "data" / "train.csv"
    write_csv(X, y, csv_path)
    stage1 = tmp_path / "stage1"
    result = CliRunner().invoke(main, ["train", str(csv_path), "--out", str(stage1), "--stage",
                                       "age_gender", "--epochs", "2", "--image-size", "32",
                                       "--no-augment", "--verbose", "0"])
    assert result.exit_code == 0, result.stderr + result.output
    for name in ("final.mtlfaces", "best.mtlfaces", "history.json", "graphs/loss.png",
                 "graphs/accuracy.png"):
        assert (stage1 / name).exists(), name
    stage2 = tmp_path / "stage2"
    result = CliRunner().invoke(main, ["train", str(csv_path), "--out", str(stage2), "--stage",
                                       "age_gender_emotion", "--model",
                                       str(stage1 / "final.mtlfaces"), "--epochs", "2",
                                       "--augment-with", "zoom=0.1", "--augment-with",
                                       "erase=0.25", "--verbose", "0"])
    assert result.exit_code == 0, result.stderr + result.output
    from mtlfaces import load_model
    from mtlfaces._network import model_augmentation

    model = load_model(stage2 / "final.mtlfaces")
    assert model.tasks_ == ["age", "gender", "emotion"]
    # Stage 1 trained without augmentation; stage 2's network was rebuilt with it.
    assert model_augmentation(model.model_)["zoom"] == pytest.approx(0.1)
    assert model_augmentation(model.model_)["erase"] == pytest.approx(0.25)
    for bad, message in ((["--augment-with", "spin=1"], "unknown entry ['spin']"),
                         (["--augment-with", "zoom"], "expected NAME=VALUE"),
                         (["--augment-with", "zoom=big"], "zoom='big': expected a number"),
                         (["--augment-with", "erase=2"], "augment['erase']=2.0"),
                         (["--no-augment", "--augment-with", "zoom=0.1"], "one or the other")):
        result = CliRunner().invoke(main, ["train", str(csv_path), "--out",
                                           str(tmp_path / "bad"), *bad])
        assert result.exit_code == 2, (bad, result.output)
        assert message in result.stderr, (bad, result.stderr)
        assert "Traceback" not in result.stderr
    report_dir = tmp_path / "report"
    result = CliRunner().invoke(main, ["evaluate", str(csv_path), "--model",
                                       str(stage2 / "final.mtlfaces"), "--out", str(report_dir)])
    assert result.exit_code == 0, result.stderr
    assert "emotion: accuracy" in result.output and "confusion" in result.output
    report = json.loads((report_dir / "report.json").read_text())
    assert set(report) == {"age", "gender", "emotion"}
    assert cv2.imread(str(report_dir / "confusion.png")) is not None


def test_train_age_sigma_needs_ages_in_years(tmp_path):
    from mtlfaces.datasets import write_csv

    X, y = make_shapes(60, size=32, seed=7, missing_gender=0.0)  # ages in years
    y = y.assign(source="shapes", split=None)
    write_csv(X, y, tmp_path / "years" / "train.csv")
    out = tmp_path / "model"
    result = CliRunner().invoke(main, ["train", str(tmp_path / "years" / "train.csv"), "--out",
                                       str(out), "--epochs", "1", "--image-size", "16",
                                       "--age-sigma", "3", "--verbose", "0"])
    assert result.exit_code == 0, result.stderr + result.output
    from mtlfaces import load_model

    assert load_model(out / "final.mtlfaces").age_sigma == 3
    from mtlfaces.tasks import age_to_group

    write_csv(X, y.assign(age=[age_to_group(a) for a in y["age"]]),
              tmp_path / "groups" / "train.csv")
    result = CliRunner().invoke(main, ["train", str(tmp_path / "groups" / "train.csv"), "--out",
                                       str(tmp_path / "bad"), "--age-sigma", "3"])
    assert result.exit_code == 1 and "no age label there is in years" in result.stderr
    assert "Traceback" not in result.stderr
    result = CliRunner().invoke(main, ["train", str(tmp_path / "years" / "train.csv"), "--out",
                                       str(tmp_path / "bad"), "--age-sigma", "0"])
    assert result.exit_code == 2 and "--age-sigma" in result.stderr


def test_train_with_mixup_records_it_in_the_model(tmp_path):
    from mtlfaces import load_model
    from mtlfaces.datasets import write_csv

    X, y = make_shapes(60, size=32, seed=8, missing_gender=0.3)
    write_csv(X, y.assign(source="shapes", split=None), tmp_path / "train.csv")
    out = tmp_path / "model"
    result = CliRunner().invoke(main, ["train", str(tmp_path / "train.csv"), "--out", str(out),
                                       "--epochs", "1", "--image-size", "16", "--mixup", "0.4",
                                       "--verbose", "0"])
    assert result.exit_code == 0, result.stderr + result.output
    assert load_model(out / "final.mtlfaces").mixup == 0.4
    result = CliRunner().invoke(main, ["train", str(tmp_path / "train.csv"), "--out",
                                       str(tmp_path / "bad"), "--mixup", "-1"])
    assert result.exit_code == 2 and "--mixup" in result.stderr
    assert not (tmp_path / "bad").exists()


def test_evaluate_one_split(tmp_path, model_file):
    from mtlfaces.datasets import write_csv

    X, y = make_shapes(30, size=32, seed=6, missing_gender=0.0)
    y = y.assign(source="shapes", split=["train", "validation", "train"] * 10)
    csv_path = tmp_path / "data.csv"
    write_csv(X, y, csv_path)
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["evaluate", str(csv_path), "--model", model_file,
                                       "--split", "validation", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["age"]["n"] == 10 and report["emotion"]["n"] == 10
    result = CliRunner().invoke(main, ["evaluate", str(csv_path), "--model", model_file,
                                       "--split", "PublicTest"])
    assert result.exit_code == 1 and "no rows in split 'PublicTest'" in result.stderr
    # --limit applies after the split: 4 of the 10 validation faces, not 4 of all 30.
    result = CliRunner().invoke(main, ["evaluate", str(csv_path), "--model", model_file,
                                       "--split", "validation", "--limit", "4", "--out",
                                       str(out)])
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "report.json").read_text())["age"]["n"] == 4


def test_train_holds_back_the_validation_rows(tmp_path):
    from mtlfaces.datasets import write_csv

    X, y = make_shapes(60, size=16, seed=7, missing_gender=0.0)
    y = y.assign(source="shapes", split=["train", "train", "validation"] * 20)
    csv_path = tmp_path / "data.csv"
    write_csv(X, y, csv_path)
    args = ["train", str(csv_path), "--epochs", "1", "--image-size", "16", "--verbose", "0",
            "--no-augment", "--architecture", "default"]
    # Held back by default (test_the_shipped_sample_trains checks it); trained on with:
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b"),
                                       "--include-validation"])
    assert result.exit_code == 0, result.stderr
    assert "training on 60 images" in result.stderr and "holding back" not in result.stderr
    assert "default architecture" in result.stderr


def test_benchmark_says_what_it_timed(model_file, tmp_path):
    out = tmp_path / "bench.jsonl"
    result = CliRunner().invoke(main, ["benchmark", "--model", model_file, "--batch-sizes",
                                       "1,4", "--repeats", "1", "--json", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "mirror averaging (test_time_flip): off" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["batch"] for r in rows] == [1, 4] and rows[0]["test_time_flip"] is False


def test_train_stage_errors(tmp_path, model_file):
    result = CliRunner().invoke(main, ["train", "x.csv", "--out", str(tmp_path), "--stage",
                                       "age_gender_emotion"])
    assert result.exit_code == 2 and "needs --model MODEL" in result.stderr
    # The old spelling still works for one release, with a warning.
    result = CliRunner().invoke(main, ["train", "x.csv", "--out", str(tmp_path), "--stage",
                                       "age_gender_emotion", "--from", model_file])
    assert "--from is deprecated" in result.stderr and "use --model" in result.stderr
    result = CliRunner().invoke(main, ["train", str(tmp_path / "none.csv"), "--out",
                                       str(tmp_path / "o")])
    assert result.exit_code == 1 and "none.csv: no such file" in result.stderr


def test_ctrl_c_leaves_a_playable_partial_video_and_says_so(model_file, astronaut, tmp_path,
                                                             monkeypatch):
    from mtlfaces.pipeline import FaceAnalyzer

    video = make_video(tmp_path / "walk.mp4", astronaut, frames=12)
    real = FaceAnalyzer._detect
    calls = {"n": 0}

    def interrupt_on_fifth(self, rgb, still=False):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self, rgb, still)

    monkeypatch.setattr(FaceAnalyzer, "_detect", interrupt_on_fifth)
    out = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(main, ["predict", str(video), "--model", model_file,
                                       "--annotate", str(tmp_path / "ann"), "--json", str(out),
                                       "--every", "1"])
    assert result.exit_code == 1
    # Frame 4 was being classified while frame 5 was detected: 3 frames were finished.
    assert "interrupted after 3 frames" in result.stderr
    partial = tmp_path / "ann" / "walk.annotated.partial.mp4"
    assert str(partial) in result.stderr
    assert not (tmp_path / "ann" / "walk.annotated.mp4").exists()
    cap = cv2.VideoCapture(str(partial))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 3
    # The table is left under its .partial name too, never looking complete.
    assert not out.exists() and (tmp_path / "rows.jsonl.partial").exists()
    assert "incomplete results left in" in result.stderr


def test_a_truncated_video_fails_its_input_and_keeps_the_partial_name(model_file, tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "whole.avi"), cv2.VideoWriter_fourcc(*"MJPG"),
                             10.0, (160, 120))
    for i in range(40):
        writer.write(np.full((120, 160, 3), 3 * i, np.uint8))
    writer.release()
    whole = (tmp_path / "whole.avi").read_bytes()
    (tmp_path / "half.avi").write_bytes(whole[: len(whole) // 2])
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "half.avi"), "--model",
                                       model_file, "--annotate", str(tmp_path / "ann"),
                                       "--video-format", "avi"])
    assert result.exit_code == 1
    assert "half.avi: truncated:" in result.stderr and "of the 40 frames" in result.stderr
    assert not (tmp_path / "ann" / "half.annotated.avi").exists()
    assert (tmp_path / "ann" / "half.annotated.partial.avi").exists()


def test_a_folder_runs_its_videos_too(model_file, astronaut, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "photo.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    make_video(folder / "clip.mp4", astronaut, frames=3)
    out = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(main, ["predict", str(folder), "--model", model_file,
                                       "--json", str(out)])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {os.path.basename(r["source"]) for r in rows} == {"photo.png", "clip.mp4"}
    assert sorted(r["frame"] for r in rows if r["source"].endswith("clip.mp4")) == [0, 1, 2]


@pytest.mark.parametrize("args", [
    ["train", "{missing}", "--out", "{out}"],
    ["evaluate", "{missing}"],
    ["predict", "{missing}"],
    ["predict", "x.png", "--every", "0"],
    ["build-dataset", "{tmp}", "--out", "{out}"],
    ["benchmark", "--model", "{missing}"],
], ids=["train", "evaluate", "predict", "usage", "build-dataset", "benchmark"])
def test_every_subcommand_errors_with_one_prefix(tmp_path, args):
    subst = {"{missing}": str(tmp_path / "missing.csv"), "{out}": str(tmp_path / "o"),
             "{tmp}": str(tmp_path)}
    result = CliRunner().invoke(main, [subst.get(a, a) for a in args])
    assert result.exit_code in (1, 2)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("mtlfaces: error: ")
    assert not any(line.startswith("Error:") for line in lines)
    assert "Traceback" not in result.stderr + result.output


def test_the_shipped_sample_trains(tmp_path):
    sample = os.path.join(os.path.dirname(__file__), "..", "sample_dataset.csv")
    result = CliRunner().invoke(main, ["train", sample, "--out", str(tmp_path / "m"),
                                       "--epochs", "1", "--image-size", "32", "--verbose", "0"])
    assert result.exit_code == 0, result.stderr
    assert "holding back 6 validation row(s) of 24" in result.stderr
    from mtlfaces import ARCHITECTURES, load_model

    model = load_model(tmp_path / "m" / "final.mtlfaces")  # the bundled network by default
    bundled = dict(ARCHITECTURES["bundled"], image_size=32)
    assert {k: model.get_params()[k] for k in bundled} == bundled


def test_every_option_has_help_text():
    missing = [(name, p.opts) for name, cmd in main.commands.items() for p in cmd.params
               if p.param_type_name == "option" and not p.hidden and not p.help]
    assert missing == []
