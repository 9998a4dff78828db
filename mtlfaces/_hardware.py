"""What the processor can do, for the settings whose speed depends on it.

``mixed_precision=True`` computes in bfloat16. On a GPU, or on a CPU with bfloat16
instructions (AVX-512 BF16, AMX), that is faster than float32; on a CPU without them
TensorFlow emulates bfloat16 and a training step is several times slower than in float32
(``docs/training.md``). :func:`slow_bfloat16` says so before a fit starts.
"""

import os

#: /proc/cpuinfo flags of the x86 instructions that compute in bfloat16.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = "/proc/cpuinfo"


def _cpuinfo(field, path=CPUINFO):
    """The first processor's ``field`` in /proc/cpuinfo, or None where it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() == field:
                    return value.strip()
    except OSError:
        return None
    return None


def cpu_flags(path=CPUINFO):
    """The first processor's feature flags (a set), or None where they cannot be read
    (not Linux, or a file without a ``flags`` line, as on ARM)."""
    flags = _cpuinfo("flags", path)
    return None if flags is None else set(flags.split())


def cpu_model(path=CPUINFO):
    """The processor's name as /proc/cpuinfo gives it (``model name``), or None."""
    return _cpuinfo("model name", path)


def accelerator_in_use():
    """Whether Keras's backend computes on a GPU (or another accelerator) here."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_logical_devices("GPU"))
        if backend == "jax":
            import jax

            return jax.default_backend() != "cpu"
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # a backend that cannot tell: assume it knows its hardware
        return True
    return False


def bf16_instructions(flags=None):
    """The CPU's bfloat16 instructions among :data:`BF16_FLAGS` (a sorted list, empty where
    it has none), or None where its flags are unknown; ``flags`` defaults to
    :func:`cpu_flags`."""
    flags = cpu_flags() if flags is None else flags
    return None if flags is None else sorted(f for f in BF16_FLAGS if f in flags)


def slow_bfloat16(owner, flags=None):
    """A warning's text when bfloat16 would be emulated here (a CPU whose flags are known
    and lack :data:`BF16_FLAGS`, and no accelerator), else None. ``owner`` names the
    estimator in the message; ``flags`` defaults to :func:`cpu_flags`."""
    if bf16_instructions(flags) != [] or accelerator_in_use():
        return None
    cpu = f" ({os.cpu_count()} cores)" if os.cpu_count() else ""
    return (f"{owner}: mixed_precision=True on a CPU{cpu} without bfloat16 instructions "
            f"(no {' or '.join(BF16_FLAGS)} in {CPUINFO}): bfloat16 is emulated there and "
            "trains several times slower than float32; set mixed_precision=False")
