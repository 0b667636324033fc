"""The graph schema, defined once.

Labels, relationship types, their properties and the constraints live here. ``cypher/schema.cypher``
is generated from :func:`schema_cypher` (``graphrec schema show > cypher/schema.cypher``) and a test
keeps the two equal; loaders, the exporter and the API take their names from these constants.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class NodeType:
    label: str
    key: str
    properties: tuple[str, ...]


@dataclass(frozen=True)
class RelType:
    type: str
    start: str
    end: str
    properties: tuple[str, ...] = ()
    # Undirected relationships (FRIEND) are stored once per pair, from the smaller id to the larger.
    undirected: bool = False


USER = NodeType("User", "id", ("id", "name"))
PRODUCT = NodeType("Product", "id", ("id", "name", "price", "brand"))
CATEGORY = NodeType("Category", "id", ("id", "name"))
NODE_TYPES: tuple[NodeType, ...] = (USER, PRODUCT, CATEGORY)

INTERACTION_PROPERTIES = ("ts", "weight", "split")
BOUGHT = RelType("BOUGHT", "User", "Product", INTERACTION_PROPERTIES)
VIEWED = RelType("VIEWED", "User", "Product", INTERACTION_PROPERTIES)
RATED = RelType("RATED", "User", "Product", INTERACTION_PROPERTIES)
IN_CATEGORY = RelType("IN_CATEGORY", "Product", "Category", ("primary",))
SUBCATEGORY_OF = RelType("SUBCATEGORY_OF", "Category", "Category")
FRIEND = RelType("FRIEND", "User", "User", undirected=True)
FOLLOWS = RelType("FOLLOWS", "User", "User")
RECOMMENDED = RelType("RECOMMENDED", "User", "Product", ("score", "rank", "model", "at"))
REL_TYPES: tuple[RelType, ...] = (
    BOUGHT,
    VIEWED,
    RATED,
    IN_CATEGORY,
    SUBCATEGORY_OF,
    FRIEND,
    FOLLOWS,
    RECOMMENDED,
)

# Promotions (graphrec.campaigns): a campaign, what it promotes, who is in its audience and in which
# variant. Kept apart from NODE_TYPES/REL_TYPES, which describe the shop graph that is loaded,
# exported and trained on; campaigns are written by the API/CLI, never by the loader.
CAMPAIGN = NodeType("Campaign", "id", (
    "id", "name", "salt", "created_at", "start", "end", "offer_kind", "offer_value", "policy",
    "audience_size", "exclude_buyers", "control_fraction", "cap_per_user_per_day", "category_id",
    "products", "promoted", "treatment", "control",
))
PROMOTES = RelType("PROMOTES", "Campaign", "Product|Category")
ASSIGNED = RelType("ASSIGNED", "User", "Campaign", ("variant", "at"))
CAMPAIGN_NODE_TYPES: tuple[NodeType, ...] = (CAMPAIGN,)
CAMPAIGN_REL_TYPES: tuple[RelType, ...] = (PROMOTES, ASSIGNED)
ALL_NODE_TYPES: tuple[NodeType, ...] = NODE_TYPES + CAMPAIGN_NODE_TYPES
ALL_REL_TYPES: tuple[RelType, ...] = REL_TYPES + CAMPAIGN_REL_TYPES

# Canonical input vocabulary -> relationship type.
INTERACTION_KINDS: dict[str, RelType] = {"purchase": BOUGHT, "view": VIEWED, "rating": RATED}
SOCIAL_KINDS: dict[str, RelType] = {"friend": FRIEND, "follows": FOLLOWS}
SPLITS = ("train", "valid", "test")


def node_type(label: str) -> NodeType:
    for node in ALL_NODE_TYPES:
        if node.label == label:
            return node
    raise KeyError(f"unknown node label {label!r}")


def rel_type(name: str) -> RelType:
    for rel in ALL_REL_TYPES:
        if rel.type == name:
            return rel
    raise KeyError(f"unknown relationship type {name!r}")


def constraint_statements() -> list[str]:
    """Idempotent DDL: a uniqueness constraint (hence an index) on every node key."""
    return [
        f"CREATE CONSTRAINT {node.label.lower()}_{node.key}_unique IF NOT EXISTS "
        f"FOR (n:{node.label}) REQUIRE n.{node.key} IS UNIQUE"
        for node in ALL_NODE_TYPES
    ]


def index_statements() -> list[str]:
    """Secondary indexes the named analyst queries and the exporter filter on."""
    return [
        "CREATE INDEX product_name IF NOT EXISTS FOR (n:Product) ON (n.name)",
        "CREATE INDEX category_name IF NOT EXISTS FOR (n:Category) ON (n.name)",
        "CREATE INDEX bought_split IF NOT EXISTS FOR ()-[r:BOUGHT]-() ON (r.split)",
        "CREATE INDEX recommended_model IF NOT EXISTS FOR ()-[r:RECOMMENDED]-() ON (r.model)",
    ]


def schema_cypher() -> str:
    """The text of ``cypher/schema.cypher``: every schema statement, one per line."""
    lines = [
        "// GraphRec graph schema, version %d. Generated from graphrec/schema.py; do not edit by hand."
        % SCHEMA_VERSION,
        "// Nodes: " + ", ".join(f":{n.label} {{{', '.join(n.properties)}}}" for n in ALL_NODE_TYPES),
        "// Relationships: "
        + ", ".join(
            f"(:{r.start})-[:{r.type}{' {' + ', '.join(r.properties) + '}' if r.properties else ''}]->(:{r.end})"
            for r in ALL_REL_TYPES
        ),
    ]
    lines += [stmt + ";" for stmt in constraint_statements() + index_statements()]
    return "\n".join(lines) + "\n"
