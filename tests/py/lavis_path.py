"""Where salesforce-lavis's `common/vqa_tools` lies in this venv, found without importing `lavis`
(its package __init__ needs dependencies that are deliberately not installed)."""
import importlib.util
import os

_spec = importlib.util.find_spec("lavis")
if _spec is None or not _spec.submodule_search_locations:
    raise SystemExit("salesforce-lavis is not installed (scripts/setup.sh installs it with --no-deps)")
LAVIS_VQA_TOOLS = os.path.join(list(_spec.submodule_search_locations)[0], "common", "vqa_tools")
