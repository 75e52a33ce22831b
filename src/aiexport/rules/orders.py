"""The order line as the engine sees it (contract §1, already parsed and validated)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

END_USES: tuple[str, ...] = (
    "datacenter", "training", "inference", "development", "production", "storage", "research",
    "resale", "unknown",
)  # fmt: skip
PLAIN_AUTHORIZATIONS: tuple[str, ...] = ("LPP", "AIA", "ACM", "ACA", "NAC")
PREFIXED_AUTHORIZATIONS: tuple[str, ...] = ("LICENSE", "UVEU", "NVEU")


def consignee_key(consignee_id: str | None, name: str, country: str) -> str:
    """The ultimate consignee's identity: its id, else its normalised name and country.

    >>> consignee_key(None, "  Acme  Compute, Ltd.", "in")
    'acme compute ltd@IN'
    """
    if consignee_id:
        return consignee_id.strip()
    text = unicodedata.normalize("NFKC", name).casefold()
    text = re.sub(r"[^\w]+", " ", text).strip()
    return f"{text}@{country.upper()}"


@dataclass(frozen=True, slots=True)
class Order:
    """One order line. Defaults follow the contract: absent = not given."""

    order_id: str
    order_date: dt.date
    exporter: str
    quantity: int
    destination: str
    consignee_name: str
    item: str | None = None
    item_kind: str | None = None
    chips_per_unit: int | None = None
    tpp_per_unit: Decimal | None = None
    die_area_mm2: Decimal | None = None
    datacenter: bool | None = None
    memory_bandwidth_gbps: Decimal | None = None
    training_ops: Decimal | None = None
    open_weights: bool = False
    unit_price_usd: Decimal | None = None
    consignee_id: str | None = None
    consignee_address: str | None = None
    consignee_country: str | None = None
    consignee_hq_country: str | None = None
    consignee_government: bool = False
    consignee_phone: str | None = None
    consignee_email: str | None = None
    consignee_website: str | None = None
    consignee_registration: str | None = None
    consignee_officers: str | None = None
    consignee_founded: dt.date | None = None
    end_use: str = "unknown"
    intermediate_name: str | None = None
    intermediate_country: str | None = None
    payer_name: str | None = None
    payer_country: str | None = None
    authorization: str | None = None
    derived_from_published: bool = False
    additional_training_ops: Decimal | None = None
    less_capable_than_open: bool = False
    secure_storage: bool = False
    position: int = 0
    line: int | None = None

    @property
    def location(self) -> str:
        """Where the consignee is located (default: the destination)."""
        return self.consignee_country or self.destination

    @property
    def hq(self) -> str:
        """Where the consignee or its ultimate parent is headquartered (default: its location)."""
        return self.consignee_hq_country or self.location

    @property
    def consignee(self) -> str:
        return consignee_key(self.consignee_id, self.consignee_name, self.location)

    @property
    def authorization_kind(self) -> str | None:
        if not self.authorization:
            return None
        return self.authorization.split(":", 1)[0].upper()

    @property
    def authorization_ref(self) -> str | None:
        if not self.authorization or ":" not in self.authorization:
            return None
        return self.authorization.split(":", 1)[1].strip()
