"""Subject and stream names, in one place.

All complaint events live in one stream under ``<root>.complaint.<tracking_id>.<event>``:
one complaint's events share a prefix, which makes per-complaint optimistic concurrency
(expected last sequence on ``<root>.complaint.<id>.>``) and per-type consumers
(``<root>.complaint.*.received``) plain subject filters.

Agencies read their own derived stream, ``<root>.agency.<opd>.<event>``, which never
carries reporter identity. Reporter contact lives in a third stream that no agency reads
and that, unlike the log, allows erasure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subjects:
    """Names under one root; tests use a unique root so runs never meet."""

    root: str = "lapor"

    # --- streams -----------------------------------------------------------
    @property
    def events_stream(self) -> str:
        return f"{self._stream_prefix}_EVENTS"

    @property
    def agency_stream(self) -> str:
        return f"{self._stream_prefix}_AGENCY"

    @property
    def reporters_stream(self) -> str:
        return f"{self._stream_prefix}_REPORTERS"

    @property
    def dead_letter_stream(self) -> str:
        return f"{self._stream_prefix}_DEADLETTER"

    @property
    def routing_rules_bucket(self) -> str:
        """Key-value bucket holding the routing table an operator publishes."""
        return f"{self._stream_prefix}_ROUTING_RULES"

    @property
    def routing_models_bucket(self) -> str:
        """Object store holding every routing model an operator published."""
        return f"{self._stream_prefix}_ROUTING_MODELS"

    @property
    def attachments_bucket(self) -> str:
        """Object store holding the citizens' attachments (photos, documents), each under
        the sha256 of its stored bytes; ``complaint.received`` carries references only."""
        return f"{self._stream_prefix}_ATTACHMENTS"

    @property
    def _stream_prefix(self) -> str:
        return self.root.upper().replace(".", "_").replace("-", "_")

    # --- complaint log ------------------------------------------------------
    @property
    def all_events(self) -> str:
        return f"{self.root}.complaint.>"

    def complaint(self, complaint_id: str, event_type: str) -> str:
        """Where one event of one complaint is appended."""
        return f"{self.root}.complaint.{complaint_id}.{event_type}"

    def complaint_all(self, complaint_id: str) -> str:
        """Every event of one complaint: the unit of optimistic concurrency."""
        return f"{self.root}.complaint.{complaint_id}.>"

    def of_type(self, event_type: str) -> str:
        """Every complaint's events of one type."""
        return f"{self.root}.complaint.*.{event_type}"

    # --- agency topics ------------------------------------------------------
    @property
    def all_agencies(self) -> str:
        return f"{self.root}.agency.>"

    def agency(self, opd: str, event_type: str) -> str:
        return f"{self.root}.agency.{opd}.{event_type}"

    def agency_all(self, opd: str) -> str:
        """What an agency subscribes to: everything for it and nothing else."""
        return f"{self.root}.agency.{opd}.>"

    # --- reporter identity and dead letters ----------------------------------
    @property
    def all_reporters(self) -> str:
        return f"{self.root}.reporter.>"

    def reporter(self, complaint_id: str) -> str:
        return f"{self.root}.reporter.{complaint_id}"

    @property
    def all_dead_letters(self) -> str:
        return f"{self.root}.deadletter.>"

    def dead_letter(self, consumer: str) -> str:
        return f"{self.root}.deadletter.{consumer}"

    # --- staff: the officers' and coordinators' accounts, sessions and sign-ins -----
    @property
    def staff_accounts_bucket(self) -> str:
        """Key-value bucket of staff accounts (``lapor accounts``), by user name."""
        return f"{self._stream_prefix}_STAFF_ACCOUNTS"

    @property
    def staff_sessions_bucket(self) -> str:
        """Key-value bucket of the portal's signed-in sessions, by the token's digest;
        entries expire on their own (the bucket's age limit)."""
        return f"{self._stream_prefix}_STAFF_SESSIONS"

    @property
    def staff_throttle_bucket(self) -> str:
        """Key-value bucket counting failed sign-ins per client address (by its digest);
        an entry is gone once its address has been quiet for the bucket's age limit."""
        return f"{self._stream_prefix}_STAFF_THROTTLE"

    @property
    def signins_stream(self) -> str:
        """Every staff sign-in attempt, kept for audit (``lapor accounts sign-ins``)."""
        return f"{self._stream_prefix}_STAFF_SIGNINS"

    @property
    def all_signins(self) -> str:
        return f"{self.root}.signin.>"

    def signin(self, outcome: str) -> str:
        return f"{self.root}.signin.{outcome}"
