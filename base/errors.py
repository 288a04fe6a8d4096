"""Errors meant for the person at the command line: the message says what went wrong and what to do, so a
command prints it as one line (the traceback only with ``--debug``)."""

from __future__ import annotations


class Explained(Exception):
    """An error whose message is the whole explanation, remedy included."""
