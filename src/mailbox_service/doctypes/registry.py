"""The registry of document types: the built-ins plus every installed plugin.

Plugins register through the `mailbox_service.document_types` entry-point group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points

from mailbox_service.doctypes.base import DocumentType
from mailbox_service.doctypes.contract_letter import ContractLetter
from mailbox_service.doctypes.invoice import Invoice
from mailbox_service.doctypes.shipment_document import ShipmentDocument
from mailbox_service.errors import ConfigurationError, InvalidMetadata

ENTRY_POINT_GROUP = "mailbox_service.document_types"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class DocumentTypeRegistry:
    """Maps a type name to its plugin. Built once at start-up; read-only afterwards."""

    def __init__(self, types: Iterable[DocumentType] = ()) -> None:
        self._types: dict[str, DocumentType] = {}
        for doctype in types:
            self.register(doctype)

    def register(self, doctype: DocumentType) -> None:
        name = getattr(doctype, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(
                f"document type {type(doctype).__name__}: name {name!r} must match {_NAME.pattern}"
            )
        if doctype.initial_status is not None and doctype.initial_status not in doctype.statuses:
            raise ConfigurationError(
                f"document type {name!r}: initial_status {doctype.initial_status!r} is not one "
                f"of its statuses ({', '.join(sorted(doctype.statuses)) or 'none'})"
            )
        if unknown := doctype.settled_statuses - doctype.statuses:
            raise ConfigurationError(
                f"document type {name!r}: settled_statuses {', '.join(sorted(unknown))} are not "
                f"among its statuses ({', '.join(sorted(doctype.statuses)) or 'none'})"
            )
        if name in self._types:
            existing = type(self._types[name])
            raise ConfigurationError(
                f"document type {name!r} is registered twice "
                f"({existing.__module__}.{existing.__qualname__} and "
                f"{type(doctype).__module__}.{type(doctype).__qualname__})"
            )
        self._types[name] = doctype

    def get(self, name: str) -> DocumentType:
        """The plugin for `name`, or InvalidMetadata naming the `type` field."""
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(sorted(self._types))
            raise InvalidMetadata(
                f"unknown document type {name!r}; known types: {known}", field="type"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[DocumentType]:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    def names(self) -> list[str]:
        return sorted(self._types)


def _from_entry_points() -> Iterator[DocumentType]:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
        except Exception as exc:
            raise ConfigurationError(
                f"document type entry point {ep.name!r} ({ep.value}) failed to load: {exc}"
            ) from exc
        doctype = loaded() if isinstance(loaded, type) else loaded
        if not isinstance(doctype, DocumentType):
            raise ConfigurationError(
                f"document type entry point {ep.name!r} ({ep.value}) is not a DocumentType"
            )
        yield doctype


def builtin_types() -> list[DocumentType]:
    return [Invoice(), ContractLetter(), ShipmentDocument()]


def load_registry(*, include_entry_points: bool = True) -> DocumentTypeRegistry:
    """Built-in types plus installed plugins; a duplicate name fails here, at start-up."""
    registry = DocumentTypeRegistry(builtin_types())
    if include_entry_points:
        for doctype in _from_entry_points():
            registry.register(doctype)
    return registry
