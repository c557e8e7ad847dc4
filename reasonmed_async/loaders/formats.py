"""The names of the question formats ``--source-format`` takes (``dispatch.py`` reads them).

Apart from the loaders, so that the ``reasonmed`` parser, built at every start (``--help`` too),
lists them without importing any loader."""

from __future__ import annotations

SOURCE_FORMATS = ("generic", "pubmedqa", "medqa", "medmcqa", "mmlu")
