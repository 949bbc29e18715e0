"""nbgrader's set-up as the grader does it: the migration head it reads in-process is the one `alembic heads` gives."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from autograder.grading import course


def test_the_migration_head_is_alembics_own(tmp_path):
    from nbgrader.dbutil import _temp_alembic_ini

    alembic = str(Path(sys.executable).parent / "alembic")
    with _temp_alembic_ini(f"sqlite:///{tmp_path / 'x.db'}") as ini:
        out = subprocess.run([alembic, "-c", ini, "heads"], capture_output=True, text=True, check=True).stdout
    assert course.alembic_head() == out.split("\n")[0].split(" ")[0]


def test_a_new_gradebook_records_that_head_without_running_alembic(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setenv("AUTOGRADER_DATA", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))   # no `alembic` executable to find
    url = course.load_config().CourseDirectory.db_url
    with Gradebook(url):
        pass
    db = url[len("sqlite:///"):]
    assert os.path.isfile(db)
    assert sqlite3.connect(db).execute("select version_num from alembic_version").fetchall() == \
        [(course.alembic_head(),)]
