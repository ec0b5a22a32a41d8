"""Search wrappers (FAISS, Lucene via Pyserini), fusion and rerank ordering: no Dagster here."""
