"""Configuration: one settings object, read from flags and environment variables, passed down.

Nothing else in GraphRec reads the environment for configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Read-only procedures: the schema's shape, and GDS algorithms in stream/estimate mode (when installed).
DEFAULT_ANALYST_PROCEDURES: tuple[str, ...] = (
    "db.labels", "db.relationshipTypes", "db.propertyKeys", "db.schema.visualization",
    "db.schema.nodeTypeProperties", "db.schema.relTypeProperties",
    # Graph Data Science, modes that never write the database: stream, stats and estimate results,
    # and the in-memory catalog (project, mutate, list, drop). graphrec.store.query refuses the
    # .write modes, Cypher-string projections and exports whatever this list says.
    "gds.version", "gds.list", "gds.*.stream", "gds.*.stats", "gds.*.estimate", "gds.*.mutate",
    "gds.graph.project", "gds.graph.list", "gds.graph.exists", "gds.graph.drop",
)


class Settings(BaseSettings):
    """Where Neo4j is, how to log in, where GraphRec keeps its files.

    If ``NEO4J_URI`` is set, GraphRec uses that external server and never starts one.
    Otherwise it runs its own Neo4j under ``GRAPHREC_HOME`` (see :mod:`graphrec.neo4j`).
    """

    # Each field reads the environment variable named by its alias. populate_by_name lets code pass
    # field names (Settings(home=...)), but it also makes pydantic-settings read an environment
    # variable named like the field: the prefix keeps that from being $HOME or $API_KEY.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_prefix="GRAPHREC_")

    neo4j_uri: str | None = Field(None, validation_alias="NEO4J_URI")
    neo4j_user: str = Field("neo4j", validation_alias="NEO4J_USER")
    neo4j_password: SecretStr | None = Field(
        None, validation_alias="NEO4J_PASSWORD"
    )
    neo4j_database: str = Field(
        "neo4j", validation_alias="NEO4J_DATABASE"
    )
    home: Path = Field(Path(".graphrec"), validation_alias="GRAPHREC_HOME")
    bolt_port: int = Field(
        7687, ge=1, le=65535, validation_alias="GRAPHREC_BOLT_PORT"
    )
    # Neo4j Browser from the embedded server (`graphrec neo4j start --browser`): its HTTP port, None
    # for off, and the address it listens on (loopback unless asked otherwise).
    browser_port: int | None = Field(None, ge=1, le=65535, validation_alias="GRAPHREC_BROWSER_PORT")
    browser_host: str = Field("127.0.0.1", validation_alias="GRAPHREC_BROWSER_HOST")
    api_key: SecretStr | None = Field(
        None, validation_alias="GRAPHREC_API_KEY"
    )
    # Keys with roles (see graphrec.serving.auth): a file of ``name:roles:sha256`` lines.
    api_keys_file: Path | None = Field(None, validation_alias="GRAPHREC_API_KEYS_FILE")
    # Who wrote what, which analyst ran which query: JSON lines; default ``<home>/audit.log``.
    audit_log: Path | None = Field(None, validation_alias="GRAPHREC_AUDIT_LOG")
    # Per key, on expensive endpoints (analyst queries): sustained requests/s and burst.
    query_rate: float = Field(2.0, gt=0, validation_alias="GRAPHREC_QUERY_RATE")
    query_burst: int = Field(10, ge=1, validation_alias="GRAPHREC_QUERY_BURST")
    # Memory of the embedded server; the defaults suit a 2-core, 24 GiB machine running tests too.
    neo4j_heap: str = Field("1g", validation_alias="GRAPHREC_NEO4J_HEAP")
    neo4j_pagecache: str = Field(
        "512m", validation_alias="GRAPHREC_NEO4J_PAGECACHE"
    )
    # Analysts (graphrec query, /graph/query, named queries) may call only these procedures;
    # shell-style patterns, comma-separated in the environment. Everything else a plan shows
    # besides graph reads (admin commands, SHOW TRANSACTIONS, LOAD CSV) is refused.
    analyst_procedures: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_ANALYST_PROCEDURES, validation_alias="GRAPHREC_ANALYST_PROCEDURES")
    # An analyst's result stops at this many bytes of JSON (truncated=true), so one query cannot
    # fill the API's memory.
    analyst_max_bytes: int = Field(16 * 2**20, ge=1024, validation_alias="GRAPHREC_ANALYST_MAX_BYTES")
    # Named analyst queries never show a row whose group (its declared group-size columns) holds
    # fewer people than this.
    min_group_size: int = Field(10, ge=1, validation_alias="GRAPHREC_MIN_GROUP_SIZE")
    # The most heap one transaction of the embedded server may take (Neo4j's db.memory.transaction.max):
    # a query over it fails alone instead of starving or killing the server.
    neo4j_transaction_max: str = Field("256m", validation_alias="GRAPHREC_NEO4J_TRANSACTION_MAX")
    # Key of pseudonymised exports (graphrec.privacy): the shop keeps it; the API needs it to serve a
    # model trained on such a snapshot. At least 32 bytes, e.g. `openssl rand -hex 32`.
    pseudonym_key: SecretStr | None = Field(None, validation_alias="GRAPHREC_PSEUDONYM_KEY")

    @field_validator("analyst_procedures", mode="before")
    @classmethod
    def _split_procedures(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value
    # Promotions: the DuckDB file of events and served offers (default ``<home>/events.duckdb``), and
    # the cap on offers per user per UTC day across all campaigns (each campaign has its own too).
    events_db: Path | None = Field(None, validation_alias="GRAPHREC_EVENTS_DB")
    offers_per_user_per_day: int = Field(5, ge=1, validation_alias="GRAPHREC_OFFERS_PER_USER_PER_DAY")

    @property
    def external(self) -> bool:
        """True when an external server (``NEO4J_URI``) is configured."""
        return self.neo4j_uri is not None

    @property
    def audit_path(self) -> Path:
        return self.audit_log if self.audit_log is not None else self.home / "audit.log"

    @property
    def events_path(self) -> Path:
        return self.events_db if self.events_db is not None else self.home / "events.duckdb"

    def with_overrides(self, **overrides: object) -> "Settings":
        """A copy with the given fields replaced; ``None`` values are ignored (unset CLI flags)."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        return self.model_copy(update=changes) if changes else self
