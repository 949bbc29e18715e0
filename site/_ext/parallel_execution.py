"""Execute the site's notebooks in parallel before Sphinx reads them, into myst-nb's own jupyter-cache.

myst-nb (``nb_execution_mode = "cache"``) executes each notebook when Sphinx reads it, so a cold build runs the
lectures one after another. This extension runs, on ``env-before-read-docs``, every notebook that Sphinx is about
to read and that myst-nb would execute, in a pool of ``parallel_execution_jobs`` processes (default: as many as
this process may use cores), and stores each result in the jupyter-cache exactly as myst-nb's cache client does.
When Sphinx then reads the notebook, myst-nb finds it in the cache ("Using cached notebook") and runs nothing.

To be sure every notebook hits the cache, each one is prepared with myst-nb's own code, as its parser does before
it asks the cache: the same reader (``create_nb_reader``: .ipynb and MyST Markdown notebooks), the same kernel
name alias (``nb_kernel_rgx_aliases``), the same per-notebook overrides (the ``mystnb`` metadata key), the same
exclusion patterns. It is executed as myst-nb executes it (``single_nb_execution``: its cwd or a temporary one,
``nb_execution_timeout`` per cell, ``nb_execution_allow_errors``, the notebook's own ``execution`` metadata) and
cached under the hash that ``match_cache_notebook`` will compute. A notebook already in the cache is not run, so
warm builds stay incremental.

A notebook that fails is not cached. With ``nb_execution_raise_on_error`` the build stops after the pool has
finished (the other notebooks are cached for the next build), with each failing cell's traceback logged as myst-nb
logs it (``nb_execution_show_tb``) and saved in <outdir>/reports/<docname>.err.log; without it, myst-nb executes
that notebook again when it reads it, and warns, reports and renders the partial outputs as it always has.

``parallel_execution_jobs = 1`` (or 0), e.g. ``sphinx-build -D parallel_execution_jobs=1``, switches the extension
off: the build is then myst-nb's own, serial one.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path, PurePosixPath

from sphinx.errors import SphinxError
from sphinx.util import logging

logger = logging.getLogger(__name__)


class NotebookExecutionError(SphinxError):
    category = "Notebook execution failed"


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# -- the worker (a separate process) ----------------------------------------------------------------------------
def _execute(nb, path: str, in_temp: bool, timeout, allow_errors: bool):
    """Run one notebook as myst-nb's NotebookClientCache does; return (notebook, seconds, error name, traceback)."""
    from jupyter_cache.executors.utils import single_nb_execution

    from autograder import plainfork

    # the kernel forked from the build's fork server (JAX already imported) when it runs, else exec'd as usual
    forked = {"kernel_manager_class": plainfork.forked_kernel_manager()} if os.environ.get(
        plainfork.PLAIN_ENV) else {}
    if in_temp:
        with tempfile.TemporaryDirectory() as cwd:
            result = single_nb_execution(nb, cwd=os.path.abspath(cwd), allow_errors=allow_errors,
                                         timeout=timeout, meta_override=True, **forked)
    else:
        result = single_nb_execution(nb, cwd=os.path.abspath(str(Path(path).parent)), allow_errors=allow_errors,
                                     timeout=timeout, meta_override=True, **forked)
    error = type(result.err).__name__ if result.err is not None else None
    return result.nb, result.time, error, result.exc_string


# -- preparing a notebook as myst-nb's parser does ---------------------------------------------------------------
def prepared_notebook(env, docname: str):
    """(notebook, path, read_fmt, nb_config) as myst_nb.sphinx_.Parser.parse prepares them before it opens the
    execution client, or None if myst-nb would not execute this document with the cache."""
    from myst_nb.core.read import create_nb_reader
    from myst_nb.core.nb_to_tokens import nb_node_to_dict

    path = Path(env.doc2path(docname))
    if not path.is_file():
        return None
    nb_config = env.mystnb_config
    text = path.read_text(encoding="utf-8")
    nb_reader = create_nb_reader(str(path), env.myst_config, nb_config, text)
    if nb_reader is None:
        return None
    notebook = nb_reader.read(text)

    kernel_name = notebook.metadata.get("kernelspec", {}).get("name", None)
    if kernel_name is not None and nb_config.kernel_rgx_aliases:
        for rgx, alias in nb_config.kernel_rgx_aliases.items():
            if re.fullmatch(rgx, kernel_name):
                notebook.metadata["kernelspec"]["name"] = alias
                break

    if nb_config.metadata_key in notebook.metadata:
        overrides = nb_node_to_dict(notebook.metadata[nb_config.metadata_key])
        overrides.pop("output_folder", None)
        try:
            nb_config = nb_config.copy(**overrides)
        except Exception:
            return None  # myst-nb warns about it when it reads the notebook; leave the notebook to it

    if nb_config.execution_mode != "cache":
        return None
    posix_path = PurePosixPath(path.as_posix())
    if any(posix_path.match(pattern) for pattern in nb_config.execution_excludepatterns or ()):
        return None
    return notebook, path, nb_reader.read_fmt, nb_config


# -- the event ------------------------------------------------------------------------------------------------------
def pre_execute(app, env, docnames) -> None:
    jobs = int(app.config.parallel_execution_jobs or 0)
    if jobs <= 1 or getattr(env, "mystnb_config", None) is None:
        return
    from jupyter_cache import get_cache

    cache = get_cache(env.mystnb_config.execution_cache_path or ".jupyter_cache")
    todo = []
    for docname in sorted(docnames):
        prepared = prepared_notebook(env, docname)
        if prepared is None:
            continue
        notebook = prepared[0]
        try:
            cache.match_cache_notebook(notebook)
            continue  # cached already: myst-nb will use it
        except KeyError:
            pass
        todo.append((docname, *prepared))
    if not todo:
        return

    # longest first, by amount of code (a cold build knows no run times)
    def expected(item):
        _, nb, path, *_ = item
        return sum(len(c.source) for c in nb.cells if c.cell_type == "code")
    todo.sort(key=expected, reverse=True)

    workers = min(jobs, len(todo))
    logger.info(f"parallel execution: {len(todo)} notebook(s) on {workers} process(es)")
    start = time.perf_counter()
    # Forked workers start at once with nbclient and nbformat already imported (importing nbformat takes seconds:
    # jsonschema builds rfc3987-syntax's grammars); they only run nbclient and return the notebook; the parent
    # alone writes to the cache's database.
    import jupyter_cache.executors.utils  # noqa: F401  (nbclient, imported before the fork)

    context = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    server = _fork_server()
    try:
        failed = _run_pool(app, cache, todo, workers, context)
    finally:
        if server is not None:
            server.close()
    logger.info(f"parallel execution: {len(todo) - len(failed)} of {len(todo)} notebook(s) executed and cached "
                f"in {time.perf_counter() - start:.1f} s")
    raising = [f for f in failed if f[2].execution_raise_on_error]
    if raising:
        raise NotebookExecutionError("\n".join(f"{path} (the traceback is above and in {report})"
                                               for _, path, _, report in raising))


def _fork_server():
    """The build's fork server for the notebooks' kernels (autograder.plainfork.PlainServer): each kernel is
    forked with JAX and ipykernel imported instead of importing them itself. None where it cannot start."""
    try:
        from autograder import plainfork

        server = plainfork.PlainServer()
    except Exception as exc:  # no fork server: every kernel is exec'd, as myst-nb would
        logger.info(f"parallel execution: kernels are exec'd ({type(exc).__name__}: {exc})")
        return None
    logger.info("parallel execution: kernels forked from a fork server with JAX imported")
    return server


def _run_pool(app, cache, todo, workers, context) -> list:
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.cache.db import NbProjectRecord

    failed = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {}
        for docname, notebook, path, read_fmt, nb_config in todo:
            if read_fmt is not None:
                stage = cache.add_nb_to_project(str(path), read_data=read_fmt)
            else:
                stage = cache.add_nb_to_project(str(path))
            NbProjectRecord.remove_tracebacks([stage.pk], cache.db)
            future = pool.submit(_execute, notebook, str(path), nb_config.execution_in_temp,
                                 nb_config.execution_timeout, nb_config.execution_allow_errors)
            futures[future] = (docname, path, stage, nb_config)
        for future in as_completed(futures):
            docname, path, stage, nb_config = futures[future]
            executed, seconds, error, exc_string = future.result()
            if error is not None and not nb_config.execution_raise_on_error:
                # not cached: myst-nb runs it again when it reads it, and warns and reports as it always has
                logger.info(f"parallel execution: {docname} failed ({error}); myst-nb will run it again")
                failed.append((docname, path, nb_config, None))
                continue
            if error is not None:
                msg = f"Executing notebook failed: {error}"
                if nb_config.execution_show_tb:
                    msg += f"\n{exc_string}"
                logger.warning(msg, location=docname, type="mystnb", subtype="exec")
                NbProjectRecord.set_traceback(stage.uri, exc_string, cache.db)
                report = Path(app.outdir, "reports", *(docname + ".err.log").split("/"))
                report.parent.mkdir(parents=True, exist_ok=True)
                report.write_text(exc_string or "", encoding="utf8")
                failed.append((docname, path, nb_config, report))
                continue
            cache.cache_notebook_bundle(CacheBundleIn(executed, stage.uri, data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            logger.info(f"parallel execution: {docname} executed in {seconds:.1f} s")
    return failed


def setup(app):
    app.setup_extension("myst_nb")
    app.add_config_value("parallel_execution_jobs", default_jobs(), "", int)
    app.connect("env-before-read-docs", pre_execute)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
