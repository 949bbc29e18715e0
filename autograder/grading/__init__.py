"""The instructor's side: release, autograde, report and export, on top of nbgrader's own API."""
