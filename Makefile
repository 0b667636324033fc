# GraphRec: the two commands of the README, and their parts.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
WORK ?= .graphrec/work
MODEL ?= lightgcn
# `make demo BROWSER=1`: the local Neo4j also serves Neo4j Browser (address printed at the end).
BROWSER ?=

.PHONY: install test demo neo4j-start neo4j-stop clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -e ".[train,serve,dev]"
	touch $@

# The test suite: starts its own real Neo4j servers; a skipped test fails the run.
test: install
	GRAPHREC_FORBID_SKIPS=1 $(BIN)/pytest -q

neo4j-start: install
	$(BIN)/graphrec neo4j start $(if $(BROWSER),--browser,)

neo4j-stop:
	$(BIN)/graphrec neo4j stop

# End to end on the embedded default: local Neo4j, Last.fm converted and loaded, a sample query,
# export -> train -> evaluate, then the service started and answering one user's recommendations.
demo: install neo4j-start
	$(BIN)/graphrec dataset lastfm --raw $(DATA)/lastfm-hetrec2011 --split $(DATA)/lastfm-sociallgn-split --out $(WORK)/lastfm
	$(BIN)/graphrec load $(WORK)/lastfm
	$(BIN)/graphrec query --format table \
	  "MATCH (u:User)-[:FRIEND]-(f:User)-[:BOUGHT]->(p:Product) WHERE NOT (u)-[:BOUGHT]->(p) \
	   WITH p, count(DISTINCT u) AS users RETURN p.name AS product, users ORDER BY users DESC, product LIMIT 10"
	$(BIN)/graphrec export --out $(WORK)/snapshot
	$(BIN)/graphrec train --snapshot $(WORK)/snapshot --model $(MODEL) --out $(WORK)/model-$(MODEL)
	$(BIN)/graphrec evaluate --model $(WORK)/model-$(MODEL) --snapshot $(WORK)/snapshot --plot $(WORK)/curves.png
	$(BIN)/graphrec serve --model $(WORK)/model-$(MODEL) --check
	$(BIN)/python examples/campaign_demo.py --model $(WORK)/model-$(MODEL) --out $(WORK)
	@echo ""
	@echo "Dashboard: GRAPHREC_API_KEY=<a key you choose> $(BIN)/graphrec serve --model $(WORK)/model-$(MODEL) --port 8000"
	@echo "           then open http://127.0.0.1:8000/ui/ and enter that key (API docs: http://127.0.0.1:8000/docs)"
	@$(BIN)/graphrec neo4j status | $(BIN)/python -c "import json, sys; b = json.load(sys.stdin).get('browser'); \
	  print(f'Neo4j Browser: {b} (user neo4j, password in $(or $(GRAPHREC_HOME),.graphrec)/neo4j/password)' if b else '')"

clean:
	rm -rf $(VENV) .pytest_cache
