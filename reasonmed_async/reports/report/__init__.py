"""``reasonmed report``: a run's figures beside the paper's, as one offline HTML page and report.json."""
