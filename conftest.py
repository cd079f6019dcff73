"""Repository-wide pytest configuration.

Notebook outputs are compared strictly by nbval, so every kernel and test started from pytest
renders in the deterministic final mode (docs/notebook.md#render-modes); a developer's Jupyter
session variables must not switch it to live.
"""

import os

os.environ["TINYAGENT_RENDER"] = "final"
