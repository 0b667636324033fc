"""What a campaign is: the spec a marketer posts, the stored campaign, and the A/B assignment rule."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Variant = Literal["treatment", "control"]
VARIANTS: tuple[Variant, ...] = ("treatment", "control")
Policy = Literal["model", "friends_bought", "popular", "random"]
POLICIES: tuple[Policy, ...] = ("model", "friends_bought", "popular", "random")

CampaignId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
ProductId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Offer(_Strict):
    """A discount: ``percent_off`` (0 < value <= 100) or ``amount_off`` (money, > 0)."""

    kind: Literal["percent_off", "amount_off"]
    value: float = Field(gt=0)

    @model_validator(mode="after")
    def _percent_at_most_100(self) -> "Offer":
        if self.kind == "percent_off" and self.value > 100:
            raise ValueError("percent_off value must be at most 100")
        return self

    def discount(self, price: float) -> float:
        """The money the shop gives away on one purchase at ``price`` (amount_off capped at it)."""
        price = max(float(price), 0.0)
        if self.kind == "percent_off":
            return price * self.value / 100.0
        return min(self.value, price)


class Audience(_Strict):
    """Who is targeted: ``size`` users chosen by ``policy``; ``exclude_buyers`` leaves out users who
    already bought a promoted product."""

    policy: Policy
    size: int = Field(ge=1, le=10_000_000)
    exclude_buyers: bool = True


class Cap(_Strict):
    """At most ``per_user_per_day`` offers of this campaign per user per UTC day."""

    per_user_per_day: int = Field(3, ge=1, le=1000)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class CampaignSpec(_Strict):
    """What a marketer posts. ``category_id`` includes its subcategories; naive datetimes are UTC."""

    campaign_id: CampaignId
    name: str = Field(min_length=1, max_length=500)
    products: list[ProductId] = Field(default_factory=list, max_length=10_000)
    category_id: ProductId | None = Field(None, validate_default=True)
    offer: Offer
    start: datetime
    end: datetime
    audience: Audience
    control_fraction: float = Field(0.1, ge=0.0, le=0.5)
    cap: Cap = Field(default_factory=Cap)

    # Field validators rather than one model validator, so that an error names its field.
    @field_validator("start")
    @classmethod
    def _start_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        value, start = _utc(value), info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("end must be after start")
        return value

    @field_validator("products")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("category_id")
    @classmethod
    def _something_promoted(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and "products" in info.data and not info.data["products"]:
            raise ValueError("give products, category_id or both")
        return value

    def active(self, at: datetime) -> bool:
        """Inside [start, end)."""
        return self.start <= _utc(at) < self.end


class Campaign(CampaignSpec):
    """A stored campaign: the spec, its assignment salt, the resolved products and the audience counts."""

    model_config = ConfigDict(extra="ignore")

    salt: str
    created_at: datetime
    promoted: list[str] = Field(default_factory=list, description="Product ids, category expanded")
    counts: dict[str, int] = Field(default_factory=lambda: {v: 0 for v in VARIANTS})

    @field_validator("created_at")
    @classmethod
    def _created_utc(cls, value: datetime) -> datetime:
        return _utc(value)


def unit_interval(salt: str, user_id: str) -> float:
    """sha256(salt, user id) as a number in [0, 1): the same inputs always give the same number."""
    digest = hashlib.sha256(f"{salt}\x1f{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_variant(salt: str, user_id: str, control_fraction: float) -> Variant:
    """Deterministic A/B split: control when the user's hash falls below ``control_fraction``."""
    return "control" if unit_interval(salt, user_id) < control_fraction else "treatment"
