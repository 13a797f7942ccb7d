"""Developer sessions: ``nox -s tests lint typecheck docs bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
# A Python that is not installed fails its session instead of skipping it with exit status 0,
# which would pass a run that tested nothing.
nox.options.error_on_missing_interpreters = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite; httpx2 and the SDKs built on it only where Python >= 3.11."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-n", "auto", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and the benchmarks."""
    session.install("-e", ".[test]", "mypy")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs; warnings (broken links, missing snippets) fail the build."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "-d", "site")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: prints ratios measured in one run, writes JSON and a plot."""
    session.install("-e", ".[test]", "matplotlib")
    session.run("python", "-m", "benchmarks", *session.posargs)
