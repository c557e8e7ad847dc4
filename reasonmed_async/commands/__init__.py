"""The handlers of the ``reasonmed`` commands, one module per family; ``cli.py`` holds the table and ``main``."""
