import hashlib
import re
import secrets

from lapor.shared.subjects import Subjects
from lapor.shared.tracking import PATTERN, _format, new_tracking_id, normalise, tracking_id_for


def test_new_ids_are_readable_and_distinct():
    ids = {new_tracking_id() for _ in range(2000)}
    assert len(ids) == 2000
    for tracking_id in ids:
        assert re.match(PATTERN, tracking_id)
        assert not set(tracking_id) & set("ILOU")


def test_ids_from_a_key_are_stable_per_attempt():
    secret = "deployment-secret"
    assert tracking_id_for(secret, "key-1") == tracking_id_for(secret, "key-1")
    assert tracking_id_for(secret, "key-1") != tracking_id_for(secret, "key-2")
    assert tracking_id_for(secret, "key-1", 0) != tracking_id_for(secret, "key-1", 1)
    assert re.match(PATTERN, tracking_id_for(secret, "key-1", 3))


def test_knowing_the_key_is_not_enough_to_know_the_id():
    readme_key = "3f1c2a9e-demo"  # printed in the README for anyone to copy
    unkeyed = hashlib.sha256(f"0:{readme_key}".encode()).digest()  # how IDs were derived
    unkeyed_id = _format(int.from_bytes(unkeyed[:8]) >> 14)
    ids = {tracking_id_for(secrets.token_hex(16), readme_key) for _ in range(20)}
    assert len(ids) == 20
    assert unkeyed_id not in ids


def test_what_a_person_types_is_normalised():
    assert normalise(" 7k3mq 9x2ab ") == "7K3MQ-9X2AB"
    assert normalise("7K3MQ-9X2AO") == "7K3MQ-9X2A0"
    assert normalise("too short") == "too short"


def test_subjects_of_one_root_never_meet_another():
    a, b = Subjects("lapor"), Subjects("t123")
    assert a.events_stream == "LAPOR_EVENTS" and b.events_stream == "T123_EVENTS"
    assert a.complaint("7K3MQ-9X2AB", "complaint.routed") == (
        "lapor.complaint.7K3MQ-9X2AB.complaint.routed"
    )
    assert a.complaint_all("7K3MQ-9X2AB") == "lapor.complaint.7K3MQ-9X2AB.>"
    assert a.agency_all("dpupr") == "lapor.agency.dpupr.>"
    assert not b.all_events.startswith("lapor.")
