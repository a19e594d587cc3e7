"""The command lines: ``pgstack`` (migrate, inspect and operate) and ``pgstack-run`` (worker)."""
