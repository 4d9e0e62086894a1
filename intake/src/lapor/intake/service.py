"""What ``lapor run`` and ``lapor serve`` know of this service (``lapor.services`` entry point)."""

from lapor.services.discovery import Service

SERVICE = Service(
    name="intake",
    port=8080,
    app="lapor.intake.app:create_app",
    # It follows no log in order: several processes (or replicas) may share the requests.
    stateless=True,
)
