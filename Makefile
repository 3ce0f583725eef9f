# Long runs of what CI runs briefly, and the benchmarks.
#   make property   the ledger's state machine (tests/property/) with 5,000 examples
#                   instead of 300, about half an hour
#   make bench      every hot path against this machine's own limits (bench/hot_paths.py):
#                   seeds 100,000 members by COPY, prints one table, writes bench/results/;
#                   about ten minutes. Needs a PostgreSQL server (DATABASE_URL, else
#                   the local one) and wrk.
.PHONY: property bench

property:
	LEDGER_MACHINE_EXAMPLES=5000 python3 dev.py test tests/property

bench:
	command -v wrk >/dev/null || apt-get install -y wrk
	python3 -c "import dev; dev.ensure_venv()"
	.venv/bin/python bench/hot_paths.py
