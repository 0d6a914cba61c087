"""Where a validation result comes from: the refode checkout it ran on."""
import os
import subprocess

import refode


def git_revision():
    """``(commit, dirty)`` of the refode checkout, or ``(None, None)`` outside git.

    ``dirty`` is True when tracked files differ from the commit (untracked files, such
    as the outputs under ``out/``, do not count).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(refode.__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True,
                                capture_output=True, text=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=root, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return commit, bool(status.strip())
