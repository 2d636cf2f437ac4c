.PHONY: demo test bench lint
demo:
	scripts/demo.sh
test:
	scripts/test.sh
bench:
	scripts/bootstrap.sh && .venv/bin/python -m benchmarks
lint:
	.venv/bin/ruff check penguiflow penguiflow_a2a tests examples benchmarks && .venv/bin/ruff format --check penguiflow penguiflow_a2a tests examples benchmarks && .venv/bin/mypy && .venv/bin/lint-imports
