from .prepare import prepare, prepare_whole, read_meta  # noqa: F401
