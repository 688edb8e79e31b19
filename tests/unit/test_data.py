"""colorjax.data: sources, crops, colour conversion, skipping, resumption."""

import logging
from pathlib import Path

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from helpers.bad_inputs import build_corpus
from PIL import Image

from colorjax import color, config_lib, data
from colorjax.data import DataError, Position, TrainStream, decode, preprocess, sources, streams

MAX_PIXELS = config_lib.base_config().data.max_pixels


def data_config(source: str, **overrides) -> ml_collections.ConfigDict:
    """`base_config().data` on `source`, small crops, every file in the training split."""
    config = config_lib.base_config().data
    config.update(dict(source=source, image_size=32, max_failed_fraction=0.5, prefetch=2, holdout_fraction=0.0))
    config.update(overrides)
    return config


def test_folder_source_finds_images_and_labels_from_subfolders(photo_folder):
    source = sources.make_source(data_config(f"folder:{photo_folder}"), "train", process_index=0)
    # 12 photos, tiny.png, corrupt.jpg and notes.png: files are listed by extension, read later.
    assert source.num_examples == 15
    assert source.class_names == ["cats", "dogs"]
    names = [p.split("/")[-2] for p in source.paths]
    assert [source.class_names[i] for i in source.labels] == names


def test_folder_source_shards_across_processes(photo_folder):
    config = data_config(f"folder:{photo_folder}")
    shards = [sources.make_source(config, "train", process_index=i, process_count=3) for i in range(3)]
    all_paths = sorted(p for s in shards for p in s.paths)
    assert all_paths == sorted(sources.make_source(config, "train").paths)
    assert max(s.num_examples for s in shards) - min(s.num_examples for s in shards) <= 1


def test_image_ids_and_names_are_the_same_whatever_the_process_count(photo_folder):
    config = data_config(f"folder:{photo_folder}")
    whole = sources.make_source(config, "train")
    shards = [sources.make_source(config, "train", process_index=i, process_count=3) for i in range(3)]
    for shard in shards:
        assert [shard.name(int(i)) for i in shard.ids] == shard.paths.tolist()
        assert [whole.name(int(i)) for i in shard.ids] == shard.paths.tolist()
    good = [p for p in whole.paths if "corrupt" not in p and "notes" not in p]
    names = []
    for shard in shards:
        for batch in streams.eval_batches(shard, config, local_batch_size=4, num_batches=3, with_image_ids=True):
            names += [whole.name(int(i)) for i in batch["image_id"][batch["mask"]]]
    assert sorted(names) == sorted(good)  # Every readable photo once, named by its global id.


def test_folder_without_split_subfolders_holds_out_a_stable_share(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(tmp_path / f"{i}.png")
    config = data_config(f"folder:{tmp_path}", holdout_fraction=0.25)
    train = set(sources.make_source(config, "train").paths)
    held_out = set(sources.make_source(config, "validation").paths)
    assert not train & held_out and len(train | held_out) == 40
    assert 4 <= len(held_out) <= 16


def test_eval_batches_equal_eager_decode_crop_and_colour(photo_folder, tmp_path):
    """tf.data output == Pillow decode + the same centre crop + the JAX colour conversion, per image.

    PNG copies, because TF's and Pillow's JPEG decoders differ by design (IDCT choice), not by our code.
    """
    config = data_config(f"folder:{photo_folder}")
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.open(photo_folder / "cats" / f"{i}.jpg").save(paths[-1])
    source = sources.FileSource(paths, [0] * 4, ["cats"], "four cats")
    batches = list(streams.eval_batches(source, config, local_batch_size=3, num_batches=2))
    L = np.concatenate([b["L"] for b in batches])
    chroma = np.concatenate([b["chroma"] for b in batches])
    mask = np.concatenate([b["mask"] for b in batches])
    assert mask.tolist() == [True] * 4 + [False] * 2
    for i, path in enumerate(source.paths):
        rgb = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
        crop = preprocess.center_crop(tf.constant(rgb), config).numpy()  # eager TF
        lab = np.asarray(color.rgb_to_lab(crop))  # JAX
        np.testing.assert_allclose(L[i], lab[..., :1], atol=0.02)
        np.testing.assert_allclose(chroma[i], lab[..., 1:], atol=0.02)
    assert L.shape == (6, 32, 32, 1) and chroma.shape == (6, 32, 32, 2)
    assert np.all(L[4:] == 0)


def test_train_crops_are_the_eager_function_of_the_element_seed(photo_folder):
    config = data_config(f"folder:{photo_folder}")
    source = sources.FileSource([photo_folder / "dogs" / "1.jpg"], None, None, "one dog")
    stream = TrainStream(source, config, local_batch_size=1, seed=7)
    first = next(stream)
    stream.close()
    record = {
        "encoded": tf.io.read_file(str(source.paths[0])),
        "epoch": tf.constant(0, tf.int64),
        "index": tf.constant(0, tf.int64),
    }
    eager = preprocess.preprocess(record, config, train=True, seed=7)
    np.testing.assert_allclose(first["L"][0], eager["L"].numpy(), atol=1e-5)
    np.testing.assert_allclose(first["chroma"][0], eager["chroma"].numpy(), atol=1e-5)


def test_luv_configs_emit_uv(photo_folder, tmp_path):
    config = data_config(f"folder:{photo_folder}", color_space="luv")
    Image.open(photo_folder / "cats" / "2.jpg").save(tmp_path / "cat.png")
    source = sources.FileSource([tmp_path / "cat.png"], None, None, "one cat")
    batch = next(streams.eval_batches(source, config, local_batch_size=1, num_batches=1))
    rgb = np.asarray(Image.open(tmp_path / "cat.png"), np.float32) / 255
    crop = preprocess.center_crop(tf.constant(rgb), config).numpy()
    np.testing.assert_allclose(batch["chroma"][0], np.asarray(color.rgb_to_luv(crop))[..., 1:], atol=0.02)


def test_unreadable_files_are_skipped_with_one_warning_each(photo_folder, caplog):
    config = data_config(f"folder:{photo_folder}")
    source = sources.make_source(config, "train")
    stream = TrainStream(source, config, local_batch_size=4, seed=0)
    with caplog.at_level(logging.WARNING, logger="colorjax.data.streams"):
        batches = [next(stream) for _ in range(12)]  # Several epochs of 13 readable photos.
    stream.close()
    warned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipping")]
    assert sorted(w.split()[1].split("/")[-1].rstrip(":") for w in warned) == [
        "corrupt.jpg",
        "notes.png",
    ]
    assert stream.counter.failed >= 2 * 3  # Read (and failed) every epoch, warned once ...
    assert stream.skipped.failed == 2  # ... and counted once.
    assert all(b["L"].shape == (4, 32, 32, 1) for b in batches)
    assert set(np.concatenate([b["label"] for b in batches]).tolist()) == {0, 1}


def test_too_many_unreadable_files_stop_with_a_clear_message(tmp_path):
    for i in range(6):
        (tmp_path / f"{i}.jpg").write_bytes(b"garbage")
    Image.fromarray(np.full((8, 8, 3), (200, 30, 30), np.uint8)).save(tmp_path / "ok.png")
    config = data_config(f"folder:{tmp_path}", max_failed_fraction=0.2)
    source = sources.FileSource(sorted(tmp_path.iterdir()), None, None, f"folder {tmp_path}")
    stream = TrainStream(source, config, local_batch_size=2, seed=0)
    with pytest.raises(DataError, match="could not be decoded.*max_failed_fraction"):
        next(stream)
    stream.close()


def test_photos_without_colour_are_skipped_in_training(tmp_path):
    gray = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(64, axis=0)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(np.full((64, 64, 3), (30, 120, 220), np.uint8)).save(tmp_path / "blue.png")
    config = data_config(f"folder:{tmp_path}")
    source = sources.FileSource(sorted(tmp_path.iterdir()), None, None, "gray and blue")
    stream = TrainStream(source, config, local_batch_size=3, seed=0)
    batch = next(stream)
    stream.close()
    assert np.all(np.abs(batch["chroma"][..., 1]) > 20)  # Only the blue photo (b ~ -50) made it.
    assert stream.skipped == data.SkipCounts(no_color=1, failed=0)  # Distinct photos, not crops.
    assert streams.colorless_images(source, config) == [str(tmp_path / "gray.png")]


def test_all_gray_data_fails_clearly(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    config = data_config(f"folder:{tmp_path}")
    stream = TrainStream(sources.make_source(config, "train"), config, local_batch_size=2, seed=0)
    with pytest.raises(DataError, match="No image .* has colour"):
        next(stream)
    stream.close()


def test_resumed_stream_continues_exactly(photo_folder):
    config = data_config(f"folder:{photo_folder}")
    source = sources.make_source(config, "train")
    stream = TrainStream(source, config, local_batch_size=5, seed=3)
    straight = [next(stream) for _ in range(9)]
    stream.close()
    stream = TrainStream(source, config, local_batch_size=5, seed=3)
    for _ in range(4):
        next(stream)
    position = stream.position
    stream.close()
    assert position != Position()
    resumed = TrainStream(source, config, local_batch_size=5, seed=3, start=position)
    rest = [next(resumed) for _ in range(5)]
    resumed.close()
    for expected, got in zip(straight[4:], rest, strict=True):
        for key in expected:
            np.testing.assert_array_equal(expected[key], got[key])


@pytest.mark.parametrize("train_crop", ["random_resized", "resize_random_crop"])
def test_train_batches_have_the_trainers_shapes_dtypes_and_ranges(photo_folder, train_crop):
    """JPEGs (window decode, some at 1/2 size) and a PNG (whole decode) alike: L in [0, 100], chroma within the ab
    gamut, labels, the colour photos kept."""
    config = data_config(f"folder:{photo_folder}", train_crop=train_crop, resize_size=48)
    stream = TrainStream(sources.make_source(config, "train"), config, local_batch_size=6, seed=1)
    batches = [next(stream) for _ in range(4)]
    stream.close()
    for batch in batches:
        assert set(batch) == {"L", "chroma", "label"}
        assert batch["L"].shape == (6, 32, 32, 1) and batch["L"].dtype == np.float32
        assert batch["chroma"].shape == (6, 32, 32, 2) and batch["chroma"].dtype == np.float32
        assert batch["label"].dtype == np.int32 and set(batch["label"]) <= {0, 1}
        assert 0 <= batch["L"].min() and batch["L"].max() <= 100
        assert np.abs(batch["chroma"]).max() <= 128
        assert np.abs(batch["chroma"]).max(axis=(1, 2, 3)).min() > config.min_chroma  # colour photos only
    assert np.std(np.concatenate([b["L"] for b in batches])) > 5  # real pictures, not placeholders


def test_samples_source_is_the_seven_wheel_photos():
    source = sources.make_source(data_config("samples"), "train")
    assert source.num_examples == 7
    stream = TrainStream(source, data_config("samples"), local_batch_size=8, seed=0)
    batch = next(stream)
    stream.close()
    assert batch["L"].shape == (8, 32, 32, 1) and "label" not in batch


def test_unknown_source_and_missing_folder_errors(tmp_path):
    with pytest.raises(DataError, match="must be 'tfds:NAME', 'folder:PATH' or 'samples'"):
        sources.make_source(data_config("imagenet"), "train")
    with pytest.raises(DataError, match="does not exist"):
        sources.make_source(data_config(f"folder:{tmp_path / 'nope'}"), "train")
    with pytest.raises(DataError, match="No images"):
        sources.make_source(data_config(f"folder:{tmp_path}"), "train")


def test_tfds_source_with_mock_data():
    import tensorflow_datasets as tfds

    config = data_config("tfds:cifar10", eval_split="test", shuffle_buffer=16)
    with tfds.testing.mock_data(num_examples=20):
        source = sources.make_source(config, "train")
        assert source.num_examples == 20
        assert len(source.class_names) == 10
        stream = TrainStream(source, config, local_batch_size=8, seed=0)
        batches = [next(stream) for _ in range(4)]  # Crosses epoch boundaries.
        position = stream.position
        stream.close()
        resumed = TrainStream(source, config, local_batch_size=8, seed=0, start=Position(0, 0))
        again = [next(resumed) for _ in range(4)]
        resumed.close()
        eval_source = sources.make_source(config, "test")
        evals = list(streams.eval_batches(eval_source, config, local_batch_size=8, num_batches=3, with_image_ids=True))
    assert position.epoch >= 1
    assert all(b["L"].shape == (8, 32, 32, 1) and b["label"].dtype == np.int32 for b in batches)
    for a, b in zip(batches, again, strict=True):
        np.testing.assert_array_equal(a["chroma"], b["chroma"])
    assert sum(int(b["mask"].sum()) for b in evals) == 20
    ids = np.concatenate([b["image_id"][b["mask"]] for b in evals])
    assert sorted(ids.tolist()) == list(range(20))  # Positions in the split, from TFDS's record ids.
    assert eval_source.name(7) == "test[7]"


def test_greyscale_photos_of_the_scene_set_are_detected(shared_dir):
    """The skip rule finds the set's black-and-white photos and spares its colour ones."""
    root = shared_dir / "data" / "intel_scenes_150"
    listed = {
        line.split()[0]
        for line in (shared_dir / "data" / "intel_scenes_150.greyscale.txt").read_text().splitlines()
        if line.strip()
    }
    config = data_config(f"folder:{root}", image_size=150)
    skipped = set()
    total = 0
    for split in ("train", "test"):
        source = sources.make_source(config, split)
        total += source.num_examples
        skipped |= {
            str(p.relative_to(root)) for p in map(__import__("pathlib").Path, streams.colorless_images(source, config))
        }
    others = total - len(listed)
    assert len(skipped & listed) >= 0.95 * len(listed)
    assert len(skipped - listed) < 0.02 * others


def test_folder_with_train_and_test_evaluates_on_test_whatever_the_eval_name(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split / "a").mkdir(parents=True)
        (tmp_path / split / "b").mkdir(parents=True)
        for cls in ("a", "b"):
            Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp_path / split / cls / f"{split}.png")
    source = sources.make_source(data_config(f"folder:{tmp_path}"), "validation")
    assert all("/test/" in p for p in source.paths) and source.class_names == ["a", "b"]
    (tmp_path / "test").rename(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="no validation/, val/, test/, eval/ folder"):
        sources.make_source(data_config(f"folder:{tmp_path}"), "validation")


# --------------------------------------------------------------------------------- decoding and bad inputs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("corpus") / "bad inputs")


def test_every_corpus_file_decodes_correctly_or_is_rejected_in_one_line(corpus):
    for case in corpus:
        if case.accepted:
            case.check(decode.read_image(case.path, MAX_PIXELS))
        else:
            with pytest.raises(decode.ImageError) as error:
                decode.read_image(case.path, MAX_PIXELS)
            message = str(error.value)
            assert message.startswith(str(case.path)) and "\n" not in message, case.why


def test_colorize_reads_through_the_same_decoder(corpus):
    from colorjax.inference import colorizer as inference

    for case in corpus:
        if case.accepted:
            expected = color.rgb_to_uint8(decode.read_image(case.path, MAX_PIXELS))
            np.testing.assert_array_equal(inference.read_image(case.path), expected)
        else:
            with pytest.raises(inference.InferenceError) as error:
                inference.read_image(case.path)
            assert str(case.path) in str(error.value) and "\n" not in str(error.value), case.why


def test_tensorflow_decodes_exactly_as_the_python_decoder(corpus):
    """Training (tf.data) and colorize/evaluation (Python) get the same pixels: TF's own JPEG and PNG decoders
    for plain files (INTEGER_ACCURATE IDCT = Pillow's), the Python decoder for everything else."""
    routes = {}
    for case in corpus:
        if not case.accepted:
            continue
        encoded = case.path.read_bytes()
        image, route, pixels = decode.tf_decode(tf.constant(encoded), MAX_PIXELS)
        routes[case.name] = int(route)
        np.testing.assert_array_equal(image.numpy(), decode.decode(encoded, MAX_PIXELS))
        assert int(pixels) == image.shape[0] * image.shape[1]
    assert routes["photo.jpg"] == decode.TF_JPEG and routes["photo.png"] == decode.TF_PNG
    assert routes["exif_rotated.jpg"] == routes["grey16.png"] == routes["rgba.png"] == decode.PYTHON


def test_scene_photos_decode_in_tensorflow_as_in_pillow(shared_dir):
    for path in sorted((shared_dir / "data" / "intel_scenes_150" / "test").rglob("*.jpg"))[:40]:
        encoded = path.read_bytes()
        image, route, _ = decode.tf_decode(tf.constant(encoded), MAX_PIXELS)
        assert int(route) == decode.TF_JPEG
        np.testing.assert_array_equal(image.numpy(), decode.decode(encoded, MAX_PIXELS))


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "photo.png")
    with pytest.raises(decode.ImageError, match=r"photo.png: 40x30 = 1200 pixels, over the limit of 1000"):
        decode.read_image(tmp_path / "photo.png", 1000)
    assert decode.read_image(tmp_path / "photo.png", 1200).shape == (30, 40, 3)
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "photo.jpg")
    for name in ("photo.png", "photo.jpg"):  # The Pillow probe and the in-graph JPEG header.
        encoded = tf.constant((tmp_path / name).read_bytes())
        _, route, pixels = decode.tf_decode(encoded, 1000)
        assert (int(route), int(pixels)) == (decode.TOO_LARGE, 1200)
        assert int(decode.tf_decode(encoded, 1200)[1]) in (decode.TF_PNG, decode.TF_JPEG)


def test_a_folder_of_bad_inputs_trains_and_evaluates_naming_each_bad_file_once(corpus, caplog):
    root = corpus[0].path.parent
    rejected_files = {c.name for c in corpus if not c.accepted and (c.path.is_file() or c.path.is_symlink())}
    accepted = {c.name for c in corpus if c.accepted}
    config = data_config(f"folder:{root}", max_failed_fraction=0.5)
    with caplog.at_level(logging.WARNING):
        source = sources.make_source(config, "train")
        listed = {Path(p).name for p in source.paths}
        assert listed == accepted | rejected_files  # Not the folder named .jpg; the dangling link is read and fails.
        names = []
        for batch in streams.eval_batches(source, config, local_batch_size=8, num_batches=4, with_image_ids=True):
            names += [Path(source.name(int(i))).name for i in batch["image_id"][batch["mask"]]]
        assert sorted(names) == sorted(accepted)
        stream = TrainStream(source, config, local_batch_size=8, seed=0)
        batches = [next(stream) for _ in range(8)]  # Three epochs of 20 photos.
        stream.close()
    assert all(np.isfinite(b["L"]).all() and b["L"].shape == (8, 32, 32, 1) for b in batches)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    skipped = [w for w in warnings if w.startswith("Skipping ")]
    named = sorted(Path(w.split(": ")[0].removeprefix("Skipping ")).name for w in skipped)
    # Each listed bad file once for evaluation and once for training, the dangling link as the others (it was
    # once warned about at each listing and left out of the counts).
    assert "dangling.png" in rejected_files
    assert named == sorted([*rejected_files, *rejected_files])
    assert any("bomb.png: 900000000 pixels, over the limit" in w for w in skipped)
    assert stream.skipped.failed == len(rejected_files)
    # The grey files (16-bit grey, float TIFF, LA, 1-bit) have no colour: skipped in training, counted once each.
    assert 4 <= stream.skipped.no_color <= 6
