"""What ``lapor run`` and ``lapor serve`` know of this service (``lapor.services`` entry point)."""

from lapor.services.discovery import Service

SERVICE = Service(
    name="analytics",
    port=8082,
    app="lapor.analytics.app:create_app",
)
