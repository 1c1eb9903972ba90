"""compat/circuits_tests.py: the import rewrite and the numbers, on a fake circuits sdist.

No network: the sdist is a miniature tar.gz built here, laid out like circuits' (a top
directory holding ``tests/__init__.py``, ``tests/conftest.py`` and ``tests/<dir>/``), and the
package under test is a fake ``fakecomp`` so the numbers do not move with netcomp's layout.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "compat" / "circuits_tests.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("circuits_tests", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ALPHA = '''\
"""Alpha tests (circuits)."""
import time

import pytest

import circuits.core as core_mod
from circuits import Component

from .helpers import VALUE

NAME = "circuits.web"


def _unused():
    return circuits.Component


def test_pass():
    assert Component.__name__ == "Component" and core_mod.MARK == "core" and VALUE == 1


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n


def test_fail():
    assert VALUE == 2, "value differs"


def test_skip():
    pytest.skip("not here")


@pytest.mark.xfail(reason="known")
def test_xfail():
    raise AssertionError


def test_timeout():
    time.sleep(5)


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")


def test_error(broken):
    pass
'''

BETA = """\
from circuits.net.events import write


def test_never():
    assert write


class TestGroup:
    def test_one(self):
        pass
"""

HANG = """\
import time

import pytest


def test_a_pass():
    pass


@pytest.mark.timeout(0)
def test_b_hang():
    time.sleep(60)


def test_c_never():
    pass
"""

CRASH = """\
import os


def test_a_before():
    pass


def test_b_crash():
    os._exit(3)


def test_c_after():
    pass
"""

CONFTEST = """\
import pytest

from circuits import Component


@pytest.fixture
def component():
    return Component()
"""


def make_sdist(path: Path) -> Path:
    files = {
        "PKG-INFO": "Metadata-Version: 2.1\nName: circuits\nVersion: 9.9.9\n",
        "tests/__init__.py": '"""circuits tests"""\n',
        "tests/conftest.py": CONFTEST,
        "tests/core/__init__.py": "",
        "tests/core/helpers.py": "VALUE = 1\n",
        "tests/core/test_alpha.py": ALPHA,
        "tests/core/test_beta.py": BETA,
        "tests/net/__init__.py": "",
        "tests/net/test_hang.py": HANG,
        "tests/web/__init__.py": "",
        "tests/web/test_crash.py": CRASH,
        "tests/io/test_other.py": "def test_other():\n    pass\n",  # not extracted
        "circuits/__init__.py": "",  # not extracted
    }
    sdist = path / "circuits-9.9.9.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"circuits-9.9.9/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return sdist


def make_target(path: Path) -> Path:
    site = path / "site"
    (site / "fakecomp" / "core").mkdir(parents=True)
    (site / "fakecomp" / "__init__.py").write_text("class Component:\n    pass\n")
    (site / "fakecomp" / "core" / "__init__.py").write_text('MARK = "core"\n')
    return site


def run_harness(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    sdist, site = make_sdist(tmp_path), make_target(tmp_path)
    out = tmp_path / "out.json"
    env = dict(os.environ, PYTHONPATH=str(site))
    options = ["--sdist", str(sdist), "--target", "fakecomp", "--json", str(out), "--timeout", "1"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *options, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text())


def test_rewrite_renames_only_import_statements() -> None:
    script = load_script()
    source = textwrap.dedent(
        """\
        import circuits.core.manager as manager
        from circuits import Component
        from circuits.net.events import write
        from .helpers import thing
        import circuitsfoo
        import circuits
        import circuits.web.tools
        NAME = "circuits.web"  # a comment
        value = circuits.core
        """
    )
    lines = script.rewrite_source(source).splitlines()
    assert lines == [
        "import netcomp.core.manager as manager",
        "from netcomp import Component",
        "from netcomp.net.events import write",
        "from .helpers import thing",
        "import circuitsfoo",
        "import netcomp as circuits",
        "import netcomp.web.tools",
        "import netcomp as circuits",
        "NAME = 'circuits.web'",
        "value = circuits.core",
    ]
    untouched = "from . import helpers  # keep me\nx = 'circuits'\n"
    assert script.rewrite_source(untouched) == untouched


def test_harness_counts_and_rewrites(tmp_path: Path) -> None:
    keep = tmp_path / "tree"
    proc, data = run_harness(tmp_path, "--only", "core", "--only", "web", "--keep", str(keep))

    core = data["directories"]["core"]
    assert core["status"] == "completed"
    assert core["files"] == 2
    assert core["collected"] == 8
    assert core["counts"] == {
        "passed": 3,
        "failed": 1,
        "error": 1,
        "skipped": 1,
        "xfailed": 1,
        "timeout": 1,
        "notrun": 0,
    }
    [error] = core["collection_errors"]
    assert "No module named 'fakecomp.net'" in error["message"]
    assert core["uncollected_estimate"] == 2
    assert data["totals"]["passed"] == 5 and data["totals"]["collected"] == 11

    web = data["directories"]["web"]  # pytest dies in a test: the rest runs in a new one
    assert web["status"] == "completed; resumed after 1 pytest crash(es) during a test"
    assert web["collected"] == 3
    assert (web["counts"]["passed"], web["counts"]["error"]) == (2, 1)
    [crashed] = [t for t in web["tests"] if t["outcome"] == "error"]
    assert crashed["nodeid"] == "tests.web.test_crash::test_b_crash"

    rewrite = data["rewrite"]
    assert (rewrite["files_rewritten"], rewrite["imports_rewritten"]) == (3, 4)
    kinds = sorted(ref["kind"] for ref in rewrite["references"])
    assert kinds == ["docstring", "docstring", "name", "string"]
    imports = {(i["module"], i["name"]): i for i in data["imports"]}
    assert imports["circuits", "Component"]["name_ok"]
    assert imports["circuits.core", None]["module_ok"]
    assert not imports["circuits.net.events", "write"]["module_ok"]

    alpha = (keep / "tests" / "core" / "test_alpha.py").read_text()
    assert "import fakecomp.core as core_mod" in alpha
    assert "from fakecomp import Component" in alpha
    assert "from .helpers import VALUE" in alpha
    assert "'circuits.web'" in alpha and "return circuits.Component" in alpha
    beta = (keep / "tests" / "core" / "test_beta.py").read_text()
    assert "from fakecomp.net.events import write" in beta
    assert (keep / "tests" / "core" / "helpers.py").read_text() == "VALUE = 1\n"
    assert not (keep / "tests" / "io").exists() and not (keep / "circuits").exists()

    table = proc.stdout
    assert "core       2          8       3       1       1         1" in table
    assert "pass rate: 5/11 collected tests = 45.5%" in table


def test_harness_budget_keeps_partial_results(tmp_path: Path) -> None:
    _, data = run_harness(tmp_path, "--only", "net", "--budget", "2.5")
    net = data["directories"]["net"]
    assert net["status"].startswith("budget of 2.5 s expired")
    assert net["collected"] == 3
    assert net["counts"]["passed"] == 1
    assert net["counts"]["timeout"] == 1
    assert net["counts"]["notrun"] == 1


@pytest.mark.parametrize("name", ["../evil.py", "/abs.py", "x/../../evil.py"])
def test_unsafe_archive_names_are_refused(name: str) -> None:
    assert load_script()._safe_parts(name) is None


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("NETCOMP_COMPAT") != "1",
    reason="downloads circuits' sdist: on demand only (NETCOMP_COMPAT=1), never in CI",
)
def test_harness_on_the_real_sdist(tmp_path: Path) -> None:
    """The real circuits 3.2.5 sdist: downloaded, extracted, probed; core within 20 s."""
    out = tmp_path / "out.json"
    options = ["--only", "core", "--budget", "20", "--timeout", "5", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *options],
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    if proc.returncode == 2 and "pip download failed" in proc.stderr:
        pytest.skip(f"no package index: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["sdist"]["version"] == "3.2.5"
    assert data["directories"]["core"]["files"] == 37
    modules = {i["module"] for i in data["imports"]}
    assert {"circuits", "circuits.core", "circuits.core.manager"} <= modules
