from .attributes import *  # noqa: F401,F403
