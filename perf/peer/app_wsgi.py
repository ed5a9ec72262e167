"""Gunicorn entry point of the reference peer, as in the article:

    gunicorn --config=guniconfig app_wsgi:app

The worker class (aiohttp.GunicornUVLoopWebWorker, set in guniconfig) runs the
aiohttp Application below on uvloop; everything else is app.py.
"""

import uvloop

from app import create_app

uvloop.install()
app = create_app()
