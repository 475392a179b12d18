"""Tooling for maintainers and instructors: the command line, exercise generation, headless execution,
the website build and (later) classroom grading. Lessons never import from here."""
