"""AI Model Manager: the Streamlit entry point. It checks who is here, routes, and draws the shared sidebar."""

import streamlit as st

from ui import access, shell

st.set_page_config(page_title="AI Model Manager", page_icon=":material/hub:", layout="wide")
with shell.database_trouble_shown():
    access.gate()
    manages = access.can_manage_accounts()
    navigation = shell.navigation(manage_accounts=manages)
    access.sidebar()
    shell.sidebar(show_database=manages)
    navigation.run()
