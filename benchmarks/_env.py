"""The environment an in-process benchmark sets before it imports Prefect."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path


def isolate_prefect() -> None:
    """This checkout importable, quiet logging, no analytics, and a throwaway PREFECT_HOME.

    Call before the first `import prefect`: Prefect reads these once. The logging level is the same
    (quiet) console cost for both sides; the native server would phone home without the analytics
    switch; PREFECT_HOME keeps both sides off the user's ~/.prefect.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-benchmark-home-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
