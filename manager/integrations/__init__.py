"""Connections to the tools a team already runs: LiteLLM's logger, its Router config, and its spend history."""
