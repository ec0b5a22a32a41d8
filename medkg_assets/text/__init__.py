"""Pure text handling: reading and validating documents, chunking them."""
