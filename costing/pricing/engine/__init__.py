"""The keyed engines: records grouped by pricing key, each key priced once by the rules."""
