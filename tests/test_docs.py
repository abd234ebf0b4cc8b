"""The documentation stays true: every claim here is checked against the code.

* every hook has a section in ``docs/hooks.md`` with its exact signature, and a test;
* every TOML example in ``docs/`` is a valid configuration (a deliberately partial or
  invalid one is marked ``<!-- not-a-config -->`` on the line before its fence);
* the Python examples of the quick start, the README and the plugin guide run, offline;
* the quick start's and the README's ``notifier`` commands on the example config exit 0;
* the error messages shown in ``docs/configuration.md`` are what ``notifier check`` prints;
* every command output shown in ``docs/cli.md`` and ``docs/quickstart.md`` (a ``console``
  block, or a ``json`` block after a ``--json`` command) is what the command prints when
  really run, and the output of ``--json`` is JSON;
* ``docs/cli.md`` covers every command and flag;
* the plugin guide's code is the code of ``examples/ntfy-plugin``, and its tests pass.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import attrs
import pytest

from notifier import hookspecs
from notifier.cli.main import build_parser, main
from notifier.config import parse_config
from notifier.errors import ConfigError
from notifier.plugins import PluginHost

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
NTFY = EXAMPLES / "ntfy-plugin"
GUIDE = DOCS / "writing-a-plugin.md"
NOT_A_CONFIG = "<!-- not-a-config -->"
# "# notifier_ntfy.py" or "# tests/test_ntfy.py (continued)" starts a block of a file.
FILE_HEADER = re.compile(r"^# ([\w./-]+\.(?:py|toml))(?: \(continued\))?$")


@attrs.frozen
class Block:
    """One fenced code block of a Markdown file."""

    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marked: bool  # the line before the fence is <!-- not-a-config -->

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def file(self) -> str | None:
        """The file this block is (part of), from a first line like ``# name.py``."""
        match = FILE_HEADER.match(self.text.split("\n", 1)[0])
        return match.group(1) if match else None

    @property
    def body(self) -> str:
        """The text without its file header line."""
        return self.text.split("\n", 1)[1] if self.file else self.text


def blocks(doc: Path) -> list[Block]:
    found, lines = [], doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        indent, start = len(opening.group(1)), i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        before = lines[start - 1].strip() if start else ""
        found.append(
            Block(doc, start + 1, opening.group(2), "\n".join(body), before == NOT_A_CONFIG)
        )
        i += 1
    return found


def sections(doc: Path) -> dict[str, str]:
    """``## heading`` -> the text up to the next heading of that level or higher."""
    text = doc.read_text(encoding="utf-8")
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def files_of_tests() -> list[Path]:
    found = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("plugins/*/tests/**/test_*.py")]
    return [p for p in found if p.resolve() != Path(__file__).resolve()]


# -- hooks ------------------------------------------------------------------------------

HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("notifier_"))


def signature(name: str) -> str:
    annotations = dict(getattr(hookspecs, name).__annotations__)
    returns = annotations.pop("return")
    params = ", ".join(f"{arg}: {kind}" for arg, kind in annotations.items())
    return f"def {name}({params}) -> {returns}:"


def test_the_hookspec_module_defines_hooks():
    assert len(HOOKS) >= 7, HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_with_its_exact_signature(hook: str):
    section = sections(DOCS / "hooks.md").get(hook)
    assert section is not None, f"docs/hooks.md has no '## {hook}' section"
    code = re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert code and signature(hook) in code[0], (
        f"docs/hooks.md '## {hook}': the first python block must show the signature\n"
        f"    {signature(hook)}"
    )
    first_result = getattr(hookspecs, hook).notifier_spec["firstresult"]
    phrase = "Stops at the first non-None result" if first_result else "implementations are called"
    assert phrase in section, f"docs/hooks.md '## {hook}' must say: {phrase}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test(hook: str):
    pattern = re.compile(rf"\b{hook}\b")
    users = [p for p in files_of_tests() if pattern.search(p.read_text(encoding="utf-8"))]
    assert users, (
        f"no test file under tests/ or plugins/*/tests/ (besides test_docs.py) names the "
        f"hook {hook}: write a test that exercises it"
    )


def test_the_hook_reference_documents_only_hooks_that_exist():
    documented = {h for h in sections(DOCS / "hooks.md") if h.startswith("notifier_")}
    assert documented <= set(HOOKS), f"stale sections: {sorted(documented - set(HOOKS))}"


# -- TOML examples ------------------------------------------------------------------------


def load_ntfy() -> ModuleType:
    """The guide's example plugin, imported from examples/ without installing it."""
    spec = importlib.util.spec_from_file_location("notifier_ntfy", NTFY / "notifier_ntfy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def docs_host() -> Iterator[PluginHost]:
    """Every installed plugin, plus the guide's example plugin."""
    host = PluginHost.load(env={}, extra=[load_ntfy()])
    yield host
    host.close()


TOML_BLOCKS = [
    b
    for doc in sorted(DOCS.rglob("*.md"))
    for b in blocks(doc)
    if b.lang == "toml" and not b.marked
]


def test_the_docs_have_configuration_examples():
    assert len(TOML_BLOCKS) >= 10


# Values a fake environment tries for each variable an example reads, in turn, until the
# kind accepts one: "1" converts to every option type; some options want a URL (a Redis
# one for [celery]) or a flag.
FAKE_VALUES = (
    "1",
    "https://hooks.example.com/hook/0123456789abcdef",
    "true",
    "redis://127.0.0.1:6379/0",
)


def env_references(data: object, prefix: str = "") -> dict[str, str]:
    """Key path -> variable name, for every ``{ env = "NAME" }`` in parsed TOML."""
    if isinstance(data, dict):
        if isinstance(data.get("env"), str) and set(data) <= {"env", "default"}:
            return {prefix: data["env"]}
        found: dict[str, str] = {}
        for key, value in data.items():
            found.update(env_references(value, f"{prefix}.{key}" if prefix else key))
        return found
    if isinstance(data, list):
        return {k: v for i, item in enumerate(data) for k, v in env_references(item).items()}
    return {}


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=lambda b: b.where)
def test_every_toml_example_is_a_valid_configuration(block: Block, docs_host: PluginHost):
    try:
        data = tomllib.loads(block.text)
    except tomllib.TOMLDecodeError as exc:
        data, problem = None, f"not valid TOML: {exc}"
    references = env_references(data) if data is not None else {}
    pick = dict.fromkeys(references.values(), 0)
    while data is not None:
        env = {name: FAKE_VALUES[i] for name, i in pick.items()}
        try:
            parse_config(data, docs_host, block.where, env)
            return
        except ConfigError as exc:
            problem = str(exc)
            rejected = {
                name
                for issue in exc.issues
                for path, name in references.items()
                if issue.path == path or issue.path.startswith(f"{path}.")
            }
        retry = [name for name in rejected if pick[name] + 1 < len(FAKE_VALUES)]
        if not retry:
            break
        for name in retry:
            pick[name] += 1
    pytest.fail(f"{block.where}: not a valid configuration:\n{problem}\n{_HOW_TO_MARK}")


_HOW_TO_MARK = f"(a deliberately partial example needs {NOT_A_CONFIG} on the line before it)"


# -- Python examples and commands ---------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch directory holding a copy of examples/, as the current directory."""
    copy_examples(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("NOTIFIER_CONFIG", "NOTIFIER_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if str(tmp_path) in str(getattr(sys.modules[name], "__file__", "") or ""):
            del sys.modules[name]


def assemble(found: list[Block]) -> dict[str, str]:
    """The files that blocks headed ``# <file>`` make up, by name."""
    files: dict[str, list[str]] = {}
    for block in found:
        if block.file:
            files.setdefault(block.file, []).append(block.body.strip("\n"))
    return {name: "\n\n\n".join(parts) + "\n" for name, parts in files.items()}


def write_files(found: list[Block], into: Path) -> None:
    for name, text in assemble(found).items():
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        (into / name).write_text(text, encoding="utf-8")


def run_python_blocks(doc: Path, into: Path) -> int:
    found = blocks(doc)
    write_files([b for b in found if b.lang in ("python", "toml")], into)
    ran = 0
    for block in found:
        if block.lang != "python" or block.file:
            continue
        try:
            exec(compile(block.text, block.where, "exec"), {"__name__": "__docs__"})
        except Exception as exc:
            raise AssertionError(f"{block.where}: the example fails: {exc!r}") from exc
        ran += 1
    return ran


@pytest.mark.parametrize("doc", ["docs/quickstart.md", "README.md"])
def test_the_python_examples_run(doc: str, workdir: Path, capsys: pytest.CaptureFixture):
    assert run_python_blocks(ROOT / doc, workdir) >= 1, f"{doc} has no python example"


def test_the_hook_reference_shows_how_an_application_registers_a_plugin_object(
    workdir: Path, capsys: pytest.CaptureFixture
):
    section = sections(DOCS / "hooks.md")["Registering a plugin object in your application"]
    code = re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert code, "docs/hooks.md shows no example of registering a plugin object"
    for number, text in enumerate(code, 1):
        try:
            exec(compile(text, f"docs/hooks.md (registering, example {number})", "exec"), {})
        except Exception as exc:
            raise AssertionError(f"docs/hooks.md: registering example {number}: {exc!r}") from exc


def test_the_plugin_guide_examples_run_offline(workdir: Path, capsys: pytest.CaptureFixture):
    assert run_python_blocks(GUIDE, workdir) >= 2
    assert "delivered msg1" in capsys.readouterr().out


def test_the_plugin_guide_shows_the_example_plugin_file_for_file():
    texts = assemble(blocks(GUIDE))
    assert set(texts) == {"pyproject.toml", "notifier_ntfy.py", "tests/test_ntfy.py"}
    for name, text in texts.items():
        assert text == (NTFY / name).read_text(encoding="utf-8"), (
            f"docs/writing-a-plugin.md shows a different {name} than examples/ntfy-plugin/"
        )


def install_like_pip(pyproject: Path, site: Path) -> None:
    """Copy the plugin's module into ``site`` with a dist-info built from its pyproject,
    so discovery goes through ``importlib.metadata`` as after ``pip install``."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    shutil.copy(pyproject.parent / "notifier_ntfy.py", site)
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    (info / "METADATA").write_text(metadata, encoding="utf-8")
    lines = [f"{name} = {value}" for name, value in project["entry-points"]["notifier"].items()]
    (info / "entry_points.txt").write_text("[notifier]\n" + "\n".join(lines) + "\n")


def test_the_installed_example_plugin_is_found_and_can_be_disabled(workdir: Path):
    install_like_pip(NTFY / "pyproject.toml", workdir)
    importlib.invalidate_caches()
    assert PluginHost.load(env={}).kinds["ntfy"].plugin == "notifier-ntfy"
    for disabled in ("ntfy", "notifier-ntfy", "slack, ntfy"):
        host = PluginHost.load(env={"NOTIFIER_DISABLE_PLUGINS": disabled})
        assert "ntfy" not in host.kinds
        assert ("ntfy", "notifier-ntfy", "disabled") in {
            (r.name, r.dist, r.status) for r in host.records
        }


def test_the_quick_start_install_installs_every_bundled_plugin():
    """The quick start says `pip install -r requirements.txt` brings every bundled plugin."""
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    installed = {Path(line.split()[-1]).name for line in lines if "plugins/" in line}
    bundled = {p.parent.name for p in ROOT.glob("plugins/*/pyproject.toml")}
    assert bundled <= installed, f"requirements.txt misses {sorted(bundled - installed)}"


def shell_commands(doc: Path) -> list[str]:
    """The doc's ``sh`` command lines that run ``notifier`` on the example config,
    without their ``pip install`` steps (the suite runs installed)."""
    found = []
    for block in blocks(doc):
        if block.lang != "sh":
            continue
        for line in block.text.replace("\\\n", " ").splitlines():
            if "examples/quickstart.toml" not in line or not re.search(r"\bnotifier\b", line):
                continue
            parts = [p.strip() for p in line.split("&&") if "pip install" not in p]
            found.append(" && ".join(parts))
    return found


CLI_DOCS = ["docs/quickstart.md", "README.md"]
COMMANDS = [(doc, command) for doc in CLI_DOCS for command in shell_commands(ROOT / doc)]


@attrs.frozen
class Shown:
    """Output a doc shows for a command: a console block (``$ command`` then its output,
    or the output of the ``sh`` block just before), or a json block after a ``sh`` block."""

    block: Block
    command: str
    output: str


def shown_outputs(doc: Path) -> list[Shown]:
    found, previous = [], None
    for block in blocks(doc):
        if block.lang == "console":
            if block.text.startswith("$ "):
                command, _, output = block.text.partition("\n")
                found.append(Shown(block, command.removeprefix("$ "), output))
            elif previous is not None:
                found.append(Shown(block, previous, block.text))
        elif block.lang == "json" and previous is not None and "--json" in previous:
            found.append(Shown(block, previous, block.text))
        lines = block.text.replace("\\\n", " ").splitlines() if block.lang == "sh" else []
        # One command line that runs notifier, maybe fed by a pipe: its output follows.
        one = len(lines) == 1 and re.search(r"(?:^|\|\s*)notifier\b", lines[0])
        previous = lines[0] if one else None
    return found


OUTPUT_DOCS = ["docs/quickstart.md", "docs/cli.md"]
OUTPUTS = [shown for doc in OUTPUT_DOCS for shown in shown_outputs(ROOT / doc)]
for _shown in OUTPUTS:
    if (_shown.block.doc.relative_to(ROOT).as_posix(), _shown.command) not in COMMANDS:
        COMMANDS.append((_shown.block.doc.relative_to(ROOT).as_posix(), _shown.command))


@attrs.define
class Job:
    """A subprocess started early, so that all of them run at the same time."""

    process: subprocess.Popen[str]

    streams: tuple[str, str] | None = None

    def result(self) -> tuple[int, str]:
        status, out, err = self.outputs()
        return status, out + err

    def outputs(self) -> tuple[int, str, str]:
        """The exit status, stdout and stderr."""
        if self.streams is None:
            self.streams = self.process.communicate(timeout=120)
        return self.process.returncode, *self.streams


# What running the examples leaves behind (the quick start's audit file and outbox): a
# user who tried the quick start before running the tests must not change what they see.
RUN_PRODUCTS = shutil.ignore_patterns("*.jsonl", "*.db", "*.db-wal", "*.db-shm", ".bin")


def copy_examples(into: Path, source: Path = EXAMPLES) -> Path:
    """A fresh copy of examples/ under ``into``, without what earlier runs wrote there."""
    return Path(shutil.copytree(source, into / "examples", ignore=RUN_PRODUCTS))


def test_the_examples_copy_leaves_out_what_running_the_quick_start_wrote(tmp_path: Path):
    used = copy_examples(tmp_path / "used")
    for product in ("quickstart-alerts.jsonl", "quickstart-outbox.db", "quickstart-outbox.db-wal"):
        (used / product).write_text("left by an earlier run")
    fresh = copy_examples(tmp_path / "fresh", source=used)
    products = (".jsonl", ".db", ".db-wal", ".db-shm")
    assert not [p.name for p in fresh.iterdir() if p.name.endswith(products)]
    assert (fresh / "quickstart.toml").is_file()


def spawn_shell(command: str, cwd: Path) -> Job:
    """Start ``command`` in bash, ``notifier`` and ``python`` meaning this interpreter's."""
    bindir = cwd / ".bin"
    bindir.mkdir()
    # Scripts, not symlinks: a virtual environment's interpreter started through a link
    # outside the environment does not find its pyvenv.cfg, and so not its packages.
    python = shlex.quote(sys.executable)
    for name, args in (("python", ""), ("python3", ""), ("notifier", " -m notifier")):
        shim = bindir / name
        shim.write_text(f'#!/bin/sh\nexec {python}{args} "$@"\n')
        shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    for name in ("NOTIFIER_CONFIG", "NOTIFIER_DISABLE_PLUGINS"):
        env.pop(name, None)
    return Job(
        subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )


def test_python_in_a_doc_command_is_the_interpreter_running_the_tests(tmp_path: Path):
    """Inside a virtual environment too: its packages, not the base interpreter's."""
    script = "python -c 'import sys; print(sys.prefix)' && python3 -c 'import notifier'"
    status, output = spawn_shell(script, tmp_path).result()
    assert status == 0, output
    assert output.splitlines()[0] == sys.prefix


@pytest.fixture(scope="module", autouse=True)
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[object, Job]]:
    """Every subprocess of this module, started with its first test so they run while the
    in-process tests do: each command of the quick start and the README in a fresh copy
    of examples/, and the example plugin's tests. Those still running at the end (a
    filtered run) are killed."""
    started: dict[object, Job] = {}
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    started["plugin"] = Job(  # the longest: first
        subprocess.Popen(
            [sys.executable, *pytest_args],
            cwd=NTFY,
            # As in the plugin's own checkout: no third-party pytest plugins to import.
            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    for key in COMMANDS:
        cwd = tmp_path_factory.mktemp("command")
        copy_examples(cwd)
        started[key] = spawn_shell(key[1], cwd)
    yield started
    for job in started.values():
        if job.process.poll() is None:
            job.process.kill()
        job.process.communicate()


@pytest.mark.parametrize("doc", CLI_DOCS)
def test_the_doc_shows_commands_on_the_example_config(doc: str):
    assert shell_commands(ROOT / doc), f"{doc} shows no notifier command on the example"


# -- configuration error examples ---------------------------------------------------------


def console_examples() -> list[tuple[Block, list[Block]]]:
    """Each ``$ notifier check ...`` console block, with the TOML files shown before it."""
    found, files = [], []
    for block in blocks(DOCS / "configuration.md"):
        if block.lang == "toml" and block.file:
            files.append(block)
        elif block.lang == "console" and block.text.startswith("$ "):
            found.append((block, list(files)))
    return found


ERROR_EXAMPLES = console_examples()


def test_the_configuration_reference_shows_every_class_of_error():
    shown = " ".join(block.text for block, _ in ERROR_EXAMPLES)
    for phrase in [
        "file not found",
        "valid TOML",
        "no such option",
        "expected true or false",
        "an installed channel kind",
        "a channel defined under [channels]",
        "is not set",
    ]:
        assert phrase in shown, f"docs/configuration.md shows no error with {phrase!r}"


@pytest.mark.parametrize("example", ERROR_EXAMPLES, ids=lambda e: e[0].where)
def test_every_error_example_is_what_notifier_check_prints(
    example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    console, files = example
    for block in files:
        # The "# name.toml" header stays: line numbers in messages match what readers see.
        (tmp_path / block.file).write_text(block.text + "\n", encoding="utf-8")
        for name in re.findall(r'\benv\s*=\s*"([^"]+)"', block.text):
            monkeypatch.delenv(name, raising=False)
    command, *expected = console.text.splitlines()
    words = shlex.split(command.removeprefix("$ "))
    while "=" in words[0]:  # VAR=value before the command
        monkeypatch.setenv(*words.pop(0).split("=", 1))
    assert words[0] == "notifier", f"{console.where}: expected a notifier command"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFIER_CONFIG", raising=False)
    status = run_cli(words[1:])
    captured = capsys.readouterr()
    printed = (captured.out + captured.err).splitlines()
    assert status == (2 if "error" in console.text else 0), _mismatch(console, printed)
    assert len(printed) == len(expected), _mismatch(console, printed)
    for want, got in zip(expected, printed, strict=True):
        # "…" in the docs stands for text that depends on the installed plugins.
        pattern = ".*".join(re.escape(piece) for piece in want.split("…"))
        assert re.fullmatch(pattern, got), _mismatch(console, printed)


def run_cli(argv: list[str]) -> int:
    """``notifier`` in this process (much faster than a subprocess), logging restored."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return main(argv)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _mismatch(console: Block, printed: list[str]) -> str:
    return f"{console.where}: notifier check now prints:\n" + "\n".join(printed)


# -- the command line reference ------------------------------------------------------------


def commands() -> Iterator[tuple[str, object]]:
    """(``"send"``, parser), (``"group create"``, parser), ... for every command."""
    import argparse

    def walk(parser: argparse.ArgumentParser, prefix: str) -> Iterator[tuple[str, object]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield f"{prefix} {name}".strip(), sub
                    yield from walk(sub, f"{prefix} {name}")

    yield from walk(build_parser(), "")


def flags(parser: object) -> list[str]:
    return sorted(
        option
        for action in parser._actions  # type: ignore[attr-defined]
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    )


CLI_COMMANDS = list(commands())


@pytest.mark.parametrize(("name", "parser"), CLI_COMMANDS, ids=[n for n, _ in CLI_COMMANDS])
def test_every_command_and_flag_is_in_the_cli_reference(name: str, parser: object):
    heading = f"notifier {name}"
    section = sections(DOCS / "cli.md").get(heading)
    if section is None:
        # A subcommand may share its parent's section ("notifier group" holds "create").
        parent = heading.rsplit(" ", 1)[0]
        section = sections(DOCS / "cli.md").get(parent)
    assert section is not None, f"docs/cli.md has no '## {heading}' section"
    # A command documented at length elsewhere may leave its flags to the linked page.
    linked = "".join(
        (DOCS / target).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]*)?\)", section)
        if (DOCS / target).is_file()
    )
    shared = set(flags(build_parser()))  # global options: checked once, below
    missing = [f for f in flags(parser) if f not in shared and f not in section and f not in linked]
    assert not missing, f"docs/cli.md '## {heading}' does not mention {', '.join(missing)}"


def test_the_cli_reference_covers_the_global_options_and_exit_statuses():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for needle in ["--config", "NOTIFIER_CONFIG", "-vv", "--debug", "--version", "| 0 |", "| 2 |"]:
        assert needle in text, f"docs/cli.md does not mention {needle}"


# -- links --------------------------------------------------------------------------------

DOC_FILES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))


@pytest.mark.parametrize("doc", DOC_FILES)
def test_every_page_is_in_the_table_of_contents(doc: str):
    if doc == "index.md":
        return
    assert f"]({doc})" in (DOCS / "index.md").read_text(encoding="utf-8"), (
        f"docs/index.md does not link to {doc}"
    )


def anchors(doc: Path) -> set[str]:
    headings = re.findall(r"^#+ +(.+?)\s*$", doc.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


OWN = ["index", "quickstart", "configuration", "hooks", "writing-a-plugin", "cli"]
LINKS = [
    (f"{name}.md", target)
    for name in [*OWN, "channels/builtin"]
    for target in re.findall(r"\]\(([^)\s]+)\)", (DOCS / f"{name}.md").read_text(encoding="utf-8"))
    if not re.match(r"[a-z]+:", target)
]


@pytest.mark.parametrize(("doc", "target"), LINKS, ids=[f"{d}->{t}" for d, t in LINKS])
def test_every_link_in_the_core_docs_resolves(doc: str, target: str):
    path, _, anchor = target.partition("#")
    page = (DOCS / doc).parent / path if path else DOCS / doc
    if not page.exists() and page.suffix == ".md" and page.resolve().is_relative_to(DOCS):
        pytest.skip(f"{page.relative_to(DOCS)} is not written yet")
    assert page.exists(), f"docs/{doc} links to {target}, which does not exist"
    if anchor and page.suffix == ".md":
        assert anchor in anchors(page), f"docs/{doc} links to #{anchor}, not a heading there"


# -- the subprocesses started by `jobs`, last so they had time to finish -----------------


def test_the_example_plugin_passes_its_own_tests_and_the_channel_contract(jobs):
    status, output = jobs["plugin"].result()
    assert status == 0, output[-4000:]
    assert re.search(r"\b1\d passed\b", output), output[-500:]


@pytest.mark.parametrize("key", COMMANDS, ids=[command for _, command in COMMANDS])
def test_every_command_on_the_example_config_exits_0(key: tuple[str, str], jobs):
    status, output = jobs[key].result()
    shown = [s for s in OUTPUTS if s.command == key[1] and "error:" in s.output]
    want = 2 if shown else 0
    assert status == want, f"{key[0]}: `{key[1]}` exited {status}:\n{output}"


def test_the_docs_show_command_output_and_json_output():
    langs = {(s.block.doc.name, s.block.lang) for s in OUTPUTS}
    assert {("quickstart.md", "console"), ("quickstart.md", "json")} <= langs, langs
    assert {("cli.md", "console"), ("cli.md", "json")} <= langs, langs


# Shown output that differs from run to run: durations, times, random keys.
VARYING = [
    (re.compile(r"\b\d+(?:\.\d+)? ms\b"), "<ms>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\b"), "<time>"),
]
VARYING_JSON = {"latency_ms", "idempotency_key"}


def _normal(line: str) -> str:
    """A line as compared: column alignment (runs of spaces) and varying values aside."""
    for pattern, placeholder in VARYING:
        line = pattern.sub(placeholder, line)
    return " ".join(line.split())


def _output_pattern(shown: str) -> re.Pattern[str]:
    """``…`` alone on a line stands for any lines; within a line, for any text."""
    parts = []
    for line in shown.splitlines():
        if line.strip() == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*".join(re.escape(p) for p in _normal(line).split("…")) + r"\n")
    return re.compile("".join(parts))


def _same_json(shown: object, real: object, where: str = "") -> list[str]:
    if isinstance(shown, dict) and isinstance(real, dict):
        if set(shown) != set(real):
            return [f"{where or 'top'}: keys {sorted(shown)} shown, {sorted(real)} printed"]
        return [
            problem
            for key in shown
            if key not in VARYING_JSON
            for problem in _same_json(shown[key], real[key], f"{where}.{key}")
        ]
    if isinstance(shown, list) and isinstance(real, list) and len(shown) == len(real):
        return [
            p
            for i, (s, r) in enumerate(zip(shown, real, strict=True))
            for p in _same_json(s, r, f"{where}[{i}]")
        ]
    return [] if shown == real else [f"{where}: {shown!r} shown, {real!r} printed"]


@pytest.mark.parametrize("shown", OUTPUTS, ids=lambda s: s.block.where)
def test_every_output_shown_is_what_the_command_prints(shown: Shown, jobs):
    _, out, err = jobs[(shown.block.doc.relative_to(ROOT).as_posix(), shown.command)].outputs()
    if shown.block.lang == "json":
        try:
            printed = json.loads(out)
        except ValueError as exc:
            pytest.fail(f"{shown.block.where}: `{shown.command}` printed no JSON ({exc}):\n{out}")
        problems = _same_json(json.loads(shown.output), printed)
        assert not problems, f"{shown.block.where}: `{shown.command}`:\n" + "\n".join(problems)
        return
    text = "".join(_normal(line) + "\n" for line in (out + err).splitlines())
    assert _output_pattern(shown.output).fullmatch(text), (
        f"{shown.block.where}: `{shown.command}` now prints:\n{out}{err}"
    )
