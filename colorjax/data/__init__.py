"""Photos in, batches of L and chroma out: `sources` (where photos come from), `preprocess` (decode, crops,
colour conversion) and `streams` (the resumable training stream and the padded evaluation batches).

Only what other modules use is re-exported here; tests and tools needing more import the submodules.
"""

from colorjax.data.sources import (
    IMAGE_EXTENSIONS,
    DataError,
    FileSource,
    hide_accelerators_from_tensorflow,
    make_source,
    sample_photo_paths,
)
from colorjax.data.streams import (
    Position,
    SkipCounts,
    SkippedFiles,
    TrainStream,
    eval_batches,
    num_eval_batches,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataError",
    "FileSource",
    "Position",
    "SkipCounts",
    "SkippedFiles",
    "TrainStream",
    "eval_batches",
    "hide_accelerators_from_tensorflow",
    "make_source",
    "num_eval_batches",
    "sample_photo_paths",
]
