"""Models of the transmitter app: receivers' streams and the outbox of SETs."""

from .outbox import *  # noqa: F403
from .registration import *  # noqa: F403
from .streams import *  # noqa: F403
