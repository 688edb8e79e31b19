"""colorjax.export: each export, reloaded (jax.export.deserialize / onnxruntime), matches colorjax's forward."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.cli import export as export_cli
from colorjax.inference import export
from colorjax.models import get_model

SIZES = [
    (2, 32, 48),
    (1, 40, 24),
]  # two image sizes, neither square nor equal to the export's check size


def tiny(name: str, **kwargs):
    """A small model with its initial kernels, random biases and random BatchNorm statistics."""
    model = get_model(name, **kwargs)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False)
    rng = np.random.default_rng(0)

    def randomise(path, leaf):
        name = path[-1].key
        if name == "var":
            return leaf * rng.uniform(0.5, 2.0, leaf.shape).astype(np.float32)
        if name in ("mean", "bias"):
            return leaf + 0.1 * rng.standard_normal(leaf.shape).astype(np.float32)
        return leaf

    return model, jax.tree_util.tree_map_with_path(randomise, variables)


def assert_matches(model, variables, run, shape, names):
    L = np.random.default_rng(sum(shape)).uniform(0, 100, (*shape, 1)).astype(np.float32)
    expected = jax.jit(lambda L: model.apply(variables, L, train=False))(L)
    got = run(L)
    for name in names:
        assert got[name].shape == expected[name].shape, name
        error = float(np.max(np.abs(np.asarray(expected[name]) - got[name])))
        assert error <= 1e-4, f"{name} at {shape}: {error:.2e}"
    assert np.ptp(got["chroma"]) > 1.0  # not a constant picture


@pytest.mark.parametrize("name, kwargs", [("regression", {"width": 8}), ("eccv16", {"width": 1 / 8})])
def test_stablehlo_export_is_polymorphic_and_matches(tmp_path, name, kwargs):
    model, variables = tiny(name, **kwargs)
    manifest = export.export_model(model, variables, tmp_path, "stablehlo", size=32, settings={})
    assert manifest["input"]["shape"] == ["batch", "height", "width", 1]
    exported = jax.export.deserialize(bytearray((tmp_path / "model.stablehlo").read_bytes()))
    names = manifest["outputs"]
    assert names == (["chroma", "logits"] if name == "eccv16" else ["chroma"])

    def run(L):
        return {k: np.asarray(v) for k, v in exported.call(jnp.asarray(L)).items()}

    for shape in SIZES:
        assert_matches(model, variables, run, shape, names)
    assert json.loads((tmp_path / "export.json").read_text())["format"] == "stablehlo"


def test_siggraph17_stablehlo_takes_any_height_and_width_that_are_multiples_of_8(tmp_path):
    """The docs said batch, height and width; the export was batch-only at a fixed size, said only in passing."""
    model, variables = tiny("siggraph17", width=1 / 8)
    manifest = export.export_model(model, variables, tmp_path, "stablehlo", size=32, settings={})
    assert manifest["input"]["shape"] == ["batch", "8*h", "8*w", 1]
    assert manifest["polymorphic_in"] == "batch, height and width (multiples of 8)"
    exported = jax.export.deserialize(bytearray((tmp_path / "model.stablehlo").read_bytes()))

    def run(L):
        return {k: np.asarray(v) for k, v in exported.call(jnp.asarray(L)).items()}

    for shape in [(2, 32, 48), (1, 40, 24)]:
        assert_matches(model, variables, run, shape, ["chroma"])


def test_siggraph17_exports_to_onnx_at_a_multiple_of_8(tmp_path):
    """jax2onnx 0.17 wrote SIGGRAPH17's edge padding (by zero rows at a multiple of 8) as a Concat onnxruntime
    rejected: no ONNX export at any shape."""
    pytest.importorskip("jax2onnx")
    from colorjax.inference.onnx_runtime import OnnxModel

    model, variables = tiny("siggraph17", width=1 / 8)
    manifest = export.export_model(model, variables, tmp_path, "onnx", size=32, settings={})
    assert manifest["input"]["shape"] == ["batch", 32, 32, 1]
    onnx_model = OnnxModel(tmp_path / "model.onnx")
    for batch in (1, 3):
        assert_matches(model, variables, onnx_model, (batch, 32, 32), ["chroma"])


def test_onnx_export_of_eccv16_is_polymorphic_and_matches_in_onnxruntime(tmp_path):
    pytest.importorskip("jax2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    model, variables = tiny("eccv16", width=1 / 8)
    manifest = export.export_model(model, variables, tmp_path, "onnx", size=32, settings={})
    assert manifest["input"]["shape"] == ["batch", "height", "width", 1]
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["L"]
    assert [o.name for o in session.get_outputs()] == ["chroma", "logits"]

    def run(L):
        return dict(zip(["chroma", "logits"], session.run(None, {"L": L}), strict=True))

    for shape in SIZES:
        assert_matches(model, variables, run, shape, ["chroma", "logits"])


def test_onnx_export_of_a_model_that_needs_a_fixed_size(tmp_path, capfd, caplog):
    pytest.importorskip("jax2onnx")
    from colorjax.inference.onnx_runtime import OnnxModel, OnnxRuntimeError

    model, variables = tiny("regression", width=8)
    manifest = export.export_model(model, variables, tmp_path, "onnx", size=40, settings={})
    assert manifest["input"]["shape"] == ["batch", 40, 40, 1]  # stride-2 'SAME' pads depend on H, W
    onnx_model = OnnxModel(tmp_path / "model.onnx")
    for batch in (1, 3):
        assert_matches(model, variables, onnx_model, (batch, 40, 40), ["chroma"])
    # The libraries' notes stay off the console: onnx_ir's "value type ... is not known" warnings, onnxruntime's
    # ANSI-coloured shape-inference warnings.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("onnx_ir")] == []
    err = capfd.readouterr().err
    assert "is not known" not in err and "\x1b[" not in err, err[-2000:]
    with pytest.raises(OnnxRuntimeError, match=r"exported for input \('batch', 40, 40, 1\); axis 1 is 32"):
        onnx_model(np.zeros((1, 32, 40, 1), np.float32))


def test_export_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    model, variables = tiny("regression", width=4)
    with pytest.raises(export.ExportError, match="is not empty; choose a new --output"):
        export.export_model(model, variables, tmp_path / "full", "stablehlo", size=32, settings={})
    assert export_cli.main(["--weights", "eccv61", "--format", "onnx", "--output", str(tmp_path / "o")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "known names: eccv16, siggraph17" in error
    with pytest.raises(SystemExit) as exit_:
        export_cli.main(["--help"])
    assert exit_.value.code == 0


def test_a_failed_export_leaves_no_folder_and_no_temporary(tmp_path, monkeypatch):
    model, variables = tiny("regression", width=4)

    def broken_check(folder, fmt_hint=None):
        assert (folder / "model.stablehlo").is_file()  # the model was written: the export fails half-way
        raise RuntimeError("check failed")

    monkeypatch.setattr(export, "load_export", broken_check)
    with pytest.raises(RuntimeError, match="check failed"):
        export.export_model(model, variables, tmp_path / "out", "stablehlo", size=32, settings={})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    (tmp_path / "empty").mkdir()  # an empty folder is a fine --output: the export replaces it whole
    manifest = export.export_model(model, variables, tmp_path / "empty", "stablehlo", size=32, settings={})
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["export.json", manifest["file"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
