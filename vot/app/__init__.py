"""The entry layer: the command line, `vot serve` and `vot demo`.

The only part of the code that wires the core (:mod:`vot`), the workers (:mod:`workers`) and
the web app (:mod:`review_ui`) together.
"""
