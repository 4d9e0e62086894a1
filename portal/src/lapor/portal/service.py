"""What ``lapor run`` and ``lapor serve`` know of this service (``lapor.services`` entry point)."""

from lapor.services.discovery import Service

SERVICE = Service(
    name="portal",
    port=8085,
    app="lapor.portal.app:create_app",
    # Holds no state: every page is made from intake's, the tracker's and analytics' APIs.
    stateless=True,
)
