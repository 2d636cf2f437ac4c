.PHONY: demo test bench lint
demo:
	scripts/demo.sh
test:
	scripts/test.sh
bench:
	scripts/bootstrap.sh && .venv/bin/python -m benchmarks
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
