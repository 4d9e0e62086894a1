"""What ``lapor run`` and ``lapor serve`` know of this service (``lapor.services`` entry point)."""

from lapor.services.discovery import Service

SERVICE = Service(
    name="open311",
    port=8084,
    app="lapor.open311.app:create_app",
    # Keeps no state of its own but the key file, which it re-reads when it changes.
    stateless=True,
)
