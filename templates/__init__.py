"""Jinja2 templates shipped with casedesk: `email/<lang>/<kind>.{txt,html}.j2`, `kb/...`.

A new language is a new folder of files; no code changes.
"""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent
