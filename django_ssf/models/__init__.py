"""All django-ssf models, split by role: keys, transmitter streams, outbox, receiver."""

from .keys import *  # noqa: F403
from .outbox import *  # noqa: F403
from .receiver import *  # noqa: F403
from .transmitter import *  # noqa: F403
