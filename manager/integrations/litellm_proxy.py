"""The logger instance the LiteLLM proxy loads.

In the proxy's config: `litellm_settings: {callbacks: manager.integrations.litellm_proxy.handler}`.

It logs into DATABASE_URL (else data/manager.db beside the proxy), and gives calls that name none the
app and environment in MANAGER_APP and MANAGER_ENVIRONMENT.
"""

from __future__ import annotations

import os

from manager.integrations.litellm import ManagerLogger

handler = ManagerLogger(app=os.environ.get("MANAGER_APP"), environment=os.environ.get("MANAGER_ENVIRONMENT"))
