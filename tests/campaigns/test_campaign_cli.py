"""``graphrec campaign create|list|show`` against the real Neo4j (the small shop)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from graphrec.cli import app
from graphrec.campaigns import store

pytestmark = pytest.mark.integration

CAMPAIGN = {"campaign_id": "jazz", "name": "Jazz nights", "products": ["p200", "p201"], "category_id": "c2",
            "offer": {"kind": "amount_off", "value": 5}, "start": "2026-05-01T00:00:00Z",
            "end": "2026-05-15T00:00:00Z", "audience": {"policy": "model", "size": 10}, "control_fraction": 0.3}


def run(kit, neo4j_settings, *args: str):
    return CliRunner().invoke(app, list(args), env=kit.cli_env(neo4j_settings))


def test_create_list_show(shop_db, shop_artifact, neo4j_settings, kit, tmp_path):
    path = tmp_path / "jazz.json"
    path.write_text(json.dumps(CAMPAIGN))
    done = run(kit, neo4j_settings, "campaign", "create", "--file", str(path), "--model", str(shop_artifact),
               "--format", "json")
    assert done.exit_code == 0, done.output
    created = json.loads(done.stdout)
    stored = store.get_campaign(shop_db, "jazz")
    assert created["counts"] == stored.counts and sum(stored.counts.values()) == len(store.assignments(shop_db, "jazz"))
    assert created["promoted"][:2] == ["p200", "p201"] and len(created["promoted"]) == 10

    listed = json.loads(run(kit, neo4j_settings, "campaign", "list", "--format", "json").stdout)
    assert [c["campaign_id"] for c in listed["campaigns"]] == ["jazz"]
    table = run(kit, neo4j_settings, "campaign", "show", "jazz", "--format", "table")
    assert table.exit_code == 0 and "Jazz nights" in table.stdout and "5 off" in table.stdout

    again = run(kit, neo4j_settings, "campaign", "create", "--file", str(path), "--model", str(shop_artifact))
    assert again.exit_code == 1 and "already exists" in again.output
    missing = run(kit, neo4j_settings, "campaign", "show", "nope")
    assert missing.exit_code == 1 and "nope" in missing.output and "Traceback" not in missing.output


def test_bad_files_name_the_field(shop_db, neo4j_settings, kit, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**CAMPAIGN, "control_fraction": 0.8}))
    r = run(kit, neo4j_settings, "campaign", "create", "--file", str(path))
    assert r.exit_code == 1 and "control_fraction" in r.output
    path.write_text(json.dumps({**CAMPAIGN, "products": ["ghost"]}))
    r = run(kit, neo4j_settings, "campaign", "create", "--file", str(path), "--model", "/nonexistent")
    assert r.exit_code == 1
    path.write_text(json.dumps({**CAMPAIGN, "products": ["ghost"], "audience": {"policy": "random", "size": 3}}))
    r = run(kit, neo4j_settings, "campaign", "create", "--file", str(path))
    assert r.exit_code == 1 and "products[0]" in r.output and "ghost" in r.output
    assert store.list_campaigns(shop_db) == []
