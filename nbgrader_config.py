"""nbgrader configuration: the repository root is the course root.

Source notebooks live in solutions/, the student release in exercises/. Student submissions, autograded copies,
feedback and the gradebook live outside git, under var/ by default; set AUTOGRADER_DATA to put them elsewhere
(an absolute path, e.g. on a shared disk). Stock `nbgrader` commands read this file when run from the repo root.
"""

import os

c = get_config()  # noqa: F821  (provided by nbgrader)

root = os.path.dirname(os.path.abspath(__file__))
data = os.path.abspath(os.environ.get("AUTOGRADER_DATA") or os.path.join(root, "var"))

c.CourseDirectory.root = root
c.CourseDirectory.course_id = "vc4ml"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = os.path.join(data, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(data, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(data, "feedback")
c.CourseDirectory.db_url = os.environ.get("AUTOGRADER_DB_URL") or "sqlite:///" + os.path.join(data, "gradebook.db")
c.Exchange.root = os.path.join(data, "exchange")

# Grading: a deleted test cell is put back and run; a lost cell costs its points, never a crash.
c.OverwriteCells.add_missing_cells = True
c.Execute.timeout = 60              # seconds per cell; a runaway cell scores 0 instead of stalling the batch
c.Execute.interrupt_on_timeout = True
# JAX may warn on stderr; nbgrader scores any stderr output 0. Drop warning lines, keep real errors.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(Warning:|^WARNING|^W\d{4} |Kernel is running over TCP)"
# Feedback never shows hidden tests.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
# nbgrader's formgrader and generate_feedback render student notebooks in the Jupyter server's origin, where a
# script could act as the instructor: sanitise markdown and HTML outputs, and keep only inert outputs (see
# autograder/grading/inert.py; tests/test_formgrader.py opens a hostile notebook in the formgrader).
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.preprocessors = ["autograder.grading.inert.InertOutputs"]
