"""A POS written only against a client generated from the live schema (issue 14).

gunicorn serves the app on the test database; the test fetches /api/schema/ from it, has
openapi-python-client (offline, with tests/api/openapi-python-client.yaml) generate a
package from it, imports that package and runs a storefront's whole day through it: earn,
look up, quote, hold, commit, cancel, refund, reward orders and their pickup, a customer's
event, a customer app's check-in and profile, and every error code of the contract. The
generated client parses each answer into the models the schema declares and raises on any
status the schema does not list, so an answer, a status or an error code the schema does
not describe fails here.

Steps are small functions over one `Pos`, so that a new endpoint is a new step.
"""

import importlib
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from accounts.services import tokens_for
from loyalty.models import EventRule
from loyalty.services.members import member_link_user
from loyalty.services.stores import store_create
from tests.catalog.factories import PASSWORD, RewardItemFactory
from tests.processes import start_gunicorn, stop_children

CONFIG = Path(__file__).with_name("openapi-python-client.yaml")
PACKAGE = "loyalty_client"
GENERATE_SECONDS = 120
PHONE = "13800138000"
E164 = "+8613800138000"
UNKNOWN_PHONE = "13900139000"
APP_ONLY_PHONE = "+8613700137000"
NOT_A_MOBILE_NUMBER = "12345678"
# docs/api.md, "Errors": the codes an error may carry.
CONTRACT_ERROR_CODES = {
    "validation_error",
    "invalid_phone",
    "not_authenticated",
    "permission_denied",
    "not_found",
    "idempotency_conflict",
    "invalid_state",
    "insufficient_points",
    "redeem_cap_exceeded",
    "below_minimum",
    "refund_exceeds_purchase",
    "out_of_stock",
    "limit_exceeded",
    "item_unavailable",
    "invalid_code",
    "unknown_event_type",
    "birthday_locked",
    "throttled",
}


class Pos:
    """The generated package as a POS developer uses it, noting every error code it parsed."""

    def __init__(self, *, base_url: str, store_key: str):
        self.base_url = base_url
        self.package = importlib.import_module(PACKAGE)
        self.models = importlib.import_module(f"{PACKAGE}.models")
        # The scheme's description says the prefix; OpenAPI has no field a generator reads it from.
        self.store = self.client(token=store_key, prefix="Api-Key")
        self.error_codes = set()

    def client(self, **credentials):
        if not credentials:
            return self.package.Client(base_url=self.base_url, raise_on_unexpected_status=True)
        return self.package.AuthenticatedClient(
            base_url=self.base_url, raise_on_unexpected_status=True, **credentials
        )

    def call(self, operation: str, **arguments):
        """(status, parsed body) of one operation, through its generated module; `operation`
        is "tag.operation_id", as the package lays its modules out."""
        tag, operation_id = operation.split(".")
        module = importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")
        arguments.setdefault("client", self.store)
        response = module.sync_detailed(**arguments)
        return response.status_code, response.parsed

    def ok(self, operation: str, status: int = 200, **arguments):
        answer_status, body = self.call(operation, **arguments)
        assert answer_status == status, body
        return body

    def refused(self, operation: str, status: int, code: str, **arguments):
        answer_status, body = self.call(operation, **arguments)
        assert isinstance(body, self.models.ErrorOutput), body
        assert (answer_status, body.error.code) == (status, self.models.ErrorCode(code))
        self.error_codes.add(code)
        return body.error


@pytest.fixture
def web(transactional_db, tmp_path):
    """gunicorn on the test database, stopped however the test ends."""
    # One worker: the POS sends one request at a time.
    stack = start_gunicorn(tmp_path, workers=1)
    try:
        yield stack
    finally:
        stop_children(stack.children.values())


@pytest.fixture
def generated_package(web, tmp_path, monkeypatch):
    """The package openapi-python-client generates from the schema the server serves."""
    schema = tmp_path / "schema.json"
    with urllib.request.urlopen(f"{web.url}/api/schema/?format=json", timeout=10) as answer:
        schema.write_bytes(answer.read())
    generator = subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate"),
            *("--path", schema, "--config", CONFIG, "--meta", "none"),
            *("--output-path", tmp_path / PACKAGE, "--fail-on-warning"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=GENERATE_SECONDS,
    )
    assert generator.returncode == 0, generator.stdout + generator.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
        del sys.modules[name]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_pos_runs_its_whole_day_through_a_client_generated_from_the_schema(
    web, generated_package
):
    # Given a store with a key, a catalog, and a customer with an app account
    _store, key = store_create(name="POS shop")
    RewardItemFactory(name="Tote bag", points=100, cash_price=Decimal("10.00"), per_member_limit=1)
    RewardItemFactory(name="Mug", points=100)
    RewardItemFactory(name="Sold out", points=100, stock=0)
    off_sale = RewardItemFactory(name="Off sale", points=100)
    EventRule.objects.create(
        event_type="review_written", name_en="Review written", name_zh="写评价", points=20
    )
    customer = User.objects.create_user(phone=E164, password=PASSWORD)
    member_link_user(user=customer)
    pos = Pos(base_url=web.url, store_key=key)

    # When the POS works through its day with the generated client alone
    items = catalog(pos)
    earn(pos)
    look_up(pos)
    quote(pos)
    hold_and_commit(pos)
    hold_and_cancel(pos)
    refuse_holds(pos)
    refund(pos)
    # (staff take an item off sale after the POS read the catalog)
    off_sale.is_active = False
    off_sale.save(update_fields=["is_active"])
    reward_orders(pos, items)
    customer_app(pos, customer)
    report_event(pos)
    check_in_and_profile(pos)

    # Then every error code of the contract came back in the shape the schema declares
    assert pos.error_codes == CONTRACT_ERROR_CODES


def catalog(pos: Pos) -> dict[str, int]:
    """The item ids by name, as anyone may read them."""
    body = pos.ok("catalog.catalog_items", client=pos.client())
    return {item.name: item.id for item in body.results}


def earn(pos: Pos) -> None:
    purchase = pos.models.PurchaseInput(phone=PHONE, order_id="POS-1", amount="1000.00")
    earned = pos.ok("storefront.purchase_create", 201, body=purchase)
    assert (earned.points_earned, earned.member.phone, earned.member.balance) == (1000, E164, 1000)

    # A retry answers the first answer; the same order with another amount is a conflict
    assert pos.ok("storefront.purchase_create", 200, body=purchase) == earned
    purchase.amount = "999.00"
    pos.refused("storefront.purchase_create", 409, "idempotency_conflict", body=purchase)

    # The generated client sends what it is given; the server refuses what its schema refuses
    bad_amount = pos.models.PurchaseInput(phone=PHONE, order_id="POS-9", amount="1.999")
    pos.refused("storefront.purchase_create", 400, "validation_error", body=bad_amount)
    landline = pos.models.PurchaseInput(phone=NOT_A_MOBILE_NUMBER, order_id="POS-9", amount="1")
    pos.refused("storefront.purchase_create", 400, "invalid_phone", body=landline)
    wrong_key = pos.client(token="not-a-key", prefix="Api-Key")
    pos.refused(
        "storefront.purchase_create", 401, "not_authenticated", client=wrong_key, body=purchase
    )


def look_up(pos: Pos) -> None:
    member = pos.ok("storefront.member_lookup", body=pos.models.LookupInput(phone=PHONE))
    assert (member.phone, member.balance, member.registered) == (E164, 1000, True)
    assert [lot.points for lot in member.expiring] == [1000]
    assert isinstance(member.expiring[0].expires_at, datetime)

    unknown = pos.models.LookupInput(phone=UNKNOWN_PHONE)
    pos.refused("storefront.member_lookup", 404, "not_found", body=unknown)


def quote(pos: Pos) -> None:
    bill = pos.models.QuoteInput(phone=PHONE, order_total="80.00")
    quoted = pos.ok("storefront.redemption_quote", body=bill)
    # Half of 80.00 is 4000 points, more than the balance
    assert (quoted.max_points, quoted.max_discount, quoted.redeem_rate) == (1000, "10.00", 100)


def hold(pos: Pos, order_id: str, points: int):
    held = pos.ok("storefront.redemption_hold", 201, body=hold_input(pos, order_id, points))
    assert held.status == pos.models.RedemptionStatus.HELD
    assert isinstance(held.hold_expires_at, datetime)
    return held


def hold_input(pos: Pos, order_id: str, points: int, order_total: str = "80.00"):
    return pos.models.RedemptionInput(
        phone=PHONE, order_id=order_id, order_total=order_total, points=points
    )


def hold_and_commit(pos: Pos) -> None:
    held = hold(pos, "POS-2", 500)
    assert (held.discount, held.member.balance) == ("5.00", 500)

    committed = pos.ok("storefront.redemption_commit", redemption_id=held.id)
    assert committed.status == pos.models.RedemptionStatus.COMMITTED
    assert committed.hold_expires_at is None

    # A till that lost the answer retries, or reads the redemption: the same state
    assert pos.ok("storefront.redemption_commit", redemption_id=held.id) == committed
    assert pos.ok("storefront.redemption_read", redemption_id=held.id) == committed


def hold_and_cancel(pos: Pos) -> None:
    held = hold(pos, "POS-3", 200)

    cancelled = pos.ok("storefront.redemption_cancel", redemption_id=held.id)
    assert cancelled.status == pos.models.RedemptionStatus.CANCELLED
    assert (cancelled.hold_expires_at, cancelled.member.balance) == (None, 500)

    pos.refused("storefront.redemption_commit", 409, "invalid_state", redemption_id=held.id)


def refuse_holds(pos: Pos) -> None:
    operation = "storefront.redemption_hold"
    pos.refused(operation, 422, "below_minimum", body=hold_input(pos, "POS-4", 50))
    over_cap = hold_input(pos, "POS-4", 300, order_total="4.00")
    pos.refused(operation, 422, "redeem_cap_exceeded", body=over_cap)
    over_balance = hold_input(pos, "POS-4", 600, order_total="2000.00")
    pos.refused(operation, 422, "insufficient_points", body=over_balance)


def refund(pos: Pos) -> None:
    operation = "storefront.refund_create"
    part = pos.models.RefundInput(refund_id="R-1", amount="100.00")
    refunded = pos.ok(operation, 201, order_id="POS-1", body=part)
    assert (refunded.points_reversed, refunded.member.balance) == (100, 400)

    too_much = pos.models.RefundInput(refund_id="R-2", amount="2000.00")
    pos.refused(operation, 422, "refund_exceeds_purchase", order_id="POS-1", body=too_much)
    pos.refused(operation, 404, "not_found", order_id="POS-404", body=too_much)


def reward_orders(pos: Pos, items: dict[str, int]) -> None:
    operation = "storefront.reward_order_create"

    def order(name: str):
        return pos.models.StoreRewardOrderInput(phone=PHONE, item_id=items[name], quantity=1)

    tote_bag = pos.ok(operation, 201, body=order("Tote bag"))
    assert tote_bag.status == pos.models.RewardOrderStatus.PENDING
    assert (tote_bag.points, tote_bag.cash_due, tote_bag.member.balance) == (100, "10.00", 300)
    pos.refused(operation, 422, "limit_exceeded", body=order("Tote bag"))
    pos.refused(operation, 422, "out_of_stock", body=order("Sold out"))
    pos.refused(operation, 422, "item_unavailable", body=order("Off sale"))

    # The customer picks the bag up with its code, typed as a clerk types it; the clerk
    # sees the order first
    pickup = pos.models.PickupCodeInput(code=tote_bag.code.lower())
    previewed = pos.ok("storefront.reward_order_lookup", body=pickup)
    assert (previewed.id, previewed.status) == (tote_bag.id, pos.models.RewardOrderStatus.PENDING)
    fulfilled = pos.ok("storefront.reward_order_fulfil", body=pickup)
    assert (fulfilled.id, fulfilled.status) == (tote_bag.id, pos.models.RewardOrderStatus.FULFILLED)
    assert pos.ok("storefront.reward_order_fulfil", body=pickup) == fulfilled
    assert pos.ok("storefront.reward_order_read", order_id=tote_bag.id) == fulfilled
    unknown = pos.models.PickupCodeInput(code="ZZZZ-ZZZZ")
    pos.refused("storefront.reward_order_fulfil", 422, "invalid_code", body=unknown)

    mug = pos.ok(operation, 201, body=order("Mug"))
    cancelled = pos.ok("storefront.reward_order_cancel", order_id=mug.id)
    assert cancelled.status == pos.models.RewardOrderStatus.CANCELLED
    assert cancelled.member.balance == 300


def customer_app(pos: Pos, customer: User) -> None:
    """What the customer's app meets: its token, and what happens to wrong passwords and to
    a token whose account is no longer a customer's."""
    operation = "customer_auth.token_obtain"
    login = pos.models.TokenInput(phone=PHONE, password=PASSWORD)
    tokens = pos.ok(operation, client=pos.client(), body=login)
    app = pos.client(token=tokens.access)
    assert pos.ok("customer.me", client=app).balance == 300
    history = pos.ok("customer.my_transactions", client=app)
    kind = pos.models.TransactionKind
    assert [entry.kind for entry in history.results] == [
        kind.REWARD_CANCEL,
        kind.REWARD,
        kind.REWARD,
        kind.EARN_REVERSAL,
        kind.REDEEM_RELEASE,
        kind.REDEEM,
        kind.REDEEM,
        kind.EARN,
    ]
    assert history.next_ is None

    guess = pos.models.TokenInput(phone=PHONE, password="not the password")
    for _ in range(settings.LOGIN_FAILURES_PER_PHONE_AND_IP):
        pos.refused(operation, 401, "not_authenticated", client=pos.client(), body=guess)
    pos.refused(operation, 429, "throttled", client=pos.client(), body=guess)

    customer.is_staff = True
    customer.save(update_fields=["is_staff"])
    pos.refused("customer.me", 403, "permission_denied", client=app)


def report_event(pos: Pos) -> None:
    """A review the storefront reports, its retry, and a type only the program reports."""
    operation = "storefront.event_create"
    review = pos.models.EventInput(
        phone=PHONE,
        type_="review_written",
        external_id="REVIEW-1",
        occurred_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    paid = pos.ok(operation, 201, body=review)
    assert (paid.points, paid.outcome) == (20, pos.models.EventOutcome.PAID)
    assert paid.member.balance == 320

    assert pos.ok(operation, 200, body=review) == paid
    review.type_ = "checkin"
    pos.refused(operation, 422, "unknown_event_type", body=review)


def check_in_and_profile(pos: Pos) -> None:
    """Another customer's app checks in, completes the profile, and changes the birthday
    too soon."""
    user = User.objects.create_user(phone=APP_ONLY_PHONE, password=PASSWORD)
    member_link_user(user=user)
    app = pos.client(token=tokens_for(user)["access"])

    checked_in = pos.ok("customer.my_checkin_create", 201, client=app)
    assert (checked_in.date, checked_in.streak) == (timezone.localdate(), 1)

    update = pos.models.PatchedProfileInput(
        name="Li Wei", birthday=pos.models.BirthdayInput(month=5, day=17)
    )
    profile = pos.ok("customer.my_profile_update", client=app, body=update)
    assert (profile.birthday.month, profile.birthday.day, profile.birthday.year) == (5, 17, None)
    assert profile.profile_completed is True
    assert isinstance(profile.birthday_changeable_from, datetime)
    update.birthday = pos.models.BirthdayInput(month=6, day=1)
    pos.refused("customer.my_profile_update", 409, "birthday_locked", client=app, body=update)

    events = pos.ok("customer.my_events", client=app).results
    assert [event.type_ for event in events] == ["profile_completed", "checkin"]
