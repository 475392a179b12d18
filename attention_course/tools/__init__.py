"""Tooling for maintainers and instructors: the command line, exercise generation, headless execution, the website
build and the classroom kit. Lessons never import from here; it may import every part of the library."""
