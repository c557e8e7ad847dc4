"""The one error every parser raises."""


class ParseError(ValueError):
    """A model output that does not have the shape the stage asked for."""
