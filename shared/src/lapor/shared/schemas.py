"""JSON Schemas of the envelope and every event, generated from the models.

The generated files are committed under ``shared/schemas`` so that a contract change
shows in review; a test fails when models and files differ. Regenerate with
``make schemas`` (``python -m lapor.shared.schemas shared/schemas``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Importing the module registers every event type.
from lapor.shared import events as _events  # noqa: F401
from lapor.shared.envelope import Envelope, registered_events


def generate() -> dict[str, str]:
    """File name -> schema text, for the envelope and each registered event version."""
    schemas = {"envelope.json": Envelope.model_json_schema()}
    for event_type, cls in sorted(registered_events().items()):
        schema = cls.model_json_schema()
        schema["x-event-type"] = event_type
        schema["x-event-version"] = cls.VERSION
        schemas[f"{event_type}.v{cls.VERSION}.json"] = schema
    return {name: json.dumps(s, indent=2, sort_keys=True) + "\n" for name, s in schemas.items()}


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.json"):
        stale.unlink()
    for name, text in generate().items():
        (folder / name).write_text(text)


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "shared/schemas"))
