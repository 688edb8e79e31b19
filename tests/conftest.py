"""The root of the test suite: the shared fixtures plugin (tests/helpers/fixtures.py).

Helper functions are imported from `helpers` (tests/helpers/), never from another test module.
"""

pytest_plugins = ["helpers.fixtures"]
