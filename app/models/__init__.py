"""The models, one module per aggregate. Importing this package registers every table."""

from .clients import Client
from .credentials import (
    STATES,
    TICKET,
    TYPE_NAMES,
    VASCO,
    Credential,
    TicketCredential,
    VascoCredential,
    VascoTokenBlock,
)
from .policies import POLICY_TYPES, TICKET_POLICY, VASCO_POLICY, Policy
from .principals import Principal
from .users import User

__all__ = [
    "POLICY_TYPES",
    "STATES",
    "TICKET",
    "TICKET_POLICY",
    "TYPE_NAMES",
    "VASCO",
    "VASCO_POLICY",
    "Client",
    "Credential",
    "Policy",
    "Principal",
    "TicketCredential",
    "User",
    "VascoCredential",
    "VascoTokenBlock",
]
