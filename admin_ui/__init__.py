"""The owner's dashboard: a Streamlit app over ``sesame.service``.

Run it with ``streamlit run admin_ui/app.py`` (the Procfile's ``admin`` process). Each page is
a script with a ``render(service)`` function; importing a module of this package runs nothing.
"""
