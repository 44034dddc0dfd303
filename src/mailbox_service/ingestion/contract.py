"""The published shape of `POST /v1/documents`: a multipart body whose `metadata` part depends
on the installed document types.

`DocumentMetadata` is a `oneOf` discriminated by `type`: one `<Type>Metadata` per registered
type, whose `attributes` is that type's own schema (`DocumentType.json_schema()`), so a
generated client gets one model per type and a sender sees every field it may send.
"""

from __future__ import annotations

from typing import Any

from mailbox_service.doctypes import DocumentType, DocumentTypeRegistry
from mailbox_service.ingestion.schemas import DocumentMetadata
from mailbox_service.server.openapi import COMPONENTS, stored_content_types, struct_components

METADATA = "DocumentMetadata"


def ingest_request_body(registry: DocumentTypeRegistry) -> tuple[dict[str, Any], dict[str, Any]]:
    """The multipart request body and the component schemas it refers to."""
    _, components = struct_components(DocumentMetadata)
    common = components.pop(METADATA)
    variants: dict[str, str] = {}
    for doctype in registry:
        attributes_ref = _add_attributes(doctype, components)
        name = f"{_pascal(doctype.name)}Metadata"
        properties = {
            **common["properties"],
            "type": {"type": "string", "const": doctype.name, "description": doctype.label},
            "attributes": {"$ref": attributes_ref},
        }
        components[name] = {
            **common,
            "title": name,
            "description": f"The `metadata` part of a document of type `{doctype.name}`.",
            "properties": properties,
        }
        variants[doctype.name] = COMPONENTS + name
    components[METADATA] = {
        "title": METADATA,
        "description": "What the sender says about the document; `type` selects the schema "
        "of `attributes` (`GET /v1/document-types` lists the types).",
        "oneOf": [{"$ref": ref} for ref in variants.values()],
        "discriminator": {"propertyName": "type", "mapping": variants},
    }
    body = {
        "required": True,
        "description": "Two parts: `metadata` (JSON, at most 256 KiB by default) and `file` "
        "(at most 50 MiB by default; its content type is sniffed from its bytes and must be "
        "one the document type accepts).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "title": "DocumentUpload",
                    "required": ["metadata", "file"],
                    "properties": {
                        "metadata": {"$ref": COMPONENTS + METADATA},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The document itself.",
                        },
                    },
                    "additionalProperties": False,
                },
                "encoding": {
                    "metadata": {"contentType": "application/json"},
                    "file": {"contentType": ", ".join(stored_content_types(registry))},
                },
            }
        },
    }
    return body, components


def _add_attributes(doctype: DocumentType, components: dict[str, Any]) -> str:
    """Put a type's attributes schema (and the schemas it uses) into `components`."""
    schema = doctype.json_schema()
    definitions = schema.pop("$defs", {})
    prefix = _pascal(doctype.name)
    # A plugin's helper schema may share a name with another plugin's: keep both apart.
    renamed = {
        name: name if components.get(name, definition) == definition else prefix + name
        for name, definition in definitions.items()
    }

    def relink(value: Any) -> Any:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return {**value, "$ref": COMPONENTS + renamed[ref.removeprefix("#/$defs/")]}
            return {key: relink(item) for key, item in value.items()}
        if isinstance(value, list):
            return [relink(item) for item in value]
        return value

    for name, definition in definitions.items():
        components[renamed[name]] = relink(definition)
    if set(schema) == {"$ref"}:
        return str(relink(schema)["$ref"])
    name = f"{prefix}Attributes"
    components[name] = relink(schema)
    return COMPONENTS + name


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
