"""Fixture: the top-level package pulls in the serving engine, absent here (as on a bare CPU box).

Before that, like FastDeploy's own package, it quiets Paddle's and AI Studio's logs through the
environment and, when PROMETHEUS_MULTIPROC_DIR is unset, makes a fresh directory in /tmp for
Prometheus and points the variable at it: the side effects the loader must undo and record.
"""

import os
import uuid

os.environ["GLOG_minloglevel"] = "2"
os.environ["AISTUDIO_LOG"] = "critical"
if os.getenv("PROMETHEUS_MULTIPROC_DIR", "") == "":
    prometheus_dir = f"/tmp/fd_prom_{uuid.uuid4()}"
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = prometheus_dir
    os.mkdir(prometheus_dir)

from fastdeploy.entrypoints.llm import LLM  # noqa: E402, F401
