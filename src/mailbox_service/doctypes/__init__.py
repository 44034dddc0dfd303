"""Document-type plugins: one module per type, and the registry that finds them."""

from mailbox_service.doctypes.base import PDF, DocumentType, DocumentView
from mailbox_service.doctypes.registry import (
    ENTRY_POINT_GROUP,
    DocumentTypeRegistry,
    load_registry,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PDF",
    "DocumentType",
    "DocumentTypeRegistry",
    "DocumentView",
    "load_registry",
]
