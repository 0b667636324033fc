"""Connecting to Neo4j: the external server of ``NEO4J_URI``, else GraphRec's own local server."""

from __future__ import annotations

from typing import Any

from neo4j import Driver, GraphDatabase
from neo4j.exceptions import AuthError, ServiceUnavailable

from graphrec.config import Settings
from graphrec.neo4j.server import LocalNeo4j


class StoreUnavailable(RuntimeError):
    """Neo4j cannot be reached or refused the credentials; the message says what to do."""


def neo4j_uri(settings: Settings) -> str:
    return settings.neo4j_uri if settings.neo4j_uri else LocalNeo4j(settings).uri


def _password(settings: Settings) -> str:
    if settings.neo4j_password is not None:
        return settings.neo4j_password.get_secret_value()
    if settings.external:
        raise StoreUnavailable("NEO4J_URI is set but NEO4J_PASSWORD is not")
    return LocalNeo4j(settings).password()


def connect(settings: Settings, *, verify: bool = True, **driver_options: Any) -> Driver:
    """A driver for the configured server; with ``verify`` it fails fast with a clear message.

    ``driver_options`` go to ``GraphDatabase.driver`` (a service sets short timeouts, say).
    """
    uri = neo4j_uri(settings)
    try:
        driver = GraphDatabase.driver(uri, auth=(settings.neo4j_user, _password(settings)), **driver_options)
    except StoreUnavailable:
        raise
    except Exception as err:  # a malformed URI, a missing password file
        raise StoreUnavailable(f"cannot connect to Neo4j at {uri}: {err}") from None
    if verify:
        try:
            driver.verify_connectivity()
        except AuthError:
            driver.close()
            raise StoreUnavailable(f"Neo4j at {uri} refused the credentials of user {settings.neo4j_user!r}") from None
        except (ServiceUnavailable, OSError):
            driver.close()
            hint = "" if settings.external else " (start it with 'graphrec neo4j start')"
            raise StoreUnavailable(f"Neo4j is not reachable at {uri}{hint}") from None
    return driver
