"""Pydantic models at the service's edge: requests, responses and their OpenAPI examples.

The library's records are frozen dataclasses built cheaply in the hot path; these models exist
for validation and for the OpenAPI page. Orders carry the names of contract §1 and decisions
those of §2 (`../shared/contracts/orders.md`); the order is validated again by the same
`RowParser` that reads files, so a bad value gets the same message from the API and the CLI.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Text = str | None


class OrderIn(BaseModel):
    """One order line, with the column names of contract §1. Unknown fields are ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "order_id": "PO-1001",
                    "order_date": "2025-06-02",
                    "exporter": "Acme Chips Inc",
                    "item": "H100-SXM5",
                    "quantity": 200,
                    "destination": "IN",
                    "consignee_name": "Bharat Compute Pvt Ltd",
                    "end_use": "training",
                }
            ]
        },
    )

    order_id: str = Field(
        min_length=1, max_length=200, description="Unique within the exporter's orders."
    )
    order_date: dt.date = Field(description="Date of export; rules are evaluated as of this date.")
    exporter: str | None = Field(
        None, max_length=200, description="The exporting company; an exporter key fills in its own."
    )
    item: Text = Field(None, max_length=200, description="Catalog identifier, e.g. H100-SXM5.")
    item_kind: Literal["ic", "computer", "model_weights"] | None = None
    quantity: int = Field(gt=0, le=10**9)
    chips_per_unit: int | None = Field(None, gt=0, le=10**6)
    tpp_per_unit: Decimal | None = Field(None, ge=0, le=10**9, allow_inf_nan=False)
    die_area_mm2: Decimal | None = Field(None, gt=0, le=10**6, allow_inf_nan=False)
    datacenter: bool | None = None
    memory_bandwidth_gbps: Decimal | None = Field(None, ge=0, le=10**9, allow_inf_nan=False)
    training_ops: Decimal | None = Field(None, ge=0, le=Decimal("1e40"), allow_inf_nan=False)
    open_weights: bool | None = None
    unit_price_usd: Decimal | None = Field(None, ge=0, le=10**12, allow_inf_nan=False)
    destination: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2.")
    consignee_id: Text = Field(None, max_length=200)
    consignee_name: str = Field(min_length=1, max_length=500)
    consignee_address: Text = Field(None, max_length=1000)
    consignee_country: Text = Field(None, max_length=2)
    consignee_hq_country: Text = Field(None, max_length=2)
    consignee_government: bool | None = None
    consignee_phone: Text = Field(None, max_length=100)
    consignee_email: Text = Field(None, max_length=300)
    consignee_website: Text = Field(None, max_length=300)
    consignee_registration: Text = Field(None, max_length=200)
    consignee_officers: Text = Field(None, max_length=2000)
    consignee_founded: dt.date | None = None
    end_use: (
        Literal[
            "datacenter",
            "training",
            "inference",
            "development",
            "production",
            "storage",
            "research",
            "resale",
            "unknown",
        ]
        | None
    ) = None
    intermediate_name: Text = Field(None, max_length=500)
    intermediate_country: Text = Field(None, max_length=2)
    payer_name: Text = Field(None, max_length=500)
    payer_country: Text = Field(None, max_length=2)
    authorization: Text = Field(
        None,
        max_length=200,
        description="LPP, AIA, ACM, ACA, NAC, LICENSE:<id>, UVEU:<id> or NVEU:<id>.",
    )


class DecisionRequest(OrderIn):
    """An order to decide; with `commit` its quota draws are recorded in the ledger."""

    commit: bool = Field(
        False, description="Record the order's quota draws in the ledger, atomically."
    )
    rule_set: str | None = Field(
        None, max_length=100, description="A shipped rule set; default: the server's."
    )


class BatchRequest(BaseModel):
    """Orders decided in (order_date, position) order, carrying quota state; all or nothing."""

    orders: list[OrderIn] = Field(min_length=1, max_length=10_000)
    commit: bool = False
    rule_set: str | None = Field(None, max_length=100)


class ReasonOut(BaseModel):
    rule: str
    citation: str
    text: str


class DecisionOut(BaseModel):
    """A contract §2 record, plus what the service did with it."""

    order_id: str
    eccn: str
    tpp_total: float
    h100_equivalents: float
    destination_tier: int
    status: Literal["no_license_required", "license_exception", "license_required"]
    authority: str
    review_policy: str | None
    obligations: list[str]
    quota: dict[str, Any] | None
    reasons: list[ReasonOut]
    rule_set: str
    recorded: bool = Field(description="The quota draws are in the ledger.")
    replayed: bool = Field(
        False, description="The same order was recorded before; nothing new was drawn."
    )
    decision_id: int | None = None


class BatchOut(BaseModel):
    decisions: list[DecisionOut]
    recorded: bool
    summary: dict[str, Any]


class StoredDecision(BaseModel):
    decision_id: int
    exporter: str
    order_id: str
    order_date: str
    destination: str
    consignee: str
    status: str
    authority: str
    tpp_total: float
    actor: str
    created_at: str
    order: dict[str, Any]
    decision: dict[str, Any]


class DecisionPage(BaseModel):
    decisions: list[StoredDecision]
    total: int


class ErrorOut(BaseModel):
    """Every error: its kind, a message saying what to do, and details where they help."""

    error: str = Field(examples=["InputError"])
    message: str = Field(
        examples=["line 1, column 'destination': 'XX' is not an ISO 3166-1 alpha-2 country code"]
    )
    details: list[dict[str, Any]] | None = None


class LicenseIn(BaseModel):
    license_id: str = Field(min_length=1, max_length=200, examples=["D1234567"])
    destination: str = Field(min_length=2, max_length=2, examples=["IN"])
    consignee: str | None = Field(None, max_length=300)
    tpp: Decimal = Field(gt=0, le=Decimal("1e13"), allow_inf_nan=False, examples=[50_000_000])
    valid_from: dt.date
    valid_until: dt.date | None = Field(None, description="Default: one year of validity.")


class VeuIn(BaseModel):
    veu_id: str = Field(min_length=1, max_length=200, examples=["UVEU-0001"])
    kind: Literal["UVEU", "NVEU"]
    holder: str = Field(min_length=1, max_length=300, description="The holder's consignee id.")
    holder_name: str | None = Field(None, max_length=500)
    hq_country: str = Field(min_length=2, max_length=2)
    countries: list[str] = Field(min_length=1, max_length=300)
    valid_from: dt.date
    valid_until: dt.date | None = None


class KeyIn(BaseModel):
    role: Literal["exporter", "analyst", "admin"]
    name: str = Field(min_length=1, max_length=200)
    exporter: str | None = Field(None, max_length=200)


class JobIn(BaseModel):
    """Parameters of a background job; each kind documents its own."""

    params: dict[str, Any] = Field(default_factory=dict)


class JobOut(BaseModel):
    job_id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    progress: float
    message: str
    params: dict[str, Any]
    error: str | None
    actor: str
    created_at: str
    finished_at: str | None
    result_url: str | None
