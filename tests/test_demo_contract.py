"""The demo data is a contract between the demo client, intake and the router."""

import json
from importlib.resources import files

from lapor.intake.domain import Submission
from lapor.router.domain import RoutingTable


def demo_items() -> list[dict]:
    return json.loads(files("lapor.devtools").joinpath("demo_complaints.json").read_text())


def test_every_demo_complaint_is_a_valid_submission():
    for item in demo_items():
        Submission.model_validate(item)


def test_every_demo_category_is_known_to_the_routing_table():
    table = RoutingTable.load()
    known = {c for opd in table.opds.values() for c in opd.categories}
    unknown = {i["category"] for i in demo_items() if i["category"]} - known
    assert unknown == set()
