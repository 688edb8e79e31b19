"""The evaluation protocols of the colorization papers (`python -m colorjax.evaluate --protocol NAME`): which photos,
which crop and size, which FID network, so that colorjax's numbers sit beside Table 1 of CT2 (Weng et al. 2022) and
DDColor (Kang et al. 2023).

- `imagenet-val5k`: TFDS `imagenet2012` validation, the first 5,000 photos in the official ILSVRC2012_val order
  (TFDS stores the split shuffled, so they are picked by their file names' numbers 1..5000, and named by them;
  finding them reads the whole 50,000-photo split once more, undecoded, before the evaluation's own passes).
  They are evaluated in TFDS's order; no number depends on the order, and per_image.csv names every file.
- `cocostuff`: the 5,000 validation photos of COCO-Stuff, which are COCO 2017's validation images (COCO-Stuff-164K
  annotates COCO 2017's photos; colours need no annotation): TFDS `coco/2017` validation. TFDS has no
  dataset named COCO-Stuff.
- `folder`: the same protocol on any folder (`--data folder:PATH`, every image in it).

Every protocol: the centre square of the shorter side, resized to 256 x 256 (CT2's `CenterCrop(min(w, h))` then
`Resize(256)`, `data.eval_crop = "crop_shorter_side"`); every photo counts, grey ones included (the papers score
all 5,000); paired FID with torchvision's InceptionV3 (`--inception inception_v3` unless another is given;
`--inception none` leaves FID out), colourfulness and delta-CF as their code computes them, PSNR on uint8 RGB,
beside colorjax's AuC tables. (DDColor's own training-time validation resizes the whole photo to 256 x 256
without a crop, `cv2.resize`; its paper's table follows CT2's protocol, which this is.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from colorjax import ColorjaxError


class ProtocolError(ColorjaxError, ValueError):
    """A protocol that does not exist or is given data it cannot use; one line."""


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One protocol: its data (None: `--data` must name a folder), split, size, data settings and FID network."""

    name: str
    description: str
    source: str | None
    split: str
    resolution: int = 256
    data: dict[str, Any] = dataclasses.field(default_factory=lambda: {"eval_crop": "crop_shorter_side"})
    inception: str = "inception_v3"
    skip_grey: bool = False


IMAGENET_VAL5K = 5000

PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            name="imagenet-val5k",
            description="ImageNet validation, the first 5,000 in ILSVRC2012_val order",
            source="tfds:imagenet2012",
            split="validation",
            data={"eval_crop": "crop_shorter_side", "tfds_first_by_file_number": IMAGENET_VAL5K},
        ),
        Protocol(
            name="cocostuff",
            description="COCO-Stuff validation (COCO 2017's 5,000 validation photos)",
            source="tfds:coco/2017",
            split="validation",
        ),
        Protocol(
            name="folder",
            description="every photo of a folder, with the papers' crop, size and metrics",
            source=None,
            split="all",
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """The protocol `name`, or a one-line ProtocolError listing the known ones."""
    if name not in PROTOCOLS:
        raise ProtocolError(f"Unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}.")
    return PROTOCOLS[name]


def protocol_data(protocol: Protocol, data: str | None) -> tuple[str, str]:
    """(source, split) of a protocol given `--data`: its own dataset (a different --data is refused), or for
    `folder` the folder --data names."""
    if protocol.source is None:
        if not data or not data.startswith("folder:"):
            raise ProtocolError(f"--protocol {protocol.name} needs --data folder:PATH.")
        return data, protocol.split
    if data is not None and data != protocol.source:
        raise ProtocolError(
            f"--protocol {protocol.name} evaluates {protocol.source}; drop --data {data} "
            "(or use --protocol folder --data folder:PATH)."
        )
    return protocol.source, protocol.split
