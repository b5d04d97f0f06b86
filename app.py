"""AI Model Manager: the Streamlit entry point. It only routes and draws the shared sidebar."""

import streamlit as st

from pages import common

st.set_page_config(page_title="AI Model Manager", page_icon=":material/hub:", layout="wide")

navigation = st.navigation(
    {
        "Monitor": [
            st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
            st.Page("pages/usage.py", title="Usage", icon=":material/bar_chart:"),
            st.Page("pages/performance.py", title="Performance", icon=":material/speed:"),
        ],
        "Configure": [
            st.Page("pages/registry.py", title="Registry", icon=":material/table_edit:"),
        ],
    }
)
common.sidebar()
navigation.run()
