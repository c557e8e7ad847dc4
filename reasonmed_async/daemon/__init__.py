"""The long-running service: control API, inbox, jobs."""
