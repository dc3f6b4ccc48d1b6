"""Dead letters of expected business ends are labelled apart from faults (alerts leave them out)."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker

from jobcore.errors import BusinessOutcome, InvalidInput, PermanentError
from middleware.dead_letters import reason_for
from shop.catalog.inventory import OutOfStock
from shop.integrations.http_clients import PaymentDeclined


@pytest.fixture()
def proxy() -> tuple[StubBroker, MessageProxy]:
    broker = StubBroker()

    @dramatiq.actor(broker=broker, actor_name="orders.reserve", throws=(PermanentError,))
    def reserve(order_id: int) -> None: ...

    return broker, MessageProxy(reserve.message(1))


@pytest.mark.parametrize(
    ("exception", "reason"),
    [
        (
            PaymentDeclined("card declined", status_code=402, code="card_declined"),
            "business_outcome",
        ),
        (OutOfStock("sold out"), "business_outcome"),
        (BusinessOutcome("expected"), "business_outcome"),
        (InvalidInput("order_id must be an int"), "permanent_error"),
        (RuntimeError("bug"), "failed"),
    ],
)
def test_declines_and_stock_outs_are_business_outcomes_other_errors_are_not(
    proxy, exception, reason
):
    broker, message = proxy
    assert reason_for(broker, message, exception) == reason
