# Long runs of what CI runs briefly. `make property`: the ledger's state machine
# (tests/property/) with 5,000 examples instead of 300, about half an hour.
.PHONY: property

property:
	LEDGER_MACHINE_EXAMPLES=5000 python3 dev.py test tests/property
