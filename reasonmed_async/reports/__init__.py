"""What a database says: exports, their formats, status, progress, scores."""
