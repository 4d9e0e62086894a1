"""Settings from environment variables (pydantic-settings).

``NATS_URL`` and ``DATABASE_URL`` name the infrastructure; everything else has a
``LAPOR_`` prefix. Unset URLs mean "start local infrastructure", on a development machine
(``lapor.devtools.infra``); a deployment sets both.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lapor.shared.calendar import DEFAULT_TIMEZONE, WorkingCalendar, collective_leave_from_text
from lapor.shared.deadlines import DeadlinePolicy
from lapor.shared.registry import DEFAULT_DEPLOYMENT, deployment_name
from lapor.shared.subjects import Subjects


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAPOR_", extra="ignore")

    nats_url: str | None = Field(
        default=None, validation_alias=AliasChoices("NATS_URL", "LAPOR_NATS_URL")
    )
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "LAPOR_DATABASE_URL")
    )
    subject_root: str = Field(default="lapor", pattern=r"^[a-z][a-z0-9_]*$")
    data_dir: Path = Path(".lapor")
    infra: str = Field(
        default="auto",
        pattern=r"^(auto|embedded|docker|none)$",
        description="Local infrastructure; none: never start any (a command without the "
        "URLs it needs stops, naming them)",
    )
    rebuild_database_url: str | None = Field(
        default=None,
        description="Where `lapor replay` rebuilds (LAPOR_REBUILD_DATABASE_URL): a database "
        "the operator provisioned for it, emptied on each run; unset, a database beside the "
        "live one is created and dropped (needs CREATEDB: development)",
    )
    deployment: str = Field(
        default=DEFAULT_DEPLOYMENT,
        description="The packaged deployment (LAPOR_DEPLOYMENT): its OPD registry and routing "
        "table, e.g. kota_pontianak or kabupaten_kubu_raya. Code that reads the registry "
        "without settings reads the same variable (lapor.shared.registry.load_registry)",
    )

    role: str = Field(
        default="all",
        description="Which of its parts a service runs (LAPOR_ROLE; lapor serve --role): "
        "all, or one of the roles the service declares, e.g. the tracker's api or projector",
    )

    # The log stream. Production: 3 replicas; sync_interval: always is set in the server config.
    stream_replicas: int = Field(default=1, ge=1, le=5)
    duplicate_window_seconds: float = Field(default=2 * 3600, gt=0)

    staff_session_seconds: float = Field(
        default=8 * 3600,
        gt=0,
        description="How long a staff sign-in to the portal lasts (a working day); sessions "
        "expire in NATS after it, whatever the portal does",
    )
    auth_secret: SecretStr | None = Field(
        default=None, description="Signs officer tokens and derives reporter secrets"
    )
    auto_dispose_confidence: float = Field(
        default=0.9,
        ge=0,
        le=1.01,
        description="Proposals this confident are disposed at once (a calibrated probability)",
    )
    routing_model: str = Field(
        default="shipped",
        pattern=r"^(shipped|none)$",
        description="The model the router starts with before one is published: the one "
        "trained on the project's corpus, or none (rules alone)",
    )

    publish_timeout_seconds: float = Field(default=3.0, gt=0)
    # The largest complaint (4,000 characters of body, each at most 12 bytes as a JSON
    # escaped surrogate pair, plus the rest) stays under 64 KiB.
    max_request_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Larger request bodies are refused with 413"
    )
    # Attachments (intake's multipart POST /complaints, the portal's report form): the
    # limits are checked on the bytes themselves, and a multipart body may be as large as
    # the complaint plus that many files (``max_multipart_bytes``).
    max_attachments: int = Field(
        default=5, ge=0, le=20, description="Files a complaint may carry (0: none accepted)"
    )
    max_attachment_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="Largest file, as sent and as stored"
    )
    max_image_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="Largest image (width × height) decoded to clean it: a small file can "
        "hold a huge bitmap",
    )

    # Consumers.
    max_deliver: int = Field(default=6, ge=1, description="Deliveries before dead-lettering")
    retry_base_delay_seconds: float = Field(default=1.0, gt=0)
    projection_retry_max_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait before a stopped read model tries its event again (a fix "
        "or an operator's decision is picked up within it)",
    )
    projection_batch_size: int = Field(default=256, ge=1)
    router_concurrency: int = Field(
        default=16, ge=1, description="Complaints routed at once (each waits on log round trips)"
    )

    log_format: str = Field(default="auto", pattern=r"^(auto|json|console)$")
    log_level: str = "INFO"

    @field_validator("deployment")
    @classmethod
    def _packaged_deployment(cls, value: str) -> str:
        if not value:
            raise ValueError("a deployment must be named, e.g. kota_pontianak")
        return deployment_name(value)  # an unknown name fails at start-up, naming the known

    @property
    def max_multipart_bytes(self) -> int:
        """The body limit of a multipart request: the complaint's own limit, plus every
        file it may carry, plus room for each part's headers."""
        per_part = 16 * 1024
        return self.max_request_bytes + self.max_attachments * (
            self.max_attachment_bytes + per_part
        )

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.subject_root)

    @property
    def nats_servers(self) -> list[str]:
        """``NATS_URL`` as the servers a client tries, in order: one URL, or several
        separated by commas (the nodes of a cluster, so that a client also starts while one
        of them is down). Pass this, not ``nats_url``, to ``nats.connect``."""
        if self.nats_url is None:
            raise ValueError("NATS_URL is not set")
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]


_NATIONAL = DeadlinePolicy()


class DeadlineSettings(BaseSettings):
    """The deployment's deadlines and working days (``LAPOR_DEADLINE_*``), which the
    tracker's clocks and the analytics' figures both count by; unset, the national
    defaults (``lapor.shared.deadlines.DeadlinePolicy``) in the Asia/Pontianak zone."""

    model_config = SettingsConfigDict(env_prefix="LAPOR_DEADLINE_", extra="ignore")

    disposition_days: int = Field(default=_NATIONAL.disposition_days, ge=0)
    first_follow_up_days: int = Field(default=_NATIONAL.first_follow_up_days, ge=0)
    reporter_reply_days: int = Field(default=_NATIONAL.reporter_reply_days, ge=0)
    warn_before_days: int = Field(default=_NATIONAL.warn_before_working_days, ge=0)
    timezone: str = DEFAULT_TIMEZONE
    collective_leave_file: Path | None = Field(
        default=None, description="Cuti bersama: one YYYY-MM-DD a line, # comments"
    )
    check_seconds: float = Field(default=5.0, gt=0, description="How often timers are checked")

    def policy(self) -> DeadlinePolicy:
        return DeadlinePolicy(
            disposition_days=self.disposition_days,
            first_follow_up_days=self.first_follow_up_days,
            reporter_reply_days=self.reporter_reply_days,
            warn_before_working_days=self.warn_before_days,
        )

    def calendar(self) -> WorkingCalendar:
        leave = (
            collective_leave_from_text(self.collective_leave_file.read_text())
            if self.collective_leave_file
            else ()
        )
        return WorkingCalendar(collective_leave=leave, timezone=self.timezone)
