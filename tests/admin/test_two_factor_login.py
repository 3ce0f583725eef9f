"""Staff log in to admin with a password and a second factor: a code from an
authenticator app, or a one-use recovery code. Every login here goes through the
forms, as a person (or an attacker with a stolen password) would."""

from base64 import b32encode

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.staff_otp import RECOVERY_CODE_COUNT, staff_recovery_codes_issue
from tests.admin import messages_of, staff_member
from tests.concurrency import run_together
from tests.staff_otp import app_code, authenticator_app, code_from_key

LOGIN = "/admin/login/"
VERIFY = "/admin/two-factor/verify/"
ENROL = "/admin/two-factor/enrol/"
STATUS = "/admin/two-factor/"
PASSWORD = "counter staff 2026"
SUPERUSER = "+8613900000009"
# Not the code of any app in these tests but by a one-in-a-million chance; wrong_code avoids it.
GUESS = "123456"


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(phone=SUPERUSER, password=PASSWORD)


def staff_with_password(phone: str, *codenames: str) -> User:
    user = staff_member(phone, *codenames)
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def log_in(client, phone: str, *, password: str = PASSWORD, next_page: str = "/admin/"):
    """The password step, following the redirects to wherever admin sends the person."""
    return client.post(
        f"{LOGIN}?next={next_page}", {"username": phone, "password": password}, follow=True
    )


def give_code(client, code: str, *, next_page: str = "/admin/"):
    return client.post(f"{VERIFY}?next={next_page}", {"code": code})


def landed_on(response) -> str:
    return (
        response.redirect_chain[-1][0] if response.redirect_chain else response.request["PATH_INFO"]
    )


def wrong_code(device: TOTPDevice) -> str:
    right = app_code(device)
    return GUESS if right != GUESS else "654321"


def admin_pages(user: User) -> list[str]:
    """Every page of the admin that opens without an object's id, the user's own pages,
    and the dashboard, which lives outside admin's URLs."""
    pages = [
        reverse("admin:index"),
        reverse("admin:password_change"),
        reverse("admin:jsi18n"),
        reverse("admin:two_factor"),
        reverse("loyalty_dashboard"),
        reverse("admin:accounts_user_change", args=[user.pk]),
        reverse("admin:auth_user_password_change", args=[user.pk]),
        reverse("admin:accounts_user_two_factor_reset", args=[user.pk]),
    ]
    for model in admin.site._registry:
        meta = model._meta
        pages.append(reverse("admin:app_list", args=[meta.app_label]))
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
    return sorted(set(pages))


def test_the_password_alone_opens_no_admin_page(superuser):
    authenticator_app(superuser)
    browser = Client()

    response = log_in(browser, "13900000009")

    assert landed_on(response).startswith(VERIFY)
    opened = {}
    for page in admin_pages(superuser):
        answer = browser.get(page)
        if answer.status_code != 302 or not answer["Location"].startswith(LOGIN):
            opened[page] = answer.status_code
    assert opened == {}


def test_a_wrong_code_is_refused(superuser):
    app = authenticator_app(superuser)
    browser = Client()
    log_in(browser, SUPERUSER)

    response = give_code(browser, wrong_code(app))

    assert response.status_code == 200
    assert "This code is wrong, or it was used already." in response.content.decode()
    assert browser.get("/admin/").status_code == 302


def test_the_right_code_opens_admin_where_the_person_was_going(superuser):
    app = authenticator_app(superuser)
    browser = Client()
    response = log_in(browser, SUPERUSER, next_page="/admin/dashboard/")
    assert landed_on(response) == f"{VERIFY}?next=%2Fadmin%2Fdashboard%2F"

    response = give_code(browser, app_code(app), next_page="/admin/dashboard/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/dashboard/"
    assert browser.get("/admin/dashboard/").status_code == 200
    assert browser.get("/admin/loyalty/member/").status_code == 200


def test_the_code_step_sends_nowhere_off_the_site(superuser):
    app = authenticator_app(superuser)
    browser = Client()
    log_in(browser, SUPERUSER)

    response = give_code(browser, app_code(app), next_page="https://evil.example/")

    assert response["Location"] == "/admin/"


def test_a_recovery_code_logs_in_once(superuser):
    authenticator_app(superuser)
    code = staff_recovery_codes_issue(user=superuser)[0]
    first, second = Client(), Client()
    log_in(first, SUPERUSER)
    log_in(second, SUPERUSER)

    # As printed on the codes page: in two halves, and typed in capitals.
    used = give_code(first, f"{code[:4]}-{code[4:]}".upper())
    reused = give_code(second, code)

    assert used.status_code == 302
    assert first.get("/admin/").status_code == 200
    assert "This code is wrong, or it was used already." in reused.content.decode()
    assert second.get("/admin/").status_code == 302
    assert StaticToken.objects.filter(device__user=superuser).count() == RECOVERY_CODE_COUNT - 1


@pytest.mark.django_db(transaction=True)
def test_a_recovery_code_sent_from_four_sessions_at_once_logs_in_one():
    superuser = User.objects.create_superuser(phone=SUPERUSER, password=PASSWORD)
    authenticator_app(superuser)
    code = staff_recovery_codes_issue(user=superuser)[0]
    browsers = [Client() for _ in range(4)]
    for browser in browsers:
        log_in(browser, SUPERUSER)

    answers = run_together(
        [lambda b=browser: give_code(b, code).status_code for browser in browsers]
    )

    assert sorted(answers) == [200, 200, 200, 302]
    assert [browser.get("/admin/").status_code for browser in browsers].count(200) == 1


def test_staff_who_may_only_look_are_not_asked_to_set_it_up(db):
    staff_with_password("+8613900000001", "view_member", "view_ledgerentry")
    browser = Client()

    response = log_in(browser, "+8613900000001")

    assert landed_on(response) == "/admin/"
    assert response.status_code == 200
    assert browser.get("/admin/loyalty/member/").status_code == 200
    assert not TOTPDevice.objects.exists()


def test_a_clerk_given_the_adjust_permission_sets_it_up_at_the_next_page(db):
    clerk = staff_with_password("+8613900000001", "view_member")
    browser = Client()
    log_in(browser, clerk.phone)
    assert browser.get("/admin/loyalty/member/").status_code == 200

    clerk.user_permissions.add(Permission.objects.get(codename="adjust_points"))
    response = browser.get("/admin/loyalty/member/", follow=True)

    assert landed_on(response) == f"{ENROL}?next=%2Fadmin%2Floyalty%2Fmember%2F"
    assert browser.get("/admin/").status_code == 302
    response = browser.post(ENROL, {"code": code_from_key(response.context["key"])})
    assert response.status_code == 200
    assert browser.get("/admin/loyalty/member/").status_code == 200


def test_a_superuser_without_an_app_sets_one_up_at_login(superuser):
    browser = Client()

    response = log_in(browser, SUPERUSER)

    assert landed_on(response).startswith(ENROL)
    page = response.content.decode()
    assert "<svg" in response.context["qr_code"]
    assert response.context["key"] in page
    assert browser.get("/admin/").status_code == 302

    response = browser.post(
        f"{ENROL}?next=/admin/", {"code": code_from_key(response.context["key"])}
    )

    assert response.status_code == 200
    shown = response.context["codes"]
    assert len(shown) == RECOVERY_CODE_COUNT
    assert all(code in response.content.decode() for code in shown)
    assert TOTPDevice.objects.get(user=superuser).confirmed
    assert browser.get("/admin/").status_code == 200
    # The codes shown are the ones that work: one of them logs in another browser.
    other = Client()
    log_in(other, SUPERUSER)
    assert give_code(other, shown[3]).status_code == 302


def test_a_wrong_code_does_not_finish_the_set_up(superuser):
    browser = Client()
    log_in(browser, SUPERUSER)

    response = browser.post(ENROL, {"code": GUESS})

    assert "This code is wrong, or it was used already." in response.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    assert browser.get("/admin/").status_code == 302


def test_the_right_set_up_code_right_after_a_wrong_one_is_told_to_wait_not_wrong(superuser):
    browser = Client()
    key = log_in(browser, SUPERUSER).context["key"]
    browser.post(ENROL, {"code": wrong_code(TOTPDevice.objects.get(user=superuser))})

    response = browser.post(ENROL, {"code": code_from_key(key)})

    page = response.content.decode()
    assert "Wait 1 second before trying another code." in page
    assert "This code is wrong" not in page
    assert not TOTPDevice.objects.filter(confirmed=True).exists()


def test_the_set_up_page_cannot_replace_an_app_before_the_code_step(superuser):
    app = authenticator_app(superuser)
    browser = Client()
    log_in(browser, SUPERUSER)

    asked = browser.get(ENROL)
    posted = browser.post(ENROL, {"code": GUESS, "current_code": GUESS})

    assert asked.status_code == posted.status_code == 302
    assert asked["Location"].startswith(VERIFY)
    assert list(TOTPDevice.objects.filter(confirmed=True)) == [app]


def test_an_open_session_cannot_move_the_app_to_another_phone_without_a_current_code(
    superuser, client
):
    """A session left open at the counter: whoever sits there may not put the second
    factor on their own phone without a code from the owner's."""
    old_app = authenticator_app(superuser)
    client.force_login(superuser)
    page = client.get(ENROL)
    assert "current_code" in page.context["form"].fields

    without = client.post(ENROL, {"code": code_from_key(page.context["key"])})
    page = client.get(ENROL)
    wrong = client.post(
        ENROL, {"code": code_from_key(page.context["key"]), "current_code": wrong_code(old_app)}
    )

    assert without.status_code == wrong.status_code == 200
    assert wrong.context["form"].errors == {
        "current_code": ["This code is wrong, or it was used already."]
    }
    assert list(TOTPDevice.objects.filter(confirmed=True)) == [old_app]


def test_the_owner_moves_the_app_to_a_new_phone_with_a_current_code(superuser, client):
    old_app = authenticator_app(superuser)
    client.force_login(superuser)
    page = client.get(ENROL)

    response = client.post(
        ENROL, {"code": code_from_key(page.context["key"]), "current_code": app_code(old_app)}
    )

    assert response.status_code == 200
    assert len(response.context["codes"]) == RECOVERY_CODE_COUNT
    new_app = TOTPDevice.objects.get(user=superuser)
    assert new_app != old_app and new_app.confirmed
    assert client.get("/admin/").status_code == 200
    # A wrong code makes the app wait a second before the next: one browser for each.
    with_new, with_old = Client(), Client()
    log_in(with_new, SUPERUSER)
    log_in(with_old, SUPERUSER)
    assert give_code(with_new, app_code(new_app)).status_code == 302
    old_key = b32encode(old_app.bin_key).decode()
    assert give_code(with_old, code_from_key(old_key)).status_code == 200


def test_new_recovery_codes_kill_the_old_ones(superuser, client):
    app = authenticator_app(superuser)
    old_codes = staff_recovery_codes_issue(user=superuser)
    client.force_login(superuser)

    response = client.post(
        STATUS, {"action": "recovery_codes", "recovery_codes-code": app_code(app)}
    )

    new_codes = response.context["codes"]
    assert len(new_codes) == RECOVERY_CODE_COUNT
    with_new, with_old = Client(), Client()
    log_in(with_new, SUPERUSER)
    log_in(with_old, SUPERUSER)
    assert give_code(with_new, new_codes[0]).status_code == 302
    assert give_code(with_old, old_codes[0]).status_code == 200


def test_new_recovery_codes_need_a_current_code(superuser, client):
    authenticator_app(superuser)
    old_codes = staff_recovery_codes_issue(user=superuser)
    client.force_login(superuser)

    response = client.post(STATUS, {"action": "recovery_codes", "recovery_codes-code": GUESS})

    assert "codes" not in response.context
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(old_codes)


def test_optional_staff_may_turn_it_on_and_off(db):
    viewer = staff_with_password("+8613900000001", "view_member")
    browser = Client()
    log_in(browser, viewer.phone)
    assert "Two-factor login is off." in browser.get(STATUS).content.decode()
    page = browser.get(ENROL)
    browser.post(ENROL, {"code": code_from_key(page.context["key"])})
    app = TOTPDevice.objects.get(user=viewer)

    # On, it is asked for at every login, as for anyone who must have it.
    again = Client()
    assert landed_on(log_in(again, viewer.phone)).startswith(VERIFY)
    give_code(again, app_code(app))
    response = again.post(
        STATUS, {"action": "turn_off", "turn_off-code": app_code(app)}, follow=True
    )

    assert messages_of(response) == ["Two-factor login is off for your account."]
    assert not TOTPDevice.objects.exists()
    assert landed_on(log_in(Client(), viewer.phone)) == "/admin/"


def test_staff_who_must_have_it_cannot_turn_it_off(superuser, client):
    app = authenticator_app(superuser)
    client.force_login(superuser)

    page = client.get(STATUS).content.decode()
    response = client.post(STATUS, {"action": "turn_off", "turn_off-code": app_code(app)})

    assert "Turn off two-factor login" not in page
    assert response.status_code == 403
    assert TOTPDevice.objects.filter(user=superuser).exists()


def test_the_user_tools_link_each_staff_members_two_factor_page(superuser, client):
    client.force_login(superuser)

    page = client.get("/admin/").content.decode()

    assert f'<a href="{STATUS}">Two-factor login</a>' in page


def test_logging_out_between_password_and_code(superuser):
    authenticator_app(superuser)
    browser = Client()
    log_in(browser, SUPERUSER)

    response = browser.post("/admin/two-factor/cancel/")

    assert response["Location"] == LOGIN
    assert browser.get(VERIFY)["Location"].startswith(LOGIN)


@pytest.fixture
def manager(db):
    return staff_with_password("+8613900000002", "view_adjustment", "approve_adjustment")


def test_a_superuser_resets_a_staff_members_second_factor(superuser, manager, client):
    app = authenticator_app(manager)
    staff_recovery_codes_issue(user=manager)
    managers_browser = Client()
    log_in(managers_browser, manager.phone)
    give_code(managers_browser, app_code(app))
    assert managers_browser.get("/admin/").status_code == 200
    client.force_login(superuser)
    user_page = reverse("admin:accounts_user_change", args=[manager.pk])
    reset_page = reverse("admin:accounts_user_two_factor_reset", args=[manager.pk])
    assert reset_page in client.get(user_page).content.decode()

    confirmation = client.get(reset_page)
    response = client.post(reset_page, follow=True)

    assert "Reset the two-factor login of" in confirmation.content.decode()
    assert messages_of(response) == ["Reset the two-factor login of +86139****0002."]
    assert not TOTPDevice.objects.filter(user=manager).exists()
    assert not StaticToken.objects.filter(device__user=manager).exists()
    assert LogEntry.objects.get(object_id=str(manager.pk)).get_change_message() == (
        "Reset the two-factor login of +86139****0002."
    )
    # The manager's open session lost its second factor: it is set up again.
    assert landed_on(managers_browser.get("/admin/", follow=True)).startswith(ENROL)


def test_only_a_superuser_resets_a_second_factor(manager, client):
    authenticator_app(manager)
    user_admin = staff_member("+8613900000003", "view_member", "adjust_points")
    user_admin.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user"])
    )
    client.force_login(user_admin)
    reset_page = reverse("admin:accounts_user_two_factor_reset", args=[manager.pk])

    assert (
        reset_page
        not in client.get(reverse("admin:accounts_user_change", args=[manager.pk])).content.decode()
    )
    assert client.post(reset_page).status_code == 403
    assert TOTPDevice.objects.filter(user=manager).exists()


def test_the_user_list_shows_who_has_it_on(superuser, manager, client):
    authenticator_app(superuser)
    client.force_login(superuser)

    rows = {
        row.phone: row.has_two_factor
        for row in client.get("/admin/accounts/user/").context["cl"].result_list
    }

    assert rows == {SUPERUSER: True, manager.phone: False}


def test_the_login_pages_speak_chinese(superuser):
    browser = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")

    enrol = log_in(browser, SUPERUSER).content.decode()
    browser.post(ENROL, {"code": code_from_key(browser.get(ENROL).context["key"])})
    browser.post("/admin/two-factor/cancel/")
    log_in(browser, SUPERUSER)
    refused = give_code(browser, GUESS).content.decode()

    assert "扫描" in enrol and "身份验证器" in enrol
    assert "验证码有误或已被使用。" in refused
