"""What the tests share, kept out of the test modules so that no test module imports another.

Plain functions and constants live in importable modules (`from helpers.photos import make_photo`; pyproject's
`pythonpath` puts `tests/` on sys.path, so subprocesses that add `tests/` find them too):

- `paths`: REPO, SHARED_DIR (the team's ../shared, or $COLORJAX_SHARED), TEST_DATA (tests/data);
- `photos`: `make_photo`, a smooth colourful generated photo;
- `runs`: `tiny_config` (base_config shrunk to seconds), `restored_state`, `save_run` (a checkpoint without training);
- `weights`: parameter counts, relative error, random Keras weights (the import tests);
- `bad_inputs`: `build_corpus`, awkward and broken image files;
- `variables`: `numpy_init`, random model variables drawn with NumPy (no compile of `model.init`);
- `configs`: `load_repo_config`, configs/NAME.py's `get_config(variant)`;
- `ddcolor`: random weights in the authors' DDColor layout at any width, and a torch-saved `.pth` of them;
- `ddcolor_training`: the authors' training pieces in PyTorch (losses, discriminator, a torchvision-layout VGG16-BN),
  re-exported from `colorjax.bench.ddcolor_train_torch`;
- `serve`: `hint_colorizer`, a SIGGRAPH17 whose hand-set weights carry colour points through;
- `videos`: clips of the kinds real files are (AVI with a 1/fps time base, PCM sound, a display matrix, a header
  that over-counts frames), written with PyAV;
- `multiprocess_driver`: a script (`python tests/helpers/multiprocess_driver.py ARGS`) and its `digest`.

Fixtures live in one pytest plugin, `helpers.fixtures`, which tests/conftest.py loads with `pytest_plugins`.
"""
