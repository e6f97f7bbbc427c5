"""The ``vot`` sub-commands, one module per group; each has ``register(sub)`` for the parser."""
