"""Question loaders: one module per dataset, the shared validation, the input error."""
