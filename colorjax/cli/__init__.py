"""The commands: one thin module per command (`main(argv) -> int`, `run(argv)`), run by `colorjax CMD`
(colorjax/__main__.py) and `python -m colorjax.CMD`; `common` holds their shared manners. No library imports this
package."""
