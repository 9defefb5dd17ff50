# Two commands do all set-up on a fresh machine with Python 3.11:
#   make report   execute the notebooks on the embedded data into reports/index.html
#                 (and the same as one file, reports/dflib_report.html)
#   make test     run the whole test suite (notebooks included)
# make report PROFILE=full runs the notebooks' full profile instead (paper-like sizes,
# notebook 05's 2000-step training run, notebook 06's five ablation variants at 3000
# steps each; no per-cell time limit) into the same reports/ folder. On 2 CPU cores:
# about 2 hours (an estimate from the recorded training speed, not measured); on a GPU
# not measured. The quick profile takes a few minutes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dflib-installed
# The CPU build of torch; an unpinned torch pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0
PROFILE ?= quick

.PHONY: setup test report bench clean
setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,notebooks]" $(TORCH)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

report: $(STAMP)
	$(BIN)/python -m dflib.report --profile $(PROFILE) --out reports --single-file

bench: $(STAMP)
	$(BIN)/dflib bench

clean:
	rm -rf $(VENV) reports .pytest_cache
