# relreps-book: the two commands a reader needs are `make book` and `make test`.
PYTHON ?= python3
# CPU build of PyTorch, installed only when no torch is importable (avoids several GB of CUDA wheels).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
JUPYTER_BOOK ?= jupyter-book
PYTEST_ARGS ?=

.PHONY: setup lint test book check-site bench clean

setup:
	@if ! $(PYTHON) -c "import torch" >/dev/null 2>&1; then \
		echo "torch not found: installing $(TORCH_SPEC) (CPU build)"; \
		$(PYTHON) -m pip install "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)); \
	fi
	$(PYTHON) -m pip install -r requirements.txt

# The linter (relreps/, tests/, scripts/, _ext/, book/) and the type checker (relreps/, tests/);
# settings in pyproject.toml. The chapters' code is formatted to the book's text column: 80
# characters a line (the notebooks; code blocks in book/*.md are left as written).
lint: setup
	$(PYTHON) -m ruff check relreps tests scripts _ext book
	$(PYTHON) -m ruff format --check --line-length 80 book/*.ipynb
	$(PYTHON) -m ruff check --select E501 --line-length 80 book/*.ipynb
	$(PYTHON) -m mypy

# pytest's exit code 5 means "no tests collected": never expected here, so it is a failure.
test: lint
	@rc=0; $(PYTHON) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests (exit code 5); treating this as a failure." >&2; fi; \
	exit $$rc

# Build, then open every built page in headless Chromium (tests/test_site.py; skipped, with the
# reason, where Chromium or Playwright is missing). Screenshots: _build/screenshots/.
book: setup
	$(JUPYTER_BOOK) build . -W --keep-going
	$(MAKE) check-site

check-site:
	RELREPS_SITE=_build/html $(PYTHON) -m pytest -p no:cacheprovider tests/test_site.py

bench:
	$(PYTHON) -m relreps bench env

clean:
	rm -rf _build .pytest_cache build dist *.egg-info relreps.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
