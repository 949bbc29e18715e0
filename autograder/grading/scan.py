"""A reading of the student's own cells, outside any kernel: a lint for the instructor's review, never a verdict.

Scores come from the trusted driver (autograder.grading.driver), which judges answers by what they return,
including the twin call that tells a formula from a computation that follows the function under test. This module
reads the executed notebook's student cells (every code cell that is not a verbatim copy of one of the
instructor's locked cells) with ``ast`` and reports, for the report's "for review" notes:

* **tampering-like code**: private or dunder attributes, dynamic code (``exec``, ``eval``, ``getattr`` with a
  computed name, ...), ``get_ipython`` and magics, shell escapes, process/interpreter/grader modules, assigning
  attributes of modules or of the set-up's names, precompiling JAX code;
* **autodiff** per question: a cell in the question's part of the notebook names a JAX autodiff transform, for
  questions whose tests forbid it;
* **flags**: file access, modules outside the course's usual set.

None of this changes a score: honest exploration (scratch ``jax.grad`` comparisons, ``make_jaxpr``, ``inspect``,
magics, dunder aliases in helper classes) is common, and the driver does not need the lint to be safe.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

from ..integrity import AUTODIFF_NAMES

FORBIDDING = {"derivative", "gradient", "jacobian", "hessian"}
PROTECTED = {"check", "jax", "jnp", "np"}
ALLOWED_REBIND = {("check", "autograder.check"), ("jax", "jax"), ("jnp", "jax.numpy"), ("np", "numpy")}
DYNAMIC = {"exec", "eval", "compile", "__import__", "globals", "locals", "vars", "setattr", "delattr",
           "get_ipython", "breakpoint", "__builtins__", "__loader__", "__spec__"}
OK_DUNDER = {"__version__", "__name__", "__doc__", "__init__", "__call__", "__len__", "__repr__", "__str__"}
MAGICS = {"time", "timeit", "matplotlib"}
TAMPER_MODULES = {
    "autograder", "nbgrader", "nbclient", "nbformat", "nbconvert", "jupyter_client", "ipykernel", "IPython", "zmq",
    "traitlets", "subprocess", "ctypes", "cffi", "importlib", "runpy", "pickle", "marshal", "dill", "cloudpickle",
    "shelve", "types", "code", "codeop", "inspect", "gc", "builtins", "signal", "threading", "_thread",
    "multiprocessing", "concurrent", "asyncio", "socket", "ssl", "http", "urllib", "requests", "ftplib", "smtplib",
    "faulthandler", "resource", "pty", "fcntl", "mmap", "sysconfig", "site", "atexit", "weakref", "copyreg",
    "sqlite3", "dbm", "zipimport", "pkgutil", "linecache", "trace", "pdb", "bdb", "cProfile", "profile",
    "tracemalloc", "select", "selectors", "posix", "pwd", "grp", "jaxlib", "sched", "webbrowser", "platform",
}
JAX_INTERNAL = {"core", "extend", "interpreters", "export", "lib", "make_jaxpr", "eval_jaxpr", "xla_computation",
                "lower", "compile", "jaxpr", "ffi", "stages", "custom_derivatives"}
FLAG_MODULES = {"pathlib", "io", "glob", "shutil", "tempfile", "zipfile", "tarfile", "csv", "json", "fileinput"}
USUAL_MODULES = {"numpy", "jax", "math", "cmath", "functools", "itertools", "warnings", "sys", "os", "typing",
                 "dataclasses", "collections", "fractions", "decimal", "operator", "scipy", "matplotlib", "time",
                 "random", "statistics", "autograder", "numbers", "re", "string", "textwrap", "enum", "abc"}
SYS_OK = {"stderr", "stdout", "float_info", "maxsize", "version", "version_info", "platform", "getrecursionlimit",
          "setrecursionlimit", "float_repr_style", "int_info"}
OS_OK = {"path", "sep", "linesep", "getcwd", "listdir", "cpu_count", "curdir", "pardir", "extsep"}
OPEN = {"open"}


@dataclass
class Findings:
    tamper: list[str] = field(default_factory=list)          # reasons; any one voids the submission
    autodiff: dict[str, list[str]] = field(default_factory=dict)   # grade_id -> reasons
    flags: list[str] = field(default_factory=list)           # for the instructor's review, no effect on scores
    notes: list[str] = field(default_factory=list)


def forbidding_questions(solution_nb: dict) -> set[str]:
    """Grade ids of the test cells whose checks forbid autodiff in the answer (read from the instructor's source)."""
    found = set()
    for cell in solution_nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade") or cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(_source(cell))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                no_ad = any(k.arg == "autodiff" and isinstance(k.value, ast.Constant) and k.value.value is False
                            for k in node.keywords)
                if name in FORBIDDING or (name == "values" and no_ad):
                    found.add(meta.get("grade_id", ""))
    return found


def trusted_sources(solution_nb: dict) -> set[str]:
    """Sources of the instructor's locked and test cells: nbgrader restores these, so they are not student code."""
    out = set()
    for cell in solution_nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and (meta.get("locked") or meta.get("grade")) and not meta.get("solution"):
            out.add(_source(cell).strip())
    return out


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _python(source: str) -> str:
    """IPython's own translation of a cell (magics become get_ipython() calls), or the source itself."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def _parse(source: str):
    try:
        return compile(_python(source), "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                       dont_inherit=True)
    except (SyntaxError, ValueError):
        return None  # it cannot run either: the kernel raises SyntaxError


def _root(node) -> str | None:
    """The leftmost name of an expression like a.b[c](d).e."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def _chain(node) -> list[str]:
    parts = []
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


class _Cell(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str], protected: set[str]):
        self.aliases = aliases          # name -> module it was imported as ("np" -> "numpy"), shared across cells
        self.protected = protected
        self.tamper: list[str] = []
        self.autodiff: list[str] = []
        self.flags: list[str] = []

    # -- imports
    def _imported(self, module: str, name: str | None, alias: str, node) -> None:
        full = f"{module}.{name}" if name else module
        top = module.split(".")[0]
        parts = full.split(".")
        if full == "autograder.check" and alias == "check":
            self.aliases[alias] = full
            return
        if any(p.startswith("_") for p in parts):
            self.tamper.append(f"imports a private module or name ({full})")
        elif top in TAMPER_MODULES:
            self.tamper.append(f"imports {full}")
        elif top == "jax" and any(p in JAX_INTERNAL for p in parts[1:]):
            self.tamper.append(f"imports JAX internals or precompiled code ({full})")
        elif top == "sys" and name and name not in SYS_OK:
            self.tamper.append(f"imports sys.{name}")
        elif top == "os" and name and name not in OS_OK:
            self.tamper.append(f"imports os.{name}")
        elif top in FLAG_MODULES:
            self.flags.append(f"imports {full} (file access)")
        elif top not in USUAL_MODULES:
            self.flags.append(f"imports {full} (not a module the course uses)")
        if top == "jax" and parts[-1] in AUTODIFF_NAMES:
            self.autodiff.append(full)
        if alias in PROTECTED and (alias, full) not in ALLOWED_REBIND:
            self.tamper.append(f"rebinds `{alias}` (imports {full} as {alias})")
        self.aliases[alias] = full

    def visit_Import(self, node):
        for a in node.names:
            self._imported(a.name, None, a.asname or a.name.split(".")[0], node)
            if a.asname is None and "." in a.name:
                self.aliases[a.name.split(".")[0]] = a.name.split(".")[0]

    def visit_ImportFrom(self, node):
        module = "." * node.level + (node.module or "")
        for a in node.names:
            if a.name == "*":
                self.tamper.append(f"imports * from {module}") if module.split(".")[0] in TAMPER_MODULES \
                    or module == "autograder" or module.startswith("autograder.") else None
                continue
            self._imported(module, a.name, a.asname or a.name, node)

    # -- names and attributes
    def _module_of(self, name: str | None) -> str:
        return self.aliases.get(name or "", "")

    def visit_Name(self, node):
        if node.id in DYNAMIC or (node.id.startswith("__") and node.id.endswith("__") and node.id not in OK_DUNDER):
            self.tamper.append(f"uses {node.id}")
        elif node.id in OPEN and isinstance(node.ctx, ast.Load):
            self.flags.append("opens files")
        if isinstance(node.ctx, (ast.Store, ast.Del)) and node.id in PROTECTED:
            self.tamper.append(f"rebinds `{node.id}`")
        mod = self._module_of(node.id)
        if mod.startswith("jax") and mod.split(".")[-1] in AUTODIFF_NAMES and isinstance(node.ctx, ast.Load):
            self.autodiff.append(node.id)

    def visit_Attribute(self, node):
        attr = node.attr
        if attr.startswith("_") and attr not in OK_DUNDER:
            self.tamper.append(f"uses the private attribute .{attr}")
        root = _root(node)
        mod = self._module_of(root)
        chain = _chain(node)
        if isinstance(node.ctx, (ast.Store, ast.Del)) and root in self.protected | set(self.aliases):
            self.tamper.append(f"assigns {'.'.join(chain) or attr} (changes a module or a set-up object)")
        if mod.split(".")[0] == "sys" and len(chain) > 1 and chain[0] == root and chain[1] not in SYS_OK:
            self.tamper.append(f"uses sys.{chain[1]}")
        if mod.split(".")[0] == "os" and len(chain) > 1 and chain[0] == root and chain[1] not in OS_OK:
            self.tamper.append(f"uses os.{chain[1]}")
        if mod.startswith("jax"):
            if attr in AUTODIFF_NAMES:
                self.autodiff.append(".".join(chain) or attr)
            if attr in JAX_INTERNAL:
                self.tamper.append(f"uses JAX internals or precompiled code (.{attr})")
        elif attr in {"lower", "compile"} and root and mod == "" and isinstance(node.ctx, ast.Load) \
                and any(c in ("jit", "pmap", "vmap") for c in chain):
            self.tamper.append(f"precompiles JAX code (.{attr})")
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "getattr":
            name = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                self.tamper.append("uses getattr with a computed name")
            elif name.value.startswith("_") and name.value not in OK_DUNDER:
                self.tamper.append(f"uses getattr(..., {name.value!r})")
            elif _root(node.args[0]) in self.aliases and self._module_of(_root(node.args[0])).startswith("jax") \
                    and name.value in AUTODIFF_NAMES:
                self.autodiff.append(f"getattr(..., {name.value!r})")
        if isinstance(func, ast.Attribute) and _root(func) == "get_ipython" and func.attr in (
                "run_line_magic", "run_cell_magic") and node.args:
            magic = node.args[0]
            if isinstance(magic, ast.Constant) and magic.value in MAGICS:
                for arg in node.args[1:]:  # the code a %time / %%timeit runs is student code too
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        inner = _parse(arg.value)
                        if inner is not None:
                            self.visit(inner)
                return  # get_ipython() itself is fine for these magics
            self.tamper.append(f"runs the magic %{getattr(magic, 'value', '?')}")
            return
        if isinstance(func, ast.Attribute) and _root(func) == "get_ipython" and func.attr in ("system", "getoutput"):
            self.tamper.append("runs a shell command")
            return
        self.generic_visit(node)

    def _bind(self, name: str) -> None:
        if name in PROTECTED:
            self.tamper.append(f"rebinds `{name}`")

    def visit_FunctionDef(self, node):
        self._bind(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._bind(node.name)
        self.generic_visit(node)

    def visit_Global(self, node):
        for name in node.names:
            self._bind(name) if name in PROTECTED else None
        self.generic_visit(node)


def _label(index: int, cell: dict) -> str:
    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") if isinstance(cell.get("metadata"), dict) \
        else None
    return f"cell {index + 1} ({gid})" if gid else f"cell {index + 1}"


def scan(nb: dict, reference: dict, graded_ids: set[str]) -> Findings:
    """Read every student cell of the executed notebook ``nb`` (see the module's docstring); ``reference`` holds
    the instructor's cells as released (evidence.reference_notebook)."""
    trusted = trusted_sources(reference)
    forbid = forbidding_questions(reference)
    aliases: dict[str, str] = {}
    protected = set(PROTECTED) | set(dir(builtins))
    for cell in reference.get("cells", []):  # the set-up's imports and definitions
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("locked") and not meta.get("grade"):
            tree = _parse(_source(cell))
            for node in ast.walk(tree) if tree else []:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    protected.add(node.name)
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    _Cell(aliases, protected).visit(node)
    out = Findings()
    pending: list[tuple[str, list[str]]] = []  # autodiff seen since the last test cell
    for index, cell in enumerate(nb.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell.get("metadata"), dict) else {}
        if source.strip() in trusted:
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if gid in graded_ids:
                if gid in forbid:
                    for label, names in pending:
                        out.autodiff.setdefault(gid, []).append(
                            f"{label} calls JAX automatic differentiation ({', '.join(sorted(set(names)))})")
                pending = []
            continue
        tree = _parse(source)
        if tree is None:
            continue
        visitor = _Cell(aliases, protected)
        visitor.visit(tree)
        label = _label(index, cell)
        out.tamper += [f"{label} {why}" for why in dict.fromkeys(visitor.tamper)]
        out.flags += [f"{label} {why}" for why in dict.fromkeys(visitor.flags)]
        if visitor.autodiff:
            pending.append((label, visitor.autodiff))
    return out
