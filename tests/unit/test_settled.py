"""When the demo, the bench and `make chaos` call the pipeline settled."""

from deploy.feed import is_settled

DECIDED = {"cases_opened": 3, "peers_assigned": 2, "escalated": 1, "opted_out": 0}


def test_an_offer_reported_unconfirmed_does_not_keep_the_pipeline_unsettled() -> None:
    assert not is_settled(DECIDED | {"peers_notified": 1, "offers_undelivered": 0}, 3)
    assert is_settled(DECIDED | {"peers_notified": 1, "offers_undelivered": 1}, 3)
    assert is_settled(DECIDED | {"peers_notified": 2, "offers_undelivered": 0}, 3)


def test_a_case_not_yet_decided_keeps_it_unsettled() -> None:
    row = DECIDED | {"escalated": 0, "peers_notified": 2, "offers_undelivered": 0}
    assert not is_settled(row, 3)
