"""One module per pipeline stage; each holds its assets and the checks that guard them."""
