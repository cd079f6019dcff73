#!/usr/bin/env bash
# Real-browser tests (docs/notebook.md#tests): JupyterLab 4 and Notebook 7 in headless Debian
# Chromium.
#
# Needs: apt-get install -y chromium   (Debian's /usr/bin/chromium; never `playwright install`)
#        pip install playwright jupyterlab notebook
# Screenshots of every test land in test-artifacts/browser/ (gitignored): keep them as CI artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x /usr/bin/chromium ]]; then
    echo "ci_browser: /usr/bin/chromium is missing; run: apt-get install -y chromium" >&2
    exit 2
fi
python -c "import playwright, jupyterlab, notebook" 2>/dev/null || {
    echo "ci_browser: run: pip install playwright jupyterlab notebook" >&2
    exit 2
}
# -rs: a skipped browser test must be visible, never silent
exec python -m pytest tests/browser -m browser -rs -q "$@"
