#!/usr/bin/env bash
# Install, prepare the database (demo data when it is empty) and start the dashboard on 127.0.0.1.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" requirements.txt
.venv/bin/python -m manager init
.venv/bin/python -m manager seed-demo --top-up
# Alerts flow while the dashboard runs: the sender checks budgets, health and spend every minute and delivers
# to the channels on the Alerts page; it stops with the dashboard.
mkdir -p data
.venv/bin/python -m manager alerts watch 2>>data/alerts.log &
watcher=$!
trap 'kill "$watcher" 2>/dev/null' EXIT
.venv/bin/streamlit run app.py "$@"
