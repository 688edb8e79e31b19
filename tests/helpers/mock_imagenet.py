"""A TFDS `imagenet2012` validation split of a few chosen photos, through `tfds.testing.mock_data` (nothing downloads):
the file names carry ILSVRC2012_val numbers in a shuffled order, as TFDS stores the real split."""

import contextlib
import io

import numpy as np

RED, BLUE, GREEN, MAGENTA, GREY = (220, 30, 30), (30, 30, 220), (40, 180, 60), (200, 40, 200), (128, 128, 128)


def photo(height: int, width: int, inside=RED, outside=BLUE, offsets=None) -> np.ndarray:
    """`inside` over the centre square of the shorter side at the given (top, left) offsets, `outside` elsewhere."""
    side = min(height, width)
    top, left = offsets if offsets is not None else ((height - side) // 2, (width - side) // 2)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = outside
    image[top : top + side, left : left + side] = inside
    return image


# (ILSVRC2012_val number, photo) in the order the mock split stores them. Centre-square offsets are CT2's
# round((H - side) / 2), half to even: 43 - 40 = 3 -> 2 (floor would take 1); 45 - 40 = 5 -> 2.
MOCK_VALIDATION = (
    (7, photo(40, 43, offsets=(0, 2))),
    (5003, photo(40, 40, inside=MAGENTA, outside=MAGENTA)),
    (2, photo(45, 40, offsets=(2, 0))),
    (5000, photo(40, 40, inside=GREEN, outside=GREEN)),
    (1, photo(40, 60, inside=GREEN)),
    (12000, photo(40, 40, inside=MAGENTA, outside=MAGENTA)),
    (3, photo(40, 40, inside=GREY, outside=GREY)),
    (4999, photo(50, 40, inside=GREEN)),
    (5001, photo(40, 40, inside=MAGENTA, outside=MAGENTA)),
)


def file_name(number: int) -> str:
    return f"ILSVRC2012_val_{number:08d}.JPEG"


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def mock_imagenet_validation(examples=MOCK_VALIDATION):
    """Within the block, TFDS `imagenet2012` reads `examples` (any split name), images undecoded (SkipDecoding)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        del kwargs
        columns = {
            "image": [_png(image) for _, image in examples],
            "file_name": [file_name(number) for number, _ in examples],
            "label": np.arange(len(examples), dtype=np.int64) % 1000,
        }
        if read_config is not None and read_config.add_tfds_id:
            columns["tfds_id"] = [f"imagenet2012-{split}.tfrecord-00000-of-00001__{i}" for i in range(len(examples))]
        return tf.data.Dataset.from_tensor_slices(columns)

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        yield
