PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
INPUT  ?= examples/questions.jsonl
CONFIG ?= examples/sim.toml
OUT    ?= out/demo

.PHONY: venv demo test test-report test-vllm test-router test-real bench bench-capacity clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

demo: venv
	rm -rf $(OUT)
	mkdir -p $(OUT)
	$(VENV)/bin/reasonmed run --config $(CONFIG) --input $(INPUT) --db $(OUT)/reasonmed.db || [ $$? -eq 3 ]  # 3: some questions failed; the report counts them
	$(VENV)/bin/reasonmed export --db $(OUT)/reasonmed.db --out $(OUT)/export
	$(VENV)/bin/reasonmed report --db $(OUT)/reasonmed.db --out $(OUT)/report
	@echo "demo report: $(OUT)/report/report.html"

test: venv
	$(PY) -m pytest -q -m "not browser"

# The report page in headless Chromium (Debian's package, installed here if missing).
test-report: venv
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	REASONMED_REQUIRE_BROWSER=1 $(PY) -m pytest -q -s -m browser tests/reports

test-vllm:
	bash mk/test-vllm.sh

test-router: venv
	bash mk/test-router.sh

test-real:
	bash mk/test-real.sh

bench: venv
	$(PY) bench/run.py

# 16 fake 70B replicas, 2,000 in flight, 2,500 and 5,000 synthetic questions, projected to the paper's run (~15 min)
bench-capacity: venv
	$(PY) bench/capacity.py

clean:
	rm -rf $(VENV) out .pytest_cache
