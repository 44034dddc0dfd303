"""The composition root: builds the long-lived objects from settings (`services.py`) and
assembles the Litestar app from the domain packages' controllers (`app.py`).

It sits above every domain package and below only the entry points (cli, asgi, demo): nothing
under it imports it, so a domain package receives what it uses as a typed dependency instead
of reaching for the whole bag.
"""
