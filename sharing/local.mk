# sharing/ - the deduplication engine.
