"""notifier installs as the docs say, into a fresh virtual environment.

* the core's distribution is ``notifier-core`` (``notifier`` on the package index is an
  unrelated project), and every plugin depends on it;
* no doc tells users to ``pip install`` one of our distributions by name from an index,
  where none of them is published;
* wheels of the core and of every bundled plugin install into a fresh environment and
  work there;
* the plugin guide's install and test steps work, as written, in a fresh environment.

The environments are made by the interpreter running the tests and get their packages
from the configured package index (or pip's cache); nothing of the checkout is on their
``sys.path``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from notifier.plugins import CORE_DIST

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))
NTFY = ROOT / "examples" / "ntfy-plugin"
GUIDE = ROOT / "docs" / "writing-a-plugin.md"
# What a checkout holds but `git clone` does not: not copied into the build's checkout.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.egg-info", ".venv", "venv", "build", "dist", ".*_cache",
    ".hypothesis", "*.db", "*.db-*", "*.jsonl", "results",
)  # fmt: skip


def project(directory: Path) -> dict:
    return tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalized(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0])


OURS = {normalized(project(d)["name"]) for d in [ROOT, *PLUGINS, NTFY]}


# -- the names ----------------------------------------------------------------------------


def test_the_core_distribution_is_notifier_core_and_plugins_show_it_as_such():
    assert project(ROOT)["name"] == "notifier-core"
    assert CORE_DIST == "notifier-core"  # the DISTRIBUTION of the built-in kinds


@pytest.mark.parametrize("plugin", [*PLUGINS, NTFY], ids=lambda p: p.name)
def test_every_plugin_depends_on_the_core_distribution(plugin: Path):
    meta = project(plugin)
    assert meta["name"].startswith("notifier-")
    names = {requirement_name(r) for r in meta["dependencies"]}
    assert "notifier-core" in names, f"{plugin.relative_to(ROOT)} does not need notifier-core"
    assert "notifier" not in names, "`notifier` on the package index is another project"


def pip_installs(doc: Path) -> list[str]:
    """Every ``pip install ...`` command of a Markdown file: code block lines, and inline
    code spans (which may wrap over lines)."""
    text = doc.read_text(encoding="utf-8")
    found = []
    for i, part in enumerate(re.split(r"^\s*```.*$", text, flags=re.MULTILINE)):
        if i % 2:  # inside a fence
            lines = part.replace("\\\n", " ").splitlines()
        else:
            lines = [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", part)]
        for line in lines:
            found += [m.group(1) for m in re.finditer(r"pip install ([^&;|#]*)", line)]
    return found


DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/**/*.md")])


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_no_doc_installs_our_distributions_by_name_from_a_package_index(doc: Path):
    for command in pip_installs(doc):
        words = shlex.split(command)
        if "--find-links" in words or "-f" in words:
            continue  # names looked up among local wheels
        named = [
            word
            for word in words
            if not word.startswith("-") and "/" not in word and not word.startswith(".")
        ]
        wrong = sorted(n for n in named if requirement_name(n) in OURS | {"notifier"})
        assert not wrong, (
            f"{doc.relative_to(ROOT)}: `pip install {command}` asks a package index for "
            f"{', '.join(wrong)}, which is not published there (see docs/installing.md)"
        )


# -- fresh environments -------------------------------------------------------------------


def run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{shlex.join(map(str, args))} exited {done.returncode}:\n{output}"
    return done.stdout


@pytest.fixture(scope="session")
def outside() -> dict[str, str]:
    """Environment variables like a new user's shell: nothing points into a virtual
    environment or at this checkout."""
    active = os.environ.get("VIRTUAL_ENV")
    path = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if not active or not d.startswith(active)
    ]
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_", "PYTHON", "NOTIFIER_", "VIRTUAL_ENV"))
    }
    return {**env, "PATH": os.pathsep.join(path)}


def fresh_venv(where: Path, env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A new virtual environment: its bin directory, and ``env`` with it activated."""
    run([sys.executable, "-m", "venv", where], where.parent, env)
    bindir = where / "bin"
    return bindir, {**env, "VIRTUAL_ENV": str(where), "PATH": f"{bindir}{os.pathsep}{env['PATH']}"}


@pytest.fixture(scope="session")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this checkout's sources, so that builds write nothing into the real one."""
    copy = tmp_path_factory.mktemp("checkout") / "notifier"
    shutil.copytree(ROOT, copy, ignore=NOT_SOURCE)
    return copy


@pytest.fixture(scope="session")
def wheels(checkout: Path, outside: dict[str, str], tmp_path_factory) -> Path:
    """Wheels of the core and of every bundled plugin, as docs/installing.md builds them."""
    dist = tmp_path_factory.mktemp("dist")
    plugins = [f"./{p.relative_to(ROOT)}" for p in PLUGINS]
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist]
    run([*pip_wheel, ".", *plugins], checkout, outside)
    return dist


@pytest.mark.slow
def test_the_wheels_of_the_core_and_every_plugin_install_into_a_fresh_venv_and_work(
    wheels: Path, outside: dict[str, str], tmp_path: Path
):
    bindir, env = fresh_venv(tmp_path / "venv", outside)
    names = [project(d)["name"] for d in [ROOT, *PLUGINS]]
    built = sorted(w.name.split("-")[0] for w in wheels.glob("*.whl"))
    assert built == sorted(n.replace("-", "_") for n in names)
    # By name, as docs/installing.md says: pip finds ours among the wheels, the rest on
    # the package index.
    run([bindir / "python", "-m", "pip", "install", "--find-links", wheels, *names], tmp_path, env)

    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=NOT_SOURCE)
    modules = {
        ep.split(":")[0].split(".")[0]
        for d in PLUGINS
        for ep in project(d)["entry-points"]["notifier"].values()
    }
    where = run(
        [bindir / "python", "-c", "import notifier; print(notifier.__file__)"], tmp_path, env
    )
    assert Path(where.strip()).is_relative_to(tmp_path / "venv")  # not this checkout's
    run([bindir / "python", "-c", f"import {', '.join(sorted(modules))}"], tmp_path, env)

    listing = json.loads(run([bindir / "notifier", "channels", "--json"], tmp_path, env))
    statuses = {p["distribution"]: p["status"] for p in listing["plugins"]}
    assert statuses == dict.fromkeys(names, "loaded"), statuses
    check = ["-m", "notifier", "check", "--config", "examples/quickstart.toml"]
    run([bindir / "python", *check], tmp_path, env)


def guide_steps() -> str:
    """The plugin guide's shell commands, from writing its tests to disabling it."""
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("\n## Testing it")
    return "\n".join(re.findall(r"^```sh\n(.*?)^```$", text[start:], re.MULTILINE | re.DOTALL))


def test_the_plugin_guide_shows_every_install_step_from_a_fresh_venv():
    steps = guide_steps()
    assert "python -m venv" in steps
    assert re.search(r"pip install \.\./\.\.\n.*pip install -e '\.\[test\]'", steps)


@pytest.mark.slow
def test_the_plugin_guide_steps_install_and_test_the_example_in_a_fresh_venv(
    checkout: Path, outside: dict[str, str], tmp_path: Path
):
    # The test makes the fresh environment the guide's first step makes, so that no step
    # can ever install into the interpreter running the tests.
    _, env = fresh_venv(tmp_path / "venv", outside)
    steps = [line for line in guide_steps().splitlines() if "-m venv" not in line]
    example = checkout / NTFY.relative_to(ROOT)
    output = run(["bash", "-c", "\n".join(["set -eo pipefail", *steps])], example, env)
    assert re.search(r"\b1\d passed\b", output), output  # the plugin's tests and contract
    assert re.search(r"^ntfy +notifier-ntfy +Publish", output, re.MULTILINE), output
