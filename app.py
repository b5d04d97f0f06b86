"""AI Model Manager: the Streamlit entry point. It only routes and draws the shared sidebar."""

import streamlit as st

from pages import common

st.set_page_config(page_title="AI Model Manager", page_icon=":material/hub:", layout="wide")
navigation = common.navigation()
common.sidebar()
navigation.run()
