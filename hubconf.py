"""torch.hub entry points: ``torch.hub.load("<owner>/dla", "dla34", pretrained=True)``.

Each registered model is an entry point taking ``dla.create_model``'s keyword arguments.
"""

import os
import sys
from functools import partial

dependencies = ["torch"]

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from dla import create_model, list_models  # noqa: E402

for _name in list_models():
    globals()[_name] = partial(create_model, _name)
