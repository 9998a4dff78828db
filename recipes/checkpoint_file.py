"""A stopped training run as one file, to commit and resume on a fresh machine.

    python recipes/train_pretrained.py --pack-checkpoint recipes/checkpoints/run.npz
    python recipes/train_pretrained.py --unpack-checkpoint recipes/checkpoints/run.npz --resume

:func:`pack` writes what ``--resume`` needs from a recipe's ``--checkpoint-dir`` into one
compressed ``.npz``: the run's arguments and progress, every phase's log, the models of the
finished phases, and the per-epoch backup of the phase in progress (weights, optimizer state,
schedule step). It leaves out what a resume rewrites before reading: a phase's
``.weights.h5``, which ``ModelCheckpoint`` writes again after the next epoch (phase 1 when it
keeps its best epoch is the exception: that file holds the best so far, and is packed).

To stay under the size a repository should hold, the optimizer's moment estimates are stored
rounded to bfloat16 (8 bits of mantissa; the weights and the step count stay exact): a run
resumed from the file continues from moments within 0.4 % of the stopped run's, so it is not
bit-identical to an uninterrupted run. :func:`unpack` writes the directory back, refusing to
write over a run it holds. The file holds arrays, JSON and CSV only; nothing in it runs code.
"""

import io
import json
import os

import numpy as np

FORMAT = "mtlfaces-checkpoint/1"
#: Datasets under this group of a Keras ``.weights.h5`` are the optimizer's.
OPTIMIZER = "optimizer/"


def _bf16_bits(values):
    """float32 → the upper 16 bits of each value, rounded to nearest even (bfloat16)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)


def _from_bf16_bits(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _needed(checkpoint_dir):
    """Files of ``checkpoint_dir`` that a resume reads, relative to it."""
    with open(os.path.join(checkpoint_dir, "progress.json")) as fh:
        progress = json.load(fh)
    with open(os.path.join(checkpoint_dir, "run.json")) as fh:
        args = json.load(fh)["args"]
    keep_best = args.get("phase1_keep", "best") == "best"
    out = []
    for root, _, files in os.walk(checkpoint_dir):
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(root, name), checkpoint_dir)
            phase = rel.split(os.sep)[0].split("_")[0].split(".")[0]
            if rel.endswith(".tmp"):
                continue
            if rel.endswith(".weights.h5") and os.sep not in rel:
                # Rewritten after the next epoch; phase 1's best-so-far is not.
                if not (phase == "phase1" and keep_best and phase not in progress["phases"]):
                    continue
            if "_backup" + os.sep in rel and phase in progress["phases"]:
                continue  # a finished phase's backup is deleted anyway
            out.append(rel)
    return out


def pack(checkpoint_dir, path):
    """Write the run in ``checkpoint_dir`` into the file ``path`` (whole or not at all).

    Returns the file's size in bytes.

    Raises
    ------
    FileNotFoundError
        When ``checkpoint_dir`` holds no recipe run (no ``run.json``/``progress.json``).
    """
    import h5py

    for name in ("run.json", "progress.json"):
        if not os.path.exists(os.path.join(checkpoint_dir, name)):
            raise FileNotFoundError(f"{checkpoint_dir} holds no recipe run (no {name}); "
                                    "give the --checkpoint-dir of a run")
    arrays, manifest = {}, {"format": FORMAT, "files": []}
    for i, rel in enumerate(_needed(checkpoint_dir)):
        full = os.path.join(checkpoint_dir, rel)
        entry = {"path": rel.replace(os.sep, "/")}
        if rel.endswith(".h5"):
            entry.update(kind="h5", groups={}, datasets=[])
            with h5py.File(full, "r") as h5:
                entry["groups"][""] = {k: _attr(v) for k, v in h5.attrs.items()}

                def visit(name, obj, entry=entry, i=i):
                    attrs = {k: _attr(v) for k, v in obj.attrs.items()}
                    if isinstance(obj, h5py.Group):
                        entry["groups"][name] = attrs
                        return
                    key = f"f{i}/{len(entry['datasets'])}"
                    value = obj[()]
                    lossy = (name.startswith(OPTIMIZER) and value.dtype == np.float32
                             and value.ndim > 0)
                    arrays[key] = _bf16_bits(value) if lossy else np.asarray(value)
                    entry["datasets"].append(dict(name=name, key=key, attrs=attrs,
                                                  bfloat16=bool(lossy)))

                h5.visititems(visit)
        else:
            entry["kind"] = "bytes"
            with open(full, "rb") as fh:
                arrays[f"f{i}"] = np.frombuffer(fh.read(), dtype=np.uint8)
        manifest["files"].append(entry)
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(buffer.getvalue())
    os.replace(tmp, path)
    return os.path.getsize(path)


def _attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value.tolist() if isinstance(value, np.ndarray) else value


def unpack(path, checkpoint_dir):
    """Write the run packed in ``path`` into ``checkpoint_dir``; returns its file names.

    Raises
    ------
    ValueError
        When ``path`` is not a packed run, or ``checkpoint_dir`` already holds a run.
    """
    import h5py

    if os.path.exists(os.path.join(checkpoint_dir, "run.json")):
        raise ValueError(f"{checkpoint_dir} already holds a run (run.json); give another "
                         "--checkpoint-dir, or delete it to replace it with the packed run")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        manifest = json.loads(arrays.pop("manifest").tobytes())
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a packed training run ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a packed training run (format "
                         f"{manifest.get('format')!r}, expected {FORMAT!r})")
    root = os.path.abspath(checkpoint_dir)
    written = []
    for i, entry in enumerate(manifest["files"]):
        full = os.path.abspath(os.path.join(root, entry["path"]))
        if not full.startswith(root + os.sep):
            raise ValueError(f"{path}: member {entry['path']!r} lies outside the run's folder")
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if entry["kind"] == "bytes":
            with open(full, "wb") as fh:
                fh.write(arrays[f"f{i}"].tobytes())
        else:
            with h5py.File(full, "w") as h5:
                for name, attrs in sorted(entry["groups"].items(), key=lambda kv: kv[0]):
                    group = h5 if name == "" else h5.require_group(name)
                    group.attrs.update(attrs)
                for d in entry["datasets"]:
                    value = arrays[d["key"]]
                    if d["bfloat16"]:
                        value = _from_bf16_bits(value)
                    h5.create_dataset(d["name"], data=value).attrs.update(d["attrs"])
        written.append(entry["path"])
    return written
