"""Settings, one module per integration; every value comes from the environment."""
from .base import *  # noqa: F401,F403
from .security import *  # noqa: F401,F403
from .database import *  # noqa: F401,F403
from .redis import *  # noqa: F401,F403
from .storage import *  # noqa: F401,F403
from .api import *  # noqa: F401,F403
from .ml import *  # noqa: F401,F403
