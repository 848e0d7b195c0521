"""dsabench: performance and correctness benchmark of FastDeploy's DSA attention forward.

Data flows one way: scenarios -> cases -> measurements -> records -> analysis -> charts/reports.
"""

__version__ = "0.1.0"
