"""What ``lapor run`` and ``lapor serve`` know of this service (``lapor.services`` entry point)."""

from lapor.services.discovery import Service

SERVICE = Service(
    name="tracker",
    port=8081,
    app="lapor.tracker.app:create_app",
)
