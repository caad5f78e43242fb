"""Protocol code with no views and no models: JOSE, subjects, events, constants, HTTP.

Nothing in here imports from ``django_ssf.transmitter`` or ``django_ssf.receiver``.
"""
