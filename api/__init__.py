"""GraphRec's HTTP service (FastAPI): recommendations, cold start, promotions, analyst queries."""
