"""Request and response models: the API's contract, and its OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from graphrec import limits, schema

# Bounds that keep one request cheap; the body-size middleware bounds the bytes.
MAX_K = 100
MAX_LIST = 500


def _valid_id(value: str) -> str:
    problem = limits.id_problem(value)
    if problem is not None:
        raise ValueError(f"id {problem}")
    return value


# Ids, numbers and times follow graphrec.limits, the rules the loader applies to files: one rule for both.
Id = Annotated[str, Field(min_length=1, max_length=limits.ID_MAX_BYTES,
                          description=f"1 to {limits.ID_MAX_BYTES} bytes of UTF-8, printable characters "
                                      "only, no space at either end"),
               AfterValidator(_valid_id)]
Weight = Annotated[float, limits.WEIGHT.field(description="How much the interaction counts: > 0, "
                                                          f"at most {limits.WEIGHT.le:g}")]
Price = Annotated[float, limits.PRICE.field(description=f"Finite, 0 to {limits.PRICE.le:g}")]
Timestamp = Annotated[datetime, AfterValidator(limits.check_datetime)]


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
    score: float = Field(description="The raw value ranked on: the model's dot product for 'model' and "
                                     "'fold_in', training interactions for 'popular'. Its scale differs "
                                     "by source and model; compare percentiles instead")
    percentile: float = Field(ge=0, le=1, description="Share of the whole catalogue this product outranks "
                                                       "for this user (1 = the best); the same meaning for "
                                                       "every source, user and model")
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
    ts: Timestamp | None = Field(None, description="ISO 8601, years 1 to 9999 in UTC; default: now")
    weight: Weight = 1.0


class NewUser(Strict):
    user_id: Id
    name: str | None = Field(None, max_length=200)
    friends: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    follows: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    categories: list[Id] = Field(default_factory=list, max_length=MAX_LIST,
                                 description="Category ids the user is interested in")
    interactions: list[InteractionIn] = Field(default_factory=list, max_length=MAX_LIST)

    @field_validator("friends", "follows")
    @classmethod
    def _not_themselves(cls, ids: list[str], info: ValidationInfo) -> list[str]:
        # Refused here, as a 422 on the field: otherwise the user, not yet in the graph, is a 404.
        user = info.data.get("user_id")
        if user in ids:
            raise ValueError(f"{info.field_name}[{ids.index(user)}] is {user!r}, the new user itself: "
                             "a user cannot befriend or follow themselves")
        return ids


class UserCreated(BaseModel):
    user_id: str
    source: str
    recommendations_url: str


class NewInteractions(Strict):
    user_id: Id
    product_id: Id
    kind: InteractionKind = InteractionKind.purchase
    ts: Timestamp | None = None
    weight: Weight = 1.0


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
    price: Price | None = None
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
    generation: int = Field(description="Serving-state generation: +1 at each graph reload")
    started_at: str
    live: dict[str, int]


class Erased(BaseModel):
    user_id: str
    erased: dict[str, int] = Field(description="What was removed, per store (graph: 1 if the node existed)")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    detail: str
    field: str | None = Field(None, description="The request field at fault, when there is one")
    errors: list[FieldError] | None = Field(None, description="Every invalid field (422 only)")
    refusal: str | None = Field(None, description="Why an analyst query was refused (forbidden, timeout, "
                                                  "too large, memory, ...), when one was")


# -- promotions: campaigns, offers, events (graphrec.campaigns) ------------------------------------------
# POST /campaigns takes graphrec.campaigns.model.CampaignSpec itself: one definition for API and CLI.
class OfferTerms(BaseModel):
    kind: Literal["percent_off", "amount_off"]
    value: float


class CampaignOut(BaseModel):
    campaign_id: str
    name: str
    products: list[str] = Field(description="Products named in the spec")
    category_id: str | None = Field(description="Promoted category (subcategories included)")
    promoted: list[str] = Field(description="Every promoted product id: products plus the category's")
    offer: OfferTerms
    start: datetime
    end: datetime
    audience: dict[str, Any] = Field(description="{policy, size, exclude_buyers} as requested")
    control_fraction: float
    cap: dict[str, int] = Field(description="{per_user_per_day}")
    salt: str = Field(description="Hashed with each user id to assign the variant")
    created_at: datetime
    counts: dict[str, int] = Field(description="Audience members per variant (treatment, control)")
    active: bool = Field(description="Now inside [start, end)")


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


class AudiencePage(BaseModel):
    user_ids: list[str]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last")


class OfferItemOut(BaseModel):
    campaign_id: str
    campaign_name: str
    product_id: str
    name: str | None
    score: float
    offer: OfferTerms
    price: float | None
    price_after_offer: float | None
    ends_at: str
    explanations: list[ExplanationOut] = Field(default_factory=list)


class OffersOut(BaseModel):
    user_id: str
    offers: list[OfferItemOut]
    control_campaigns: list[str] = Field(description="Active campaigns where the user is in the control "
                                                      "group: no offer from those, by design")
    capped: bool = Field(description="The frequency cap (per UTC day) withheld offers")
    served_today: int = Field(description="Offers served to this user today (UTC), this response included")


MAX_EVENTS = 1000


class EventIn(Strict):
    event_id: Id
    type: Literal["impression", "click", "purchase"]
    user_id: Id
    product_id: Id
    campaign_id: Id | None = Field(None, description="Required for impression and click")
    ts: Timestamp = Field(description="ISO 8601; naive means UTC; years 0001-9999")
    value: Price | None = Field(None, description="Order value (purchase: required; finite, >= 0)")


class EventsIn(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


class EventsOut(BaseModel):
    accepted: int
    duplicates: int = Field(description="Events whose event_id was already stored (or repeated in the batch)")
    graph_pending: int = Field(0, description="Purchases stored whose BOUGHT edge Neo4j has not taken yet "
                                              "(retried with the next batch)")
