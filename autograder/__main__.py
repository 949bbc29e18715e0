"""`python -m autograder <verb>`: the instructor's command line. Thin: parsing here, work in autograder.grading."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXAMPLES = {
    "release": "python -m autograder release ch01_univariate   (or --all)",
    "autograde": "python -m autograder autograde ch01_univariate --jobs 2 [--student alice]",
    "report": "python -m autograder report ch01_univariate",
    "export": "python -m autograder export --to var/grades.csv",
    "demo": "python -m autograder demo --jobs 2",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autograder", description="Release, grade and report the course's assignments.")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_: str) -> argparse.ArgumentParser:
        return verbs.add_parser(name, help=help_, description=help_, epilog="example: " + EXAMPLES[name])

    r = verb("release", "Generate exercises/<assignment> from solutions/<assignment> (nbgrader generate_assignment, normalised).")
    r.add_argument("assignment", nargs="?")
    r.add_argument("--all", action="store_true", help="release every assignment")
    a = verb("autograde", "Autograde the submissions in submitted/ with nbgrader, several at once, and print the score table.")
    a.add_argument("assignment")
    a.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once (default: cores)")
    a.add_argument("--student", action="append", help="grade only this student (repeatable)")
    rep = verb("report", "Print the per-student, per-question score table with a diagnosis of each lost point.")
    rep.add_argument("assignment")
    e = verb("export", "Write nbgrader's grades CSV for the whole gradebook.")
    e.add_argument("--to", type=Path, default=None, help="output file (default: <data>/grades.csv)")
    d = verb("demo", "Release, build the bundled demo class, autograde it, print the table and write grades.csv.")
    d.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    d.add_argument("assignments", nargs="*", help="default: every assignment with a demo/<name>.yml")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from autograder.grading import autograde, course, demo, release, report

    try:
        if args.verb == "release":
            if not args.all and not args.assignment:
                raise course.CourseError("name an assignment or pass --all")
            for name in course.assignments() if args.all else [args.assignment]:
                print(f"released {release.release(name).relative_to(course.root())}")
        elif args.verb == "autograde":
            runs = autograde.autograde(args.assignment, args.student, args.jobs)
            rows = report.class_results(args.assignment, [r.student for r in runs])
            print(report.table(args.assignment, rows, runs))
        elif args.verb == "report":
            course.require_assignment(args.assignment)
            rows = report.class_results(args.assignment, autograde.submissions(args.assignment))
            print(report.table(args.assignment, rows))
        elif args.verb == "export":
            print(f"wrote {report.export_csv(args.to or course.data_dir() / 'grades.csv')}")
        elif args.verb == "demo":
            for name in args.assignments or demo.available():
                release.release(name)
                students = demo.build(name, demo.load(name))
                print(f"\n== {name}: grading {len(students)} demo submissions with {args.jobs} workers")
                runs = autograde.autograde(name, students, args.jobs)
                print(report.table(name, report.class_results(name, students), runs))
            csv = report.export_csv(course.data_dir() / "grades.csv")
            print(f"\ngrades: {csv}\nautograded notebooks: {course.data_dir() / 'autograded'}")
    except course.CourseError as err:
        print(f"autograder: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
