"""nbgrader configuration for the student's JupyterLab (`make lab` sets JUPYTER_CONFIG_PATH=lab/).

The Assignment List reads its exchange from here after moving into the student's folder, where the course
root's nbgrader_config.py is not found: the course, the exchange and the student's folder (fetched assignments,
var/student/ by default) are named again, from the same AUTOGRADER_DATA as the course root's config.
The Assignment List's Submit puts <student>+<assignment>+<time> into the exchange's
inbound folder, where `python -m autograder collect <assignment> --exchange` finds it.
The student id is NBGRADER_STUDENT_ID when set, else the login name (nbgrader's
default).
"""
import os

c = get_config()  # noqa: F821  (provided by nbgrader)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
data = os.path.abspath(os.environ.get("AUTOGRADER_DATA") or os.path.join(root, "var"))
c.CourseDirectory.course_id = "vc4ml"
c.Exchange.root = os.path.join(data, "exchange")
c.Exchange.assignment_dir = os.path.join(data, "student")
student = os.environ.get("NBGRADER_STUDENT_ID")
if student:  # also limits the Assignment List's "Submitted" to this student
    c.CourseDirectory.student_id = student
