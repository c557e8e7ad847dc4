"""Prometheus metrics of a running pipeline (``GET /metrics`` on the daemon): see ``registry.Metrics``."""
