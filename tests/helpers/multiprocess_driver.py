"""`python tests/helpers/multiprocess_driver.py ARGS` runs `python -m colorjax.train ARGS` unchanged, and records at
every checkpoint save a digest of the train state *this process* holds (its own copy of the replicated arrays), so that
tests/system/test_multiprocess.py can check that the processes of a multi-process run agree.

The checkpoint itself cannot show that: Orbax writes one replica of a replicated array, so two processes whose
parameters had drifted apart would still leave a clean checkpoint. The digests go, one JSON line per save, to
`$COLORJAX_TEST_DIGESTS/process_<i>.jsonl`: {"step", "state" (every leaf), "params"}.
"""

import hashlib
import json
import os
import runpy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


def digest(tree: Any) -> str:
    """sha256 over every leaf's dtype, shape and bytes; a jax.Array contributes this process's first shard."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array):
            leaf = leaf.addressable_shards[0].data
        array = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{array.dtype}{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def params_of(tree: Any) -> Any:
    """`tree.params` or `tree["params"]` (a TrainState or its restored dict), else None."""
    if isinstance(tree, Mapping):
        return tree.get("params")
    return getattr(tree, "params", None)


def find_state(args: Any) -> Any:
    """The saved item that has `params`, wherever the trainer put it in its Orbax save args."""
    if params_of(args) is not None:
        return args
    children = args.values() if isinstance(args, Mapping) else [getattr(args, "item", None)]
    for child in children:
        if child is not None and (found := find_state(child)) is not None:
            return found
    return None


def record_saves(folder: Path) -> None:
    original_save = ocp.CheckpointManager.save

    def save(self, step, *positional, args=None, **keywords):
        state = find_state(args)
        if state is not None:
            line = {"step": int(step), "state": digest(state), "params": digest(params_of(state))}
            with open(folder / f"process_{jax.process_index()}.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")
        return original_save(self, step, *positional, args=args, **keywords)

    ocp.CheckpointManager.save = save


if __name__ == "__main__":
    record_saves(Path(os.environ["COLORJAX_TEST_DIGESTS"]))
    sys.argv = ["colorjax.train", *sys.argv[1:]]
    runpy.run_module("colorjax.train", run_name="__main__", alter_sys=True)
