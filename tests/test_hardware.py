"""mixed_precision=True on a CPU that would emulate bfloat16: fit says so."""

import warnings

import numpy as np
import pytest

from mtlfaces import MultiTaskFaceClassifier, _hardware

TINY = dict(image_size=8, filters=(4,), dense_units=(8,), epochs=1, batch_size=16,
            augment=False, validation_fraction=0.0, random_state=0, verbose=0)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 fma\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert _hardware.cpu_flags(str(info)) == {"fpu", "sse2", "avx2", "fma"}
    assert _hardware.cpu_model(str(info)) == "Some CPU"
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd\n")
    assert _hardware.cpu_flags(str(tmp_path / "arm")) is None
    assert _hardware.cpu_flags(str(tmp_path / "missing")) is None
    assert _hardware.cpu_model(str(tmp_path / "arm")) is None
    assert _hardware.bf16_instructions({"amx_bf16", "avx512_bf16", "avx2"}) == [
        "amx_bf16", "avx512_bf16"]
    assert _hardware.bf16_instructions({"avx2"}) == []


@pytest.mark.parametrize("flags, accelerator, slow", [
    ({"avx2", "fma"}, False, True),
    ({"avx512f", "avx512_bf16"}, False, False),
    ({"amx_bf16"}, False, False),
    ({"avx2"}, True, False),  # a GPU computes: the CPU does not matter
])
def test_slow_bfloat16_only_where_it_would_be_emulated(monkeypatch, flags, accelerator, slow):
    monkeypatch.setattr(_hardware, "accelerator_in_use", lambda: accelerator)
    msg = _hardware.slow_bfloat16("Est", flags)
    assert (msg is not None) == slow
    if slow:
        assert msg.startswith("Est: mixed_precision=True") and "mixed_precision=False" in msg


def test_unknown_flags_say_nothing(monkeypatch):
    monkeypatch.setattr(_hardware, "cpu_flags", lambda path=None: None)
    monkeypatch.setattr(_hardware, "accelerator_in_use", lambda: False)
    assert _hardware.slow_bfloat16("Est") is None


@pytest.mark.parametrize("flags, warns", [({"avx2"}, True), ({"amx_bf16"}, False)])
def test_fit_warns_before_an_emulated_bfloat16_training(monkeypatch, flags, warns):
    monkeypatch.setattr(_hardware, "cpu_flags", lambda path=None: flags)
    monkeypatch.setattr(_hardware, "accelerator_in_use", lambda: False)
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (32, 8, 8)).astype(np.uint8)
    y = np.array(["a", "b"] * 16, dtype=object)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MultiTaskFaceClassifier(mixed_precision=True, **TINY).fit(X, y)
        MultiTaskFaceClassifier(mixed_precision=False, **TINY).fit(X, y)
    emulated = [w for w in caught if "without bfloat16 instructions" in str(w.message)]
    assert len(emulated) == (1 if warns else 0)
    if warns:
        assert str(emulated[0].message).startswith("MultiTaskFaceClassifier: ")
