"""The ASGI application: how the example project is served in production.

Long polls (RFC 8936 §2.2) to ``/ssf/poll/<stream_id>`` are held on the event loop
without a thread each; everything else runs as usual (Django runs sync views in its
thread pool). Serve it with uvicorn, e.g.::

    uvicorn example_project.asgi:application --host 0.0.0.0 --port 8000 --workers 2

See docs/deployment.md ("Topology").
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
application = get_asgi_application()
