"""The staff's accounts and pages, without servers: the rules of accounts, passwords and
lock-out; where a sign-in may send; how a row is highlighted; the archive guidance the
coordinator reads is the citizen's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lapor.portal import domain
from lapor.portal.staff import accounts as acc
from lapor.portal.staff.pages import _next, due_class
from lapor.shared.words import ARCHIVE_GUIDANCE

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UNITS = {"dpupr", "dlh"}
PASSWORD = "kata-sandi-yang-panjang"


def officer(**changes) -> acc.Account:
    made = acc.new_account("budi", "officer", PASSWORD, opd="dpupr", units=UNITS, now=NOW)
    return acc.replace(made, **changes) if changes else made


def test_an_account_hashes_its_password_with_argon2id_and_checks_it():
    account = officer()
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.to_json().decode()
    assert acc.password_matches(account, PASSWORD)
    assert not acc.password_matches(account, PASSWORD + "x")
    assert not acc.password_matches(None, PASSWORD)  # no account: never a match
    assert acc.Account.from_json(account.to_json()) == account


@pytest.mark.parametrize(
    ("username", "role", "opd", "password", "field"),
    [
        ("Budi", "officer", "dpupr", PASSWORD, "username"),
        ("b", "officer", "dpupr", PASSWORD, "username"),
        ("budi", "admin", None, PASSWORD, "role"),
        ("budi", "officer", None, PASSWORD, "opd"),
        ("budi", "officer", "dinas_lain", PASSWORD, "opd"),
        ("rina", "coordinator", "dpupr", PASSWORD, "opd"),
        ("budi", "officer", "dpupr", "pendek", "password"),
        ("budi", "officer", "dpupr", "x" * 257, "password"),
    ],
)
def test_an_account_that_cannot_be_made_names_the_field(username, role, opd, password, field):
    with pytest.raises(acc.InvalidAccount) as refused:
        acc.new_account(username, role, password, opd=opd, units=UNITS)
    assert refused.value.field == field


def test_the_fifth_wrong_password_in_a_row_locks_the_account_for_a_while():
    account = officer()
    for n in range(acc.MAX_FAILURES - 1):
        account = acc.after_failure(account, NOW)
        assert not account.locked(NOW), n
    account = acc.after_failure(account, NOW)
    assert account.locked(NOW)
    assert account.locked(NOW + acc.LOCKOUT - timedelta(seconds=1))
    assert not account.locked(NOW + acc.LOCKOUT)


def test_a_right_password_or_an_unlock_or_a_new_password_starts_the_count_again():
    failing = acc.after_failure(acc.after_failure(officer(), NOW), NOW)
    assert acc.after_success(failing, PASSWORD).failures == 0
    locked = officer(failures=acc.MAX_FAILURES, locked_until=NOW + acc.LOCKOUT)
    assert not acc.unlocked(locked).locked(NOW)
    renewed = acc.with_password(locked, "another-long-password", NOW)
    assert not renewed.locked(NOW) and acc.password_matches(renewed, "another-long-password")


def test_actions_are_taken_as_the_accounts_role_and_name():
    assert officer().actor().model_dump() == {"role": "agency", "opd": "dpupr", "name": "budi"}
    rina = acc.new_account("rina", "coordinator", PASSWORD, units=UNITS)
    assert rina.actor().role == "admin" and rina.actor().opd is None


@pytest.mark.parametrize(
    ("wanted", "role", "goes"),
    [
        ("/unit/laporan/7K3MQ-9X2AB", "officer", "/unit/laporan/7K3MQ-9X2AB"),
        ("/koordinator", "officer", "/unit"),  # not the role's area
        ("https://elsewhere.example/unit", "officer", "/unit"),
        ("/unit//elsewhere.example", "officer", "/unit"),
        ("/unit\\\\elsewhere.example", "officer", "/unit"),
        ("", "coordinator", "/koordinator"),
        ("/koordinator/tenggat", "coordinator", "/koordinator/tenggat"),
    ],
)
def test_a_sign_in_sends_only_to_a_page_of_the_accounts_own_area(wanted, role, goes):
    assert _next(wanted, role) == goes


def test_rows_are_marked_overdue_or_due_soon():
    soon = (NOW + timedelta(days=1)).isoformat()
    later = (NOW + timedelta(days=10)).isoformat()
    assert due_class({"overdue": True, "due_at": soon}, NOW) == "overdue"
    assert due_class({"overdue": False, "due_at": soon}, NOW) == "soon"
    assert due_class({"overdue": False, "due_at": later}, NOW) == ""
    assert due_class({"overdue": False, "due_at": None}, NOW) == ""


def test_the_archive_guidance_the_coordinator_reads_is_what_the_citizen_is_told():
    assert {r.value: text for r, text in ARCHIVE_GUIDANCE.items()} == domain.ARCHIVE_GUIDANCE
    assert set(domain.ARCHIVE_REASONS) == set(domain.ARCHIVE_GUIDANCE)


def test_the_notes_the_system_writes_are_translated_and_peoples_words_are_not():
    from lapor.portal import i18n
    from lapor.shared import events as ev
    from lapor.shared.words import note

    indonesian = i18n.translations("id").gettext
    actor = ev.Actor(role="admin")
    archived = note(ev.ComplaintArchived(reason=ev.ArchiveReason.CRIMINAL_REPORT, by=actor))
    assert domain.note_words("complaint.archived", archived, indonesian) == (
        "Laporkan tindak pidana ke kepolisian (SPKT Polri, telepon 110)."
    )
    with_note = note(
        ev.ComplaintArchived(reason=ev.ArchiveReason.DUPLICATE, note="Lihat 7K3MQ-9X2AB", by=actor)
    )
    assert domain.note_words("complaint.archived", with_note, indonesian) == (
        "Laporan yang sama sudah sedang ditangani. Lihat 7K3MQ-9X2AB"
    )
    disposed = note(
        ev.ComplaintDisposed(opd="dpupr", opd_name="Dinas PUPR", by=actor, automatic=True)
    )
    assert domain.note_words("complaint.disposed", disposed, indonesian) == (
        "Didisposisikan ke Dinas PUPR (otomatis)"
    )
    rated = note(ev.ComplaintRated(stars=4, comment="Cepat, terima kasih"))
    assert domain.note_words("complaint.rated", rated, indonesian) == (
        "4 dari 5 bintang: Cepat, terima kasih"
    )
    confirmed = note(
        ev.ComplaintClosed(reason="confirmed_by_reporter", by=ev.Actor(role="reporter"))
    )
    assert domain.note_words("complaint.closed", confirmed, indonesian) == (
        "Selesai: pelapor mengonfirmasi"
    )
    # What an officer wrote is shown as written, even if it looks like a system note.
    followed = "Disposed to the field team tomorrow."
    assert domain.note_words("complaint.followed_up", followed, indonesian) == followed
    # English: the log's words as they are.
    english = i18n.translations("en").gettext
    assert domain.note_words("complaint.disposed", disposed, english) == disposed
