"""Keys with roles over real HTTP: 401 without a key, 403 without the role, 429 past the rate,
an audit log that names who did what and never holds a key, and OpenAPI's security scheme."""

from __future__ import annotations

import json

import pytest

from api.main import create_app
from graphrec.serving.auth import KeyRing, Role, hash_key, new_key, parse_keys_file

pytestmark = pytest.mark.integration

KEYS = {role: new_key() for role in ("reader", "writer", "marketer", "analyst")}


@pytest.fixture
def keyed(shop_db, shop_artifact, neo4j_settings, kit, tmp_path):
    """The API with an admin key (GRAPHREC_API_KEY) and a file of hashed keys, one per role."""
    keys_file = tmp_path / "keys"
    keys_file.write_text("# name:roles:sha256\n" + "".join(
        f"{role}-key:{role}:{hash_key(key)}\n" for role, key in KEYS.items()))
    settings = kit.settings_for(neo4j_settings).model_copy(update={
        "api_keys_file": keys_file, "audit_log": tmp_path / "audit.log", "query_rate": 0.5, "query_burst": 3})
    with kit.LiveServer(create_app(settings, shop_artifact), key=None) as server:
        server.audit = tmp_path / "audit.log"
        yield server


def call(server, method: str, path: str, role: str | None, **kw):
    headers = {"X-API-Key": KEYS.get(role, role)} if role else {}
    return server.anonymous.request(method, path, headers=headers, **kw)


def test_roles_decide_every_endpoint(keyed, kit):
    new_user = {"user_id": "auth-new", "friends": ["u01"]}
    assert call(keyed, "GET", "/users/u01/recommendations", None).status_code == 401
    assert call(keyed, "GET", "/users/u01/recommendations", "not-a-key").status_code == 401
    assert call(keyed, "GET", "/users/u01/recommendations", "reader").status_code == 200
    assert call(keyed, "GET", "/users/u01/promos/friends-bought", "reader").status_code == 200
    r = call(keyed, "POST", "/users", None, json=new_user)
    assert r.status_code == 401 and r.json()["field"] == "X-API-Key"
    r = call(keyed, "POST", "/users", "reader", json=new_user)
    assert r.status_code == 403 and "writer" in r.json()["detail"]
    assert call(keyed, "POST", "/graph/query", "writer", json={"query": "RETURN 1"}).status_code == 403
    assert call(keyed, "POST", "/users", "writer", json=new_user).status_code == 201
    assert call(keyed, "POST", "/graph/query", "analyst", json={"query": "RETURN 1"}).status_code == 200
    assert call(keyed, "DELETE", "/users/auth-new", "writer").status_code == 403
    assert call(keyed, "DELETE", "/users/auth-new", kit.API_KEY).status_code == 200  # the admin key
    assert keyed.anonymous.get("/health").status_code == 200  # names nobody: open


def test_rate_limit_and_audit(keyed):
    codes = [call(keyed, "POST", "/graph/query", "analyst", json={"query": "RETURN 1"}) for _ in range(6)]
    assert [r.status_code for r in codes[:3]] == [200, 200, 200]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and int(limited[0].headers["Retry-After"]) >= 1
    call(keyed, "POST", "/users", "writer", json={"user_id": "audited", "friends": ["u02"]})
    text = keyed.audit.read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    assert {"who": "analyst-key", "action": "graph.query"}.items() <= entries[0].items()
    assert entries[0]["query"] == "RETURN 1"
    assert any(e["who"] == "writer-key" and e["action"] == "users.create" and e["user_id"] == "audited"
               for e in entries)
    assert not any(key in text for key in KEYS.values())  # never a key, not even a hashed one's source


def test_openapi_shows_the_security_scheme(keyed):
    spec = keyed.anonymous.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "An API key; its roles decide which endpoints it may call"}
    assert spec["paths"]["/users"]["post"]["security"] == [{"APIKeyHeader": []}]


def test_without_any_key_reads_are_open_and_writes_refused(shop_db, shop_artifact, neo4j_settings, kit):
    with kit.LiveServer(create_app(kit.settings_for(neo4j_settings, api_key=None), shop_artifact), key=None) as server:
        assert server.anonymous.get("/users/u01/recommendations").status_code == 200
        r = server.anonymous.post("/users", json={"user_id": "x", "friends": ["u01"]})
        assert r.status_code == 403 and "no keys configured" in r.json()["detail"]


def test_keys_file_rules(tmp_path):
    path = tmp_path / "keys"
    path.write_text("ops:reader,writer:" + hash_key("k1") + "\n")
    ring = KeyRing(parse_keys_file(path))
    assert ring.authorize("k1", Role.WRITER).name == "ops"
    with pytest.raises(Exception, match="lacks the 'analyst' role"):
        ring.authorize("k1", Role.ANALYST)
    path.write_text("ops:reader:plain-text-key\n")
    with pytest.raises(ValueError, match=r"keys:1: the third field must be the key's sha256"):
        parse_keys_file(path)
    path.write_text("ops:root:" + hash_key("k") + "\n")
    with pytest.raises(ValueError, match=r"keys:1: unknown role"):
        parse_keys_file(path)


def test_keys_new_prints_a_key_and_its_hashed_line(tmp_path):
    from typer.testing import CliRunner

    from graphrec.cli import app

    out = CliRunner().invoke(app, ["keys", "new", "growth-team", "--role", "marketer", "--role", "reader"])
    assert out.exit_code == 0, out.output
    made = json.loads(out.stdout)
    assert made["key"] not in made["keys_file_line"]  # the file line holds only the hash
    path = tmp_path / "keys"
    path.write_text(made["keys_file_line"] + "\n")
    principal = KeyRing(parse_keys_file(path)).authorize(made["key"], Role.MARKETER)
    assert principal.name == "growth-team" and principal.roles == {Role.MARKETER, Role.READER}
