"""``reasonmed eval``: zero-shot multiple-choice accuracy of a configured model, as the paper's Table 4."""
