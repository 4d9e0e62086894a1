"""What ``lapor run`` and ``lapor serve`` know of this service (``lapor.services`` entry point)."""

from lapor.services.discovery import Service

SERVICE = Service(
    name="router",
    port=8083,
    app="lapor.router.app:create_app",
)
