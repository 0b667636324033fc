"""Settings read exactly the documented environment variables."""

from __future__ import annotations

from pathlib import Path

from graphrec.config import Settings


def test_documented_variables_are_read(monkeypatch):
    monkeypatch.setenv("GRAPHREC_HOME", "/srv/graphrec")
    monkeypatch.setenv("GRAPHREC_BOLT_PORT", "7700")
    monkeypatch.setenv("NEO4J_URI", "bolt://db:7687")
    monkeypatch.setenv("NEO4J_USER", "analyst")
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret-pass")
    monkeypatch.setenv("GRAPHREC_API_KEY", "key-1")
    s = Settings()
    assert (s.home, s.bolt_port, s.neo4j_uri, s.neo4j_user) == (Path("/srv/graphrec"), 7700, "bolt://db:7687", "analyst")
    assert s.neo4j_password.get_secret_value() == "s3cret-pass" and s.api_key.get_secret_value() == "key-1"
    assert s.external and "s3cret" not in repr(s)


def test_unrelated_variables_named_like_fields_are_ignored(monkeypatch):
    for name in ("GRAPHREC_HOME", "GRAPHREC_BOLT_PORT", "NEO4J_URI", "NEO4J_PASSWORD", "GRAPHREC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/root")
    monkeypatch.setenv("API_KEY", "not-ours")
    monkeypatch.setenv("BOLT_PORT", "1")
    s = Settings()
    assert s.home == Path(".graphrec") and s.api_key is None and s.bolt_port == 7687 and not s.external


def test_overrides_ignore_unset_flags():
    s = Settings(home="/a").with_overrides(home=None, bolt_port=7999)
    assert s.home == Path("/a") and s.bolt_port == 7999
