"""The request ledger: formats read, records validated, the one ingest path, rollups written and read, verify."""
