#!/usr/bin/env bash
# Install, prepare the database (demo data when it is empty) and start the dashboard on 127.0.0.1.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" requirements.txt
.venv/bin/python -m manager init
.venv/bin/python -m manager seed-demo --top-up
exec .venv/bin/streamlit run app.py "$@"
