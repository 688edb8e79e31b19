"""The benchmarks' honesty: FLOPs from the lowered program equal XLA's CPU-compiled count, MFU only against a known
bf16 peak, and the device printed."""

import jax
import jax.numpy as jnp
import pytest

from colorjax.bench import devices
from colorjax.inference import cpu
from colorjax.models import get_model


def _tiny_eccv16():
    model = get_model("eccv16", width=0.125)
    L = jax.random.uniform(jax.random.key(0), (2, 32, 32, 1), maxval=100.0)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), L))
    variables = jax.tree.map(lambda s: jnp.full(s.shape, 0.01, s.dtype), shapes)
    return model, variables, L


def _compiled_flops(jitted, *args) -> float:
    return jitted.lower(*args).compile().cost_analysis()["flops"]


def test_lowered_flops_equal_the_cpu_compiled_count_for_inference_and_a_training_gradient():
    model, variables, L = _tiny_eccv16()
    forward = jax.jit(model.apply)

    def loss(params):
        outputs, _ = model.apply({**variables, "params": params}, L, train=True, mutable=["batch_stats"])
        return jnp.mean(outputs["logits"] ** 2)

    gradient = jax.jit(jax.grad(loss))
    for jitted, args in ((forward, (variables, L)), (gradient, (variables["params"],))):
        lowered, compiled = devices.lowered_flops(jitted, *args), _compiled_flops(jitted, *args)
        assert lowered > 1e7  # the convolutions are counted (a GPU-compiled count leaves them out)
        # XLA's passes rewrite some elementwise work (BatchNorm, the gradient's reductions): 0.002% of the forward,
        # 0.5% of the gradient at this 1/8 width; the convolutions are counted identically.
        assert lowered == pytest.approx(compiled, rel=1e-2)
    # The gradient costs about twice the forward on top of it (a training step ~3x inference).
    ratio = devices.lowered_flops(gradient, variables["params"]) / devices.lowered_flops(forward, variables, L)
    assert 2.0 < ratio < 4.0


@pytest.mark.parametrize(
    "kind, peak",
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("TPU v4", 275e12),
        ("TPU v5 lite", 197e12),
        ("TPU v5p", 459e12),
        ("TPU v6 lite", 918e12),
        ("cpu", None),
        ("AMD EPYC 9654", None),
    ],
)
def test_bf16_peak_by_device_kind(kind, peak):
    assert devices.peak_bf16_flops(kind) == peak


def test_no_mfu_without_a_known_peak_and_the_device_is_described():
    cpu = jax.devices("cpu")[0]
    columns = devices.speed_columns(2e12, 0.5, cpu)
    assert columns == {"tflops_per_s": 4.0}
    assert "CPU" in devices.describe_device(cpu) and "no MFU" in devices.describe_device(cpu)


def test_cpu_isa_classes_from_cpuinfo_flags(tmp_path):
    assert cpu.cpu_isa(frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})) == "AMX"
    assert cpu.cpu_isa(frozenset({"avx2", "avx512f", "avx512_bf16"})) == "AVX512-BF16"
    assert cpu.cpu_isa(frozenset({"avx2", "avx512f"})) == "AVX-512"
    assert cpu.cpu_isa(frozenset({"sse4_2", "avx2"})) == "AVX2"
    assert cpu.cpu_isa(frozenset({"sse4_2"})) == "SSE"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9654\nflags\t\t: fpu avx2 avx512f\n\nprocessor\t: 1\n")
    assert cpu.cpu_description(cpuinfo) == "AMD EPYC 9654, AVX-512"
    # XLA_FLAGS' --xla_cpu_max_isa caps the class XLA compiles for, never widens it.
    assert cpu.this_isa_class(cpuinfo, {"XLA_FLAGS": ""}) == "AVX-512"
    assert cpu.this_isa_class(cpuinfo, {"XLA_FLAGS": "--xla_cpu_use_onednn=true --xla_cpu_max_isa=AVX2"}) == "AVX2"
    assert cpu.this_isa_class(cpuinfo, {"XLA_FLAGS": "--xla_cpu_max_isa=AMX"}) == "AVX-512"
    assert cpu.xla_isa_class("AVX512-BF16", "--xla_cpu_max_isa=avx512_vnni") == "AVX-512"
    assert cpu.this_isa_class(tmp_path / "missing", {}) == "AVX2"


def test_the_headline_is_fastest_against_fastest_whatever_the_precisions():
    """The AVX2 case that made `bench zhang` print 10.84x: colorjax bf16 against PyTorch's slow bf16 autocast, while
    PyTorch's own fp32 beats colorjax's fastest. The headline must say colorjax is slower."""
    rows = [
        {"contender": "colorjax jit", "precision": "float32", "ms_per_image": 700.0},
        {"contender": "colorjax jit", "precision": "bfloat16", "ms_per_image": 800.0},
        {"contender": "pytorch 2.13 eager cpu, inference_mode", "precision": "float32", "ms_per_image": 535.0},
        {"contender": "pytorch 2.13 eager cpu, autocast", "precision": "bfloat16", "ms_per_image": 8670.0},
    ]
    headline = devices.versus_fastest(rows, "ms_per_image")
    assert headline.endswith("0.76x") and "(float32) 535 ms_per_image" in headline, headline
    assert [round(row.get("vs_pytorch_fastest", 0), 3) for row in rows] == [0.764, 0.669, 0, 0]
    assert devices.versus_fastest(rows[:2], "ms_per_image") is None  # no PyTorch rows: no ratio
    columns = devices.machine_columns()
    assert (
        set(columns) == {"cpu", "threads", "xla_flags", "xla_isa", "aten_cpu", "onednn_max_isa"}
        and "XLA " in columns["threads"]
    )


def test_bench_ddcolor_quick_runs_both_frameworks_at_a_tiny_width(tmp_path, monkeypatch, capsys):
    """`python -m colorjax.bench ddcolor --quick`: the test-width network at 64 x 64, batch 1 and 2, colorjax and
    (where torch and modelscope are installed) the authors' PyTorch modules with the same weights. No timing
    assertions: the rows, their ratios and the agreement of the two float32 outputs."""
    import json

    from colorjax.bench import ddcolor
    from colorjax.cli import bench

    for key in ("MODELS", "SIZES", "BATCHES", "BUDGET_S", "SKIP"):
        monkeypatch.delenv(f"COLORJAX_BENCH_{key}", raising=False)
    out = tmp_path / "rows.json"
    assert bench.main(["ddcolor", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "DDColor bench: " in printed and "threads: XLA " in printed
    rows = json.loads(out.read_text())
    assert {(row["size"], row["batch"]) for row in rows} == {(64, 1), (64, 2)}
    assert all(row["model"] == "test" and row["ms_per_image"] > 0 and "cpu" in row for row in rows)
    ours = [row for row in rows if row["contender"] == "colorjax jit"]
    assert sorted(row["precision"] for row in ours) == ["bfloat16", "bfloat16", "float32", "float32"]
    if any(row["contender"].startswith("pytorch") for row in rows):
        assert all(row["vs_pytorch"] > 0 and row["vs_pytorch_fastest"] > 0 for row in ours)
        agreement = [row["max_ab_diff_vs_pytorch"] for row in rows if "max_ab_diff_vs_pytorch" in row]
        assert len(agreement) == 2 and max(agreement) < 1e-3
    # The options: flags win over the defaults, and a size the encoder cannot take is refused.
    environ = {"COLORJAX_BENCH_MODELS": "tiny", "COLORJAX_BENCH_SIZES": "512", "COLORJAX_BENCH_BUDGET_S": "60"}
    assert ddcolor.options(False, environ) == ddcolor.Options(("tiny",), (512,), (1, 8), 60.0)
    with pytest.raises(ValueError, match="multiples of 32"):
        ddcolor.options(False, {"COLORJAX_BENCH_SIZES": "100"})


def test_bench_ddcolor_skip_leaves_out_the_named_contenders_and_says_so(tmp_path, monkeypatch):
    """`ddcolor --skip autocast` (PyTorch's bf16 autocast under an AVX2 restriction takes 600+ s an image): no timed
    autocast row, one row per setting naming what was skipped, and the float32 agreement still measured."""
    import json

    from colorjax.bench import ddcolor
    from colorjax.cli import bench

    for key in ("MODELS", "SIZES", "BATCHES", "BUDGET_S"):
        monkeypatch.delenv(f"COLORJAX_BENCH_{key}", raising=False)
    monkeypatch.setenv("COLORJAX_BENCH_SKIP", "")  # bench.main sets it; the monkeypatch removes it afterwards
    out = tmp_path / "rows.json"
    assert bench.main(["ddcolor", "--quick", "--skip", "autocast,bfloat16", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    timed = [row for row in rows if "ms_per_image" in row]
    assert timed and all(row["precision"] == "float32" for row in timed)
    notes = [row["contender"] for row in rows if row["contender"].startswith("skipped (--skip)")]
    assert "skipped (--skip): colorjax jit" in notes
    if any(row["contender"].startswith("pytorch") for row in timed):
        assert sum("autocast" in note for note in notes) == 2  # one per setting (batch 1 and 2)
        assert len([row for row in rows if "max_ab_diff_vs_pytorch" in row]) == 2
    assert ddcolor.options(False, {"COLORJAX_BENCH_SKIP": "autocast"}).skip == ("autocast",)


def test_stage_times_are_medians_per_stage_in_the_order_they_ran():
    from colorjax.bench.timing import Stages

    stages = Stages()
    for _ in range(3):
        with stages("decode"):
            pass
        with stages("model"):
            pass
    assert list(stages.medians()) == ["decode", "model"] and all(len(t) == 3 for t in stages.seconds.values())


def test_end_to_end_rows_are_milliseconds_per_photo_with_the_outside_work_against_the_model():
    from colorjax.bench.endtoend import per_photo_row, photo_sets

    seconds = {"decode": [0.01, 0.03, 0.02], "lab": [0.1, 0.1, 0.1], "forward": [0.2, 0.4, 0.3]}
    row = per_photo_row(
        {**seconds, "recombination": [0.1, 0.9, 0.15], "encode": [0.05, 0.1, 0.075], "predict": [0.5, 0.7, 0.6]}
    )
    # Medians: one photo slowed by other work (0.9 s) does not move the row.
    assert row["decode_ms"] == pytest.approx(20) and row["forward_ms"] == pytest.approx(300)
    assert row["total_ms"] == pytest.approx(20 + 100 + 300 + 150 + 75) and row["predict_ms"] == pytest.approx(600)
    assert row["outside_vs_forward"] == pytest.approx((150 + 75) / 300)
    kodak, big = photo_sets(quick=False)
    assert kodak[1:4] == (24, 512, 768) and 19.9e6 < big[2] * big[3] < 20.1e6  # issue 25's two sets
    assert big[1] == 3  # a median of three


def test_the_big_photo_row_holds_the_item_to_twice_the_upload_and_its_colours():
    from colorjax.bench.serve import big_photo_summary

    seconds = {"decode": 0.5, "lab": 1.0, "forward": 0.25, "recombination": 0.5, "predict": 2.0, "checks": 0.125}
    seconds["encode"] = 1.5
    row = big_photo_summary({**seconds, "store": 0.25}, request_s=5.0, upload_bytes=4, colour_bytes=20, stored_bytes=48)
    assert row["in_process_s"] == 0.5 + 2.0 + 0.125 + 1.5 + 0.25
    assert row["request_vs_predict"] == 2.5 and row["request_vs_forward"] == 20.0
    assert row["bound_mb"] == 48e-6 and row["stored_within_bound"]
    assert not big_photo_summary({**seconds, "store": 0.25}, 5.0, 4, 20, 49)["stored_within_bound"]


def test_train_step_rows_compare_each_contender_with_the_fastest_pytorch_one(monkeypatch):
    from colorjax.bench import BENCHMARKS
    from colorjax.bench.train_step import bench_train_step, step_rows

    seconds = {"colorjax: step": 0.5, "pytorch, 1 thread: theirs": 2.0, "pytorch, 2 threads: theirs": 20.0}
    rows = step_rows(seconds, batch=2, size=64, machine={"cpu": "Some CPU, AVX2", "threads": "XLA 2, PyTorch 2"})
    assert [row["ms_per_step"] for row in rows] == [500.0, 2000.0, 20000.0]
    assert [row["images_per_s"] for row in rows] == [4.0, 1.0, 0.1]
    assert [row["vs_pytorch_fastest"] for row in rows] == [4.0, 1.0, 0.1]
    assert all(row["cpu"] == "Some CPU, AVX2" and (row["size"], row["batch"]) == (64, 2) for row in rows)
    assert "vs_pytorch_fastest" not in step_rows({"colorjax: step": 0.5}, batch=2, size=64, machine={})[0]
    assert BENCHMARKS["train_step"] == "colorjax.bench.train_step:bench_train_step"
    monkeypatch.setenv("COLORJAX_BENCH_MODEL", "eccv16")
    with pytest.raises(ValueError, match="train_step times ddcolor against the authors' step, not 'eccv16'"):
        bench_train_step(quick=True)


@pytest.mark.parametrize(
    ("model", "levers", "output"),
    [
        (
            "eccv16",
            (
                "first conv as a matmul",
                "BatchNorms folded",
                "bf16, fp32 accumulation",
                "per-tap matmuls",
                "onnxruntime",
            ),
            "logits",
        ),
        ("siggraph17", ("colorjax default", "bf16, fp32 accumulation", "onnxruntime"), "chroma"),
    ],
)
def test_bench_zhang_levers_quick_times_every_lever_against_pytorch_at_each_batch(
    tmp_path, monkeypatch, capsys, model, levers, output
):
    """`python -m colorjax.bench zhang --levers --model M --quick`: every lever's contender at a tiny width, the same
    network (its output against the default's), a ratio to PyTorch's fastest at the same batch. No timing
    assertions."""
    import json

    from colorjax.cli import bench

    monkeypatch.delenv("COLORJAX_BENCH_LEVERS", raising=False)
    monkeypatch.delenv("COLORJAX_BENCH_MODEL", raising=False)
    argv = ["zhang", "--levers", "--model", model, "--quick", "--out", str(tmp_path / "rows.json")]
    assert bench.main(argv) == 0
    monkeypatch.delenv("COLORJAX_BENCH_LEVERS")
    monkeypatch.delenv("COLORJAX_BENCH_MODEL")
    out = json.loads((tmp_path / "rows.json").read_text())
    assert {row["benchmark"] for row in out} == {f"{model}_cpu_levers"}
    ours = {(row["contender"], row["batch"]): row for row in out if not row["contender"].startswith("pytorch")}
    for lever in levers:
        assert any(lever in contender for contender, _ in ours), lever
    scale = {"logits": 1.0, "chroma": 110.0}[output]  # chroma is ab, up to 110
    for row in ours.values():
        tolerance = scale * (0.05 if row["precision"] == "bfloat16" else 1e-5)
        assert row[f"max_{output}_diff_vs_default"] < tolerance, row
    if any(row["contender"].startswith("pytorch") for row in out):
        assert all("vs_pytorch_fastest" in row for row in ours.values())
        printed = capsys.readouterr().out
        name = {"eccv16": "ECCV16", "siggraph17": "SIGGRAPH17"}[model]
        assert f"{name} CPU levers, batch 2 at 64" in printed and f"{name} CPU levers, batch 1 at 64" in printed


def test_zhang_levers_time_a_hopeless_pytorch_contender_once_and_know_their_models():
    """A PyTorch contender 3x slower than PyTorch's fastest at its batch is left out of the turns (bf16 autocast
    without native bf16: minutes a call); batches are compared apart (batch 8 takes longer a call than batch 1)."""
    from colorjax.bench import zhang

    first_calls = {"fp32 b8": (8, 4.0), "bf16 b8": (8, 12.0), "bf16 cl b8": (8, 11.9), "fp32 b1": (1, 0.5)}
    first_calls["bf16 b1"] = (1, 1.6)
    assert zhang.too_slow_to_repeat(first_calls) == {"bf16 b8", "bf16 b1"}
    assert zhang.too_slow_to_repeat({"only": (8, 100.0)}) == set()
    assert zhang.lever_model({}) == "eccv16"
    assert zhang.lever_model({"COLORJAX_BENCH_MODEL": "siggraph17"}) == "siggraph17"
    with pytest.raises(ValueError, match="zhang --levers times eccv16 or siggraph17, not 'ddcolor'"):
        zhang.lever_model({"COLORJAX_BENCH_MODEL": "ddcolor"})


def test_bench_bf16_dots_quick_says_which_library_xla_calls_and_whether_it_converts_bf16():
    """`python -m colorjax.bench bf16_dots --quick`: every op in f32 and bf16, XLA's rows with the library its
    compiled program calls and whether the bf16 operands were converted to f32. No timing assertions."""
    from colorjax.bench.bf16_dots import bench_bf16_dots

    rows = bench_bf16_dots(quick=True)
    assert {row["op"].split()[0] for row in rows} == {"matmul", "conv3x3"}
    xla = [row for row in rows if row["contender"].startswith("xla")]
    assert all(row["xla_library"] in ("ynn", "onednn", "xla") and row["ms"] > 0 for row in xla)
    assert not any(row["bf16_converted_to_f32"] for row in xla if row["precision"] == "float32")
    assert {row["contender"] for row in xla} == {"xla dot", "xla conv", "xla 9 per-tap matmuls"}
    assert all("cpu" in row and row["speedup_vs_xla_f32"] > 0 for row in rows)
