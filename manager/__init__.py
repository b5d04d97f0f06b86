"""AI Model Manager: the registry, request ledger and reports behind the dashboard.

The public Python API lives in `manager.api`; `python -m manager` is its command line.
"""
