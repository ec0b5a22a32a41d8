"""Bad CLI input is a one-line error with rc 2 and no traceback (unless --debug)."""

import os
import subprocess
import sys

import pytest

from medkg_assets.cli import main as medkg
from medkg_assets.search.query import QueryError
from medkg_assets.settings import PROJECT_ROOT


@pytest.mark.parametrize("query", ["", "   ", "?!?", "..."])
def test_search_without_searchable_words_is_refused(query, capsys):
    assert medkg(["search", query]) == 2
    err = capsys.readouterr().err
    assert "no searchable words" in err and "Traceback" not in err


@pytest.mark.parametrize("k", ["0", "-5", "ten"])
def test_search_k_must_be_a_positive_integer(k, capsys):
    with pytest.raises(SystemExit) as stopped:
        medkg(["search", "gout", "-k", k])
    assert stopped.value.code == 2 and "argument -k" in capsys.readouterr().err


def test_debug_shows_the_exception_itself():
    with pytest.raises(QueryError):
        medkg(["--debug", "search", ""])


def test_unknown_namespace_names_the_known_ones(config_dir, data_dir, capsys):
    assert medkg(["search", "gout", "--namespace", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "tiny" in err and "Traceback" not in err


def test_never_built_namespace_says_which_command_builds_it(config_dir, data_dir, tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "medkg_assets.cli", "search", "What is gout?", "--namespace", "tiny"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert (
        "not built yet" in done.stderr and "`medkg run --namespace tiny --profile minilm_cpu`" in done.stderr
    )
    assert "Traceback" not in done.stderr
