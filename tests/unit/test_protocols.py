"""The papers' evaluation protocols: ImageNet val5k's photos (the first 5,000 in official order, picked from TFDS's
shuffled split by their file numbers) and CT2's crop (the centre square of the shorter side, resized), on
`tfds.testing.mock_data` (tests/helpers/mock_imagenet.py)."""

import numpy as np
import pytest
from helpers.mock_imagenet import MOCK_VALIDATION, file_name, mock_imagenet_validation

from colorjax import color, config_lib, data
from colorjax.evaluation import evaluator, protocols


def protocol_data_config(image_size: int = 16):
    protocol = protocols.get_protocol("imagenet-val5k")
    config = config_lib.base_config()
    config.data.source = protocol.source
    config.data.image_size = image_size
    config.data.update(protocol.data)
    assert not config_lib.value_errors(config)
    return config.data


def evaluated_images(data_config, split="validation"):
    """{image id: (RGB crop as uint8, name)} of every image the evaluation reads, grey photos kept."""
    source = data.make_source(data_config, split)
    total, host_batches = evaluator.batches(source, data_config, 4, None, skip_grey=False)
    images = {}
    for batch in host_batches:
        rgb = color.rgb_to_uint8(np.asarray(color.chroma_to_rgb(batch["L"], batch["chroma"], "lab")))
        for row in np.flatnonzero(batch["mask"]):
            images[int(batch["image_id"][row])] = (rgb[row], source.name(int(batch["image_id"][row])))
    return total, images


def test_imagenet_val5k_reads_the_first_5000_in_official_order_whatever_tfds_order():
    with mock_imagenet_validation():
        total, images = evaluated_images(protocol_data_config())
    kept = sorted(number for number, _ in MOCK_VALIDATION if number <= 5000)
    assert total == len(kept) == 6
    assert sorted(images) == [number - 1 for number in kept]  # image id = official number - 1
    assert images[4999][1] == file_name(5000)  # named by its file
    magenta_free = [crop for crop, _ in images.values()]
    assert all(np.abs(crop.astype(int) - (200, 40, 200)).sum(-1).min() > 60 for crop in magenta_free)


def test_protocol_crop_is_the_centre_square_of_the_shorter_side_resized():
    with mock_imagenet_validation():
        _, images = evaluated_images(protocol_data_config(image_size=16))
    for image_id in (6, 1):  # 40 x 43 (offset 2, where floor would give 1) and 45 x 40 (offset 2)
        crop, _ = images[image_id]
        assert crop.shape == (16, 16, 3)
        # Every pixel red: one blue row or column inside the crop would pull the antialiased edge towards blue.
        assert crop[..., 2].max() < 60 and crop[..., 0].min() > 180, image_id
    for image_id in (0, 4998):  # 40 x 60 and 50 x 40: the centre square, stretched to neither side
        crop, _ = images[image_id]
        assert crop[..., 1].min() > 150 and crop[..., 2].max() < 90  # green, no blue margin
    grey, _ = images[2]
    assert np.abs(grey.astype(int) - 128).max() <= 2  # the grey photo is evaluated, as the papers do


def test_resize_shorter_side_crop_still_the_default():
    config = config_lib.base_config()
    assert config.data.eval_crop == "resize_shorter_side"
    assert config.data.tfds_first_by_file_number is None


def test_protocol_refuses_other_data_in_one_line():
    imagenet = protocols.get_protocol("imagenet-val5k")
    assert protocols.protocol_data(imagenet, None) == ("tfds:imagenet2012", "validation")
    with pytest.raises(protocols.ProtocolError, match="drop --data"):
        protocols.protocol_data(imagenet, "folder:/photos")
    folder = protocols.get_protocol("folder")
    assert protocols.protocol_data(folder, "folder:/photos") == ("folder:/photos", "all")
    with pytest.raises(protocols.ProtocolError, match="needs --data folder:PATH"):
        protocols.protocol_data(folder, None)
    with pytest.raises(protocols.ProtocolError, match="known: imagenet-val5k, cocostuff, folder"):
        protocols.get_protocol("places")
