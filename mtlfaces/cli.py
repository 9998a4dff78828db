"""The ``mtlfaces`` command line: predict, train, evaluate, benchmark, serve, build-dataset.

TensorFlow is imported only inside the commands that need it, so ``mtlfaces --help``
answers at once. User mistakes (missing files, bad images, bad models) end in one
line on stderr and a non-zero exit code, never a traceback.
"""

import csv
import json
import os
import sys
import time

import click

from ._defaults import DEFAULT_EVERY, DEFAULT_THRESHOLD, DETECTORS, MAX_PIXELS

EXIT_FAILED = 1  # some inputs failed (others may have been processed)


def _quiet_tensorflow():
    from ._native import quiet_tensorflow

    quiet_tensorflow()


def _error(message):
    click.echo(f"mtlfaces: error: {message}", err=True)


def _deprecated(old, new):
    """Say once that option ``old`` is now ``new`` (the old spelling goes in 0.5)."""
    click.echo(f"mtlfaces: warning: {old} is deprecated and will be removed in mtlfaces 0.5; "
               f"use {new}", err=True)


def _load_classifier(model):
    """The model at ``model``, or the bundled one; exits with a clear line on failure."""
    _quiet_tensorflow()
    from ._serialization import ModelFileError

    try:
        if model is None:
            from ._pretrained import load_pretrained

            return load_pretrained()
        from ._classifier import load_model

        return load_model(model)
    except ModelFileError as exc:
        raise click.ClickException(str(exc)) from None


class _Main(click.Group):
    """The command group, with every subcommand's errors in one form:
    ``mtlfaces: error: MESSAGE`` on stderr (after the usage line for usage mistakes)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            if exc.ctx is not None:
                click.echo(exc.ctx.get_usage(), err=True)
                click.echo(f"Try '{exc.ctx.command_path} {exc.ctx.help_option_names[0]}' "
                           "for help.", err=True)
            _error(exc.format_message())
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            _error(exc.format_message())
            sys.exit(exc.exit_code)
        except click.Abort:
            _error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mtlfaces")
def main():
    """Age group, gender and emotion for every face in images, folders, videos and webcams."""


# --------------------------------------------------------------------- predict
class _Table:
    """JSON-lines or CSV rows, written to a temporary name and renamed when complete.

    JSON lines are the records as :func:`mtlfaces.analyze` gives them (distributions
    included); CSV has the :data:`~mtlfaces.pipeline.FIELDS` columns, each other task's,
    and with ``probabilities`` one ``TASK.CLASS`` column per class.
    """

    def __init__(self, path, fmt, classes, probabilities=False):
        from .pipeline import FIELDS, output_columns

        self.path, self.fmt = path, fmt
        self.rows = 0
        self.columns = FIELDS + [name for name, _ in output_columns(classes, probabilities)]
        if path == "-":
            self._fh = sys.stdout
            self._tmp = None
        else:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._tmp = path + ".partial"
            self._fh = open(self._tmp, "w", newline="")
        self._csv = None
        if fmt == "csv":
            self._csv = csv.DictWriter(self._fh, fieldnames=self.columns, extrasaction="ignore")
            self._csv.writeheader()

    def write(self, row):
        if self.fmt == "json":
            self._fh.write(json.dumps(row) + "\n")
        else:
            from .pipeline import flat_record

            self._csv.writerow(flat_record(row))
        self.rows += 1

    def close(self, complete=True):
        if self._tmp is None:
            self._fh.flush()
            return None
        self._fh.close()
        if complete:
            os.replace(self._tmp, self.path)
            return self.path
        return self._tmp


def _summary(where, results):
    if not results:
        return f"{where}: no face found"
    lines = [f"{where}: {len(results)} face(s)"]
    for i, r in enumerate(results):
        labels = ", ".join(f"{t} {r.labels[t]} ({r.probabilities[t]:.2f})"
                           if r.probabilities.get(t) is not None else f"{t} {r.labels[t]}"
                           for t in r.labels)
        pose = "" if r.pose is None else f" yaw {r.pose[0]:+.0f} pitch {r.pose[1]:+.0f}"
        lines.append(f"  face {i} at {tuple(int(v) for v in r.box)}{pose}: {labels}")
    return "\n".join(lines)


def _annotated_path(out_dir, source, ext=None):
    base = os.path.basename(os.path.normpath(str(source)))
    root, old_ext = os.path.splitext(base)
    return os.path.join(out_dir, f"{root}.annotated{ext or old_ext or '.png'}")


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="Model file (default: the bundled pretrained model).")
@click.option("--json", "json_out", metavar="PATH", help="Write one JSON line per face ('-' = stdout).")
@click.option("--csv", "csv_out", metavar="PATH", help="Write one CSV row per face ('-' = stdout).")
@click.option("--annotate", "annotate_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write annotated copies of images and videos into DIR.")
@click.option("--video-format", type=click.Choice(["mp4", "avi"]), default="mp4", show_default=True,
              help="Annotated video container: mp4 (mp4v) or avi (MJPG).")
@click.option("--every", type=click.IntRange(min=1), default=DEFAULT_EVERY, show_default=True,
              help="Video: detect faces on every Nth frame and follow them in between "
                   "(1: detect on every frame).")
@click.option("--smooth", type=click.FloatRange(0, 0.99), default=0.7, show_default=True,
              help="Video: weight of the past in each tracked face's smoothed predictions.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Video/webcam: stop after this many frames.")
@click.option("--detector", type=click.Choice(DETECTORS), default=DETECTORS[0],
              show_default=True,
              help="dlib's HOG detector (fast) or its CNN detector (more poses, far slower); "
                   "auto: HOG, then the CNN on a photo of at most 512 px where HOG finds no "
                   "face (slower for such a photo).")
@click.option("--upsample", type=click.IntRange(0, 3), default=0, show_default=True,
              help="Upsample images before detecting (finds smaller faces, slower).")
@click.option("--threshold", type=float, default=DEFAULT_THRESHOLD, show_default=True,
              help="Minimum detector score; lower finds more faces and more false ones. "
                   "A photo of at most 512 px with none is searched again at upsample 1, "
                   "where its best face down to this minus 0.4 is kept.")
@click.option("--max-side", type=click.IntRange(min=64), default=None,
              help="Detect on a copy shrunk to at most this many pixels a side: faster on "
                   "large photos, but faces under ~80 px in the copy are missed [default: "
                   "full resolution].")
@click.option("--max-pixels", type=click.IntRange(min=1), default=MAX_PIXELS,
              show_default=True, help="Refuse images with more pixels than this, before "
                                      "decoding.")
@click.option("--descriptor/--no-descriptor", default=None,
              help="Average the bundled read-out of dlib's face descriptor into age group and "
                   "gender (accuracy gained and time per face: MODEL_CARD.md) [default: on "
                   "for images with the bundled model; off for videos and webcams, where it "
                   "would cost most of the frame rate, and with --model].")
@click.option("--crops", is_flag=True,
              help="Each image is one face crop (dataset crops, another tool's export): one "
                   "answer per image, aligned on landmarks where no face is detected, else "
                   "the image as given; the 'located' column says which.")
@click.option("--probabilities", is_flag=True,
              help="CSV: add one TASK.CLASS column per class with its probability (JSON "
                   "lines always carry the distributions).")
@click.option("--require-face", is_flag=True,
              help="Exit 1 when an image (or a whole video) has no face. Without it, inputs "
                   "with no face get a 'no_face' row and the run exits 0.")
@click.option("--parquet", "parquet_out", metavar="DIR", type=click.Path(file_okay=False),
              help="Run on a Dask cluster and write one Parquet file per partition of "
                   "inputs plus manifest.json into DIR (the columns of --csv "
                   "--probabilities). Running the same command again resumes: finished "
                   "partitions are kept.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With --parquet: worker processes of the local Dask cluster [default: "
                   "one per core].")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="With --parquet: use the Dask cluster whose scheduler is at ADDRESS "
                   "(tcp://host:8786) instead of a local one; its workers must read the "
                   "same paths.")
@click.option("--partition-size", type=click.IntRange(min=1), default=None,
              help="With --parquet: inputs per partition [default: about an eighth of a "
                   "worker's share, 8 to 256].")
@click.option("--overwrite", is_flag=True,
              help="With --parquet: replace a run of other inputs or options in DIR instead "
                   "of refusing.")
@click.option("--quiet", "-q", is_flag=True, help="No human summary on stdout.")
def predict(sources, model, json_out, csv_out, annotate_dir, video_format, every, smooth,
            max_frames, detector, upsample, threshold, max_side, max_pixels, descriptor,
            crops, probabilities, require_face, parquet_out, workers, scheduler,
            partition_size, overwrite, quiet):
    """Classify every face in SOURCES: image files, folders, videos or a webcam index (0).

    The answers are mtlfaces.analyze()'s: --json writes its records, one per face, with
    each task's full distribution. Every input gets a row: status "ok" per face, "no_face"
    for an image or frame without one, "error" (and the message) for one that could not
    be read. Exit code 0 unless an input could not be read (or, with --require-face, had
    no face).
    """
    from .pipeline import Analyzer, error_record, expand

    cluster = {"--workers": workers, "--scheduler": scheduler,
               "--partition-size": partition_size, "--overwrite": overwrite or None}
    if parquet_out:
        _predict_parquet(sources, parquet_out, model, workers, scheduler, partition_size,
                         overwrite, quiet, dict(
                             readout="auto" if descriptor is None else descriptor,
                             detector=detector, upsample=upsample, threshold=threshold,
                             every=every, smooth=smooth, max_frames=max_frames,
                             max_side=max_side, max_pixels=max_pixels, crops=crops),
                         {"--json": json_out, "--csv": csv_out, "--annotate": annotate_dir,
                          "--probabilities": probabilities or None,
                          "--require-face": require_face or None})
        return
    given = [name for name, value in cluster.items() if value is not None]
    if given:
        raise click.UsageError(f"{', '.join(given)}: only with --parquet DIR (a run on a "
                               "Dask cluster, written as Parquet partitions)")
    if json_out and csv_out:
        raise click.UsageError("choose one of --json and --csv")
    if probabilities and not csv_out:
        raise click.UsageError("--probabilities adds columns to --csv (--json always has the "
                               "distributions)")
    inputs, unread = [], []
    for source in sources:
        try:
            inputs.extend(expand(source))
        except ValueError as exc:
            _error(str(exc))
            unread.append(error_record(source, exc))
    if not inputs:
        sys.exit(EXIT_FAILED)
    _quiet_tensorflow()
    from ._serialization import ModelFileError

    try:
        analyzer = Analyzer(model, readout="auto" if descriptor is None else descriptor,
                            detector=detector, upsample=upsample, threshold=threshold,
                            every=every, smooth=smooth, max_frames=max_frames,
                            max_side=max_side, max_pixels=max_pixels, crops=crops)
    except ModelFileError as exc:
        raise click.ClickException(str(exc)) from None
    if descriptor or (descriptor is None and analyzer.bundled
                      and any(i.kind in ("image", "array") for i in inputs)):
        from .descriptors import ReadoutFileError

        try:  # load and check the read-out before the first input
            analyzer._readout_for("image")
        except ReadoutFileError as exc:
            raise click.ClickException(f"{exc}; --no-descriptor predicts without it") from None
        except ValueError as exc:
            raise click.UsageError(f"--descriptor: {exc}") from None
    from .tasks import classes_by_task

    table = None
    if json_out or csv_out:
        table = _Table(json_out or csv_out, "json" if json_out else "csv",
                       {t: [str(c) for c in v] for t, v in
                        classes_by_task(analyzer.classifier).items()}, probabilities)
        for row in unread:
            table.write(row)
    to_stdout = (json_out == "-" or csv_out == "-")
    summary = not quiet and not to_stdout
    complete = False
    failures, faceless = len(unread), []
    try:
        for item in inputs:
            if item.kind in ("video", "webcam"):
                ok, found = _predict_video(analyzer, item, table, annotate_dir, video_format,
                                           summary)
            else:
                ok, found = _predict_image(analyzer, item, table, annotate_dir, summary)
            failures += not ok
            if ok and not found:
                faceless.append(item.name)
        complete = True
    except KeyboardInterrupt:
        _error("interrupted")
        failures += 1
    finally:
        if table is not None:
            written = table.close(complete=complete)
            if written and not complete:
                _error(f"incomplete results left in {written}")
    if require_face:
        for name in faceless:
            _error(f"{name}: no face found (--require-face)")
    sys.exit(EXIT_FAILED if failures or (require_face and faceless) else 0)


def _predict_parquet(sources, out, model, workers, scheduler, partition_size, overwrite,
                     quiet, options, others):
    """``predict --parquet``: :func:`mtlfaces.distributed.analyze_to_parquet`."""
    given = [name for name, value in others.items() if value is not None]
    if given:
        raise click.UsageError(f"{', '.join(given)} cannot go with --parquet (its output is "
                               "the Parquet partitions, with every column of --csv "
                               "--probabilities)")
    if workers is not None and scheduler is not None:
        raise click.UsageError("choose one of --workers (a local cluster) and --scheduler "
                               "(an existing one)")
    from . import distributed
    from ._serialization import ModelFileError

    try:
        manifest = distributed.analyze_to_parquet(
            list(sources), out, model, scheduler=scheduler, workers=workers,
            partition_size=partition_size or "auto", overwrite=overwrite,
            progress=not quiet and sys.stdout.isatty(), **options)
    except (ValueError, ModelFileError, distributed.DistributedError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the output folder cannot be made or written
        raise click.ClickException(f"{out}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        _error(f"interrupted; the finished partitions are in {out}: run the same command "
               "again to resume")
        sys.exit(EXIT_FAILED)
    parts = manifest["partitions"]
    resumed = sum(bool(p.get("resumed")) for p in parts)
    if not quiet:
        click.echo(f"{out}: {manifest['inputs']} inputs in {len(parts)} partitions"
                   + (f" ({resumed} kept from an earlier run)" if resumed else "")
                   + f": {manifest['faces']} faces, {manifest['no_face']} without a face, "
                   f"{manifest['errors']} errors")
    shown = 20
    for _, message in distributed.error_rows(out, limit=shown):
        _error(message)
    if manifest["errors"] > shown:
        _error(f"... and {manifest['errors'] - shown} more: the rows of status 'error' in "
               f"{out} hold them all")
    sys.exit(EXIT_FAILED if manifest["errors"] else 0)


def _predict_image(analyzer, item, table, annotate_dir, summary):
    """Classify one image; (read, faces found)."""
    import cv2

    from .images import ImageError
    from .pipeline import error_record

    try:
        frame = analyzer.image(item.value, item.name)
    except ImageError as exc:
        _error(str(exc))
        if table is not None:
            table.write(error_record(item.name, exc))
        return False, False
    if summary:
        click.echo(_summary(frame.source, frame.faces))
        if frame.scale < 1:
            from .faces import HOG_MIN_FACE

            click.echo(f"  (detected on a copy shrunk to {frame.scale:.0%} by --max-side: "
                       f"faces under ~{HOG_MIN_FACE / frame.scale:.0f} px are missed)")
    if table is not None:
        for row in frame.records(status_rows=True):
            table.write(row)
    if annotate_dir:
        from .annotate import annotate

        path = frame.source
        out = _annotated_path(annotate_dir, path, ".png" if path.lower().endswith(
            (".gif", ".tif", ".tiff", ".webp")) or item.kind == "array" else None)
        os.makedirs(annotate_dir, exist_ok=True)
        drawn = annotate(frame.image, frame.faces)
        if not cv2.imwrite(out, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
            _error(f"{out}: could not write the annotated image")
            return False, bool(frame.faces)
    return True, bool(frame.faces)


def _predict_video(analyzer, item, table, annotate_dir, video_format, summary):
    import cv2

    from .annotate import annotate
    from .video import VideoError, VideoReader, VideoWriter

    from .pipeline import error_record

    try:
        reader = VideoReader(item.value)
    except VideoError as exc:
        _error(str(exc))
        if table is not None:
            table.write(error_record(item.name, exc))
        return False, False
    writer = None
    if annotate_dir:
        target = _annotated_path(annotate_dir, f"webcam{item.value}" if item.kind == "webcam"
                                 else item.value, "." + video_format)
        try:
            writer = VideoWriter(target, reader.fps, (reader.width, reader.height))
        except VideoError as exc:
            _error(str(exc))
            reader.close()
            return False, False
    max_frames = analyzer.max_frames
    total = reader.frame_count if max_frames is None else min(
        max_frames, reader.frame_count or max_frames)
    frames = faces_seen = 0
    tracks = set()
    start = time.perf_counter()
    interrupted = False
    failed = None
    try:
        with click.progressbar(length=total, label=os.path.basename(item.name), file=sys.stderr,
                               show_pos=True, show_eta=True,
                               item_show_func=lambda _: f"{frames / max(1e-9, time.perf_counter() - start):.1f} frames/s") as bar:
            for frame in analyzer.video(reader, item.name):
                faces_seen += len(frame.faces)
                tracks.update(f.track for f in frame.faces)
                if table is not None:
                    for row in frame.records(status_rows=True):
                        table.write(row)
                if writer is not None:
                    writer.write(cv2.cvtColor(annotate(frame.image, frame.faces),
                                              cv2.COLOR_RGB2BGR))
                frames += 1
                if total:
                    bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    except VideoError as exc:  # a short read: the frames before it are kept, not passed off
        failed = str(exc)
    seconds = time.perf_counter() - start
    if writer is not None:
        if interrupted or failed:
            kept = writer.abort()
            what = f"interrupted after {frames} frames" if interrupted else failed
            _error(f"{what}; {kept} holds the {frames} frames processed")
        else:
            writer.finish()
    elif failed:
        _error(failed)
    if interrupted:
        raise KeyboardInterrupt
    if failed:
        if table is not None:
            table.write(error_record(item.name, failed))
        return False, faces_seen > 0
    if summary:
        click.echo(f"{item.name}: {frames} frames in {seconds:.1f}s "
                   f"({frames / max(seconds, 1e-9):.1f} frames/s), {faces_seen} face "
                   f"detections, {len(tracks)} tracked face(s)")
    return True, faces_seen > 0


# ----------------------------------------------------------------------- train
def _load_data(path, image_size, grayscale, fmt):
    """(X, y) from a CSV or a dataset path, with one clear error."""
    from . import datasets as D

    try:
        return D.load(path, format=fmt, image_size=image_size, grayscale=grayscale,
                      random_state=0)
    except (D.DatasetError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _held_back(y):
    """Rows not to train on: the fixed validation splits (the CSV's ``validation`` rows
    included) and any test split."""
    from . import datasets as D

    mask = D.validation_mask(y)
    if "split" in y:
        mask |= y["split"].astype(str).str.lower().isin(["test", "privatetest",
                                                          "publictest"]).to_numpy()
    return mask


def _subset(X, y, limit, seed=0):
    """At most ``limit`` rows, a seeded random subset in the original order."""
    import numpy as np

    if limit is None or limit >= len(X):
        return X, y
    keep = np.sort(np.random.RandomState(seed).permutation(len(X))[:limit])
    return X[keep], y.iloc[keep].reset_index(drop=True)


STAGES = {"joint": ("age", "gender", "emotion"), "age_gender": ("age", "gender"),
          "age_gender_emotion": ("age", "gender", "emotion")}


def _augment_settings(pairs):
    """``--augment-with NAME=VALUE`` options as an ``augment`` dict, checked."""
    from ._network import augmentation_spec

    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise click.BadParameter(f"{pair!r}: expected NAME=VALUE, e.g. zoom=0.1",
                                     param_hint="--augment-with")
        if name == "flip":
            if value.lower() not in ("true", "false"):
                raise click.BadParameter(f"flip={value!r}: expected true or false",
                                         param_hint="--augment-with")
            settings[name] = value.lower() == "true"
        elif name == "shift_interpolation":
            settings[name] = value
        else:
            try:
                settings[name] = float(value)
            except ValueError:
                raise click.BadParameter(f"{name}={value!r}: expected a number",
                                         param_hint="--augment-with") from None
    try:
        augmentation_spec(settings, owner="--augment-with")
    except ValueError as exc:
        raise click.BadParameter(str(exc).replace("--augment-with: ", ""),
                                 param_hint="--augment-with") from None
    return settings


@main.command()
@click.argument("data", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "utkface", "fer2013", "ckplus"]),
              default="auto", show_default=True, help="How to read DATA.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder: final.mtlfaces, best.mtlfaces, graphs/, history.json.")
@click.option("--stage", type=click.Choice(list(STAGES)), default="joint", show_default=True,
              help="joint: all tasks with masked labels (recommended); age_gender: the "
                   "reference's first stage; age_gender_emotion: grow the emotion head on "
                   "the trunk of --from.")
@click.option("--model", "from_model", type=click.Path(dir_okay=False), default=None,
              help="Continue training this model file (required for age_gender_emotion).")
@click.option("--from", "from_old", type=click.Path(dir_okay=False), default=None,
              hidden=True, help="Deprecated spelling of --model.")
@click.option("--include-validation", is_flag=True,
              help="Also train on the validation rows (the CSV's split column, or the fixed "
                   "validation splits of the datasets), which are held back by default so "
                   "that `mtlfaces evaluate --split validation` scores unseen faces.")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True,
              help="Passes over the training images.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Images per optimizer step.")
@click.option("--learning-rate", type=float, default=1e-3, show_default=True,
              help="Adam's step size.")
@click.option("--architecture", type=click.Choice(["bundled", "default"]), default="bundled",
              show_default=True,
              help="bundled: the bundled model's network (two convolutions per block, one "
                   "dense layer of 256; what recipes/train_pretrained.py trains); default: "
                   "MultiTaskFaceClassifier's defaults (one convolution per block, about "
                   "half the compute). Ignored with --model, which keeps its network.")
@click.option("--image-size", type=click.IntRange(min=8), default=48, show_default=True,
              help="Side of the network's square input, in pixels (the bundled model's: 48).")
@click.option("--validation-fraction", type=click.FloatRange(0.01, 0.5), default=0.1,
              show_default=True,
              help="Share of the training rows set aside to monitor training and stop early.")
@click.option("--patience", type=click.IntRange(min=1), default=5, show_default=True,
              help="Epochs without improvement of the monitored loss before stopping.")
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Random flips, rotations and whole-pixel shifts of the training images.")
@click.option("--augment-with", "augment_with", multiple=True, metavar="NAME=VALUE",
              help="Change one augmentation setting (repeatable): rotation, shift, zoom, "
                   "contrast, erase (numbers), flip (true/false), shift_interpolation "
                   "(nearest/bilinear); e.g. --augment-with zoom=0.1 --augment-with erase=0.25.")
@click.option("--class-weight", type=click.Choice(["none", "balanced"]), default="none",
              show_default=True, help="balanced: weight each class by the inverse of its "
                                      "frequency in the training rows.")
@click.option("--age-sigma", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="YEARS",
              help="Spread each face's age target over the age groups by a normal "
                   "distribution of this many years around its age (needs ages in years, "
                   "as UTKFace's and numeric CSV ages are).")
@click.option("--mixup", type=click.FloatRange(min=0), default=0.0, show_default=True,
              metavar="ALPHA",
              help="Blend each training face with another of its batch that has the same "
                   "labels given, and their targets alike (Beta(ALPHA, ALPHA) shares; "
                   "0 turns it off, 0.2 is mild).")
@click.option("--mixed-precision/--no-mixed-precision", default=False, show_default=True,
              help="bfloat16 compute (faster on CPUs with AMX/AVX-512 BF16).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use at most N images (a seeded random subset of the training rows).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the initial weights, shuffling, augmentation and --limit.")
@click.option("--verbose", type=click.IntRange(0, 2), default=2, show_default=True,
              help="Keras's progress: 0 none, 1 a bar per epoch, 2 a line per epoch.")
def train(data, fmt, out_dir, stage, from_model, from_old, include_validation, epochs,
          architecture, batch_size, learning_rate, image_size, validation_fraction, patience, augment,
          augment_with, class_weight, age_sigma, mixup, mixed_precision, limit, seed, verbose):
    """Train a model on DATA (a sample_dataset.csv-style CSV or a dataset path).

    Validation rows (the CSV's split column, or the datasets' fixed validation splits) are
    held back unless --include-validation is given.
    """
    if from_old:
        _deprecated("--from", "--model")
        from_model = from_model or from_old
    _quiet_tensorflow()
    if augment_with:
        if not augment:
            raise click.UsageError("--augment-with changes augmentation that --no-augment "
                                   "turns off; give one or the other")
        augment = _augment_settings(augment_with)
    if stage == "age_gender_emotion" and not from_model:
        raise click.UsageError("--stage age_gender_emotion needs --model MODEL (the "
                               "age_gender stage's model)")
    base = _load_classifier(from_model) if from_model else None
    if base is not None:
        image_size, grayscale = base.image_size, base.grayscale
    else:
        grayscale = True
    X, y = _load_data(data, image_size, grayscale, fmt)
    if not include_validation:
        held = _held_back(y)
        if held.any():
            click.echo(f"holding back {int(held.sum())} validation row(s) of {len(y)} "
                       "(--include-validation trains on them)", err=True)
            X, y = X[~held], y[~held].reset_index(drop=True)
        if not len(X):
            raise click.ClickException(f"{data}: every row is a validation row; "
                                       "--include-validation trains on them")
    X, y = _subset(X, y, limit, seed)
    tasks = [t for t in STAGES[stage] if t in y.columns and y[t].notna().any()]
    if not tasks:
        raise click.ClickException(f"{data}: no labels for the tasks of stage {stage} "
                                   f"({', '.join(STAGES[stage])})")
    if age_sigma is not None:
        from .datasets import with_age_in_years

        try:
            y = with_age_in_years(y)
        except ValueError:
            raise click.ClickException(f"{data}: --age-sigma spreads ages given in years over "
                                       "the age groups, but no age label there is in years"
                                       ) from None
    keep = y[tasks].notna().any(axis=1).to_numpy()
    X, y = X[keep], y.loc[keep, tasks].reset_index(drop=True)
    import keras

    from ._classifier import MultiTaskFaceClassifier

    os.makedirs(out_dir, exist_ok=True)
    checkpoint = os.path.join(out_dir, "checkpoints", "best.keras")
    os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
    callbacks = [keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss",
                                                 save_best_only=True)]
    params = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                  validation_fraction=validation_fraction, patience=patience, augment=augment,
                  class_weight=None if class_weight == "none" else "balanced",
                  age_sigma=age_sigma, mixup=mixup, mixed_precision=mixed_precision,
                  random_state=seed,
                  verbose=verbose, callbacks=callbacks)
    if base is not None:
        est = base.set_params(warm_start=True, tasks=tuple(tasks), **params)
    else:
        from ._classifier import ARCHITECTURES

        net = dict(ARCHITECTURES[architecture], image_size=image_size)
        est = MultiTaskFaceClassifier(tasks=tuple(tasks), **net, **params)
    click.echo(f"training on {len(X)} images, tasks {', '.join(tasks)}, stage {stage}, "
               f"{'the network of ' + from_model if base is not None else architecture + ' architecture'}",
               err=True)
    start = time.perf_counter()
    try:
        est.fit(X, y)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    seconds = time.perf_counter() - start
    final = est.save(os.path.join(out_dir, "final.mtlfaces"))
    if os.path.exists(checkpoint):
        best = keras.saving.load_model(checkpoint, compile=False, safe_mode=True)
        est.model_.set_weights(best.get_weights())
        est.save(os.path.join(out_dir, "best.mtlfaces"))
    from .evaluation import plot_history

    plots = plot_history(est.history_, os.path.join(out_dir, "graphs"))
    with open(os.path.join(out_dir, "history.json"), "w") as fh:
        json.dump({"stage": stage, "tasks": tasks, "seconds": round(seconds, 1),
                   "history": est.history_}, fh, indent=1)
    last = {k: round(v[-1], 4) for k, v in est.history_.items() if "accuracy" in k}
    click.echo(f"trained in {seconds:.0f}s; final epoch: "
               + ", ".join(f"{k} {v}" for k, v in sorted(last.items())))
    click.echo(f"wrote {final}, {len(plots)} plot(s) and history.json in {out_dir}")


# -------------------------------------------------------------------- evaluate
@main.command()
@click.argument("data", type=click.Path())
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="Model file (default: the bundled pretrained model).")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "utkface", "fer2013", "ckplus"]),
              default="auto", show_default=True, help="How to read DATA.")
@click.option("--split", default=None,
              help="Evaluate one split: 'validation' for the fixed validation splits (UTKFace "
                   "and CK+ hold-out parts, FER2013 PublicTest), a FER2013 Usage (Training...), "
                   "or a value of the CSV's split column.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Score at most N faces of the split (a seeded random subset).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write report.json, report.txt and confusion.png here.")
def evaluate(data, model, fmt, split, limit, out_dir):
    """Per-task accuracy, macro accuracy, confusion matrices and per-group breakdowns."""
    clf = _load_classifier(model)
    X, y = _load_data(data, clf.image_size, clf.grayscale, fmt)
    if split is not None:
        from . import datasets as D

        if split == "validation":  # the fixed splits the bundled model was validated on
            mask = D.validation_mask(y)
        else:
            mask = (y["split"] == split).to_numpy()
        if not mask.any():
            raise click.ClickException(f"{data}: no rows in split {split!r}")
        X, y = X[mask], y[mask].reset_index(drop=True)
    X, y = _subset(X, y, limit)  # after the split: --limit 2000 scores 2000 of its faces
    from .evaluation import evaluate as run, format_report, plot_confusion

    report = run(clf, X, y)
    if not report:
        raise click.ClickException(f"{data}: no labels for the model's tasks ({clf.tasks_})")
    text = format_report(report)
    click.echo(text)
    accuracies = [r["accuracy"] for r in report.values() if "accuracy" in r]
    if accuracies:  # the age in years is an error, not an accuracy
        click.echo(f"mean accuracy over tasks: {sum(accuracies) / len(accuracies):.3f}")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "report.json"), "w") as fh:
            json.dump(report, fh, indent=1)
        with open(os.path.join(out_dir, "report.txt"), "w") as fh:
            fh.write(text + "\n")
        written = ["report.json", "report.txt"]
        if plot_confusion(report, os.path.join(out_dir, "confusion.png")):
            written.append("confusion.png")
        click.echo(f"wrote {', '.join(written)} in {out_dir}")


# ------------------------------------------------------------------- benchmark
@main.command()
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="Model file (default: the bundled pretrained model).")
@click.option("--batch-sizes", default="1,8,64,256", show_default=True,
              help="Comma-separated batch sizes to time.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed runs per batch size (the median is reported).")
@click.option("--json", "json_out", metavar="PATH",
              help="Write one JSON line per batch size ('-' = stdout), as predict --json "
                   "writes one per face.")
def benchmark(model, batch_sizes, repeats, json_out):
    """Classification throughput (faces/s) of a model at several batch sizes.

    Times the network alone on face crops (no detection, no read-out); with mirror
    averaging on (the bundled model's default), each face is classified twice.
    """
    from .evaluation import classification_throughput

    try:
        sizes = [int(s) for s in batch_sizes.split(",")]
    except ValueError:
        raise click.BadParameter(f"{batch_sizes!r} is not a comma-separated list of integers",
                                 param_hint="--batch-sizes") from None
    clf = _load_classifier(model)
    flip = bool(clf.test_time_flip)
    click.echo(f"model: {model or 'bundled'}; mirror averaging (test_time_flip): "
               f"{'on, 2 network passes per face' if flip else 'off'}; input "
               f"{clf.model_.input_shape[1]}×{clf.model_.input_shape[2]}; median of {repeats}",
               err=json_out == "-")
    rows = classification_throughput(clf, sizes, repeats)
    table = None if not json_out else (sys.stdout if json_out == "-" else None)
    lines = []
    for row in rows:
        row = {"model": model or "bundled", "test_time_flip": flip, **row}
        lines.append(json.dumps(row))
        if json_out != "-":
            click.echo(f"batch {row['batch']:>4}: {row['median_ms']:8.2f} ms  "
                       f"{row['faces_per_s']:9.1f} faces/s")
    if json_out == "-":
        table.write("\n".join(lines) + "\n")
    elif json_out:
        tmp = json_out + ".partial"
        with open(tmp, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(tmp, json_out)


# ----------------------------------------------------------------------- serve
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface: mind who can reach it).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Port to listen on.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Model file (default: the bundled pretrained model).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes, each with its own model and engine thread.")
@click.option("--token", envvar="MTLFACES_TOKEN", default=None,
              help="Require 'Authorization: Bearer TOKEN' on the API (also read from "
                   "MTLFACES_TOKEN, which keeps it out of the process list).")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="Let pages from ORIGIN call the API (repeatable; no CORS otherwise).")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=20.0,
              show_default=True, help="Largest upload accepted.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds a request may take before it gets 504.")
def serve(host, port, model, workers, token, cors_origins, max_upload_mb, timeout):
    """Serve the model over HTTP: POST /v1/analyze, a web page at /, docs at /openapi.json.

    The model loads once per worker and stays warm; concurrent requests are classified
    together. SIGTERM or Ctrl-C finishes the requests in flight, then exits.
    """
    _quiet_tensorflow()
    import uvicorn

    settings = {"model": model, "token": token, "cors_origins": list(cors_origins) or None,
                "max_upload_bytes": int(max_upload_mb * 2**20), "timeout_s": timeout}
    click.echo(f"mtlfaces serving on http://{host}:{port}/ ({workers} worker(s)"
               f"{', token required' if token else ''})", err=True)
    if workers == 1:
        from .service import create_app

        uvicorn.run(create_app(**settings), host=host, port=port, log_level="warning")
    else:
        os.environ["MTLFACES_SERVE"] = json.dumps(settings)
        uvicorn.run("mtlfaces.service:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_level="warning")


# --------------------------------------------------------------- build-dataset
@main.command("build-dataset")
@click.argument("data", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              hidden=True, help="Deprecated spelling of the DATA argument.")
@click.option("--out", "out_dir", type=click.Path(), required=True,
              help="Output folder: dataset.csv and images/ (a path ending in .csv, the old "
                   "meaning, is deprecated).")
@click.option("--image-size", type=click.IntRange(min=8), default=48, show_default=True,
              help="Side of the square images written, in pixels (the bundled model's: 48).")
def build_dataset(data, data_dir, out_dir, image_size):
    """Merge UTKFace + FER2013 + CK+ from the folder DATA into one CSV (the
    sample_dataset.csv format) and its images, as `mtlfaces train` reads them."""
    if data_dir:
        _deprecated("--data-dir", "the DATA argument")
        data = data or data_dir
    if not data:
        raise click.UsageError("missing the DATA folder (holding UTKFace.tar.gz, "
                               "fer2013.tar.gz, CK+48.zip or their extracted folders)")
    data_dir = data
    if out_dir.lower().endswith(".csv"):
        _deprecated("--out FILE.csv", "--out FOLDER (dataset.csv is written there)")
        out = out_dir
    else:
        out = os.path.join(out_dir, "dataset.csv")
    import numpy as np
    import pandas as pd

    from . import datasets as D

    parts = []
    for loader, names in ((D.load_utkface, ("UTKFace.tar.gz", "UTKFace")),
                          (D.load_fer2013, ("fer2013.tar.gz", "fer2013", "fer2013.csv")),
                          (D.load_ckplus, ("CK+48.zip", "CK+48"))):
        path = next((os.path.join(data_dir, n) for n in names
                     if os.path.exists(os.path.join(data_dir, n))), None)
        if path is None:
            _error(f"{data_dir}: none of {', '.join(names)} found; skipping")
            continue
        try:
            X, y = loader(path, image_size=image_size)
        except (D.DatasetError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        if loader is not D.load_fer2013:  # FER2013 keeps its own Training / PublicTest
            y = y.assign(split=np.where(D.validation_mask(y), "validation", "train"))
        click.echo(f"{path}: {len(X)} images", err=True)
        parts.append((X, y))
    if not parts:
        raise click.ClickException(f"{data_dir}: no dataset found")
    X = np.concatenate([p[0] for p in parts])
    y = pd.concat([p[1] for p in parts], ignore_index=True)
    D.write_csv(X, y, out)
    click.echo(f"wrote {out} ({len(X)} rows)")


if __name__ == "__main__":  # pragma: no cover
    main()
