"""The one error a question loader raises: where in which file, and what is wrong."""

from __future__ import annotations


class InputError(Exception):
    """A problem in an input file, located by file, line or record, and field.

    ``line`` is the 1-based line of a JSONL file (or of broken JSON in a ``.json``
    file), the line where a CSV record starts, or the 1-based record number in a
    JSON file.  ``record`` names that record where a JSON file has one: its
    number in a list, or a label such as ``"pmid 123"`` in a dict keyed by id.
    ``field`` is the offending key or column, when there is one.  An error about
    the whole file (unreadable, empty, refused as a test split, a MedMCQA ``cop``
    whose base cannot be told) has neither line nor record.

    ``str()`` gives, for example::

        examples/bad.jsonl:3: field 'answer': 'E' is not among the 4 options
        data.json: record 3: field 'options': needs 2..10 options, got 1
        data.json: record 'pmid 123': field 'final_decision': 'perhaps' is not yes, no or maybe
        anatomy_dev.csv:7: field 'answer': 'E' is not a letter A-D
    """

    def __init__(
        self,
        file: str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        record: int | str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.record = record
        self.message = message
        super().__init__(self._render())

    @property
    def where(self) -> str:
        """``file:line``, ``file: record N`` or ``file: record 'label'``."""
        if isinstance(self.record, str):
            return f"{self.file}: record {self.record!r}"
        if self.record is not None:
            return f"{self.file}: record {self.record}"
        if self.line is not None:
            return f"{self.file}:{self.line}"
        return self.file

    def _render(self) -> str:
        parts = [self.where]
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        parts.append(self.message if len(self.message) <= 400 else self.message[:399] + "…")
        return ": ".join(parts)

    def __reduce__(self):  # keep it picklable despite the keyword-only arguments
        return (_rebuild, (self.file, self.message, self.line, self.field, self.record))


def _rebuild(file: str, message: str, line, field, record) -> InputError:
    return InputError(file, message, line=line, field=field, record=record)
