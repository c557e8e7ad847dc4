"""``reasonmed decontam``: generation questions that overlap benchmark test questions."""
