"""Promotions: campaigns (what, to whom, A/B split), offers with caps, events, and their measurement.

A library that the API and the CLI both call; no FastAPI or typer in here. Campaigns live in Neo4j
(:mod:`graphrec.campaigns.store`), events and served offers in DuckDB
(:mod:`graphrec.campaigns.events`); see docs/promotions.md for why.
"""
