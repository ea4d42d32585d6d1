"""Dataset adapters; every module here registers its datasets on import."""
