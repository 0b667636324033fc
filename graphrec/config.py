"""Configuration: one settings object, read from flags and environment variables, passed down.

Nothing else in GraphRec reads the environment for configuration.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Neo4j is, how to log in, where GraphRec keeps its files.

    If ``NEO4J_URI`` is set, GraphRec uses that external server and never starts one.
    Otherwise it runs its own Neo4j under ``GRAPHREC_HOME`` (see :mod:`graphrec.neo4j`).
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    neo4j_uri: str | None = Field(None, validation_alias=AliasChoices("NEO4J_URI", "neo4j_uri"))
    neo4j_user: str = Field("neo4j", validation_alias=AliasChoices("NEO4J_USER", "neo4j_user"))
    neo4j_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("NEO4J_PASSWORD", "neo4j_password")
    )
    neo4j_database: str = Field(
        "neo4j", validation_alias=AliasChoices("NEO4J_DATABASE", "neo4j_database")
    )
    home: Path = Field(Path(".graphrec"), validation_alias=AliasChoices("GRAPHREC_HOME", "home"))
    bolt_port: int = Field(
        7687, ge=1, le=65535, validation_alias=AliasChoices("GRAPHREC_BOLT_PORT", "bolt_port")
    )
    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GRAPHREC_API_KEY", "api_key")
    )
    # Memory of the embedded server; the defaults suit a 2-core, 24 GiB machine running tests too.
    neo4j_heap: str = Field("1g", validation_alias=AliasChoices("GRAPHREC_NEO4J_HEAP", "neo4j_heap"))
    neo4j_pagecache: str = Field(
        "512m", validation_alias=AliasChoices("GRAPHREC_NEO4J_PAGECACHE", "neo4j_pagecache")
    )

    @property
    def external(self) -> bool:
        """True when an external server (``NEO4J_URI``) is configured."""
        return self.neo4j_uri is not None

    def with_overrides(self, **overrides: object) -> "Settings":
        """A copy with the given fields replaced; ``None`` values are ignored (unset CLI flags)."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        return self.model_copy(update=changes) if changes else self
