"""Pure vector logic: the incremental cache, hashing and parity, validation, FAISS indexes."""
