"""Bad inputs, through the command line and the Python API: exit code, message, peak memory.

    python benchmarks/bench_bad_inputs.py [--quick] [--jobs 2] [--keep DIR]

Builds a corpus of hostile and odd inputs in a temporary folder (truncated, empty and fake
images and videos, decompression bombs, a sideways phone portrait, a small face in a large
photo, model files with zip bombs, padded or wrong JSON, a damaged or code-carrying
network, ambiguous arrays), runs each one in its own process through ``mtlfaces predict``
and through the Python API (``mtlfaces.analyze``, ``load_model``, ``predict``,
``FaceCropper``), and prints per input and route: exit code, the last line of stderr,
whether a traceback appeared, peak resident memory (``wait4``), and whether the outcome is
the expected one (an error, no face, or the faces that are there). Writes
``benchmarks/results/bad_inputs.json``.

A route fails when it prints a traceback, gives an outcome other than the expected one
(a silent wrong answer), or peaks over 1.5 GB. ``--quick`` leaves out the multi-gigabyte
bombs and the 48-megapixel photo.
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import ROOT, machine, table, write_json  # noqa: E402

LIMIT_MB = 1536
GiB = 2**30


# ------------------------------------------------------------------ corpus
def _png_chunk(kind, body):
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def _gray_png(path, width, height):
    """A real, decodable gray PNG of width × height, streamed (a 20000² one is ~1 MB)."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                 + _png_chunk(b"IEND", b""))
    return path


def _zip(path, members, compression=zipfile.ZIP_STORED):
    """A zip of {name: bytes, or (size, byte) streamed as a run of one byte}."""
    with zipfile.ZipFile(path, "w", compression=compression, compresslevel=1) as zf:
        for name, content in members.items():
            if isinstance(content, tuple):
                size, byte = content
                with zf.open(name, "w", force_zip64=True) as fh:
                    chunk = byte * 2**20
                    for _ in range(size // 2**20):
                        fh.write(chunk)
            else:
                zf.writestr(name, content)
    return path


def build_images(d, quick):
    import cv2
    from PIL import Image
    from skimage import data

    a = data.astronaut()
    bgr = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    cases = []

    def add(name, expect, note):
        cases.append({"name": name, "kind": "image", "path": os.path.join(d, name),
                      "expect": expect, "note": note})

    cv2.imwrite(os.path.join(d, "astronaut.png"), bgr)
    add("astronaut.png", "faces:1", "control: a real face")
    png = open(os.path.join(d, "astronaut.png"), "rb").read()
    open(os.path.join(d, "truncated.png"), "wb").write(png[: len(png) // 2])
    add("truncated.png", "error", "PNG cut in half")
    ok, jpg = cv2.imencode(".jpg", bgr)
    open(os.path.join(d, "truncated.jpg"), "wb").write(jpg.tobytes()[: len(jpg) // 3])
    add("truncated.jpg", "error", "JPEG cut to a third")
    open(os.path.join(d, "empty.jpg"), "wb").close()
    add("empty.jpg", "error", "zero bytes")
    open(os.path.join(d, "text.jpg"), "w").write("this is not an image\n")
    add("text.jpg", "error", "text named .jpg")
    _gray_png(os.path.join(d, "bomb_20000.png"), 20000, 20000)
    add("bomb_20000.png", "error", "20000×20000 PNG, ~1 MB (decompression bomb)")
    side = np.ascontiguousarray(np.rot90(a))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(side).save(os.path.join(d, "portrait_exif6.jpg"), exif=exif, quality=95)
    add("portrait_exif6.jpg", "faces:1", "stored sideways, EXIF Orientation=6")
    gray16 = (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    cv2.imwrite(os.path.join(d, "gray16.png"), gray16)
    add("gray16.png", "faces:1", "16-bit grayscale PNG")
    rgba = np.dstack([bgr, np.full(a.shape[:2], 255, np.uint8)])
    cv2.imwrite(os.path.join(d, "rgba.png"), rgba)
    add("rgba.png", "faces:1", "RGBA PNG")
    cv2.imwrite(os.path.join(d, "coffee.png"), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    add("coffee.png", "no_face", "a photo with no face")
    cv2.imwrite(os.path.join(d, "one_pixel.png"), np.zeros((1, 1, 3), np.uint8))
    add("one_pixel.png", "no_face", "1×1 image")
    cv2.imwrite(os.path.join(d, "sliver.png"), np.full((5000, 6, 3), 128, np.uint8))
    add("sliver.png", "no_face", "5000×6 image")
    small = cv2.resize(bgr, (340, 340), interpolation=cv2.INTER_AREA)  # face ~90 px
    if not quick:
        big = np.full((6000, 8000, 3), 110, np.uint8)
        big[2800:3140, 3800:4140] = small
        cv2.imwrite(os.path.join(d, "large_8000x6000.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        add("large_8000x6000.jpg", "faces:1", "48 MP photo, one ~90 px face")
    mid = np.full((3000, 4000, 3), 110, np.uint8)
    mid[1400:1740, 1800:2140] = small
    cv2.imwrite(os.path.join(d, "large_4000x3000.jpg"), mid, [cv2.IMWRITE_JPEG_QUALITY, 90])
    add("large_4000x3000.jpg", "faces:1", "12 MP photo, one ~90 px face")
    return cases


def _video(path, frames, fourcc, face=None):
    import cv2

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 10.0, (320, 240))
    for i in range(frames):
        canvas = np.full((240, 320, 3), 90, np.uint8)
        if face is not None:
            canvas[20:20 + face.shape[0], 10 + 3 * i:10 + 3 * i + face.shape[1]] = face
        writer.write(canvas)
    writer.release()
    return path


def build_videos(d):
    import cv2
    from skimage import data

    face = cv2.cvtColor(cv2.resize(data.astronaut()[30:270, 110:350], (200, 200)),
                        cv2.COLOR_RGB2BGR)
    cases = []
    whole = _video(os.path.join(d, "clip.avi"), 20, "MJPG", face)
    cases.append({"name": "clip.avi", "kind": "video", "path": whole, "expect": "faces:20",
                  "note": "control: 20 frames, one face"})
    raw = open(whole, "rb").read()
    open(os.path.join(d, "half.avi"), "wb").write(raw[: len(raw) // 2])
    cases.append({"name": "half.avi", "kind": "video", "path": os.path.join(d, "half.avi"),
                  "expect": "error", "note": "AVI cut in half (short read)"})
    mp4 = open(_video(os.path.join(d, "clip.mp4"), 20, "mp4v", face), "rb").read()
    open(os.path.join(d, "cut.mp4"), "wb").write(mp4[: len(mp4) // 3])
    cases.append({"name": "cut.mp4", "kind": "video", "path": os.path.join(d, "cut.mp4"),
                  "expect": "error", "note": "MP4 cut to a third (index lost)"})
    open(os.path.join(d, "empty.mp4"), "wb").close()
    cases.append({"name": "empty.mp4", "kind": "video", "path": os.path.join(d, "empty.mp4"),
                  "expect": "error", "note": "zero bytes"})
    open(os.path.join(d, "fake.mp4"), "wb").write(b"\x00\x00\x00\x18ftypmp42 not a video")
    cases.append({"name": "fake.mp4", "kind": "video", "path": os.path.join(d, "fake.mp4"),
                  "expect": "error", "note": "an ftyp header and nothing else"})
    folder = os.path.join(d, "folder_with_video")
    os.makedirs(folder)
    shutil.copy(whole, os.path.join(folder, "clip.avi"))
    cv2.imwrite(os.path.join(folder, "photo.png"), cv2.cvtColor(data.astronaut(),
                                                                cv2.COLOR_RGB2BGR))
    cases.append({"name": "folder_with_video/", "kind": "folder", "path": folder,
                  "expect": "faces:21", "note": "a photo and a 20-frame video in a folder"})
    return cases


def build_models(d, quick):
    """Model files made from the bundled one."""
    from mtlfaces._pretrained import PRETRAINED_MODEL_PATH as good

    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read("mtlfaces.json"))
        network = zf.read("model.keras")
    cases = []

    def add(name, members, note, compression=zipfile.ZIP_STORED, expect="error"):
        path = _zip(os.path.join(d, name), members, compression)
        cases.append({"name": name, "kind": "model", "path": path, "expect": expect,
                      "note": note})

    def doc(change):
        m = json.loads(json.dumps(meta))
        change(m)
        return json.dumps(m)

    add("control.mtlfaces", {"mtlfaces.json": json.dumps(meta), "model.keras": network},
        "control: the bundled model, rewritten", expect="faces:1")
    bomb = (3 * GiB, b"\x00") if not quick else (256 * 2**20, b"\x00")
    add("bomb_network.mtlfaces", {"mtlfaces.json": json.dumps(meta), "model.keras": bomb},
        f"model.keras of {bomb[0] >> 20} MiB of zeros, deflated", zipfile.ZIP_DEFLATED)
    pad = (GiB, b" ") if not quick else (128 * 2**20, b" ")
    with zipfile.ZipFile(os.path.join(d, "padded_json.mtlfaces"), "w", zipfile.ZIP_DEFLATED,
                         compresslevel=1) as zf:
        with zf.open("mtlfaces.json", "w", force_zip64=True) as fh:
            fh.write(json.dumps(meta).encode())
            for _ in range(pad[0] // 2**20):
                fh.write(b" " * 2**20)
        zf.writestr("model.keras", network)
    cases.append({"name": "padded_json.mtlfaces", "kind": "model", "expect": "error",
                  "path": os.path.join(d, "padded_json.mtlfaces"),
                  "note": f"JSON followed by {pad[0] >> 20} MiB of spaces"})
    inner = os.path.join(d, "inner.keras")
    _zip(inner, {"config.json": b"{}", "model.weights.h5": (512 * 2**20, b"\x00")},
         zipfile.ZIP_DEFLATED)
    add("bomb_inside_keras.mtlfaces", {"mtlfaces.json": json.dumps(meta),
                                       "model.keras": open(inner, "rb").read()},
        "a 512 MiB deflated weights file inside the Keras archive")
    os.remove(inner)
    faults = {
        "format_version_string": ("format_version as a string",
                                  lambda m: m.__setitem__("format_version", "1")),
        "params_missing": ("params missing", lambda m: m.pop("params")),
        "params_string": ("params a string", lambda m: m.__setitem__("params", "x")),
        "classes_missing": ("classes missing", lambda m: m.pop("classes")),
        "dtype_unknown": ("an unknown dtype", lambda m: m["classes"][0].update(dtype="q9")),
        "dtype_huge": ("dtype S200000000",
                       lambda m: m["classes"][0].update(dtype="S200000000")),
        "n_features_word": ("n_features_in 'many'",
                            lambda m: m.__setitem__("n_features_in", "many")),
        "n_features_nan": ("n_features_in NaN",
                           lambda m: m.__setitem__("n_features_in", float("nan"))),
        "history_list": ("history a list", lambda m: m.__setitem__("history", [1])),
        "history_int": ("history an int", lambda m: m.__setitem__("history", 3)),
        "batch_size_word": ("batch_size 'x'", lambda m: m["params"].update(batch_size="x")),
        "extra_class": ("a class more than the head's width",
                        lambda m: m["classes"][1]["values"].append("Other")),
        "image_size_15000": ("image_size 15000",
                             lambda m: (m["params"].update(image_size=15000),
                                        m["preprocessing"].update(image_size=15000))),
    }
    for key, (note, change) in faults.items():
        add(f"{key}.mtlfaces", {"mtlfaces.json": doc(change), "model.keras": network}, note)
    add("corrupt_network.mtlfaces", {"mtlfaces.json": json.dumps(meta),
                                     "model.keras": network[: len(network) // 2]},
        "model.keras cut in half")
    add("not_a_zip.mtlfaces", {}, "placeholder")
    open(os.path.join(d, "not_a_zip.mtlfaces"), "wb").write(b"hello" * 100)
    cases[-1]["note"] = "not a zip at all"
    raw = open(good, "rb").read()
    open(os.path.join(d, "truncated.mtlfaces"), "wb").write(raw[: len(raw) // 2])
    cases.append({"name": "truncated.mtlfaces", "kind": "model", "expect": "error",
                  "path": os.path.join(d, "truncated.mtlfaces"), "note": "file cut in half"})
    lam = os.path.join(d, "lambda.keras")
    _lambda_network(lam, meta)
    add("code_in_network.mtlfaces", {"mtlfaces.json": json.dumps(meta),
                                     "model.keras": open(lam, "rb").read()},
        "a Keras network with a Lambda layer (code)")
    os.remove(lam)
    return cases


def _lambda_network(path, meta):
    import keras

    inp = keras.Input((48, 48, 1))
    x = keras.layers.Flatten()(keras.layers.Lambda(lambda t: t * 2)(inp))
    outs = {t: keras.layers.Dense(len(c["values"]), activation="softmax", name=t)(x)
            for t, c in zip(meta["tasks"], meta["classes"])}
    keras.Model(inp, outs).save(path)


ARRAYS = {
    "predict_one_rgb_image": ("error", "predict() on one (48, 48, 3) image"),
    "predict_int64_16bit": ("same", "predict() on int64 holding 16-bit values"),
    "predict_mixed_scales": ("same", "a [0, 1] face beside a [0, 255] one"),
    "predict_nan": ("error", "a NaN pixel"),
    "predict_empty": ("error", "an empty batch"),
    "predict_strings": ("error", "an array of strings"),
    "crop_one_image": ("error", "FaceCropper().transform(one image)"),
    "crop_coffee": ("error", "FaceCropper on a photo with no face"),
    "analyze_float_65535": ("error", "analyze() on a float image in [0, 65535]"),
}


# ----------------------------------------------------------------- running
def _api_call(kind, target):
    """What the Python API does with one input (run in a child process): a JSON line."""
    import mtlfaces

    if kind in ("image", "video", "folder"):
        rows = mtlfaces.analyze(target)
        return {"faces": len(rows)}
    if kind == "model":
        model = mtlfaces.load_model(target)
        from skimage import data

        return {"faces": len(mtlfaces.analyze(data.astronaut(), model, readout=False))}
    from skimage import data

    from mtlfaces import FaceCropper
    from mtlfaces.pipeline import _bundled_model

    face = FaceCropper().transform([data.astronaut()])[0]
    if target.startswith("predict"):
        clf = _bundled_model()
        if target == "predict_one_rgb_image":
            return {"rows": len(clf.predict(np.dstack([face] * 3)))}
        if target == "predict_int64_16bit":
            a = clf.predict_proba(face[None])[1]
            b = clf.predict_proba(face[None].astype(np.int64) * 257)[1]
            return {"same": bool(np.allclose(a, b, atol=1e-4))}
        if target == "predict_mixed_scales":
            alone = clf.predict_proba(face[None] / 255.0)[1]
            mixed = clf.predict_proba(np.stack([face / 255.0, face.astype(float)]))[1][:1]
            return {"same": bool(np.allclose(alone, mixed, atol=1e-4))}
        if target == "predict_nan":
            bad = face[None].astype(float)
            bad[0, 0, 0] = np.nan
            return {"rows": len(clf.predict(bad))}
        if target == "predict_empty":
            return {"rows": len(clf.predict(np.zeros((0, 48, 48))))}
        if target == "predict_strings":
            return {"rows": len(clf.predict(np.full((1, 48, 48), "x")))}
    if target == "crop_one_image":
        return {"rows": len(FaceCropper().transform(data.astronaut()))}
    if target == "crop_coffee":
        return {"rows": len(FaceCropper().transform([data.coffee()]))}
    if target == "analyze_float_65535":
        return {"faces": len(mtlfaces.analyze(data.astronaut().astype(float) * 257))}
    raise SystemExit(f"unknown array case {target}")


def child(kind, target):
    """Entry of ``--child``: run one API call, print its outcome; user errors (ValueError,
    TypeError) become an outcome, anything else is left to print its traceback."""
    try:
        out = _api_call(kind, target)
        out["outcome"] = "ok"
    except (ValueError, TypeError) as exc:
        out = {"outcome": "error", "message": f"{type(exc).__name__}: {exc}"}
    print("RESULT " + json.dumps(out), flush=True)


def _run(cmd, timeout):
    """(exit code, stdout, stderr, peak RSS MB, seconds) of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        try:
            _, status, usage = _wait4(proc, timeout)
            code = os.waitstatus_to_exitcode(status)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, _, usage = os.wait4(proc.pid, 0)
            code = "timeout"
        out.seek(0)
        err.seek(0)
        return (code, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                usage.ru_maxrss / 1024, time.perf_counter() - start)


def _wait4(proc, timeout):
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, usage
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(0.05)


def _cli_faces(stdout):
    """Faces in ``predict --json -`` output: the rows of status "ok" (an image with no
    face has one "no_face" row; one that could not be read an "error" row)."""
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip().startswith("{")]
    return sum(1 for r in rows if r.get("status") == "ok")


def run_case(case, route, timeout):
    exe = [sys.executable]
    if route == "cli":
        if case["kind"] == "model":
            cmd = exe + ["-m", "mtlfaces.cli", "predict", case["astronaut"], "--model",
                         case["path"], "--json", "-", "--no-descriptor"]
        else:
            cmd = exe + ["-m", "mtlfaces.cli", "predict", case["path"], "--json", "-"]
    else:
        cmd = exe + [os.path.abspath(__file__), "--child", case["kind"], case["path"]]
    code, out, err, rss, seconds = _run(cmd, timeout)
    traceback = "Traceback" in err or "Traceback" in out
    lines = [line for line in err.strip().splitlines() if line.strip()]
    if route == "cli":
        faces = _cli_faces(out)
        # A photo without a face is no failure (exit 0 and a "no_face" row).
        got = (f"faces:{faces}" if faces else "no_face") if code == 0 else "error"
        message = lines[-1] if lines else ""
        # Our own lines: errors, and a video's progress bar (its label is the file's name).
        foreign = [line for line in lines if not line.startswith("mtlfaces: error:")
                   and not line.strip().startswith(os.path.basename(case["path"].rstrip("/")))
                   and not line.strip().startswith("clip.avi")]
    else:
        result = next((json.loads(line[7:]) for line in out.splitlines()
                       if line.startswith("RESULT ")), None)
        foreign = []
        if result is None:
            got, message = "crash", lines[-1] if lines else f"exit {code}"
        elif result["outcome"] == "error":
            got, message = "error", result["message"].splitlines()[0]
        elif "same" in result:
            got, message = ("same" if result["same"] else "different"), ""
        elif "faces" in result:
            got = f"faces:{result['faces']}" if result["faces"] else "no_face"
            message = ""
        else:
            got, message = f"rows:{result['rows']}", ""
    expect = case["expect"]
    return {"input": case["name"], "route": route, "note": case["note"], "exit": code,
            "expected": expect, "got": got, "traceback": traceback,
            "peak_rss_mb": round(rss), "seconds": round(seconds, 1),
            "native_lines": len(foreign), "message": message[:160],
            "pass": (got == expect and not traceback and rss <= LIMIT_MB and not foreign)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="leave out the multi-gigabyte bombs and the 48 MP photo")
    parser.add_argument("--jobs", type=int, default=2, help="child processes at a time")
    parser.add_argument("--keep", metavar="DIR", help="build the corpus in DIR and keep it")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    root = args.keep or tempfile.mkdtemp(prefix="mtlfaces-bad-")
    os.makedirs(root, exist_ok=True)
    try:
        t = time.perf_counter()
        cases = (build_images(root, args.quick) + build_videos(root)
                 + build_models(root, args.quick))
        astronaut = os.path.join(root, "astronaut.png")
        for c in cases:
            c["astronaut"] = astronaut
        arrays = [{"name": k, "kind": "array", "path": k, "expect": e, "note": n,
                   "astronaut": astronaut} for k, (e, n) in ARRAYS.items()]
        print(f"corpus: {len(cases)} files and {len(arrays)} arrays built in "
              f"{time.perf_counter() - t:.0f} s under {root}", flush=True)
        jobs = [(c, route) for c in cases for route in ("cli", "api")]
        jobs += [(a, "api") for a in arrays]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(lambda job: run_case(job[0], job[1], args.timeout), jobs))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    table(rows, ["input", "route", "exit", "expected", "got", "traceback", "native_lines",
                 "peak_rss_mb", "seconds", "pass", "message"])
    failed = [r for r in rows if not r["pass"]]
    summary = {"runs": len(rows), "failed": len(failed),
               "tracebacks": sum(r["traceback"] for r in rows),
               "wrong_outcomes": sum(r["got"] != r["expected"] for r in rows),
               "over_memory": sum(r["peak_rss_mb"] > LIMIT_MB for r in rows),
               "native_lines": sum(r["native_lines"] > 0 for r in rows),
               "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rows)}
    print("\n" + ", ".join(f"{k} {v}" for k, v in summary.items()))
    write_json("bad_inputs", {"machine": machine(), "limit_mb": LIMIT_MB, "summary": summary,
                              "rows": rows}, quick=args.quick)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
