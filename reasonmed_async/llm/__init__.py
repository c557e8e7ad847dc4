"""LLM clients: the registry that builds them from config, retries, the response cache, the wire format, one module per backend."""
