"""`python -m medkg_assets.search.lucene_build ARGS`: Anserini's IndexCollection in its own process.

Run as a subprocess so the JVM never lives in a process that may fork later.
"""

import sys

from medkg_assets.search.jvm import start_jvm

if __name__ == "__main__":
    start_jvm()
    from jnius import autoclass

    args = [arg[1:] if arg.startswith("--") else arg for arg in sys.argv[1:]]
    autoclass("io.anserini.index.IndexCollection").main(args)
