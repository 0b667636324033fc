"""Request and response models: the API's contract, and its OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from graphrec import schema

# Bounds that keep one request cheap; the body-size middleware bounds the bytes.
MAX_K = 100
MAX_LIST = 500
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- paths and explanations ---------------------------------------------------------------------
class PathNode(BaseModel):
    label: str = Field(description="Node label: " + ", ".join(n.label for n in schema.NODE_TYPES))
    id: str


class PathRel(BaseModel):
    type: str = Field(description="Relationship type: " + ", ".join(r.type for r in schema.REL_TYPES))
    direction: Literal["out", "in"] = Field(
        description="'out': stored from the node before this step to the node after it; 'in': reverse")


class ExplanationOut(BaseModel):
    kind: Literal["friend_bought", "same_category", "co_purchase", "similar_user", "friend_of_friend",
                  "friend_of_buyer", "category"]
    text: str
    path: list[Union[PathNode, PathRel]] = Field(description="Alternating nodes and relationships")


class RecommendedItem(BaseModel):
    product_id: str
    name: str | None
    score: float
    explanations: list[ExplanationOut] = Field(default_factory=list)


class RecommendationsOut(BaseModel):
    user_id: str
    model: str
    source: Literal["model", "fold_in", "popular"] = Field(
        description="model: trained user; fold_in: user placed from friends/interactions without "
                    "retraining; popular: unknown user, popularity fallback")
    items: list[RecommendedItem]
    warnings: list[str] = Field(default_factory=list)


class PopularOut(BaseModel):
    model: str
    items: list[RecommendedItem] = Field(description="Most-interacted products in training (no explanations)")


# -- promos -----------------------------------------------------------------------------------
class FriendOut(BaseModel):
    user_id: str
    name: str | None


class PromoOut(BaseModel):
    product_id: str
    name: str | None
    score: float | None = Field(description="The model's score for the user (null if it has none)")
    friends: list[FriendOut] = Field(description="Friends who bought it (up to 5, named first)")
    friend_count: int
    last_bought: datetime | None
    text: str


class PromosOut(BaseModel):
    user_id: str
    items: list[PromoOut]


# -- cold start ------------------------------------------------------------------------------
class InteractionKind(str, Enum):
    purchase = "purchase"
    view = "view"
    rating = "rating"


class InteractionIn(Strict):
    product_id: Id
    kind: InteractionKind = InteractionKind.purchase
    ts: datetime | None = Field(None, description="ISO 8601; default: now")
    weight: float = Field(1.0, gt=0, le=1e6)


class NewUser(Strict):
    user_id: Id
    name: str | None = Field(None, max_length=200)
    friends: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    follows: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    categories: list[Id] = Field(default_factory=list, max_length=MAX_LIST,
                                 description="Category ids the user is interested in")
    interactions: list[InteractionIn] = Field(default_factory=list, max_length=MAX_LIST)


class UserCreated(BaseModel):
    user_id: str
    source: str
    recommendations_url: str


class NewInteractions(Strict):
    user_id: Id
    product_id: Id
    kind: InteractionKind = InteractionKind.purchase
    ts: datetime | None = None
    weight: float = Field(1.0, gt=0, le=1e6)


class SocialKind(str, Enum):
    friend = "friend"
    follows = "follows"


class NewSocial(Strict):
    user_id: Id
    other_user_id: Id
    kind: SocialKind = SocialKind.friend


class NewProduct(Strict):
    product_id: Id
    name: str = Field(min_length=1, max_length=500)
    category_id: Id
    price: float | None = Field(None, ge=0)
    brand: str | None = Field(None, max_length=200)


class Written(BaseModel):
    ok: bool = True
    written: int


# -- analysts ---------------------------------------------------------------------------------
class QueryIn(Strict):
    query: str = Field(min_length=1, max_length=20_000)
    params: dict[str, Any] = Field(default_factory=dict)


class QueryOut(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False


class NamedParamsIn(Strict):
    params: dict[str, Any] = Field(default_factory=dict)


class ParamOut(BaseModel):
    name: str
    type: str
    required: bool
    default: Any = None
    description: str


class NamedQueryOut(BaseModel):
    name: str
    description: str
    params: list[ParamOut]


# -- health and errors ----------------------------------------------------------------------------
class ModelInfo(BaseModel):
    kind: str
    snapshot_id: str
    created_at: str | None
    format_version: int | None
    users: int
    products: int


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    neo4j_reachable: bool
    graph_loaded: bool
    model: ModelInfo
    graph: dict[str, int] | None
    started_at: str
    live: dict[str, int]


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    detail: str
    field: str | None = Field(None, description="The request field at fault, when there is one")
    errors: list[FieldError] | None = Field(None, description="Every invalid field (422 only)")
