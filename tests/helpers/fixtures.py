"""The tests' shared fixtures: a pytest plugin, loaded by tests/conftest.py (`pytest_plugins`).

- `shared_dir`: the team's `../shared` folder (helpers.paths.SHARED_DIR); skips cleanly where its scene photos
  (`data/intel_scenes_150`) are absent, as on a user's fresh clone;
- `photo_folder`: generated photos in two class subfolders, plus a corrupt JPEG and a text file named .png;
- `trained_run` (and `shared_training`, with its photos and log): one tiny run trained once per session, shared
  by the tests that only read a trained run;
- `vgg16_bn_file`: a random VGG16-BN `features` state dict saved by torch in torchvision's layout, for
  `config.gan.perceptual_weights` (so no test downloads torchvision's 528 MB file).
"""

import dataclasses
from pathlib import Path

import pytest

from helpers.paths import SHARED_DIR
from helpers.photos import make_photo


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED_DIR / "data" / "intel_scenes_150").is_dir():
        pytest.skip(f"../shared is absent ({SHARED_DIR}); this test needs the team's shared data")
    return SHARED_DIR


@pytest.fixture
def photo_folder(tmp_path):
    """A folder of generated photos in two class subfolders, plus a corrupt JPEG and a text file named .png."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for label, hue in (("cats", 0.0), ("dogs", 3.0)):
        (root / label).mkdir(parents=True)
        for i in range(6):
            size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
            Image.fromarray(make_photo(rng, *size, hue_shift=hue)).save(root / label / f"{i}.jpg", quality=95)
    Image.fromarray(make_photo(rng, 5, 7)).save(root / "cats" / "tiny.png")
    good = (root / "cats" / "0.jpg").read_bytes()
    (root / "dogs" / "corrupt.jpg").write_bytes(good[: len(good) // 3])
    (root / "dogs" / "notes.png").write_text("not an image")
    return root


# --------------------------------------------------------------------------------------- the shared training run


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """The session's shared run: its folder, the photos it trained on, and what it logged (INFO and above)."""

    workdir: Path
    photos: Path
    said: tuple[str, ...]


def _files_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="session")
def shared_training(tmp_path_factory) -> TrainedRun:
    """One tiny run trained once per session for the tests that only read it (colorize it, load its checkpoints,
    evaluate it); a test that changes a run trains its own or copies this one (shutil.copytree into tmp_path).

    `tiny_config` (a 4-wide regression on 24 px crops) on six generated colour photos and a grey one (left out of
    training and of evaluation, each said in one line): 6 steps at learning rate 3e-2 (large steps, so the
    evaluations differ), a checkpoint and an evaluation every 2 steps (2, 4, 6), best by val/ab_l2_error.
    At the end of the session the run must be as it was trained: a test that wrote into it fails there."""
    import logging

    import numpy as np
    from PIL import Image

    from colorjax.train import trainer as train
    from helpers.runs import tiny_config

    rng = np.random.default_rng(3)
    photos = tmp_path_factory.mktemp("shared_photos")
    for i in range(6):
        Image.fromarray(make_photo(rng, 40, 48, hue_shift=i)).save(photos / f"{i}.png")
    Image.fromarray(make_photo(rng, 40, 48)).convert("L").save(photos / "grey.png")
    workdir = tmp_path_factory.mktemp("shared_run") / "run"
    config = tiny_config(
        f"folder:{photos}",
        num_train_steps=6,
        eval_every=2,
        checkpoint_every=2,
        best_metric="val/ab_l2_error",
    )
    config.optimizer.learning_rate = 3e-2
    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("colorjax")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        train.train_and_evaluate(config, workdir)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    trained = _files_of(workdir)
    yield TrainedRun(workdir, photos, tuple(messages))
    changed = sorted(set(_files_of(workdir).items()) ^ set(trained.items()))
    assert not changed, f"a test changed the shared run {workdir} (copy it instead): {changed[:10]}"


@pytest.fixture(scope="session")
def trained_run(shared_training) -> Path:
    """The shared run's folder (`shared_training`): read it, never write into it."""
    return shared_training.workdir


@pytest.fixture(scope="session")
def vgg16_bn_file(tmp_path_factory) -> Path:
    """torchvision's vgg16_bn `features` at its random init, saved by torch as torchvision lays it out."""
    torch = pytest.importorskip("torch")
    from helpers.ddcolor_training import reference_vgg16_bn

    torch.manual_seed(0)
    network = reference_vgg16_bn()
    features = {f"features.{key}": value for key, value in network.features.state_dict().items()}
    path = tmp_path_factory.mktemp("vgg16_bn") / "vgg16_bn-random.pth"
    torch.save(features, path)
    return path
